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
	"fmt"
	"log/slog"
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
	applied *api.NetworkConfig // what the node has, when current
	current bool               // applied is what the node has
	touched bool               // rules or routes were ever set here
}

// New returns a Mesh for node self.
func New(self string, log *slog.Logger) *Mesh {
	return &Mesh{self: self, log: log}
}

// Apply makes the node's routes and rules match cfg; nil clears them. A
// node that never had a mesh is not touched by a nil config at all. After
// an error the next call applies again, even the same config.
func (m *Mesh) Apply(cfg *api.NetworkConfig) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case cfg == nil && !m.touched:
		return nil
	case m.current && proto.Equal(cfg, m.applied):
		return nil
	}
	m.touched, m.current = true, false
	if cfg != nil {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("routing mesh: enable IP forwarding: %w", err)
		}
	}
	if err := m.routes(cfg); err != nil {
		return err
	}
	if err := rules(cfg); err != nil {
		return err
	}
	m.applied, m.current = proto.CloneOf(cfg), true
	m.log.Info("routing mesh applied", "ports", len(cfg.GetIngress()), "routes", len(cfg.GetRoutes()))
	return nil
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
	for _, r := range have {
		if via, ok := want[r.Dst]; ok && via == r.Gateway {
			delete(want, r.Dst)
			continue
		}
		if _, ok := want[r.Dst]; !ok {
			if err := ip("route", "del", r.Dst, "proto", routeProto); err != nil {
				return err
			}
		}
	}
	for subnet, via := range want {
		if err := ip("route", "replace", subnet, "via", via, "proto", routeProto); err != nil {
			return err
		}
	}
	return nil
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("routing mesh: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// rules writes the NAT and filter chains for cfg, and hooks them into the
// built-in chains once.
func rules(cfg *api.NetworkConfig) error {
	nat, filter := Rules(cfg)
	for _, t := range []struct{ table, text string }{{"nat", nat}, {"filter", filter}} {
		cmd := exec.Command("iptables-restore", "--noflush")
		cmd.Stdin = strings.NewReader(t.text)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("routing mesh: iptables-restore of the %s table: %v: %s", t.table, err, bytes.TrimSpace(out))
		}
	}
	for _, j := range jumps {
		check := append([]string{"-t", j[0], "-C", j[1]}, j[2:]...)
		if exec.Command("iptables", check...).Run() == nil {
			continue
		}
		insert := append([]string{"-t", j[0], "-I", j[1], "1"}, j[2:]...)
		if out, err := exec.Command("iptables", insert...).CombinedOutput(); err != nil {
			return fmt.Errorf("routing mesh: iptables %s: %v: %s", strings.Join(insert, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// jumps hook the mesh's chains into the built-in ones: table, chain, rule.
var jumps = [][]string{
	{"nat", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "SHOAL-INGRESS"},
	{"nat", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "SHOAL-INGRESS"},
	{"nat", "POSTROUTING", "-j", "SHOAL-POSTROUTING"},
	{"filter", "FORWARD", "-j", "SHOAL-FORWARD"},
}

// Rules is cfg as iptables-restore input for the nat and filter tables.
// Declaring a chain empties it, so each call replaces what the last one
// wrote. A port's new connections go to its backends with equal chances:
// the i-th of n rules takes 1/(n-i) of what reaches it.
func Rules(cfg *api.NetworkConfig) (nat, filter string) {
	var b strings.Builder
	b.WriteString("*nat\n:SHOAL-INGRESS - [0:0]\n:SHOAL-POSTROUTING - [0:0]\n")
	for _, p := range cfg.GetIngress() {
		match := fmt.Sprintf("-A SHOAL-INGRESS -p %s -m %s --dport %d", p.Protocol, p.Protocol, p.Published)
		backends := slices.Clone(p.Backends)
		if len(backends) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s -j MARK --set-xmark %s\n", match, mark)
		for i, addr := range backends {
			if n := len(backends) - i; n > 1 {
				fmt.Fprintf(&b, "%s -m statistic --mode random --probability %.5f -j DNAT --to-destination %s:%d\n", match, 1/float64(n), addr, p.Target)
			} else {
				fmt.Fprintf(&b, "%s -j DNAT --to-destination %s:%d\n", match, addr, p.Target)
			}
		}
	}
	fmt.Fprintf(&b, "-A SHOAL-POSTROUTING -m mark --mark %s -j MASQUERADE\nCOMMIT\n", mark)
	nat = b.String()

	b.Reset()
	b.WriteString("*filter\n:SHOAL-FORWARD - [0:0]\n")
	if cfg != nil {
		fmt.Fprintf(&b, "-A SHOAL-FORWARD -m mark --mark %s -j ACCEPT\n", mark)
		for _, r := range cfg.GetRoutes() {
			fmt.Fprintf(&b, "-A SHOAL-FORWARD -d %s -j ACCEPT\n-A SHOAL-FORWARD -s %s -j ACCEPT\n", r.Subnet, r.Subnet)
		}
	}
	b.WriteString("COMMIT\n")
	return nat, b.String()
}
