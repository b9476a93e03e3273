package orchestrator

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// TestRestartPolicy: one slot whose newest task ended while wanted running.
func TestRestartPolicy(t *testing.T) {
	S, R, F := api.TaskState_SHUTDOWN, api.TaskState_RUNNING, api.TaskState_FAILED
	C, Rej := api.TaskState_COMPLETE, api.TaskState_REJECTED
	ANY, ONF, NONE := api.RestartPolicy_ANY, api.RestartPolicy_ON_FAILURE, api.RestartPolicy_NONE
	sec := time.Second
	restarted := outcome{create: []uint64{1}, shutdown: []string{"last"}}
	tests := []struct {
		name   string
		policy *api.RestartPolicy
		tasks  []*api.Task
		down   []string
		now    time.Duration
		want   outcome
	}{
		// Delay.
		{"failed: waits for the delay", policy(ANY, 5*sec, 0, 0),
			[]*api.Task{task("last", 1, F)}, nil, 2 * sec, outcome{wake: t0.Add(5 * sec)}},
		{"failed: restarted once the delay has passed", policy(ANY, 5*sec, 0, 0),
			[]*api.Task{task("last", 1, F)}, nil, 5 * sec, restarted},
		{"delay measured from the end, not the creation", policy(ANY, 5*sec, 0, 0),
			[]*api.Task{task("last", 1, F, created(-time.Hour), ended(3*sec))}, nil, 5 * sec, outcome{wake: t0.Add(8 * sec)}},
		{"no end time: measured from the creation", policy(ANY, 5*sec, 0, 0),
			[]*api.Task{task("last", 1, F, func(t *api.Task) { t.Status.UnixNano = 0 })}, nil, 0, outcome{wake: t0.Add(5 * sec)}},
		{"delay 0 restarts at once", policy(ANY, 0, 0, 0),
			[]*api.Task{task("last", 1, F)}, nil, 0, restarted},
		{"no policy: Swarm's 5 s", nil,
			[]*api.Task{task("last", 1, F)}, nil, sec, outcome{wake: t0.Add(5 * sec)}},

		// Conditions and exit codes.
		{"any: complete, exit 0", policy(ANY, 0, 0, 0), []*api.Task{task("last", 1, C)}, nil, 0, restarted},
		{"any: failed, exit 1", policy(ANY, 0, 0, 0), []*api.Task{task("last", 1, F)}, nil, 0, restarted},
		{"any: shut down without being asked", policy(ANY, 0, 0, 0), []*api.Task{task("last", 1, S)}, nil, 0, restarted},
		{"on-failure: complete, exit 0", policy(ONF, 0, 0, 0), []*api.Task{task("last", 1, C)}, nil, 0, outcome{}},
		{"on-failure: complete, exit 3", policy(ONF, 0, 0, 0), []*api.Task{task("last", 1, C, exit(3))}, nil, 0, restarted},
		{"on-failure: failed, exit 1", policy(ONF, 0, 0, 0), []*api.Task{task("last", 1, F)}, nil, 0, restarted},
		{"on-failure: failed, exit 0", policy(ONF, 0, 0, 0), []*api.Task{task("last", 1, F, exit(0))}, nil, 0, restarted},
		{"on-failure: rejected", policy(ONF, 0, 0, 0), []*api.Task{task("last", 1, Rej)}, nil, 0, restarted},
		{"none: failed, exit 1", policy(NONE, 0, 0, 0), []*api.Task{task("last", 1, F)}, nil, 0, outcome{}},
		{"none: complete, exit 0", policy(NONE, 0, 0, 0), []*api.Task{task("last", 1, C)}, nil, 0, outcome{}},

		// Max attempts.
		{"max 2: one restart made, one more allowed", policy(ANY, 0, 2, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("last", 1, F, created(time.Minute)),
		}, nil, time.Hour, restarted},
		{"max 2: two restarts made, given up", policy(ANY, 0, 2, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("f2", 1, F, desired(S), created(time.Minute)),
			task("last", 1, F, created(2*time.Minute)),
		}, nil, time.Hour, outcome{}},
		{"given up stays given up", policy(ANY, 0, 2, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("f2", 1, C, desired(S), created(time.Minute)),
			task("last", 1, Rej, created(2*time.Minute)),
		}, nil, 1000 * time.Hour, outcome{}},
		{"max 2: replacements for down nodes and scaling are not attempts", policy(ANY, 0, 2, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("lost", 1, S, desired(S), created(time.Minute)),
			task("orphan", 1, api.TaskState_ORPHANED, desired(S), created(2*time.Minute)),
			task("last", 1, F, created(3*time.Minute)),
		}, nil, time.Hour, restarted},
		{"max 1 used up: a task on a down node is still replaced", policy(ANY, 0, 1, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("live", 1, R, on("n2"), created(time.Minute)),
		}, []string{"n2"}, time.Hour, outcome{create: []uint64{1}, shutdown: []string{"live"}}},
		{"max 2: a new service version starts afresh", policy(ANY, 0, 2, 0), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("f2", 1, F, desired(S), created(time.Minute)),
			task("last", 1, F, created(2*time.Minute), version(2)),
		}, nil, time.Hour, restarted},

		// Max attempts within a window.
		{"window: earlier failures outside it do not count", policy(ANY, 0, 2, time.Minute), []*api.Task{
			task("f1", 1, F, desired(S)),
			task("f2", 1, F, desired(S), created(10*time.Minute)),
			task("last", 1, F, created(20*time.Minute)),
		}, nil, time.Hour, restarted},
		{"window: two failures inside it, given up", policy(ANY, 0, 2, time.Minute), []*api.Task{
			task("f1", 1, F, desired(S), created(19*time.Minute+30*sec)),
			task("f2", 1, F, desired(S), created(19*time.Minute+45*sec)),
			task("last", 1, F, created(20*time.Minute)),
		}, nil, time.Hour, outcome{}},
		{"window: a failure exactly one window before is outside", policy(ANY, 0, 2, time.Minute), []*api.Task{
			task("f1", 1, F, desired(S), created(19*time.Minute)),
			task("f2", 1, F, desired(S), created(19*time.Minute+45*sec)),
			task("last", 1, F, created(20*time.Minute)),
		}, nil, time.Hour, restarted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := View{
				Service:      service(1, tt.policy),
				Tasks:        tt.tasks,
				NodeDown:     downNodes(tt.down...),
				Now:          t0.Add(tt.now),
				HistoryLimit: -1,
			}
			checkOutcome(t, Reconcile(v, ids()), tt.want)
		})
	}
}

func TestWakeIsTheEarliestRestart(t *testing.T) {
	F := api.TaskState_FAILED
	v := View{
		Service: service(3, policy(api.RestartPolicy_ANY, 10*time.Second, 0, 0)),
		Tasks: []*api.Task{
			task("a", 1, F, ended(4*time.Second)),
			task("b", 2, F, ended(2*time.Second)),
			task("c", 3, F, ended(3*time.Second)),
		},
		Now: t0.Add(5 * time.Second),
	}
	checkOutcome(t, Reconcile(v, ids()), outcome{wake: t0.Add(12 * time.Second)})
}

// TestRestartFlow plays a failing task through the loop: the orchestrator
// sets Wake, is called again at Wake and restarts the task; the new task
// fails too and, with max attempts 1, the slot gives up.
func TestRestartFlow(t *testing.T) {
	v := View{
		Service:      service(1, policy(api.RestartPolicy_ON_FAILURE, 5*time.Second, 1, 0)),
		Tasks:        []*api.Task{task("first", 1, api.TaskState_FAILED, ended(time.Second), exit(137))},
		Now:          t0.Add(2 * time.Second),
		HistoryLimit: DefaultHistoryLimit,
	}
	p := Reconcile(v, ids())
	if !p.Empty() || !p.Wake.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("before the delay: plan %+v, want only a wake at t0+6s", outcomeOf(p))
	}

	v.Now = p.Wake
	p = Reconcile(v, ids())
	checkOutcome(t, p, outcome{create: []uint64{1}, shutdown: []string{"first"}})
	v.Tasks = apply(v.Tasks, p)

	replacement := v.Tasks[len(v.Tasks)-1]
	replacement.NodeId = "n1"
	replacement.Status = &api.TaskStatus{State: api.TaskState_FAILED, ExitCode: 1, UnixNano: t0.Add(time.Minute).UnixNano()}
	v.Now = t0.Add(time.Hour)
	if p := Reconcile(v, ids()); !p.Empty() || !p.Wake.IsZero() {
		t.Errorf("after max attempts: plan %+v, want nothing", outcomeOf(p))
	}
}
