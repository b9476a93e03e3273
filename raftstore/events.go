package raftstore

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/api"
)

// SetEventSink makes the FSM describe each change it applies as events,
// handed to sink while the FSM's lock is held: sink must be quick and must
// not call back into the FSM. Times come from the commands, so every
// manager tells the same story.
func (f *FSM) SetEventSink(sink func([]*api.Event)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sink = sink
}

// describe returns what cmd will change, as events; read before it is
// applied, since it compares with the state before. f.mu is held.
func (f *FSM) describe(cmd *api.Command) []*api.Event {
	if f.sink == nil {
		return nil
	}
	var out []*api.Event
	ev := func(at int64, typ, action, id string, kv ...string) {
		e := &api.Event{UnixNano: at, Type: typ, Action: action, Id: id, Attributes: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				e.Attributes[kv[i]] = kv[i+1]
			}
		}
		out = append(out, e)
	}
	switch op := cmd.Op.(type) {
	case *api.Command_InitCluster:
		n := op.InitCluster.GetNode()
		ev(n.GetCreatedUnixNano(), "node", "create", n.GetId(), "name", n.GetHostname(), "role", n.GetRole().Name())
	case *api.Command_AddNode:
		n := op.AddNode.GetNode()
		ev(n.GetCreatedUnixNano(), "node", "create", n.GetId(), "name", n.GetHostname(), "role", n.GetRole().Name())
	case *api.Command_UpdateNode:
		u := op.UpdateNode
		if n, ok := f.nodes[u.GetId()]; ok {
			kv := []string{"name", n.Hostname}
			if u.Availability != nil && *u.Availability != n.Availability {
				kv = append(kv, "availability.old", n.Availability.Name(), "availability.new", u.Availability.Name())
			}
			if u.DesiredRole != nil && *u.DesiredRole != n.DesiredRole {
				kv = append(kv, "role.old", n.DesiredRole.Name(), "role.new", u.DesiredRole.Name())
			}
			if len(kv) > 2 {
				ev(n.UpdatedUnixNano, "node", "update", n.Id, kv...)
			}
		}
	case *api.Command_SetNodeStatus:
		for _, s := range op.SetNodeStatus.GetStatuses() {
			if n, ok := f.nodes[s.GetId()]; ok && n.State != s.State {
				ev(op.SetNodeStatus.UnixNano, "node", "update", n.Id, "name", n.Hostname,
					"state.old", n.State.Name(), "state.new", s.State.Name(), "message", s.Message)
			}
		}
	case *api.Command_RemoveNode:
		if n, ok := f.nodes[op.RemoveNode.GetId()]; ok {
			ev(n.UpdatedUnixNano, "node", "remove", n.Id, "name", n.Hostname)
		}
	case *api.Command_PutService:
		s := op.PutService.GetService()
		if old, ok := f.t.services[s.GetId()]; ok {
			// What changed, in Docker's attribute names.
			kv := []string{"name", s.GetSpec().GetName()}
			if o, n := old.GetSpec().GetReplicas(), s.GetSpec().GetReplicas(); o != n {
				kv = append(kv, "replicas.old", fmt.Sprint(o), "replicas.new", fmt.Sprint(n))
			}
			if o, n := old.GetSpec().GetContainer().GetImage(), s.GetSpec().GetContainer().GetImage(); o != n {
				kv = append(kv, "image.old", o, "image.new", n)
			}
			if o, n := old.GetUpdateStatus(), s.GetUpdateStatus(); n.GetStartedVersion() != o.GetStartedVersion() {
				kv = append(kv, "updatestate.old", o.GetState().Name(), "updatestate.new", n.GetState().Name())
			}
			ev(s.GetUpdatedUnixNano(), "service", "update", s.GetId(), kv...)
		} else {
			ev(s.GetCreatedUnixNano(), "service", "create", s.GetId(), "name", s.GetSpec().GetName(),
				"image", s.GetSpec().GetContainer().GetImage(), "replicas", fmt.Sprint(s.GetSpec().GetReplicas()))
		}
	case *api.Command_RemoveService:
		if s, ok := f.t.services[op.RemoveService.GetId()]; ok {
			ev(s.GetUpdatedUnixNano(), "service", "remove", s.Id, "name", s.Spec.GetName())
		}
	case *api.Command_Tasks:
		b := op.Tasks
		for _, t := range b.Put {
			old, ok := f.t.tasks[t.GetId()]
			from := api.TaskState_NEW
			if ok {
				from = old.GetStatus().GetState()
			}
			if to := t.GetStatus().GetState(); !ok || statusForward(from, to) && to != from {
				f.taskEvent(ev, t, from, t.GetStatus(), t.GetNodeId())
			}
		}
		for _, u := range b.Status {
			if t, ok := f.t.tasks[u.GetTaskId()]; ok && u.Status != nil && statusForward(t.GetStatus().GetState(), u.Status.State) && u.Status.State != t.GetStatus().GetState() {
				f.taskEvent(ev, t, t.GetStatus().GetState(), u.Status, t.NodeId)
			}
		}
		for _, u := range b.UpdateStatus {
			s, ok := f.t.services[u.GetServiceId()]
			if !ok || s.Version != u.GetVersion() {
				continue
			}
			from, to := s.GetUpdateStatus(), u.GetStatus()
			if from.GetState() != to.GetState() {
				ev(max(to.GetStartedUnixNano(), to.GetCompletedUnixNano()), "service", "update", s.Id, "name", s.Spec.GetName(),
					"updatestate.old", from.GetState().Name(), "updatestate.new", to.GetState().Name(), "message", to.GetMessage())
			}
		}
	}
	return out
}

func (f *FSM) taskEvent(ev func(int64, string, string, string, ...string), t *api.Task, from api.TaskState, to *api.TaskStatus, node string) {
	name := fmt.Sprintf("%s.%d", t.GetServiceName(), t.GetSlot())
	nodeName := ""
	if n, ok := f.nodes[node]; ok {
		nodeName = n.Hostname
	}
	action := "update"
	if from == api.TaskState_NEW {
		action = "create"
	}
	kv := []string{"name", name, "node", nodeName, "state.old", from.Name(), "state.new", to.GetState().Name(), "error", to.GetErr()}
	if to.GetState() == api.TaskState_RUNNING && from < api.TaskState_RUNNING && t.GetCreatedUnixNano() > 0 {
		// How long the task took from being made to running.
		kv = append(kv, "running.after", time.Duration(to.GetUnixNano()-t.GetCreatedUnixNano()).String())
	}
	ev(to.GetUnixNano(), "task", action, t.GetId(), kv...)
}

// ObserveLeader calls f, from a goroutine of its own, whenever this server
// sees the leader change: the new leader's ID (empty: none) and the term.
// The returned func stops it.
func (s *Store) ObserveLeader(f func(leaderID string, term uint64)) (stop func()) {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case o := <-ch:
				lo := o.Data.(raft.LeaderObservation)
				f(string(lo.LeaderID), s.raft.CurrentTerm())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.raft.DeregisterObserver(obs)
			close(done)
		})
	}
}
