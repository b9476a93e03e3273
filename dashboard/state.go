package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

// State is one snapshot of the cluster as the local manager sees it: what
// /api/state returns and the "state" events of /api/stream carry.
type State struct {
	Time time.Time `json:"time"`
	// Self is this node's hostname (its ID if the cluster does not know it).
	Self string `json:"self"`
	// Leader is the leader's hostname as this manager sees it; empty when
	// it knows none.
	Leader string `json:"leader"`
	// Problems say, in words, what keeps the page from showing the whole
	// cluster: not a manager, no leader, a call that failed.
	Problems []string  `json:"problems"`
	Quorum   *Quorum   `json:"quorum"` // nil when Raft status is unknown
	Managers []Manager `json:"managers"`
	Nodes    []Node    `json:"nodes"`
	// Unassigned are live tasks on no node yet (pending).
	Unassigned []Task `json:"unassigned"`
}

// Quorum sums up what the cluster can bear now.
type Quorum struct {
	Managers  int    `json:"managers"`  // voters
	Needed    int    `json:"needed"`    // n/2+1
	Reachable int    `json:"reachable"` // from this manager, itself included
	MayFail   int    `json:"mayFail"`   // more managers that may fail; 0 without quorum
	OK        bool   `json:"ok"`
	Line      string `json:"line"` // "3 managers, quorum 2, 3 reachable: 1 may fail"
}

// Manager is one Raft member.
type Manager struct {
	Node      string `json:"node"` // hostname, or ID when unknown
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Self      bool   `json:"self"`
	Leader    bool   `json:"leader"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	// State is Leader, Follower, Candidate or Shutdown as the member last
	// said; Unknown when it never answered.
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	LastIndex    uint64 `json:"lastIndex"`
	CommitIndex  uint64 `json:"commitIndex"`
	AppliedIndex uint64 `json:"appliedIndex"`
	// LastContactMs is how long before its answer the member had last
	// heard from a leader, in ms; -1 for a leader itself or never.
	LastContactMs int64 `json:"lastContactMs"`
	// SilentMs is how long this manager has not heard from it, in ms; 0
	// while it answers.
	SilentMs int64 `json:"silentMs"`
}

// Node is one node of the cluster with its live tasks.
type Node struct {
	ID            string `json:"id"`
	Hostname      string `json:"hostname"`
	Self          bool   `json:"self"`
	Role          string `json:"role"`          // manager, worker
	Status        string `json:"status"`        // ready, down, unknown, disconnected
	Availability  string `json:"availability"`  // active, pause, drain
	ManagerStatus string `json:"managerStatus"` // leader, reachable, unreachable; empty for workers
	Addr          string `json:"addr"`
	Tasks         []Task `json:"tasks"`
}

// Task is one live task: its desired state is running or earlier.
type Task struct {
	ID      string `json:"id"`   // cut to 12 characters, as `service ps`
	Name    string `json:"name"` // service.slot
	Service string `json:"service"`
	Slot    uint64 `json:"slot"`
	State   string `json:"state"` // api.TaskState.Name: running, pending, ...
	Desired string `json:"desired"`
	Err     string `json:"err,omitempty"`
}

// snapshot asks the local daemon for the cluster's state. The three calls
// run at once, each bounded by timeout; a failed call leaves its part empty
// and says why in Problems, so a page is always possible.
func snapshot(ctx context.Context, c api.ControlClient, timeout time.Duration, now time.Time) *State {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		wg                   sync.WaitGroup
		raft                 *api.RaftStatusResponse
		nodes                *api.ListNodesResponse
		tasks                *api.ListTasksResponse
		raftErr, nErr, tsErr error
	)
	wg.Go(func() { raft, raftErr = c.RaftStatus(ctx, &api.RaftStatusRequest{}) })
	wg.Go(func() { nodes, nErr = c.ListNodes(ctx, &api.ListNodesRequest{}) })
	wg.Go(func() { tasks, tsErr = c.ListTasks(ctx, &api.ListTasksRequest{}) })
	wg.Wait()

	s := &State{Time: now, Problems: []string{}, Managers: []Manager{}, Nodes: []Node{}, Unassigned: []Task{}}
	for _, e := range []struct {
		what string
		err  error
	}{{"Raft status", raftErr}, {"nodes", nErr}, {"tasks", tsErr}} {
		if e.err != nil {
			s.addProblem(e.what, e.err)
		}
	}
	if raftErr == nil {
		s.Managers, s.Leader, s.Self = managers(raft, now)
		s.Quorum = quorum(raft)
		if s.Leader == "" {
			s.Problems = append(s.Problems, "No leader: this manager knows of none right now. "+
				"An election may be under way, or too few managers are online for a quorum; writes fail until there is one.")
		}
	}
	if nErr == nil {
		byID := map[string]*Node{}
		for _, n := range nodes.GetNodes() {
			s.Nodes = append(s.Nodes, node(n, nodes.GetSelfId()))
		}
		slices.SortFunc(s.Nodes, func(a, b Node) int {
			return cmp.Or(strings.Compare(a.Hostname, b.Hostname), strings.Compare(a.ID, b.ID))
		})
		for i := range s.Nodes {
			byID[s.Nodes[i].ID] = &s.Nodes[i]
			if s.Nodes[i].Self && s.Self == "" {
				s.Self = s.Nodes[i].Hostname
			}
		}
		if tsErr == nil {
			s.Unassigned = placeTasks(tasks.GetTasks(), byID)
		}
	}
	return s
}

// addProblem records a failed call once: on a worker all three calls fail
// alike, with the manager package's "not a swarm manager" words.
func (s *State) addProblem(what string, err error) {
	msg := status.Convert(err).Message()
	for _, p := range s.Problems {
		if strings.HasSuffix(p, msg) {
			return
		}
	}
	s.Problems = append(s.Problems, fmt.Sprintf("Could not read %s: %s", what, msg))
}

// managers turns a Raft status into rows, and names the leader and this
// node as this manager sees them.
func managers(r *api.RaftStatusResponse, now time.Time) (ms []Manager, leader, self string) {
	var leaderID string
	for _, m := range r.GetMembers() {
		if m.GetNodeId() == r.GetSelfId() {
			leaderID = m.GetRaft().GetLeaderId()
		}
	}
	ms = []Manager{}
	for _, m := range r.GetMembers() {
		info := m.GetRaft()
		row := Manager{
			Node: cmp.Or(m.GetHostname(), m.GetNodeId()), ID: m.GetNodeId(), Addr: m.GetAddr(),
			Self: m.GetNodeId() == r.GetSelfId(), Leader: leaderID != "" && m.GetNodeId() == leaderID,
			Voter: m.GetVoter(), Reachable: m.GetReachable(), State: "Unknown", LastContactMs: -1,
		}
		if info != nil {
			row.State = info.GetState()
			row.Term, row.LastIndex = info.GetTerm(), info.GetLastLogIndex()
			row.CommitIndex, row.AppliedIndex = info.GetCommitIndex(), info.GetAppliedIndex()
			if c := info.GetLastContactUnixNano(); c != 0 && info.GetState() != "Leader" {
				at := cmp.Or(m.GetSeenUnixNano(), now.UnixNano())
				row.LastContactMs = max(0, (at-c)/int64(time.Millisecond))
			}
		}
		if !row.Reachable && m.GetSeenUnixNano() != 0 {
			row.SilentMs = now.Sub(time.Unix(0, m.GetSeenUnixNano())).Milliseconds()
		}
		if row.Leader {
			leader = row.Node
		}
		if row.Self {
			self = row.Node
		}
		ms = append(ms, row)
	}
	return ms, leader, self
}

func quorum(r *api.RaftStatusResponse) *Quorum {
	q := &Quorum{Needed: int(r.GetQuorum()), Reachable: int(r.GetReachable())}
	for _, m := range r.GetMembers() {
		if m.GetVoter() {
			q.Managers++
		}
	}
	q.OK = q.Reachable >= q.Needed
	head := fmt.Sprintf("%d %s, quorum %d, %d reachable", q.Managers, plural(q.Managers, "manager", "managers"), q.Needed, q.Reachable)
	if !q.OK {
		q.Line = fmt.Sprintf("%s: NO QUORUM, writes fail until %d more %s back", head, q.Needed-q.Reachable,
			plural(q.Needed-q.Reachable, "comes", "come"))
		return q
	}
	q.MayFail = q.Reachable - q.Needed
	q.Line = fmt.Sprintf("%s: %d may fail", head, q.MayFail)
	return q
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func node(n *api.Node, selfID string) Node {
	out := Node{
		ID: n.GetId(), Hostname: cmp.Or(n.GetHostname(), n.GetId()), Self: n.GetId() == selfID,
		Role:         n.GetRole().Name(),
		Status:       n.GetState().Name(),
		Availability: n.GetAvailability().Name(),
		Addr:         n.GetAddr(), Tasks: []Task{},
	}
	switch ms := n.GetManagerStatus(); {
	case ms == nil:
	case ms.GetLeader():
		out.ManagerStatus = "leader"
	default:
		out.ManagerStatus = ms.GetReachability().Name()
	}
	return out
}

// placeTasks puts each live task on its node's row and returns the ones on
// no known node. Old tasks (desired state past running) are history and
// left out, as `service ps` shows them only indented.
func placeTasks(tasks []*api.Task, byID map[string]*Node) []Task {
	unassigned := []Task{}
	for _, t := range tasks {
		if t.GetDesiredState() > api.TaskState_RUNNING {
			continue
		}
		id := t.GetId()
		if len(id) > 12 {
			id = id[:12]
		}
		row := Task{
			ID: id, Name: fmt.Sprintf("%s.%d", t.GetServiceName(), t.GetSlot()), Service: t.GetServiceName(),
			Slot: t.GetSlot(), State: t.GetStatus().GetState().Name(), Desired: t.GetDesiredState().Name(),
			Err: t.GetStatus().GetErr(),
		}
		if n := byID[t.GetNodeId()]; n != nil {
			n.Tasks = append(n.Tasks, row)
		} else {
			unassigned = append(unassigned, row)
		}
	}
	byName := func(a, b Task) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot), strings.Compare(a.ID, b.ID))
	}
	for _, n := range byID {
		slices.SortFunc(n.Tasks, byName)
	}
	slices.SortFunc(unassigned, byName)
	return unassigned
}
