package orchestrator

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// View is what the orchestrator sees of one service at one moment.
type View struct {
	// Service is the service being reconciled; without it Reconcile plans
	// nothing.
	Service *api.Service
	// Tasks are all the service's tasks, history included, in any order.
	// Tasks of other services are ignored.
	Tasks []*api.Task
	// NodeDown reports whether a node is Down or gone. The live tasks on
	// such a node are replaced at once, without the restart delay and
	// without counting as restart attempts. Nil: no node is down.
	NodeDown func(nodeID string) bool
	// Now is the time the decisions are made at.
	Now time.Time
	// HistoryLimit is how many old tasks each slot keeps besides its
	// current one: 0 keeps none, a negative number keeps them all. The
	// loop passes the cluster's task_history_limit (DefaultHistoryLimit).
	HistoryLimit int
}

// Plan is the set of task changes that brings a service to its spec. The
// loop writes it through Raft as one batch (see Batch).
type Plan struct {
	// Create are new tasks in slot order: PENDING, desired RUNNING, ready
	// for the scheduler.
	Create []*api.Task
	// Desired moves tasks to desired SHUTDOWN: first the tasks of slots no
	// longer wanted, highest slot first, then tasks replaced in wanted
	// slots, in slot order.
	Desired []*api.TaskDesiredState
	// Delete are the IDs of tasks to drop, oldest first: history beyond the
	// limit and the ended tasks of slots no longer wanted. Never a live
	// task, and never a task that may still be running on a node that is up.
	Delete []string
	// Wake is when to reconcile again even if nothing else changes: the
	// earliest restart that waits for its delay, or the next step of a
	// rolling update. Zero when none waits.
	Wake time.Time
	// UpdateStatus is the service's rolling update status when this plan
	// changes it (paused, completed); nil otherwise.
	UpdateStatus *api.UpdateStatus
}

// Reconcile plans what keeps v.Service's slots 1..Replicas filled with
// exactly one live task each: new tasks for empty slots, lowest first;
// desired SHUTDOWN for the slots above Replicas; restarts of ended tasks by
// the restart policy; immediate replacement of tasks on down nodes; the
// next step of a rolling update; and the trimming of each slot's history. newID gives each new task its ID and is
// called once per task, in slot order.
//
// Reconcile is deterministic: the same view and IDs give the same plan,
// whatever the order of v.Tasks.
func Reconcile(v View, newID func() string) Plan {
	if v.Service == nil {
		return Plan{}
	}
	p := newPlanner(v, newID)
	slots := bySlot(v.Tasks, v.Service.GetId())
	replicas := v.Service.GetSpec().GetReplicas()
	for _, s := range slices.Backward(slices.Sorted(maps.Keys(slots))) {
		if s == 0 || s > replicas {
			p.unwanted(slots[s])
		}
	}
	p.roll = p.planRollout(slots, replicas)
	for s := uint64(1); s <= replicas; s++ {
		p.wanted(s, slots[s])
	}
	return p.finish()
}

// Remove plans the end of a whole service: every live task goes to desired
// SHUTDOWN, highest slot first, and every task that can no longer run (it
// ended, was never placed, or its node is down) is deleted. The loop calls
// it until the service has no tasks left. v.Service may be nil once the
// service itself is gone; v.Tasks are then taken as they are.
func Remove(v View) Plan {
	p := newPlanner(v, nil)
	slots := bySlot(v.Tasks, v.Service.GetId())
	for _, s := range slices.Backward(slices.Sorted(maps.Keys(slots))) {
		p.unwanted(slots[s])
	}
	return p.finish()
}

// planner collects one plan.
type planner struct {
	v       View
	policy  *api.RestartPolicy
	newID   func() string
	plan    Plan
	touched map[string]bool // tasks given a desired state in this plan
	deletes []*api.Task
	roll    *rollout // nil: no rolling update in this plan
}

func newPlanner(v View, newID func() string) *planner {
	return &planner{v: v, policy: policyOf(v.Service), newID: newID, touched: map[string]bool{}}
}

// unwanted stops the live tasks of a slot that is no longer wanted and
// deletes those that can no longer run.
func (p *planner) unwanted(ts []*api.Task) {
	for _, t := range ts {
		switch {
		case Live(t):
			p.shutdown(t)
		case p.deletable(t):
			p.delete(t)
		}
	}
}

// keeper is the live task a slot keeps: the one furthest along on a node
// that is up; nil if there is none.
func (p *planner) keeper(ts []*api.Task) *api.Task {
	var keep *api.Task
	for _, t := range ts {
		if Live(t) && !p.down(t) && (keep == nil || ahead(t, keep)) {
			keep = t
		}
	}
	return keep
}

// wanted keeps one live task in slot (keeper). Duplicates and tasks on down
// nodes are stopped; a slot emptied by a down node is refilled at once, an
// otherwise empty one by refill; an outdated task is stopped when the
// rolling update gets to it, and refill replaces it once it has ended.
func (p *planner) wanted(slot uint64, ts []*api.Task) {
	keep := p.keeper(ts)
	lost := false
	for _, t := range ts {
		if Live(t) && t != keep {
			lost = lost || p.down(t)
			p.shutdown(t)
		}
	}
	current := keep
	switch {
	case keep != nil && p.roll != nil && Outdated(p.v.Service, keep) && p.roll.take():
		// Stop first: refill makes the replacement once keep has ended.
		p.shutdown(keep)
	case keep != nil:
	case lost:
		p.create(slot)
	default:
		current = p.refill(slot, ts)
	}
	p.trim(ts, current)
}

// refill decides for a wanted slot without a live task, from its newest
// task. It returns the task that stays the slot's current one (an ended
// task waiting for its restart, or one the policy gave up on), or nil when
// a new task takes the slot.
func (p *planner) refill(slot uint64, ts []*api.Task) *api.Task {
	if len(ts) == 0 {
		p.create(slot)
		return nil
	}
	last := ts[len(ts)-1]
	switch {
	case p.stopping(ts):
		// Replaced by a rolling update: the new task waits for the
		// old one's end.
		return last
	case last.GetDesiredState() > api.TaskState_RUNNING:
		// Stopped on request (the slot was scaled away and is wanted
		// again): nothing failed, so no delay.
		p.create(slot)
		return nil
	case last.GetStatus().GetState() == api.TaskState_ORPHANED:
		// Lost with its node before it could be replaced.
		p.shutdown(last)
		p.create(slot)
		return nil
	}
	at, ok := restartAt(p.policy, last, ts[:len(ts)-1])
	switch {
	case !ok:
		return last
	case p.v.Now.Before(at):
		p.wake(at)
		return last
	}
	p.shutdown(last)
	p.create(slot)
	return nil
}

// trim deletes the slot's old tasks beyond the history limit, oldest first.
// current is not history. The newest MaxAttempts tasks that ended by
// themselves are kept beyond the limit too: they count restart attempts.
func (p *planner) trim(ts []*api.Task, current *api.Task) {
	limit := p.v.HistoryLimit
	if limit < 0 {
		return
	}
	protect := p.policy.GetMaxAttempts()
	var n int
	var failures uint64
	for _, t := range slices.Backward(ts) {
		if t == current {
			continue
		}
		n++
		counts := endedByItself(t)
		if counts {
			failures++
		}
		switch {
		case n <= limit:
		case counts && failures <= protect:
		case p.deletable(t):
			p.delete(t)
		}
	}
}

// deletable: t is not live, is not changed by this plan, and cannot be
// running on a node that is up.
func (p *planner) deletable(t *api.Task) bool {
	if Live(t) || p.touched[t.GetId()] {
		return false
	}
	return t.GetStatus().GetState().Terminal() || t.GetNodeId() == "" || p.down(t)
}

func (p *planner) down(t *api.Task) bool {
	return t.GetNodeId() != "" && p.v.NodeDown != nil && p.v.NodeDown(t.GetNodeId())
}

func (p *planner) shutdown(t *api.Task) {
	if t.GetDesiredState() >= api.TaskState_SHUTDOWN || p.touched[t.GetId()] {
		return
	}
	p.touched[t.GetId()] = true
	p.plan.Desired = append(p.plan.Desired, &api.TaskDesiredState{TaskId: t.GetId(), State: api.TaskState_SHUTDOWN})
}

func (p *planner) delete(t *api.Task) {
	p.deletes = append(p.deletes, t)
}

func (p *planner) wake(at time.Time) {
	if p.plan.Wake.IsZero() || at.Before(p.plan.Wake) {
		p.plan.Wake = at
	}
}

func (p *planner) create(slot uint64) {
	s := p.v.Service
	now := p.v.Now.UnixNano()
	p.plan.Create = append(p.plan.Create, &api.Task{
		Id:             p.newID(),
		ServiceId:      s.GetId(),
		ServiceName:    s.GetSpec().GetName(),
		Slot:           slot,
		Spec:           proto.CloneOf(s.GetSpec().GetContainer()),
		ServiceVersion: s.GetVersion(),
		DesiredState:   api.TaskState_RUNNING,
		Status: &api.TaskStatus{
			State:    api.TaskState_PENDING,
			UnixNano: now,
			Message:  "created",
		},
		CreatedUnixNano: now,
	})
}

func (p *planner) finish() Plan {
	slices.SortFunc(p.deletes, older)
	for _, t := range p.deletes {
		p.plan.Delete = append(p.plan.Delete, t.GetId())
	}
	return p.plan
}

// bySlot groups the tasks of service id (all tasks if id is empty) by slot,
// each slot's tasks oldest first.
func bySlot(tasks []*api.Task, id string) map[uint64][]*api.Task {
	slots := map[uint64][]*api.Task{}
	for _, t := range tasks {
		if t == nil || (id != "" && t.GetServiceId() != id) {
			continue
		}
		slots[t.GetSlot()] = append(slots[t.GetSlot()], t)
	}
	for _, ts := range slots {
		slices.SortFunc(ts, older)
	}
	return slots
}

// older orders tasks by creation time, then ID.
func older(a, b *api.Task) int {
	return cmp.Or(cmp.Compare(a.GetCreatedUnixNano(), b.GetCreatedUnixNano()), cmp.Compare(a.GetId(), b.GetId()))
}

// ahead reports whether live task a is further along than b: a later state,
// or the same state and newer.
func ahead(a, b *api.Task) bool {
	if sa, sb := a.GetStatus().GetState(), b.GetStatus().GetState(); sa != sb {
		return sa > sb
	}
	return older(a, b) > 0
}
