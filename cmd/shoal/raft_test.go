package main

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func TestRaftStatus(t *testing.T) {
	fixClock(t)
	now := timeNow()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
	info := func(state string, term, last, commit, applied uint64, contact int64) *api.RaftInfo {
		return &api.RaftInfo{State: state, Term: term, LastLogIndex: last, CommitIndex: commit, AppliedIndex: applied, LastContactUnixNano: contact}
	}
	f := newFakeDaemon()
	f.raftStatus = &api.RaftStatusResponse{
		SelfId: "3mxq9c4tky7rkv1n0bz8w6pld", Quorum: 2, Reachable: 2,
		Members: []*api.RaftMember{
			{NodeId: "3mxq9c4tky7rkv1n0bz8w6pld", Hostname: "node-01", Addr: "10.0.0.1:2377", Voter: true, Reachable: true,
				Raft: info("Leader", 4, 112, 112, 112, 0)},
			{NodeId: "8ugq0wq2hs5ha0dzv3xl2yk1e", Hostname: "node-02", Addr: "10.0.0.2:2377", Voter: true, Reachable: true,
				Raft: info("Follower", 4, 112, 112, 111, ago(80*time.Millisecond)), SeenUnixNano: now.UnixNano()},
			{NodeId: "k0r7bb2wq9xsl3p6mt4vjd8hc", Hostname: "node-03", Addr: "10.0.0.3:2377", Voter: true, Reachable: false,
				Raft: info("Follower", 3, 90, 90, 90, ago(12*time.Second)), SeenUnixNano: ago(10 * time.Second)},
		},
	}
	host := f.serve(t)
	assertGolden(t, "raft-status", mustShoal(t, host, "raft", "status"))

	f.raftStatus.Reachable = 1
	f.raftStatus.Members[1].Reachable = false
	f.raftStatus.Members[1].Raft = nil
	assertGolden(t, "raft-status-no-quorum", mustShoal(t, host, "raft", "status"))
}
