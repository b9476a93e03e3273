package testhost

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// NSPrefix starts the name of every namespace this package makes; Sweep
	// removes stale ones by it. Other tools (the playground) must not use it.
	NSPrefix = "sht"
	netnsDir = "/var/run/netns"
	bridge   = "br0"
	hostIf   = "eth0"
	// firstHostOctet is the last octet of the first host's address:
	// host i (from 1) gets 10.77.K.(10+i).
	firstHostOctet = 11
	maxHosts       = 200
)

// lanCount numbers the LANs of this process, to give each its own subnet.
// LANs never see each other, so this is only for readable logs.
var lanCount atomic.Uint32

// LAN is a switch in a network namespace of its own, which test hosts plug
// into. Make it with NewLAN.
type LAN struct {
	// NS is the name of the namespace that holds the bridge.
	NS string
	// Subnet is the hosts' network, e.g. "10.77.1.0/24".
	Subnet string

	tag    string
	prefix string // "10.77.K."
	lock   *os.File

	mu    sync.Mutex
	hosts []*Host
	root  string // the root namespace's interface on the LAN; "" until AttachRoot
}

// Host is one test machine: a network namespace with lo and one interface,
// eth0, plugged into its LAN's bridge.
type Host struct {
	// Name is the name the test gave the host, e.g. "node-01".
	Name string
	// NS is the name of the host's network namespace (see NSPath).
	NS string
	// IP is the host's address on the LAN, without prefix length.
	IP string

	lan  *LAN
	port string // the bridge-side end of the host's veth, in lan.NS
}

// NewLAN makes an empty LAN and registers its removal with t.Cleanup. It
// skips the test when the machine cannot make test hosts (see Require), and
// first sweeps namespaces left by crashed runs.
func NewLAN(t testing.TB) *LAN {
	t.Helper()
	Require(t)
	sweepOnce.Do(func() {
		if err := Sweep(); err != nil {
			t.Logf("testhost: sweeping stale namespaces: %v", err)
		}
	})

	tag, lock, err := newTag()
	if err != nil {
		t.Fatalf("testhost: %v", err)
	}
	k := (lanCount.Add(1)-1)%254 + 1
	l := &LAN{
		NS:     NSPrefix + tag + "-lan",
		Subnet: fmt.Sprintf("10.77.%d.0/24", k),
		tag:    tag,
		prefix: fmt.Sprintf("10.77.%d.", k),
		lock:   lock,
	}
	t.Cleanup(func() {
		if err := l.remove(); err != nil {
			t.Errorf("testhost: removing LAN %s: %v", l.NS, err)
		}
	})
	if err := runAll(
		[]string{"netns", "add", l.NS},
		[]string{"-n", l.NS, "link", "set", "lo", "up"},
		[]string{"-n", l.NS, "link", "add", bridge, "type", "bridge", "stp_state", "0"},
		[]string{"-n", l.NS, "link", "set", bridge, "up"},
	); err != nil {
		t.Fatalf("testhost: making LAN %s: %v", l.NS, err)
	}
	t.Logf("testhost: LAN %s, subnet %s", l.NS, l.Subnet)
	return l
}

// AddHost makes a host on the LAN and registers its removal with t.Cleanup.
// Removing a host kills every process still running in its namespace.
func (l *LAN) AddHost(t testing.TB, name string) *Host {
	t.Helper()
	l.mu.Lock()
	i := len(l.hosts) + 1
	if i > maxHosts {
		l.mu.Unlock()
		t.Fatalf("testhost: a LAN holds at most %d hosts", maxHosts)
	}
	h := &Host{
		Name: name,
		NS:   fmt.Sprintf("%s%s-h%d", NSPrefix, l.tag, i),
		IP:   fmt.Sprintf("%s%d", l.prefix, firstHostOctet+i-1),
		lan:  l,
		port: fmt.Sprintf("p%d", i),
	}
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	t.Cleanup(func() {
		if err := h.remove(); err != nil {
			t.Errorf("testhost: removing host %s (%s): %v", h.Name, h.NS, err)
		}
	})
	if err := runAll(
		[]string{"netns", "add", h.NS},
		[]string{"-n", h.NS, "link", "set", "lo", "up"},
		[]string{"-n", l.NS, "link", "add", h.port, "type", "veth", "peer", "name", hostIf, "netns", h.NS},
		[]string{"-n", l.NS, "link", "set", h.port, "master", bridge, "up"},
		[]string{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", hostIf},
		[]string{"-n", h.NS, "link", "set", hostIf, "up"},
	); err != nil {
		t.Fatalf("testhost: making host %s: %v", name, err)
	}
	t.Logf("testhost: host %s is %s in netns %s", name, h.IP, h.NS)
	return h
}

// Hosts returns the LAN's hosts in the order they were added.
func (l *LAN) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Host(nil), l.hosts...)
}

// NSPath is the file that names the host's network namespace, as nsenter
// and setns(2) take it.
func (h *Host) NSPath() string { return filepath.Join(netnsDir, h.NS) }

func (h *Host) String() string { return fmt.Sprintf("%s(%s)", h.Name, h.IP) }

// Command prepares name with args to run on the host: in its network
// namespace, through nsenter, which execs the program in place, so the
// command's process is the program's. The process gets SIGKILL if the test
// binary dies, so that a crashed test leaves no daemon behind; set
// cmd.SysProcAttr anew to change that.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=" + h.NSPath(), "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// LinkDown cuts the host off the LAN, as if its cable were pulled: the
// bridge-side end of its veth goes down, so the host's eth0 loses carrier.
// Processes on the host keep running.
func (h *Host) LinkDown(t testing.TB) {
	t.Helper()
	if err := runIP("-n", h.lan.NS, "link", "set", h.port, "down"); err != nil {
		t.Fatalf("testhost: cutting %s off the LAN: %v", h, err)
	}
	h.waitLink(t, "eth0 without carrier", func(hostLink, _ string) bool {
		return strings.Contains(hostLink, "NO-CARRIER")
	})
	t.Logf("testhost: %s is cut off the LAN", h)
}

// LinkUp plugs a host cut off by LinkDown back in, and returns once its
// bridge port forwards again.
func (h *Host) LinkUp(t testing.TB) {
	t.Helper()
	if err := runIP("-n", h.lan.NS, "link", "set", h.port, "up"); err != nil {
		t.Fatalf("testhost: plugging %s back into the LAN: %v", h, err)
	}
	h.waitLink(t, "eth0 with carrier and a forwarding bridge port", func(hostLink, port string) bool {
		return strings.Contains(hostLink, "LOWER_UP") && strings.Contains(port, "state forwarding")
	})
	t.Logf("testhost: %s is back on the LAN", h)
}

// waitLink polls the host's eth0 and its bridge port until ok says so.
func (h *Host) waitLink(t testing.TB, what string, ok func(hostLink, port string) bool) {
	t.Helper()
	waitPort(t, h.String(), what, []string{"-n", h.NS}, hostIf, h.lan.NS, h.port, ok)
}

// waitPort polls one veth pair, the end named end in the namespace that
// nsArgs select (none: the root namespace) and its bridge port in lanNS,
// until ok says so.
func waitPort(t testing.TB, who, what string, nsArgs []string, end, lanNS, port string, ok func(endLink, port string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		endLink, err1 := ipOutput(append(nsArgs, "-o", "link", "show", end)...)
		portLink, err2 := bridgeOutput("-n", lanNS, "link", "show", "dev", port)
		if err1 == nil && err2 == nil && ok(endLink, portLink) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testhost: timed out waiting for %s on %s: %s: %q (%v); bridge port: %q (%v)",
				what, who, end, endLink, err1, portLink, err2)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remove kills what runs on the host and deletes its namespace, which
// destroys its veth pair too. It is idempotent.
func (h *Host) remove() error {
	return removeNS(h.NS)
}

// remove deletes what is left of the LAN's hosts, then the LAN itself, then
// releases its lock. It is idempotent.
func (l *LAN) remove() error {
	var errs []string
	for _, h := range l.Hosts() {
		if err := h.remove(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := l.detachRoot(); err != nil {
		errs = append(errs, err.Error())
	}
	if err := removeNS(l.NS); err != nil {
		errs = append(errs, err.Error())
	}
	if l.lock != nil {
		releaseTag(l.tag, l.lock)
		l.lock = nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// newTag picks a random tag that no live LAN uses and takes its lock.
func newTag() (string, *os.File, error) {
	for range 10 {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return "", nil, err
		}
		tag := hex.EncodeToString(b)
		f, err := lockTag(tag)
		if os.IsExist(err) {
			continue
		}
		return tag, f, err
	}
	return "", nil, fmt.Errorf("no free LAN tag after 10 tries; are stale lock files piling up in %s?", lockDir)
}
