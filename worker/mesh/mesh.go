// Package mesh applies the routing mesh on a node, as Swarm's ingress
// network does: every node answers on every published ingress port, and
// sends the connection to one of the service's running tasks, on whichever
// node it runs.
//
// Two things make that work without an overlay network. Each node routes
// the other nodes' task subnets through those nodes' addresses (they must
// reach each other directly, as on one LAN). And NAT rules in chains of
// their own (SHOAL-INGRESS and friends) pick a task at random for each new
// connection and masquerade it, so that the reply comes back the same way.
// Everything is recomputed from the managers' NetworkConfig whenever it
// changes; the rules are replaced in one iptables-restore per table.
package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

const (
	// routeProto marks the routes this package adds, so that it finds
	// them again (also after a restart) and leaves all others alone.
	routeProto = "77"
	// mark tags connections to an ingress port: they are masqueraded and
	// let through FORWARD.
	mark = "0x4d0000/0x4d0000"
)

// Mesh applies NetworkConfigs on this node. The zero value is not usable:
// call New.
type Mesh struct {
	self string // this node's ID: no route to its own subnet
	log  *slog.Logger

	mu      sync.Mutex
	wanted  *api.NetworkConfig // the last config asked for
	current bool               // the node has applied, in full
	touched bool               // rules or routes were set here, or checked for leftovers
}

// New returns a Mesh for node self.
func New(self string, log *slog.Logger) *Mesh {
	return &Mesh{self: self, log: log}
}

// Apply makes the node's routes and rules match cfg; nil clears them. A
// node that never had a mesh, and has none left from an earlier run, is not
// touched by a nil config at all. A route that cannot be set does not stop
// the others, nor the rules; the error says which.
func (m *Mesh) Apply(cfg *api.NetworkConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case cfg == nil && !m.touched && !leftovers():
		m.touched = true // checked once: from now on nil means clear
		m.wanted, m.current = nil, true
		return nil
	case m.current && proto.Equal(cfg, m.wanted):
		return nil
	}
	if err := m.applyLocked(cfg); err != nil {
		return err
	}
	m.log.Info("routing mesh applied", "ports", len(cfg.GetIngress()), "routes", len(cfg.GetRoutes()))
	return nil
}

// Refresh applies the last config again, whatever the node has now: rules
// flushed by another firewall tool, routes lost with a link, an earlier
// failure. The daemon calls it now and then.
func (m *Mesh) Refresh() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.touched || m.wanted == nil {
		return nil
	}
	return m.applyLocked(m.wanted)
}

func (m *Mesh) applyLocked(cfg *api.NetworkConfig) error {
	m.touched, m.current = true, false
	m.wanted = proto.CloneOf(cfg) // what Refresh tries again
	if cfg != nil {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("routing mesh: enable IP forwarding: %w", err)
		}
	}
	routeErr := m.routes(cfg)
	if err := rules(cfg, m.self); err != nil {
		return errors.Join(err, routeErr)
	}
	if routeErr != nil {
		return routeErr
	}
	m.current = true
	return nil
}

// leftovers reports whether an earlier run left routes or rules here.
func leftovers() bool {
	if out, err := exec.Command("ip", "route", "show", "proto", routeProto).Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		return true
	}
	return exec.Command("iptables", "-w", "-t", "nat", "-n", "-L", "SHOAL-INGRESS").Run() == nil
}

// routes adds a route to every other node's task subnet through that node,
// and removes the routes it added before that are no longer wanted.
func (m *Mesh) routes(cfg *api.NetworkConfig) error {
	want := map[string]string{}
	for _, r := range cfg.GetRoutes() {
		if r.NodeId != m.self {
			want[r.Subnet] = r.Via
		}
	}
	out, err := exec.Command("ip", "-j", "route", "show", "proto", routeProto).Output()
	if err != nil {
		return fmt.Errorf("routing mesh: list routes: %w", err)
	}
	var have []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
	}
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &have); err != nil {
			return fmt.Errorf("routing mesh: read routes: %w", err)
		}
	}
	var errs []error
	for _, r := range have {
		if via, ok := want[r.Dst]; ok && via == r.Gateway {
			delete(want, r.Dst)
			continue
		}
		if _, ok := want[r.Dst]; !ok {
			errs = append(errs, ip("route", "del", r.Dst, "proto", routeProto))
		}
	}
	for _, subnet := range slices.Sorted(maps.Keys(want)) {
		// Fails when the node is not on a link of this one: the mesh
		// needs the nodes to reach each other directly.
		errs = append(errs, ip("route", "replace", subnet, "via", want[subnet], "proto", routeProto))
	}
	return errors.Join(errs...)
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("routing mesh: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// rules writes the NAT and filter chains for cfg, and hooks them into the
// built-in chains once.
func rules(cfg *api.NetworkConfig, self string) error {
	nat, filter := Rules(cfg, self)
	for _, t := range []struct{ table, text string }{{"nat", nat}, {"filter", filter}} {
		cmd := exec.Command("iptables-restore", "--wait", "--noflush")
		cmd.Stdin = strings.NewReader(t.text)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("routing mesh: iptables-restore of the %s table: %v: %s", t.table, err, bytes.TrimSpace(out))
		}
	}
	for _, j := range jumps {
		check := append([]string{"-w", "-t", j[0], "-C", j[1]}, j[2:]...)
		if exec.Command("iptables", check...).Run() == nil {
			continue
		}
		insert := append([]string{"-w", "-t", j[0], "-I", j[1], "1"}, j[2:]...)
		if out, err := exec.Command("iptables", insert...).CombinedOutput(); err != nil {
			return fmt.Errorf("routing mesh: iptables %s: %v: %s", strings.Join(insert, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// jumps hook the mesh's chains into the built-in ones: table, chain, rule.
// Connections from 127.0.0.0/8 are left alone: the kernel will not route
// them to another host (route_localnet), so a node's own clients use its
// address, as with Swarm.
var jumps = [][]string{
	{"nat", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "SHOAL-INGRESS"},
	{"nat", "OUTPUT", "!", "-s", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "SHOAL-INGRESS"},
	{"nat", "POSTROUTING", "-j", "SHOAL-POSTROUTING"},
	{"filter", "FORWARD", "-j", "SHOAL-FORWARD"},
}

// Rules is cfg as iptables-restore input for the nat and filter tables, on
// node self. Declaring a chain empties it, so each call replaces what the
// last one wrote. A port's new connections go to its backends with equal
// chances: the i-th of n rules takes 1/(n-i) of what reaches it. FORWARD
// lets through the connections this node sends on (marked) and their
// replies, and the other nodes' connections to this node's tasks.
func Rules(cfg *api.NetworkConfig, self string) (nat, filter string) {
	var b strings.Builder
	b.WriteString("*nat\n:SHOAL-INGRESS - [0:0]\n:SHOAL-POSTROUTING - [0:0]\n")
	for _, p := range cfg.GetIngress() {
		if len(p.Backends) == 0 {
			continue // nothing answers on it
		}
		match := fmt.Sprintf("-A SHOAL-INGRESS -p %s -m %s --dport %d", p.Protocol, p.Protocol, p.Published)
		fmt.Fprintf(&b, "%s -j MARK --set-xmark %s\n", match, mark)
		for i, backend := range p.Backends {
			if n := len(p.Backends) - i; n > 1 {
				fmt.Fprintf(&b, "%s -m statistic --mode random --probability %.5f -j DNAT --to-destination %s\n", match, 1/float64(n), backend)
			} else {
				fmt.Fprintf(&b, "%s -j DNAT --to-destination %s\n", match, backend)
			}
		}
	}
	fmt.Fprintf(&b, "-A SHOAL-POSTROUTING -m mark --mark %s -j MASQUERADE\nCOMMIT\n", mark)
	nat = b.String()

	b.Reset()
	b.WriteString("*filter\n:SHOAL-FORWARD - [0:0]\n")
	if cfg != nil {
		fmt.Fprintf(&b, "-A SHOAL-FORWARD -m mark --mark %s -j ACCEPT\n", mark)
		b.WriteString("-A SHOAL-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
		for _, own := range cfg.GetRoutes() {
			if own.NodeId != self {
				continue
			}
			for _, r := range cfg.GetRoutes() {
				if r.NodeId != self {
					fmt.Fprintf(&b, "-A SHOAL-FORWARD -s %s -d %s -j ACCEPT\n", r.Via, own.Subnet)
				}
			}
		}
	}
	b.WriteString("COMMIT\n")
	return nat, b.String()
}
