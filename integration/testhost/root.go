package testhost

import (
	"fmt"
	"strings"
	"testing"
)

const (
	// rootOctet is the last octet of the root namespace's address on a LAN
	// it is attached to: below the hosts' (from firstHostOctet).
	rootOctet = 1
	// rootPort is the bridge-side end of the root namespace's veth, in the
	// LAN's namespace.
	rootPort = "proot"
)

// AttachRoot plugs the root namespace, where the test itself runs, into
// the LAN, so that the test can reach the hosts' addresses (a browser
// opening a daemon's web page, say). The root end of a veth pair,
// NSPrefix<tag>-root, gets 10.77.K.1/24; the other end is a port on the
// LAN's bridge. It returns the root namespace's address and registers the
// removal of the pair with t.Cleanup; deleting the LAN removes it too, and
// Sweep removes those of crashed runs.
//
// LANs of different test binaries may share a subnet, which the root
// namespace cannot route twice: AttachRoot fails when another LAN with the
// same subnet is attached already.
func (l *LAN) AttachRoot(t testing.TB) (ip string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root != "" {
		t.Fatalf("testhost: the root namespace is attached to LAN %s already", l.NS)
	}
	routes, err := ipOutput("-o", "-4", "route", "show")
	if err != nil {
		t.Fatalf("testhost: %v", err)
	}
	for line := range strings.Lines(routes) {
		if strings.HasPrefix(line, l.Subnet+" ") {
			t.Fatalf("testhost: the root namespace already routes %s (%s): another LAN with that subnet is attached to it; "+
				"run the tests that call AttachRoot one at a time", l.Subnet, strings.TrimSpace(line))
		}
	}
	name := rootLinkName(l.tag)
	ip = fmt.Sprintf("%s%d", l.prefix, rootOctet)
	l.root = name
	t.Cleanup(func() {
		if err := l.detachRoot(); err != nil {
			t.Errorf("testhost: detaching the root namespace from LAN %s: %v", l.NS, err)
		}
	})
	if err := runAll(
		[]string{"link", "add", name, "type", "veth", "peer", "name", rootPort, "netns", l.NS},
		[]string{"-n", l.NS, "link", "set", rootPort, "master", bridge, "up"},
		[]string{"addr", "add", ip + "/24", "dev", name},
		[]string{"link", "set", name, "up"},
	); err != nil {
		t.Fatalf("testhost: attaching the root namespace to LAN %s: %v", l.NS, err)
	}
	waitPort(t, "the root namespace", "a link with carrier and a forwarding bridge port", nil, name, l.NS, rootPort,
		func(rootLink, port string) bool {
			return strings.Contains(rootLink, "LOWER_UP") && strings.Contains(port, "state forwarding")
		})
	t.Logf("testhost: the root namespace is %s on LAN %s (%s)", ip, l.NS, name)
	return ip
}

// RootLink is the name of the root namespace's interface on the LAN, or ""
// when the root namespace is not attached.
func (l *LAN) RootLink() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.root
}

// detachRoot deletes the root namespace's veth pair, if any. It is
// idempotent.
func (l *LAN) detachRoot() error {
	l.mu.Lock()
	name := l.root
	l.root = ""
	l.mu.Unlock()
	if name == "" {
		return nil
	}
	return deleteRootLink(name)
}

func rootLinkName(tag string) string { return NSPrefix + tag + "-root" }

// deleteRootLink deletes a root namespace interface; one that is gone
// already (with its LAN's namespace) is not an error.
func deleteRootLink(name string) error {
	if _, err := ipOutput("link", "show", name); err != nil {
		return nil
	}
	if err := runIP("link", "del", name); err != nil {
		if _, showErr := ipOutput("link", "show", name); showErr != nil {
			return nil // gone meanwhile
		}
		return err
	}
	return nil
}
