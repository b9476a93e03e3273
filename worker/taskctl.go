package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// controller drives one task. Its goroutine (TaskManager.control) looks at
// what is wanted of the task, does one step towards it, and looks again:
// run the task once, stop it, report it shut down, remove its container,
// or wait for news.
type controller struct {
	id   string
	wake chan struct{} // the task changed

	// Guarded by TaskManager.mu.
	task      *api.Task // latest assigned version; nil: nobody assigned it
	removed   bool      // no longer assigned: remove the container
	cancelRun context.CancelFunc
	ran       bool // the run step happened (it happens once)

	// Owned by the controller's goroutine.
	found       *Container // what the listing found, if anything
	running     bool       // a process of the task may be running
	containerID string     // carried on later statuses
	address     string
}

// runnable tells whether the managers want t run and have not seen it end.
func runnable(t *api.Task) bool {
	return t != nil && t.DesiredState == api.TaskState_RUNNING && !t.GetStatus().GetState().Terminal()
}

// update gives the controller a new version of its task. Called with
// TaskManager.mu held.
func (c *controller) update(t *api.Task) {
	if c.removed {
		return // removing; a task assigned again gets a new controller
	}
	old := c.task
	c.task = t
	if old.GetDesiredState() == t.DesiredState && old.GetStatus().GetState() == t.GetStatus().GetState() {
		return
	}
	if !runnable(t) && c.cancelRun != nil {
		c.cancelRun()
	}
	poke(c.wake)
}

// remove tells the controller that its task is no longer assigned. Called
// with TaskManager.mu held.
func (c *controller) remove() {
	if c.removed {
		return
	}
	c.removed = true
	if c.cancelRun != nil {
		c.cancelRun()
	}
	poke(c.wake)
}

// control is the controller's goroutine. It returns when ctx ends, leaving
// the container as it is, or when it has removed the container.
func (m *TaskManager) control(ctx context.Context, c *controller) {
	m.mu.Lock()
	t := c.task
	m.mu.Unlock()
	m.settle(c, t)

	backoff := m.retryMin
	for ctx.Err() == nil {
		m.mu.Lock()
		t, removed := c.task, c.removed
		var runCtx context.Context
		if !removed && !c.ran && runnable(t) && !m.status.state(c.id).Terminal() {
			runCtx, c.cancelRun = context.WithCancel(ctx)
			c.ran = true
		}
		m.mu.Unlock()

		var err error
		switch {
		case runCtx != nil:
			m.run(runCtx, c, t)
			m.mu.Lock()
			c.cancelRun()
			c.cancelRun = nil
			m.mu.Unlock()
			continue
		case removed:
			if err = m.retire(ctx, c, t); err == nil {
				m.retired(c)
				return
			}
		case c.running && (t.DesiredState > api.TaskState_RUNNING || m.status.state(c.id).Terminal()):
			// Not wanted, or ended as far as the managers know (they may
			// have replaced it): a second copy must not keep running.
			err = m.stop(ctx, c, t)
		case t.DesiredState > api.TaskState_RUNNING && !m.status.state(c.id).Terminal():
			m.report(c, api.TaskState_SHUTDOWN, "shutdown", nil)
			continue
		default:
			select {
			case <-ctx.Done():
			case <-c.wake:
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("task step failed; will retry", "task", c.id, "retry_in", backoff, "err", err)
			if !pause(ctx, backoff, nil) {
				return
			}
			backoff = min(2*backoff, m.retryMax)
			continue
		}
		backoff = m.retryMin
	}
}

// settle takes in what the listing found of the task: a running process to
// adopt, or the end of one that exited while the agent was away.
func (m *TaskManager) settle(c *controller, t *api.Task) {
	c.containerID = t.GetStatus().GetContainerId()
	c.address = t.GetStatus().GetAddress()
	f := c.found
	if f == nil {
		return
	}
	if c.containerID == "" {
		c.containerID = c.id // the executor keys containers by task ID
	}
	if f.Address != "" {
		c.address = f.Address
	}
	switch {
	case f.Running:
		c.running = true
	case t == nil:
	case f.ExitCode >= 0:
		m.reportExit(c, f.ExitCode)
	case m.status.state(c.id) >= api.TaskState_RUNNING:
		// Never started, or lost when the node or containerd restarted;
		// it was running, so it failed.
		m.report(c, api.TaskState_FAILED, "finished", fmt.Errorf("task: the container's process is gone (the node or containerd restarted)"))
	}
	// A container never started, of a task not yet running, is prepared
	// and started again as usual: Prepare and Start are idempotent.
}

// run takes the task from where it is to its end, once: adopt the process
// found running, or prepare, start and wait. It returns early, without
// reporting, when ctx ends (the task is no longer wanted, or the agent
// stops).
func (m *TaskManager) run(ctx context.Context, c *controller, t *api.Task) {
	switch {
	case c.running:
		m.log.Info("adopting running task", "task", c.id)
		m.report(c, api.TaskState_RUNNING, "started", nil)
	case m.status.state(c.id) >= api.TaskState_RUNNING:
		m.report(c, api.TaskState_FAILED, "finished", fmt.Errorf("task: no container for it on this node"))
		return
	default:
		if !m.start(ctx, c, t) {
			return
		}
	}
	code, err := m.exec.Wait(ctx, c.id)
	if err != nil {
		if ctx.Err() == nil {
			m.report(c, api.TaskState_FAILED, "finished", err)
		}
		return
	}
	c.running = false
	m.reportExit(c, code)
}

// start prepares and starts the task, reporting each step. It tells
// whether the task runs.
func (m *TaskManager) start(ctx context.Context, c *controller, t *api.Task) bool {
	m.report(c, api.TaskState_ACCEPTED, "accepted", nil)
	m.report(c, api.TaskState_PREPARING, "preparing", nil)
	if err := m.exec.Prepare(ctx, t, m.subnetNow()); err != nil {
		if ctx.Err() == nil {
			m.report(c, api.TaskState_REJECTED, "preparing", err)
		}
		return false
	}
	m.report(c, api.TaskState_TASK_READY, "prepared", nil)
	m.report(c, api.TaskState_STARTING, "starting", nil)
	c.running = true
	st, err := m.exec.Start(ctx, t)
	if err != nil {
		if ctx.Err() == nil {
			m.report(c, api.TaskState_FAILED, "starting", err)
		}
		return false
	}
	c.containerID, c.address = st.ContainerID, st.Address
	m.report(c, api.TaskState_RUNNING, "started", nil)
	return true
}

// stop stops the task's process, giving it its grace period.
func (m *TaskManager) stop(ctx context.Context, c *controller, t *api.Task) error {
	grace := stopGrace(t)
	m.log.Info("stopping task", "task", c.id, "grace", grace)
	if err := m.exec.Stop(ctx, c.id, grace); err != nil {
		return fmt.Errorf("stopping task %s: %w", c.id, err)
	}
	c.running = false
	return nil
}

// retire stops the task if it may run and removes its container.
func (m *TaskManager) retire(ctx context.Context, c *controller, t *api.Task) error {
	if c.running {
		if err := m.stop(ctx, c, t); err != nil {
			return err
		}
	}
	if err := m.exec.Remove(ctx, c.id); err != nil {
		return fmt.Errorf("removing task %s: %w", c.id, err)
	}
	m.log.Info("removed task", "task", c.id)
	return nil
}

func stopGrace(t *api.Task) time.Duration {
	if g := time.Duration(t.GetSpec().GetStopGracePeriodNs()); g > 0 {
		return g
	}
	return DefaultStopGrace
}

// reportExit reports how the task's process ended.
func (m *TaskManager) reportExit(c *controller, code int) {
	if code == 0 {
		m.report(c, api.TaskState_COMPLETE, "finished", nil)
		return
	}
	st := m.newStatus(c, api.TaskState_FAILED, "finished", fmt.Errorf("task: non-zero exit (%d)", code))
	st.ExitCode = int32(code)
	m.push(c, st)
}

// report queues the task's move to state, with err as its error if any.
func (m *TaskManager) report(c *controller, state api.TaskState, msg string, err error) {
	m.push(c, m.newStatus(c, state, msg, err))
}

func (m *TaskManager) newStatus(c *controller, state api.TaskState, msg string, err error) *api.TaskStatus {
	st := &api.TaskStatus{
		State:       state,
		UnixNano:    time.Now().UnixNano(),
		Message:     msg,
		ContainerId: c.containerID,
		Address:     c.address,
	}
	if err != nil {
		st.Err = err.Error()
	}
	return st
}

func (m *TaskManager) push(c *controller, st *api.TaskStatus) {
	if m.status.push(c.id, st) {
		m.log.Debug("task status", "task", c.id, "state", st.State, "message", st.Message, "err", st.Err)
	}
}
