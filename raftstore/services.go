package raftstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// tables holds services and tasks, with tasks indexed by node and service
// so that the dispatcher and orchestrator read only what they need.
type tables struct {
	services  map[string]*api.Service
	tasks     map[string]*api.Task
	byNode    map[string]map[string]*api.Task
	byService map[string]map[string]*api.Task
}

func newTables() tables {
	return tables{
		services:  map[string]*api.Service{},
		tasks:     map[string]*api.Task{},
		byNode:    map[string]map[string]*api.Task{},
		byService: map[string]map[string]*api.Task{},
	}
}

func (t *tables) putTask(task *api.Task) {
	t.dropTask(task.Id)
	t.tasks[task.Id] = task
	index(t.byNode, task.NodeId, task)
	index(t.byService, task.ServiceId, task)
}

func (t *tables) dropTask(id string) {
	old, ok := t.tasks[id]
	if !ok {
		return
	}
	delete(t.tasks, id)
	unindex(t.byNode, old.NodeId, id)
	unindex(t.byService, old.ServiceId, id)
}

func index(m map[string]map[string]*api.Task, key string, task *api.Task) {
	if key == "" {
		return
	}
	if m[key] == nil {
		m[key] = map[string]*api.Task{}
	}
	m[key][task.Id] = task
}

func unindex(m map[string]map[string]*api.Task, key, id string) {
	if set := m[key]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

func (f *FSM) putService(c *api.PutService) error {
	s := c.GetService()
	switch {
	case s.GetId() == "":
		return errors.New("put service: no service ID")
	case s.GetSpec().GetName() == "":
		return errors.New("put service: no name")
	}
	for _, other := range f.t.services {
		if other.Id != s.Id && other.Spec.Name == s.Spec.Name {
			return fmt.Errorf("service %s: %w", s.Spec.Name, ErrExists)
		}
	}
	// A put is made from a read: version n+1 replaces version n only, so a
	// change made meanwhile (or a removal) is never overwritten.
	old, ok := f.t.services[s.Id]
	switch {
	case ok && s.Version != old.Version+1:
		return fmt.Errorf("service %s is at version %d, the change was made from %d: %w", s.Spec.Name, old.Version, s.Version-1, ErrConflict)
	case !ok && s.Version != 1:
		return fmt.Errorf("service %s: %w", s.Spec.Name, ErrNotFound)
	}
	s = proto.CloneOf(s)
	if ok && s.GetUpdateStatus().GetStartedVersion() == old.GetUpdateStatus().GetStartedVersion() {
		// Only a put that starts an update sets its status; the progress
		// the orchestrator recorded since the read (paused, completed)
		// stays.
		s.UpdateStatus = old.UpdateStatus
	}
	f.t.services[s.Id] = s
	return nil
}

func (f *FSM) removeService(c *api.RemoveService) error {
	if _, ok := f.t.services[c.GetId()]; !ok {
		return fmt.Errorf("service %s: %w", c.GetId(), ErrNotFound)
	}
	delete(f.t.services, c.Id)
	return nil
}

// taskBatch applies many task changes. Changes to tasks that no longer
// exist, and status or desired-state moves backwards, are skipped: agents
// and the orchestrator race harmlessly with each other.
func (f *FSM) taskBatch(b *api.TaskBatch) error {
	for _, t := range b.Put {
		if t.GetId() == "" {
			return errors.New("task batch: a task without ID")
		}
	}
	for _, t := range b.Put {
		t = proto.CloneOf(t)
		if old, ok := f.t.tasks[t.Id]; ok {
			// A put made from an older copy never takes a task back.
			t.DesiredState = max(t.DesiredState, old.DesiredState)
			if !statusForward(old.GetStatus().GetState(), t.GetStatus().GetState()) {
				t.Status = old.Status
			}
		}
		f.t.putTask(t)
	}
	for _, id := range b.Delete {
		f.t.dropTask(id)
	}
	for _, u := range b.Status {
		t, ok := f.t.tasks[u.GetTaskId()]
		if !ok || u.Status == nil || !statusForward(t.GetStatus().GetState(), u.Status.State) {
			continue
		}
		t.Status = proto.CloneOf(u.Status)
	}
	for _, d := range b.Desired {
		if t, ok := f.t.tasks[d.GetTaskId()]; ok && d.State > t.DesiredState {
			t.DesiredState = d.State
		}
	}
	for _, u := range b.UpdateStatus {
		s, ok := f.t.services[u.GetServiceId()]
		if !ok || s.Version != u.GetVersion() {
			continue
		}
		st := proto.CloneOf(u.GetStatus())
		if st.GetState() == api.UpdateStatus_ROLLBACK_STARTED && s.GetUpdateStatus().GetState() != api.UpdateStatus_ROLLBACK_STARTED && s.PreviousSpec != nil {
			// An automatic rollback: the previous spec comes back as a
			// new version, which the rollback's tasks are made from.
			s.Spec, s.PreviousSpec = s.PreviousSpec, s.Spec
			s.Version++
			s.UpdatedUnixNano = st.StartedUnixNano
			st.StartedVersion = s.Version
		}
		s.UpdateStatus = st
	}
	return nil
}

// updating reports whether the service of task id is in a rolling update.
func (f *FSM) updating(taskID string) bool {
	t, ok := f.t.tasks[taskID]
	if !ok {
		return false
	}
	s, ok := f.t.services[t.ServiceId]
	return ok && s.GetUpdateStatus().GetState().InProgress()
}

// statusForward: a task's state only moves forward, and never out of an
// end state. Staying in a state is allowed (a new message, an address).
func statusForward(from, to api.TaskState) bool {
	if from.Terminal() {
		return false
	}
	return to >= from
}

// Service returns a copy of a service.
func (f *FSM) Service(id string) (*api.Service, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s, ok := f.t.services[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(s), true
}

// Services returns copies of all services, sorted by name.
func (f *FSM) Services() []*api.Service {
	f.mu.RLock()
	out := make([]*api.Service, 0, len(f.t.services))
	for _, s := range f.t.services {
		out = append(out, proto.CloneOf(s))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b *api.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out
}

// Task returns a copy of a task.
func (f *FSM) Task(id string) (*api.Task, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.t.tasks[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(t), true
}

// TaskNode returns the node a task is assigned to ("" while pending),
// without copying the task.
func (f *FSM) TaskNode(id string) (node string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.t.tasks[id]
	return t.GetNodeId(), ok
}

// Tasks returns copies of all tasks, or of those of one service or node
// when the filter's fields are set.
func (f *FSM) Tasks(filter TaskFilter) []*api.Task {
	f.mu.RLock()
	var src map[string]*api.Task
	switch {
	case filter.NodeID != "":
		src = f.t.byNode[filter.NodeID]
	case filter.ServiceID != "":
		src = f.t.byService[filter.ServiceID]
	default:
		src = f.t.tasks
	}
	out := make([]*api.Task, 0, len(src))
	for _, t := range src {
		if filter.ServiceID != "" && t.ServiceId != filter.ServiceID {
			continue
		}
		out = append(out, proto.CloneOf(t))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b *api.Task) int {
		return cmp.Or(strings.Compare(a.ServiceId, b.ServiceId), cmp.Compare(a.Slot, b.Slot),
			cmp.Compare(b.CreatedUnixNano, a.CreatedUnixNano), strings.Compare(a.Id, b.Id))
	})
	return out
}

// TaskFilter narrows Tasks.
type TaskFilter struct {
	ServiceID string
	NodeID    string
}
