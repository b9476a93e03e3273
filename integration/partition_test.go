package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
)

const noLeader = "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."

// A leader cut off from the others steps down and refuses writes; the
// majority goes on; after healing, the old leader follows the majority.
func TestLeaderPartitioned(t *testing.T) {
	c := threeManagersAndWorker(t)
	old := c.leader(1, settle)
	c.node(old).Host.LinkDown(t)
	cut := time.Now()
	survivor := 1 + old%3

	// A write sent to a follower that still names the cut-off leader ends,
	// one way or the other, once Raft notices: it does not hang on the
	// dead connection.
	err := c.write(survivor)
	t.Logf("a write through node-%02d right after the cut ended after %s (err: %v)", survivor, time.Since(cut).Round(10*time.Millisecond), err)
	if took := time.Since(cut); took > 5*time.Second {
		t.Errorf("a write through a follower right after the cut took %s; want under 5 s", took)
	}

	clustertest.WaitFor(t, failover, "the cut-off leader to refuse writes", func() error {
		start := time.Now()
		out, err := c.node(old).CLI("swarm", "join-token", "--rotate", "-q", "worker")
		if err == nil {
			return fmt.Errorf("the cut-off leader accepted a write")
		}
		if !strings.Contains(out, noLeader) {
			return fmt.Errorf("write on the cut-off leader failed with: %s", out)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the refusal took %s; want under 5 s", took)
		}
		return nil
	})
	t.Logf("the cut-off leader refused writes %s after the cut", time.Since(cut).Round(10*time.Millisecond))

	clustertest.WaitFor(t, failover, "the majority to accept a write", func() error { return c.write(survivor) })
	newLeader := 0
	clustertest.WaitFor(t, failover, "a new leader among the majority", func() error {
		if newLeader = c.leader(survivor, failover); newLeader == old {
			return fmt.Errorf("node-%02d is still listed as leader", old)
		}
		return nil
	})
	// A write the old leader cannot see.
	c.node(survivor).MustCLI(t, "node", "update", "--availability", "pause", "node-04")

	c.node(old).Host.LinkUp(t)
	w := map[string]want{"node-04": {"Ready", ""}}
	for i := 1; i <= 3; i++ {
		w[fmt.Sprintf("node-%02d", i)] = want{"Ready", "Reachable"}
	}
	w[fmt.Sprintf("node-%02d", newLeader)] = want{"Ready", "Leader"}
	c.waitNodes(old, settle, w) // the old leader follows, and sees the new leader
	clustertest.WaitFor(t, settle, "the healed node to have the majority's write", func() error {
		rows, err := c.nodeLs(old)
		if err != nil {
			return err
		}
		if rows["node-04"].Availability != "Pause" {
			return fmt.Errorf("node-04 is %s on node-%02d", rows["node-04"].Availability, old)
		}
		return nil
	})
	if err := c.write(old); err != nil {
		t.Errorf("a write through the healed node: %v", err)
	}
}

// Quorum lost for good: --force-new-cluster on the survivor keeps the
// services, the workers come back to it, and managers can be added again.
func TestForceNewCluster(t *testing.T) {
	c := newServiceCluster(t, 4, 3)
	c.node(1).MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "4", c.images.Nginx)
	c.waitRunning(t, "web", 4)
	c.node(2).Kill(t)
	c.node(3).Kill(t)
	clustertest.WaitFor(t, failover, "quorum to be lost", func() error {
		if out, err := c.node(1).CLI("swarm", "join-token", "--rotate", "worker"); err == nil || !strings.Contains(out, noLeader) {
			return fmt.Errorf("write without quorum: %v %s", err, out)
		}
		return nil
	})

	out := c.node(1).MustCLI(t, "swarm", "init", "--force-new-cluster")
	if strings.Count(out, "Removed manager") != 2 || !strings.Contains(out, "Swarm initialized") {
		t.Errorf("swarm init --force-new-cluster printed:\n%s", out)
	}
	if err := c.write(1); err != nil {
		t.Fatalf("a write after --force-new-cluster: %v", err)
	}
	if ls := c.node(1).MustCLI(t, "service", "ls"); !strings.Contains(ls, "web") {
		t.Errorf("the service is gone:\n%s", ls)
	}
	// The two lost managers' tasks move; 4 run on node-01 and node-04.
	c.waitSpread(t, "web", 4, "node-02", "node-03")

	// The old managers come back as workers, and are promoted again.
	c.node(2).Restart(t)
	c.node(3).Restart(t)
	w := map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}, "node-03": {"Ready", ""}, "node-04": {"Ready", ""}}
	c.waitNodes(1, settle, w)
	c.node(1).MustCLI(t, "node", "promote", "node-02", "node-03")
	w["node-02"], w["node-03"] = want{"Ready", "Reachable"}, want{"Ready", "Reachable"}
	c.waitNodes(1, settle, w)
	c.waitNodes(3, settle, w)
	if err := c.write(2); err != nil {
		t.Errorf("a write through a re-promoted manager: %v", err)
	}
	c.waitRunning(t, "web", 4)
}
