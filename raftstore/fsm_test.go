package raftstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// applyTo applies cmd to f as Raft would, at the next index.
func applyTo(t testing.TB, f *FSM, cmd *api.Command) any {
	t.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: f.appliedIndex() + 1, Type: raft.LogCommand, Data: data})
}

// applyErr applies cmd and returns the FSM's error, failing on any other answer.
func applyErr(t testing.TB, f *FSM, cmd *api.Command) error {
	t.Helper()
	switch resp := applyTo(t, f, cmd).(type) {
	case error:
		return resp
	case uint64:
		return nil
	default:
		t.Fatalf("apply %v: response %#v", cmd, resp)
		return nil
	}
}

func mustFSMApply(t testing.TB, f *FSM, cmd *api.Command) {
	t.Helper()
	if err := applyErr(t, f, cmd); err != nil {
		t.Fatalf("apply %v: %v", cmd, err)
	}
}

func ptr[T any](v T) *T { return &v }

func newInitializedFSM(t testing.TB) *FSM {
	f := NewFSM()
	mustFSMApply(t, f, initCluster("c1", "m1"))
	return f
}

func TestFSMInitCluster(t *testing.T) {
	f := NewFSM()
	if f.Cluster() != nil || f.Settings() != nil {
		t.Fatal("cluster or settings before InitCluster")
	}
	cmd := initCluster("c1", "m1")
	cmd.GetInitCluster().Node.ManagerStatus = &api.ManagerStatus{Leader: true}
	if got := applyTo(t, f, cmd); got != uint64(1) {
		t.Fatalf("response %#v, want index 1", got)
	}
	if c := f.Cluster(); c.GetId() != "c1" || c.WorkerSecret != "w1" {
		t.Fatalf("cluster %v", c)
	}
	n, ok := f.Node("m1")
	if !ok || n.Role != api.NodeRole_MANAGER {
		t.Fatalf("first node %v, %v", n, ok)
	}
	if n.ManagerStatus != nil {
		t.Errorf("manager status stored: %v", n.ManagerStatus)
	}

	if err := applyErr(t, f, initCluster("c2", "m2")); !errors.Is(err, ErrExists) {
		t.Errorf("second InitCluster: %v, want ErrExists", err)
	}
	if f.Cluster().Id != "c1" || len(f.Nodes()) != 1 {
		t.Errorf("refused InitCluster changed the state: %v %v", f.Cluster(), f.Nodes())
	}
	bad := &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{Cluster: &api.Cluster{Id: "c"}}}}
	if err := applyErr(t, NewFSM(), bad); err == nil {
		t.Error("InitCluster without a node: no error")
	}
}

func TestFSMAddNode(t *testing.T) {
	if err := applyErr(t, NewFSM(), addNode("w1", "a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddNode before InitCluster: %v, want ErrNotFound", err)
	}
	f := newInitializedFSM(t)
	mustFSMApply(t, f, addNode("w1", "worker-1"))
	if n, ok := f.Node("w1"); !ok || n.Hostname != "worker-1" {
		t.Fatalf("node w1: %v %v", n, ok)
	}
	if err := applyErr(t, f, addNode("w1", "other")); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate AddNode: %v, want ErrExists", err)
	}
	if n, _ := f.Node("w1"); n.Hostname != "worker-1" {
		t.Errorf("refused AddNode changed the node: %v", n)
	}
	mustFSMApply(t, f, &api.Command{Op: &api.Command_RemoveNode{RemoveNode: &api.RemoveNode{Id: "w1"}}})
	err := applyErr(t, f, addNode("w1", "back"))
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "w1") {
		t.Errorf("AddNode of a removed ID: %v, want ErrRemoved naming w1", err)
	}
	if err := applyErr(t, f, addNode("", "x")); err == nil {
		t.Error("AddNode without ID: no error")
	}
}

func TestFSMUpdateNode(t *testing.T) {
	f := newInitializedFSM(t)
	mustFSMApply(t, f, &api.Command{Op: &api.Command_AddNode{AddNode: &api.AddNode{Node: &api.Node{
		Id: "w1", Hostname: "h", EngineVersion: "1", AdvertiseAddr: "10.0.0.1:2377", Availability: api.NodeAvailability_ACTIVE,
	}}}})
	update := func(u *api.UpdateNode) *api.Command {
		return &api.Command{Op: &api.Command_UpdateNode{UpdateNode: u}}
	}
	mustFSMApply(t, f, update(&api.UpdateNode{Id: "w1", Availability: ptr(api.NodeAvailability_DRAIN), DesiredRole: ptr(api.NodeRole_MANAGER)}))
	n, _ := f.Node("w1")
	want := &api.Node{
		Id: "w1", Hostname: "h", EngineVersion: "1", AdvertiseAddr: "10.0.0.1:2377",
		Availability: api.NodeAvailability_DRAIN, DesiredRole: api.NodeRole_MANAGER,
	}
	if !proto.Equal(n, want) {
		t.Fatalf("after update: %v\nwant %v", n, want)
	}
	mustFSMApply(t, f, update(&api.UpdateNode{Id: "w1", Role: ptr(api.NodeRole_MANAGER), Hostname: ptr("h2"),
		AdvertiseAddr: ptr("10.0.0.2:2377"), EngineVersion: ptr("2")}))
	want.Role, want.Hostname, want.AdvertiseAddr, want.EngineVersion = api.NodeRole_MANAGER, "h2", "10.0.0.2:2377", "2"
	if n, _ := f.Node("w1"); !proto.Equal(n, want) {
		t.Fatalf("after second update: %v\nwant %v", n, want)
	}
	if err := applyErr(t, f, update(&api.UpdateNode{Id: "nope", Hostname: ptr("x")})); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a missing node: %v, want ErrNotFound", err)
	}
}

func TestFSMSetNodeStatus(t *testing.T) {
	f := newInitializedFSM(t)
	mustFSMApply(t, f, addNode("w1", "a"))
	status := func(unixNano int64, s ...*api.NodeStatus) *api.Command {
		return &api.Command{Op: &api.Command_SetNodeStatus{SetNodeStatus: &api.SetNodeStatus{Statuses: s, UnixNano: unixNano}}}
	}
	mustFSMApply(t, f, status(100,
		&api.NodeStatus{Id: "w1", State: api.NodeState_READY, Addr: "10.0.0.5"},
		&api.NodeStatus{Id: "gone", State: api.NodeState_READY}, // skipped, not an error
		&api.NodeStatus{Id: "m1", State: api.NodeState_READY, Message: "ok"},
	))
	w1, _ := f.Node("w1")
	if w1.State != api.NodeState_READY || w1.Addr != "10.0.0.5" || w1.UpdatedUnixNano != 100 {
		t.Fatalf("w1 after status: %v", w1)
	}
	if m1, _ := f.Node("m1"); m1.State != api.NodeState_READY || m1.StatusMessage != "ok" || m1.UpdatedUnixNano != 100 {
		t.Fatalf("m1 after status: %v", m1)
	}
	if _, ok := f.Node("gone"); ok {
		t.Fatal("status created a node")
	}
	mustFSMApply(t, f, status(200, &api.NodeStatus{Id: "w1", State: api.NodeState_DOWN, Message: "heartbeat failure"}))
	w1, _ = f.Node("w1")
	if w1.State != api.NodeState_DOWN || w1.Addr != "10.0.0.5" || w1.StatusMessage != "heartbeat failure" || w1.UpdatedUnixNano != 200 {
		t.Fatalf("w1 after down (addr must stay): %v", w1)
	}
}

func TestFSMRemoveNode(t *testing.T) {
	f := newInitializedFSM(t)
	mustFSMApply(t, f, addNode("w1", "a"))
	remove := &api.Command{Op: &api.Command_RemoveNode{RemoveNode: &api.RemoveNode{Id: "w1"}}}
	mustFSMApply(t, f, remove)
	if _, ok := f.Node("w1"); ok {
		t.Error("w1 still there")
	}
	if !f.IsRemoved("w1") || f.IsRemoved("m1") {
		t.Errorf("IsRemoved: w1 %v, m1 %v", f.IsRemoved("w1"), f.IsRemoved("m1"))
	}
	if got := f.Cluster().RemovedNodes; len(got) != 1 || got[0] != "w1" {
		t.Errorf("removed nodes %v", got)
	}
	if err := applyErr(t, f, remove); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v, want ErrNotFound", err)
	}
}

func TestFSMRotateSecret(t *testing.T) {
	if err := applyErr(t, NewFSM(), rotateSecret(api.NodeRole_WORKER, "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotate before InitCluster: %v, want ErrNotFound", err)
	}
	f := newInitializedFSM(t)
	mustFSMApply(t, f, rotateSecret(api.NodeRole_WORKER, "w2"))
	if c := f.Cluster(); c.WorkerSecret != "w2" || c.ManagerSecret != "m1" {
		t.Errorf("after worker rotation: %v", c)
	}
	mustFSMApply(t, f, rotateSecret(api.NodeRole_MANAGER, "m2"))
	if c := f.Cluster(); c.WorkerSecret != "w2" || c.ManagerSecret != "m2" {
		t.Errorf("after manager rotation: %v", c)
	}
	if err := applyErr(t, f, rotateSecret(api.NodeRole(7), "z")); err == nil {
		t.Error("rotate for an unknown role: no error")
	}
	if err := applyErr(t, f, rotateSecret(api.NodeRole_WORKER, "")); err == nil {
		t.Error("rotate to an empty secret: no error")
	}
}

func TestFSMBadCommands(t *testing.T) {
	f := newInitializedFSM(t)
	if err := applyErr(t, f, &api.Command{}); err == nil {
		t.Error("empty command: no error")
	}
	resp := f.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: []byte{0xff, 0xff, 0xff}})
	if _, ok := resp.(error); !ok {
		t.Errorf("undecodable entry: response %#v, want an error", resp)
	}
	if f.appliedIndex() != 10 {
		t.Errorf("applied index %d after a refused entry, want 10", f.appliedIndex())
	}
}

func TestFSMReadsAreCopies(t *testing.T) {
	f := newInitializedFSM(t)
	n, _ := f.Node("m1")
	n.Hostname = "changed"
	f.Cluster().Id = "changed"
	f.Nodes()[0].Hostname = "changed"
	want := f.Cluster().GetSettings().GetHeartbeatPeriodNs()
	f.Settings().HeartbeatPeriodNs = want + 1
	if n, _ := f.Node("m1"); n.Hostname != "m1" || f.Cluster().Id != "c1" || f.Settings().GetHeartbeatPeriodNs() != want {
		t.Errorf("a reader changed the state: %v %v", n, f.Cluster())
	}
}

func TestFSMNodesSorted(t *testing.T) {
	f := newInitializedFSM(t) // m1, hostname m1
	mustFSMApply(t, f, addNode("b", "alpha"))
	mustFSMApply(t, f, addNode("a", "alpha"))
	mustFSMApply(t, f, addNode("c", "zeta"))
	var got []string
	for _, n := range f.Nodes() {
		got = append(got, n.Hostname+"/"+n.Id)
	}
	if want := "alpha/a alpha/b m1/m1 zeta/c"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

func TestFSMChanges(t *testing.T) {
	f := NewFSM()
	ch, cancel := f.Changes()
	mustFSMApply(t, f, initCluster("c1", "m1"))
	mustFSMApply(t, f, addNode("w1", "a")) // coalesces with the first signal
	select {
	case <-ch:
	default:
		t.Fatal("no signal after Apply")
	}
	select {
	case <-ch:
		t.Fatal("signals did not coalesce")
	default:
	}
	cancel()
	cancel() // harmless twice
	mustFSMApply(t, f, addNode("w2", "b"))
	select {
	case <-ch:
		t.Fatal("signal after cancel")
	default:
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := newInitializedFSM(t)
	mustFSMApply(t, f, &api.Command{Op: &api.Command_AddNode{AddNode: &api.AddNode{Node: &api.Node{
		Id: "w1", Hostname: "a", Labels: map[string]string{"zone": "1", "disk": "ssd"},
	}}}})
	mustFSMApply(t, f, addNode("w2", "b"))
	mustFSMApply(t, f, &api.Command{Op: &api.Command_RemoveNode{RemoveNode: &api.RemoveNode{Id: "w2"}}})
	mustFSMApply(t, f, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{
		Id: "s1", Spec: &api.ServiceSpec{Name: "web"}, Version: 1,
	}}}})
	mustFSMApply(t, f, &api.Command{Op: &api.Command_Tasks{Tasks: &api.TaskBatch{Put: []*api.Task{
		{Id: "t1", ServiceId: "s1", Slot: 1, NodeId: "w1", Status: &api.TaskStatus{State: api.TaskState_RUNNING}},
		{Id: "t2", ServiceId: "s1", Slot: 2, NodeId: "m1"},
	}}}})
	wantCluster, wantNodes, wantApplied := f.Cluster(), f.Nodes(), f.appliedIndex()
	wantServices, wantTasks := f.Services(), f.Tasks(TaskFilter{})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// The snapshot is a picture of the moment: later changes are not in it.
	mustFSMApply(t, f, addNode("w3", "c"))
	mustFSMApply(t, f, rotateSecret(api.NodeRole_WORKER, "later"))

	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v, cancelled %v", sink.closed, sink.cancelled)
	}

	g := NewFSM()
	mustFSMApply(t, g, initCluster("other", "x")) // Restore must discard this
	ch, cancel := g.Changes()                     // subscribed after that Apply: nothing pending
	defer cancel()
	if err := g.Restore(&readCloser{bytes.NewReader(sink.Bytes())}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Error("no change signal after Restore")
	}
	if !proto.Equal(g.Cluster(), wantCluster) {
		t.Errorf("cluster after restore %v\nwant %v", g.Cluster(), wantCluster)
	}
	gotNodes := g.Nodes()
	if len(gotNodes) != len(wantNodes) {
		t.Fatalf("nodes after restore %v\nwant %v", gotNodes, wantNodes)
	}
	for i := range gotNodes {
		if !proto.Equal(gotNodes[i], wantNodes[i]) {
			t.Errorf("node %d after restore %v\nwant %v", i, gotNodes[i], wantNodes[i])
		}
	}
	if len(g.Services()) != 1 || !proto.Equal(g.Services()[0], wantServices[0]) {
		t.Errorf("services after restore %v\nwant %v", g.Services(), wantServices)
	}
	gotTasks := g.Tasks(TaskFilter{})
	if len(gotTasks) != len(wantTasks) {
		t.Fatalf("tasks after restore %v\nwant %v", gotTasks, wantTasks)
	}
	for i := range gotTasks {
		if !proto.Equal(gotTasks[i], wantTasks[i]) {
			t.Errorf("task %d after restore %v\nwant %v", i, gotTasks[i], wantTasks[i])
		}
	}
	if onW1 := g.Tasks(TaskFilter{NodeID: "w1"}); len(onW1) != 1 || onW1[0].Id != "t1" {
		t.Errorf("tasks on w1 after restore (index rebuilt?): %v", onW1)
	}
	if !g.IsRemoved("w2") {
		t.Error("removed node list lost")
	}
	if g.appliedIndex() != wantApplied {
		t.Errorf("applied index after restore %d, want %d", g.appliedIndex(), wantApplied)
	}
}

func TestSnapshotEncoding(t *testing.T) {
	state := &api.Snapshot{Cluster: &api.Cluster{Id: "c"}, Nodes: []*api.Node{{Id: "n"}}}
	data, err := encodeSnapshot(state, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	got, applied, err := decodeSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if applied != 1<<40 || !proto.Equal(got, state) {
		t.Errorf("decoded %v at %d, want %v at %d", got, applied, state, uint64(1<<40))
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"plain proto":    data[len(snapshotMagic)+8:],
		"short header":   data[:len(snapshotMagic)+4],
		"truncated body": append(data[:len(data):len(data)], 0x1a),
	} {
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
