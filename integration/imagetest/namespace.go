package imagetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	if len(errs) == 0 {
		errs = append(errs, RemoveCgroups(ns))
	}
	return errors.Join(errs...)
}

// RemoveCgroups removes the cgroups containerd made for a namespace's
// containers (/sys/fs/cgroup/*/NS and below), once they are empty: runc
// removes a container's own cgroup but leaves the namespace's.
func RemoveCgroups(ns string) error {
	// A container just killed may still be leaving its cgroup.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := removeCgroups(ns)
		if err == nil || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func removeCgroups(ns string) error {
	dirs, err := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", ns))
	if err != nil {
		return err
	}
	if d := filepath.Join("/sys/fs/cgroup", ns); isDir(d) {
		dirs = append(dirs, d)
	}
	var errs []error
	for _, d := range dirs {
		// Children first: a cgroup is removed with rmdir once empty.
		subs, _ := filepath.Glob(filepath.Join(d, "*"))
		for _, s := range subs {
			if isDir(s) {
				if err := syscall.Rmdir(s); err != nil && !errors.Is(err, syscall.ENOENT) {
					errs = append(errs, fmt.Errorf("rmdir %s: %w", s, err))
				}
			}
		}
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
