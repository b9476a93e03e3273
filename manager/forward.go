package manager

import (
	"context"
	"crypto/tls"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/raftstore"
	"github.com/shoal-dev/shoal/transport"
)

// reads are answered by the leader when there is one, so that a read after
// an acknowledged write sees it (a follower may lag, and one just restarted
// knows nothing yet); without a leader, the local FSM answers, so reads
// keep working when quorum is lost. Raft status and events are this
// manager's own view and are not forwarded.
var reads = map[string]func() proto.Message{
	"/shoal.v1.Control/ListNodes":    func() proto.Message { return new(api.ListNodesResponse) },
	"/shoal.v1.Control/GetNode":      func() proto.Message { return new(api.Node) },
	"/shoal.v1.Control/GetJoinToken": func() proto.Message { return new(api.JoinToken) },
	"/shoal.v1.Control/GetService":   func() proto.Message { return new(api.Service) },
	"/shoal.v1.Control/ListServices": func() proto.Message { return new(api.ListServicesResponse) },
	"/shoal.v1.Control/ListTasks":    func() proto.Message { return new(api.ListTasksResponse) },
}

// writes are the calls that must run on the leader, with a constructor for
// each one's response.
var writes = map[string]func() proto.Message{
	"/shoal.v1.Control/UpdateNode":      func() proto.Message { return new(api.Node) },
	"/shoal.v1.Control/RemoveNode":      func() proto.Message { return new(api.RemoveNodeResponse) },
	"/shoal.v1.Control/RotateJoinToken": func() proto.Message { return new(api.JoinToken) },
	"/shoal.v1.Control/CreateService":   func() proto.Message { return new(api.Service) },
	"/shoal.v1.Control/UpdateService":   func() proto.Message { return new(api.Service) },
	"/shoal.v1.Control/RemoveService":   func() proto.Message { return new(api.RemoveServiceResponse) },
	"/shoal.v1.CA/IssueNodeCertificate": func() proto.Message { return new(api.IssueNodeCertificateResponse) },
	"/shoal.v1.CA/RenewNodeCertificate": func() proto.Message { return new(api.RenewNodeCertificateResponse) },
	"/shoal.v1.RaftMembership/Join":     func() proto.Message { return new(api.RaftJoinResponse) },
}

// mdAppliedIndex is a trailer the leader sets on forwarded writes, so the
// follower can wait until its own FSM has the write before it answers:
// a `node ls` right after `node promote` on the same follower sees it.
const mdAppliedIndex = "shoal-applied-index"

// forwardWait bounds how long a follower waits to catch up after a write.
const forwardWait = 2 * time.Second

// forwardUnary runs writes on the leader, and reads there when it can:
// the only place where a follower forwards. The leader adds its applied
// index to forwarded answers.
func (m *Manager) forwardUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	newWriteResp, isWrite := writes[info.FullMethod]
	newReadResp, isRead := reads[info.FullMethod]
	if !isWrite && !isRead {
		return handler(ctx, req)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	wasForwarded := len(md.Get(mdForwarded)) > 0
	switch {
	case m.store.IsLeader():
		if isRead {
			if err := m.leaderReady(ctx); err != nil {
				return nil, err
			}
		}
		resp, err := handler(ctx, req)
		if wasForwarded {
			grpc.SetTrailer(ctx, metadata.Pairs(mdAppliedIndex, strconv.FormatUint(m.store.AppliedIndex(), 10)))
		}
		return resp, err
	case wasForwarded:
		// The forwarder thought we lead, and we may lag behind the one
		// that does: it asks again, or answers itself.
		return nil, status.Error(codes.Unavailable, "this manager is no longer the leader; retry")
	case isRead:
		return m.forwardRead(ctx, req, info, handler, newReadResp)
	}
	addr, err := m.leaderAddr(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return m.forwardTo(ctx, addr, info.FullMethod, req, newWriteResp())
}

// leaderReady waits, on the leader, until it has applied everything
// committed before it led: a manager elected a moment ago may not have, and
// a read it answered then could miss an acknowledged write.
func (m *Manager) leaderReady(ctx context.Context) error {
	deadline := time.Now().Add(m.cfg.Raft.LeaderWait)
	for m.appliedTerm.Load() != m.store.Term() {
		if !m.store.IsLeader() || time.Now().After(deadline) {
			return status.Error(codes.Unavailable, "this manager has just become the leader and is still applying the log; retry")
		}
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// forwardRead asks the leader, waiting up to LeaderWait for one that
// answers (after a leader dies, a follower names it until Raft notices).
// With no leader to ask, this manager's own copy answers: reads keep
// working when quorum is lost.
func (m *Manager) forwardRead(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler, newResp func() proto.Message) (any, error) {
	deadline := time.Now().Add(m.cfg.Raft.LeaderWait)
	failed := ""
	for {
		if m.store.IsLeader() {
			if err := m.leaderReady(ctx); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}
		if _, addr := m.store.Leader(); addr != "" && addr != failed {
			resp, err := m.forwardTo(ctx, addr, info.FullMethod, req, newResp())
			if status.Code(err) != codes.Unavailable {
				return resp, err
			}
			failed = addr
		}
		if time.Now().After(deadline) {
			return handler(ctx, req)
		}
		select {
		case <-ctx.Done():
			return nil, toStatus(ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// forwardTo makes the call on the leader at addr, on behalf of the caller,
// then waits (briefly) until this manager has applied what the leader had.
func (m *Manager) forwardTo(ctx context.Context, addr, method string, req any, resp proto.Message) (any, error) {
	conn, err := m.peers.get(addr)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "connect to leader at %s: %v", addr, err)
	}
	out := metadata.Pairs(mdForwarded, m.id.NodeID)
	if id, ok := caller(ctx); ok {
		out.Set(mdForwardedNode, id.NodeID)
		out.Set(mdForwardedOU, id.OU)
	}
	callCtx, stop := m.whileLeaderIs(ctx, addr)
	defer stop()
	var trailer metadata.MD
	if err := conn.Invoke(metadata.NewOutgoingContext(callCtx, out), method, req, resp, grpc.Trailer(&trailer)); err != nil {
		if ctx.Err() == nil && callCtx.Err() != nil && status.Code(err) == codes.Canceled {
			return nil, status.Errorf(codes.Unavailable,
				"the leader at %s stopped answering and Raft has moved on; the call may or may not have taken effect: check, then retry", addr)
		}
		return nil, err
	}
	if v := trailer.Get(mdAppliedIndex); len(v) == 1 {
		if index, perr := strconv.ParseUint(v[0], 10, 64); perr == nil {
			wctx, cancel := context.WithTimeout(ctx, forwardWait)
			_ = m.store.WaitApplied(wctx, index) // best effort: the call is done either way
			cancel()
		}
	}
	return resp, nil
}

// whileLeaderIs returns a context that ends when this manager stops naming
// addr as the leader. A connection to a leader that was cut off does not
// fail by itself (TCP retries for minutes); Raft notices within a heartbeat
// timeout, and so the forwarded call ends then too.
func (m *Manager) whileLeaderIs(ctx context.Context, addr string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, now := m.store.Leader(); now != addr {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// leaderAddr returns the leader's address, waiting briefly for an election.
func (m *Manager) leaderAddr(ctx context.Context) (string, error) {
	wait := m.cfg.Raft.LeaderWait
	deadline := time.Now().Add(wait)
	for {
		id, addr := m.store.Leader()
		if id == m.id.NodeID {
			return "", raftstore.ErrNotLeader // lost and regained between checks; caller retries
		}
		if addr != "" {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", raftstore.ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// peerConns caches gRPC connections to other managers.
type peerConns struct {
	tls   func() *tls.Config
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeerConns(tls func() *tls.Config) *peerConns {
	return &peerConns{tls: tls, conns: map[string]*grpc.ClientConn{}}
}

func (p *peerConns) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := transport.Dial(addr, p.tls())
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

func (p *peerConns) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.Close()
		delete(p.conns, addr)
	}
}

// LocalUnary is the interceptor of the daemon's control socket: a local call
// acts as this node, and its writes go to the leader like any other.
func LocalUnary(get func() *Manager) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m := get()
		if m == nil {
			return handler(ctx, req)
		}
		return m.forwardUnary(WithCaller(ctx, m.id), req, info, handler)
	}
}
