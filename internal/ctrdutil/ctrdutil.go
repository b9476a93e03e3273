// Package ctrdutil is what the integration tests and the playground both
// need of containerd beyond shoal's executor: a configuration for a private
// containerd, and the cleanup of a node's containerd namespace.
package ctrdutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

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

// Config is a containerd 1.6 configuration (version 2) that keeps
// everything under dir and loads only what shoal needs: no CRI, no
// snapshotters but overlayfs and native, no tracing.
func Config(dir, socket string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), socket, socket+".ttrpc", filepath.Join(dir, "opt"))
}

// DeleteNamespace empties a containerd namespace and deletes it: its
// containers (RemoveNamespace), its leases (a pull cut short leaves one),
// its images, whose content and snapshots containerd then collects, and
// the namespace itself. A namespace that does not exist is not an error.
func DeleteNamespace(socket, ns string) error {
	if err := RemoveNamespace(socket, ns); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), time.Minute)
	defer cancel()
	c, err := containerd.New(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := c.LeasesService().List(ctx)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := c.LeasesService().Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("lease %s: %w", l.ID, err)
		}
	}
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return err
	}
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete()) // collect once, after the last
		}
		if err := c.ImageService().Delete(ctx, img.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", img.Name, err)
		}
	}
	if err := c.NamespaceService().Delete(ctx, ns); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd namespace %s still holds something (see ctr -a %s -n %s containers ls, snapshots ls): %w", ns, socket, ns, err)
	}
	return nil
}

// Answers says whether a containerd answers at socket within two seconds.
func Answers(socket string) error {
	c, err := containerd.New(socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}
