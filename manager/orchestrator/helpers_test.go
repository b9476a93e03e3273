package orchestrator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// t0 is the time every fixture is relative to.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const svcID = "svc1"

// service is a replicated nginx service with a restart policy (nil: none set).
func service(replicas uint64, policy *api.RestartPolicy) *api.Service {
	return &api.Service{
		Id:      svcID,
		Version: 1,
		Spec: &api.ServiceSpec{
			Name:      "web",
			Container: &api.ContainerSpec{Image: "nginx:latest", Args: []string{"-g", "daemon off;"}},
			Replicas:  replicas,
			Restart:   policy,
		},
	}
}

func policy(c api.RestartPolicy_Condition, delay time.Duration, maxAttempts uint64, window time.Duration) *api.RestartPolicy {
	return &api.RestartPolicy{Condition: c, DelayNs: int64(delay), MaxAttempts: maxAttempts, WindowNs: int64(window)}
}

// task is a task of svc1 on node n1, desired RUNNING, created and in its
// state at t0, unless opts say otherwise.
func task(id string, slot uint64, state api.TaskState, opts ...func(*api.Task)) *api.Task {
	t := &api.Task{
		Id:              id,
		ServiceId:       svcID,
		ServiceName:     "web",
		Slot:            slot,
		NodeId:          "n1",
		Spec:            proto.CloneOf(service(1, nil).Spec.Container),
		ServiceVersion:  1,
		DesiredState:    api.TaskState_RUNNING,
		Status:          &api.TaskStatus{State: state, UnixNano: t0.UnixNano()},
		CreatedUnixNano: t0.UnixNano(),
	}
	if state == api.TaskState_FAILED {
		t.Status.ExitCode = 1
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// created sets the creation time to t0+d, and the status time too unless
// ended is applied after it.
func created(d time.Duration) func(*api.Task) {
	return func(t *api.Task) {
		t.CreatedUnixNano = t0.Add(d).UnixNano()
		t.Status.UnixNano = t.CreatedUnixNano
	}
}

// ended sets the time the task reached its state to t0+d.
func ended(d time.Duration) func(*api.Task) {
	return func(t *api.Task) { t.Status.UnixNano = t0.Add(d).UnixNano() }
}

func exit(code int32) func(*api.Task) {
	return func(t *api.Task) { t.Status.ExitCode = code }
}

func on(node string) func(*api.Task) {
	return func(t *api.Task) { t.NodeId = node }
}

func desired(s api.TaskState) func(*api.Task) {
	return func(t *api.Task) { t.DesiredState = s }
}

func version(v uint64) func(*api.Task) {
	return func(t *api.Task) { t.ServiceVersion = v }
}

// running is n RUNNING tasks in slots 1..n, IDs t1..tn.
func running(n int) []*api.Task {
	var ts []*api.Task
	for i := 1; i <= n; i++ {
		ts = append(ts, task(fmt.Sprintf("t%d", i), uint64(i), api.TaskState_RUNNING))
	}
	return ts
}

// ids hands out new1, new2, ... as a fresh newID function.
func ids() func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("new%d", n)
	}
}

// downNodes is a NodeDown for the named nodes.
func downNodes(names ...string) func(string) bool {
	return func(id string) bool { return slices.Contains(names, id) }
}

// outcome is a plan reduced to what the tables compare.
type outcome struct {
	create   []uint64 // slots of new tasks, in plan order
	shutdown []string // task IDs moved to desired SHUTDOWN, in plan order
	delete   []string
	wake     time.Time
}

func outcomeOf(p Plan) outcome {
	var o outcome
	for _, t := range p.Create {
		o.create = append(o.create, t.Slot)
	}
	for _, d := range p.Desired {
		if d.State != api.TaskState_SHUTDOWN {
			panic(fmt.Sprintf("desired state %v for %s", d.State, d.TaskId))
		}
		o.shutdown = append(o.shutdown, d.TaskId)
	}
	o.delete = p.Delete
	o.wake = p.Wake
	return o
}

func checkOutcome(t *testing.T, got Plan, want outcome) {
	t.Helper()
	g := outcomeOf(got)
	if !slices.Equal(g.create, want.create) {
		t.Errorf("created tasks in slots %v, want %v", g.create, want.create)
	}
	if !slices.Equal(g.shutdown, want.shutdown) {
		t.Errorf("desired SHUTDOWN for %v, want %v", g.shutdown, want.shutdown)
	}
	if !slices.Equal(g.delete, want.delete) {
		t.Errorf("deleted %v, want %v", g.delete, want.delete)
	}
	if !g.wake.Equal(want.wake) {
		t.Errorf("wake at %v, want %v", g.wake, want.wake)
	}
}

// apply plays a plan onto a task list as the FSM would, with the agents
// doing nothing, and returns the new list.
func apply(tasks []*api.Task, p Plan) []*api.Task {
	byID := map[string]*api.Task{}
	var out []*api.Task
	for _, t := range tasks {
		if !slices.Contains(p.Delete, t.Id) {
			out = append(out, t)
			byID[t.Id] = t
		}
	}
	for _, d := range p.Desired {
		if t := byID[d.TaskId]; t != nil && d.State > t.DesiredState {
			t.DesiredState = d.State
		}
	}
	return append(out, p.Create...)
}

// liveSlots lists the slots that have a live task, in order.
func liveSlots(tasks []*api.Task) []uint64 {
	var out []uint64
	for _, t := range tasks {
		if Live(t) {
			out = append(out, t.Slot)
		}
	}
	slices.Sort(out)
	return out
}

// Empty reports whether the plan changes nothing (Wake aside).
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Desired) == 0 && len(p.Delete) == 0
}

// Batch is the plan as one Raft task batch, or nil if it changes nothing.
func (p Plan) Batch() *api.TaskBatch {
	if p.Empty() {
		return nil
	}
	return &api.TaskBatch{Put: p.Create, Delete: p.Delete, Desired: p.Desired}
}
