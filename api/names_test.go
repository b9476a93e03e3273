package api

import "testing"

// Lifecycle is the task states in DESIGN.md's order; the last five are
// the end states.
var lifecycle = []TaskState{
	TaskState_NEW, TaskState_PENDING, TaskState_ASSIGNED, TaskState_ACCEPTED,
	TaskState_PREPARING, TaskState_TASK_READY, TaskState_STARTING, TaskState_RUNNING,
	TaskState_COMPLETE, TaskState_SHUTDOWN, TaskState_FAILED, TaskState_REJECTED,
	TaskState_ORPHANED,
}

const firstEnd = 8 // index of COMPLETE in lifecycle

func TestTerminal(t *testing.T) {
	if len(lifecycle) != len(TaskState_name) {
		t.Fatalf("lifecycle lists %d states, the API has %d", len(lifecycle), len(TaskState_name))
	}
	for i, s := range lifecycle {
		if got, want := s.Terminal(), i >= firstEnd; got != want {
			t.Errorf("%v.Terminal() = %v, want %v", s, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{TaskState_TASK_READY.Name(), "ready"},
		{NodeRole_MANAGER.Name(), "manager"},
		{NodeAvailability_DRAIN.Name(), "drain"},
		{NodeState_DISCONNECTED.Name(), "disconnected"},
		{Reachability_REACHABILITY_UNKNOWN.Name(), "unknown"},
		{Reachability_UNREACHABLE.Name(), "unreachable"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
