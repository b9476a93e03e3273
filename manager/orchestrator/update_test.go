package orchestrator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// updating is service(replicas) in a rolling update begun at t0, with cfg
// (nil: the default).
func updating(replicas uint64, cfg *api.UpdateConfig) *api.Service {
	s := service(replicas, nil)
	s.Spec.Update = cfg
	s.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedUnixNano: t0.UnixNano(), Message: "update in progress"}
	return s
}

// old gives a task the container spec from before the update.
func old(t *api.Task) { t.Spec = &api.ContainerSpec{Image: "nginx:old"} }

// oldRunning is n tasks of the old spec running in slots 1..n, made before
// the update began.
func oldRunning(n int) []*api.Task {
	ts := running(n)
	for _, t := range ts {
		old(t)
		t.CreatedUnixNano = t0.Add(-time.Hour).UnixNano()
	}
	return ts
}

// runAll marks the tasks the plan created as RUNNING at the given time.
func runAll(p Plan, at time.Time) {
	for _, t := range p.Create {
		t.Status = &api.TaskStatus{State: api.TaskState_RUNNING, UnixNano: at.UnixNano()}
	}
}

// A rolling update walks the slots in order, Parallelism at a time, waits
// for the replacements to run and then for the delay, and completes once
// the last replacement has run for the monitor period.
func TestRollingUpdateStepByStep(t *testing.T) {
	svc := updating(4, &api.UpdateConfig{Parallelism: 2, DelayNs: int64(10 * time.Second), MonitorNs: int64(5 * time.Second)})
	tasks := oldRunning(4)
	newID := ids()
	at := func(d time.Duration) View {
		return View{Service: svc, Tasks: tasks, Now: t0.Add(d), HistoryLimit: 5}
	}

	p := Reconcile(at(time.Second), newID)
	checkOutcome(t, p, outcome{create: []uint64{1, 2}, shutdown: []string{"t1", "t2"}})
	for _, c := range p.Create {
		if Outdated(svc, c) {
			t.Errorf("replacement %s has the old spec: %v", c.Id, c.Spec)
		}
	}
	tasks = apply(tasks, p)

	// Still starting: nothing more moves.
	p = Reconcile(at(2*time.Second), newID)
	checkOutcome(t, p, outcome{})
	runAll(Plan{Create: tasks[4:]}, t0.Add(3*time.Second))

	// Running, but within the delay: wait for its end.
	p = Reconcile(at(4*time.Second), newID)
	checkOutcome(t, p, outcome{wake: t0.Add(8 * time.Second)})
	p = Reconcile(at(8*time.Second), newID)
	checkOutcome(t, p, outcome{wake: t0.Add(13 * time.Second)})

	p = Reconcile(at(13*time.Second), newID)
	checkOutcome(t, p, outcome{create: []uint64{3, 4}, shutdown: []string{"t3", "t4"}})
	if p.UpdateStatus != nil {
		t.Errorf("update status changed mid-update: %v", p.UpdateStatus)
	}
	tasks = apply(tasks, p)
	runAll(p, t0.Add(15*time.Second))

	// The last ones run: the update completes after the monitor period.
	p = Reconcile(at(16*time.Second), newID)
	if p.UpdateStatus != nil {
		t.Errorf("completed before the monitor period ended: %v", p.UpdateStatus)
	}
	p = Reconcile(at(25*time.Second), newID)
	if p.UpdateStatus.GetState() != api.UpdateStatus_COMPLETED || p.UpdateStatus.CompletedUnixNano != t0.Add(25*time.Second).UnixNano() {
		t.Fatalf("update status after every slot was replaced: %v", p.UpdateStatus)
	}
	checkOutcome(t, p, outcome{})
	if got := liveSlots(tasks); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("live slots after the update: %v", got)
	}
}

func TestRollingUpdate(t *testing.T) {
	F := api.TaskState_FAILED
	current := func(t *api.Task) { t.Spec = proto.CloneOf(service(1, nil).Spec.Container) }
	fresh := func(id string, slot uint64, st api.TaskState) *api.Task {
		return task(id, slot, st, created(time.Second), current)
	}
	tests := []struct {
		name   string
		svc    *api.Service
		tasks  []*api.Task
		want   outcome
		status api.UpdateStatus_State // of the plan; NONE: unchanged
		msg    string
	}{
		{
			name:  "default config: one at a time",
			svc:   updating(3, nil),
			tasks: oldRunning(3),
			want:  outcome{create: []uint64{1}, shutdown: []string{"t1"}},
		},
		{
			name:  "parallelism 0: all at once",
			svc:   updating(3, &api.UpdateConfig{}),
			tasks: oldRunning(3),
			want:  outcome{create: []uint64{1, 2, 3}, shutdown: []string{"t1", "t2", "t3"}},
		},
		{
			name:  "a replacement still starting holds the next one back",
			svc:   updating(3, nil),
			tasks: append(oldRunning(3)[1:], fresh("n1", 1, api.TaskState_PREPARING)),
			want:  outcome{},
		},
		{
			name:   "a replacement that failed pauses the update",
			svc:    updating(3, nil),
			tasks:  append(oldRunning(3)[1:], fresh("n1", 1, F)),
			want:   outcome{wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_PAUSED,
			msg:    "update paused due to failure or early termination of task n1",
		},
		{
			name:   "failure action continue goes on",
			svc:    updating(3, &api.UpdateConfig{Parallelism: 1, FailureAction: api.UpdateConfig_CONTINUE}),
			tasks:  append(oldRunning(3)[1:], fresh("n1", 1, F)),
			want:   outcome{create: []uint64{2}, shutdown: []string{"t2"}, wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_NONE,
		},
		{
			name: "a paused update replaces nothing",
			svc: func() *api.Service {
				s := updating(3, nil)
				s.UpdateStatus.State = api.UpdateStatus_PAUSED
				return s
			}(),
			tasks: oldRunning(3),
			want:  outcome{},
		},
		{
			name:  "no update under way: an outdated task stays",
			svc:   service(2, nil),
			tasks: oldRunning(2),
			want:  outcome{},
		},
		{
			name:  "a task that failed before the update began does not pause it",
			svc:   updating(2, nil),
			tasks: append(oldRunning(2), task("gone", 1, F, created(-time.Minute), desired(api.TaskState_SHUTDOWN), current)),
			want:  outcome{create: []uint64{1}, shutdown: []string{"t1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Reconcile(View{Service: tt.svc, Tasks: tt.tasks, Now: t0.Add(2 * time.Second), HistoryLimit: 5}, ids())
			checkOutcome(t, p, tt.want)
			if got := p.UpdateStatus.GetState(); got != tt.status {
				t.Errorf("update status %v, want %v", got, tt.status)
			}
			if !strings.Contains(p.UpdateStatus.GetMessage(), tt.msg) {
				t.Errorf("update message %q, want %q", p.UpdateStatus.GetMessage(), tt.msg)
			}
		})
	}
}
