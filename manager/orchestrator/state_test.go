package orchestrator

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

// lifecycle is the task states in DESIGN.md's order; the last five are the
// end states.
var lifecycle = []api.TaskState{
	api.TaskState_NEW, api.TaskState_PENDING, api.TaskState_ASSIGNED, api.TaskState_ACCEPTED,
	api.TaskState_PREPARING, api.TaskState_TASK_READY, api.TaskState_STARTING, api.TaskState_RUNNING,
	api.TaskState_COMPLETE, api.TaskState_SHUTDOWN, api.TaskState_FAILED, api.TaskState_REJECTED,
	api.TaskState_ORPHANED,
}

const firstEnd = 8 // index of COMPLETE in lifecycle

func TestTerminal(t *testing.T) {
	if len(lifecycle) != len(api.TaskState_name) {
		t.Fatalf("lifecycle lists %d states, the API has %d", len(lifecycle), len(api.TaskState_name))
	}
	for i, s := range lifecycle {
		if got, want := Terminal(s), i >= firstEnd; got != want {
			t.Errorf("Terminal(%v) = %v, want %v", s, got, want)
		}
	}
}

// TestCanMoveTo checks every pair of states, and unknown states, against
// the rule: forward along the lifecycle, never out of an end state.
func TestCanMoveTo(t *testing.T) {
	for i, from := range lifecycle {
		for j, to := range lifecycle {
			want := i < firstEnd && j > i
			if got := CanMoveTo(from, to); got != want {
				t.Errorf("CanMoveTo(%v, %v) = %v, want %v", from, to, got, want)
			}
		}
	}
	unknown := api.TaskState(99)
	for _, s := range lifecycle {
		if CanMoveTo(s, unknown) || CanMoveTo(unknown, s) {
			t.Errorf("a move between %v and unknown state 99 is allowed", s)
		}
	}
}

func TestLive(t *testing.T) {
	tests := []struct {
		name    string
		state   api.TaskState
		desired api.TaskState
		want    bool
	}{
		{"pending", api.TaskState_PENDING, api.TaskState_RUNNING, true},
		{"running", api.TaskState_RUNNING, api.TaskState_RUNNING, true},
		{"running, asked to stop", api.TaskState_RUNNING, api.TaskState_SHUTDOWN, false},
		{"pending, asked to stop", api.TaskState_PENDING, api.TaskState_SHUTDOWN, false},
		{"failed", api.TaskState_FAILED, api.TaskState_RUNNING, false},
		{"complete", api.TaskState_COMPLETE, api.TaskState_RUNNING, false},
		{"shut down", api.TaskState_SHUTDOWN, api.TaskState_SHUTDOWN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := task("a", 1, tt.state, desired(tt.desired))
			if got := Live(tk); got != tt.want {
				t.Errorf("Live = %v, want %v", got, tt.want)
			}
		})
	}
}
