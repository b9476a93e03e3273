package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
	"github.com/shoal-dev/shoal/transport"
	"google.golang.org/grpc"
)

func TestMain(m *testing.M) {
	clustertest.Main(m, imagetest.Cleanup, func() {
		if probeBin.dir != "" {
			os.RemoveAll(probeBin.dir)
		}
	})
}

// Timeouts of the waits in these tests. They bound how long a test waits
// for the cluster to get somewhere; they are not the figures shoal aims at
// (the benchmarks measure those).
const (
	settle   = 30 * time.Second // nodes joining, becoming Ready, Reachable
	failover = 20 * time.Second // a new leader after a kill
)

// cluster is a set of test hosts node-01..node-NN on one LAN, each running a
// shoal daemon that is not yet in a swarm.
type cluster struct {
	t     testing.TB
	bin   string
	lan   *testhost.LAN
	nodes []*clustertest.Daemon
}

func newCluster(t testing.TB, n int, daemonArgs ...string) *cluster {
	t.Helper()
	testhost.Require(t)
	c := &cluster{t: t, bin: clustertest.BuildShoal(t), lan: testhost.NewLAN(t)}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node-%02d", i)
		h := c.lan.AddHost(t, name)
		c.nodes = append(c.nodes, clustertest.StartDaemon(t, c.bin, h, name, daemonArgs...))
	}
	return c
}

// node returns node-NN (1-based, as the names).
func (c *cluster) node(i int) *clustertest.Daemon { return c.nodes[i-1] }

// addr is node-NN's cluster address.
func (c *cluster) addr(i int) string { return c.node(i).Host.IP + ":2377" }

// init makes node i the first manager and returns the worker and manager
// join tokens.
func (c *cluster) init(i int) (worker, manager string) {
	c.t.Helper()
	n := c.node(i)
	out := n.MustCLI(c.t, "swarm", "init", "--advertise-addr", n.Host.IP)
	if !strings.Contains(out, "Swarm initialized: current node (") {
		c.t.Fatalf("swarm init printed:\n%s", out)
	}
	worker = strings.TrimSpace(n.MustCLI(c.t, "swarm", "join-token", "-q", "worker"))
	manager = strings.TrimSpace(n.MustCLI(c.t, "swarm", "join-token", "-q", "manager"))
	return worker, manager
}

// join joins node i through node via with the token.
func (c *cluster) join(i int, token string, via int) {
	c.t.Helper()
	out := c.node(i).MustCLI(c.t, "swarm", "join", "--token", token, "--advertise-addr", c.node(i).Host.IP, c.addr(via))
	if !strings.Contains(out, "This node joined a swarm as a") {
		c.t.Fatalf("swarm join of node-%02d printed:\n%s", i, out)
	}
}

// row is one line of `node ls --format json`.
type row struct {
	ID            string
	Self          bool
	Hostname      string
	Status        string
	Availability  string
	ManagerStatus string
}

// nodeLs lists the nodes as node via sees them, by hostname.
func (c *cluster) nodeLs(via int) (map[string]row, error) {
	out, err := c.node(via).CLI("node", "ls", "--format", "json")
	if err != nil {
		return nil, err
	}
	rows := map[string]row{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r row
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("node ls line %q: %v", line, err)
		}
		rows[r.Hostname] = r
	}
	return rows, nil
}

// want is what a test expects of a node in `node ls`.
type want struct{ status, manager string }

// waitNodes waits until node via lists exactly the nodes in w, each with the
// status and manager status given.
func (c *cluster) waitNodes(via int, timeout time.Duration, w map[string]want) {
	c.t.Helper()
	clustertest.WaitFor(c.t, timeout, fmt.Sprintf("node ls on node-%02d to show %v", via, w), func() error {
		rows, err := c.nodeLs(via)
		if err != nil {
			return err
		}
		if len(rows) != len(w) {
			return fmt.Errorf("%d nodes listed: %v", len(rows), rows)
		}
		for name, ww := range w {
			r, ok := rows[name]
			if !ok {
				return fmt.Errorf("%s not listed: %v", name, rows)
			}
			if r.Status != ww.status || r.ManagerStatus != ww.manager {
				return fmt.Errorf("%s is %s/%q, want %s/%q", name, r.Status, r.ManagerStatus, ww.status, ww.manager)
			}
		}
		return nil
	})
}

// leader returns the index of the node that node via lists as Leader.
func (c *cluster) leader(via int, timeout time.Duration) int {
	c.t.Helper()
	found := 0
	clustertest.WaitFor(c.t, timeout, fmt.Sprintf("node-%02d to know a leader", via), func() error {
		rows, err := c.nodeLs(via)
		if err != nil {
			return err
		}
		for name, r := range rows {
			if r.ManagerStatus == "Leader" {
				fmt.Sscanf(name, "node-%d", &found)
				return nil
			}
		}
		return fmt.Errorf("no leader listed: %v", rows)
	})
	return found
}

// write makes one Raft write through node via (rotating the worker token is
// harmless to nodes that joined already) and returns its error.
func (c *cluster) write(via int) error {
	_, err := c.node(via).CLI("swarm", "join-token", "--rotate", "-q", "worker")
	return err
}

// certDir is where node i keeps its certificate.
func (c *cluster) certDir(i int) string { return filepath.Join(c.node(i).DataDir, "certificates") }

// ready is the `node ls` expectation for a set of node names.
func ready(names ...string) map[string]want {
	w := map[string]want{}
	for _, n := range names {
		w[n] = want{status: "Ready"}
	}
	return w
}

// watchEvents starts `shoal events ARGS` on node i and returns a func that
// stops it and returns what it printed.
func (c *cluster) watchEvents(i int, args ...string) func() string {
	c.t.Helper()
	n := c.node(i)
	cmd := exec.Command(n.Bin, append([]string{"-H", n.Socket, "events"}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("shoal events on node-%02d: %v", i, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() string {
		cmd.Process.Kill()
		<-done
		return out.String()
	}
	c.t.Cleanup(func() { stop() })
	return stop
}

// controlConn is a gRPC connection to a daemon's control socket.
type controlConn struct {
	conn  *grpc.ClientConn
	ctl   api.ControlClient
	swarm api.SwarmClient
}

func dialControl(tb testing.TB, d *clustertest.Daemon) controlConn {
	tb.Helper()
	conn, err := transport.DialLocal(d.Socket)
	if err != nil {
		tb.Fatalf("connecting to %s's control socket: %v", d.Name, err)
	}
	tb.Cleanup(func() { conn.Close() })
	return controlConn{conn: conn, ctl: api.NewControlClient(conn), swarm: api.NewSwarmClient(conn)}
}
