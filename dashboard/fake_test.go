package dashboard

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/manager"
)

// fakeControl answers the calls the dashboard makes from fixed responses;
// any other call panics (the embedded interface is nil), since the
// dashboard must not make it.
type fakeControl struct {
	api.ControlClient

	mu       sync.Mutex
	raft     *api.RaftStatusResponse
	nodes    *api.ListNodesResponse
	tasks    *api.ListTasksResponse
	err      error           // returned by every call when set
	events   chan *api.Event // what Events streams
	streams  int             // Events streams open now
	requests []*api.EventsRequest
	closed   chan struct{} // gets a value when a stream ends
}

func newFakeControl() *fakeControl {
	return &fakeControl{events: make(chan *api.Event, 16), closed: make(chan struct{}, 16)}
}

func (f *fakeControl) RaftStatus(context.Context, *api.RaftStatusRequest, ...grpc.CallOption) (*api.RaftStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raft, f.err
}

func (f *fakeControl) ListNodes(context.Context, *api.ListNodesRequest, ...grpc.CallOption) (*api.ListNodesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes, f.err
}

func (f *fakeControl) ListTasks(context.Context, *api.ListTasksRequest, ...grpc.CallOption) (*api.ListTasksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks, f.err
}

func (f *fakeControl) Events(ctx context.Context, req *api.EventsRequest, _ ...grpc.CallOption) (api.Control_EventsClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if f.err != nil {
		return nil, f.err
	}
	f.streams++
	return &fakeStream{ctx: ctx, f: f}, nil
}

func (f *fakeControl) openStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams
}

func (f *fakeControl) setNotManager() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = manager.ErrNotManager
}

// fakeStream hands out the fake's events until its context ends, as a
// gRPC stream does when its call is cancelled.
type fakeStream struct {
	grpc.ClientStream
	ctx  context.Context
	f    *fakeControl
	done bool
}

func (s *fakeStream) Recv() (*api.Event, error) {
	select {
	case e := <-s.f.events:
		return e, nil
	case <-s.ctx.Done():
		if !s.done {
			s.done = true
			s.f.mu.Lock()
			s.f.streams--
			s.f.mu.Unlock()
			s.f.closed <- struct{}{}
		}
		return nil, s.ctx.Err()
	}
}

func (s *fakeStream) Header() (metadata.MD, error) { return nil, nil }
func (s *fakeStream) Context() context.Context     { return s.ctx }

// threeManagers is a cluster of node-01 (leader), node-02 (this node),
// node-03 (unreachable) and the worker node-04, with a service web of three
// tasks, one of them pending, and an old task of web.1.
func threeManagers() *fakeControl {
	f := newFakeControl()
	info := func(state string, term, idx uint64) *api.RaftInfo {
		return &api.RaftInfo{State: state, Term: term, LeaderId: "id01", LastLogIndex: idx, CommitIndex: idx - 1,
			AppliedIndex: idx - 2, LastContactUnixNano: 1_000_000_000}
	}
	f.raft = &api.RaftStatusResponse{SelfId: "id02", Quorum: 2, Reachable: 2, Members: []*api.RaftMember{
		{NodeId: "id01", Hostname: "node-01", Addr: "10.77.1.11:2377", Voter: true, Reachable: true, Raft: info("Leader", 3, 40), SeenUnixNano: 1_250_000_000},
		{NodeId: "id02", Hostname: "node-02", Addr: "10.77.1.12:2377", Voter: true, Reachable: true, Raft: info("Follower", 3, 40), SeenUnixNano: 1_250_000_000},
		{NodeId: "id03", Hostname: "node-03", Addr: "10.77.1.13:2377", Voter: true, Reachable: false, Raft: info("Follower", 2, 30), SeenUnixNano: 1_000_000_000},
	}}
	mgr := func(leader bool, r api.Reachability) *api.ManagerStatus {
		return &api.ManagerStatus{Leader: leader, Reachability: r}
	}
	f.nodes = &api.ListNodesResponse{SelfId: "id02", Nodes: []*api.Node{
		{Id: "id04", Hostname: "node-04", State: api.NodeState_READY},
		{Id: "id03", Hostname: "node-03", Role: api.NodeRole_MANAGER, State: api.NodeState_DOWN, ManagerStatus: mgr(false, api.Reachability_UNREACHABLE)},
		{Id: "id02", Hostname: "node-02", Role: api.NodeRole_MANAGER, State: api.NodeState_READY, ManagerStatus: mgr(false, api.Reachability_REACHABLE)},
		{Id: "id01", Hostname: "node-01", Role: api.NodeRole_MANAGER, State: api.NodeState_READY, ManagerStatus: mgr(true, api.Reachability_REACHABLE), Availability: api.NodeAvailability_DRAIN},
	}}
	task := func(id string, slot uint64, node string, state, desired api.TaskState) *api.Task {
		return &api.Task{Id: id, ServiceName: "web", Slot: slot, NodeId: node, DesiredState: desired,
			Status: &api.TaskStatus{State: state}}
	}
	f.tasks = &api.ListTasksResponse{Tasks: []*api.Task{
		task("t2aaaaaaaaaaaaaaaa", 2, "id04", api.TaskState_RUNNING, api.TaskState_RUNNING),
		task("t1aaaaaaaaaaaaaaaa", 1, "id04", api.TaskState_STARTING, api.TaskState_RUNNING),
		task("t1old", 1, "id03", api.TaskState_FAILED, api.TaskState_SHUTDOWN),
		task("t3", 3, "", api.TaskState_PENDING, api.TaskState_RUNNING),
	}}
	return f
}
