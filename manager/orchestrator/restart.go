package orchestrator

import (
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Defaults, as in Docker Swarm.
const (
	// DefaultRestartDelay is the wait before a restart when a service has
	// no restart policy at all. A policy with DelayNs 0 restarts at once.
	DefaultRestartDelay = 5 * time.Second
	// DefaultHistoryLimit is how many old tasks a slot keeps when the
	// cluster settings do not say (Swarm's --task-history-limit).
	DefaultHistoryLimit = 5
)

// DefaultRestartPolicy is the policy of a service that has none: restart on
// any end, after 5 s, without limit.
func DefaultRestartPolicy() *api.RestartPolicy {
	return &api.RestartPolicy{
		Condition: api.RestartPolicy_ANY,
		DelayNs:   int64(DefaultRestartDelay),
	}
}

// policyOf is the service's restart policy, or the default one.
func policyOf(s *api.Service) *api.RestartPolicy {
	if p := s.GetSpec().GetRestart(); p != nil {
		return p
	}
	return DefaultRestartPolicy()
}

// endedByItself reports whether t reached an end state on its own: it
// completed, failed or was rejected. SHUTDOWN is what a task reaches when it
// is asked to stop, and ORPHANED what it reaches when its node is lost.
func endedByItself(t *api.Task) bool {
	switch t.GetStatus().GetState() {
	case api.TaskState_COMPLETE, api.TaskState_FAILED, api.TaskState_REJECTED:
		return true
	}
	return false
}

// succeeded reports whether t ran to completion with exit code 0: the one
// end that the ON_FAILURE condition does not restart.
func succeeded(t *api.Task) bool {
	st := t.GetStatus()
	return st.GetState() == api.TaskState_COMPLETE && st.GetExitCode() == 0
}

// endTime is when t reached its current state; the creation time stands in
// when the status carries no time.
func endTime(t *api.Task) time.Time {
	if ns := t.GetStatus().GetUnixNano(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Unix(0, t.GetCreatedUnixNano())
}

// restartAt decides whether last, the newest task of its slot, which ended
// while still wanted running, is to be replaced, and when: its end time
// plus the policy's delay. older are the slot's earlier tasks, oldest first.
//
// The decision depends only on last, the tasks before it and the policy, so
// it gives the same answer whenever it is asked: a slot that has given up
// stays given up, and a pending restart keeps its time.
func restartAt(p *api.RestartPolicy, last *api.Task, older []*api.Task) (time.Time, bool) {
	switch p.GetCondition() {
	case api.RestartPolicy_NONE:
		return time.Time{}, false
	case api.RestartPolicy_ON_FAILURE:
		if succeeded(last) {
			return time.Time{}, false
		}
	}
	if limit := p.GetMaxAttempts(); limit > 0 && attempts(p, last, older) >= limit {
		return time.Time{}, false
	}
	return endTime(last).Add(time.Duration(max(p.GetDelayNs(), 0))), true
}

// attempts counts the restarts already made in last's slot under the same
// service version: each earlier task that ended by itself was followed by a
// restart. With a window, only those that ended within the window before
// last ended count. A new service version starts the count afresh, as
// Swarm's does.
func attempts(p *api.RestartPolicy, last *api.Task, older []*api.Task) uint64 {
	var since time.Time
	if w := p.GetWindowNs(); w > 0 {
		since = endTime(last).Add(-time.Duration(w))
	}
	var n uint64
	for _, t := range older {
		if t.GetServiceVersion() != last.GetServiceVersion() || !endedByItself(t) {
			continue
		}
		if !since.IsZero() && !endTime(t).After(since) {
			continue
		}
		n++
	}
	return n
}
