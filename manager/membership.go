package manager

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

// membership serves the calls managers make to each other.
type membership struct {
	api.UnimplementedRaftMembershipServer
	m *Manager
}

// Join adds the calling manager to Raft as a voter. It runs on the leader
// (forward.go sends it there) after the caller holds a manager certificate
// and listens on its cluster port.
func (s *membership) Join(ctx context.Context, req *api.RaftJoinRequest) (*api.RaftJoinResponse, error) {
	who, ok := caller(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "joining Raft needs a manager certificate")
	}
	node, ok := s.m.store.FSM().Node(who.NodeID)
	if !ok || node.DesiredRole != api.NodeRole_MANAGER {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s is not to be a manager", who.NodeID)
	}
	if req.Addr == "" {
		return nil, status.Error(codes.InvalidArgument, "no Raft address given")
	}
	if err := s.m.store.AddVoter(ctx, who.NodeID, req.Addr); err != nil {
		return nil, toStatus(err)
	}
	s.m.log.Info("manager joined Raft", "node", who.NodeID, "addr", req.Addr)
	return &api.RaftJoinResponse{}, nil
}

func (s *membership) Ping(ctx context.Context, _ *api.PingRequest) (*api.PingResponse, error) {
	return &api.PingResponse{NodeId: s.m.id.NodeID, Raft: s.m.store.Info()}, nil
}

// prober pings the other managers to learn which are reachable from here:
// MANAGER STATUS and the quorum guard of demote use it.
type prober struct {
	m         *Manager
	mu        sync.Mutex
	lastOK    map[string]time.Time
	firstSeen map[string]time.Time     // when each peer was first asked about or pinged
	raft      map[string]*api.RaftInfo // each peer's Raft view from its last answer
	now       func() time.Time
}

func newProber(m *Manager) *prober {
	return &prober{m: m, lastOK: map[string]time.Time{}, firstSeen: map[string]time.Time{}, raft: map[string]*api.RaftInfo{}, now: time.Now}
}

// seen returns a peer's Raft view from its last answer, and when that was.
func (p *prober) seen(id string) (*api.RaftInfo, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raft[id], p.lastOK[id]
}

// reachable: this manager itself, and any other that answered a ping within
// the last three intervals, or that had no chance to yet: a manager promoted
// a moment ago gets its three intervals from when this one first heard of
// it, not from when this one started.
func (p *prober) reachable(id string) bool {
	if id == p.m.id.NodeID {
		return true
	}
	window := 3 * p.m.cfg.ProbeInterval
	p.mu.Lock()
	defer p.mu.Unlock()
	last, ok := p.lastOK[id]
	if !ok {
		last = p.noticeLocked(id)
	}
	return p.now().Sub(last) < window
}

// noticeLocked returns when the prober first heard of id, which is now if
// it had not before.
func (p *prober) noticeLocked(id string) time.Time {
	at, ok := p.firstSeen[id]
	if !ok {
		at = p.now()
		p.firstSeen[id] = at
	}
	return at
}

// track takes the latest Raft configuration: it notes the managers new to
// it, forgets those that left (so that one promoted again starts afresh),
// and returns the others, to ping.
func (p *prober) track(servers []raft.Server) []raft.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	var peers []raft.Server
	member := map[string]bool{}
	for _, s := range servers {
		id := string(s.ID)
		member[id] = true
		if id != p.m.id.NodeID {
			p.noticeLocked(id)
			peers = append(peers, s)
		}
	}
	for id := range p.firstSeen {
		if !member[id] {
			delete(p.firstSeen, id)
			delete(p.lastOK, id)
			delete(p.raft, id)
		}
	}
	return peers
}

func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(p.m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		servers, err := p.m.store.Servers()
		if err != nil {
			continue
		}
		var wg sync.WaitGroup
		for _, s := range p.track(servers) {
			id, addr := string(s.ID), string(s.Address)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := p.ping(ctx, addr); err == nil {
					p.mu.Lock()
					p.lastOK[id] = p.now()
					p.raft[id] = resp.Raft
					p.mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
}

func (p *prober) ping(ctx context.Context, addr string) (*api.PingResponse, error) {
	conn, err := p.m.peers.get(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.m.cfg.ProbeInterval)
	defer cancel()
	return api.NewRaftMembershipClient(conn).Ping(ctx, &api.PingRequest{})
}

// Reachability counts the Raft members reachable from here, and all of them.
func (m *Manager) Reachability() (reachable, total int) {
	servers, err := m.store.Servers()
	if err != nil {
		return 0, 0
	}
	for _, s := range servers {
		if m.probe.reachable(string(s.ID)) {
			reachable++
		}
	}
	return reachable, len(servers)
}

// ForgetManagers records, after --force-new-cluster, that the managers left
// out of Raft are workers now: should one come back, it takes a worker
// certificate like any demoted node, and can be promoted again.
func (m *Manager) ForgetManagers(ctx context.Context, ids []string) error {
	if err := m.waitLeader(ctx); err != nil {
		return err
	}
	worker := api.NodeRole_WORKER
	for _, id := range ids {
		if _, ok := m.store.FSM().Node(id); !ok {
			continue
		}
		if _, err := m.store.Apply(ctx, updateNode(&api.UpdateNode{Id: id, Role: &worker, DesiredRole: &worker})); err != nil {
			return err
		}
	}
	return nil
}
