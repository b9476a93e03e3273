package scheduler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// Filter drops the nodes that cannot take a task. Schedule applies its
// filters in order; a node counts against the first filter it fails, and
// those counts become the explanation of a task that fits nowhere.
//
// A filter that reads the task must depend only on what all tasks of one
// service version share (the service's spec: constraints, reservations),
// never on the slot or the task ID: Schedule checks it once per run of
// tasks of one service version, not once per task.
type Filter struct {
	// Name identifies the filter in tests and logs: "ready", "availability".
	Name string
	// Check reports whether node n can take task t.
	Check func(t *api.Task, n *NodeInfo) bool
	// NodeOnly says that Check ignores the task, so Schedule checks each
	// node once per batch instead of once per service version.
	NodeOnly bool
	// Explain says, in Swarm's words, that the filter rejected this many
	// nodes (always at least one): "2 nodes down".
	Explain func(nodes int) string
}

// DefaultFilters returns the filters Schedule applies, in order: the node
// is ready, its availability is active, and no task on it holds a host-mode
// port the task publishes. Constraints and resources will follow them here.
func DefaultFilters() []Filter {
	return []Filter{
		{
			Name:     "ready",
			Check:    func(_ *api.Task, n *NodeInfo) bool { return n.State == api.NodeState_READY },
			NodeOnly: true,
			Explain:  func(nodes int) string { return countNodes(nodes) + " down" },
		},
		{
			Name:     "availability",
			Check:    func(_ *api.Task, n *NodeInfo) bool { return n.Availability == api.NodeAvailability_ACTIVE },
			NodeOnly: true,
			Explain:  func(nodes int) string { return countNodes(nodes) + " not available for new tasks" },
		},
		{
			Name: "host-port",
			Check: func(t *api.Task, n *NodeInfo) bool {
				for _, p := range HostPorts(t) {
					if n.HostPorts[p] {
						return false
					}
				}
				return true
			},
			Explain: func(nodes int) string { return "host-mode port already in use on " + countNodes(nodes) },
		},
	}
}

// noSuitableNode starts every explanation, as in Swarm.
const noSuitableNode = "no suitable node"

// Explain builds the reason a task fits nowhere from how many nodes each
// filter rejected (rejected[i] belongs to filters[i]), as Swarm words it:
// "no suitable node (2 nodes down; 1 node not available for new tasks)".
// Like Swarm it names the filter that rejected the most nodes first; filters
// that rejected the same number keep their order. With nothing rejected
// (a cluster without nodes) it is just "no suitable node".
func Explain(filters []Filter, rejected []int) string {
	type entry struct {
		f     *Filter
		nodes int
	}
	var entries []entry
	for i := range min(len(filters), len(rejected)) {
		if rejected[i] > 0 {
			entries = append(entries, entry{&filters[i], rejected[i]})
		}
	}
	if len(entries) == 0 {
		return noSuitableNode
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return b.nodes - a.nodes })
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = e.f.Explain(e.nodes)
	}
	return noSuitableNode + " (" + strings.Join(parts, "; ") + ")"
}

// countNodes says "1 node" or "n nodes".
func countNodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// rejections counts, for each filter, the nodes that fail it first for
// task t.
func rejections(filters []Filter, nodes []*NodeInfo, t *api.Task) []int {
	rejected := make([]int, len(filters))
	for _, n := range nodes {
		for i := range filters {
			if !filters[i].Check(t, n) {
				rejected[i]++
				break
			}
		}
	}
	return rejected
}
