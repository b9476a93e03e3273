package imagetest

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Leftovers lists what a containerd namespace still holds of a node's
// tasks: containers, and snapshots that are not image layers.
func Leftovers(t testing.TB, socket, ns string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 30*time.Second)
	defer cancel()
	c, err := containerd.New(socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var left []string
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return nil, err
	}
	for _, ctr := range ctrs {
		left = append(left, "container "+ctr.ID())
	}
	err = c.SnapshotService("").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			left = append(left, "snapshot "+info.Name)
		}
		return nil
	})
	return left, err
}

// RemoveNamespace kills and deletes every container of a containerd
// namespace, with its snapshot: the cleanup of a test whose daemons were
// killed with tasks running.
func RemoveNamespace(socket, ns string) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
	defer cancel()
	c, err := containerd.New(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			task.Kill(ctx, syscall.SIGKILL)
			if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
				errs = append(errs, fmt.Errorf("task %s: %w", ctr.ID(), err))
			}
		}
		if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", ctr.ID(), err))
		}
	}
	return errors.Join(errs...)
}
