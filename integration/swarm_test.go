package integration

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
)

// The node half of Docker's swarm tutorial, with `docker` replaced by shoal.
func TestTutorialJoinPromoteDemote(t *testing.T) {
	c := newCluster(t, 4)
	worker, _ := c.init(1)
	for i := 2; i <= 4; i++ {
		c.join(i, worker, 1)
	}
	w := ready("node-01", "node-02", "node-03", "node-04")
	w["node-01"] = want{"Ready", "Leader"}
	c.waitNodes(1, settle, w)

	table := c.node(1).MustCLI(t, "node", "ls")
	for _, col := range []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"} {
		if !strings.Contains(strings.SplitN(table, "\n", 2)[0], col) {
			t.Errorf("node ls header lacks %q:\n%s", col, table)
		}
	}
	if !strings.Contains(table, " *   node-01") {
		t.Errorf("node ls does not mark node-01 as the node it talks to:\n%s", table)
	}

	for _, n := range []string{"node-02", "node-03"} {
		if out := c.node(1).MustCLI(t, "node", "promote", n); strings.TrimSpace(out) != "Node "+n+" promoted to a manager in the swarm." {
			t.Errorf("promote %s printed %q", n, out)
		}
	}
	w["node-02"], w["node-03"] = want{"Ready", "Reachable"}, want{"Ready", "Reachable"}
	c.waitNodes(1, settle, w)
	// A promoted node is a manager: it answers node ls itself, with a
	// certificate re-issued for its new role.
	c.waitNodes(2, settle, w)
	c.checkRole(2, "swarm-manager")

	for _, n := range []string{"node-02", "node-03"} {
		if out := c.node(1).MustCLI(t, "node", "demote", n); strings.TrimSpace(out) != "Manager "+n+" demoted in the swarm." {
			t.Errorf("demote %s printed %q", n, out)
		}
	}
	w["node-02"], w["node-03"] = want{"Ready", ""}, want{"Ready", ""}
	c.waitNodes(1, settle, w)
	clustertest.WaitFor(t, settle, "node-02's certificate to say swarm-worker again", func() error { return c.role(2, "swarm-worker") })
	clustertest.WaitFor(t, settle, "node-02 to stop answering as a manager", func() error {
		out, err := c.node(2).CLI("node", "ls")
		if err == nil || !strings.Contains(out, "This node is not a swarm manager") {
			return fmt.Errorf("node ls on demoted node-02: err=%v out=%s", err, out)
		}
		return nil
	})

	// The last manager cannot be demoted.
	out, err := c.node(1).CLI("node", "demote", "node-01")
	if err == nil || !strings.Contains(out, "attempting to demote the last manager of the swarm") {
		t.Errorf("demoting the last manager: err=%v out=%s", err, out)
	}
	// Availability changes go through Raft and show in node ls.
	c.node(1).MustCLI(t, "node", "update", "--availability", "drain", "node-04")
	rows, err := c.nodeLs(1)
	if err != nil || rows["node-04"].Availability != "Drain" {
		t.Errorf("node-04 after drain: %v %v", rows["node-04"], err)
	}
}

// Three managers and a worker: kill -9 the leader, a survivor takes over.
func TestLeaderKilled(t *testing.T) {
	c := threeManagersAndWorker(t)
	old := c.leader(1, settle)
	survivor := 1 + old%3
	events := c.watchEvents(survivor, "--filter", "type=raft", "--filter", "type=node")
	c.node(old).Kill(t)
	killed := time.Now()

	var took time.Duration
	clustertest.WaitFor(t, failover, "a write through a survivor after the leader was killed", func() error {
		if err := c.write(survivor); err != nil {
			return err
		}
		took = time.Since(killed)
		return nil
	})
	t.Logf("a write succeeded %s after the leader was killed", took)
	if l := c.leader(survivor, failover); l == old {
		t.Fatalf("the dead node-%02d is still listed as leader", old)
	}
	w := ready("node-01", "node-02", "node-03", "node-04")
	for i := 1; i <= 3; i++ {
		w[fmt.Sprintf("node-%02d", i)] = want{"Ready", "Reachable"}
	}
	w[fmt.Sprintf("node-%02d", old)] = want{"Down", "Unreachable"}
	newLeader := c.leader(survivor, failover)
	w[fmt.Sprintf("node-%02d", newLeader)] = want{"Ready", "Leader"}
	c.waitNodes(survivor, settle, w)
	// shoal events on the survivor told the story as it happened.
	oldName, newName := fmt.Sprintf("node-%02d", old), fmt.Sprintf("node-%02d", newLeader)
	if ev := events(); !strings.Contains(ev, "raft elect") || !strings.Contains(ev, "leader="+newName) ||
		!strings.Contains(ev, "leader.old="+oldName) || !strings.Contains(ev, "name="+oldName+", state.new=down") {
		t.Errorf("shoal events during the failover:\n%s", ev)
	}
	if rs := c.node(survivor).MustCLI(t, "raft", "status"); !strings.Contains(rs, "2 reachable: 0 more may fail") ||
		!strings.Contains(rs, "Leader") || !strings.Contains(rs, "Unreachable") {
		t.Errorf("raft status with one manager dead:\n%s", rs)
	}

	c.node(old).Restart(t)
	w[fmt.Sprintf("node-%02d", old)] = want{"Ready", "Reachable"}
	c.waitNodes(survivor, settle, w)
	c.waitNodes(old, settle, w)
}

// Two of three managers die: no writes, but reads and the worker go on.
func TestQuorumLost(t *testing.T) {
	c := threeManagersAndWorker(t)
	l := c.leader(1, settle)
	others := []int{}
	for i := 1; i <= 3; i++ {
		if i != l {
			others = append(others, i)
		}
	}
	survivor, dead := others[0], []int{l, others[1]}
	for _, i := range dead {
		c.node(i).Kill(t)
	}

	clustertest.WaitFor(t, failover, "writes to fail with the no-leader message", func() error {
		start := time.Now()
		out, err := c.node(survivor).CLI("swarm", "join-token", "--rotate", "worker")
		took := time.Since(start)
		if err == nil {
			return fmt.Errorf("a write succeeded without quorum: %s", out)
		}
		if !strings.Contains(out, "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.") {
			return fmt.Errorf("write failed with another message: %s", out)
		}
		if took > 5*time.Second {
			t.Errorf("a write without quorum took %s to fail; want under 5s", took)
		}
		return nil
	})
	if _, err := c.nodeLs(survivor); err != nil {
		t.Fatalf("node ls without quorum: %v", err)
	}
	clustertest.WaitFor(t, failover, "raft status to say there is no quorum", func() error {
		if rs := c.node(survivor).MustCLI(t, "raft", "status"); !strings.Contains(rs, "NO QUORUM") {
			return fmt.Errorf("raft status:\n%s", rs)
		}
		return nil
	})
	if out := c.node(4).MustCLI(t, "info"); !strings.Contains(out, "Swarm: active") {
		t.Errorf("the worker left the swarm without quorum:\n%s", out)
	}

	c.node(dead[1]).Restart(t)
	clustertest.WaitFor(t, failover, "writes to work again after a manager came back", func() error {
		return c.write(survivor)
	})
	w := ready("node-01", "node-02", "node-03", "node-04")
	for i := 1; i <= 3; i++ {
		w[fmt.Sprintf("node-%02d", i)] = want{"Ready", "Reachable"}
	}
	w[fmt.Sprintf("node-%02d", dead[0])] = want{"Down", "Unreachable"}
	w[fmt.Sprintf("node-%02d", c.leader(survivor, failover))] = want{"Ready", "Leader"}
	c.waitNodes(survivor, settle, w)
}

// Kill -9 every manager, start them again: the same cluster comes back.
func TestAllManagersRestart(t *testing.T) {
	c := threeManagersAndWorker(t)
	before, err := c.nodeLs(1)
	if err != nil {
		t.Fatal(err)
	}
	clusterID := strings.TrimSpace(c.node(1).MustCLI(t, "info", "--format", "{{.Swarm.Cluster.ID}}"))
	for i := 1; i <= 3; i++ {
		c.node(i).Kill(t)
	}
	for i := 1; i <= 3; i++ {
		c.node(i).Restart(t)
	}
	l := c.leader(1, failover)
	w := ready("node-01", "node-02", "node-03", "node-04")
	for i := 1; i <= 3; i++ {
		w[fmt.Sprintf("node-%02d", i)] = want{"Ready", "Reachable"}
	}
	w[fmt.Sprintf("node-%02d", l)] = want{"Ready", "Leader"}
	c.waitNodes(1, settle, w)
	after, err := c.nodeLs(1)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range before {
		if after[name].ID != r.ID {
			t.Errorf("%s was %s, is %s after the restart", name, r.ID, after[name].ID)
		}
	}
	if id := strings.TrimSpace(c.node(2).MustCLI(t, "info", "--format", "{{.Swarm.Cluster.ID}}")); id != clusterID {
		t.Errorf("cluster ID was %s, is %s after the restart", clusterID, id)
	}
	if err := c.write(1); err != nil {
		t.Errorf("write after the restart: %v", err)
	}
}

// threeManagersAndWorker: node-01..03 managers, node-04 a worker.
func threeManagersAndWorker(t *testing.T) *cluster {
	c := newCluster(t, 4)
	worker, manager := c.init(1)
	c.join(2, manager, 1)
	c.join(3, manager, 1)
	c.join(4, worker, 1)
	w := map[string]want{
		"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"},
		"node-03": {"Ready", "Reachable"}, "node-04": {"Ready", ""},
	}
	c.waitNodes(1, settle, w)
	return c
}

// role checks the OU of node i's certificate on disk.
func (c *cluster) role(i int, ou string) error {
	b, err := os.ReadFile(filepath.Join(c.certDir(i), "cert.pem"))
	if err != nil {
		return err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return fmt.Errorf("node-%02d: no PEM in cert.pem", i)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	if got := cert.Subject.OrganizationalUnit; len(got) != 1 || got[0] != ou {
		return fmt.Errorf("node-%02d's certificate has OU %v, want %s", i, got, ou)
	}
	return nil
}

func (c *cluster) checkRole(i int, ou string) {
	c.t.Helper()
	if err := c.role(i, ou); err != nil {
		c.t.Error(err)
	}
}

// node rm and swarm leave, with Swarm's refusals.
func TestNodeRmAndLeave(t *testing.T) {
	c := newCluster(t, 3)
	worker, manager := c.init(1)
	c.join(2, manager, 1)
	c.join(3, worker, 1)
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"}, "node-03": {"Ready", ""}})
	refused := func(i int, text string, args ...string) {
		t.Helper()
		if out, err := c.node(i).CLI(args...); err == nil || !strings.Contains(out, text) {
			t.Errorf("%v on node-%02d: err=%v, want a refusal saying %q:\n%s", args, i, err, text, out)
		}
	}
	refused(2, "You are attempting to leave the swarm on a node that is participating as a manager", "swarm", "leave")
	refused(1, "is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", "node", "rm", "node-02")
	refused(1, "is not down and can't be removed", "node", "rm", "node-03")

	// A worker that is down goes with a plain rm.
	c.node(3).Kill(t)
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"}, "node-03": {"Down", ""}})
	c.node(1).MustCLI(t, "node", "rm", "node-03")
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"}})

	// A demoted manager that is up needs --force; then it is out, and its
	// certificate opens nothing any more.
	c.node(1).MustCLI(t, "node", "demote", "node-02")
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}})
	refused(1, "is not down and can't be removed", "node", "rm", "node-02")
	c.node(1).MustCLI(t, "node", "rm", "--force", "node-02")
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}})
	if got := c.probe(t, 2, 1, "certs", c.certDir(2), "Session"); !strings.HasPrefix(got, "PermissionDenied") {
		t.Errorf("a removed node opened a session: %s", got)
	}
	if out := c.node(2).MustCLI(t, "swarm", "leave"); strings.TrimSpace(out) != "Node left the swarm." {
		t.Errorf("swarm leave printed %q", out)
	}
	if out := c.node(2).MustCLI(t, "info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("node-02 after leaving:\n%s", out)
	}
}
