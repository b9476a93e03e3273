package orchestrator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// updating is service(replicas) at version 2 in a rolling update that
// began with that version at t0, with cfg (nil: the default). The tasks of
// the fixtures are at version 1 unless made by a plan.
func updating(replicas uint64, cfg *api.UpdateConfig) *api.Service {
	s := service(replicas, nil)
	s.Version = 2
	s.Spec.Update = cfg
	s.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedUnixNano: t0.UnixNano(), StartedVersion: 2, Message: "update in progress"}
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

// setState moves the tasks with the given IDs to state at the given time,
// as their node would report.
func setState(tasks []*api.Task, state api.TaskState, at time.Time, ids ...string) {
	for _, t := range tasks {
		if slices.Contains(ids, t.Id) {
			t.Status = &api.TaskStatus{State: state, UnixNano: at.UnixNano()}
		}
	}
}

func createdIDs(p Plan) []string {
	var ids []string
	for _, t := range p.Create {
		ids = append(ids, t.Id)
	}
	return ids
}

// A rolling update walks the slots in order, Parallelism at a time: it
// stops the old task first and makes its replacement once the old one has
// ended, waits for the replacement to run and then for the delay, and
// completes once the last replacement has run for the monitor period.
func TestRollingUpdateStepByStep(t *testing.T) {
	svc := updating(4, &api.UpdateConfig{Parallelism: 2, DelayNs: int64(10 * time.Second), MonitorNs: int64(5 * time.Second)})
	tasks := oldRunning(4)
	newID := ids()
	at := func(d time.Duration) View {
		return View{Service: svc, Tasks: tasks, Now: t0.Add(d), HistoryLimit: 5}
	}
	step := func(d time.Duration, want outcome) Plan {
		t.Helper()
		p := Reconcile(at(d), newID)
		checkOutcome(t, p, want)
		if p.UpdateStatus != nil && d < 20*time.Second {
			t.Errorf("update status changed mid-update at t0+%v: %v", d, p.UpdateStatus)
		}
		tasks = apply(tasks, p)
		return p
	}

	step(time.Second, outcome{shutdown: []string{"t1", "t2"}})
	step(1500*time.Millisecond, outcome{}) // the old ones still stop
	setState(tasks, api.TaskState_SHUTDOWN, t0.Add(2*time.Second), "t1", "t2")
	p := step(2*time.Second, outcome{create: []uint64{1, 2}})
	for _, c := range p.Create {
		if Outdated(svc, c) || c.ServiceVersion != 2 {
			t.Errorf("replacement %s has the old spec or version: %v, version %d", c.Id, c.Spec, c.ServiceVersion)
		}
	}
	step(2500*time.Millisecond, outcome{}) // still starting
	setState(tasks, api.TaskState_RUNNING, t0.Add(3*time.Second), createdIDs(p)...)

	// Running, but within the monitor period, then the delay.
	step(4*time.Second, outcome{wake: t0.Add(8 * time.Second)})
	step(8*time.Second, outcome{wake: t0.Add(13 * time.Second)})

	step(13*time.Second, outcome{shutdown: []string{"t3", "t4"}})
	setState(tasks, api.TaskState_SHUTDOWN, t0.Add(14*time.Second), "t3", "t4")
	p = step(14*time.Second, outcome{create: []uint64{3, 4}})
	setState(tasks, api.TaskState_RUNNING, t0.Add(15*time.Second), createdIDs(p)...)

	// The last ones run: the update completes after the monitor period.
	step(16*time.Second, outcome{wake: t0.Add(20 * time.Second)})
	p = Reconcile(at(20*time.Second), newID)
	if p.UpdateStatus.GetState() != api.UpdateStatus_COMPLETED || p.UpdateStatus.CompletedUnixNano != t0.Add(20*time.Second).UnixNano() {
		t.Fatalf("update status after every slot was replaced: %v", p.UpdateStatus)
	}
	checkOutcome(t, p, outcome{wake: t0.Add(25 * time.Second)})
	if got := liveSlots(tasks); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("live slots after the update: %v", got)
	}
}

func TestRollingUpdate(t *testing.T) {
	F := api.TaskState_FAILED
	current := func(t *api.Task) { t.Spec = proto.CloneOf(service(1, nil).Spec.Container) }
	fresh := func(id string, slot uint64, st api.TaskState) *api.Task {
		return task(id, slot, st, created(time.Second), current, version(2))
	}
	tests := []struct {
		name   string
		svc    *api.Service
		tasks  []*api.Task
		down   []string
		want   outcome
		status api.UpdateStatus_State // of the plan; NONE: unchanged
		msg    string
	}{
		{
			name:  "default config: one at a time",
			svc:   updating(3, nil),
			tasks: oldRunning(3),
			want:  outcome{shutdown: []string{"t1"}},
		},
		{
			name:  "parallelism 0: all at once",
			svc:   updating(3, &api.UpdateConfig{}),
			tasks: oldRunning(3),
			want:  outcome{shutdown: []string{"t1", "t2", "t3"}},
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
			want:   outcome{shutdown: []string{"t2"}, wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_NONE,
		},
		{
			name:  "a replacement stamped by a clock that is behind still counts as the update's own",
			svc:   updating(3, nil),
			tasks: append(oldRunning(3)[1:], task("n1", 1, api.TaskState_PREPARING, created(-time.Minute), current, version(2))),
			want:  outcome{},
		},
		{
			name: "a new update mid-update replaces the first one's tasks too",
			svc: func() *api.Service {
				s := updating(2, &api.UpdateConfig{})
				s.Version, s.UpdateStatus.StartedVersion = 3, 3
				return s
			}(),
			tasks: []*api.Task{
				task("a", 1, api.TaskState_RUNNING, version(2), func(t *api.Task) { t.Spec = &api.ContainerSpec{Image: "nginx:first-update"} }),
				task("b", 2, api.TaskState_RUNNING, old),
			},
			want: outcome{shutdown: []string{"a", "b"}},
		},
		{
			name:  "an old task that stopped is replaced, and its slot is busy meanwhile",
			svc:   updating(3, nil),
			tasks: append(oldRunning(3)[1:], task("t1", 1, api.TaskState_SHUTDOWN, old, desired(api.TaskState_SHUTDOWN))),
			want:  outcome{create: []uint64{1}},
		},
		{
			name:  "an old task still stopping holds its replacement back",
			svc:   updating(3, nil),
			tasks: append(oldRunning(3)[1:], task("t1", 1, api.TaskState_RUNNING, old, desired(api.TaskState_SHUTDOWN))),
			want:  outcome{},
		},
		{
			name:  "unless its node is down",
			svc:   updating(3, nil),
			tasks: append(oldRunning(3)[1:], task("t1", 1, api.TaskState_RUNNING, old, desired(api.TaskState_SHUTDOWN), on("gone"))),
			down:  []string{"gone"},
			want:  outcome{create: []uint64{1}},
		},
		{
			name: "failure action rollback: the managers put the previous spec back",
			svc: func() *api.Service {
				s := updating(3, &api.UpdateConfig{Parallelism: 1, FailureAction: api.UpdateConfig_ROLLBACK})
				s.PreviousSpec = &api.ServiceSpec{Name: "web", Container: &api.ContainerSpec{Image: "nginx:old"}}
				return s
			}(),
			tasks:  append(oldRunning(3)[1:], fresh("n1", 1, F)),
			want:   outcome{wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_ROLLBACK_STARTED,
			msg:    "update rolled back due to failure or early termination of task n1",
		},
		{
			name:   "failure action rollback without a previous spec pauses",
			svc:    updating(3, &api.UpdateConfig{Parallelism: 1, FailureAction: api.UpdateConfig_ROLLBACK}),
			tasks:  append(oldRunning(3)[1:], fresh("n1", 1, F)),
			want:   outcome{wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_PAUSED,
		},
		{
			name: "a rollback that fails pauses",
			svc: func() *api.Service {
				s := updating(3, &api.UpdateConfig{Parallelism: 1, FailureAction: api.UpdateConfig_ROLLBACK})
				s.UpdateStatus.State = api.UpdateStatus_ROLLBACK_STARTED
				return s
			}(),
			tasks:  append(oldRunning(3)[1:], fresh("n1", 1, F)),
			want:   outcome{wake: t0.Add(time.Second + DefaultRestartDelay)},
			status: api.UpdateStatus_ROLLBACK_PAUSED,
			msg:    "rollback paused due to failure or early termination of task n1",
		},
		{
			name: "a rollback completes as such",
			svc: func() *api.Service {
				s := updating(1, &api.UpdateConfig{Parallelism: 1})
				s.UpdateStatus.State = api.UpdateStatus_ROLLBACK_STARTED
				return s
			}(),
			tasks:  []*api.Task{task("n1", 1, api.TaskState_RUNNING, current, version(2), func(t *api.Task) { t.Status.UnixNano = t0.Add(-time.Minute).UnixNano() })},
			want:   outcome{},
			status: api.UpdateStatus_ROLLBACK_COMPLETED,
			msg:    "rollback completed",
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
			want:  outcome{shutdown: []string{"t1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Reconcile(View{Service: tt.svc, Tasks: tt.tasks, NodeDown: downNodes(tt.down...), Now: t0.Add(2 * time.Second), HistoryLimit: 5}, ids())
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
