package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// fakeExec is an in-memory Executor: containers are records, a process
// runs until the test makes it exit (exit) or Stop or Remove kills it.
// Errors can be injected, calls can be held at a gate, and every call is
// logged as "op taskID" ("stop taskID grace" for Stop).
type fakeExec struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	log        []string
	addrs      int

	prepareErr map[string]error // returned by every Prepare of the task
	startErr   map[string]error
	failList   int // fail this many Containers calls
	failStop   int
	failRemove int

	listGate    chan struct{}            // if set, Containers waits for it to close
	prepareGate map[string]chan struct{} // Prepare of the task waits for it to close
	startGate   map[string]chan struct{}
}

type fakeContainer struct {
	started  bool
	running  bool
	exitCode int
	exited   chan struct{} // closed when the process exits
	address  string
}

var _ Executor = (*fakeExec)(nil)

func newFakeExec() *fakeExec {
	return &fakeExec{
		containers:  map[string]*fakeContainer{},
		prepareErr:  map[string]error{},
		startErr:    map[string]error{},
		prepareGate: map[string]chan struct{}{},
		startGate:   map[string]chan struct{}{},
	}
}

func (f *fakeExec) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

// calls is the call log so far.
func (f *fakeExec) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// called counts the logged calls that start with prefix.
func (f *fakeExec) called(prefix string) int {
	n := 0
	for _, c := range f.calls() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func gate(ctx context.Context, ch chan struct{}) error {
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeExec) Containers(ctx context.Context) ([]Container, error) {
	f.record("containers")
	f.mu.Lock()
	g := f.listGate
	f.mu.Unlock()
	if err := gate(ctx, g); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failList > 0 {
		f.failList--
		return nil, errors.New("containerd is not answering")
	}
	var out []Container
	for id, c := range f.containers {
		fc := Container{TaskID: id, Running: c.running, ExitCode: -1, Address: c.address}
		if c.started && !c.running {
			fc.ExitCode = c.exitCode
		}
		out = append(out, fc)
	}
	return out, nil
}

func (f *fakeExec) Prepare(ctx context.Context, t *api.Task, subnet string) error {
	f.record("prepare %s", t.Id)
	f.mu.Lock()
	g := f.prepareGate[t.Id]
	f.mu.Unlock()
	if err := gate(ctx, g); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.prepareErr[t.Id]; err != nil {
		return err
	}
	if _, ok := f.containers[t.Id]; !ok {
		f.containers[t.Id] = &fakeContainer{exited: make(chan struct{})}
	}
	return nil
}

func (f *fakeExec) Start(ctx context.Context, t *api.Task) (Started, error) {
	f.record("start %s", t.Id)
	f.mu.Lock()
	g := f.startGate[t.Id]
	f.mu.Unlock()
	if err := gate(ctx, g); err != nil {
		return Started{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startErr[t.Id]; err != nil {
		return Started{}, err
	}
	c, ok := f.containers[t.Id]
	switch {
	case !ok:
		return Started{}, fmt.Errorf("start %s: not prepared", t.Id)
	case c.running:
		return Started{ContainerID: "c-" + t.Id, Address: c.address}, nil
	case c.started:
		return Started{}, fmt.Errorf("start %s: ran already", t.Id)
	}
	f.addrs++
	c.started, c.running = true, true
	c.address = fmt.Sprintf("10.0.0.%d", f.addrs)
	return Started{ContainerID: "c-" + t.Id, Address: c.address}, nil
}

func (f *fakeExec) Wait(ctx context.Context, taskID string) (int, error) {
	f.record("wait %s", taskID)
	f.mu.Lock()
	c, ok := f.containers[taskID]
	if !ok || !c.started {
		f.mu.Unlock()
		return 0, fmt.Errorf("wait %s: no such task", taskID)
	}
	exited := c.exited
	f.mu.Unlock()
	select {
	case <-exited:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.exitCode, nil
}

func (f *fakeExec) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	f.record("stop %s %s", taskID, grace)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStop > 0 {
		f.failStop--
		return fmt.Errorf("stop %s: containerd is not answering", taskID)
	}
	f.exitLocked(taskID, 143)
	return nil
}

func (f *fakeExec) Remove(ctx context.Context, taskID string) error {
	f.record("remove %s", taskID)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRemove > 0 {
		f.failRemove--
		return fmt.Errorf("remove %s: containerd is not answering", taskID)
	}
	f.exitLocked(taskID, 137)
	delete(f.containers, taskID)
	return nil
}

// exit makes the task's process exit with code.
func (f *fakeExec) exit(taskID string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exitLocked(taskID, code)
}

func (f *fakeExec) exitLocked(taskID string, code int) {
	if c, ok := f.containers[taskID]; ok && c.running {
		c.running, c.exitCode = false, code
		close(c.exited)
	}
}

// addRunning puts a running container there, as if from before a restart.
func (f *fakeExec) addRunning(taskID, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[taskID] = &fakeContainer{started: true, running: true, address: addr, exited: make(chan struct{})}
}

// addExited puts a container whose process exited with code there.
func (f *fakeExec) addExited(taskID string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := &fakeContainer{started: true, exitCode: code, exited: make(chan struct{})}
	close(c.exited)
	f.containers[taskID] = c
}

// running tells whether the task's process runs.
func (f *fakeExec) running(taskID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[taskID]
	return ok && c.running
}

// exists tells whether the task has a container.
func (f *fakeExec) exists(taskID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.containers[taskID]
	return ok
}

// recorder is a Reporter that keeps what it was sent, and fails the
// first fail calls.
type recorder struct {
	mu    sync.Mutex
	fail  int
	tries int
	got   []*api.TaskStatusUpdate
}

func (r *recorder) report(ctx context.Context, updates []*api.TaskStatusUpdate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if r.fail > 0 {
		r.fail--
		return errors.New("no manager")
	}
	r.got = append(r.got, updates...)
	return nil
}

// statuses are the statuses delivered for the task, in order.
func (r *recorder) statuses(taskID string) []*api.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*api.TaskStatus
	for _, u := range r.got {
		if u.TaskId == taskID {
			out = append(out, u.Status)
		}
	}
	return out
}

// last is the latest status delivered for the task, or nil.
func (r *recorder) last(taskID string) *api.TaskStatus {
	s := r.statuses(taskID)
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}
