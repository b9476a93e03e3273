package scheduler

import (
	"cmp"
	"container/heap"
	"fmt"
	"slices"

	"github.com/shoal-dev/shoal/api"
)

// NodeInfo is the scheduler's view of one node.
type NodeInfo struct {
	ID, Hostname string
	State        api.NodeState        // only READY nodes take tasks
	Availability api.NodeAvailability // only ACTIVE nodes take new tasks
	// ServiceTasks counts the node's active tasks (see Active) by service
	// ID. Schedule keeps it up to date as it places tasks; nil is empty.
	ServiceTasks map[string]int
	Tasks        int // all active tasks on the node
	// HostPorts holds the host-mode ports ("8080/tcp") that tasks on the
	// node hold: every task there that has not ended, whatever its desired
	// state. Schedule adds the ports of the tasks it places; nil is none.
	HostPorts map[string]bool
}

// Placement is one decision: run task TaskID on node NodeID.
type Placement struct{ TaskID, NodeID string }

// Unplaced is a task that fits on no node, with Swarm's explanation, e.g.
// "no suitable node (2 nodes down; 1 node not available for new tasks)".
// The task stays pending and is tried again when the nodes change.
type Unplaced struct{ TaskID, Reason string }

// Schedule places a batch of pending tasks on nodes and returns the
// placements and the tasks that fit nowhere, both in the order the tasks
// were placed: by service ID, then slot, then task ID.
//
// A node can take a task if it passes every filter of DefaultFilters. Of
// those, each task goes to the node with the fewest active tasks of its
// service, then the fewest active tasks in all, then the smallest node ID.
// Every placement adds to the node's counts (ServiceTasks and Tasks) before
// the next task is placed, so eight tasks on four equal nodes go two per
// node, and the caller's NodeInfo values describe the cluster after the
// batch. Schedule reads the tasks but does not change them; it ignores their
// state and node ID, and nil entries in either slice.
//
// Same input, same output: nothing depends on the order of either slice.
// The cost is about O((T + S) log N) for T tasks of S services on N nodes,
// plus the nodes already running tasks of the services being placed.
func Schedule(nodes []*NodeInfo, tasks []*api.Task) ([]Placement, []Unplaced) {
	return schedule(DefaultFilters(), nodes, tasks)
}

func schedule(filters []Filter, nodes []*NodeInfo, tasks []*api.Task) ([]Placement, []Unplaced) {
	b := newBatch(filters, nodes)
	pending := sortTasks(tasks)
	var placed []Placement
	var unplaced []Unplaced
	for len(pending) > 0 {
		run := pending[:runLength(pending)]
		pending = pending[len(run):]
		placed, unplaced = b.placeRun(run, placed, unplaced)
	}
	return placed, unplaced
}

// batch is the state of one call to Schedule.
type batch struct {
	filters     []Filter
	taskFilters []Filter    // the filters that read the task
	nodes       []*NodeInfo // sorted by ID; a node's index is its rank
	// free holds the nodes that pass the node-only filters, least loaded
	// first.
	free *loadHeap
	// holders lists, by service ID, the nodes in free that run at least one
	// active task of the service.
	holders map[string][]int32
	// mark[i] == stamp while node i is a candidate of the current run.
	mark  []uint32
	stamp uint32
	// reason explains an unplaced task when no filter reads the task, so
	// that it is the same for every task of the batch.
	reason string
	spread spreadHeap
}

func newBatch(filters []Filter, nodes []*NodeInfo) *batch {
	b := &batch{filters: filters, holders: make(map[string][]int32)}
	for _, f := range filters {
		if !f.NodeOnly {
			b.taskFilters = append(b.taskFilters, f)
		}
	}
	for _, n := range nodes {
		if n != nil {
			b.nodes = append(b.nodes, n)
		}
	}
	slices.SortStableFunc(b.nodes, func(x, y *NodeInfo) int { return cmp.Compare(x.ID, y.ID) })

	var eligible []int32
	for i, n := range b.nodes {
		if !b.passesNodeOnly(n) {
			continue
		}
		eligible = append(eligible, int32(i))
		for svc, count := range n.ServiceTasks {
			if count > 0 {
				b.holders[svc] = append(b.holders[svc], int32(i))
			}
		}
	}
	b.free = newLoadHeap(b.nodes, eligible)
	b.mark = make([]uint32, len(b.nodes))
	return b
}

func (b *batch) passesNodeOnly(n *NodeInfo) bool {
	for _, f := range b.filters {
		if f.NodeOnly && !f.Check(nil, n) {
			return false
		}
	}
	return true
}

// fits reports whether node i passes the filters that read task t.
func (b *batch) fits(t *api.Task, i int32) bool {
	for _, f := range b.taskFilters {
		if !f.Check(t, b.nodes[i]) {
			return false
		}
	}
	return true
}

// placeRun places a run of tasks of one service version, in order, and
// appends the decisions to placed and unplaced.
//
// Only two kinds of node can win: those already running tasks of the
// service, and the len(run) least loaded of the others. Nodes of the
// second kind start with none of the service's tasks and take at most one
// each before the run ends, so while the run lasts one of them always beats
// every node left out. That keeps the run's cost independent of the cluster
// size.
func (b *batch) placeRun(run []*api.Task, placed []Placement, unplaced []Unplaced) ([]Placement, []Unplaced) {
	first := run[0]
	svc := first.GetServiceId()

	b.stamp++
	h := &b.spread
	h.items = h.items[:0]
	for _, i := range b.holders[svc] {
		b.mark[i] = b.stamp
		if b.fits(first, i) {
			n := b.nodes[i]
			h.items = append(h.items, candidate{service: n.ServiceTasks[svc], total: n.Tasks, node: i})
		}
	}
	b.free.leastLoaded(len(run),
		func(i int32) bool { return b.mark[i] != b.stamp && b.fits(first, i) },
		func(i int32) { h.items = append(h.items, candidate{total: b.nodes[i].Tasks, node: i}) })

	if len(h.items) == 0 {
		reason := b.explain(first)
		for _, t := range run {
			unplaced = append(unplaced, Unplaced{TaskID: t.GetId(), Reason: reason})
		}
		return placed, unplaced
	}

	// The run works on the candidates' copies of the counts and writes
	// them back at the end; the winner is always at the top of the heap.
	// A node takes at most one task that publishes host ports: it leaves
	// the heap, and tasks left without a candidate stay pending.
	ports := HostPorts(first)
	var full []candidate
	heap.Init(h)
	for _, t := range run {
		if len(h.items) == 0 {
			unplaced = append(unplaced, Unplaced{TaskID: t.GetId(), Reason: b.explain(t)})
			continue
		}
		best := &h.items[0]
		n := b.nodes[best.node]
		placed = append(placed, Placement{TaskID: t.GetId(), NodeID: n.ID})
		best.service++
		best.total++
		if len(ports) == 0 {
			heap.Fix(h, 0)
			continue
		}
		if n.HostPorts == nil {
			n.HostPorts = make(map[string]bool)
		}
		for _, p := range ports {
			n.HostPorts[p] = true
		}
		full = append(full, heap.Pop(h).(candidate))
	}
	for _, c := range append(h.items, full...) {
		n := b.nodes[c.node]
		if c.total == n.Tasks {
			continue // nothing placed here
		}
		if n.ServiceTasks == nil {
			n.ServiceTasks = make(map[string]int)
		}
		if n.ServiceTasks[svc] <= 0 {
			b.holders[svc] = append(b.holders[svc], c.node)
		}
		n.ServiceTasks[svc] = c.service
		n.Tasks = c.total
		b.free.changed(c.node)
	}
	return placed, unplaced
}

// explain says why task t fits on no node.
func (b *batch) explain(t *api.Task) string {
	if len(b.taskFilters) > 0 {
		return Explain(b.filters, rejections(b.filters, b.nodes, t))
	}
	if b.reason == "" {
		b.reason = Explain(b.filters, rejections(b.filters, b.nodes, t))
	}
	return b.reason
}

// sortTasks returns the tasks in the order Schedule places them: by service
// ID, then slot, then task ID.
func sortTasks(tasks []*api.Task) []*api.Task {
	sorted := make([]*api.Task, 0, len(tasks))
	for _, t := range tasks {
		if t != nil {
			sorted = append(sorted, t)
		}
	}
	slices.SortFunc(sorted, func(x, y *api.Task) int {
		if c := cmp.Compare(x.GetServiceId(), y.GetServiceId()); c != 0 {
			return c
		}
		if c := cmp.Compare(x.GetSlot(), y.GetSlot()); c != 0 {
			return c
		}
		return cmp.Compare(x.GetId(), y.GetId())
	})
	return sorted
}

// runLength returns how many tasks at the head of sorted belong to the
// same service version as the first. Those tasks share a spec, so the
// filters that read the task give them the same answer.
func runLength(sorted []*api.Task) int {
	svc, version := sorted[0].GetServiceId(), sorted[0].GetServiceVersion()
	n := 1
	for n < len(sorted) && sorted[n].GetServiceId() == svc && sorted[n].GetServiceVersion() == version {
		n++
	}
	return n
}

// Active reports whether task t counts toward its node's load, in
// NodeInfo's counts: it is meant to run (desired state RUNNING) and has not
// ended (its state is RUNNING or earlier).
func Active(t *api.Task) bool {
	return t.GetDesiredState() == api.TaskState_RUNNING &&
		t.GetStatus().GetState() <= api.TaskState_RUNNING
}

// NodeInfos builds the scheduler's view of nodes from the cluster's nodes
// and tasks: each node with the active tasks assigned to it. Tasks on nodes
// not in the list are left out.
func NodeInfos(nodes []*api.Node, tasks []*api.Task) []*NodeInfo {
	infos := make([]*NodeInfo, 0, len(nodes))
	byID := make(map[string]*NodeInfo, len(nodes))
	for _, n := range nodes {
		if n == nil {
			continue
		}
		info := &NodeInfo{
			ID:           n.GetId(),
			Hostname:     n.GetHostname(),
			State:        n.GetState(),
			Availability: n.GetAvailability(),
			ServiceTasks: make(map[string]int),
		}
		infos = append(infos, info)
		byID[info.ID] = info
	}
	for _, t := range tasks {
		info := byID[t.GetNodeId()]
		if info == nil || t.GetStatus().GetState() > api.TaskState_RUNNING {
			continue
		}
		for _, p := range HostPorts(t) {
			if info.HostPorts == nil {
				info.HostPorts = make(map[string]bool)
			}
			info.HostPorts[p] = true
		}
		if Active(t) {
			info.ServiceTasks[t.GetServiceId()]++
			info.Tasks++
		}
	}
	return infos
}

// HostPorts lists the host-mode ports task t publishes, as "8080/tcp".
func HostPorts(t *api.Task) []string {
	var out []string
	for _, p := range t.GetSpec().GetPorts() {
		if p.GetMode() == api.PortConfig_HOST {
			out = append(out, fmt.Sprintf("%d/%s", p.GetPublished(), cmp.Or(p.GetProtocol(), "tcp")))
		}
	}
	return out
}
