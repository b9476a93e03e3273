package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// converge bounds waits for services to reach what was asked.
const converge = 90 * time.Second

// serviceCluster is a cluster whose nodes run tasks: one containerd shared
// by all (a containerd namespace each), and a registry on its own test host
// holding the test images.
type serviceCluster struct {
	*cluster
	images     imagetest.Images
	containerd string   // socket
	namespaces []string // each node's containerd namespace
	via        int      // the manager tasks are listed through (default node-01)
}

// newServiceCluster: node-01 to node-<managers> managers (node-01 the
// leader), the others workers, all Ready.
func newServiceCluster(t *testing.T, n, managers int) *serviceCluster {
	t.Helper()
	testhost.Require(t)
	socket := imagetest.SharedContainerd(t)
	c := &cluster{t: t, bin: clustertest.BuildShoal(t), lan: testhost.NewLAN(t)}
	reg := c.lan.AddHost(t, "registry")
	addr := imagetest.StartRegistry(t, reg)
	sc := &serviceCluster{cluster: c, images: imagetest.PushImages(t, reg, addr), containerd: socket}
	// Registered before the daemons start, so it runs after they are
	// killed: whatever tasks they left running go.
	t.Cleanup(func() {
		for _, ns := range sc.namespaces {
			if err := imagetest.RemoveNamespace(socket, ns); err != nil {
				t.Errorf("removing containerd namespace %s: %v", ns, err)
			}
		}
	})
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node-%02d", i)
		h := c.lan.AddHost(t, name)
		ns := "shoal-" + h.NS
		sc.namespaces = append(sc.namespaces, ns)
		c.nodes = append(c.nodes, clustertest.StartDaemon(t, c.bin, h, name,
			"--containerd-socket", socket, "--containerd-namespace", ns, "--insecure-registry", addr))
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
	return sc
}

// task is one task as the probe reports it.
type task struct {
	ID, Service, Node, Address, State, Desired, Slot, Error string
	Since, Created                                          int64 `json:",string"`
}

// tasks lists every task, asking a manager (c.via) with its certificate.
func (c *serviceCluster) tasks(t *testing.T) []task {
	t.Helper()
	via := max(c.via, 1)
	out := c.probe(t, via, via, "certs", c.certDir(via), "tasks")
	var ts []task
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var x task
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("probe tasks line %q: %v", line, err)
		}
		ts = append(ts, x)
	}
	return ts
}

// running returns the running tasks of a service wanted running, by node.
func (c *serviceCluster) running(t *testing.T, service string) map[string][]task {
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
	c := newServiceCluster(t, 4, 1)
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
func (c *serviceCluster) waitNothingLeft(t *testing.T) {
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
