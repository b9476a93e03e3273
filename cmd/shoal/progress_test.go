package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// fastPolls makes the progress view poll every millisecond.
func fastPolls(t *testing.T) {
	t.Helper()
	saved := pollInterval
	pollInterval = time.Millisecond
	t.Cleanup(func() { pollInterval = saved })
}

// frame is one ListTasks answer: the tasks of the created service.
func frame(tasks ...*api.Task) []*api.Task { return tasks }

// newTask is a task of the service CreateService makes in the fake.
func newTask(f *fakeDaemon, id string, slot uint64, desired, state api.TaskState, created int, taskErr string) *api.Task {
	return &api.Task{
		Id: id, ServiceId: f.newServiceID, ServiceName: "web", Slot: slot, NodeId: idManager1,
		ServiceVersion: 1, DesiredState: desired, CreatedUnixNano: int64(created),
		Status: &api.TaskStatus{State: state, Err: taskErr},
	}
}

func TestServiceCreateProgress(t *testing.T) {
	fastPolls(t)
	f := newFakeDaemon()
	running := api.TaskState_RUNNING
	f.taskFrames = [][]*api.Task{
		frame(),
		frame(newTask(f, "t1", 1, running, api.TaskState_PENDING, 1, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_PREPARING, 1, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_PREPARING, 1, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_RUNNING, 1, "")),
	}
	out := mustShoal(t, f.serve(t), "service", "create", "--name", "web", "--timeout", "10s", "nginx")
	assertGolden(t, "service-create-progress", out)
}

func TestServiceProgressShowsFailuresAndTimesOut(t *testing.T) {
	fastPolls(t)
	f := newFakeDaemon()
	running, shutdown := api.TaskState_RUNNING, api.TaskState_SHUTDOWN
	f.taskFrames = [][]*api.Task{
		frame(newTask(f, "t1", 1, running, api.TaskState_RUNNING, 1, ""), newTask(f, "t2", 2, running, api.TaskState_PREPARING, 1, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_RUNNING, 1, ""),
			newTask(f, "t2", 2, shutdown, api.TaskState_REJECTED, 1, "No such image: nosuch:latest\n(pull access denied)")),
		frame(newTask(f, "t1", 1, running, api.TaskState_RUNNING, 1, ""),
			newTask(f, "t2", 2, shutdown, api.TaskState_REJECTED, 1, "No such image: nosuch:latest\n(pull access denied)"),
			newTask(f, "t3", 2, running, api.TaskState_PENDING, 2, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_RUNNING, 1, ""),
			newTask(f, "t2", 2, shutdown, api.TaskState_REJECTED, 1, "No such image: nosuch:latest\n(pull access denied)"),
			newTask(f, "t3", 2, running, api.TaskState_FAILED, 2, strings.Repeat("very long error ", 10))),
	}
	r := shoal(t, f.serve(t), "service", "create", "--name", "web", "--replicas", "2", "--timeout", "300ms", "nosuch")
	assertGolden(t, "service-create-progress-failed", r.String())
}

func TestServiceProgressInterrupted(t *testing.T) {
	fastPolls(t)
	f := newFakeDaemon()
	pending := newTask(f, "t1", 1, api.TaskState_RUNNING, api.TaskState_PENDING, 1, "no suitable node (1 node not available for new tasks)")
	f.taskFrames = [][]*api.Task{frame(pending)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onListTasks = func(n int) {
		if n == 3 {
			cancel() // ^C
		}
	}
	host := f.serve(t)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-H", host, "service", "create", "--name", "web", "nginx"}, &out, &errb)
	want := f.newServiceID + "\n" +
		"overall progress: 0 out of 1 tasks\n" +
		"1/1: no suitable node (1 node not available for new tasks)\n" +
		"Operation continuing in background.\n" +
		"Use `shoal service ps web` to check progress.\n"
	if code != 0 || out.String() != want || errb.String() != "" {
		t.Errorf("got exit %d, stdout:\n%s\nstderr:\n%s\nwant stdout:\n%s", code, out.String(), errb.String(), want)
	}
	if n := len(f.requests("RemoveService")); n != 0 {
		t.Errorf("^C must leave the service alone, got %d RemoveService calls", n)
	}
}

func TestServiceProgressVerify(t *testing.T) {
	fastPolls(t)
	f := newFakeDaemon()
	running := api.TaskState_RUNNING
	f.taskFrames = [][]*api.Task{
		frame(newTask(f, "t1", 1, running, running, 1, "")),
		frame(newTask(f, "t1", 1, running, api.TaskState_FAILED, 1, "task: non-zero exit (1)")),
		frame(newTask(f, "t1", 1, api.TaskState_SHUTDOWN, api.TaskState_FAILED, 1, "task: non-zero exit (1)"),
			newTask(f, "t2", 1, running, running, 2, "")),
	}
	out := mustShoal(t, f.serve(t), "service", "create", "--name", "web", "--verify", "50ms", "--timeout", "10s", "nginx")
	want := f.newServiceID + "\n" +
		"overall progress: 1 out of 1 tasks\n" +
		"1/1: running\n" +
		"verify: Waiting 1 seconds to verify that tasks are stable...\n" +
		"1/1: task: non-zero exit (1)\n" +
		"overall progress: 0 out of 1 tasks\n" +
		"verify: Detected task failure\n" +
		"1/1: running\n" +
		"overall progress: 1 out of 1 tasks\n" +
		"verify: Waiting 1 seconds to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestServiceScaleProgress(t *testing.T) {
	fastPolls(t)
	f := serviceFixture()
	f.newServiceID = idCache2
	running := api.TaskState_RUNNING
	// Scaling bumps the service's version; the task of slot 1 is older
	// but runs the same spec, so it counts.
	old := newTask(f, "c1", 1, running, running, 1, "")
	old.Spec = f.services[3].Spec.Container
	old.ServiceVersion = 0
	starting := newTask(f, "c2", 2, running, api.TaskState_STARTING, 2, "")
	started := newTask(f, "c2", 2, running, running, 2, "")
	starting.ServiceVersion, started.ServiceVersion = 2, 2
	f.taskFrames = [][]*api.Task{frame(old), frame(old, starting), frame(old, started)}
	out := mustShoal(t, f.serve(t), "service", "scale", "--timeout", "10s", "cache-2=2")
	want := "cache-2 scaled to 2\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"1/2: running\n" +
		"2/2: starting\n" +
		"2/2: running\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"verify: Service converged\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestServiceProgressQuiet(t *testing.T) {
	fastPolls(t)
	f := newFakeDaemon()
	f.taskFrames = [][]*api.Task{
		frame(newTask(f, "t1", 1, api.TaskState_RUNNING, api.TaskState_PENDING, 1, "")),
		frame(newTask(f, "t1", 1, api.TaskState_RUNNING, api.TaskState_RUNNING, 1, "")),
	}
	if out := mustShoal(t, f.serve(t), "service", "create", "-q", "--timeout", "10s", "nginx"); out != f.newServiceID+"\n" {
		t.Errorf("create -q printed %q, want the ID alone", out)
	}
	if n := len(f.requests("ListTasks")); n < 2 {
		t.Errorf("create -q must still wait, got %d ListTasks calls", n)
	}
}

func TestServiceProgressPicksTaskPerSlot(t *testing.T) {
	svc := &api.Service{Id: "s", Version: 3, Spec: &api.ServiceSpec{
		Replicas: 2, Container: &api.ContainerSpec{Image: "nginx:2"},
	}}
	mk := func(slot uint64, version uint64, image string, desired, state api.TaskState, created int64) *api.Task {
		return &api.Task{Slot: slot, ServiceVersion: version, Spec: &api.ContainerSpec{Image: image},
			DesiredState: desired, CreatedUnixNano: created, Status: &api.TaskStatus{State: state}}
	}
	running, shutdown := api.TaskState_RUNNING, api.TaskState_SHUTDOWN
	v := serviceProgress(svc, []*api.Task{
		mk(1, 2, "nginx:1", running, running, 9),                  // an older spec: not counted
		mk(1, 3, "nginx:2", running, api.TaskState_FAILED, 1),     // replaced by the newer one
		mk(1, 3, "nginx:2", running, api.TaskState_TASK_READY, 2), // the newest meant to run
		mk(2, 3, "nginx:2", shutdown, running, 3),                 // being stopped
		mk(2, 2, "nginx:2", running, running, 1),                  // made before a scale: same spec, counts
		mk(3, 3, "nginx:2", running, running, 1),                  // above the replicas
		mk(0, 3, "nginx:2", running, running, 1),                  // no slot
	})
	got := fmt.Sprintf("%d/%d %+v", v.running, v.replicas, v.slots)
	want := "1/2 [{id:1/2 text:ready step:7 failed:false} {id:2/2 text:running step:9 failed:false}]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	svc.Spec.Replicas = 21
	if v := serviceProgress(svc, nil); len(v.slots) != 0 || v.overall().text != "0 out of 21 tasks" {
		t.Errorf("above 20 replicas only the overall line shows, got %+v", v)
	}
	svc.Spec.Replicas = 0
	if v := serviceProgress(svc, nil); !v.converged() {
		t.Errorf("zero replicas: want converged at once")
	}
}

func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progressPrinter{w: &buf, tty: true, width: 120, printed: map[string]string{}}
	v := progressView{replicas: 2, slots: []progressLine{
		{id: "1/2", text: "preparing", step: 6},
		{id: "2/2"},
	}}
	p.show(v)
	p.show(v) // unchanged: nothing drawn
	v.running = 1
	v.slots[0] = progressLine{id: "1/2", text: "running", step: 9}
	v.slots[1] = progressLine{id: "2/2", text: "No such image: x", failed: true}
	v.verify = "Detected task failure"
	p.show(v)
	const clear = "\r\x1b[2K"
	want := clear + "overall progress: 0 out of 2 tasks\n" +
		clear + "1/2: preparing [=================================>                 ]\n" +
		clear + "2/2: \n" +
		"\x1b[J" +
		"\x1b[3A" +
		clear + "overall progress: 1 out of 2 tasks\n" +
		clear + "1/2: running   [==================================================>]\n" +
		clear + "2/2: No such image: x\n" +
		clear + "verify: Detected task failure\n" +
		"\x1b[J"
	if got := buf.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	// A terminal too narrow for the bar gets the state alone.
	narrow := &progressPrinter{tty: true, width: 60}
	if got := narrow.format(progressLine{id: "1/2", text: "running", step: 9}); got != "1/2: running" {
		t.Errorf("narrow terminal: got %q", got)
	}
}

func TestProgressBar(t *testing.T) {
	for step, want := range map[int]string{
		1: "[=====>" + strings.Repeat(" ", 45) + "]",
		3: "[================>" + strings.Repeat(" ", 34) + "]",
		9: "[" + strings.Repeat("=", 50) + ">]",
	} {
		if got := progressBar(step); got != want {
			t.Errorf("progressBar(%d) = %q, want %q", step, got, want)
		}
	}
}

// updateFrames sets up service web's rolling update to nginx:1.28 as the
// progress view will see it: its three old tasks, then the new ones
// running, and at the third poll the update status given.
func updateFrames(f *fakeDaemon, last api.UpdateStatus_State) {
	running := api.TaskState_RUNNING
	var old, fresh []*api.Task
	for slot := uint64(1); slot <= 3; slot++ {
		o := newTask(f, fmt.Sprintf("o%d", slot), slot, running, running, 1, "")
		o.ServiceId, o.Spec = idWeb, f.services[0].Spec.Container
		n := newTask(f, fmt.Sprintf("n%d", slot), slot, running, running, 2, "")
		n.ServiceId, n.ServiceVersion = idWeb, 5
		old, fresh = append(old, o), append(fresh, n)
	}
	f.taskFrames = [][]*api.Task{old, fresh}
	f.onListTasks = func(n int) {
		if n == 3 {
			f.services[0].UpdateStatus = &api.UpdateStatus{State: last, StartedVersion: 5, Message: "update " + last.Name()}
		}
	}
}

// An update's progress ends when the update completes, not when the new
// tasks first run: they are watched for the monitor period first.
func TestServiceUpdateProgress(t *testing.T) {
	fastPolls(t)
	f := serviceFixture()
	updateFrames(f, api.UpdateStatus_COMPLETED)
	out := mustShoal(t, f.serve(t), "service", "update", "--image", "nginx:1.28", "--timeout", "10s", "web")
	want := "web\n" +
		"overall progress: 0 out of 3 tasks\n" +
		"1/3: running\n2/3: running\n3/3: running\n" +
		"overall progress: 3 out of 3 tasks\n" +
		"verify: Waiting for the update to complete: each new task is watched for 5s\n" +
		"verify: Service converged\n"
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestServiceUpdatePausedExits1(t *testing.T) {
	fastPolls(t)
	f := serviceFixture()
	updateFrames(f, api.UpdateStatus_PAUSED)
	r := shoal(t, f.serve(t), "service", "update", "--image", "nginx:1.28", "--timeout", "10s", "web")
	if r.code != 1 || !strings.Contains(r.String(), "service web: update paused; see 'shoal service ps web', then run 'shoal service update web'") {
		t.Errorf("a paused update: exit %d\n%s", r.code, r.String())
	}
}
