package orchestrator

import "github.com/shoal-dev/shoal/api"

// Live reports whether t occupies its slot: it is wanted running (desired
// state RUNNING or earlier) and has not ended. Tasks that are still pending,
// with no node yet, are live too.
func Live(t *api.Task) bool {
	return t.GetDesiredState() <= api.TaskState_RUNNING && !t.GetStatus().GetState().Terminal()
}
