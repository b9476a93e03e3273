package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
)

// waitSpread waits until the service runs n tasks, none on the nodes in
// avoid, and no slot twice; it says how long that took.
func (c *serviceCluster) waitSpread(t *testing.T, service string, n int, avoid ...string) time.Duration {
	t.Helper()
	start := time.Now()
	clustertest.WaitFor(t, converge, fmt.Sprintf("%d tasks of %s running, none on %v", n, service, avoid), func() error {
		byNode := c.running(t, service)
		total, slots := 0, map[string]bool{}
		for node, ts := range byNode {
			for _, a := range avoid {
				if node == a && len(ts) > 0 {
					return fmt.Errorf("%s still runs %d tasks", a, len(ts))
				}
			}
			for _, x := range ts {
				if slots[x.Slot] {
					return fmt.Errorf("slot %s runs twice: %v", x.Slot, byNode)
				}
				slots[x.Slot] = true
			}
			total += len(ts)
		}
		if total != n {
			return fmt.Errorf("%d running: %v", total, byNode)
		}
		return nil
	})
	return time.Since(start)
}

// waitNoContainers waits until node i's containerd namespace holds nothing.
func (c *serviceCluster) waitNoContainers(t *testing.T, i int) {
	t.Helper()
	clustertest.WaitFor(t, converge, fmt.Sprintf("node-%02d to hold no containers", i), func() error {
		left, err := imagetest.Leftovers(t, c.containerd, c.namespaces[i-1])
		if err != nil {
			return err
		}
		if len(left) > 0 {
			return fmt.Errorf("node-%02d holds %v", i, left)
		}
		return nil
	})
}

// A worker running 2 of 8 tasks is killed: the 8 run on the others; when it
// comes back it runs none of its old tasks and its containers are gone.
func TestWorkerKilledTasksMove(t *testing.T) {
	c := newServiceCluster(t, 4, 1)
	c.node(1).MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "8", c.images.Nginx)
	if byNode := c.waitRunning(t, "web", 8); len(byNode["node-04"]) != 2 {
		t.Fatalf("node-04 runs %d of 8 tasks, want 2: %v", len(byNode["node-04"]), byNode)
	}
	c.node(4).Kill(t)
	took := c.waitSpread(t, "web", 8, "node-04")
	t.Logf("8 tasks ran again without node-04 %s after the kill", took.Round(10*time.Millisecond))
	rows, err := c.nodeLs(1)
	if err != nil || rows["node-04"].Status != "Down" {
		t.Errorf("node-04 after its tasks moved: %+v %v", rows["node-04"], err)
	}

	c.node(4).Restart(t)
	c.waitNodes(1, settle, map[string]want{
		"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}, "node-03": {"Ready", ""}, "node-04": {"Ready", ""},
	})
	c.waitNoContainers(t, 4)
	c.waitSpread(t, "web", 8, "node-04")
}

// The leader's own node runs tasks and its daemon is killed: a new leader
// replaces them and 8 run; the old leader comes back clean.
func TestLeaderKilledWhileRunningTasks(t *testing.T) {
	c := newServiceCluster(t, 4, 3)
	c.node(1).MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "8", c.images.Nginx)
	if byNode := c.waitRunning(t, "web", 8); len(byNode["node-01"]) != 2 {
		t.Fatalf("the leader runs %d of 8 tasks, want 2: %v", len(byNode["node-01"]), byNode)
	}
	c.node(1).Kill(t)
	c.via = 2
	clustertest.WaitFor(t, failover, "a new leader", func() error {
		if l := c.leader(2, failover); l == 1 {
			return fmt.Errorf("node-02 still lists the killed node-01 as leader")
		}
		return nil
	})
	took := c.waitSpread(t, "web", 8, "node-01")
	t.Logf("8 tasks ran again without the old leader %s after the kill", took.Round(10*time.Millisecond))

	c.node(1).Restart(t)
	clustertest.WaitFor(t, settle, "node-01 back as a reachable manager", func() error {
		rows, err := c.nodeLs(2)
		if err != nil {
			return err
		}
		if r := rows["node-01"]; r.Status != "Ready" || r.ManagerStatus != "Reachable" {
			return fmt.Errorf("node-01 is %s/%s", r.Status, r.ManagerStatus)
		}
		return nil
	})
	c.waitNoContainers(t, 1)
	c.waitSpread(t, "web", 8, "node-01")
}
