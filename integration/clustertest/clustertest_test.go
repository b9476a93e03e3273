package clustertest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// These tests drive the helpers with fakeshoal, a stand-in for the shoal
// binary that only answers on its socket: they test the plumbing, not shoal.

func TestDaemonRunsOnItsTestHostAndAnswersItsCLI(t *testing.T) {
	bin := fakeShoal(t)
	lan := testhost.NewLAN(t)
	h := lan.AddHost(t, "node-01")

	d := clustertest.StartDaemon(t, bin, h, "node-01", "--listen-addr", h.IP+":2377")

	wantArgs := []string{"daemon", "--data-dir", d.DataDir, "-H", d.Socket, "--hostname", "node-01", "--listen-addr", h.IP + ":2377"}
	if strings.Join(d.Args, " ") != strings.Join(wantArgs, " ") {
		t.Errorf("daemon args = %q, want %q", d.Args, wantArgs)
	}
	out := d.MustCLI(t, "node", "ls")
	if want := fmt.Sprintf("hostname=node-01 pid=%d netns=net:[%d] starts=1 args=node ls", d.PID(), inode(t, h.NSPath())); strings.TrimSpace(out) != want {
		t.Errorf("the daemon answered %q, want %q (same process, in the host's netns)", out, want)
	}
}

func TestDaemonWithoutHostRunsInTheRootNamespace(t *testing.T) {
	bin := fakeShoal(t)
	d := clustertest.StartDaemon(t, bin, nil, "solo")
	if out, want := d.MustCLI(t, "info"), fmt.Sprintf("netns=net:[%d]", inode(t, "/proc/self/ns/net")); !strings.Contains(out, want) {
		t.Errorf("the daemon answered %q, want it to contain %q", out, want)
	}
}

func TestKillRestartAndStopKeepTheDataDirAndSocket(t *testing.T) {
	bin := fakeShoal(t)
	lan := testhost.NewLAN(t)
	d := clustertest.StartDaemon(t, bin, lan.AddHost(t, "node-01"), "node-01")
	firstPID := d.PID()

	d.Kill(t)
	if d.Running() {
		t.Fatal("Running() after Kill")
	}
	if out, err := d.CLI("info"); err == nil {
		t.Fatalf("the CLI still reaches a killed daemon: %s", out)
	} else if !strings.Contains(err.Error(), "on node-01: shoal info: ") || !strings.Contains(err.Error(), "cannot reach the daemon") {
		t.Errorf("the CLI error should say what ran and include its output; got: %v", err)
	}

	d.Restart(t)
	out := d.MustCLI(t, "info")
	if d.PID() == firstPID || !strings.Contains(out, fmt.Sprintf("pid=%d ", d.PID())) {
		t.Errorf("after Restart the daemon should be a new process, pid %d; it answered %q", d.PID(), out)
	}
	if !strings.Contains(out, "starts=2") {
		t.Errorf("Restart should reuse the data dir (starts=2); the daemon answered %q", out)
	}

	d.Stop(t)
	if d.Running() {
		t.Fatal("Running() after Stop")
	}
	if _, err := os.Stat(d.SocketPath()); !os.IsNotExist(err) {
		t.Errorf("after a clean stop the socket should be gone (stat: %v); so SIGKILL was needed", err)
	}
	log := d.LogTail(100)
	for _, want := range []string{"start #1", "signal: killed", "start #2", "SIGTERM, shutting down", "exit status 0"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon log lacks %q:\n%s", want, log)
		}
	}
}

func TestCleanupKillsDaemonsAndRemovesTheirFiles(t *testing.T) {
	bin := fakeShoal(t)
	var d *clustertest.Daemon
	var ns string
	t.Run("inner", func(t *testing.T) {
		h := testhost.NewLAN(t).AddHost(t, "node-01")
		d = clustertest.StartDaemon(t, bin, h, "node-01")
		ns = h.NSPath()
	})
	if d.Running() {
		t.Errorf("daemon pid %d still runs after its test ended", d.PID())
	}
	if err := syscall.Kill(d.PID(), 0); err == nil {
		t.Errorf("process %d still exists after its test ended", d.PID())
	}
	for _, path := range []string{filepath.Dir(d.SocketPath()), ns} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s is still there after its test ended (stat: %v)", path, err)
		}
	}
}

func TestStartDaemonReportsADaemonThatExitsAndDumpsItsLogOnFailure(t *testing.T) {
	bin := fakeShoal(t)
	var rec *recorder
	t.Run("inner", func(t *testing.T) {
		rec = &recorder{TB: t}
		rec.run(func() { clustertest.StartDaemon(rec, bin, nil, "doomed", "--exit-at-once") })
	})
	// The inner test's cleanups have run by now.
	fatal, logs := rec.result()
	for _, want := range []string{"doomed did not come up", "exited before its socket answered", "exiting at once, as asked"} {
		if !strings.Contains(fatal, want) {
			t.Errorf("StartDaemon's failure should contain %q; it was:\n%s", want, fatal)
		}
	}
	if !strings.Contains(logs, "last 100 lines of doomed's log") || !strings.Contains(logs, "exit status 2") {
		t.Errorf("the cleanup of a failed test should log the daemon's log tail; it logged:\n%s", logs)
	}
}

func TestWaitForSaysWhatItWaitedForAndTheLastError(t *testing.T) {
	calls := 0
	clustertest.WaitFor(t, 5*time.Second, "the third call", func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})

	rec := &recorder{TB: t}
	start := time.Now()
	rec.run(func() {
		clustertest.WaitFor(rec, 300*time.Millisecond, "pigs to fly", func() error {
			return errors.New("pigs are still on the ground")
		})
	})
	fatal, _ := rec.result()
	if want := "timed out after 300ms waiting for pigs to fly: last error: pigs are still on the ground"; fatal != want {
		t.Errorf("WaitFor failed with %q, want %q", fatal, want)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("WaitFor with a 300ms timeout took %s", took)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends only
// its own goroutine, so that a test can check how a helper fails.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	fatal  string
	logs   strings.Builder
	failed bool
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	fmt.Fprintf(&r.logs, format+"\n", args...)
	r.mu.Unlock()
	r.TB.Logf(format, args...)
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// run calls f in a goroutine of its own and waits for it to return or to
// call Fatalf.
func (r *recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (r *recorder) result() (fatal, logs string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal, r.logs.String()
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Sys().(*syscall.Stat_t).Ino
}

var (
	fakeOnce sync.Once
	fakeDir  string
	fakePath string
	fakeErr  error
)

func fakeShoal(t *testing.T) string {
	t.Helper()
	testhost.Require(t) // the daemons run on test hosts, or as root
	fakeOnce.Do(func() {
		if fakeDir, fakeErr = os.MkdirTemp("", "fakeshoal-"); fakeErr == nil {
			fakePath, fakeErr = clustertest.GoBuild(fakeDir, "github.com/shoal-dev/shoal/integration/clustertest/internal/fakeshoal")
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakePath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeDir != "" {
		os.RemoveAll(filepath.Clean(fakeDir))
	}
	os.Exit(code)
}
