package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// get GETs url from host h once, within a few seconds.
func get(t *testing.T, h *testhost.Host, url string) (string, error) {
	t.Helper()
	out, err := h.Command(imagetest.Tool(t), "get", "-timeout", "3s", url).CombinedOutput()
	return string(out), err
}

// The routing mesh of Docker's tutorial: a port published in ingress mode
// (`-p 8080:80`) answers on every node, also on a node that runs no task of
// the service, from a machine outside the cluster; every task gets
// connections; the port closes when the service goes.
func TestIngressRoutingMesh(t *testing.T) {
	c := newServiceCluster(t, 3, 1)
	client := c.lan.AddHost(t, "client")
	n1 := c.node(1)
	n1.MustCLI(t, "service", "create", "--name", "web", "--replicas", "2", "-p", "8080:80", c.images.Nginx)
	byNode := c.waitRunning(t, "web", 2)
	if out, err := n1.CLI("service", "create", "-d", "--name", "other", "-p", "8080:81", c.images.Nginx); err == nil || !strings.Contains(out, "port '8080' is already in use by service 'web'") {
		t.Errorf("a second service on ingress port 8080: %v\n%s", err, out)
	}
	if ls := n1.MustCLI(t, "service", "ls"); !strings.Contains(ls, "*:8080->80/tcp") {
		t.Errorf("service ls does not show the published port:\n%s", ls)
	}
	empty := 0
	for i := 1; i <= 3; i++ {
		if len(byNode[fmt.Sprintf("node-%02d", i)]) == 0 {
			empty = i
		}
	}
	if empty == 0 {
		t.Fatalf("every node runs a task, want one without: %v", byNode)
	}

	// Every node answers, the one without a task too. The mesh reaches a
	// node a moment after its tasks run: give it a few seconds.
	for i := 1; i <= 3; i++ {
		url := fmt.Sprintf("http://%s:8080/", c.node(i).Host.IP)
		clustertest.WaitFor(t, 20*time.Second, "the mesh to answer at "+url, func() error {
			body, err := get(t, client, url)
			if err != nil || body != imagetest.NginxIndex {
				return fmt.Errorf("GET %s: %v: %q", url, err, body)
			}
			return nil
		})
	}
	// Connections spread over the tasks: the NAT rule of each task's
	// address took some of 40 connections to the node without a task.
	url := fmt.Sprintf("http://%s:8080/", c.node(empty).Host.IP)
	for i := 0; i < 40; i++ {
		if body, err := get(t, client, url); err != nil || body != imagetest.NginxIndex {
			t.Fatalf("GET %s: %v: %q", url, err, body)
		}
	}
	hits := dnatHits(t, c.node(empty).Host)
	if len(hits) != 2 {
		t.Errorf("node-%02d sent connections to %v, want both tasks", empty, hits)
	}
	for _, ts := range byNode {
		for _, x := range ts {
			if hits[x.Address+":80"] == 0 {
				t.Errorf("task %s at %s got none of the 40 connections: %v", x.ID, x.Address, hits)
			}
		}
	}

	// A client on a node reaches the mesh through the node's own address.
	if body, err := get(t, c.node(empty).Host, url); err != nil || body != imagetest.NginxIndex {
		t.Errorf("GET %s from node-%02d itself: %v: %q", url, empty, err, body)
	}

	// Scaled to nothing, no node sends the port anywhere; removed, the
	// routes go too.
	n1.MustCLI(t, "service", "scale", "web=0")
	clustertest.WaitFor(t, 20*time.Second, "the mesh's NAT rules to go", func() error {
		for i := 1; i <= 3; i++ {
			if hits := dnatHits(t, c.node(i).Host); len(hits) > 0 {
				return fmt.Errorf("node-%02d still sends port 8080 to %v", i, hits)
			}
		}
		return nil
	})
	if body, err := get(t, client, url); err == nil {
		t.Errorf("GET %s after scaling to 0 answered: %q", url, body)
	}
	n1.MustCLI(t, "service", "rm", "web")
	clustertest.WaitFor(t, 20*time.Second, "the mesh's routes to go", func() error {
		for i := 1; i <= 3; i++ {
			out, err := c.node(i).Host.Command("ip", "route", "show", "proto", "77").CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				return fmt.Errorf("node-%02d: %v: %s", i, err, out)
			}
		}
		return nil
	})
	c.waitNothingLeft(t)
}

// dnatHits reads, on host h, how many connections each of the mesh's NAT
// rules sent to each address.
func dnatHits(t *testing.T, h *testhost.Host) map[string]int {
	t.Helper()
	out, err := h.Command("iptables-save", "-c", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save on %s: %v\n%s", h, err, out)
	}
	hits := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		_, rule, ok := strings.Cut(line, "] -A SHOAL-INGRESS ")
		if !ok || !strings.Contains(rule, "-j DNAT") {
			continue
		}
		var packets int
		fmt.Sscanf(line, "[%d:", &packets)
		fields := strings.Fields(rule)
		hits[fields[len(fields)-1]] += packets
	}
	return hits
}
