package orchestrator

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

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
