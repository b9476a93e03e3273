package manager

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/pki"
)

func voters(ids ...string) []raft.Server {
	var out []raft.Server
	for _, id := range ids {
		out = append(out, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":2377"), Suffrage: raft.Voter})
	}
	return out
}

// The quorum guard of demote asks the prober which managers are reachable.
// A manager promoted a moment ago has not been pinged yet: it must count as
// reachable for three intervals from when this manager first heard of it,
// however long this manager has been running.
func TestProberGivesANewManagerItsWindow(t *testing.T) {
	clock := time.Unix(1000, 0)
	m := &Manager{cfg: Config{ProbeInterval: 500 * time.Millisecond}, id: pki.Identity{NodeID: "a"}}
	p := newProber(m)
	p.now = func() time.Time { return clock }
	advance := func(d time.Duration) { clock = clock.Add(d) }

	p.track(voters("a", "b"))
	p.lastOK["b"] = clock
	advance(time.Hour)
	if p.reachable("b") {
		t.Errorf("b answered last an hour ago and still counts as reachable")
	}
	if !p.reachable("a") {
		t.Errorf("the prober's own manager is not reachable")
	}

	// c joins an hour after the prober started: it has its window.
	if peers := p.track(voters("a", "b", "c")); len(peers) != 2 {
		t.Errorf("track returned %d peers to ping, want b and c", len(peers))
	}
	if !p.reachable("c") {
		t.Errorf("c, just added and not yet pinged, counts as unreachable")
	}
	advance(1400 * time.Millisecond)
	if !p.reachable("c") {
		t.Errorf("c is unreachable before three intervals have passed")
	}
	advance(200 * time.Millisecond)
	if p.reachable("c") {
		t.Errorf("c, never answering, is reachable after three intervals")
	}

	// b leaves Raft and comes back: its old silence is forgotten.
	p.track(voters("a", "c"))
	p.track(voters("a", "b", "c"))
	if !p.reachable("b") {
		t.Errorf("b, promoted again, is judged by its answers from before it left")
	}
}
