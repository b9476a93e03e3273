package raftstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/api"
)

// testLogger writes to t.Log, so logs show only for a failing test, and
// stops writing when the test ends (Raft goroutines may outlive it briefly).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// testConfig is a Config with short timings for server id in dir.
func testConfig(t testing.TB, id, dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.NodeID, cfg.Addr = dir, id, id
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.ApplyTimeout = 2 * time.Second
	cfg.LeaderWait = time.Second
	cfg.Logger = testLogger(t).With("node", id)
	return cfg
}

// waitFor polls cond until it returns nil, and fails the test with cond's
// last error if that takes longer than timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// testCluster is n stores on in-memory transports, each with its own dir.
type testCluster struct {
	t      testing.TB
	cfgs   []Config
	trans  []*raft.InmemTransport
	stores []*Store // nil once killed
}

func newTestCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	c := &testCluster{t: t}
	for i := range n {
		cfg := testConfig(t, fmt.Sprintf("node%d", i), t.TempDir())
		for _, opt := range opts {
			opt(&cfg)
		}
		_, tr := raft.NewInmemTransport(raft.ServerAddress(cfg.Addr))
		c.cfgs, c.trans = append(c.cfgs, cfg), append(c.trans, tr)
	}
	for i := range n {
		for j := range n {
			if i != j {
				c.trans[i].Connect(raft.ServerAddress(c.cfgs[j].Addr), c.trans[j])
			}
		}
	}
	for i := range n {
		s, err := Open(c.cfgs[i], c.trans[i])
		if err != nil {
			t.Fatalf("open %s: %v", c.cfgs[i].NodeID, err)
		}
		c.stores = append(c.stores, s)
	}
	t.Cleanup(func() {
		for i := range c.stores {
			c.kill(i)
		}
	})
	return c
}

// kill shuts store i down and cuts it off, as if its host died: the others
// get "connection refused" at once rather than a timeout.
func (c *testCluster) kill(i int) {
	if c.stores[i] == nil {
		return
	}
	if err := c.stores[i].Shutdown(); err != nil {
		c.t.Errorf("shutdown %s: %v", c.cfgs[i].NodeID, err)
	}
	c.stores[i] = nil
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(raft.ServerAddress(c.cfgs[i].Addr))
		}
	}
}

// leader waits until exactly one live store leads, and it is not store
// not, and returns its index.
func (c *testCluster) leader(not int, timeout time.Duration) int {
	c.t.Helper()
	found := -1
	waitFor(c.t, timeout, "one leader", func() error {
		var leaders []int
		for i, s := range c.stores {
			if s != nil && s.IsLeader() {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) != 1 || leaders[0] == not {
			return fmt.Errorf("leaders %v (excluding %d)", leaders, not)
		}
		found = leaders[0]
		return nil
	})
	return found
}

// startCluster is newTestCluster with node0 bootstrapped, the others added
// as voters and the cluster initialised.
func startCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := newTestCluster(t, n, opts...)
	if err := c.stores[0].Bootstrap(); err != nil {
		t.Fatal(err)
	}
	c.leader(-1, 10*time.Second)
	mustApply(t, c.stores[0], initCluster("c1", "node0"))
	for i := 1; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.stores[0].AddVoter(ctx, c.cfgs[i].NodeID, c.cfgs[i].Addr)
		cancel()
		if err != nil {
			t.Fatalf("add %s: %v", c.cfgs[i].NodeID, err)
		}
	}
	// hashicorp/raft refuses a vote to a server missing from the voter's own
	// configuration: until every server has the full configuration, losing
	// the leader can leave no one able to win (see DESIGN.md).
	waitFor(t, 10*time.Second, "every server has the full configuration", func() error {
		for i, s := range c.stores {
			if servers, err := s.Servers(); err != nil || len(servers) != n {
				return fmt.Errorf("node%d: servers %v, %v", i, servers, err)
			}
		}
		return nil
	})
	return c
}

// defaultTimings puts DefaultConfig's timings back into a test config.
func defaultTimings(cfg *Config) {
	d := DefaultConfig()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = d.HeartbeatTimeout, d.ElectionTimeout
	cfg.LeaderLeaseTimeout, cfg.CommitTimeout = d.LeaderLeaseTimeout, d.CommitTimeout
	cfg.ApplyTimeout, cfg.LeaderWait = d.ApplyTimeout, d.LeaderWait
}

func initCluster(clusterID, nodeID string) *api.Command {
	return &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{
		Cluster: &api.Cluster{Id: clusterID, WorkerSecret: "w1", ManagerSecret: "m1", CreatedUnixNano: 1,
			Settings: &api.ClusterSettings{HeartbeatPeriodNs: int64(time.Second)}},
		Node: &api.Node{Id: nodeID, Hostname: nodeID, Role: api.NodeRole_MANAGER, DesiredRole: api.NodeRole_MANAGER},
	}}}
}

func addNode(id, hostname string) *api.Command {
	return &api.Command{Op: &api.Command_AddNode{AddNode: &api.AddNode{Node: &api.Node{Id: id, Hostname: hostname}}}}
}

func rotateSecret(role api.NodeRole, secret string) *api.Command {
	return &api.Command{Op: &api.Command_RotateSecret{RotateSecret: &api.RotateSecret{Role: role, Secret: secret}}}
}

// mustApply applies cmd on s and returns the index it took effect at.
func mustApply(t testing.TB, s *Store, cmd *api.Command) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply %v: %v", cmd, err)
	}
	index, ok := resp.(uint64)
	if !ok || index == 0 {
		t.Fatalf("apply %v: response %#v, want a log index", cmd, resp)
	}
	return index
}
