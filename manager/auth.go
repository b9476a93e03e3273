package manager

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/pki"
)

// Metadata a manager adds when it forwards a call to the leader, naming the
// node the call came from. The leader believes it only from a manager.
const (
	mdForwardedNode = "shoal-forwarded-node"
	mdForwardedOU   = "shoal-forwarded-ou"
	mdForwarded     = "shoal-forwarded"
)

var (
	anyNode     = []string{pki.ManagerOU, pki.WorkerOU}
	managerOnly = []string{pki.ManagerOU}
)

// policy lists, for every method on the cluster port, the roles allowed to
// call it. A nil entry means no certificate is needed: only the two calls
// a node makes before it has joined.
var policy = map[string][]string{
	"/shoal.v1.CA/GetRootCA":                nil,
	"/shoal.v1.CA/IssueNodeCertificate":     nil,
	"/shoal.v1.CA/RenewNodeCertificate":     anyNode,
	"/shoal.v1.Dispatcher/Session":          anyNode,
	"/shoal.v1.Dispatcher/Heartbeat":        anyNode,
	"/shoal.v1.RaftMembership/Join":         managerOnly,
	"/shoal.v1.RaftMembership/Ping":         managerOnly,
	"/shoal.v1.Control/ListNodes":           managerOnly,
	"/shoal.v1.Control/GetNode":             managerOnly,
	"/shoal.v1.Control/UpdateNode":          managerOnly,
	"/shoal.v1.Control/RemoveNode":          managerOnly,
	"/shoal.v1.Control/GetJoinToken":        managerOnly,
	"/shoal.v1.Control/RotateJoinToken":     managerOnly,
	"/shoal.v1.Control/CreateService":       managerOnly,
	"/shoal.v1.Control/UpdateService":       managerOnly,
	"/shoal.v1.Control/RemoveService":       managerOnly,
	"/shoal.v1.Control/GetService":          managerOnly,
	"/shoal.v1.Control/ListServices":        managerOnly,
	"/shoal.v1.Control/ListTasks":           managerOnly,
	"/shoal.v1.Dispatcher/UpdateTaskStatus": anyNode,
	"/shoal.v1.Control/RaftStatus":          managerOnly,
	"/shoal.v1.Control/Events":              managerOnly,
}

type callerKey struct{}

// caller is the authenticated node behind a call, if there is one.
func caller(ctx context.Context) (pki.Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(pki.Identity)
	return id, ok
}

// WithCaller marks a call as made by the given node; the daemon uses it for
// calls on its local socket, which act as the node itself.
func WithCaller(ctx context.Context, id pki.Identity) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

func (m *Manager) authorizeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := m.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (m *Manager) authorizeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := m.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// authorize checks the peer certificate against the method's policy and
// returns a context that carries the caller's identity.
func (m *Manager) authorize(ctx context.Context, method string) (context.Context, error) {
	allowed, known := policy[method]
	if !known {
		return nil, status.Errorf(codes.PermissionDenied, "method %s is not served on the cluster port", method)
	}
	cert := peerCert(ctx)
	if cert == nil && allowed == nil {
		return ctx, nil
	}
	ous := allowed
	if ous == nil {
		ous = anyNode
	}
	id, err := pki.Authorize(cert, m.id.ClusterID, m.isRemoved, ous...)
	if err != nil {
		if errors.Is(err, pki.ErrNoCertificate) {
			return nil, status.Errorf(codes.Unauthenticated, "%s needs a node certificate of this cluster: %v", method, err)
		}
		return nil, status.Errorf(codes.PermissionDenied, "%s: %v", method, err)
	}
	if fwd, ok := forwardedFor(ctx, id); ok {
		if m.isRemoved(fwd.NodeID) {
			return nil, status.Errorf(codes.PermissionDenied, "%s: node %s was removed from the swarm", method, fwd.NodeID)
		}
		if allowed != nil && !slices.Contains(allowed, fwd.OU) {
			return nil, status.Errorf(codes.PermissionDenied, "%s: role %s may not call it", method, fwd.OU)
		}
		id = fwd
	}
	return WithCaller(ctx, id), nil
}

// forwardedFor reads the identity a manager forwarded a call on behalf of.
func forwardedFor(ctx context.Context, direct pki.Identity) (pki.Identity, bool) {
	if direct.OU != pki.ManagerOU {
		return pki.Identity{}, false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	nodes, ous := md.Get(mdForwardedNode), md.Get(mdForwardedOU)
	if len(nodes) != 1 || len(ous) != 1 {
		return pki.Identity{}, false
	}
	return pki.Identity{NodeID: nodes[0], OU: ous[0], ClusterID: direct.ClusterID}, true
}

func peerCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		return nil
	}
	return info.State.PeerCertificates[0]
}
