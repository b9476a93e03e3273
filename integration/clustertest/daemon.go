package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/internal/mounts"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// Timings of the daemon helpers. They are generous: CI is a 2-core machine
// that may run several packages' daemons at once.
const (
	// ReadyTimeout bounds how long StartDaemon and Restart wait for the
	// control socket to answer.
	ReadyTimeout = 60 * time.Second
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
	StopGrace = 20 * time.Second
	// CLITimeout bounds one CLI call, so that a hang fails the call rather
	// than the whole test binary.
	CLITimeout = 2 * time.Minute
	// logTailLines is how much of each daemon's log a failed test shows.
	logTailLines = 100
)

// Daemon is one `shoal daemon` process that a test started, and that it can
// kill, stop and restart on the same data directory.
type Daemon struct {
	// Name is the daemon's --hostname and names its files.
	Name string
	// Host is the test host it runs on; nil means the root namespace.
	Host *testhost.Host
	// Bin is the shoal binary.
	Bin string
	// DataDir is the daemon's --data-dir.
	DataDir string
	// Socket is the control socket as -H takes it: unix:///tmp/....sock.
	Socket string
	// Args are the daemon's arguments after Bin, starting with "daemon".
	Args []string
	// LogPath is the file that takes the daemon's stdout and stderr, over
	// all its restarts.
	LogPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	starts int
}

// StartDaemon starts `bin daemon` on h (through nsenter) or, when h is nil,
// in the root namespace:
//
//	bin daemon --data-dir <dir>/<name> -H unix://<dir>/<name>.sock --hostname <name> <extraArgs>
//
// where <dir> is a short temp dir of the test's own. It returns once the
// control socket answers `version` (or `info`), and registers with t.Cleanup
// the killing of the daemon and, when the test failed, the logging of its
// log's tail.
func StartDaemon(t testing.TB, bin string, h *testhost.Host, name string, extraArgs ...string) *Daemon {
	t.Helper()
	dir := testDir(t)
	sock := filepath.Join(dir, name+".sock")
	if len(sock) >= 108 {
		t.Fatalf("clustertest: socket path %s is %d bytes; unix sockets allow fewer than 108", sock, len(sock))
	}
	d := &Daemon{
		Name:    name,
		Host:    h,
		Bin:     bin,
		DataDir: filepath.Join(dir, name),
		Socket:  "unix://" + sock,
		LogPath: filepath.Join(dir, name+".log"),
	}
	d.Args = append([]string{"daemon", "--data-dir", d.DataDir, "-H", d.Socket, "--hostname", name}, extraArgs...)
	t.Cleanup(func() {
		if err := d.kill(); err != nil {
			t.Errorf("clustertest: %v", err)
		}
		if t.Failed() {
			t.Logf("clustertest: last %d lines of %s's log (%s):\n%s", logTailLines, d, d.LogPath, d.LogTail(logTailLines))
		}
	})
	d.start(t)
	return d
}

func (d *Daemon) String() string {
	if d.Host == nil {
		return d.Name
	}
	return fmt.Sprintf("%s(%s)", d.Name, d.Host.IP)
}

// SocketPath is the control socket's file.
func (d *Daemon) SocketPath() string { return strings.TrimPrefix(d.Socket, "unix://") }

// PID is the daemon's process ID, or 0 if it never started.
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Running tells whether the daemon's process is alive.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running()
}

func (d *Daemon) running() bool {
	if d.exited == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL, as a crash or a power cut would, and waits for the
// process to exit. Killing a daemon that is not running does nothing.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	if err := d.kill(); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	t.Logf("clustertest: killed %s", d)
}

// Stop sends SIGTERM and waits up to StopGrace for the daemon to exit, then
// sends SIGKILL. Stopping a daemon that is not running does nothing.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	exited := d.signal(syscall.SIGTERM)
	select {
	case <-exited:
		t.Logf("clustertest: stopped %s", d)
		return
	case <-time.After(StopGrace):
	}
	t.Logf("clustertest: %s still runs %s after SIGTERM; sending SIGKILL", d, StopGrace)
	if err := d.kill(); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
}

// Restart starts the daemon again, with the same data directory and socket,
// and waits until it answers. It runs d.Args, so a test may change them
// first (to add --force-new-cluster, say). The daemon must not be running:
// Kill or Stop it first.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if d.Running() {
		t.Fatalf("clustertest: Restart(%s): it still runs as pid %d; Kill or Stop it first", d, d.PID())
	}
	d.start(t)
}

// CLI runs `shoal -H <socket> args...` in the root namespace (a unix socket
// reaches a daemon in any network namespace) and returns its combined
// output. The error says what ran and includes the output.
func (d *Daemon) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CLITimeout)
	defer cancel()
	return d.cli(ctx, args...)
}

// MustCLI is CLI that fails the test on error.
func (d *Daemon) MustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.CLI(args...)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	return out
}

func (d *Daemon) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.Bin, append([]string{"-H", d.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
	}
	if err != nil {
		return string(out), fmt.Errorf("on %s: shoal %s: %w\n%s", d.Name, strings.Join(args, " "), err, strings.TrimRight(string(out), "\n"))
	}
	return string(out), nil
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before these)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// start runs the daemon process and waits until its socket answers.
func (d *Daemon) start(t testing.TB) {
	t.Helper()
	log, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}

	var cmd *exec.Cmd
	if d.Host != nil {
		cmd = d.Host.Command(d.Bin, d.Args...)
	} else {
		cmd = exec.Command(d.Bin, d.Args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	cmd.Stdout, cmd.Stderr = log, log

	d.mu.Lock()
	d.starts++
	fmt.Fprintf(log, "==== clustertest: start #%d of %s at %s: %s\n", d.starts, d,
		time.Now().Format("15:04:05.000"), strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		log.Close()
		t.Fatalf("clustertest: starting %s: %v", d, err)
	}
	exited := make(chan struct{})
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(log, "==== clustertest: %s exited at %s: %v\n", d, time.Now().Format("15:04:05.000"), exitStatus(err))
		log.Close()
		close(exited)
	}()

	start := time.Now()
	if err := d.waitReady(exited); err != nil {
		t.Fatalf("clustertest: %s did not come up: %v\nlast %d lines of its log (%s):\n%s",
			d, err, logTailLines, d.LogPath, d.LogTail(logTailLines))
	}
	t.Logf("clustertest: %s up as pid %d in %s", d, cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
}

// waitReady polls until the control socket accepts connections and
// `version` (or else `info`) succeeds through it.
func (d *Daemon) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(ReadyTimeout)
	var last error
	for {
		select {
		case <-exited:
			return fmt.Errorf("it exited before its socket answered (last error: %v)", last)
		default:
		}
		if last = d.probe(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s to answer: last error: %v", ReadyTimeout, d.Socket, last)
		}
		time.Sleep(PollInterval)
	}
}

func (d *Daemon) probe() error {
	conn, err := net.DialTimeout("unix", d.SocketPath(), time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = d.cli(ctx, "version")
	if err == nil {
		return nil
	}
	if _, err2 := d.cli(ctx, "info"); err2 == nil {
		return nil
	}
	return err
}

// signal sends sig to the daemon if it runs, and returns a channel closed
// when it has exited (closed already if it was not running).
func (d *Daemon) signal(sig syscall.Signal) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running() {
		done := make(chan struct{})
		close(done)
		return done
	}
	d.cmd.Process.Signal(sig)
	return d.exited
}

// kill sends SIGKILL and waits for the exit.
func (d *Daemon) kill() error {
	select {
	case <-d.signal(syscall.SIGKILL):
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still runs 10s after SIGKILL", d, d.PID())
	}
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ProcessState.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Each test's daemons share one short directory: unix socket paths must stay
// under 108 bytes, which t.TempDir's long names can break.
var (
	dirsMu sync.Mutex
	dirs   = map[testing.TB]string{}
)

// testDir returns t's directory for daemon files, making it on first use
// and registering its removal. With SHOAL_KEEP_TEST_DIRS=1 the directory of
// a failed test stays, for reading logs and data afterwards.
func testDir(t testing.TB) string {
	t.Helper()
	dirsMu.Lock()
	defer dirsMu.Unlock()
	if dir, ok := dirs[t]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("/tmp", "shoal-ct-")
	if err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	dirs[t] = dir
	t.Cleanup(func() {
		dirsMu.Lock()
		delete(dirs, t)
		dirsMu.Unlock()
		if t.Failed() && os.Getenv("SHOAL_KEEP_TEST_DIRS") == "1" {
			t.Logf("clustertest: kept %s (SHOAL_KEEP_TEST_DIRS=1)", dir)
			return
		}
		// A daemon killed with tasks running leaves their network
		// namespaces mounted below its data dir.
		if err := mounts.UnmountUnder(dir); err != nil {
			t.Errorf("clustertest: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("clustertest: %v", err)
		}
	})
	return dir
}
