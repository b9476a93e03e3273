package raftstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// waitLeaderChange waits for v on ch.
func waitLeaderChange(t *testing.T, ch <-chan bool, want bool, what string) {
	t.Helper()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for {
		select {
		case v := <-ch:
			if v == want {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: no %v on LeaderChanges within 5s", what, want)
		}
	}
}

// sameNodes says how b's nodes differ from a's, or nil.
func sameNodes(a, b *FSM) error {
	na, nb := a.Nodes(), b.Nodes()
	if len(na) != len(nb) {
		return fmt.Errorf("%d nodes, want %d", len(nb), len(na))
	}
	for i := range na {
		if !proto.Equal(na[i], nb[i]) {
			return fmt.Errorf("node %v, want %v", nb[i], na[i])
		}
	}
	if !proto.Equal(a.Cluster(), b.Cluster()) {
		return fmt.Errorf("cluster %v, want %v", b.Cluster(), a.Cluster())
	}
	return nil
}

func TestCluster(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	s0 := c.stores[0]
	if s0.HasState() {
		t.Fatal("new store has state")
	}
	if err := s0.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if c.leader(-1, 5*time.Second) != 0 {
		t.Fatal("bootstrapped server is not the leader")
	}
	waitLeaderChange(t, s0.LeaderChanges(), true, "node0 after bootstrap")
	mustApply(t, s0, initCluster("c1", "node0"))

	for _, i := range []int{1, 2} {
		if err := s0.AddVoter(ctx, c.cfgs[i].NodeID, c.cfgs[i].Addr); err != nil {
			t.Fatalf("add %s: %v", c.cfgs[i].NodeID, err)
		}
	}
	if err := s0.AddVoter(ctx, "node1", "node1"); err != nil {
		t.Errorf("AddVoter again for a voter: %v", err)
	}
	servers, err := s0.Servers()
	if err != nil || len(servers) != 3 {
		t.Fatalf("servers %v, %v; want 3", servers, err)
	}

	// A write on the leader reaches the followers; WaitApplied makes it
	// visible there at once.
	index := mustApply(t, s0, addNode("node1", "host1"))
	for _, i := range []int{1, 2} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.stores[i].WaitApplied(wctx, index)
		cancel()
		if err != nil {
			t.Fatalf("node%d: %v", i, err)
		}
		if _, ok := c.stores[i].FSM().Node("node1"); !ok {
			t.Fatalf("node%d: applied index %d but node1 is not in its FSM", i, c.stores[i].AppliedIndex())
		}
	}
	waitFor(t, 5*time.Second, "followers catch up", func() error {
		for _, i := range []int{1, 2} {
			if err := sameNodes(s0.FSM(), c.stores[i].FSM()); err != nil {
				return fmt.Errorf("node%d: %w", i, err)
			}
		}
		return nil
	})

	// Followers refuse writes and name the leader; an FSM refusal comes back
	// as the error.
	if _, err := c.stores[1].Apply(ctx, addNode("x", "x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("apply on a follower: %v, want ErrNotLeader", err)
	}
	if id, addr := c.stores[1].Leader(); id != "node0" || addr != "node0" {
		t.Errorf("follower's leader %q %q", id, addr)
	}
	if _, err := s0.Apply(ctx, addNode("node1", "again")); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate AddNode through raft: %v, want ErrExists", err)
	}
	if info := s0.Info(); info.State != "Leader" || info.LeaderId != "node0" || info.AppliedIndex < index ||
		info.CommitIndex < index || info.HeartbeatTimeoutNs != int64(c.cfgs[0].HeartbeatTimeout) {
		t.Errorf("leader info %v", info)
	}

	// The leader dies: a survivor takes over and takes writes.
	lastBefore := s0.Info().LastLogIndex
	killed := time.Now()
	c.kill(0)
	next := c.leader(0, 5*time.Second)
	t.Logf("new leader node%d after %s", next, time.Since(killed).Round(time.Millisecond))
	waitLeaderChange(t, c.stores[next].LeaderChanges(), true, "new leader")
	other := 3 - next
	// The new leader's first entry is a no-op the FSM never sees; a follower
	// waiting for that index must still get there.
	var noop uint64
	waitFor(t, 5*time.Second, "new leader commits its first entry", func() error {
		info := c.stores[next].Info()
		if info.CommitIndex < info.LastLogIndex || info.LastLogIndex <= lastBefore {
			return fmt.Errorf("commit %d, last %d", info.CommitIndex, info.LastLogIndex)
		}
		noop = info.CommitIndex
		return nil
	})
	if c.stores[other].AppliedIndex() >= noop {
		t.Fatalf("follower's FSM applied %d >= no-op index %d: the test no longer covers no-ops", c.stores[other].AppliedIndex(), noop)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := c.stores[other].WaitApplied(wctx, noop); err != nil {
		t.Errorf("wait for the no-op: %v", err)
	}
	cancel()
	mustApply(t, c.stores[next], rotateSecret(api.NodeRole_WORKER, "w2"))
	waitFor(t, 5*time.Second, "the other survivor catches up", func() error {
		return sameNodes(c.stores[next].FSM(), c.stores[other].FSM())
	})

	// Two of three down: writes fail with ErrNoLeader, within seconds.
	c.kill(other)
	for _, what := range []string{"on the isolated leader", "once it has stepped down"} {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.stores[next].Apply(actx, rotateSecret(api.NodeRole_WORKER, "w3"))
		cancel()
		took := time.Since(start)
		t.Logf("apply %s: %v after %s", what, err, took.Round(time.Millisecond))
		if !errors.Is(err, ErrNoLeader) {
			t.Errorf("apply %s: %v, want ErrNoLeader", what, err)
		}
		if limit := c.cfgs[next].LeaderWait + c.cfgs[next].ApplyTimeout; took > limit || took > 5*time.Second {
			t.Errorf("apply %s took %s, over LeaderWait+ApplyTimeout = %s", what, took, limit)
		}
	}
	if c.stores[next].IsLeader() {
		t.Error("a server without quorum still calls itself leader")
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, "node0", dir)
	open := func() *Store {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(cfg.Addr))
		s, err := Open(cfg, tr)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if err := s.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "leader", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("state %s", s.Info().State)
		}
		return nil
	})
	mustApply(t, s, initCluster("c1", "node0"))
	mustApply(t, s, addNode("w1", "worker1"))
	// Half the state in a snapshot, half in the log after it.
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, addNode("w2", "worker2"))
	mustApply(t, s, &api.Command{Op: &api.Command_RemoveNode{RemoveNode: &api.RemoveNode{Id: "w1"}}})
	want, applied := s.FSM(), s.AppliedIndex()

	// A second daemon on the same directory is refused, not left hanging.
	_, tr := raft.NewInmemTransport("other")
	if _, err := Open(cfg, tr); err == nil || !strings.Contains(err.Error(), "another shoal daemon") {
		t.Errorf("second Open on the same DataDir: %v", err)
	}

	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	var changes []bool
	for len(s.LeaderChanges()) > 0 {
		changes = append(changes, <-s.LeaderChanges())
	}
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Errorf("leader changes of a leader that shut down: %v, want [true false]", changes)
	}
	if _, err := s.Apply(context.Background(), addNode("w3", "x")); !errors.Is(err, ErrShutdown) {
		t.Errorf("apply after shutdown: %v, want ErrShutdown", err)
	}

	s = open()
	defer s.Shutdown()
	if !s.HasState() {
		t.Fatal("reopened store has no state")
	}
	waitFor(t, 5*time.Second, "state replayed", func() error {
		if s.AppliedIndex() < applied {
			return fmt.Errorf("applied %d, want %d", s.AppliedIndex(), applied)
		}
		return sameNodes(want, s.FSM())
	})
	if !s.FSM().IsRemoved("w1") {
		t.Error("removed node forgotten")
	}
	if err := s.Bootstrap(); !errors.Is(err, raft.ErrCantBootstrap) {
		t.Errorf("bootstrap of a store with state: %v", err)
	}
	waitFor(t, 5*time.Second, "leader after reopen", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("state %s", s.Info().State)
		}
		return nil
	})
	mustApply(t, s, addNode("w3", "worker3"))
}

func TestForceNewCluster(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	index := mustApply(t, c.stores[0], addNode("w1", "worker1"))
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.stores[2].WaitApplied(wctx, index); err != nil {
		t.Fatal(err)
	}
	want := c.stores[2].FSM()
	for i := range c.stores {
		c.kill(i)
	}

	// node2 survives alone and rebuilds a one-manager cluster from its copy.
	cfg := c.cfgs[2]
	if err := ForceNewCluster(cfg, nil); err != nil {
		t.Fatal(err)
	}
	_, tr := raft.NewInmemTransport(raft.ServerAddress(cfg.Addr))
	s, err := Open(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	waitFor(t, 5*time.Second, "node2 leads alone", func() error {
		if !s.IsLeader() {
			return fmt.Errorf("state %s", s.Info().State)
		}
		return nil
	})
	servers, err := s.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != "node2" {
		t.Fatalf("servers after force-new-cluster: %v, %v", servers, err)
	}
	if err := sameNodes(want, s.FSM()); err != nil {
		t.Fatalf("state after force-new-cluster: %v", err)
	}
	mustApply(t, s, addNode("w2", "worker2"))
}

func TestRemoveServer(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	if err := c.stores[1].RemoveServer(ctx, "node2"); !errors.Is(err, ErrNotLeader) {
		t.Errorf("RemoveServer on a follower: %v, want ErrNotLeader", err)
	}
	if err := c.stores[0].RemoveServer(ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	if err := c.stores[0].RemoveServer(ctx, "node2"); err != nil {
		t.Errorf("removing a non-member: %v", err)
	}
	servers, err := c.stores[0].Servers()
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers after removal: %v, %v", servers, err)
	}
	for _, srv := range servers {
		if srv.ID == "node2" {
			t.Errorf("node2 still in %v", servers)
		}
	}
	// The cluster of two goes on without node2.
	mustApply(t, c.stores[0], addNode("w1", "worker1"))
}

func TestStoreWithoutLeader(t *testing.T) {
	cfg := testConfig(t, "node0", t.TempDir())
	cfg.LeaderWait = 300 * time.Millisecond
	_, tr := raft.NewInmemTransport(raft.ServerAddress(cfg.Addr))
	s, err := Open(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()

	if _, err := s.Apply(context.Background(), &api.Command{}); err == nil || errors.Is(err, ErrNoLeader) {
		t.Errorf("empty command: %v, want a plain error", err)
	}
	start := time.Now()
	_, err = s.Apply(context.Background(), addNode("a", "a"))
	if took := time.Since(start); !errors.Is(err, ErrNoLeader) || took < cfg.LeaderWait || took > cfg.LeaderWait+time.Second {
		t.Errorf("apply with no leader: %v after %s, want ErrNoLeader after LeaderWait (%s)", err, took, cfg.LeaderWait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Apply(ctx, addNode("a", "a")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("apply with a short context: %v, want DeadlineExceeded", err)
	}
	if err := s.AddVoter(context.Background(), "node1", "node1"); !errors.Is(err, ErrNoLeader) {
		t.Errorf("AddVoter with no leader: %v, want ErrNoLeader", err)
	}
	if err := s.WaitApplied(context.Background(), 0); err != nil {
		t.Errorf("WaitApplied(0): %v", err)
	}
	if err := s.WaitApplied(ctx, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitApplied beyond the log: %v, want DeadlineExceeded", err)
	}
	if id, addr := s.Leader(); id != "" || addr != "" {
		t.Errorf("leader %q %q of a store with no cluster", id, addr)
	}
	if servers, err := s.Servers(); err != nil || len(servers) != 0 {
		t.Errorf("servers %v, %v; want none", servers, err)
	}
}
