package api

import "strings"

// Name is a task state as Docker prints it in events and metrics: lower
// case, "ready" rather than the enum's TASK_READY.
func (s TaskState) Name() string {
	return strings.TrimPrefix(strings.ToLower(s.String()), "task_")
}
