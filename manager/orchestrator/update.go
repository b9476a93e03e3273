package orchestrator

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// DefaultUpdateMonitor is how long a replacement must run before a rolling
// update counts it as a success, as Swarm's --update-monitor.
const DefaultUpdateMonitor = 5 * time.Second

// DefaultUpdateConfig is the update config of a service that has none:
// one task at a time, no delay, pause on failure.
func DefaultUpdateConfig() *api.UpdateConfig {
	return &api.UpdateConfig{Parallelism: 1, MonitorNs: int64(DefaultUpdateMonitor)}
}

// Outdated reports whether t was made from another container spec than
// the service's: a rolling update replaces it.
func Outdated(s *api.Service, t *api.Task) bool {
	return !proto.Equal(t.GetSpec(), s.GetSpec().GetContainer())
}

// rollout is one pass's share of a service's rolling update: how many
// outdated tasks it may replace now. It keeps no memory between passes:
// everything is read from the update's own tasks (made at or after the
// version it started with, with the current spec: its "fresh" tasks) and
// their states. Versions, not clocks, tell them apart, so a new leader
// with another clock decides the same.
type rollout struct {
	budget int // outdated tasks this pass may replace; <0: all
}

// planRollout looks at every wanted slot and decides this pass's budget
// and the update's status. A pass replaces outdated tasks, lowest slot
// first, while fewer than Parallelism slots are busy: an old task stopped
// and not yet replaced (stop-first: the replacement waits for its end), a
// fresh task on its way to running, or one running for less than the
// delay. When a fresh task ends by itself before the update completes, the
// update pauses (failure action PAUSE) or rolls back (ROLLBACK, recorded
// here and carried out by the FSM); a rollback that fails pauses. An update
// or rollback completes once no outdated task is left and every fresh one
// has run for the monitor period.
//
// It returns nil when no update is under way, or when this pass ends it.
func (p *planner) planRollout(slots map[uint64][]*api.Task, replicas uint64) *rollout {
	s := p.v.Service
	st := s.GetUpdateStatus()
	if !st.GetState().InProgress() {
		return nil
	}
	rollingBack := st.GetState() == api.UpdateStatus_ROLLBACK_STARTED
	cfg := s.GetSpec().GetUpdate()
	if cfg == nil {
		cfg = DefaultUpdateConfig()
	}
	fresh := func(t *api.Task) bool { return t.GetServiceVersion() >= st.GetStartedVersion() && !Outdated(s, t) }

	if action := cfg.GetFailureAction(); action != api.UpdateConfig_CONTINUE {
		for _, t := range p.v.Tasks {
			if !fresh(t) || !endedByItself(t) {
				continue
			}
			switch {
			case rollingBack:
				// A rollback that fails too stops where it is.
				p.setUpdateStatus(api.UpdateStatus_ROLLBACK_PAUSED, fmt.Sprintf("rollback paused due to failure or early termination of task %s", t.GetId()))
			case action == api.UpdateConfig_ROLLBACK && s.GetPreviousSpec() != nil:
				// The FSM swaps the spec back as it records this.
				p.setUpdateStatus(api.UpdateStatus_ROLLBACK_STARTED, fmt.Sprintf("update rolled back due to failure or early termination of task %s", t.GetId()))
			default:
				p.setUpdateStatus(api.UpdateStatus_PAUSED, fmt.Sprintf("update paused due to failure or early termination of task %s", t.GetId()))
			}
			return nil
		}
	}

	now := p.v.Now
	delay, monitor := time.Duration(cfg.GetDelayNs()), time.Duration(cfg.GetMonitorNs())
	busy, outdated := 0, 0
	settled := true // every fresh task has run for the monitor period
	for slot := uint64(1); slot <= replicas; slot++ {
		ts := slots[slot]
		t := p.keeper(ts)
		switch {
		case t == nil:
			if p.replacing(ts) {
				busy++
				settled = false
			}
		case Outdated(s, t):
			outdated++
		case !fresh(t):
		case t.GetStatus().GetState() < api.TaskState_RUNNING:
			busy++
			settled = false
		default:
			running := endTime(t)
			if now.Before(running.Add(delay)) {
				busy++
				p.wake(running.Add(delay))
			}
			if now.Before(running.Add(monitor)) {
				settled = false
				p.wake(running.Add(monitor))
			}
		}
	}
	if outdated == 0 && settled {
		if rollingBack {
			p.setUpdateStatus(api.UpdateStatus_ROLLBACK_COMPLETED, "rollback completed")
		} else {
			p.setUpdateStatus(api.UpdateStatus_COMPLETED, "update completed")
		}
		return nil
	}
	if n := cfg.GetParallelism(); n == 0 || n >= replicas {
		return &rollout{budget: -1}
	}
	return &rollout{budget: max(int(cfg.GetParallelism())-busy, 0)}
}

// replacing reports whether the newest of a slot's tasks (oldest first) is
// an outdated task asked to stop: its replacement is on its way.
func (p *planner) replacing(ts []*api.Task) bool {
	if len(ts) == 0 {
		return false
	}
	t := ts[len(ts)-1]
	return Outdated(p.v.Service, t) && t.GetDesiredState() > api.TaskState_RUNNING
}

// stopping reports whether a slot is being replaced and its old task has
// not ended yet on a node that is up: the replacement waits for its end
// (stop-first).
func (p *planner) stopping(ts []*api.Task) bool {
	if !p.replacing(ts) {
		return false
	}
	t := ts[len(ts)-1]
	return !t.GetStatus().GetState().Terminal() && t.GetNodeId() != "" && !p.down(t)
}

// take reports whether one more outdated task is to be replaced in this
// pass, and counts it against the budget.
func (r *rollout) take() bool {
	switch {
	case r.budget < 0:
		return true
	case r.budget == 0:
		return false
	}
	r.budget--
	return true
}

func (p *planner) setUpdateStatus(state api.UpdateStatus_State, msg string) {
	st := proto.CloneOf(p.v.Service.GetUpdateStatus())
	st.State, st.Message, st.CompletedUnixNano = state, msg, p.v.Now.UnixNano()
	if state == api.UpdateStatus_ROLLBACK_STARTED {
		st.StartedUnixNano, st.CompletedUnixNano = p.v.Now.UnixNano(), 0
	}
	p.plan.UpdateStatus = st
}
