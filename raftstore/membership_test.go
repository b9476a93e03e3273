package raftstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestCanRemove(t *testing.T) {
	voters := func(ids ...string) []raft.Server {
		var out []raft.Server
		for _, id := range ids {
			out = append(out, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":2377")})
		}
		return out
	}
	withNonvoter := append(voters("a", "b"), raft.Server{Suffrage: raft.Nonvoter, ID: "n", Address: "n:2377"})
	tests := []struct {
		name    string
		servers []raft.Server
		remove  string
		down    string // comma-separated unreachable members
		want    error
	}{
		{"the only manager", voters("a"), "a", "", ErrLastManager},
		{"not a member", voters("a"), "x", "", nil},
		{"two, both up", voters("a", "b"), "b", "", nil},
		{"two, removing the one that is down", voters("a", "b"), "b", "b", nil},
		{"two, removing self while the other is down", voters("a", "b"), "a", "b", ErrQuorumLoss},
		{"three, all up", voters("a", "b", "c"), "b", "", nil},
		{"three, one down, removing an up one", voters("a", "b", "c"), "b", "c", ErrQuorumLoss},
		{"three, one down, removing the down one", voters("a", "b", "c"), "c", "c", nil},
		{"three, two down", voters("a", "b", "c"), "c", "b,c", ErrQuorumLoss},
		{"four, one down, removing an up one", voters("a", "b", "c", "d"), "b", "d", nil},
		// Allowed by the rule (2 of the 3 left are up); committing the change
		// still needs 3 of the 4, which Raft alone decides.
		{"four, two down, removing a down one", voters("a", "b", "c", "d"), "d", "c,d", nil},
		{"four, two down, removing an up one", voters("a", "b", "c", "d"), "a", "c,d", ErrQuorumLoss},
		{"five, two down, removing an up one", voters("a", "b", "c", "d", "e"), "a", "d,e", ErrQuorumLoss},
		{"five, two down, removing a down one", voters("a", "b", "c", "d", "e"), "e", "d,e", nil},
		{"five, one down, removing an up one", voters("a", "b", "c", "d", "e"), "a", "e", nil},
		{"nonvoters don't count", withNonvoter, "b", "n", nil},
		{"removing a nonvoter", withNonvoter, "n", "b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down := strings.Split(tt.down, ",")
			var asked []string
			reachable := func(id string) bool {
				asked = append(asked, id)
				return !slices.Contains(down, id)
			}
			err := CanRemove(tt.servers, tt.remove, reachable)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("CanRemove(%s) = %v, want %v", tt.remove, err, tt.want)
			}
			if slices.Contains(asked, tt.remove) {
				t.Errorf("asked whether %s, the one being removed, is reachable", tt.remove)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.NodeID, cfg.Addr = t.TempDir(), "n1", "10.0.0.1:2377"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := cfg
	bad.NodeID, bad.ApplyTimeout = "", 0
	bad.LeaderLeaseTimeout = 2 * bad.HeartbeatTimeout
	err := bad.Validate()
	for _, want := range []string{"node ID", "apply timeout", "LeaderLeaseTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := Open(bad, nil); err == nil {
		t.Error("Open accepted an invalid config")
	}
}

func ExampleCanRemove() {
	servers := []raft.Server{
		{Suffrage: raft.Voter, ID: "a", Address: "10.0.0.1:2377"},
		{Suffrage: raft.Voter, ID: "b", Address: "10.0.0.2:2377"},
		{Suffrage: raft.Voter, ID: "c", Address: "10.0.0.3:2377"},
	}
	cDown := func(id string) bool { return id != "c" }
	fmt.Println(CanRemove(servers, "b", cDown))
	fmt.Println(CanRemove(servers, "c", cDown))
	// Output:
	// can't remove member from the raft: this would result in a loss of quorum
	// <nil>
}
