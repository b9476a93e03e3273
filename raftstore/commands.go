package raftstore

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// apply runs one command against the state; f.mu is held. Each handler checks
// everything before it changes anything, so a refused command leaves the
// state as it was.
func (f *FSM) apply(cmd *api.Command) error {
	switch op := cmd.Op.(type) {
	case *api.Command_InitCluster:
		return f.initCluster(op.InitCluster)
	case *api.Command_AddNode:
		return f.addNode(op.AddNode)
	case *api.Command_UpdateNode:
		return f.updateNode(op.UpdateNode)
	case *api.Command_SetNodeStatus:
		f.setNodeStatus(op.SetNodeStatus)
		return nil
	case *api.Command_RemoveNode:
		return f.removeNode(op.RemoveNode)
	case *api.Command_RotateSecret:
		return f.rotateSecret(op.RotateSecret)
	case *api.Command_PutService:
		return f.putService(op.PutService)
	case *api.Command_RemoveService:
		return f.removeService(op.RemoveService)
	case *api.Command_Tasks:
		return f.taskBatch(op.Tasks)
	case nil:
		return errors.New("empty command: no operation set")
	default:
		return fmt.Errorf("unknown command %T", op)
	}
}

// storedNode is the copy of n the FSM keeps: manager status is computed by
// readers from the Raft view and never stored.
func storedNode(n *api.Node) *api.Node {
	n = proto.CloneOf(n)
	n.ManagerStatus = nil
	return n
}

func (f *FSM) initCluster(c *api.InitCluster) error {
	switch {
	case f.cluster != nil:
		return fmt.Errorf("cluster %s: %w", f.cluster.Id, ErrExists)
	case c.GetCluster().GetId() == "":
		return errors.New("init cluster: no cluster ID")
	case c.GetNode().GetId() == "":
		return errors.New("init cluster: no first node")
	}
	f.cluster = proto.CloneOf(c.Cluster)
	f.nodes = map[string]*api.Node{c.Node.Id: storedNode(c.Node)}
	return nil
}

func (f *FSM) addNode(c *api.AddNode) error {
	id := c.GetNode().GetId()
	switch {
	case id == "":
		return errors.New("add node: no node ID")
	case f.cluster == nil:
		return fmt.Errorf("add node %s: cluster: %w", id, ErrNotFound)
	case f.isRemoved(id):
		return fmt.Errorf("node %s: %w", id, ErrRemoved)
	case f.nodes[id] != nil:
		return fmt.Errorf("node %s: %w", id, ErrExists)
	}
	f.nodes[id] = storedNode(c.Node)
	return nil
}

func (f *FSM) updateNode(c *api.UpdateNode) error {
	n, ok := f.nodes[c.GetId()]
	if !ok {
		return fmt.Errorf("node %s: %w", c.GetId(), ErrNotFound)
	}
	if c.Role != nil {
		n.Role = *c.Role
	}
	if c.DesiredRole != nil {
		n.DesiredRole = *c.DesiredRole
	}
	if c.Availability != nil {
		n.Availability = *c.Availability
	}
	if c.Hostname != nil {
		n.Hostname = *c.Hostname
	}
	if c.AdvertiseAddr != nil {
		n.AdvertiseAddr = *c.AdvertiseAddr
	}
	if c.EngineVersion != nil {
		n.EngineVersion = *c.EngineVersion
	}
	return nil
}

// setNodeStatus records heartbeat outcomes. A status for a node that is gone
// (removed since the leader batched it) is skipped, not an error.
func (f *FSM) setNodeStatus(c *api.SetNodeStatus) {
	for _, s := range c.GetStatuses() {
		n, ok := f.nodes[s.GetId()]
		if !ok {
			continue
		}
		n.State = s.State
		n.StatusMessage = s.Message
		if s.Addr != "" {
			n.Addr = s.Addr
		}
		n.UpdatedUnixNano = c.UnixNano
	}
}

func (f *FSM) removeNode(c *api.RemoveNode) error {
	id := c.GetId()
	if _, ok := f.nodes[id]; !ok {
		return fmt.Errorf("node %s: %w", id, ErrNotFound)
	}
	delete(f.nodes, id)
	if f.cluster != nil && !f.isRemoved(id) {
		f.cluster.RemovedNodes = append(f.cluster.RemovedNodes, id)
	}
	return nil
}

func (f *FSM) rotateSecret(c *api.RotateSecret) error {
	switch {
	case f.cluster == nil:
		return fmt.Errorf("rotate secret: cluster: %w", ErrNotFound)
	case c.GetSecret() == "":
		return errors.New("rotate secret: empty secret")
	}
	switch c.Role {
	case api.NodeRole_WORKER:
		f.cluster.WorkerSecret = c.Secret
	case api.NodeRole_MANAGER:
		f.cluster.ManagerSecret = c.Secret
	default:
		return fmt.Errorf("rotate secret: unknown role %v", c.Role)
	}
	return nil
}
