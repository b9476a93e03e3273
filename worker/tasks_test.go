package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

const subnet = "10.0.0.0/24"

// harness runs a TaskManager over a fake executor and a recording
// reporter, with short timings.
type harness struct {
	t      *testing.T
	exec   *fakeExec
	rec    *recorder
	m      *TaskManager
	cancel context.CancelFunc
	done   chan struct{}
}

// newHarness starts a task manager. setup, if not nil, runs before Run, to
// put containers in the fake or errors in place.
func newHarness(t *testing.T, setup func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, exec: newFakeExec(), rec: &recorder{}, done: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.m = NewTaskManager(h.exec, h.rec.report, log)
	h.m.retryMin, h.m.retryMax = 5*time.Millisecond, 20*time.Millisecond
	q := h.m.status
	q.every, q.retryMin, q.retryMax = 10*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond
	if setup != nil {
		setup(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		h.m.Run(ctx)
	}()
	t.Cleanup(h.stop)
	return h
}

// stop ends Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return within 5s of its context ending")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// poll calls cond until it returns nil, failing the test with cond's last
// error if that takes more than 5 s.
func poll(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func newTask(id string, desired, state api.TaskState) *api.Task {
	return &api.Task{
		Id:           id,
		ServiceId:    "svc1",
		ServiceName:  "web",
		Slot:         1,
		DesiredState: desired,
		Status:       &api.TaskStatus{State: state},
		Spec:         &api.ContainerSpec{Image: "nginx"},
	}
}

// waitState waits until the latest status delivered for the task is in
// state, and returns it.
func (h *harness) waitState(taskID string, state api.TaskState) *api.TaskStatus {
	h.t.Helper()
	var st *api.TaskStatus
	poll(h.t, fmt.Sprintf("task %s reported %s", taskID, state), func() error {
		st = h.rec.last(taskID)
		if st == nil || st.State != state {
			return fmt.Errorf("delivered %v", stateNames(h.rec.statuses(taskID)))
		}
		return nil
	})
	return st
}

// waitCall waits until the executor got the call.
func (h *harness) waitCall(call string) {
	h.t.Helper()
	poll(h.t, "executor call "+call, func() error {
		if !slices.Contains(h.exec.calls(), call) {
			return fmt.Errorf("calls so far: %q", h.exec.calls())
		}
		return nil
	})
}

// waitListed waits until Run has listed the containers.
func (h *harness) waitListed() {
	h.t.Helper()
	poll(h.t, "the container listing", func() error {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		if !h.m.listed {
			return errors.New("not listed yet")
		}
		return nil
	})
}

func stateNames(sts []*api.TaskStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.State.String())
	}
	return out
}

// checkForward checks that the delivered statuses only move forward, stop
// at a terminal state and carry their times.
func checkForward(t *testing.T, sts []*api.TaskStatus) {
	t.Helper()
	for i, s := range sts {
		if s.UnixNano == 0 {
			t.Errorf("status %s has no time", s.State)
		}
		if i == 0 {
			continue
		}
		prev := sts[i-1]
		if s.State <= prev.State || prev.State.Terminal() {
			t.Errorf("states did not move forward: %v", stateNames(sts))
		}
		if s.UnixNano < prev.UnixNano {
			t.Errorf("%s is older than %s", s.State, prev.State)
		}
	}
}

func TestTaskHappyPath(t *testing.T) {
	prepare, start := make(chan struct{}), make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.exec.prepareGate["t1"] = prepare
		h.exec.startGate["t1"] = start
	})
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)

	st := h.waitState("t1", api.TaskState_PREPARING)
	if st.Message != "preparing" {
		t.Errorf("PREPARING message = %q, want %q", st.Message, "preparing")
	}
	close(prepare)
	h.waitState("t1", api.TaskState_STARTING)
	close(start)
	st = h.waitState("t1", api.TaskState_RUNNING)
	if st.Message != "started" || st.ContainerId != "c-t1" || st.Address != "10.0.0.1" {
		t.Errorf("RUNNING status = %v, want message started, container c-t1, address 10.0.0.1", st)
	}

	h.exec.exit("t1", 0)
	st = h.waitState("t1", api.TaskState_COMPLETE)
	if st.Message != "finished" || st.ExitCode != 0 || st.Err != "" || st.ContainerId != "c-t1" {
		t.Errorf("COMPLETE status = %v, want message finished, no error, container c-t1", st)
	}
	checkForward(t, h.rec.statuses("t1"))
	if want := []string{"containers", "prepare t1", "start t1", "wait t1"}; !slices.Equal(h.exec.calls(), want) {
		t.Errorf("executor calls = %q, want %q", h.exec.calls(), want)
	}
	if !h.exec.exists("t1") {
		t.Error("the container of a task that ended was removed while the task is still assigned")
	}
}

func TestTaskExit(t *testing.T) {
	for _, tc := range []struct {
		code  int
		state api.TaskState
		err   string
	}{
		{0, api.TaskState_COMPLETE, ""},
		{3, api.TaskState_FAILED, "task: non-zero exit (3)"},
	} {
		t.Run(fmt.Sprint("exit ", tc.code), func(t *testing.T) {
			h := newHarness(t, nil)
			h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)
			h.waitState("t1", api.TaskState_RUNNING)
			h.exec.exit("t1", tc.code)
			st := h.waitState("t1", tc.state)
			if st.Err != tc.err || st.ExitCode != int32(tc.code) {
				t.Errorf("status = %v, want err %q and exit code %d", st, tc.err, tc.code)
			}
			checkForward(t, h.rec.statuses("t1"))
		})
	}
}

func TestTaskPrepareFails(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.prepareErr["t1"] = errors.New("No such image: x")
	})
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)
	st := h.waitState("t1", api.TaskState_REJECTED)
	if st.Err != "No such image: x" {
		t.Errorf("REJECTED err = %q, want %q", st.Err, "No such image: x")
	}
	checkForward(t, h.rec.statuses("t1"))
	if n := h.exec.called("start"); n != 0 {
		t.Errorf("a rejected task was started %d times", n)
	}
}

func TestTaskStartFails(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.startErr["t1"] = errors.New("network: no free address")
	})
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)
	st := h.waitState("t1", api.TaskState_FAILED)
	if st.Err != "network: no free address" {
		t.Errorf("FAILED err = %q, want the executor's error", st.Err)
	}
	// Start may have gone half-way: the process is stopped, for sure.
	h.waitCall("stop t1 10s")
}

func TestTaskDesiredShutdown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  string
	}{
		{"default grace", 0, "stop t1 10s"},
		{"spec grace", 3 * time.Second, "stop t1 3s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			t1 := newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)
			t1.Spec.StopGracePeriodNs = int64(tc.grace)
			h.m.Assign([]*api.Task{t1}, subnet)
			h.waitState("t1", api.TaskState_RUNNING)

			down := newTask("t1", api.TaskState_SHUTDOWN, api.TaskState_RUNNING)
			down.Spec.StopGracePeriodNs = int64(tc.grace)
			h.m.Assign([]*api.Task{down}, subnet)
			st := h.waitState("t1", api.TaskState_SHUTDOWN)
			if st.Message != "shutdown" || st.ContainerId != "c-t1" {
				t.Errorf("SHUTDOWN status = %v, want message shutdown, container c-t1", st)
			}
			if got := h.exec.calls(); !slices.Contains(got, tc.want) {
				t.Errorf("executor calls = %q, want %q", got, tc.want)
			}
			checkForward(t, h.rec.statuses("t1"))
			if !h.exec.exists("t1") {
				t.Error("the container was removed while the task is still assigned")
			}

			h.m.Assign(nil, subnet)
			h.waitCall("remove t1")
			if n := h.exec.called("stop"); n != 1 {
				t.Errorf("Stop called %d times, want once", n)
			}
		})
	}
}

func TestTaskShutdownNeverStarted(t *testing.T) {
	h := newHarness(t, nil)
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_SHUTDOWN, api.TaskState_ASSIGNED)}, subnet)
	h.waitState("t1", api.TaskState_SHUTDOWN)
	if n := h.exec.called("prepare") + h.exec.called("start"); n != 0 {
		t.Errorf("a task wanted shut down was prepared or started: %q", h.exec.calls())
	}
}

func TestTaskShutdownAfterEnd(t *testing.T) {
	h := newHarness(t, nil)
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)
	h.waitState("t1", api.TaskState_RUNNING)
	h.exec.exit("t1", 0)
	h.waitState("t1", api.TaskState_COMPLETE)

	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_SHUTDOWN, api.TaskState_COMPLETE)}, subnet)
	// A second task proves the manager went past the first assignment.
	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_SHUTDOWN, api.TaskState_COMPLETE),
		newTask("t2", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
	}, subnet)
	h.waitState("t2", api.TaskState_RUNNING)
	h.m.Assign([]*api.Task{newTask("t2", api.TaskState_RUNNING, api.TaskState_RUNNING)}, subnet)
	h.waitCall("remove t1")
	if st := h.rec.last("t1"); st.State != api.TaskState_COMPLETE {
		t.Errorf("a task that had ended was reported %s", st.State)
	}
	if n := h.exec.called("stop t1"); n != 0 {
		t.Errorf("a task that had ended was stopped %d times", n)
	}
}

func TestTaskRemovedFromSet(t *testing.T) {
	h := newHarness(t, nil)
	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
		newTask("t2", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
	}, subnet)
	h.waitState("t1", api.TaskState_RUNNING)
	h.waitState("t2", api.TaskState_RUNNING)
	h.exec.exit("t2", 0)
	h.waitState("t2", api.TaskState_COMPLETE)

	h.m.Assign(nil, subnet)
	h.waitCall("remove t1")
	h.waitCall("remove t2")
	calls := h.exec.calls()
	stop, remove := slices.Index(calls, "stop t1 10s"), slices.Index(calls, "remove t1")
	if stop < 0 || stop > remove {
		t.Errorf("executor calls = %q, want t1 stopped before it is removed", calls)
	}
	if slices.Contains(calls, "stop t2 10s") {
		t.Errorf("t2 had exited but was stopped: %q", calls)
	}
	if h.exec.exists("t1") || h.exec.exists("t2") {
		t.Error("containers left behind")
	}
	poll(t, "controllers gone", func() error {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		if n := len(h.m.ctls); n != 0 {
			return fmt.Errorf("%d controllers left", n)
		}
		return nil
	})
}

func TestTaskRemoveRetried(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.failStop, h.exec.failRemove = 1, 2
	})
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED)}, subnet)
	h.waitState("t1", api.TaskState_RUNNING)
	h.m.Assign(nil, subnet)
	poll(t, "t1 removed", func() error {
		if h.exec.exists("t1") {
			return fmt.Errorf("calls so far: %q", h.exec.calls())
		}
		return nil
	})
	if n := h.exec.called("remove t1"); n != 3 {
		t.Errorf("Remove called %d times, want 3 (two failures)", n)
	}
}

func TestRestartAdoption(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.addRunning("t1", "10.0.0.7") // assigned, running
		h.exec.addRunning("t2", "10.0.0.8") // not assigned any more
		h.exec.addExited("t3", 0)           // exited while the agent was away
		h.exec.addExited("t4", 2)
		h.exec.addRunning("t5", "10.0.0.9") // the manager never heard it ran
	})
	h.waitListed()
	if n := h.exec.called("stop") + h.exec.called("remove"); n != 0 {
		t.Fatalf("containers stopped or removed before any assignment: %q", h.exec.calls())
	}

	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_RUNNING, api.TaskState_RUNNING),
		newTask("t3", api.TaskState_RUNNING, api.TaskState_RUNNING),
		newTask("t4", api.TaskState_RUNNING, api.TaskState_RUNNING),
		newTask("t5", api.TaskState_RUNNING, api.TaskState_STARTING),
	}, subnet)
	h.waitCall("stop t2 10s")
	h.waitCall("remove t2")
	h.waitState("t3", api.TaskState_COMPLETE)
	if st := h.waitState("t4", api.TaskState_FAILED); st.Err != "task: non-zero exit (2)" || st.ExitCode != 2 {
		t.Errorf("t4 status = %v, want non-zero exit (2)", st)
	}
	if st := h.waitState("t5", api.TaskState_RUNNING); st.Address != "10.0.0.9" {
		t.Errorf("t5 RUNNING address = %q, want the adopted container's", st.Address)
	}
	h.waitCall("wait t1")
	h.waitCall("wait t5")
	if n := h.exec.called("prepare") + h.exec.called("start"); n != 0 {
		t.Errorf("tasks prepared or started again after a restart: %q", h.exec.calls())
	}
	if h.rec.last("t1") != nil {
		t.Errorf("t1 was running already and reported %v", h.rec.statuses("t1"))
	}

	h.exec.exit("t1", 0)
	h.waitState("t1", api.TaskState_COMPLETE)
}

func TestAssignBeforeListing(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(h *harness) {
		h.exec.listGate = release
		h.exec.addRunning("t1", "10.0.0.7")
		h.exec.addRunning("t2", "10.0.0.8")
	})
	h.waitCall("containers")
	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_RUNNING, api.TaskState_RUNNING),
		newTask("t3", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
	}, subnet)
	// The controllers act from goroutines of their own: that none exists
	// yet is what says the manager waits for its listing.
	h.m.mu.Lock()
	ctls := len(h.m.ctls)
	h.m.mu.Unlock()
	if ctls != 0 {
		t.Fatalf("the manager made %d controllers before its listing", ctls)
	}
	if got := h.exec.calls(); !slices.Equal(got, []string{"containers"}) {
		t.Fatalf("the manager acted before its listing: %q", got)
	}
	close(release)
	h.waitCall("remove t2")
	h.waitCall("wait t1")
	h.waitState("t3", api.TaskState_RUNNING)
	if n := h.exec.called("prepare t1") + h.exec.called("start t1"); n != 0 {
		t.Errorf("t1 started a second time: %q", h.exec.calls())
	}
	if !h.exec.running("t1") {
		t.Error("t1 does not run any more")
	}
}

func TestListingRetried(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.failList = 2
		h.exec.addRunning("t1", "10.0.0.7")
	})
	h.m.Assign([]*api.Task{newTask("t1", api.TaskState_RUNNING, api.TaskState_RUNNING)}, subnet)
	h.waitCall("wait t1")
	if n := h.exec.called("containers"); n != 3 {
		t.Errorf("Containers called %d times, want 3", n)
	}
	if n := h.exec.called("start"); n != 0 {
		t.Errorf("t1 started again: %q", h.exec.calls())
	}
}

func TestRestartWithoutManager(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.addRunning("t1", "10.0.0.7")
	})
	h.waitListed()
	h.stop()
	if got := h.exec.calls(); !slices.Equal(got, []string{"containers"}) {
		t.Errorf("executor calls = %q, want only the listing", got)
	}
	if !h.exec.running("t1") {
		t.Error("t1 stopped although no manager said so")
	}
}

func TestRestartLostProcess(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.exec.mu.Lock()
		h.exec.containers["t1"] = &fakeContainer{exited: make(chan struct{})} // created, never started
		h.exec.containers["t2"] = &fakeContainer{exited: make(chan struct{})}
		h.exec.mu.Unlock()
	})
	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_RUNNING, api.TaskState_RUNNING),
		newTask("t2", api.TaskState_RUNNING, api.TaskState_TASK_READY),
	}, subnet)
	if st := h.waitState("t1", api.TaskState_FAILED); st.Err == "" {
		t.Error("t1 failed without an error")
	}
	h.waitState("t2", api.TaskState_RUNNING)
}

func TestReporterFailure(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.rec.fail = 3 })
	h.m.Assign([]*api.Task{
		newTask("t1", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
		newTask("t2", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
	}, subnet)
	h.waitState("t1", api.TaskState_RUNNING)
	h.waitState("t2", api.TaskState_RUNNING)
	h.rec.mu.Lock()
	tries := h.rec.tries
	h.rec.mu.Unlock()
	if tries < 4 {
		t.Errorf("reporter called %d times, want the 3 failures and more", tries)
	}
	checkForward(t, h.rec.statuses("t1"))
	checkForward(t, h.rec.statuses("t2"))
}

func TestStopLeavesContainers(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newHarness(t, nil)
	var tasks []*api.Task
	for i := range 20 {
		tasks = append(tasks, newTask(fmt.Sprint("t", i), api.TaskState_RUNNING, api.TaskState_ASSIGNED))
	}
	h.m.Assign(tasks, subnet)
	for _, task := range tasks {
		h.waitState(task.Id, api.TaskState_RUNNING)
	}
	h.stop()
	for _, task := range tasks {
		if !h.exec.running(task.Id) {
			t.Errorf("%s stopped with the agent", task.Id)
		}
		// What was queued after the reporter stopped counts too.
		if s := h.m.status.state(task.Id); s != api.TaskState_RUNNING {
			t.Errorf("%s reported %s when the agent stopped", task.Id, s)
		}
	}
	if n := h.exec.called("stop") + h.exec.called("remove"); n != 0 {
		t.Errorf("executor calls on the way out: %q", h.exec.calls())
	}
	poll(t, "goroutines to end", func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}

func TestStatusQueue(t *testing.T) {
	q := newStatusQueue(nil, slog.Default())
	st := func(s api.TaskState) *api.TaskStatus { return &api.TaskStatus{State: s} }

	q.floor("t1", api.TaskState_ASSIGNED)
	if q.push("t1", st(api.TaskState_ASSIGNED)) {
		t.Error("a status the managers have already was queued")
	}
	q.push("t1", st(api.TaskState_PREPARING))
	q.push("t1", st(api.TaskState_RUNNING))
	if q.push("t1", st(api.TaskState_STARTING)) {
		t.Error("a status behind the queued one was queued")
	}
	q.push("t2", st(api.TaskState_ACCEPTED))

	batch := q.take(10)
	if len(batch) != 2 || batch[0].TaskId != "t1" || batch[0].Status.State != api.TaskState_RUNNING {
		t.Fatalf("take = %v, want t1 RUNNING then t2", batch)
	}
	// Sending failed; meanwhile t2 moved on.
	q.push("t2", st(api.TaskState_PREPARING))
	q.putBack(batch)
	batch = q.take(10)
	if len(batch) != 2 || batch[0].TaskId != "t1" || batch[1].Status.State != api.TaskState_PREPARING {
		t.Fatalf("after putBack take = %v, want t1 RUNNING then t2 PREPARING", batch)
	}

	q.push("t1", st(api.TaskState_COMPLETE))
	if q.push("t1", st(api.TaskState_FAILED)) {
		t.Error("a status after a terminal one was queued")
	}
	q.prune(func(id string) bool { return id == "t2" })
	if s := q.state("t1"); s != api.TaskState_NEW {
		t.Errorf("state of a pruned task = %s", s)
	}
}
