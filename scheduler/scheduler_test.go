package scheduler

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestExplain(t *testing.T) {
	filters := DefaultFilters()
	tests := []struct {
		name     string
		rejected []int
		want     string
	}{
		{"nothing rejected", []int{0, 0}, "no suitable node"},
		{"no counts", nil, "no suitable node"},
		{"one down", []int{1, 0}, "no suitable node (1 node down)"},
		{"two down", []int{2, 0}, "no suitable node (2 nodes down)"},
		{"one unavailable", []int{0, 1}, "no suitable node (1 node not available for new tasks)"},
		{"many unavailable", []int{0, 1000}, "no suitable node (1000 nodes not available for new tasks)"},
		{"most first", []int{1, 2}, "no suitable node (2 nodes not available for new tasks; 1 node down)"},
		{"ties keep filter order", []int{3, 3}, "no suitable node (3 nodes down; 3 nodes not available for new tasks)"},
		{"extra counts ignored", []int{1, 0, 0, 7}, "no suitable node (1 node down)"},
		{"host ports", []int{0, 0, 2}, "no suitable node (host-mode port already in use on 2 nodes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Explain(filters, tt.rejected); got != tt.want {
				t.Errorf("Explain(%v) = %q, want %q", tt.rejected, got, tt.want)
			}
		})
	}
}

// hostnameFilter stands in for placement constraints: a task whose spec
// has the label "hostname" runs only on the node of that hostname.
var hostnameFilter = Filter{
	Name: "hostname",
	Check: func(t *api.Task, n *NodeInfo) bool {
		h, ok := t.GetSpec().GetLabels()["hostname"]
		return !ok || h == n.Hostname
	},
	Explain: func(nodes int) string { return "scheduling constraints not satisfied on " + countNodes(nodes) },
}

func TestFilterReadingTheTask(t *testing.T) {
	nodes := []*NodeInfo{
		{ID: "n1", Hostname: "h1", State: api.NodeState_READY},
		{ID: "n2", Hostname: "h2", State: api.NodeState_READY},
		{ID: "n3", Hostname: "h3", State: api.NodeState_DOWN},
	}
	pinned := func(id, svc string, slot uint64, host string) *api.Task {
		task := newTask(id, svc, slot)
		task.Spec = &api.ContainerSpec{Labels: map[string]string{"hostname": host}}
		return task
	}
	tasks := []*api.Task{
		pinned("a1", "a", 1, "h2"),
		pinned("a2", "a", 2, "h2"),
		pinned("b1", "b", 1, "h3"), // down
		pinned("c1", "c", 1, "h9"), // no such node
		newTask("d1", "d", 1),
	}
	placed, unplaced := schedule(append(DefaultFilters(), hostnameFilter), nodes, tasks)
	wantPlaced := []Placement{{"a1", "n2"}, {"a2", "n2"}, {"d1", "n1"}}
	wantUnplaced := []Unplaced{
		{"b1", "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node down)"},
		{"c1", "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node down)"},
	}
	if !reflect.DeepEqual(placed, wantPlaced) {
		t.Errorf("placed = %v, want %v", placed, wantPlaced)
	}
	if !reflect.DeepEqual(unplaced, wantUnplaced) {
		t.Errorf("unplaced = %v, want %v", unplaced, wantUnplaced)
	}
}

func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		nodes, tasks := randomCluster(rng, 30, 200, 6)
		wantPlaced, wantUnplaced := Schedule(cloneNodes(nodes), tasks)
		for range 5 {
			shuffledNodes := cloneNodes(nodes)
			rng.Shuffle(len(shuffledNodes), func(i, j int) {
				shuffledNodes[i], shuffledNodes[j] = shuffledNodes[j], shuffledNodes[i]
			})
			shuffledTasks := slices.Clone(tasks)
			rng.Shuffle(len(shuffledTasks), func(i, j int) {
				shuffledTasks[i], shuffledTasks[j] = shuffledTasks[j], shuffledTasks[i]
			})
			placed, unplaced := Schedule(shuffledNodes, shuffledTasks)
			if !reflect.DeepEqual(placed, wantPlaced) || !reflect.DeepEqual(unplaced, wantUnplaced) {
				t.Fatalf("round %d: shuffled input gave different decisions", round)
			}
		}
	}
}

// TestMatchesReference checks Schedule against the obvious O(tasks × nodes)
// scan on random clusters, with a filter that reads the task too.
func TestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	filters := append(DefaultFilters(), hostnameFilter)
	for round := range 2000 {
		// Small clusters find bugs fastest; some larger ones check the rest.
		numNodes, numTasks, numServices := rng.IntN(6), rng.IntN(8), 1+rng.IntN(3)
		if round%10 == 0 {
			numNodes, numTasks, numServices = rng.IntN(60), rng.IntN(300), 1+rng.IntN(10)
		}
		nodes, tasks := randomCluster(rng, numNodes, numTasks, numServices)
		// Some service versions are pinned to a hostname, perhaps a missing
		// one; all tasks of a version share its spec.
		specs := map[string]*api.ContainerSpec{}
		for _, task := range tasks {
			version := fmt.Sprint(task.ServiceId, "/", task.ServiceVersion)
			spec, ok := specs[version]
			if !ok {
				spec = &api.ContainerSpec{}
				if rng.IntN(4) == 0 {
					spec.Labels = map[string]string{"hostname": fmt.Sprintf("h%d", rng.IntN(numNodes+1))}
				}
				specs[version] = spec
			}
			task.Spec = spec
		}
		gotNodes, wantNodes := cloneNodes(nodes), cloneNodes(nodes)
		placed, unplaced := schedule(filters, gotNodes, tasks)
		wantPlaced, wantUnplaced := referenceSchedule(filters, wantNodes, tasks)
		if !reflect.DeepEqual(placed, wantPlaced) {
			t.Fatalf("round %d: placed\n%v\nwant\n%v", round, placed, wantPlaced)
		}
		if !reflect.DeepEqual(unplaced, wantUnplaced) {
			t.Fatalf("round %d: unplaced\n%v\nwant\n%v", round, unplaced, wantUnplaced)
		}
		for i := range gotNodes {
			if gotNodes[i].Tasks != wantNodes[i].Tasks || !countsEqual(gotNodes[i].ServiceTasks, wantNodes[i].ServiceTasks) {
				t.Fatalf("round %d: node %s ends as %+v, want %+v", round, gotNodes[i].ID, gotNodes[i], wantNodes[i])
			}
		}
	}
}

// referenceSchedule places each task by scanning every node.
func referenceSchedule(filters []Filter, nodes []*NodeInfo, tasks []*api.Task) ([]Placement, []Unplaced) {
	var placed []Placement
	var unplaced []Unplaced
	for _, task := range sortTasks(tasks) {
		svc := task.GetServiceId()
		var best *NodeInfo
		for _, n := range nodes {
			fits := true
			for _, f := range filters {
				fits = fits && f.Check(task, n)
			}
			if !fits {
				continue
			}
			if best == nil || cmp.Or(
				cmp.Compare(n.ServiceTasks[svc], best.ServiceTasks[svc]),
				cmp.Compare(n.Tasks, best.Tasks),
				cmp.Compare(n.ID, best.ID)) < 0 {
				best = n
			}
		}
		if best == nil {
			unplaced = append(unplaced, Unplaced{task.GetId(), Explain(filters, rejections(filters, nodes, task))})
			continue
		}
		placed = append(placed, Placement{task.GetId(), best.ID})
		if best.ServiceTasks == nil {
			best.ServiceTasks = map[string]int{}
		}
		best.ServiceTasks[svc]++
		best.Tasks++
	}
	return placed, unplaced
}

// randomCluster makes nodes n0.. (hostnames h0..) of mixed state and load,
// and pending tasks of services s0.. with a few service versions.
func randomCluster(rng *rand.Rand, numNodes, numTasks, numServices int) ([]*NodeInfo, []*api.Task) {
	nodes := make([]*NodeInfo, numNodes)
	for i := range nodes {
		n := &NodeInfo{
			ID:           fmt.Sprintf("n%d", i),
			Hostname:     fmt.Sprintf("h%d", i),
			State:        api.NodeState_READY,
			ServiceTasks: map[string]int{},
		}
		switch rng.IntN(10) {
		case 0:
			n.State = api.NodeState_DOWN
		case 1:
			n.Availability = api.NodeAvailability_DRAIN
		case 2:
			n.Availability = api.NodeAvailability_PAUSE
		}
		for range rng.IntN(6) {
			n.ServiceTasks[fmt.Sprintf("s%d", rng.IntN(numServices+2))]++
			n.Tasks++
		}
		n.Tasks += rng.IntN(3)
		if rng.IntN(5) == 0 {
			n.ServiceTasks = nil
			n.Tasks = 0
		}
		nodes[i] = n
	}
	tasks := make([]*api.Task, numTasks)
	for i := range tasks {
		svc := fmt.Sprintf("s%d", rng.IntN(numServices))
		tasks[i] = newTask(fmt.Sprintf("t%04d", i), svc, uint64(1+rng.IntN(numTasks/2+1)))
		tasks[i].ServiceVersion = uint64(rng.IntN(2))
	}
	return nodes, tasks
}

func newTask(id, svc string, slot uint64) *api.Task {
	return &api.Task{
		Id:           id,
		ServiceId:    svc,
		ServiceName:  svc,
		Slot:         slot,
		DesiredState: api.TaskState_RUNNING,
		Status:       &api.TaskStatus{State: api.TaskState_PENDING},
	}
}

func cloneNodes(nodes []*NodeInfo) []*NodeInfo {
	out := make([]*NodeInfo, len(nodes))
	for i, n := range nodes {
		c := *n
		if n.ServiceTasks != nil {
			c.ServiceTasks = make(map[string]int, len(n.ServiceTasks))
			for k, v := range n.ServiceTasks {
				c.ServiceTasks[k] = v
			}
		}
		out[i] = &c
	}
	return out
}

func countsEqual(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func TestNilEntriesIgnored(t *testing.T) {
	nodes := []*NodeInfo{nil, {ID: "n1", State: api.NodeState_READY}}
	placed, unplaced := Schedule(nodes, []*api.Task{nil, newTask("t1", "web", 1)})
	if want := []Placement{{"t1", "n1"}}; !reflect.DeepEqual(placed, want) || len(unplaced) != 0 {
		t.Errorf("got %v %v, want %v and nothing unplaced", placed, unplaced, want)
	}
	if got := nodes[1].ServiceTasks["web"]; got != 1 {
		t.Errorf("node n1 counts %d web tasks, want 1 (a nil map is created)", got)
	}
}

func TestActive(t *testing.T) {
	tests := []struct {
		desired, state api.TaskState
		want           bool
	}{
		{api.TaskState_RUNNING, api.TaskState_NEW, true},
		{api.TaskState_RUNNING, api.TaskState_ASSIGNED, true},
		{api.TaskState_RUNNING, api.TaskState_RUNNING, true},
		{api.TaskState_RUNNING, api.TaskState_COMPLETE, false},
		{api.TaskState_RUNNING, api.TaskState_FAILED, false},
		{api.TaskState_RUNNING, api.TaskState_ORPHANED, false},
		{api.TaskState_SHUTDOWN, api.TaskState_RUNNING, false},
	}
	for _, tt := range tests {
		task := &api.Task{DesiredState: tt.desired, Status: &api.TaskStatus{State: tt.state}}
		if got := Active(task); got != tt.want {
			t.Errorf("Active(desired %v, state %v) = %v, want %v", tt.desired, tt.state, got, tt.want)
		}
	}
}

func TestNodeInfos(t *testing.T) {
	nodes := []*api.Node{
		{Id: "n1", Hostname: "one", State: api.NodeState_READY, Availability: api.NodeAvailability_DRAIN},
		{Id: "n2", Hostname: "two", State: api.NodeState_DOWN},
	}
	task := func(node, svc string, desired, state api.TaskState) *api.Task {
		return &api.Task{NodeId: node, ServiceId: svc, DesiredState: desired, Status: &api.TaskStatus{State: state}}
	}
	tasks := []*api.Task{
		task("n1", "web", api.TaskState_RUNNING, api.TaskState_RUNNING),
		task("n1", "web", api.TaskState_RUNNING, api.TaskState_ASSIGNED),
		task("n1", "api", api.TaskState_RUNNING, api.TaskState_RUNNING),
		task("n1", "web", api.TaskState_RUNNING, api.TaskState_FAILED),   // ended
		task("n2", "web", api.TaskState_SHUTDOWN, api.TaskState_RUNNING), // being stopped
		task("n9", "web", api.TaskState_RUNNING, api.TaskState_RUNNING),  // unknown node
		task("", "web", api.TaskState_RUNNING, api.TaskState_PENDING),    // not placed
	}
	want := []*NodeInfo{
		{ID: "n1", Hostname: "one", State: api.NodeState_READY, Availability: api.NodeAvailability_DRAIN,
			ServiceTasks: map[string]int{"web": 2, "api": 1}, Tasks: 3},
		{ID: "n2", Hostname: "two", State: api.NodeState_DOWN, ServiceTasks: map[string]int{}},
	}
	if got := NodeInfos(nodes, tasks); !reflect.DeepEqual(got, want) {
		t.Errorf("NodeInfos = %+v, want %+v", got, want)
	}
}

// BenchmarkSchedule10kTasks1kNodes places one service of 10,000 replicas
// on 1,000 idle nodes in one batch, as the scale benchmark does.
func BenchmarkSchedule10kTasks1kNodes(b *testing.B) {
	benchmarkSchedule(b, 1000, 10000, 1)
}

// BenchmarkSchedule10kServices1kNodes places one task of each of 10,000
// services on 1,000 nodes that already run 10 tasks each.
func BenchmarkSchedule10kServices1kNodes(b *testing.B) {
	benchmarkSchedule(b, 1000, 10000, 10000)
}

func benchmarkSchedule(b *testing.B, numNodes, numTasks, numServices int) {
	nodes := make([]*NodeInfo, numNodes)
	for i := range nodes {
		nodes[i] = &NodeInfo{ID: fmt.Sprintf("node%04d", i), State: api.NodeState_READY, ServiceTasks: map[string]int{}}
		if numServices > 1 {
			for j := range 10 {
				nodes[i].ServiceTasks[fmt.Sprintf("svc%05d", (i*10+j)%numServices)]++
				nodes[i].Tasks++
			}
		}
	}
	tasks := make([]*api.Task, numTasks)
	for i := range tasks {
		svc := fmt.Sprintf("svc%05d", i%numServices)
		tasks[i] = newTask(fmt.Sprintf("task%05d", i), svc, uint64(i/numServices+1))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		view := cloneNodes(nodes)
		b.StartTimer()
		placed, unplaced := Schedule(view, tasks)
		if len(placed) != numTasks || len(unplaced) != 0 {
			b.Fatalf("placed %d, unplaced %d", len(placed), len(unplaced))
		}
	}
}

func withHostPort(t *api.Task, published uint32) *api.Task {
	t.Spec = &api.ContainerSpec{Ports: []*api.PortConfig{{Target: 80, Published: published, Protocol: "tcp", Mode: api.PortConfig_HOST}}}
	return t
}

// A host-mode port opens on the node that runs the task, so a node takes at
// most one task publishing it, counting the tasks it already runs; the rest
// stay pending with Swarm's reason.
func TestHostPortsOnePerNode(t *testing.T) {
	nodes := []*NodeInfo{
		{ID: "n1", State: api.NodeState_READY},
		{ID: "n2", State: api.NodeState_READY, HostPorts: map[string]bool{"8080/tcp": true}}, // another service holds it
		{ID: "n3", State: api.NodeState_READY},
		{ID: "n4", State: api.NodeState_READY, HostPorts: map[string]bool{"8080/udp": true}}, // another protocol
	}
	tasks := []*api.Task{
		withHostPort(newTask("w1", "web", 1), 8080),
		withHostPort(newTask("w2", "web", 2), 8080),
		withHostPort(newTask("w3", "web", 3), 8080),
		withHostPort(newTask("w4", "web", 4), 8080),
		withHostPort(newTask("o1", "other", 1), 9090), // a free port: n1 is not out for it
	}
	placed, unplaced := Schedule(nodes, tasks)
	wantPlaced := []Placement{{"o1", "n1"}, {"w1", "n3"}, {"w2", "n4"}, {"w3", "n1"}}
	wantUnplaced := []Unplaced{{"w4", "no suitable node (host-mode port already in use on 4 nodes)"}}
	if !reflect.DeepEqual(placed, wantPlaced) {
		t.Errorf("placed = %v, want %v", placed, wantPlaced)
	}
	if !reflect.DeepEqual(unplaced, wantUnplaced) {
		t.Errorf("unplaced = %v, want %v", unplaced, wantUnplaced)
	}
	for _, n := range []*NodeInfo{nodes[0], nodes[2], nodes[3]} {
		if !n.HostPorts["8080/tcp"] {
			t.Errorf("%s: the placed task's port is not marked as held: %v", n.ID, n.HostPorts)
		}
	}
}

func TestNodeInfosHostPortsHeldUntilTheTaskEnds(t *testing.T) {
	nodes := []*api.Node{{Id: "n1", State: api.NodeState_READY}, {Id: "n2", State: api.NodeState_READY}}
	stopping := withHostPort(&api.Task{NodeId: "n1", DesiredState: api.TaskState_SHUTDOWN, Status: &api.TaskStatus{State: api.TaskState_RUNNING}}, 8080)
	ended := withHostPort(&api.Task{NodeId: "n2", DesiredState: api.TaskState_RUNNING, Status: &api.TaskStatus{State: api.TaskState_FAILED}}, 8080)
	infos := NodeInfos(nodes, []*api.Task{stopping, ended})
	if !infos[0].HostPorts["8080/tcp"] {
		t.Error("a task being stopped but still running does not hold its port")
	}
	if infos[1].HostPorts["8080/tcp"] {
		t.Error("an ended task still holds its port")
	}
	if infos[0].Tasks != 0 {
		t.Errorf("a task being stopped counts toward the load: %d", infos[0].Tasks)
	}
}
