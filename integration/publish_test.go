package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
)

// --publish mode=host opens the port on each node that runs a task: one
// task per node, the others wait with Swarm's reason; the port answers
// from elsewhere on the LAN, and closes with the task.
func TestPublishHostMode(t *testing.T) {
	c := newServiceCluster(t, 3, 1)
	n1 := c.node(1)

	n1.MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "4",
		"--publish", "published=8080,target=80,mode=host", c.images.Nginx)
	byNode := c.waitRunning(t, "web", 3)
	var pendingReason string
	clustertest.WaitFor(t, converge, "the fourth task pending with a reason", func() error {
		for _, x := range c.of(t, "web") {
			if x.State == "PENDING" && x.Error != "" {
				pendingReason = x.Error
				return nil
			}
		}
		return fmt.Errorf("no pending task with a reason yet")
	})
	if want := "no suitable node (host-mode port already in use on 3 nodes)"; pendingReason != want {
		t.Errorf("the fourth task waits with %q, want %q", pendingReason, want)
	}
	for i := 1; i <= 3; i++ {
		if len(byNode[fmt.Sprintf("node-%02d", i)]) != 1 {
			t.Errorf("tasks by node: %v, want one on each", byNode)
		}
		// From another host on the LAN, to the node's own address.
		url := fmt.Sprintf("http://%s:8080/", c.node(i).Host.IP)
		from := c.node(1 + i%3).Host
		if body := imagetest.RunTool(t, from, "get", url); body != imagetest.NginxIndex {
			t.Errorf("GET %s from %s: %q, want %q", url, from, body, imagetest.NginxIndex)
		}
	}
	if ps := n1.MustCLI(t, "service", "ps", "web"); !strings.Contains(ps, "*:8080->80/tcp") {
		t.Errorf("service ps does not show the published port:\n%s", ps)
	}

	// The port closes with the service.
	n1.MustCLI(t, "service", "rm", "web")
	for i := 1; i <= 3; i++ {
		c.waitNoContainers(t, i)
	}
	url := fmt.Sprintf("http://%s:8080/", c.node(2).Host.IP)
	if out, err := c.node(3).Host.Command(imagetest.Tool(t), "get", "-timeout", "2s", url).Output(); err == nil {
		t.Errorf("GET %s still answers after service rm: %q", url, out)
	}
}
