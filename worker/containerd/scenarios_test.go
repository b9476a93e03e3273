package containerd

// The scenarios that TestExecutorOnNode plays on a test host.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
)

func nginxServesAndGoesAwayCleanly(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	task := newTask("nginx-task-000000000000001", "web", 1, cc.Nginx)

	start := time.Now()
	if err := e.Prepare(ctx, task, nodeSubnet); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Logf("TIMING pull+prepare of nginx: %s", since(start))
	t.Cleanup(func() { e.Remove(context.Background(), task.Id) })

	start = time.Now()
	started, err := e.Start(ctx, task)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("TIMING start (task create, CNI ADD, task start): %s", since(start))
	if started.ContainerID != task.Id {
		t.Errorf("container ID %q, want the task ID %q", started.ContainerID, task.Id)
	}
	requireInSubnet(t, started.Address)
	requireNetworkOf(t, e, task.Id, started.Address)

	start = time.Now()
	body := httpGet(t, "http://"+started.Address+"/")
	t.Logf("TIMING first HTTP answer after Start returned: %s", since(start))
	if body != imagetest.NginxIndex {
		t.Errorf("GET / answered %q, want %q", body, imagetest.NginxIndex)
	}
	// nginx logs its access log to stdout, which goes to the log file.
	clustertest.WaitFor(t, 10*time.Second, "the access log line in the task's log file", func() error {
		b, err := os.ReadFile(e.LogPath(task.Id))
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), `"GET / HTTP/1.1" 200`) {
			return fmt.Errorf("log file holds %q", b)
		}
		return nil
	})
	if again, err := e.Start(ctx, task); err != nil || again.Address != started.Address {
		t.Errorf("a second Start of a running task gave %+v, %v; want the same address and no error", again, err)
	}

	exited := make(chan waitResult, 1)
	go func() {
		code, err := e.Wait(ctx, task.Id)
		exited <- waitResult{code, err}
	}()
	start = time.Now()
	if err := e.Stop(ctx, task.Id, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	took := time.Since(start)
	t.Logf("TIMING stop (nginx exits on SIGTERM): %s", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("Stop took %s: nginx should have exited on SIGTERM, long before the 10s grace", took)
	}
	if r := receive(t, exited, "Wait to return after Stop"); r.err != nil || r.code != 0 {
		t.Errorf("Wait after SIGTERM = %d, %v; want 0 (nginx's fast shutdown)", r.code, r.err)
	}
	if err := e.Stop(ctx, task.Id, time.Second); err != nil {
		t.Errorf("Stop of a stopped task: %v", err)
	}

	start = time.Now()
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	t.Logf("TIMING remove: %s", since(start))
	requireNothingLeft(t, cc, e, task.Id)
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
	if err := e.Stop(ctx, task.Id, time.Second); err != nil {
		t.Errorf("Stop of a removed task: %v", err)
	}
	if _, err := e.Wait(ctx, task.Id); !errors.Is(err, ErrNoSuchTask) {
		t.Errorf("Wait on a removed task: %v, want ErrNoSuchTask", err)
	}
}

func stopKillsAfterGrace(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	// The shell ignores SIGTERM, and so does the sleep it starts.
	task := newTask("stubborn-task-00000000001", "stubborn", 1, cc.Shell, "trap '' TERM; sleep 600; exit 0")
	prepareAndStart(t, ctx, e, task)

	const grace = time.Second
	start := time.Now()
	if err := e.Stop(ctx, task.Id, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	took := time.Since(start)
	t.Logf("TIMING stop with %s grace of a task that ignores SIGTERM: %s", grace, took.Round(time.Millisecond))
	if took < grace || took > grace+5*time.Second {
		t.Errorf("Stop took %s; want the %s grace and then a quick SIGKILL", took, grace)
	}
	if code, err := e.Wait(ctx, task.Id); err != nil || code != 137 {
		t.Errorf("Wait = %d, %v; want 137 (SIGKILL)", code, err)
	}
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	requireNothingLeft(t, cc, e, task.Id)
}

func exitCodeEnvHostsAndLog(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	// dash has no cat: read the files with read.
	script := `while read -r l; do echo "hosts: $l"; done </etc/hosts; read -r h </etc/hostname; ` +
		`echo "hostname: $h"; echo "env: $HOSTNAME $GREETING"; exit 3`
	task := newTask("exit-task-000000000000001", "job", 2, cc.Shell, script)
	task.Spec.Env = []string{"GREETING=hello"}

	start := time.Now()
	if err := e.Prepare(ctx, task, nodeSubnet); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Logf("TIMING pull+prepare of shell: %s", since(start))
	t.Cleanup(func() { e.Remove(context.Background(), task.Id) })
	started, err := e.Start(ctx, task)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	code, err := e.Wait(ctx, task.Id)
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3", code, err)
	}
	if _, err := e.Start(ctx, task); err == nil {
		t.Error("Start of a task that has exited gave no error")
	}

	cs, err := e.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].TaskID != task.Id || cs[0].Running || cs[0].ExitCode != 3 || cs[0].Address != started.Address {
		t.Errorf("Containers() = %+v; want the exited task with code 3 and address %s", cs, started.Address)
	}

	logs, err := os.ReadFile(e.LogPath(task.Id))
	if err != nil {
		t.Fatal(err)
	}
	host := task.Id[:12]
	for _, want := range []string{
		"hosts: 127.0.0.1\tlocalhost",
		"hosts: " + started.Address + "\t" + host + " job.2",
		"hostname: " + host,
		"env: " + host + " hello",
	} {
		if !strings.Contains(string(logs), want+"\n") {
			t.Errorf("the task's log lacks %q:\n%s", want, logs)
		}
	}
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	requireNothingLeft(t, cc, e, task.Id)
}

func missingImageLeavesNothing(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	task := newTask("missing-task-0000000000001", "ghost", 1, cc.Registry+"/nope:latest")
	err := e.Prepare(ctx, task, nodeSubnet)
	if !errors.Is(err, ErrNoSuchImage) || err.Error() != "No such image: "+cc.Registry+"/nope:latest" {
		t.Errorf("Prepare of a missing image: %v; want No such image: %s/nope:latest", err, cc.Registry)
	}
	task.Spec.Image = strings.TrimSuffix(cc.Nginx, ":latest") + ":no-such-tag"
	if err := e.Prepare(ctx, task, nodeSubnet); !errors.Is(err, ErrNoSuchImage) {
		t.Errorf("Prepare of a missing tag: %v; want ErrNoSuchImage", err)
	}
	if _, err := e.Start(ctx, task); !errors.Is(err, ErrNoSuchTask) {
		t.Errorf("Start of a task that failed to prepare: %v; want ErrNoSuchTask", err)
	}
	requireNothingLeft(t, cc, e, task.Id)

	// A registry that speaks plain HTTP but is not named insecure.
	strict := cc
	strict.Registry = ""
	e2 := newExecutor(t, strict)
	task.Spec.Image = cc.Nginx
	err = e2.Prepare(ctx, task, nodeSubnet)
	if err == nil || !strings.HasPrefix(err.Error(), "pull "+cc.Nginx+": ") || !strings.Contains(err.Error(), "insecure registry") {
		t.Errorf("Prepare from an HTTP registry not named insecure: %v; want pull %s: ... with a hint", err, cc.Nginx)
	}
	requireNothingLeft(t, cc, e, task.Id)
}

func failedStartReleasesItsNetwork(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	task := newTask("badcmd-task-0000000000001", "broken", 1, cc.Shell)
	task.Spec.Command = []string{"/no/such/program"}
	if err := e.Prepare(ctx, task, nodeSubnet); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { e.Remove(context.Background(), task.Id) })
	_, err := e.Start(ctx, task)
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("Start of a task whose program does not exist: %v; want an error that names it", err)
	}
	t.Logf("Start said: %v", err)
	// The container stays for the agent to see and remove; its process and
	// its network are gone.
	cs, err := e.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].TaskID != task.Id || cs[0].Running || cs[0].ExitCode != -1 {
		t.Errorf("Containers() = %+v; want the task, not running, exit code -1", cs)
	}
	if err := e.Stop(ctx, task.Id, time.Second); err != nil {
		t.Errorf("Stop of a task that never started: %v", err)
	}
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	requireNothingLeft(t, cc, e, task.Id)
}

func newExecutorFindsTasksAfterRestart(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e1 := newExecutor(t, cc)
	web := newTask("restart-web-0000000000001", "web", 1, cc.Nginx)
	sleeper := newTask("restart-sleep-00000000001", "sleeper", 4, cc.Shell, "sleep 600")
	addrs := map[string]string{
		web.Id:     prepareAndStart(t, ctx, e1, web).Address,
		sleeper.Id: prepareAndStart(t, ctx, e1, sleeper).Address,
	}
	if addrs[web.Id] == addrs[sleeper.Id] {
		t.Errorf("both tasks got address %s", addrs[web.Id])
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	// The node restarts: a new executor on the same namespace and state.
	e2 := newExecutor(t, cc)
	cs, err := e2.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 {
		t.Fatalf("Containers() = %+v; want the 2 tasks", cs)
	}
	for _, c := range cs {
		want := map[string]*api.Task{web.Id: web, sleeper.Id: sleeper}[c.TaskID]
		if want == nil || c.ServiceID != want.ServiceId || !c.Running || c.Address != addrs[c.TaskID] {
			t.Errorf("Containers() has %+v; want %s running at %s", c, c.TaskID, addrs[c.TaskID])
		}
	}
	raw := rawClient(t, cc)
	for _, task := range []*api.Task{web, sleeper} {
		ctr, err := raw.LoadContainer(ctx, task.Id)
		if err != nil {
			t.Fatal(err)
		}
		labels, err := ctr.Labels(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			LabelTaskID:      task.Id,
			LabelServiceID:   task.ServiceId,
			LabelServiceName: task.ServiceName,
			LabelSlot:        fmt.Sprint(task.Slot),
		} {
			if labels[k] != want {
				t.Errorf("container %s: label %s = %q, want %q", task.Id, k, labels[k], want)
			}
		}
	}
	// Another node on the same containerd sees none of them.
	other := cc
	other.Namespace += "-other"
	other.StateDir = t.TempDir()
	if cs, err := newExecutor(t, other).Containers(ctx); err != nil || len(cs) != 0 {
		t.Errorf("another namespace's Containers() = %+v, %v; want none", cs, err)
	}

	// The new executor can wait for, stop and remove what the old one made.
	exited := make(chan waitResult, 1)
	go func() {
		code, err := e2.Wait(ctx, web.Id)
		exited <- waitResult{code, err}
	}()
	if err := e2.Stop(ctx, web.Id, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if r := receive(t, exited, "Wait (new executor) to return after Stop"); r.err != nil || r.code != 0 {
		t.Errorf("Wait = %d, %v; want 0", r.code, r.err)
	}
	if err := e2.Stop(ctx, sleeper.Id, 200*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if code, err := e2.Wait(ctx, sleeper.Id); err != nil || code != 137 {
		t.Errorf("Wait = %d, %v; want 137 (sh as PID 1 ignores SIGTERM, so SIGKILL)", code, err)
	}
	for _, task := range []*api.Task{web, sleeper} {
		if err := e2.Remove(ctx, task.Id); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	requireNothingLeft(t, cc, e2, web.Id, sleeper.Id)
}

// startResumesAfterACrashMidStart: the node died after CNI ADD and before
// the task started, leaving a created process with an address. Start must
// begin again and not hold two addresses for the task.
func startResumesAfterACrashMidStart(t *testing.T, cc childConfig) {
	ctx := testContext(t)
	e := newExecutor(t, cc)
	task := newTask("midstart-task-00000000001", "web", 1, cc.Nginx)
	if err := e.Prepare(ctx, task, nodeSubnet); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Cleanup(func() { e.Remove(context.Background(), task.Id) })
	// What the first half of Start does.
	ctr, err := e.client.LoadContainer(e.ctx(ctx), task.Id)
	if err != nil {
		t.Fatal(err)
	}
	created, err := ctr.NewTask(e.ctx(ctx), cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.net.add(ctx, task.Id, nodeSubnet, created.Pid(), nil)
	if err != nil {
		t.Fatalf("CNI ADD: %v", err)
	}

	started, err := e.Start(ctx, task)
	if err != nil {
		t.Fatalf("Start after a crash mid-start: %v", err)
	}
	t.Logf("the crashed attempt had %s, the new one has %s", first, started.Address)
	requireNetworkOf(t, e, task.Id, started.Address)
	if entries, _ := os.ReadDir(filepath.Join(e.net.ipamDir(), networkName)); countIPs(entries) != 1 {
		t.Errorf("host-local holds %d addresses for one task; want 1", countIPs(entries))
	}
	if body := httpGet(t, "http://"+started.Address+"/"); body != imagetest.NginxIndex {
		t.Errorf("GET / answered %q", body)
	}
	if err := e.Stop(ctx, task.Id, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := e.Remove(ctx, task.Id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	requireNothingLeft(t, cc, e, task.Id)
}

func countIPs(entries []os.DirEntry) int {
	n := 0
	for _, ent := range entries {
		if _, err := netip.ParseAddr(ent.Name()); err == nil {
			n++
		}
	}
	return n
}
