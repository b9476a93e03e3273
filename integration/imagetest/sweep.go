package imagetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/internal/mounts"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
)

const (
	// dirPattern names the directories of this package's containerds, short
	// enough for unix socket paths (fewer than 108 bytes).
	dirPattern = "shct-*"
	// staleAge is how old the lock of an unlocked directory must be before
	// Sweep removes it; a younger one may belong to a containerd being
	// started.
	staleAge = time.Minute
	// runcRoot is where containerd 1.6's runc shim keeps runc's state, one
	// directory per containerd namespace, unless a container says otherwise.
	runcRoot = "/run/containerd/runc"
	// taskDir is where a containerd keeps the bundles of its tasks, under
	// its --state, one directory per namespace.
	taskDir = "io.containerd.runtime.v2.task"
)

var sweepOnce sync.Once

// newContainerdDir makes a directory for a new containerd and takes its
// lock, which says "a live process owns this" for as long as the process
// lives.
func newContainerdDir() (string, *os.File, error) {
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("locking a containerd dir: %w", err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return dir, f, nil
}

// Sweep removes the containerd directories of test binaries that died
// without cleaning up: it kills the containerd, shims and containers they
// left, unmounts what is mounted under them and deletes them. It leaves
// alone the directories of live test binaries, also of other packages
// running at the same time, which hold their lock. The first start of a
// containerd in a process calls it.
func Sweep() error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		stale, err := isStale(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if stale {
			errs = append(errs, reap(dir))
		}
	}
	return errors.Join(errs...)
}

// isStale tells whether dir is an old containerd dir that no live process
// holds the lock of.
func isStale(dir string) (bool, error) {
	lockPath := filepath.Join(dir, "lock")
	info, err := os.Stat(lockPath)
	if os.IsNotExist(err) {
		info, err = os.Stat(dir) // died before it took its lock
	}
	if err != nil || time.Since(info.ModTime()) < staleAge {
		return false, nil
	}
	f, err := os.OpenFile(lockPath, os.O_WRONLY, 0)
	if os.IsNotExist(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	return true, nil // the lock goes with f; reap removes the file
}

// reap removes a containerd directory whose containerd is no longer
// running: it kills every process that names the directory on its command
// line (a containerd that escaped its parent's death, its shims), deletes
// the containers of the tasks left in its state, unmounts what is still
// mounted under it, and removes it.
func reap(dir string) error {
	var errs []error
	errs = append(errs, killNaming(dir))
	tasks := filepath.Join(dir, "state", taskDir)
	namespaces, _ := os.ReadDir(tasks)
	for _, ns := range namespaces {
		ids, _ := os.ReadDir(filepath.Join(tasks, ns.Name()))
		for _, id := range ids {
			errs = append(errs, deleteContainer(filepath.Join(tasks, ns.Name(), id.Name()), ns.Name(), id.Name()))
		}
		// runc keeps a directory per namespace, which it leaves behind;
		// one that still holds containers is another containerd's. So
		// does the namespace's cgroup; one still in use can't be removed.
		os.Remove(filepath.Join(runcRoot, ns.Name()))
		ctrdutil.RemoveCgroups(ns.Name())
	}
	errs = append(errs, mounts.UnmountUnder(dir))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killNaming SIGKILLs every process whose command line contains dir, and
// waits for them to go.
func killNaming(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := pidsNaming(dir)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v that name %s still run 10s after SIGKILL", pids, dir)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidsNaming(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// deleteContainer gets rid of a container whose shim is gone: runc kills
// its processes and removes its cgroups and state. If runc does not know
// it (a container with a runc root of its own), its init process is killed
// instead when /proc says it is that container's. The shim's socket goes
// too.
func deleteContainer(bundle, ns, id string) error {
	if addr, err := os.ReadFile(filepath.Join(bundle, "address")); err == nil {
		if sock, ok := strings.CutPrefix(strings.TrimSpace(string(addr)), "unix://"); ok && strings.HasPrefix(sock, "/run/containerd/s/") {
			os.Remove(sock)
		}
	}
	out, err := exec.Command("runc", "--root", filepath.Join(runcRoot, ns), "delete", "--force", id).CombinedOutput()
	if err == nil {
		return nil
	}
	runcErr := fmt.Errorf("runc delete %s/%s: %v: %s", ns, id, err, bytes.TrimSpace(out))
	data, err := os.ReadFile(filepath.Join(bundle, "init.pid"))
	if err != nil {
		return nil // never started
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return runcErr
	}
	cgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil // gone already
	}
	if !bytes.Contains(cgroup, []byte("/"+ns+"/"+id)) {
		return nil // the pid was reused
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("%v; and killing its init %d: %v", runcErr, pid, err)
	}
	return nil
}

// tail returns the last n lines of the file at p, or why it can't.
func tail(p string, n int) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	var lines []string
	for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
		// containerd says so for each of its plugins at every start.
		if !strings.Contains(line, `msg="loading plugin `) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func logTail(t testing.TB, what, p string) {
	t.Helper()
	t.Logf("imagetest: last %d lines of %s's log %s:\n%s", logTailLines, what, p, tail(p, logTailLines))
}
