package manager

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
)

// errBadToken is Swarm's answer to a join with a token that is not current.
var errBadToken = status.Error(codes.InvalidArgument, "A valid join token is necessary to join this cluster")

// caServer admits nodes: it hands out the root CA to anyone, a first
// certificate to a node with a valid join token, and renewals to members.
type caServer struct {
	api.UnimplementedCAServer
	m *Manager
}

func (s *caServer) cluster() (*api.Cluster, error) {
	cl := s.m.store.FSM().Cluster()
	if cl == nil {
		return nil, status.Error(codes.Unavailable, "this manager has no cluster state yet; retry")
	}
	return cl, nil
}

func (s *caServer) GetRootCA(ctx context.Context, _ *api.GetRootCARequest) (*api.GetRootCAResponse, error) {
	cl, err := s.cluster()
	if err != nil {
		return nil, err
	}
	return &api.GetRootCAResponse{CaCertPem: cl.CaCertPem}, nil
}

func (s *caServer) IssueNodeCertificate(ctx context.Context, req *api.IssueNodeCertificateRequest) (*api.IssueNodeCertificateResponse, error) {
	cl, err := s.cluster()
	if err != nil {
		return nil, err
	}
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if err := tok.CheckCA(cl.CaCertPem); err != nil {
		return nil, errBadToken
	}
	var role api.NodeRole
	switch {
	case pki.SecretEqual(tok.Secret, cl.ManagerSecret):
		role = api.NodeRole_MANAGER
	case pki.SecretEqual(tok.Secret, cl.WorkerSecret):
		role = api.NodeRole_WORKER
	default:
		return nil, errBadToken
	}
	ca, err := pki.ParseCA(cl.CaCertPem, cl.CaKeyPem)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cluster CA: %v", err)
	}
	// One join at a time on the leader: each takes the next free subnet.
	s.m.joinMu.Lock()
	defer s.m.joinMu.Unlock()
	subnet, err := NextSubnet(cl.Settings.GetDefaultAddrPool(), int(cl.Settings.GetSubnetSize()), s.m.store.FSM().Nodes())
	if err != nil {
		return nil, status.Errorf(codes.ResourceExhausted, "%v", err)
	}
	id := pki.NewID()
	certPEM, err := ca.IssueNodeCert(req.CsrPem, id, roleOU(role), cl.Id, time.Duration(cl.Settings.GetNodeCertExpiryNs()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	now := time.Now().UnixNano()
	node := &api.Node{
		Id:              id,
		Hostname:        req.Hostname,
		Role:            role,
		DesiredRole:     role,
		State:           api.NodeState_UNKNOWN,
		Addr:            peerIP(ctx),
		AdvertiseAddr:   req.AdvertiseAddr,
		EngineVersion:   req.EngineVersion,
		Os:              req.Os,
		Arch:            req.Arch,
		Subnet:          subnet,
		CreatedUnixNano: now,
		UpdatedUnixNano: now,
	}
	if _, err := s.m.store.Apply(ctx, &api.Command{Op: &api.Command_AddNode{AddNode: &api.AddNode{Node: node}}}); err != nil {
		return nil, toStatus(err)
	}
	s.m.log.Info("node joined", "node", id, "hostname", req.Hostname, "role", role)
	return &api.IssueNodeCertificateResponse{NodeId: id, CertPem: certPEM, ClusterId: cl.Id, Role: role, Managers: s.m.managers()}, nil
}

// RenewNodeCertificate signs a new certificate for a member, with the role
// the cluster wants it to have: this is how promote and demote take effect.
func (s *caServer) RenewNodeCertificate(ctx context.Context, req *api.RenewNodeCertificateRequest) (*api.RenewNodeCertificateResponse, error) {
	who, ok := caller(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "renewal needs the node's certificate")
	}
	cl, err := s.cluster()
	if err != nil {
		return nil, err
	}
	node, ok := s.m.store.FSM().Node(who.NodeID)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "node %s is not a member of this swarm", who.NodeID)
	}
	ca, err := pki.ParseCA(cl.CaCertPem, cl.CaKeyPem)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cluster CA: %v", err)
	}
	role := node.DesiredRole
	certPEM, err := ca.IssueNodeCert(req.CsrPem, node.Id, roleOU(role), cl.Id, time.Duration(cl.Settings.GetNodeCertExpiryNs()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	if node.Role != role {
		if _, err := s.m.store.Apply(ctx, updateNode(&api.UpdateNode{Id: node.Id, Role: &role})); err != nil {
			return nil, toStatus(err)
		}
	}
	return &api.RenewNodeCertificateResponse{CertPem: certPEM, Role: role}, nil
}

func roleOU(r api.NodeRole) string {
	if r == api.NodeRole_MANAGER {
		return pki.ManagerOU
	}
	return pki.WorkerOU
}

// peerIP is the address a call came from, without the port.
func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}
