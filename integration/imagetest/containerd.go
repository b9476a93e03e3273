package imagetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/shoal-dev/shoal/internal/ctrdutil"
)

// Timings of the containerd helpers.
const (
	// ContainerdReadyTimeout bounds how long a start waits for containerd to
	// answer Version.
	ContainerdReadyTimeout = 30 * time.Second
	// containerdStopGrace is how long a stop waits after SIGTERM before
	// SIGKILL.
	containerdStopGrace = 10 * time.Second
	logTailLines        = 60
)

// StartContainerd starts a containerd of the test's own and returns its
// gRPC socket, a path such as /tmp/shct-123456/containerd.sock, which is
// what shoal's --containerd flag and containerd.New take. It returns once
// containerd answers Version. When the test ends the daemon is stopped, the
// containers it left are killed, and its directory is unmounted and
// removed; when the test failed, the tail of its log goes to t.Log first.
//
// Several shoal daemons may share it, each with its own containerd
// namespace. Tests that start many daemons should rather share one
// containerd per test binary: see SharedContainerd.
func StartContainerd(t testing.TB) string {
	t.Helper()
	RequireContainerd(t)
	start := time.Now()
	c, err := startContainerd()
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	t.Logf("imagetest: containerd at %s answered in %s", c.Socket, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, "containerd", c.logPath)
		}
		if err := c.stop(); err != nil {
			t.Errorf("imagetest: stopping containerd %s: %v", c.dir, err)
		}
	})
	return c.Socket
}

var shared struct {
	mu  sync.Mutex
	c   *containerdProc
	err error
}

// SharedContainerd returns the socket of one containerd for the whole test
// binary, started by the first call. It outlives the test that started it:
// the package's TestMain must stop it by calling Cleanup after the tests,
// e.g. through clustertest.Main:
//
//	func TestMain(m *testing.M) { clustertest.Main(m, imagetest.Cleanup) }
//
// A binary that forgets, or dies, leaves a containerd directory behind that
// the next start of any containerd here sweeps away, with whatever
// containers it still ran. Tests that share it must keep to containerd
// namespaces of their own. When a test that used it fails, the tail of its
// log goes to that test's t.Log.
func SharedContainerd(t testing.TB) string {
	t.Helper()
	RequireContainerd(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		start := time.Now()
		shared.c, shared.err = startContainerd()
		if shared.err == nil {
			t.Logf("imagetest: shared containerd at %s answered in %s",
				shared.c.Socket, time.Since(start).Round(time.Millisecond))
		}
	}
	if shared.err != nil {
		t.Fatalf("imagetest: shared containerd: %v", shared.err)
	}
	c := shared.c
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, "shared containerd", c.logPath)
		}
	})
	return c.Socket
}

// Cleanup stops the shared containerd (see SharedContainerd) and removes
// the helper binaries this package built. Call it once, after all tests.
func Cleanup() {
	shared.mu.Lock()
	if shared.c != nil {
		if err := shared.c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "imagetest: stopping the shared containerd: %v\n", err)
		}
		shared.c = nil
	}
	shared.mu.Unlock()
	removeTools()
}

// containerdProc is one containerd process and its directory:
//
//	/tmp/shct-NNN/lock            flock(2)ed while the process lives (see sweep)
//	/tmp/shct-NNN/config.toml
//	/tmp/shct-NNN/containerd.sock (and .ttrpc)
//	/tmp/shct-NNN/containerd.log  stdout and stderr
//	/tmp/shct-NNN/root, state     --root and --state
//	/tmp/shct-NNN/opt             containerd's opt plugin, instead of /opt/containerd
type containerdProc struct {
	Socket  string
	dir     string
	logPath string
	lock    *os.File
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startContainerd() (*containerdProc, error) {
	sweepOnce.Do(func() {
		if err := Sweep(); err != nil {
			fmt.Fprintf(os.Stderr, "imagetest: sweeping stale containerd dirs: %v\n", err)
		}
	})
	dir, lock, err := newContainerdDir()
	if err != nil {
		return nil, err
	}
	c := &containerdProc{
		Socket:  filepath.Join(dir, "containerd.sock"),
		dir:     dir,
		logPath: filepath.Join(dir, "containerd.log"),
		lock:    lock,
		exited:  make(chan struct{}),
	}
	if ttrpc := c.Socket + ".ttrpc"; len(ttrpc) >= 108 {
		err = fmt.Errorf("containerd's socket %s is %d bytes, too long for a unix socket (fewer than 108); set TMPDIR to a shorter dir", ttrpc, len(ttrpc))
	} else {
		err = c.start()
	}
	if err != nil {
		if stopErr := c.stop(); stopErr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, stopErr)
		}
		return nil, err
	}
	return c, nil
}

func (c *containerdProc) start() error {
	conf := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(conf, []byte(ctrdutil.Config(c.dir, c.Socket)), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	c.cmd = exec.Command("containerd", "--config", conf)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	// containerd dies with the test binary; its shims and containers do
	// not, and are left to Sweep.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		close(c.exited)
		return fmt.Errorf("starting containerd: %w", err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	return c.waitReady()
}

// waitReady polls Version until containerd answers, exits, or
// ContainerdReadyTimeout passes.
func (c *containerdProc) waitReady() error {
	client, err := containerd.New(c.Socket)
	if err != nil {
		return err
	}
	defer client.Close()
	deadline := time.Now().Add(ContainerdReadyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = client.Version(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("containerd exited (%v) before answering; its log:\n%s", c.cmd.ProcessState, tail(c.logPath, logTailLines))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for containerd at %s to answer Version: last error: %v; its log:\n%s",
				ContainerdReadyTimeout, c.Socket, err, tail(c.logPath, logTailLines))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends containerd (SIGTERM, then SIGKILL after containerdStopGrace),
// then kills what it left running, unmounts and removes its directory. It
// is idempotent.
func (c *containerdProc) stop() error {
	var errs []error
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(containerdStopGrace):
				c.cmd.Process.Kill()
				<-c.exited
				errs = append(errs, fmt.Errorf("containerd ignored SIGTERM for %s and was killed", containerdStopGrace))
			}
		}
	}
	if c.dir != "" {
		errs = append(errs, reap(c.dir))
		c.dir = ""
	}
	if c.lock != nil {
		c.lock.Close()
		c.lock = nil
	}
	return errors.Join(errs...)
}
