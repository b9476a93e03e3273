package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/worker"
	"github.com/shoal-dev/shoal/worker/containerd"
)

// lazyExecutor connects to containerd on first use and again after a
// failure, so a node whose containerd is not up yet still joins and holds
// its session; its tasks fail with the reason until containerd answers.
type lazyExecutor struct {
	cfg  containerd.Config
	mu   sync.Mutex
	exec *containerd.Executor
}

func (l *lazyExecutor) get(ctx context.Context) (*containerd.Executor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exec != nil {
		return l.exec, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e, err := containerd.New(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	l.exec = e
	return e, nil
}

func (l *lazyExecutor) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exec != nil {
		l.exec.Close()
		l.exec = nil
	}
}

func (l *lazyExecutor) Containers(ctx context.Context) ([]worker.Container, error) {
	e, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return e.Containers(ctx)
}

func (l *lazyExecutor) Prepare(ctx context.Context, t *api.Task, subnet string) error {
	e, err := l.get(ctx)
	if err != nil {
		return err
	}
	return e.Prepare(ctx, t, subnet)
}

func (l *lazyExecutor) Start(ctx context.Context, t *api.Task) (worker.Started, error) {
	e, err := l.get(ctx)
	if err != nil {
		return worker.Started{}, err
	}
	return e.Start(ctx, t)
}

func (l *lazyExecutor) Wait(ctx context.Context, taskID string) (int, error) {
	e, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	return e.Wait(ctx, taskID)
}

func (l *lazyExecutor) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	e, err := l.get(ctx)
	if err != nil {
		return err
	}
	return e.Stop(ctx, taskID, grace)
}

func (l *lazyExecutor) Remove(ctx context.Context, taskID string) error {
	e, err := l.get(ctx)
	if err != nil {
		return err
	}
	return e.Remove(ctx, taskID)
}
