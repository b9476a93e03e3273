package scale

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/worker"
)

// fakeExec is an in-memory worker.Executor: Prepare and Start return at
// once, and a started task "runs" until Stop, Remove or the caller's
// context ends it. Nothing is pulled; the image is never looked at.
type fakeExec struct {
	mu         sync.Mutex
	containers map[string]*fakeContainer
	running    int // containers started and not stopped
}

type fakeContainer struct {
	serviceID string
	started   bool
	running   bool
	exitCode  int
	exited    chan struct{} // closed when a started process ends
}

var _ worker.Executor = (*fakeExec)(nil)

func newFakeExec() *fakeExec { return &fakeExec{containers: map[string]*fakeContainer{}} }

// Running is how many tasks run now.
func (f *fakeExec) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

func (f *fakeExec) Containers(context.Context) ([]worker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]worker.Container, 0, len(f.containers))
	for id, c := range f.containers {
		fc := worker.Container{TaskID: id, ServiceID: c.serviceID, Running: c.running, ExitCode: -1}
		if c.started && !c.running {
			fc.ExitCode = c.exitCode
		}
		out = append(out, fc)
	}
	return out, nil
}

func (f *fakeExec) Prepare(_ context.Context, t *api.Task, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[t.Id]; !ok {
		f.containers[t.Id] = &fakeContainer{serviceID: t.ServiceId}
	}
	return nil
}

func (f *fakeExec) Start(_ context.Context, t *api.Task) (worker.Started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[t.Id]
	if !ok {
		return worker.Started{}, fmt.Errorf("start task %s: no container (Prepare first)", t.Id)
	}
	if !c.running {
		c.started, c.running, c.exitCode = true, true, 0
		c.exited = make(chan struct{})
		f.running++
	}
	return worker.Started{ContainerID: t.Id}, nil
}

func (f *fakeExec) Wait(ctx context.Context, taskID string) (int, error) {
	f.mu.Lock()
	c, ok := f.containers[taskID]
	var exited chan struct{}
	if ok {
		exited = c.exited
	}
	f.mu.Unlock()
	if !ok || exited == nil {
		return 0, fmt.Errorf("wait for task %s: not started", taskID)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.exitCode, nil
}

func (f *fakeExec) Stop(_ context.Context, taskID string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[taskID]; ok {
		f.stopLocked(c)
	}
	return nil
}

func (f *fakeExec) Remove(_ context.Context, taskID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[taskID]; ok {
		f.stopLocked(c)
		delete(f.containers, taskID)
	}
	return nil
}

// stopLocked ends a running process as SIGTERM would. Called with mu held.
func (f *fakeExec) stopLocked(c *fakeContainer) {
	if !c.running {
		return
	}
	c.running, c.exitCode = false, 143
	close(c.exited)
	f.running--
}
