package playground

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ip runs one ip(8) command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func ipAll(cmds ...[]string) error {
	for _, c := range cmds {
		if err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}

func nsExists(ns string) bool {
	_, err := os.Stat("/var/run/netns/" + ns)
	return err == nil
}

// makeLAN makes the bridge, in a namespace of its own, and plugs this
// machine into it as rootIP.
func makeLAN() error {
	return ipAll(
		[]string{"netns", "add", lanNS},
		[]string{"-n", lanNS, "link", "set", "lo", "up"},
		[]string{"-n", lanNS, "link", "add", bridge, "type", "bridge", "stp_state", "0"},
		[]string{"-n", lanNS, "link", "set", bridge, "up"},
		[]string{"link", "add", rootIf, "type", "veth", "peer", "name", rootPort, "netns", lanNS},
		[]string{"-n", lanNS, "link", "set", rootPort, "master", bridge, "up"},
		[]string{"addr", "add", rootIP + "/24", "dev", rootIf},
		[]string{"link", "set", rootIf, "up"},
	)
}

// makeHost makes the node's namespace with eth0 on the LAN.
func makeHost(n *Node) error {
	return ipAll(
		[]string{"netns", "add", n.NS()},
		[]string{"-n", n.NS(), "link", "set", "lo", "up"},
		[]string{"-n", lanNS, "link", "add", n.port(), "type", "veth", "peer", "name", "eth0", "netns", n.NS()},
		[]string{"-n", lanNS, "link", "set", n.port(), "master", bridge, "up"},
		[]string{"-n", n.NS(), "addr", "add", n.IP + "/24", "dev", "eth0"},
		[]string{"-n", n.NS(), "link", "set", "eth0", "up"},
	)
}

// setCable plugs the node's cable in or pulls it out, at the bridge.
func setCable(n *Node, in bool) error {
	state := "down"
	if in {
		state = "up"
	}
	return ip("-n", lanNS, "link", "set", n.port(), state)
}

// cableIn says whether the node's bridge port is up.
func cableIn(n *Node) (bool, error) {
	out, err := exec.Command("ip", "-n", lanNS, "-o", "link", "show", n.port()).Output()
	if err != nil {
		return false, fmt.Errorf("ip -n %s link show %s: %w", lanNS, n.port(), err)
	}
	// "5: p-node-01@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> ..."
	open, close := strings.IndexByte(string(out), '<'), strings.IndexByte(string(out), '>')
	if open < 0 || close < open {
		return false, fmt.Errorf("cannot read the flags of %s in %q", n.port(), out)
	}
	for _, f := range strings.Split(string(out[open+1:close]), ",") {
		if f == "UP" {
			return true, nil
		}
	}
	return false, nil
}

// deleteNS kills what still runs in a namespace, then deletes it.
func deleteNS(ns string) error {
	if !nsExists(ns) {
		return nil
	}
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			pids = append(pids, pid)
		}
	}
	if !waitGone(pids, 10*time.Second) {
		return fmt.Errorf("processes %v in netns %s outlived SIGKILL", pids, ns)
	}
	return ip("netns", "del", ns)
}

// unplugRoot deletes this machine's cable to the LAN. Deleting the LAN's
// namespace deletes it too, but the kernel does that later, and a new
// playground must find the name free.
func unplugRoot() error {
	if _, err := os.Stat("/sys/class/net/" + rootIf); err != nil {
		return nil
	}
	return ip("link", "del", rootIf)
}

// playgroundNamespaces lists the network namespaces a playground made, also
// ones that no state file names any more.
func playgroundNamespaces() []string {
	entries, _ := os.ReadDir("/var/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), nsPrefix) && e.Name() != lanNS {
			out = append(out, e.Name())
		}
	}
	if nsExists(lanNS) {
		out = append(out, lanNS) // last: it holds the other ends of their cables
	}
	return out
}

var errNoRoot = errors.New("the playground needs root (it makes network namespaces): run it with sudo")
