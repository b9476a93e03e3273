package raftstore

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestFSMDescribesWhatItApplies(t *testing.T) {
	f := NewFSM()
	var got []*api.Event
	f.SetEventSink(func(evs []*api.Event) { got = append(got, evs...) })
	mustFSMApply(t, f, &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{
		Cluster: &api.Cluster{Id: "c1"}, Node: &api.Node{Id: "n1", Hostname: "node-01", CreatedUnixNano: 10}}}})
	mustFSMApply(t, f, &api.Command{Op: &api.Command_SetNodeStatus{SetNodeStatus: &api.SetNodeStatus{UnixNano: 20,
		Statuses: []*api.NodeStatus{{Id: "n1", State: api.NodeState_READY}}}}})
	mustFSMApply(t, f, tasks(&api.TaskBatch{Put: []*api.Task{{Id: "t1", ServiceName: "web", Slot: 1, NodeId: "n1",
		Status: &api.TaskStatus{State: api.TaskState_ASSIGNED, UnixNano: 30}}}}))
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: &api.TaskStatus{State: api.TaskState_TASK_READY, UnixNano: 40}}}}))
	// A move backwards is not applied, so it is not told either.
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: &api.TaskStatus{State: api.TaskState_PENDING, UnixNano: 50}}}}))

	want := []struct {
		typ, action, id, key, value string
		at                          int64
	}{
		{"node", "create", "n1", "name", "node-01", 10},
		{"node", "update", "n1", "state.new", "ready", 20},
		{"task", "create", "t1", "name", "web.1", 30},
		{"task", "update", "t1", "state.new", "ready", 40},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Type != w.typ || e.Action != w.action || e.Id != w.id || e.Attributes[w.key] != w.value || e.UnixNano != w.at {
			t.Errorf("event %d = %v, want %s %s %s with %s=%s at %d", i, e, w.typ, w.action, w.id, w.key, w.value, w.at)
		}
	}
}
