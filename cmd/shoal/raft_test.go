package main

import (
	"strings"
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

func TestEvents(t *testing.T) {
	fixClock(t)
	at := timeNow().Add(-2 * time.Second).UnixNano()
	f := newFakeDaemon()
	f.events = []*api.Event{
		{UnixNano: at, Type: "raft", Action: "elect", Id: "8ugq0wq2hs5ha0dzv3xl2yk1e",
			Attributes: map[string]string{"leader": "node-02", "leader.old": "node-01", "term": "5", "seen.by": "node-02"}},
		{UnixNano: at + 1e9, Type: "node", Action: "update", Id: "3mxq9c4tky7rkv1n0bz8w6pld",
			Attributes: map[string]string{"name": "node-01", "state.old": "ready", "state.new": "down", "message": "heartbeat failure"}},
		{UnixNano: at + 2e9, Type: "task", Action: "update", Id: "t1", Attributes: map[string]string{"name": "web.1", "state.old": "running", "state.new": "shutdown"}},
	}
	host := f.serve(t)
	assertGolden(t, "events", mustShoal(t, host, "events", "--since", "1m"))
	assertGolden(t, "events-raft-json", mustShoal(t, host, "events", "--filter", "type=raft", "--format", "json"))
	if r := shoal(t, host, "events", "--filter", "kind=raft"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter") {
		t.Errorf("a bad filter: %v", r)
	}
	reqs := f.requests("Events")
	if req := reqs[0].(*api.EventsRequest); req.SinceUnixNano != timeNow().Add(-time.Minute).UnixNano() {
		t.Errorf("--since 1m asked for events since %d", req.SinceUnixNano)
	}
}
