package manager

import (
	"context"

	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/api"
)

// RaftStatus shows every manager's Raft state: this manager's own, the
// others' as they told it in their last answer to a ping. It is a read,
// answered by whichever manager is asked, leader or not.
func (c *control) RaftStatus(ctx context.Context, _ *api.RaftStatusRequest) (*api.RaftStatusResponse, error) {
	m := c.m
	servers, err := m.store.Servers()
	if err != nil {
		return nil, toStatus(err)
	}
	f := m.store.FSM()
	out := &api.RaftStatusResponse{SelfId: m.id.NodeID}
	voters := 0
	for _, s := range servers {
		id := string(s.ID)
		mem := &api.RaftMember{NodeId: id, Addr: string(s.Address), Voter: s.Suffrage == raft.Voter, Reachable: m.probe.reachable(id)}
		if n, ok := f.Node(id); ok {
			mem.Hostname = n.Hostname
		}
		if id == m.id.NodeID {
			mem.Raft = m.store.Info()
		} else if info, at := m.probe.seen(id); info != nil {
			mem.Raft, mem.SeenUnixNano = info, at.UnixNano()
		}
		if mem.Voter {
			voters++
			if mem.Reachable {
				out.Reachable++
			}
		}
		out.Members = append(out.Members, mem)
	}
	out.Quorum = int32(voters/2 + 1)
	return out, nil
}
