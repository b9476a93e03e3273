package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
)

// converge bounds waits for services to reach what was asked.
const converge = 90 * time.Second

// serviceCluster is a cluster whose nodes run tasks: one containerd shared
// by all (a containerd namespace each), and a registry on its own test host
// holding the test images.
type serviceCluster struct {
	*cluster
	images     imagetest.Images
	containerd string        // socket
	registry   string        // address of the registry the images are in
	namespaces []string      // each node's containerd namespace
	controls   []controlConn // to each manager's control socket
	via        int           // the manager tasks are listed through (default node-01)
}

// newServiceCluster: node-01 to node-<managers> managers (node-01 the
// leader), the others workers, all Ready; daemonArgs go to every daemon.
func newServiceCluster(tb testing.TB, n, managers int, daemonArgs ...string) *serviceCluster {
	tb.Helper()
	testhost.Require(tb)
	socket := imagetest.SharedContainerd(tb)
	c := &cluster{t: tb, bin: clustertest.BuildShoal(tb), lan: testhost.NewLAN(tb)}
	reg := c.lan.AddHost(tb, "registry")
	addr := imagetest.StartRegistry(tb, reg)
	sc := &serviceCluster{cluster: c, images: imagetest.PushImages(tb, reg, addr), containerd: socket, registry: addr}
	// Registered before the daemons start, so it runs after they are
	// killed: whatever tasks they left running go.
	tb.Cleanup(func() {
		for _, ns := range sc.namespaces {
			if err := ctrdutil.RemoveNamespace(socket, ns); err != nil {
				tb.Errorf("removing containerd namespace %s: %v", ns, err)
			}
		}
	})
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node-%02d", i)
		h := c.lan.AddHost(tb, name)
		ns := "shoal-" + h.NS
		sc.namespaces = append(sc.namespaces, ns)
		args := append([]string{"--containerd-socket", socket, "--containerd-namespace", ns, "--insecure-registry", addr}, daemonArgs...)
		c.nodes = append(c.nodes, clustertest.StartDaemon(tb, c.bin, h, name, args...))
	}
	worker, manager := c.init(1)
	w := map[string]want{"node-01": {"Ready", "Leader"}}
	for i := 2; i <= n; i++ {
		if i <= managers {
			c.join(i, manager, 1)
			w[fmt.Sprintf("node-%02d", i)] = want{"Ready", "Reachable"}
		} else {
			c.join(i, worker, 1)
			w[fmt.Sprintf("node-%02d", i)] = want{"Ready", ""}
		}
	}
	c.waitNodes(1, settle, w)
	for i := 1; i <= managers; i++ {
		sc.controls = append(sc.controls, dialControl(tb, c.node(i)))
	}
	return sc
}

// control is the Control API of manager i, over its control socket.
func (c *serviceCluster) control(i int) api.ControlClient { return c.controls[i-1].ctl }

// task is one task, as the tests look at it.
type task struct {
	ID, Service, Node, Address, State, Desired, Slot, Error string
	Since, Created                                          int64
}

// tasks lists every task, asking a manager (c.via, default node-01).
func (c *serviceCluster) tasks(tb testing.TB) []task {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.control(max(c.via, 1)).ListTasks(ctx, &api.ListTasksRequest{})
	if err != nil {
		tb.Fatalf("listing tasks on node-%02d: %v", max(c.via, 1), err)
	}
	var ts []task
	for _, t := range resp.Tasks {
		ts = append(ts, task{
			ID: t.Id, Service: t.ServiceName, Node: resp.NodeNames[t.NodeId], Address: t.GetStatus().GetAddress(),
			State: t.GetStatus().GetState().String(), Desired: t.DesiredState.String(), Slot: fmt.Sprint(t.Slot),
			Error: t.GetStatus().GetErr(), Since: t.GetStatus().GetUnixNano(), Created: t.CreatedUnixNano,
		})
	}
	return ts
}

// running returns the running tasks of a service wanted running, by node.
func (c *serviceCluster) running(t testing.TB, service string) map[string][]task {
	byNode := map[string][]task{}
	for _, x := range c.tasks(t) {
		if x.Service == service && x.State == "RUNNING" && x.Desired == "RUNNING" {
			byNode[x.Node] = append(byNode[x.Node], x)
		}
	}
	return byNode
}

// waitRunning waits until a service runs exactly n tasks in all.
func (c *serviceCluster) waitRunning(t *testing.T, service string, n int) map[string][]task {
	t.Helper()
	var byNode map[string][]task
	clustertest.WaitFor(t, converge, fmt.Sprintf("%d running tasks of %s", n, service), func() error {
		byNode = c.running(t, service)
		total := 0
		for _, ts := range byNode {
			total += len(ts)
		}
		if total != n {
			return fmt.Errorf("%d running: %v\nservice ps:\n%s", total, byNode, c.psOut(service))
		}
		return nil
	})
	return byNode
}

func (c *serviceCluster) psOut(service string) string {
	out, _ := c.node(1).CLI("service", "ps", service)
	return out
}

func TestServiceTutorial(t *testing.T) {
	c := newServiceCluster(t, 4, 1, "--dashboard-addr", "0.0.0.0:9323")
	out := c.node(1).MustCLI(t, "service", "create", "--name", "nginx", c.images.Nginx)
	if !strings.Contains(out, "converged") {
		t.Errorf("service create did not report convergence:\n%s", out)
	}
	if ls := c.node(1).MustCLI(t, "service", "ls"); !strings.Contains(ls, "1/1") {
		t.Errorf("service ls after create:\n%s", ls)
	}

	if out := c.node(1).MustCLI(t, "service", "scale", "nginx=8"); !strings.Contains(out, "nginx scaled to 8") {
		t.Errorf("service scale printed:\n%s", out)
	}
	byNode := c.waitRunning(t, "nginx", 8)
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("node-%02d", i)
		if len(byNode[name]) != 2 {
			t.Errorf("%s runs %d nginx tasks, want 2: %v", name, len(byNode[name]), byNode)
		}
		for _, x := range byNode[name] {
			body := imagetest.RunTool(t, c.node(i).Host, "get", "http://"+x.Address+"/")
			if body != imagetest.NginxIndex {
				t.Errorf("GET http://%s/ from %s: %q, want %q", x.Address, name, body, imagetest.NginxIndex)
			}
		}
	}

	// node ps: what runs on a node, by default the one asked.
	for node, args := range map[string][]string{"node-03": {"node", "ps", "node-03"}, "node-01": {"node", "ps"}} {
		out, err := c.node(1).CLI(append(args, "--filter", "desired-state=running", "--format", "{{.Name}} {{.Node}}")...)
		if f := strings.Fields(out); err != nil || len(f) != 4 || f[1] != node || f[3] != node {
			t.Errorf("%v: %v, want two tasks on %s:\n%s", args, err, node, out)
		}
	}

	// The leader's metrics say what happened.
	metrics := imagetest.RunTool(t, c.node(1).Host, "get", "http://"+c.node(1).Host.IP+":9323/metrics")
	for _, want := range []string{`shoal_tasks{state="running"} 8`, `shoal_nodes{status="ready"} 4`, `shoal_raft_state{state="leader"} 1`,
		`shoal_task_scheduling_seconds_count 8`, `shoal_raft_elections_total 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`shoal_raft_commit_seconds_count (\d+)`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Errorf("/metrics counts no Raft commits: %v", m)
	}

	c.node(1).MustCLI(t, "service", "scale", "-d", "nginx=3")
	byNode = c.waitRunning(t, "nginx", 3)
	for _, ts := range byNode {
		for _, x := range ts {
			if x.Slot != "1" && x.Slot != "2" && x.Slot != "3" {
				t.Errorf("slot %s survived the scale to 3", x.Slot)
			}
		}
	}

	c.node(1).MustCLI(t, "service", "rm", "nginx")
	c.waitNothingLeft(t)
}

// waitNothingLeft waits until no task, container, container snapshot or
// task network namespace is left on any node.
func (c *serviceCluster) waitNothingLeft(t testing.TB) {
	t.Helper()
	clustertest.WaitFor(t, converge, "no tasks, containers, snapshots or network namespaces left", func() error {
		if ts := c.tasks(t); len(ts) > 0 {
			return fmt.Errorf("%d tasks left: %v", len(ts), ts)
		}
		for i, ns := range c.namespaces {
			left, err := imagetest.Leftovers(t, c.containerd, ns)
			if err != nil {
				return err
			}
			if len(left) > 0 {
				return fmt.Errorf("node-%02d still has %v", i+1, left)
			}
			pins, _ := os.ReadDir(filepath.Join(c.node(i+1).DataDir, "executor", "cni", "netns"))
			if len(pins) > 0 {
				return fmt.Errorf("node-%02d still has %d task network namespaces", i+1, len(pins))
			}
		}
		return nil
	})
}
