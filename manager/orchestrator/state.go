package orchestrator

import "github.com/shoal-dev/shoal/api"

// Terminal reports whether s is an end state (COMPLETE and every state
// after it): a task in one never runs again and never changes state.
func Terminal(s api.TaskState) bool {
	return s >= api.TaskState_COMPLETE
}

// CanMoveTo reports whether a task in state from may move to state to: only
// forward, only to a known state, and never out of an end state. Staying in
// the same state is not a move (an agent may still re-report it with a new
// message; the FSM accepts that as an update).
func CanMoveTo(from, to api.TaskState) bool {
	if !known(from) || !known(to) || Terminal(from) {
		return false
	}
	return to > from
}

func known(s api.TaskState) bool {
	_, ok := api.TaskState_name[int32(s)]
	return ok
}

// Live reports whether t occupies its slot: it is wanted running (desired
// state RUNNING or earlier) and has not ended. Tasks that are still pending,
// with no node yet, are live too.
func Live(t *api.Task) bool {
	return t.GetDesiredState() <= api.TaskState_RUNNING && !Terminal(t.GetStatus().GetState())
}
