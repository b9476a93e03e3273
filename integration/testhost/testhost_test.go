package testhost_test

import (
	"bufio"
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

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

const echoPort = "7000"

func TestHostsOnOneLANTalkOverTCP(t *testing.T) {
	lan := testhost.NewLAN(t)
	a := lan.AddHost(t, "node-01")
	b := lan.AddHost(t, "node-02")
	startEcho(t, a)

	got, err := askEcho(b, a, time.Second)
	if err != nil {
		t.Fatalf("%s could not reach %s: %v", b, a, err)
	}
	if want := "node-01: hello from node-02"; got != want {
		t.Fatalf("%s answered %q, want %q", a, got, want)
	}
}

func TestLinkDownCutsHostOffAndLinkUpPlugsItBackIn(t *testing.T) {
	lan := testhost.NewLAN(t)
	a := lan.AddHost(t, "node-01")
	b := lan.AddHost(t, "node-02")
	c := lan.AddHost(t, "node-03")
	startEcho(t, a)
	startEcho(t, b)
	mustReach(t, b, a)
	mustReach(t, a, b)

	b.LinkDown(t)
	if _, err := askEcho(b, a, 500*time.Millisecond); err == nil {
		t.Fatalf("%s still reaches %s after LinkDown(%s)", b, a, b.Name)
	}
	if _, err := askEcho(a, b, 500*time.Millisecond); err == nil {
		t.Fatalf("%s still reaches %s after LinkDown(%s)", a, b, b.Name)
	}
	mustReach(t, c, a) // the rest of the LAN is untouched

	b.LinkUp(t)
	clustertest.WaitFor(t, 10*time.Second, fmt.Sprintf("%s to reach %s again after LinkUp", b, a), func() error {
		_, err := askEcho(b, a, 500*time.Millisecond)
		return err
	})
	mustReach(t, a, b)
}

func TestTestNetworkStaysOutOfTheRootNamespace(t *testing.T) {
	testhost.Require(t)
	rootBefore := rootLinks(t)

	lan := testhost.NewLAN(t)
	h := lan.AddHost(t, "node-01")
	lan.AddHost(t, "node-02")

	// Other test binaries may have attached their LANs of the same subnet
	// (AttachRoot), on interfaces named by NSPrefix; no other interface may
	// have an address of this LAN's subnet.
	prefix := " " + strings.TrimSuffix(lan.Subnet, "0/24")
	for line := range strings.Lines(run(t, exec.Command("ip", "-o", "addr", "show"))) {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(line, prefix) && !strings.HasPrefix(f[1], testhost.NSPrefix) {
			t.Errorf("the root namespace has a test address: %s", line)
		}
	}
	if lan.RootLink() != "" {
		t.Errorf("LAN %s is attached to the root namespace (%s) without AttachRoot", lan.NS, lan.RootLink())
	}
	for name := range rootLinks(t) {
		if !rootBefore[name] && (name == "br0" || name == "p1" || name == "p2") {
			t.Errorf("interface %s of the test LAN appeared in the root namespace", name)
		}
	}
	if lanAddrs := run(t, exec.Command("ip", "-n", lan.NS, "-o", "-4", "addr", "show")); strings.Contains(lanAddrs, "10.77.") {
		t.Errorf("the LAN's bridge has an address, so it could route:\n%s", lanAddrs)
	}
	hostLinks := run(t, exec.Command("ip", "-n", h.NS, "-o", "link", "show"))
	if n := strings.Count(hostLinks, "\n"); n != 2 || !strings.Contains(hostLinks, " lo:") || !strings.Contains(hostLinks, " eth0@") {
		t.Errorf("host %s should have exactly lo and eth0, has:\n%s", h, hostLinks)
	}
	// Command runs in the host's namespace: the host sees its own address.
	if out := run(t, h.Command("ip", "-o", "-4", "addr", "show", "dev", "eth0")); !strings.Contains(out, " "+h.IP+"/24 ") {
		t.Errorf("Command did not run on %s; its eth0 shows:\n%s", h, out)
	}
}

func TestAttachRootLetsTheTestReachTheHostsUntilCleanup(t *testing.T) {
	testhost.Require(t)
	var link string
	t.Run("attached", func(t *testing.T) {
		lan := testhost.NewLAN(t)
		a := lan.AddHost(t, "node-01")
		b := lan.AddHost(t, "node-02")
		startEcho(t, a)
		startEcho(t, b)
		ip := lan.AttachRoot(t)
		link = lan.RootLink()
		if want := strings.TrimSuffix(lan.Subnet, "0/24") + "1"; ip != want {
			t.Errorf("AttachRoot gave the root namespace %s, want %s", ip, want)
		}
		if !strings.HasPrefix(link, testhost.NSPrefix) {
			t.Errorf("root link %q does not start with %q: Sweep could not find it", link, testhost.NSPrefix)
		}
		for _, h := range []*testhost.Host{a, b} {
			got, err := askEcho(nil, h, time.Second)
			if err != nil {
				t.Fatalf("the root namespace could not reach %s after AttachRoot: %v", h, err)
			}
			if want := h.Name + ": hello from root"; got != want {
				t.Errorf("%s answered %q, want %q", h, got, want)
			}
		}
		mustReach(t, a, b) // the hosts still reach each other
	})
	if link == "" {
		t.Fatal("no root link to check")
	}
	if rootLinks(t)[link] {
		t.Errorf("the root namespace's link %s is still there after the test's cleanup", link)
	}
}

func TestCleanupRemovesNamespacesAndProcessesEvenWhenTheTestFails(t *testing.T) {
	testhost.Require(t)
	out, err := runHelper(t, "fail-after-setup")
	if err == nil {
		t.Fatalf("the helper test was meant to fail but passed:\n%s", out)
	}
	names, pids, link := parseHelper(t, out)
	for _, ns := range names {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); !os.IsNotExist(err) {
			t.Errorf("netns %s is still there after the failed test's cleanup (stat: %v)", ns, err)
		}
	}
	if rootLinks(t)[link] {
		t.Errorf("the root namespace's link %s is still there after the failed test's cleanup", link)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d started on a test host outlived the failed test", pid)
		}
	}
}

func TestSweepRemovesWhatACrashedRunLeftBehind(t *testing.T) {
	testhost.Require(t)
	out, err := runHelper(t, "crash-after-setup")
	if err == nil {
		t.Fatalf("the helper test was meant to crash but passed:\n%s", out)
	}
	names, pids, link := parseHelper(t, out)
	t.Cleanup(func() { // in case Sweep does not do its job
		exec.Command("ip", "link", "del", link).Run()
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for _, ns := range names {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	// Another test binary running now may sweep first; what counts is that
	// nothing is left after Sweep.
	for _, ns := range names {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); err != nil {
			t.Logf("netns %s of the crashed helper is already gone (a concurrent sweep?): %v", ns, err)
		}
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Logf("process %d of the crashed helper is already gone (a concurrent sweep?)", pid)
		}
	}

	if err := testhost.Sweep(); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	for _, ns := range names {
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); !os.IsNotExist(err) {
			t.Errorf("Sweep left the crashed run's netns %s (stat: %v)", ns, err)
		}
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("Sweep left the crashed run's process %d running", pid)
		}
	}
	if rootLinks(t)[link] {
		t.Errorf("Sweep left the crashed run's root namespace link %s", link)
	}
}

// TestHelperProcess is not a test of its own: the tests above run the test
// binary again with it, to see what a failing or crashing test leaves behind.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("SHOAL_TESTHOST_HELPER")
	if mode == "" {
		t.Skip("runs only as the child process of another test")
	}
	lan := testhost.NewLAN(t)
	a := lan.AddHost(t, "node-01")
	b := lan.AddHost(t, "node-02")
	fmt.Printf("NS %s\nNS %s\nNS %s\n", lan.NS, a.NS, b.NS)
	lan.AttachRoot(t)
	fmt.Printf("LINK %s\n", lan.RootLink())

	cmd := a.Command(os.Getenv("SHOAL_TESTHOST_ECHO"), "-listen", ":"+echoPort)
	if mode == "crash-after-setup" {
		// A daemon that does not die with its parent, as one started by
		// hand would be.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PID %d\n", cmd.Process.Pid)

	switch mode {
	case "fail-after-setup":
		t.Fatal("failing on purpose, to see that cleanup still runs")
	case "crash-after-setup":
		os.Exit(3) // no cleanup at all, as after a panic or SIGKILL
	}
}

func runHelper(t *testing.T, mode string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperProcess$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "SHOAL_TESTHOST_HELPER="+mode, "SHOAL_TESTHOST_ECHO="+echoBinary(t))
	out, err := cmd.CombinedOutput()
	t.Logf("helper (%s) said:\n%s", mode, out)
	return string(out), err
}

func parseHelper(t *testing.T, out string) (names []string, pids []int, link string) {
	t.Helper()
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "NS":
			names = append(names, f[1])
		case len(f) == 2 && f[0] == "LINK":
			link = f[1]
		case len(f) == 2 && f[0] == "PID":
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("bad PID line %q", line)
			}
			pids = append(pids, pid)
		}
	}
	if len(names) != 3 || len(pids) != 1 || link == "" {
		t.Fatalf("the helper should print 3 NS lines, 1 LINK line and 1 PID line; got %v, %q and %v", names, link, pids)
	}
	return names, pids, link
}

// alive tells whether a process runs; a zombie does not count, since it has
// left its namespaces and only waits for its parent.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// startEcho runs an echo server on h and returns once it listens.
func startEcho(t *testing.T, h *testhost.Host) {
	t.Helper()
	cmd := h.Command(echoBinary(t), "-listen", ":"+echoPort, "-name", h.Name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting echo server on %s: %v", h, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "listening ") {
			t.Fatalf("echo server on %s did not start: %q", h, line)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for the echo server on %s to listen", h)
	}
}

// askEcho sends one line from one host (nil: the root namespace, where the
// test runs) to the echo server on another and returns the answer.
func askEcho(from, to *testhost.Host, timeout time.Duration) (string, error) {
	name, command := "root", exec.Command
	if from != nil {
		name, command = from.Name, from.Command
	}
	out, err := command(echoBinary(nil), "-connect", to.IP+":"+echoPort,
		"-msg", "hello from "+name, "-timeout", timeout.String()).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

func mustReach(t *testing.T, from, to *testhost.Host) {
	t.Helper()
	if _, err := askEcho(from, to, time.Second); err != nil {
		t.Fatalf("%s cannot reach %s: %v", from, to, err)
	}
}

func rootLinks(t *testing.T) map[string]bool {
	t.Helper()
	links := map[string]bool{}
	for line := range strings.Lines(run(t, exec.Command("ip", "-o", "link", "show"))) {
		// "3: name@peer: <FLAGS> ..."
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			links[name] = true
		}
	}
	return links
}

func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

var (
	echoOnce sync.Once
	echoPath string
	echoErr  error
	echoDir  string
)

// echoBinary builds the echo helper once per test binary (or takes the one
// the parent test process built). A nil t is allowed once it is built.
func echoBinary(t testing.TB) string {
	echoOnce.Do(func() {
		if p := os.Getenv("SHOAL_TESTHOST_ECHO"); p != "" {
			echoPath = p
			return
		}
		echoDir, echoErr = os.MkdirTemp("", "shoal-echo-")
		if echoErr != nil {
			return
		}
		echoPath = filepath.Join(echoDir, "echo")
		out, err := exec.Command("go", "build", "-o", echoPath,
			"github.com/shoal-dev/shoal/integration/testhost/internal/echo").CombinedOutput()
		if err != nil {
			echoErr = fmt.Errorf("building the echo helper: %v\n%s", err, out)
		}
	})
	if echoErr != nil {
		if t == nil {
			panic(echoErr)
		}
		t.Fatal(echoErr)
	}
	return echoPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if echoDir != "" {
		os.RemoveAll(echoDir)
	}
	os.Exit(code)
}
