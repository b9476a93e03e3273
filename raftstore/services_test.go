package raftstore

import (
	"errors"
	"testing"

	"github.com/shoal-dev/shoal/api"
	"google.golang.org/protobuf/proto"
)

func tasks(b *api.TaskBatch) *api.Command { return &api.Command{Op: &api.Command_Tasks{Tasks: b}} }

// A task's state and desired state only move forward, whether the change
// comes as a status report, a desired state or a whole task put from an
// older copy.
func TestTaskBatchMovesOnlyForward(t *testing.T) {
	f := NewFSM()
	st := func(s api.TaskState) *api.TaskStatus { return &api.TaskStatus{State: s} }
	mustFSMApply(t, f, tasks(&api.TaskBatch{Put: []*api.Task{{Id: "t1", ServiceId: "s", NodeId: "n1", DesiredState: api.TaskState_RUNNING, Status: st(api.TaskState_ASSIGNED)}}}))
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_RUNNING)}}}))
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_PREPARING)}}}))
	if got, _ := f.Task("t1"); got.Status.State != api.TaskState_RUNNING {
		t.Fatalf("a report moved the task back to %s", got.Status.State)
	}
	mustFSMApply(t, f, tasks(&api.TaskBatch{Desired: []*api.TaskDesiredState{{TaskId: "t1", State: api.TaskState_SHUTDOWN}}}))
	// A put from a copy made before both changes keeps them.
	mustFSMApply(t, f, tasks(&api.TaskBatch{Put: []*api.Task{{Id: "t1", ServiceId: "s", NodeId: "n1", DesiredState: api.TaskState_RUNNING, Status: st(api.TaskState_ASSIGNED)}}}))
	got, _ := f.Task("t1")
	if got.Status.State != api.TaskState_RUNNING || got.DesiredState != api.TaskState_SHUTDOWN {
		t.Fatalf("a stale put took the task back to %s, desired %s", got.Status.State, got.DesiredState)
	}
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_SHUTDOWN)}}}))
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_FAILED)}}}))
	if got, _ := f.Task("t1"); got.Status.State != api.TaskState_SHUTDOWN {
		t.Fatalf("an ended task moved on to %s", got.Status.State)
	}
	if n := len(f.Tasks(TaskFilter{NodeID: "n1"})); n != 1 {
		t.Fatalf("node index holds %d tasks", n)
	}
	if node, ok := f.TaskNode("t1"); !ok || node != "n1" {
		t.Fatalf("TaskNode(t1) = %q, %v; want n1", node, ok)
	}
	mustFSMApply(t, f, tasks(&api.TaskBatch{Delete: []string{"t1"}}))
	if _, ok := f.TaskNode("t1"); ok {
		t.Fatal("TaskNode finds a deleted task")
	}
	if n := len(f.Tasks(TaskFilter{NodeID: "n1"})) + len(f.Tasks(TaskFilter{ServiceID: "s"})); n != 0 {
		t.Fatalf("indexes keep %d deleted tasks", n)
	}
}

// TestStatusForward checks every pair of states against the FSM's rule:
// forward along the lifecycle, or staying put (an agent may report a state
// again), and never out of an end state.
func TestStatusForward(t *testing.T) {
	states := make([]api.TaskState, 0, len(api.TaskState_name))
	for s := range api.TaskState_name {
		states = append(states, api.TaskState(s))
	}
	for _, from := range states {
		for _, to := range states {
			want := from < api.TaskState_COMPLETE && to >= from
			if got := statusForward(from, to); got != want {
				t.Errorf("statusForward(%v, %v) = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestGenerationsSayWhatChanged(t *testing.T) {
	f := NewFSM()
	st := func(s api.TaskState) *api.TaskStatus { return &api.TaskStatus{State: s} }
	mustFSMApply(t, f, tasks(&api.TaskBatch{Put: []*api.Task{{Id: "t1", NodeId: "n1", Status: st(api.TaskState_ASSIGNED)}}}))
	n1, n2, orch := f.NodeGeneration("n1"), f.NodeGeneration("n2"), f.OrchestrationGeneration()
	if n1 == 0 || orch == 0 {
		t.Fatalf("a new task changed nothing: node %d, orchestration %d", n1, orch)
	}
	// Progress short of an end comes from the node itself: it concerns
	// neither the node's session nor the orchestrator.
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_RUNNING)}}}))
	if f.NodeGeneration("n1") != n1 || f.NodeGeneration("n2") != n2 || f.OrchestrationGeneration() != orch {
		t.Fatalf("running: node n1 %d→%d, n2 %d→%d, orchestration %d→%d",
			n1, f.NodeGeneration("n1"), n2, f.NodeGeneration("n2"), orch, f.OrchestrationGeneration())
	}
	// An end concerns both.
	n1 = f.NodeGeneration("n1")
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: st(api.TaskState_FAILED)}}}))
	if f.NodeGeneration("n1") == n1 || f.OrchestrationGeneration() == orch {
		t.Fatal("a failed task changed neither its node's nor the orchestration generation")
	}
	// A deleted task's node hears of it.
	n1 = f.NodeGeneration("n1")
	mustFSMApply(t, f, tasks(&api.TaskBatch{Delete: []string{"t1"}}))
	if f.NodeGeneration("n1") == n1 {
		t.Fatal("deleting a task did not change its node's generation")
	}
}

// A service put names the version it was made from: a change in between,
// or a removal, is never overwritten.
func TestServicePutMustFollowTheVersionItWasMadeFrom(t *testing.T) {
	f := NewFSM()
	put := func(version uint64, replicas uint64) error {
		return applyErr(t, f, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{
			Id: "s1", Version: version, Spec: &api.ServiceSpec{Name: "web", Replicas: replicas}}}}})
	}
	if err := put(2, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an update of a service that does not exist: %v", err)
	}
	if err := put(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := put(2, 3); err != nil {
		t.Fatal(err)
	}
	if err := put(2, 5); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second change made from version 1: %v", err)
	}
	if s, _ := f.Service("s1"); s.Spec.Replicas != 3 || s.Version != 2 {
		t.Fatalf("service is %v", s)
	}
	mustFSMApply(t, f, &api.Command{Op: &api.Command_RemoveService{RemoveService: &api.RemoveService{Id: "s1"}}})
	if err := put(3, 4); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a change racing the removal brought the service back: %v", err)
	}
}

// The orchestrator records a rolling update's progress in its task batch,
// for the service version it planned from: a newer version (a new update
// started meanwhile) is not overwritten. While a service updates, a task
// that starts running concerns the orchestrator: the next step waits for it.
func TestTaskBatchRecordsUpdateStatus(t *testing.T) {
	f := NewFSM()
	var events []*api.Event
	f.SetEventSink(func(evs []*api.Event) { events = append(events, evs...) })
	updating := &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedUnixNano: 1}
	mustFSMApply(t, f, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{
		Id: "s1", Version: 1, Spec: &api.ServiceSpec{Name: "web"}, UpdateStatus: updating}}}})
	mustFSMApply(t, f, tasks(&api.TaskBatch{Put: []*api.Task{{Id: "t1", ServiceId: "s1", NodeId: "n1", Status: &api.TaskStatus{State: api.TaskState_STARTING}}}}))

	orch := f.OrchestrationGeneration()
	mustFSMApply(t, f, tasks(&api.TaskBatch{Status: []*api.TaskStatusUpdate{{TaskId: "t1", Status: &api.TaskStatus{State: api.TaskState_RUNNING}}}}))
	if f.OrchestrationGeneration() == orch {
		t.Error("a task of an updating service started running and the orchestrator was not told")
	}

	record := func(version uint64, state api.UpdateStatus_State) {
		mustFSMApply(t, f, tasks(&api.TaskBatch{UpdateStatus: []*api.ServiceUpdateStatus{{ServiceId: "s1", Version: version,
			Status: &api.UpdateStatus{State: state, StartedUnixNano: 1, CompletedUnixNano: 2, Message: "update " + state.Name()}}}}))
	}
	record(2, api.UpdateStatus_PAUSED) // planned from a version that is not the service's
	if s, _ := f.Service("s1"); s.GetUpdateStatus().GetState() != api.UpdateStatus_UPDATING {
		t.Fatalf("a status for another version was recorded: %v", s.GetUpdateStatus())
	}
	record(1, api.UpdateStatus_COMPLETED)
	if s, _ := f.Service("s1"); s.GetUpdateStatus().GetState() != api.UpdateStatus_COMPLETED || s.Version != 1 {
		t.Fatalf("after the update completed: version %d, %v", s.Version, s.GetUpdateStatus())
	}
	last := events[len(events)-1]
	if last.Type != "service" || last.Attributes["updatestate.old"] != "updating" || last.Attributes["updatestate.new"] != "completed" || last.UnixNano != 2 {
		t.Errorf("the completion was told as %v", last)
	}
}

// A put made from a read taken before the orchestrator recorded progress
// (a scale during an update) keeps that progress; a put that starts a new
// update (another started version) replaces it.
func TestServicePutKeepsUpdateProgress(t *testing.T) {
	f := NewFSM()
	svc := &api.Service{Id: "s1", Version: 1, Spec: &api.ServiceSpec{Name: "web", Replicas: 2},
		UpdateStatus: &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedVersion: 1}}
	put := func(s *api.Service) {
		t.Helper()
		mustFSMApply(t, f, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: s}}})
	}
	put(svc)
	mustFSMApply(t, f, tasks(&api.TaskBatch{UpdateStatus: []*api.ServiceUpdateStatus{{ServiceId: "s1", Version: 1,
		Status: &api.UpdateStatus{State: api.UpdateStatus_PAUSED, StartedVersion: 1, Message: "update paused"}}}}))

	scaled := proto.CloneOf(svc) // read before the pause
	scaled.Version, scaled.Spec.Replicas = 2, 3
	put(scaled)
	if s, _ := f.Service("s1"); s.Spec.Replicas != 3 || s.GetUpdateStatus().GetState() != api.UpdateStatus_PAUSED {
		t.Fatalf("a scale from an old read: replicas %d, update %v; want 3 and still paused", s.Spec.Replicas, s.GetUpdateStatus())
	}

	resumed := proto.CloneOf(scaled)
	resumed.Version = 3
	resumed.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedVersion: 3}
	put(resumed)
	if s, _ := f.Service("s1"); s.GetUpdateStatus().GetState() != api.UpdateStatus_UPDATING || s.GetUpdateStatus().GetStartedVersion() != 3 {
		t.Fatalf("a put that starts an update left %v", s.GetUpdateStatus())
	}
}

// An automatic rollback, recorded by the orchestrator, puts the previous
// spec back as a new version; the rollback's tasks are made from it.
func TestTaskBatchRollbackSwapsTheSpec(t *testing.T) {
	f := NewFSM()
	spec := func(image string) *api.ServiceSpec {
		return &api.ServiceSpec{Name: "web", Container: &api.ContainerSpec{Image: image}}
	}
	mustFSMApply(t, f, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{
		Id: "s1", Version: 1, Spec: spec("nginx:bad"), PreviousSpec: spec("nginx:good"),
		UpdateStatus: &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedVersion: 1}}}}})
	rollback := tasks(&api.TaskBatch{UpdateStatus: []*api.ServiceUpdateStatus{{ServiceId: "s1", Version: 1,
		Status: &api.UpdateStatus{State: api.UpdateStatus_ROLLBACK_STARTED, StartedUnixNano: 9, StartedVersion: 1, Message: "update rolled back"}}}})
	mustFSMApply(t, f, rollback)
	s, _ := f.Service("s1")
	if s.Version != 2 || s.Spec.Container.Image != "nginx:good" || s.PreviousSpec.Container.Image != "nginx:bad" ||
		s.UpdateStatus.GetStartedVersion() != 2 || s.UpdateStatus.GetState() != api.UpdateStatus_ROLLBACK_STARTED {
		t.Fatalf("after the rollback was recorded: %v", s)
	}
	mustFSMApply(t, f, rollback) // planned from version 1 again: ignored
	if s, _ := f.Service("s1"); s.Version != 2 || s.Spec.Container.Image != "nginx:good" {
		t.Fatalf("a second rollback record swapped again: %v", s)
	}
}
