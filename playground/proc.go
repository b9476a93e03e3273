package playground

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A process of the playground: a daemon, the registry, the containerd. Each
// runs in a session of its own, so that it outlives the command that
// started it; its PID is in DIR/NAME.pid and its output in DIR/NAME.log.

func pidFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// LogFile is where a process of the playground writes its output.
func LogFile(dir, name string) string { return filepath.Join(dir, name+".log") }

// start runs argv in netns ("" for this machine's), in the background.
func start(dir, name, netns string, argv []string) (int, error) {
	if netns != "" {
		argv = append([]string{"nsenter", "--net=/var/run/netns/" + netns, "--"}, argv...)
	}
	logf, err := os.OpenFile(LogFile(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== playground: %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while this command still runs; otherwise init does.
	go cmd.Wait()
	// Start returns once the child has begun exec, but the kernel sets up
	// the new command line a moment later: running, which checks it, must
	// not see the old one or an empty one.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || bytes.HasPrefix(b, []byte(argv[0]+"\x00")) {
			break
		}
	}
	if err := os.WriteFile(pidFile(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	return pid, nil
}

// running returns the PID of the process NAME, or 0 when it does not run:
// the PID file's process must still have marker in its command line (PIDs
// are reused).
func running(dir, name, marker string) int {
	b, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(marker)) {
		return 0
	}
	return pid
}

// waitGone waits until none of pids runs, or timeout passes.
func waitGone(pids []int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return true
}

// alive: the process exists and is no zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "PID (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// stop sends SIGTERM, then SIGKILL after grace.
func stop(pid int, grace time.Duration) error {
	syscall.Kill(pid, syscall.SIGTERM)
	if waitGone([]int{pid}, grace) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if waitGone([]int{pid}, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("process %d outlived SIGKILL", pid)
}

// tail returns the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
