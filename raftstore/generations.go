package raftstore

import "github.com/shoal-dev/shoal/api"

// generations tell readers whether what they care about changed since they
// last looked, so that the leader's loops need not re-read everything on
// every entry: the dispatcher resends a node's tasks only when they changed,
// and the reconcile pass runs only when something it decides on changed
// (not when a task merely moved from preparing to running).
type generations struct {
	counter uint64
	restore uint64            // everything counts as changed at a restore
	node    map[string]uint64 // a node's record or its tasks changed
	orch    uint64            // services, nodes, tasks made, ended or stopped
	net     uint64            // what orch covers, and tasks that start running
	config  uint64            // the Raft configuration (the managers)
}

func newGenerations() generations { return generations{node: map[string]uint64{}} }

// touched lists what cmd will change, read before it is applied (a
// deleted task's node is known only before). f.mu is held.
func (f *FSM) touched(cmd *api.Command) (nodes []string, orch, net bool) {
	taskNode := func(id string) {
		if t, ok := f.t.tasks[id]; ok && t.NodeId != "" {
			nodes = append(nodes, t.NodeId)
		}
	}
	switch op := cmd.Op.(type) {
	case *api.Command_InitCluster:
		return []string{op.InitCluster.GetNode().GetId()}, true, true
	case *api.Command_AddNode:
		return []string{op.AddNode.GetNode().GetId()}, true, true
	case *api.Command_UpdateNode:
		return []string{op.UpdateNode.GetId()}, true, true
	case *api.Command_RemoveNode:
		return []string{op.RemoveNode.GetId()}, true, true
	case *api.Command_SetNodeStatus:
		for _, s := range op.SetNodeStatus.GetStatuses() {
			nodes = append(nodes, s.GetId())
		}
		return nodes, true, true
	case *api.Command_PutService, *api.Command_RemoveService:
		return nil, true, true
	case *api.Command_Tasks:
		b := op.Tasks
		for _, t := range b.Put {
			nodes = append(nodes, t.GetNodeId())
			taskNode(t.GetId())
		}
		for _, id := range b.Delete {
			taskNode(id)
		}
		// A task's progress comes from its own node, which knows it: only
		// an end concerns the node (the dispatcher then drops the task if
		// it is unwanted) and the orchestrator. Echoing every step back
		// would send a node its whole task list for each status batch.
		// A rolling update also waits for its new tasks to run.
		for _, u := range b.Status {
			switch st := u.GetStatus().GetState(); {
			case st.Terminal():
				taskNode(u.GetTaskId())
				orch = true
			case st == api.TaskState_RUNNING:
				net = true // the routing mesh sends traffic to it
				orch = orch || f.updating(u.GetTaskId())
			}
		}
		for _, d := range b.Desired {
			taskNode(d.GetTaskId())
		}
		orch = orch || len(b.Put)+len(b.Delete)+len(b.Desired)+len(b.UpdateStatus) > 0
		return nodes, orch, net || orch
	}
	return nil, false, false
}

// bump records a change. f.mu is held.
func (g *generations) bump(nodes []string, orch, net bool) {
	g.counter++
	for _, n := range nodes {
		if n != "" {
			g.node[n] = g.counter
		}
	}
	if orch {
		g.orch = g.counter
	}
	if net {
		g.net = g.counter
	}
}

// NodeGeneration changes whenever the node's record or its assignments
// change: a task made, stopped, deleted or ended there. A task's progress
// short of an end does not change it: the node reported it.
func (f *FSM) NodeGeneration(id string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return max(f.gens.node[id], f.gens.restore)
}

// OrchestrationGeneration changes whenever services, nodes, or the set and
// fate of tasks change: what the reconcile pass decides on.
func (f *FSM) OrchestrationGeneration() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return max(f.gens.orch, f.gens.restore)
}

// NetworkGeneration changes whenever what the routing mesh is made from
// may have changed: nodes, services, and tasks made, started or ended.
func (f *FSM) NetworkGeneration() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return max(f.gens.net, f.gens.restore)
}

// ConfigGeneration changes whenever a Raft configuration entry (managers
// added or removed) is applied.
func (f *FSM) ConfigGeneration() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return max(f.gens.config, f.gens.restore)
}
