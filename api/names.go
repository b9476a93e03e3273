package api

import "strings"

// The names below are the enums as Docker prints them in its API, events
// and metrics: lower case, "ready" rather than the enum's TASK_READY.

// Name is a task state's name: "running", "ready", ...
func (s TaskState) Name() string {
	return strings.TrimPrefix(strings.ToLower(s.String()), "task_")
}

// Terminal reports whether s is an end state (COMPLETE and every state
// after it): a task in one never runs again and never changes state.
func (s TaskState) Terminal() bool { return s >= TaskState_COMPLETE }

// Name is "worker" or "manager".
func (r NodeRole) Name() string { return strings.ToLower(r.String()) }

// Name is "active", "pause" or "drain".
func (a NodeAvailability) Name() string { return strings.ToLower(a.String()) }

// Name is "unknown", "down", "ready" or "disconnected".
func (s NodeState) Name() string { return strings.ToLower(s.String()) }

// Name is "unknown", "unreachable" or "reachable".
func (r Reachability) Name() string {
	return strings.TrimPrefix(strings.ToLower(r.String()), "reachability_")
}

// Name is "updating", "paused", "completed", "rollback_started",
// "rollback_paused" or "rollback_completed" ("" before any update), as
// Docker prints an update's state.
func (s UpdateStatus_State) Name() string {
	if s == UpdateStatus_NONE {
		return ""
	}
	return strings.ToLower(s.String())
}

// InProgress reports whether an update or a rollback is under way.
func (s UpdateStatus_State) InProgress() bool {
	return s == UpdateStatus_UPDATING || s == UpdateStatus_ROLLBACK_STARTED
}

// Paused reports whether an update or a rollback paused after a failure.
func (s UpdateStatus_State) Paused() bool {
	return s == UpdateStatus_PAUSED || s == UpdateStatus_ROLLBACK_PAUSED
}

// Completed reports whether an update or a rollback completed.
func (s UpdateStatus_State) Completed() bool {
	return s == UpdateStatus_COMPLETED || s == UpdateStatus_ROLLBACK_COMPLETED
}

// Name is "pause", "continue" or "rollback", as Docker's --update-failure-action.
func (a UpdateConfig_FailureAction) Name() string { return strings.ToLower(a.String()) }

// PortsIn returns the ports published in mode.
func PortsIn(ports []*PortConfig, mode PortConfig_PublishMode) []*PortConfig {
	var out []*PortConfig
	for _, p := range ports {
		if p.GetMode() == mode {
			out = append(out, p)
		}
	}
	return out
}
