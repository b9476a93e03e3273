package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

const (
	idManager1 = "3mxq9c4tky7rkv1n0bz8w6pld"
	idManager2 = "8ugq0wq2hs5ha0dzv3xl2yk1e"
	idManager3 = "k0r7bb2wq9xsl3p6mt4vjd8hc"
	idWorker2  = "p5n2dz9yq1fw0c7xar3gk6tme"
	idWorker10 = "t9v4lh0sg2ej6qbn8ycw1rk5o"
	idWorker3  = "zz1xa7mfo3wq8dnt2kgv6bp4y"
)

var joined = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

// clusterFixture is a swarm of three managers (the leader is the node the
// CLI talks to, one is unreachable and down) and three workers in every
// availability, listed out of order.
func clusterFixture() *fakeDaemon {
	f := newFakeDaemon()
	f.selfID = idManager1
	manager := func(id, host, addr string, state api.NodeState, ms *api.ManagerStatus) *api.Node {
		n := node(id, host, addr, state)
		n.Role, n.DesiredRole, n.ManagerStatus = api.NodeRole_MANAGER, api.NodeRole_MANAGER, ms
		return n
	}
	f.nodes = []*api.Node{
		node(idWorker10, "worker-10", "10.0.0.20:51234", api.NodeState_READY),
		manager(idManager2, "manager-2", "10.0.0.2:40112", api.NodeState_READY,
			&api.ManagerStatus{Reachability: api.Reachability_REACHABLE, Addr: "10.0.0.2:2377"}),
		manager(idManager1, "manager-1", "10.0.0.1:39001", api.NodeState_READY,
			&api.ManagerStatus{Leader: true, Reachability: api.Reachability_REACHABLE, Addr: "10.0.0.1:2377"}),
		withAvailability(node(idWorker3, "worker-3", "", api.NodeState_UNKNOWN), api.NodeAvailability_PAUSE),
		manager(idManager3, "manager-3", "10.0.0.3", api.NodeState_DOWN,
			&api.ManagerStatus{Reachability: api.Reachability_UNREACHABLE, Addr: "10.0.0.3:2377"}),
		withAvailability(node(idWorker2, "worker-2", "10.0.0.12:40000", api.NodeState_DISCONNECTED), api.NodeAvailability_DRAIN),
	}
	f.nodes[4].StatusMessage = "heartbeat failure"
	f.nodes[2].Labels = map[string]string{"zone": "a", "ssd": ""}
	f.info = &api.InfoResponse{
		NodeId: idManager1, Hostname: "manager-1", LocalNodeState: "active", ControlAvailable: true,
		EngineVersion: "0.1.0-dev",
	}
	return f
}

func node(id, host, addr string, state api.NodeState) *api.Node {
	return &api.Node{
		Id: id, Hostname: host, State: state, Addr: addr,
		AdvertiseAddr: "10.0.0.9:2377", EngineVersion: "0.1.0-dev",
		CreatedUnixNano: joined.UnixNano(), UpdatedUnixNano: joined.Add(90 * time.Second).UnixNano(),
		Os: "linux", Arch: "x86_64",
	}
}

func withAvailability(n *api.Node, a api.NodeAvailability) *api.Node {
	n.Availability = a
	return n
}

func TestNodeList(t *testing.T) {
	host := clusterFixture().serve(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"node-ls", []string{"node", "ls"}},
		{"node-ls-quiet", []string{"node", "ls", "-q"}},
		{"node-ls-json", []string{"node", "ls", "--format", "json"}},
		{"node-ls-template", []string{"node", "ls", "--format", "{{.Hostname}}: {{.Status}} {{.ManagerStatus}}{{if .Self}} (self){{end}}"}},
		{"node-ls-table-template", []string{"node", "ls", "--format", `table {{.ID}}\t{{.Hostname | upper}}\t{{.ManagerStatus}}\t{{.TLSStatus}}`}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			assertGolden(t, tc.golden, mustShoal(t, host, tc.args...))
		})
	}
}

func TestNodeListJSONLinesParse(t *testing.T) {
	host := clusterFixture().serve(t)
	out := mustShoal(t, host, "node", "ls", "--format", "json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("want 6 JSON lines, got %d:\n%s", len(lines), out)
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	if row["ID"] != idManager1 || row["Self"] != true || row["ManagerStatus"] != "Leader" {
		t.Errorf("first row = %v, want manager-1, self, leader", row)
	}
}

func TestNodeListEmptyPrintsHeader(t *testing.T) {
	host := newFakeDaemon().serve(t)
	got := mustShoal(t, host, "node", "ls")
	want := "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNodeListBadTemplate(t *testing.T) {
	host := clusterFixture().serve(t)
	r := shoal(t, host, "node", "ls", "--format", "{{.Nope}")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "template parsing error: ") {
		t.Errorf("want a template parsing error, got %s", r)
	}
}

func TestNodeInspect(t *testing.T) {
	host := clusterFixture().serve(t)
	t.Run("json", func(t *testing.T) {
		assertGolden(t, "node-inspect", mustShoal(t, host, "node", "inspect", "manager-1", idWorker2))
	})
	t.Run("pretty", func(t *testing.T) {
		assertGolden(t, "node-inspect-pretty", mustShoal(t, host, "node", "inspect", "--pretty", "self", "manager-3"))
	})
	t.Run("compact json", func(t *testing.T) {
		out := mustShoal(t, host, "node", "inspect", "--format", "json", "worker-3")
		var nodes []map[string]any
		if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != 1 || strings.Count(out, "\n") != 1 {
			t.Errorf("want one node on one line, got %q (%v)", out, err)
		}
	})
	for _, tc := range []struct {
		format, ref, want string
	}{
		{"{{ .Status.Addr }}", "manager-1", "10.0.0.1\n"},
		{"{{ .Status.Addr }}", "manager-3", "10.0.0.3\n"},
		{"{{ .Spec.Role }}", "manager-2", "manager\n"},
		{"{{ .Spec.Role }}", "worker-10", "worker\n"},
		{"{{ .Spec.Availability }}", "worker-2", "drain\n"},
		{"{{ .Status.State }}", "worker-2", "disconnected\n"},
		{"{{ .ManagerStatus.Leader }} {{ .ManagerStatus.Reachability }}", "manager-1", "true reachable\n"},
		{"{{ .ManagerStatus.Addr }}", "manager-3", "10.0.0.3:2377\n"},
		{"{{ .Description.Hostname }} {{ .Description.Engine.EngineVersion }}", idWorker3[:6], "worker-3 0.1.0-dev\n"},
		{"{{ .CreatedAt }}", "worker-3", "2025-03-14 09:26:53.589793238 +0000 UTC\n"},
		{"{{ json .Spec.Labels }}", "manager-1", `{"ssd":"","zone":"a"}` + "\n"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			if got := mustShoal(t, host, "node", "inspect", "--format", tc.format, tc.ref); got != tc.want {
				t.Errorf("node inspect %s --format %q = %q, want %q", tc.ref, tc.format, got, tc.want)
			}
		})
	}
}

func TestNodeInspectMissingNodeStillPrintsOthers(t *testing.T) {
	host := clusterFixture().serve(t)
	r := shoal(t, host, "node", "inspect", "--format", "{{.Description.Hostname}}", "nope", "worker-2")
	if r.code != 1 || r.stdout != "worker-2\n" || r.stderr != "Error response from daemon: node nope not found\n" {
		t.Errorf("got %s", r)
	}
}

func TestNodeInspectPrettyRefusesFormat(t *testing.T) {
	host := clusterFixture().serve(t)
	r := shoal(t, host, "node", "inspect", "--pretty", "--format", "{{.ID}}", "self")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot supply extra formatting options to the pretty template") {
		t.Errorf("got %s", r)
	}
}

func TestNodePromoteDemote(t *testing.T) {
	f := clusterFixture()
	f.fail["UpdateNode worker-3"] = status.Error(codes.FailedPrecondition, "node worker-3 is not ready")
	host := f.serve(t)

	r := shoal(t, host, "node", "promote", "worker-3", "worker-2", "manager-2", "ghost")
	wantOut := "Node worker-2 promoted to a manager in the swarm.\n" +
		"Node " + idManager2 + " is already a manager.\n"
	wantErr := "Error response from daemon: node worker-3 is not ready\n" +
		"Error response from daemon: node ghost not found\n"
	if r.code != 1 || r.stdout != wantOut || r.stderr != wantErr {
		t.Errorf("promote: got %s\nwant stdout:\n%s\nstderr:\n%s", r, wantOut, wantErr)
	}
	reqs := f.requests("UpdateNode")
	if len(reqs) != 2 {
		t.Fatalf("want 2 UpdateNode calls, got %d", len(reqs))
	}
	if got := reqs[1].(*api.UpdateNodeRequest); got.GetRef() != "worker-2" ||
		got.DesiredRole == nil || *got.DesiredRole != api.NodeRole_MANAGER || got.Availability != nil {
		t.Errorf("promote sent %v", got)
	}

	out := mustShoal(t, host, "node", "demote", "worker-2", "worker-10")
	want := "Manager worker-2 demoted in the swarm.\nNode " + idWorker10 + " is already a worker.\n"
	if out != want {
		t.Errorf("demote: got %q, want %q", out, want)
	}
}

func TestNodeUpdate(t *testing.T) {
	f := clusterFixture()
	host := f.serve(t)
	if out := mustShoal(t, host, "node", "update", "--availability", "Drain", "worker-10"); out != "worker-10\n" {
		t.Errorf("node update printed %q, want the node as typed", out)
	}
	reqs := f.requests("UpdateNode")
	if len(reqs) != 1 {
		t.Fatalf("want one UpdateNode call, got %d", len(reqs))
	}
	req := reqs[0].(*api.UpdateNodeRequest)
	if req.Availability == nil || *req.Availability != api.NodeAvailability_DRAIN || req.DesiredRole != nil {
		t.Errorf("node update sent %v", req)
	}

	for _, args := range [][]string{
		{"node", "update", "--availability", "sleep", "worker-10"},
		{"node", "update", "worker-10"},
		{"node", "update", "--role", "boss", "worker-10"},
	} {
		r := shoal(t, host, args...)
		if r.code != 1 || r.stderr == "" {
			t.Errorf("%v: want an error, got %s", args, r)
		}
	}
	if r := shoal(t, host, "node", "update", "--availability", "sleep", "worker-10"); !strings.Contains(r.stderr, "only active, pause and drain are supported") {
		t.Errorf("bad availability error should list the valid values, got %q", r.stderr)
	}
	if n := len(f.requests("UpdateNode")); n != 1 {
		t.Errorf("invalid updates reached the daemon: %d UpdateNode calls", n)
	}
}

func TestParseAvailability(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    api.NodeAvailability
		wantErr bool
	}{
		{"active", api.NodeAvailability_ACTIVE, false},
		{"pause", api.NodeAvailability_PAUSE, false},
		{"drain", api.NodeAvailability_DRAIN, false},
		{"DRAIN", api.NodeAvailability_DRAIN, false},
		{"Active", api.NodeAvailability_ACTIVE, false},
		{"", 0, true},
		{"paused", 0, true},
		{"drained", 0, true},
		{" active", 0, true},
	} {
		got, err := parseAvailability(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("parseAvailability(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && err.Error() != `invalid availability "`+tc.in+`", only active, pause and drain are supported` {
			t.Errorf("parseAvailability(%q) error = %q", tc.in, err)
		}
	}
}

func TestNodeRemove(t *testing.T) {
	f := clusterFixture()
	host := f.serve(t)
	r := shoal(t, host, "node", "rm", "--force", "worker-3", "ghost", idWorker10[:5])
	if r.code != 1 || r.stdout != "worker-3\n"+idWorker10[:5]+"\n" || r.stderr != "Error response from daemon: node ghost not found\n" {
		t.Errorf("got %s", r)
	}
	for _, req := range f.requests("RemoveNode") {
		if !req.(*api.RemoveNodeRequest).GetForce() {
			t.Errorf("--force not sent: %v", req)
		}
	}
}
