package orchestrator

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

func TestReconcile(t *testing.T) {
	S, R, F := api.TaskState_SHUTDOWN, api.TaskState_RUNNING, api.TaskState_FAILED
	tests := []struct {
		name     string
		replicas uint64
		tasks    []*api.Task
		down     []string
		limit    int
		want     outcome
	}{
		{
			name:     "scale up from 0",
			replicas: 3,
			want:     outcome{create: []uint64{1, 2, 3}},
		},
		{
			name:     "converged",
			replicas: 2,
			tasks:    running(2),
			want:     outcome{},
		},
		{
			name:     "scale up fills the lowest free slots",
			replicas: 4,
			tasks:    []*api.Task{task("a", 1, R), task("c", 3, R)},
			want:     outcome{create: []uint64{2, 4}},
		},
		{
			name:     "scale down 8 to 3 stops the highest slots first",
			replicas: 3,
			tasks:    running(8),
			want:     outcome{shutdown: []string{"t8", "t7", "t6", "t5", "t4"}},
		},
		{
			name:     "scale to 0",
			replicas: 0,
			tasks:    running(2),
			want:     outcome{shutdown: []string{"t2", "t1"}},
		},
		{
			name:     "removed slots: ended tasks are deleted, stopping ones wait",
			replicas: 1,
			tasks: []*api.Task{
				task("t1", 1, R),
				task("t2", 2, S, desired(S)),
				task("t3", 3, R, desired(S)),
				task("t4", 4, api.TaskState_PENDING, on(""), desired(S)),
				task("t5", 5, R, desired(S), on("gone")),
				task("t6", 6, F, created(-time.Minute)),
			},
			down: []string{"gone"},
			want: outcome{delete: []string{"t6", "t2", "t4", "t5"}},
		},
		{
			name:     "pending tasks are not duplicated",
			replicas: 3,
			tasks: []*api.Task{
				task("p1", 1, api.TaskState_PENDING, on("")),
				task("p2", 2, api.TaskState_ASSIGNED),
				task("p3", 3, api.TaskState_STARTING),
			},
			want: outcome{},
		},
		{
			name:     "task on a down node is replaced at once, the old one stopped",
			replicas: 2,
			tasks:    []*api.Task{task("t1", 1, R, on("n2")), task("t2", 2, R)},
			down:     []string{"n2"},
			want:     outcome{create: []uint64{1}, shutdown: []string{"t1"}},
		},
		{
			name:     "pending task without a node is not lost with a down node",
			replicas: 1,
			tasks:    []*api.Task{task("t1", 1, api.TaskState_PENDING, on(""))},
			down:     []string{""},
			want:     outcome{},
		},
		{
			name:     "replacement on a down node is not replaced twice",
			replicas: 1,
			tasks: []*api.Task{
				task("old", 1, R, on("n2"), desired(S)),
				task("new", 1, api.TaskState_PENDING, on(""), created(time.Second)),
			},
			down:  []string{"n2"},
			limit: 5,
			want:  outcome{},
		},
		{
			name:     "orphaned task still wanted is replaced at once",
			replicas: 1,
			tasks:    []*api.Task{task("t1", 1, api.TaskState_ORPHANED)},
			want:     outcome{create: []uint64{1}, shutdown: []string{"t1"}},
		},
		{
			name:     "slot scaled away and wanted again is refilled at once",
			replicas: 2,
			tasks:    []*api.Task{task("t1", 1, R), task("t2", 2, S, desired(S))},
			limit:    5,
			want:     outcome{create: []uint64{2}},
		},
		{
			name:     "slot scaled away, still stopping, wanted again",
			replicas: 1,
			tasks:    []*api.Task{task("t1", 1, R, desired(S))},
			limit:    5,
			want:     outcome{create: []uint64{1}},
		},
		{
			name:     "duplicate live tasks: the one furthest along stays",
			replicas: 1,
			tasks: []*api.Task{
				task("a", 1, api.TaskState_PENDING, on(""), created(2*time.Second)),
				task("b", 1, R),
				task("c", 1, R, created(time.Second)),
			},
			want: outcome{shutdown: []string{"b", "a"}},
		},
		{
			name:     "tasks of other services are ignored",
			replicas: 1,
			tasks: []*api.Task{
				task("t1", 1, R),
				func() *api.Task { o := task("x", 2, R); o.ServiceId = "other"; return o }(),
			},
			want: outcome{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := View{
				Service:      service(tt.replicas, policy(api.RestartPolicy_ANY, 5*time.Second, 0, 0)),
				Tasks:        tt.tasks,
				NodeDown:     downNodes(tt.down...),
				Now:          t0.Add(time.Minute),
				HistoryLimit: tt.limit,
			}
			checkOutcome(t, Reconcile(v, ids()), tt.want)
		})
	}
}

func TestReconcileNewTask(t *testing.T) {
	svc := service(1, nil)
	svc.Version = 7
	now := t0.Add(time.Hour)
	p := Reconcile(View{Service: svc, Now: now}, ids())
	if len(p.Create) != 1 {
		t.Fatalf("created %d tasks, want 1", len(p.Create))
	}
	want := &api.Task{
		Id:              "new1",
		ServiceId:       svcID,
		ServiceName:     "web",
		Slot:            1,
		Spec:            svc.Spec.Container,
		ServiceVersion:  7,
		DesiredState:    api.TaskState_RUNNING,
		Status:          &api.TaskStatus{State: api.TaskState_PENDING, UnixNano: now.UnixNano(), Message: "created"},
		CreatedUnixNano: now.UnixNano(),
	}
	if got := p.Create[0]; !proto.Equal(got, want) {
		t.Errorf("new task\n got %v\nwant %v", got, want)
	}
	if p.Create[0].Spec == svc.Spec.Container {
		t.Error("new task shares the service's container spec; want a copy")
	}
	b := p.Batch()
	if b == nil || len(b.Put) != 1 || len(b.Delete) != 0 || len(b.Desired) != 0 {
		t.Errorf("Batch() = %v, want the one new task in Put", b)
	}
	if Reconcile(View{Service: service(1, nil), Tasks: running(1), Now: now}, ids()).Batch() != nil {
		t.Error("Batch() of an empty plan is not nil")
	}
}

// TestScaleDownConverges plays 8 replicas scaled to 3 through the loop: the
// agents stop the tasks asked to stop, and the orchestrator deletes them.
func TestScaleDownConverges(t *testing.T) {
	tasks := running(8)
	v := View{Service: service(3, nil), Now: t0, HistoryLimit: DefaultHistoryLimit}
	v.Tasks = tasks
	tasks = apply(tasks, Reconcile(v, ids()))
	if got, want := liveSlots(tasks), []uint64{1, 2, 3}; !slices.Equal(got, want) {
		t.Fatalf("live slots after scaling to 3: %v, want %v", got, want)
	}
	for _, tk := range tasks {
		if tk.DesiredState == api.TaskState_SHUTDOWN {
			tk.Status.State = api.TaskState_SHUTDOWN
		}
	}
	v.Tasks = tasks
	tasks = apply(tasks, Reconcile(v, ids()))
	if len(tasks) != 3 {
		t.Errorf("%d tasks left after the stopped ones ended, want 3", len(tasks))
	}
	v.Tasks = tasks
	if p := Reconcile(v, ids()); !p.Empty() {
		t.Errorf("converged service gets plan %+v", outcomeOf(p))
	}
}

func TestHistory(t *testing.T) {
	S, R, F := api.TaskState_SHUTDOWN, api.TaskState_RUNNING, api.TaskState_FAILED
	// A slot with a running task and seven old ones, h1 oldest.
	slot := func() []*api.Task {
		ts := []*api.Task{task("run", 1, R, created(time.Hour))}
		for i, id := range []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7"} {
			ts = append(ts, task(id, 1, F, created(time.Duration(i)*time.Minute), desired(S)))
		}
		return ts
	}
	tests := []struct {
		name   string
		tasks  []*api.Task
		limit  int
		policy *api.RestartPolicy
		down   []string
		now    time.Duration
		want   outcome
	}{
		{
			name:  "trimmed to the limit, oldest first",
			tasks: slot(),
			limit: 5,
			want:  outcome{delete: []string{"h1", "h2"}},
		},
		{
			name:  "limit 0 keeps none",
			tasks: slot(),
			limit: 0,
			want:  outcome{delete: []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7"}},
		},
		{
			name:  "negative limit keeps all",
			tasks: slot(),
			limit: -1,
			want:  outcome{},
		},
		{
			name: "a task still stopping on a node that is up is kept",
			tasks: []*api.Task{
				task("run", 1, R, created(time.Hour)),
				task("old", 1, R, desired(S)),
				task("gone", 1, R, desired(S), on("n2"), created(time.Minute)),
			},
			down:  []string{"n2"},
			limit: 0,
			want:  outcome{delete: []string{"gone"}},
		},
		{
			name:   "failures that count restart attempts outlive the limit",
			tasks:  slot(),
			limit:  1,
			policy: policy(api.RestartPolicy_ANY, 0, 4, 0),
			want:   outcome{delete: []string{"h1", "h2", "h3"}}, // h7 to h4 kept
		},
		{
			name: "a restart makes the ended task history in the same plan",
			tasks: []*api.Task{
				task("h1", 1, F, desired(S)),
				task("h2", 1, F, desired(S), created(time.Minute)),
				task("last", 1, F, created(2*time.Minute)),
			},
			limit: 1,
			now:   time.Hour,
			want:  outcome{create: []uint64{1}, shutdown: []string{"last"}, delete: []string{"h1", "h2"}},
		},
		{
			name: "a task waiting for its restart is not history",
			tasks: []*api.Task{
				task("h1", 1, F, desired(S)),
				task("last", 1, F, created(time.Hour)),
			},
			limit: 0,
			now:   time.Hour,
			want:  outcome{delete: []string{"h1"}, wake: t0.Add(time.Hour + 5*time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.policy
			if pol == nil {
				pol = DefaultRestartPolicy()
			}
			v := View{
				Service:      service(1, pol),
				Tasks:        tt.tasks,
				NodeDown:     downNodes(tt.down...),
				Now:          t0.Add(tt.now),
				HistoryLimit: tt.limit,
			}
			checkOutcome(t, Reconcile(v, ids()), tt.want)
		})
	}
}

func TestRemove(t *testing.T) {
	S, R := api.TaskState_SHUTDOWN, api.TaskState_RUNNING
	tasks := []*api.Task{
		task("run1", 1, R),
		task("run2", 2, R),
		task("pending", 3, api.TaskState_PENDING, on("")),
		task("stopping", 1, R, desired(S), created(-time.Minute)),
		task("ended", 2, api.TaskState_COMPLETE, created(-2*time.Minute)),
		task("lost", 3, R, desired(S), on("n2"), created(-3*time.Minute)),
		task("unplaced", 3, api.TaskState_PENDING, desired(S), on(""), created(-4*time.Minute)),
	}
	want := outcome{
		shutdown: []string{"pending", "run2", "run1"},
		delete:   []string{"unplaced", "lost", "ended"},
	}
	v := View{Service: service(3, nil), Tasks: tasks, NodeDown: downNodes("n2"), Now: t0}
	checkOutcome(t, Remove(v), want)

	v.Service = nil // the service itself is already gone
	checkOutcome(t, Remove(v), want)
}

// TestDeterministic: the plan depends on the view, not on the order of its
// tasks.
func TestDeterministic(t *testing.T) {
	S, R, F := api.TaskState_SHUTDOWN, api.TaskState_RUNNING, api.TaskState_FAILED
	tasks := []*api.Task{
		task("a", 1, R),
		task("b", 2, F, ended(10*time.Second)),
		task("c", 3, R, on("n2")),
		task("d", 5, R),
		task("e", 6, api.TaskState_PENDING, on("")),
		task("f", 2, F, desired(S), created(-time.Minute)),
		task("g", 2, F, desired(S), created(-2*time.Minute)),
		task("h", 7, S, desired(S)),
		task("i", 1, api.TaskState_ASSIGNED, created(time.Second)),
	}
	v := View{
		Service:      service(4, policy(api.RestartPolicy_ANY, 5*time.Second, 0, 0)),
		NodeDown:     downNodes("n2"),
		Now:          t0.Add(time.Second),
		HistoryLimit: 1,
	}
	v.Tasks = tasks
	first := Reconcile(v, ids())
	if first.Empty() {
		t.Fatal("fixture gives an empty plan; it should exercise every rule")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := slices.Clone(tasks)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		v.Tasks = shuffled
		p := Reconcile(v, ids())
		if !proto.Equal(p.Batch(), first.Batch()) || !p.Wake.Equal(first.Wake) {
			t.Fatalf("tasks in order %v give\n%+v\nwant\n%+v", taskIDs(shuffled), outcomeOf(p), outcomeOf(first))
		}
	}
}

func taskIDs(ts []*api.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Id)
	}
	return out
}
