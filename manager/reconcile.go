package manager

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/manager/orchestrator"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/raftstore"
	"github.com/shoal-dev/shoal/scheduler"
)

// recheck bounds how long the reconciler sleeps without a change: it is a
// safety net, not how the loop learns of work.
const recheck = 2 * time.Second

// reconcile runs on the leader. Each pass keeps every service's slots
// filled (orchestrator), places the pending tasks (scheduler), and writes
// both as one Raft entry, so a scale to N is one write, not N.
func (m *Manager) reconcile(ctx context.Context) {
	changes, cancel := m.store.FSM().Changes()
	defer cancel()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var done uint64 // orchestration generation of the last pass
	for {
		timedOut := false
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-timer.C:
			timedOut = true
		}
		// Task progress short of an end changes nothing a pass decides.
		gen := m.store.FSM().OrchestrationGeneration()
		if gen == done && !timedOut {
			continue
		}
		done = gen
		wake, err := m.reconcileOnce(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			m.log.Warn("reconciling services", "err", err)
		}
		next := recheck
		if !wake.IsZero() {
			next = min(next, max(time.Until(wake), 0))
		}
		timer.Reset(next)
	}
}

// reconcileOnce plans one pass from the FSM as it is and writes the plan.
// It returns when the next restart delay ends.
func (m *Manager) reconcileOnce(ctx context.Context, now time.Time) (time.Time, error) {
	f := m.store.FSM()
	cl := f.Cluster()
	if cl == nil {
		return time.Time{}, nil
	}
	nodes := f.Nodes()
	tasks := f.Tasks(raftstore.TaskFilter{})
	batch, wake := plan(cl, nodes, f.Services(), tasks, now)
	if batch == nil {
		return wake, nil
	}
	_, err := m.store.Apply(ctx, &api.Command{Op: &api.Command_Tasks{Tasks: batch}})
	return wake, err
}

// plan is the pure part of a pass: what to create, stop, delete and place.
func plan(cl *api.Cluster, nodes []*api.Node, services []*api.Service, tasks []*api.Task, now time.Time) (*api.TaskBatch, time.Time) {
	// Tasks on a node that is down, gone or drained are replaced at once.
	keeps := map[string]bool{}
	for _, n := range nodes {
		if n.State != api.NodeState_DOWN && n.Availability != api.NodeAvailability_DRAIN {
			keeps[n.Id] = true
		}
	}
	nodeDown := func(id string) bool { return !keeps[id] }
	history := int(cl.GetSettings().GetTaskHistoryLimit())

	byService := map[string][]*api.Task{}
	for _, t := range tasks {
		byService[t.ServiceId] = append(byService[t.ServiceId], t)
	}
	batch := &api.TaskBatch{}
	var wake time.Time
	add := func(p orchestrator.Plan) {
		batch.Put = append(batch.Put, p.Create...)
		batch.Desired = append(batch.Desired, p.Desired...)
		batch.Delete = append(batch.Delete, p.Delete...)
		if !p.Wake.IsZero() && (wake.IsZero() || p.Wake.Before(wake)) {
			wake = p.Wake
		}
	}
	known := map[string]bool{}
	for _, s := range services {
		known[s.Id] = true
		p := orchestrator.Reconcile(orchestrator.View{Service: s, Tasks: byService[s.Id], NodeDown: nodeDown, Now: now, HistoryLimit: history}, pki.NewID)
		add(p)
		if p.UpdateStatus != nil {
			batch.UpdateStatus = append(batch.UpdateStatus, &api.ServiceUpdateStatus{ServiceId: s.Id, Version: s.Version, Status: p.UpdateStatus})
		}
	}
	for id, ts := range byService {
		if !known[id] {
			add(orchestrator.Remove(orchestrator.View{Tasks: ts, NodeDown: nodeDown, Now: now, HistoryLimit: history}))
		}
	}

	// Place what is pending: tasks made just now and older ones that did
	// not fit before, unless this pass stops them.
	stopping := map[string]bool{}
	for _, d := range batch.Desired {
		stopping[d.TaskId] = true
	}
	created := map[string]*api.Task{}
	var pending []*api.Task
	for _, t := range batch.Put {
		created[t.Id] = t
		pending = append(pending, t)
	}
	for _, t := range tasks {
		if t.NodeId == "" && t.DesiredState == api.TaskState_RUNNING && t.GetStatus().GetState() <= api.TaskState_PENDING && !stopping[t.Id] {
			pending = append(pending, t)
		}
	}
	if len(pending) > 0 {
		placed, unplaced := scheduler.Schedule(scheduler.NodeInfos(nodes, tasks), pending)
		byID := map[string]*api.Task{}
		for _, t := range pending {
			byID[t.Id] = t
		}
		for _, p := range placed {
			t := created[p.TaskID]
			if t == nil {
				t = proto.CloneOf(byID[p.TaskID])
				batch.Put = append(batch.Put, t)
			}
			t.NodeId = p.NodeID
			t.Status = &api.TaskStatus{State: api.TaskState_ASSIGNED, UnixNano: now.UnixNano(), Message: "scheduler assigned task to node"}
		}
		for _, u := range unplaced {
			t := byID[u.TaskID]
			if t.GetStatus().GetErr() == u.Reason && created[u.TaskID] == nil {
				continue // already says so
			}
			if created[u.TaskID] == nil {
				t = proto.CloneOf(t)
				batch.Put = append(batch.Put, t)
			}
			t.Status = &api.TaskStatus{State: api.TaskState_PENDING, UnixNano: t.GetStatus().GetUnixNano(), Message: "pending task scheduling", Err: u.Reason}
		}
	}
	if len(batch.Put)+len(batch.Delete)+len(batch.Desired)+len(batch.UpdateStatus) == 0 {
		return nil, wake
	}
	return batch, wake
}
