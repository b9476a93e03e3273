package manager

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/raftstore"
)

// control is the Control API: reads from the local FSM, writes on the leader.
type control struct {
	api.UnimplementedControlServer
	m *Manager
}

// NewControl returns the Control API of whatever manager get returns at the
// time of each call, or ErrNotManager when it returns nil. The daemon serves
// it on its local socket, where the node may become or stop being a manager.
func NewControl(get func() *Manager) api.ControlServer { return &localControl{get: get} }

func (c *control) ListNodes(ctx context.Context, _ *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	nodes := c.m.store.FSM().Nodes()
	servers, _ := c.m.store.Servers()
	leader, _ := c.m.store.Leader()
	for _, n := range nodes {
		n.ManagerStatus = c.m.managerStatus(servers, leader, n.Id)
	}
	// Self is the node the CLI talks to: for a read forwarded to the
	// leader, the follower it came through.
	self := c.m.id.NodeID
	if id, ok := caller(ctx); ok {
		self = id.NodeID
	}
	return &api.ListNodesResponse{Nodes: nodes, SelfId: self}, nil
}

func (c *control) GetNode(ctx context.Context, req *api.GetNodeRequest) (*api.Node, error) {
	n, err := c.m.resolveNode(req.Ref)
	if err != nil {
		return nil, err
	}
	servers, _ := c.m.store.Servers()
	leader, _ := c.m.store.Leader()
	n.ManagerStatus = c.m.managerStatus(servers, leader, n.Id)
	return n, nil
}

func (c *control) UpdateNode(ctx context.Context, req *api.UpdateNodeRequest) (*api.Node, error) {
	n, err := c.m.resolveNode(req.Ref)
	if err != nil {
		return nil, err
	}
	update := &api.UpdateNode{Id: n.Id, Availability: req.Availability}
	demote := req.DesiredRole != nil && *req.DesiredRole == api.NodeRole_WORKER && n.DesiredRole == api.NodeRole_MANAGER
	if req.DesiredRole != nil && *req.DesiredRole != n.DesiredRole {
		update.DesiredRole = req.DesiredRole
	}
	if demote {
		servers, err := c.m.store.Servers()
		if err != nil {
			return nil, toStatus(err)
		}
		if err := raftstore.CanRemove(servers, n.Id, c.m.probe.reachable); err != nil {
			return nil, toStatus(err)
		}
	}
	if update.Availability != nil || update.DesiredRole != nil {
		if _, err := c.m.store.Apply(ctx, updateNode(update)); err != nil {
			return nil, toStatus(err)
		}
	}
	if demote {
		// The node learns of its new role through its session and takes a
		// worker certificate; it leaves Raft now, so that quorum is counted
		// without it from here on.
		if err := c.m.store.RemoveServer(ctx, n.Id); err != nil {
			return nil, toStatus(fmt.Errorf("remove %s from Raft: %w", n.Hostname, err))
		}
	}
	out, _ := c.m.store.FSM().Node(n.Id)
	return out, nil
}

func (c *control) RemoveNode(ctx context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	n, err := c.m.resolveNode(req.Ref)
	if err != nil {
		return nil, err
	}
	servers, _ := c.m.store.Servers()
	for _, s := range servers {
		if string(s.ID) == n.Id {
			return nil, status.Errorf(codes.FailedPrecondition,
				"node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", n.Id)
		}
	}
	if n.DesiredRole == api.NodeRole_MANAGER {
		return nil, status.Errorf(codes.FailedPrecondition,
			"node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", n.Id)
	}
	if n.State != api.NodeState_DOWN && !req.Force {
		return nil, status.Errorf(codes.FailedPrecondition,
			"node %s is not down and can't be removed", n.Id)
	}
	cmd := &api.Command{Op: &api.Command_RemoveNode{RemoveNode: &api.RemoveNode{Id: n.Id}}}
	if _, err := c.m.store.Apply(ctx, cmd); err != nil {
		return nil, toStatus(err)
	}
	c.m.disp.closeSession(n.Id)
	return &api.RemoveNodeResponse{Id: n.Id}, nil
}

func (c *control) GetJoinToken(ctx context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	cl := c.m.store.FSM().Cluster()
	if cl == nil {
		return nil, status.Error(codes.Unavailable, "the cluster is not initialised yet: this manager is still starting or catching up; retry in a moment")
	}
	return c.m.joinToken(cl, req.Role), nil
}

func (c *control) RotateJoinToken(ctx context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	cmd := &api.Command{Op: &api.Command_RotateSecret{RotateSecret: &api.RotateSecret{Role: req.Role, Secret: pki.NewSecret()}}}
	if _, err := c.m.store.Apply(ctx, cmd); err != nil {
		return nil, toStatus(err)
	}
	return c.GetJoinToken(ctx, req)
}

func (m *Manager) joinToken(cl *api.Cluster, role api.NodeRole) *api.JoinToken {
	secret := cl.WorkerSecret
	if role == api.NodeRole_MANAGER {
		secret = cl.ManagerSecret
	}
	addrs := []string{m.cfg.AdvertiseAddr}
	for _, p := range m.managers() {
		if p.Addr != m.cfg.AdvertiseAddr {
			addrs = append(addrs, p.Addr)
		}
	}
	return &api.JoinToken{Role: role, Token: pki.FormatToken(cl.CaCertPem, secret), ManagerAddrs: addrs}
}

func updateNode(u *api.UpdateNode) *api.Command {
	return &api.Command{Op: &api.Command_UpdateNode{UpdateNode: u}}
}

// resolveNode finds a node by ID, hostname or unique ID prefix, as the
// Docker CLI does.
func (m *Manager) resolveNode(ref string) (*api.Node, error) {
	if ref == "" {
		return nil, status.Error(codes.InvalidArgument, "no node given: name a node by ID, ID prefix or hostname")
	}
	f := m.store.FSM()
	if n, ok := f.Node(ref); ok {
		return n, nil
	}
	var byName, byPrefix []*api.Node
	for _, n := range f.Nodes() {
		if n.Hostname == ref {
			byName = append(byName, n)
		}
		if strings.HasPrefix(n.Id, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	for _, matches := range [][]*api.Node{byName, byPrefix} {
		switch len(matches) {
		case 0:
			continue
		case 1:
			return matches[0], nil
		default:
			return nil, status.Errorf(codes.FailedPrecondition, "node %s is ambiguous (%d matches found)", ref, len(matches))
		}
	}
	return nil, status.Errorf(codes.NotFound, "node %s not found", ref)
}

// localControl serves the Control API on the daemon's socket, through
// whatever manager the node runs at the time of the call.
type localControl struct {
	api.UnimplementedControlServer
	get func() *Manager
}

// via runs one Control method on the current manager.
func via[Req, Resp any](l *localControl, ctx context.Context, req Req, method func(*control, context.Context, Req) (Resp, error)) (Resp, error) {
	m := l.get()
	if m == nil {
		var zero Resp
		return zero, ErrNotManager
	}
	return method(&control{m: m}, ctx, req)
}

func (l *localControl) ListNodes(ctx context.Context, req *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	return via(l, ctx, req, (*control).ListNodes)
}

func (l *localControl) GetNode(ctx context.Context, req *api.GetNodeRequest) (*api.Node, error) {
	return via(l, ctx, req, (*control).GetNode)
}

func (l *localControl) UpdateNode(ctx context.Context, req *api.UpdateNodeRequest) (*api.Node, error) {
	return via(l, ctx, req, (*control).UpdateNode)
}

func (l *localControl) RemoveNode(ctx context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	return via(l, ctx, req, (*control).RemoveNode)
}

func (l *localControl) GetJoinToken(ctx context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	return via(l, ctx, req, (*control).GetJoinToken)
}

func (l *localControl) RotateJoinToken(ctx context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	return via(l, ctx, req, (*control).RotateJoinToken)
}

func (l *localControl) CreateService(ctx context.Context, req *api.CreateServiceRequest) (*api.Service, error) {
	return via(l, ctx, req, (*control).CreateService)
}

func (l *localControl) UpdateService(ctx context.Context, req *api.UpdateServiceRequest) (*api.Service, error) {
	return via(l, ctx, req, (*control).UpdateService)
}

func (l *localControl) RemoveService(ctx context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	return via(l, ctx, req, (*control).RemoveService)
}

func (l *localControl) GetService(ctx context.Context, req *api.GetServiceRequest) (*api.Service, error) {
	return via(l, ctx, req, (*control).GetService)
}

func (l *localControl) ListServices(ctx context.Context, req *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	return via(l, ctx, req, (*control).ListServices)
}

func (l *localControl) ListTasks(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	return via(l, ctx, req, (*control).ListTasks)
}

func (l *localControl) RaftStatus(ctx context.Context, req *api.RaftStatusRequest) (*api.RaftStatusResponse, error) {
	return via(l, ctx, req, (*control).RaftStatus)
}
