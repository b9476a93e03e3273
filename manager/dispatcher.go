package manager

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/raftstore"
)

// dispatcher holds the sessions of every node's agent. It serves only while
// this manager leads: heartbeats become node status (Ready, Down) in Raft,
// batched into one entry per flush.
type dispatcher struct {
	api.UnimplementedDispatcherServer
	m *Manager

	mu       sync.Mutex
	leading  context.Context // nil unless leading; done when leadership ends
	sessions map[string]*session
	expect   map[string]time.Time // Ready nodes without a session yet, by deadline
	pending  map[string]*api.NodeStatus
	statuses map[string]*api.TaskStatusUpdate // task status reports to write
	waiting  []chan error                     // reporters waiting for those to commit
	kick     chan struct{}
	mesh     meshCache
}

type session struct {
	id       string
	nodeID   string
	addr     string
	lastSeen time.Time
	closed   chan struct{}
	once     sync.Once
}

func (s *session) close() { s.once.Do(func() { close(s.closed) }) }

func newDispatcher(m *Manager) *dispatcher {
	return &dispatcher{
		m:        m,
		sessions: map[string]*session{},
		pending:  map[string]*api.NodeStatus{},
		statuses: map[string]*api.TaskStatusUpdate{},
		kick:     make(chan struct{}, 1),
	}
}

func (d *dispatcher) period() time.Duration {
	if p := d.m.store.FSM().Settings().GetHeartbeatPeriodNs(); p > 0 {
		return time.Duration(p)
	}
	return d.m.cfg.HeartbeatPeriod
}

// lead runs while this manager is the leader.
func (d *dispatcher) lead(ctx context.Context) {
	d.mu.Lock()
	d.leading = ctx
	d.expect = map[string]time.Time{}
	deadline := time.Now().Add(d.m.cfg.ReconnectGrace)
	for _, n := range d.m.store.FSM().Nodes() {
		if n.State == api.NodeState_READY {
			d.expect[n.Id] = deadline
		}
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.leading = nil
		for id, s := range d.sessions {
			s.close()
			delete(d.sessions, id)
		}
		d.pending = map[string]*api.NodeStatus{}
		d.statuses = map[string]*api.TaskStatusUpdate{}
		for _, w := range d.waiting {
			w <- status.Error(codes.Unavailable, "this manager lost the leadership before writing the status; send it again")
		}
		d.waiting = nil
		d.mu.Unlock()
	}()

	tick := d.period() / 4
	if tick < 50*time.Millisecond {
		tick = 50 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.expire(time.Now())
		case <-d.kick:
		}
		d.flush(ctx)
	}
}

// expire marks down the nodes whose heartbeats stopped, and those that were
// Ready under the previous leader and did not come back in the grace time.
func (d *dispatcher) expire(now time.Time) {
	limit := d.period() * time.Duration(d.m.cfg.DownAfter)
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, s := range d.sessions {
		if now.Sub(s.lastSeen) > limit {
			s.close()
			delete(d.sessions, id)
			d.queueLocked(id, api.NodeState_DOWN, "heartbeat failure", "")
		}
	}
	for id, deadline := range d.expect {
		if now.After(deadline) {
			delete(d.expect, id)
			d.queueLocked(id, api.NodeState_DOWN, "heartbeat failure", "")
		}
	}
}

// queueLocked records a status change to write, if it is one.
func (d *dispatcher) queueLocked(id string, state api.NodeState, msg, addr string) {
	n, ok := d.m.store.FSM().Node(id)
	if !ok {
		return
	}
	if n.State == state && (addr == "" || addr == n.Addr) {
		delete(d.pending, id)
		return
	}
	d.pending[id] = &api.NodeStatus{Id: id, State: state, Message: msg, Addr: addr}
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// flush writes the queued node and task status changes, one Raft entry
// for each kind.
func (d *dispatcher) flush(ctx context.Context) {
	d.mu.Lock()
	var nodes *api.SetNodeStatus
	if len(d.pending) > 0 {
		nodes = &api.SetNodeStatus{UnixNano: time.Now().UnixNano()}
		for _, st := range d.pending {
			nodes.Statuses = append(nodes.Statuses, st)
		}
		d.pending = map[string]*api.NodeStatus{}
	}
	var tasks *api.TaskBatch
	if len(d.statuses) > 0 {
		tasks = &api.TaskBatch{}
		for _, u := range d.statuses {
			tasks.Status = append(tasks.Status, u)
		}
		d.statuses = map[string]*api.TaskStatusUpdate{}
	}
	waiting := d.waiting
	d.waiting = nil
	d.mu.Unlock()
	if nodes != nil {
		if _, err := d.m.store.Apply(ctx, &api.Command{Op: &api.Command_SetNodeStatus{SetNodeStatus: nodes}}); err != nil {
			d.m.log.Warn("writing node status", "nodes", len(nodes.Statuses), "err", err)
		}
	}
	var err error
	if tasks != nil {
		if _, err = d.m.store.Apply(ctx, &api.Command{Op: &api.Command_Tasks{Tasks: tasks}}); err != nil {
			d.m.log.Warn("writing task status", "tasks", len(tasks.Status), "err", err)
		}
	}
	for _, w := range waiting {
		w <- toStatus(err)
	}
}

// UpdateTaskStatus takes an agent's reports on its tasks. They are written
// with the next flush, many nodes' reports in one Raft entry, and the call
// returns once that entry is committed: an agent never believes a report
// delivered that a leader change lost. The time of each report is this
// manager's, as the restart delays are measured by it.
func (d *dispatcher) UpdateTaskStatus(ctx context.Context, req *api.UpdateTaskStatusRequest) (*api.UpdateTaskStatusResponse, error) {
	who, ok := caller(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "task status needs the node's certificate")
	}
	// Only the node's own tasks, checked before taking d.mu, which every
	// heartbeat needs too.
	f := d.m.store.FSM()
	now := time.Now().UnixNano()
	var mine []*api.TaskStatusUpdate
	for _, u := range req.Updates {
		if node, ok := f.TaskNode(u.GetTaskId()); ok && node == who.NodeID && u.Status != nil {
			mine = append(mine, u)
		}
	}
	d.mu.Lock()
	if d.leading == nil {
		d.mu.Unlock()
		return nil, d.notLeader(func(md metadata.MD) { grpc.SetTrailer(ctx, md) })
	}
	if s := d.sessions[who.NodeID]; s == nil || s.id != req.SessionId {
		d.mu.Unlock()
		return nil, status.Error(codes.NotFound, "no such session; open a new one")
	}
	for _, u := range mine {
		u.Status.UnixNano = now
		if old, ok := d.statuses[u.TaskId]; !ok || u.Status.State >= old.Status.State {
			d.statuses[u.TaskId] = u
		}
	}
	done := make(chan error, 1)
	d.waiting = append(d.waiting, done)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return &api.UpdateTaskStatusResponse{}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// open starts a session for a node, replacing any older one.
func (d *dispatcher) open(nodeID, addr string) (*session, context.Context, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leading == nil {
		return nil, nil, false
	}
	if old, ok := d.sessions[nodeID]; ok {
		old.close()
	}
	s := &session{id: pki.NewID(), nodeID: nodeID, addr: addr, lastSeen: time.Now(), closed: make(chan struct{})}
	d.sessions[nodeID] = s
	delete(d.expect, nodeID)
	d.queueLocked(nodeID, api.NodeState_READY, "", addr)
	return s, d.leading, true
}

func (d *dispatcher) drop(s *session) {
	s.close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sessions[s.nodeID] == s {
		delete(d.sessions, s.nodeID)
		// Heartbeats stopped with the stream; expire() marks it down
		// unless the node opens a new session in time.
		d.expect[s.nodeID] = s.lastSeen.Add(d.period() * time.Duration(d.m.cfg.DownAfter))
	}
}

func (d *dispatcher) closeSession(nodeID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.sessions[nodeID]; ok {
		s.close()
		delete(d.sessions, nodeID)
	}
	delete(d.expect, nodeID)
}

// Session streams a node what it needs to know: its session ID, the
// managers, the heartbeat period and its own record (to act on promote or
// demote). A new message goes out whenever one of those changes.
func (d *dispatcher) Session(req *api.SessionRequest, stream api.Dispatcher_SessionServer) error {
	ctx := stream.Context()
	who, ok := caller(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "a session needs the node's certificate")
	}
	s, leading, ok := d.open(who.NodeID, peerIP(ctx))
	if !ok {
		return d.notLeader(stream.SetTrailer)
	}
	defer d.drop(s)
	d.m.log.Debug("session opened", "node", who.NodeID, "addr", s.addr)
	d.describe(ctx, who.NodeID, req)

	f := d.m.store.FSM()
	changes, cancel := f.Changes()
	defer cancel()
	var last *api.SessionMessage
	type version struct {
		node, config uint64
		leader       string
		mesh         *api.NetworkConfig // the same pointer until it changes
	}
	var sent version // what the last message was made from
	for {
		// Rebuild only when this node's record or tasks, the managers or
		// the leader changed: not for every entry of every other node.
		leader, _ := d.m.store.Leader()
		now := version{f.NodeGeneration(who.NodeID), f.ConfigGeneration(), leader, d.mesh.get(f)}
		if last == nil || now != sent {
			msg, ok := d.message(s)
			if !ok {
				return status.Errorf(codes.PermissionDenied, "node %s is no longer a member of the swarm", who.NodeID)
			}
			if !proto.Equal(msg, last) {
				if err := stream.Send(msg); err != nil {
					return err
				}
				last = msg
			}
			sent = now
		}
		select {
		case <-changes:
		case <-ctx.Done():
			return nil
		case <-leading.Done():
			return d.notLeader(stream.SetTrailer)
		case <-s.closed:
			return status.Error(codes.Unavailable, "session closed by the manager; open a new one")
		}
	}
}

// describe records what a node says of itself when it changed.
func (d *dispatcher) describe(ctx context.Context, id string, req *api.SessionRequest) {
	n, ok := d.m.store.FSM().Node(id)
	if !ok || (n.Hostname == req.Hostname && n.EngineVersion == req.EngineVersion) || req.Hostname == "" {
		return
	}
	u := &api.UpdateNode{Id: id, Hostname: &req.Hostname, EngineVersion: &req.EngineVersion}
	if _, err := d.m.store.Apply(ctx, updateNode(u)); err != nil {
		d.m.log.Warn("recording node description", "node", id, "err", err)
	}
}

func (d *dispatcher) message(s *session) (*api.SessionMessage, bool) {
	n, ok := d.m.store.FSM().Node(s.nodeID)
	if !ok {
		return nil, false
	}
	return &api.SessionMessage{
		SessionId:         s.id,
		Managers:          d.m.managers(),
		HeartbeatPeriodNs: int64(d.period()),
		Node: &api.Node{
			Id: n.Id, Hostname: n.Hostname, Role: n.Role, DesiredRole: n.DesiredRole,
			Availability: n.Availability, AdvertiseAddr: n.AdvertiseAddr, Subnet: n.Subnet,
		},
		Tasks:    assigned(d.m.store.FSM().Tasks(raftstore.TaskFilter{NodeID: s.nodeID})),
		TasksSet: true,
		Network:  d.mesh.get(d.m.store.FSM()),
	}, true
}

func (d *dispatcher) Heartbeat(ctx context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	who, ok := caller(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "a heartbeat needs the node's certificate")
	}
	d.mu.Lock()
	leading := d.leading != nil
	s := d.sessions[who.NodeID]
	if leading && s != nil && s.id == req.SessionId {
		s.lastSeen = time.Now()
	}
	d.mu.Unlock()
	switch {
	case !leading:
		return nil, d.notLeader(func(md metadata.MD) { grpc.SetTrailer(ctx, md) })
	case s == nil || s.id != req.SessionId:
		return nil, status.Error(codes.NotFound, "no such session; open a new one")
	}
	return &api.HeartbeatResponse{PeriodNs: int64(d.period())}, nil
}

// notLeader answers a node that reached a follower, naming the leader.
func (d *dispatcher) notLeader(setTrailer func(metadata.MD)) error {
	if _, addr := d.m.store.Leader(); addr != "" {
		setTrailer(metadata.Pairs(api.MDLeader, addr))
	}
	return status.Error(codes.Unavailable, "this manager is not the leader")
}

// assigned are the tasks a node must know of: all but those that ended and
// are not wanted any more. A task leaving this set is the agent's cue to
// remove its container, so a node keeps no container of a task that was
// replaced, even after coming back from being down.
func assigned(tasks []*api.Task) []*api.Task {
	out := tasks[:0]
	for _, t := range tasks {
		if t.GetStatus().GetState().Terminal() && t.DesiredState > api.TaskState_RUNNING {
			continue
		}
		out = append(out, t)
	}
	return out
}
