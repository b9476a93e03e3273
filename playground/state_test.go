package playground

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testhost"
)

func TestNewStateLaysOutManagersThenWorkers(t *testing.T) {
	s, err := newState("/tmp/pg", 3, 2, "/usr/bin/shoal", "/run/c.sock")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Nodes) != 5 {
		t.Fatalf("got %d nodes, want 5", len(s.Nodes))
	}
	for i, want := range []struct {
		name, ip string
		manager  bool
	}{
		{"node-01", "10.77.0.11", true}, {"node-02", "10.77.0.12", true}, {"node-03", "10.77.0.13", true},
		{"node-04", "10.77.0.14", false}, {"node-05", "10.77.0.15", false},
	} {
		n := s.Nodes[i]
		if n.Name != want.name || n.IP != want.ip || n.Manager != want.manager {
			t.Errorf("node %d: got %s %s manager=%v, want %s %s manager=%v", i, n.Name, n.IP, n.Manager, want.name, want.ip, want.manager)
		}
	}
	n := s.Nodes[1]
	args := strings.Join(n.Args, " ")
	for _, want := range []string{
		"/usr/bin/shoal daemon",
		"--data-dir /tmp/pg/node-02 ",
		"-H unix:///tmp/pg/node-02.sock",
		"--containerd-socket /run/c.sock",
		"--containerd-namespace shpg-node-02",
		"--registry-mirror http://10.77.0.1:5000",
		"--dashboard-addr 10.77.0.12:8080",
	} {
		if !strings.Contains(args+" ", want) {
			t.Errorf("node-02's daemon command line lacks %q: %s", want, args)
		}
	}
	if !strings.Contains(args+" ", daemonMarker(s, n)) {
		t.Errorf("the marker %q that finds the daemon's process is not in its command line %q", daemonMarker(s, n), args)
	}
	if got := n.Dashboard(); got != "http://10.77.0.12:8080/" {
		t.Errorf("dashboard: %s", got)
	}
}

func TestNewStateRefusesWhatCannotWork(t *testing.T) {
	for _, c := range []struct {
		managers, workers int
		dir, want         string
	}{
		{0, 1, "/tmp/pg", "at least one manager"},
		{1, -1, "/tmp/pg", "negative"},
		{100, 101, "/tmp/pg", "at most 200"},
		{1, 0, "/tmp/" + strings.Repeat("d", 90), "too long"},
	} {
		_, err := newState(c.dir, c.managers, c.workers, "shoal", "/run/c.sock")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d managers, %d workers, dir of %d bytes: got %v, want an error with %q", c.managers, c.workers, len(c.dir), err, c.want)
		}
	}
}

func TestStateRoundTripsAndFindsNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		testhost.SkipOrFail(t, "Load accepts only directories that root owns; run as root")
	}
	defer func(saved string) { recordFile = saved }(recordFile)
	recordFile = filepath.Join(t.TempDir(), "record")
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "playground up") {
		t.Errorf("Load of an empty dir: got %v, want a hint to run up", err)
	}
	s, err := newState(dir, 1, 1, "shoal", "/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	s.PrivateContainerd = true
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Containerd != "/x.sock" || !got.PrivateContainerd || len(got.Nodes) != 2 || !slices.Equal(got.Nodes[1].Args, s.Nodes[1].Args) {
		t.Errorf("loaded %+v, saved %+v", got, s)
	}
	for _, name := range []string{"node-02", "2"} {
		if n, err := got.Node(name); err != nil || n.Name != "node-02" {
			t.Errorf("Node(%q): %v, %v", name, n, err)
		}
	}
	if _, err := got.Node("node-07"); err == nil || !strings.Contains(err.Error(), "node-01, node-02") {
		t.Errorf("Node(node-07): got %v, want an error listing the nodes", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "playground down") {
		t.Errorf("Load of a broken state: got %v, want a hint that down still works", err)
	}
}

func TestAliveTellsZombiesFromTheLiving(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	if alive(1 << 30) {
		t.Error("a PID that cannot exist is alive")
	}
	// A child that exited and was not waited for is a zombie.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("an exited child still counts as alive after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil || !strings.Contains(string(b), ") Z") {
		t.Errorf("the child is not a zombie (%q, %v): the test proves nothing", b, err)
	}
}

func TestRunningFindsItsProcessByPIDFileAndMarker(t *testing.T) {
	dir := t.TempDir()
	pid, err := start(dir, "sleeper", "", []string{"sleep", "30"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if got := running(dir, "sleeper", "sleep 30"); got != pid {
		t.Errorf("running with the right marker: %d, want %d", got, pid)
	}
	// A reused PID: the file names a process that is not ours.
	if got := running(dir, "sleeper", "shoal daemon"); got != 0 {
		t.Errorf("running with another marker: %d, want 0", got)
	}
	if got := running(dir, "nobody", "sleep"); got != 0 {
		t.Errorf("running without a PID file: %d, want 0", got)
	}
	if err := stop(pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := running(dir, "sleeper", "sleep 30"); got != 0 {
		t.Errorf("running after stop: %d, want 0", got)
	}
	if !strings.Contains(tail(LogFile(dir, "sleeper"), 5), "sleep 30") {
		t.Errorf("the log does not start with the command line: %q", tail(LogFile(dir, "sleeper"), 5))
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/run/my\040dir/a\134b`); got != `/run/my dir/a\b` {
		t.Errorf("got %q", got)
	}
}
