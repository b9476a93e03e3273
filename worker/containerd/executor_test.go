package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
)

// The executor must run in a node's network namespace, so that the bridge,
// the masquerading rules and the routes CNI makes land there and not in the
// machine's own. TestExecutor (the parent) starts containerd, a LAN with a
// registry, and one test host per scenario; it then runs this test binary
// again on that host (through nsenter) with childEnv set, and
// TestExecutorOnNode (the child) plays the scenario there.

// childEnv holds the child's instructions, a JSON childConfig.
const childEnv = "SHOAL_CONTAINERD_TEST_CHILD"

type childConfig struct {
	Scenario  string
	Socket    string
	Namespace string
	StateDir  string
	Registry  string
	Nginx     string
	Shell     string
}

// nodeSubnet is the task subnet of every test node; each node is a network
// namespace of its own, so they do not clash.
const nodeSubnet = "10.88.0.0/24"

// childTimeout bounds one scenario, pulls included.
const childTimeout = 3 * time.Minute

var scenarios = map[string]func(t *testing.T, cc childConfig){
	"NginxServesAndGoesAwayCleanly":     nginxServesAndGoesAwayCleanly,
	"StopKillsAfterGrace":               stopKillsAfterGrace,
	"ExitCodeEnvHostsAndLog":            exitCodeEnvHostsAndLog,
	"MissingImageLeavesNothing":         missingImageLeavesNothing,
	"FailedStartReleasesItsNetwork":     failedStartReleasesItsNetwork,
	"StartResumesAfterACrashMidStart":   startResumesAfterACrashMidStart,
	"NewExecutorFindsTasksAfterRestart": newExecutorFindsTasksAfterRestart,
}

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv(childEnv) == "" {
		imagetest.Cleanup()
	}
	os.Exit(code)
}

func TestExecutor(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("runs in the parent test process only")
	}
	testhost.Require(t)
	imagetest.RequireContainerd(t)
	imagetest.RequireRegistry(t)
	requireCNI(t)

	socket := imagetest.StartContainerd(t)
	lan := testhost.NewLAN(t)
	reg := lan.AddHost(t, "registry")
	addr := imagetest.StartRegistry(t, reg)
	imgs := imagetest.PushImages(t, reg, addr)

	for _, name := range sortedScenarios() {
		t.Run(name, func(t *testing.T) {
			node := lan.AddHost(t, "node")
			cc := childConfig{
				Scenario:  name,
				Socket:    socket,
				Namespace: "shoal-test-" + strings.ToLower(name),
				StateDir:  t.TempDir(),
				Registry:  addr,
				Nginx:     imgs.Nginx,
				Shell:     imgs.Shell,
			}
			// Runs before the host and the state dir go: whatever the
			// child left in containerd or pinned under its state dir.
			t.Cleanup(func() { sweepNamespace(t, cc) })
			runChild(t, node, cc)
		})
	}
}

func requireCNI(t *testing.T) {
	t.Helper()
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(DefaultConfig().CNIBinDir, p)); err != nil {
			testhost.SkipOrFail(t, fmt.Sprintf("the executor tests need the CNI plugin %s (containernetworking-plugins): %v", p, err))
		}
	}
}

func sortedScenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// runChild runs the scenario on node and fails the test if the child does.
func runChild(t *testing.T, node *testhost.Host, cc childConfig) {
	t.Helper()
	b, err := json.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	cmd := node.Command(os.Args[0], "-test.run=^TestExecutorOnNode$", "-test.v", "-test.count=1",
		"-test.timeout="+childTimeout.String())
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child on %s: %v", node, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(childTimeout + 30*time.Second):
		cmd.Process.Kill()
		err = fmt.Errorf("killed after %s: %w", childTimeout+30*time.Second, <-done)
	}
	t.Logf("child on %s:\n%s", node, out.String())
	if err != nil {
		t.Fatalf("the scenario failed on %s: %v (its output is above)", node, err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestExecutorOnNode") {
		t.Fatalf("the child on %s did not run the scenario (its output is above)", node)
	}
}

// sweepNamespace removes what a child left in its containerd namespace and
// unpins what it left pinned, so that a failed scenario does not leak.
func sweepNamespace(t *testing.T, cc childConfig) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx = namespaces.WithNamespace(ctx, cc.Namespace)
	c, err := client.New(cc.Socket)
	if err != nil {
		t.Errorf("sweeping %s: %v", cc.Namespace, err)
		return
	}
	defer c.Close()
	cs, err := c.Containers(ctx)
	if err != nil {
		t.Errorf("sweeping %s: %v", cc.Namespace, err)
	}
	for _, ctr := range cs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			task.Delete(ctx, client.WithProcessKill)
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			t.Errorf("sweeping container %s: %v", ctr.ID(), err)
		}
	}
	if len(cs) > 0 {
		t.Errorf("the scenario left %d containers in namespace %s", len(cs), cc.Namespace)
	}
	pins, _ := filepath.Glob(filepath.Join(cc.StateDir, "cni", "netns", "*"))
	for _, p := range pins {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	if err := ctrdutil.RemoveCgroups(cc.Namespace); err != nil {
		t.Errorf("removing the cgroups of namespace %s: %v", cc.Namespace, err)
	}
}

// TestExecutorOnNode is not a test of its own: TestExecutor runs the test
// binary again with it, on a test host.
func TestExecutorOnNode(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("runs only as the child of TestExecutor, on a test host")
	}
	var cc childConfig
	if err := json.Unmarshal([]byte(raw), &cc); err != nil {
		t.Fatalf("%s: %v", childEnv, err)
	}
	play, ok := scenarios[cc.Scenario]
	if !ok {
		t.Fatalf("no scenario %q", cc.Scenario)
	}
	play(t, cc)
}

// --- helpers ---

type waitResult struct {
	code int
	err  error
}

func receive(t *testing.T, ch <-chan waitResult, what string) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out after 20s waiting for %s", what)
		return waitResult{}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout-15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func newExecutor(t *testing.T, cc childConfig) *Executor {
	t.Helper()
	cfg := Config{
		Socket:    cc.Socket,
		Namespace: cc.Namespace,
		StateDir:  cc.StateDir,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if cc.Registry != "" {
		cfg.InsecureRegistries = []string{cc.Registry}
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func newTask(id, service string, slot uint64, image string, args ...string) *api.Task {
	return &api.Task{
		Id:          id,
		ServiceId:   "svc-" + service,
		ServiceName: service,
		Slot:        slot,
		Spec:        &api.ContainerSpec{Image: image, Args: args},
	}
}

// prepareAndStart prepares and starts a task, and removes it when the test
// ends.
func prepareAndStart(t *testing.T, ctx context.Context, e *Executor, task *api.Task) startedTask {
	t.Helper()
	start := time.Now()
	if err := e.Prepare(ctx, task, nodeSubnet); err != nil {
		t.Fatalf("Prepare %s: %v", task.Id, err)
	}
	prepared := time.Now()
	t.Cleanup(func() { e.Remove(context.Background(), task.Id) })
	s, err := e.Start(ctx, task)
	if err != nil {
		t.Fatalf("Start %s: %v", task.Id, err)
	}
	t.Logf("TIMING %s (%s): pull+prepare %s, start %s", task.Id, task.Spec.Image,
		prepared.Sub(start).Round(time.Millisecond), since(prepared))
	requireInSubnet(t, s.Address)
	return startedTask{Address: s.Address}
}

type startedTask struct{ Address string }

func requireInSubnet(t *testing.T, addr string) {
	t.Helper()
	a, err := netip.ParseAddr(addr)
	if err != nil || !netip.MustParsePrefix(nodeSubnet).Contains(a) {
		t.Fatalf("task address %q is not in the node subnet %s", addr, nodeSubnet)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	var body string
	clustertest.WaitFor(t, 15*time.Second, "GET "+url, func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s: %q", resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}

func rawClient(t *testing.T, cc childConfig) *client.Client {
	t.Helper()
	c, err := client.New(cc.Socket, client.WithDefaultNamespace(cc.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// requireNetworkOf checks that a running task has what requireNothingLeft
// checks is gone, so that those checks look in the right places.
func requireNetworkOf(t *testing.T, e *Executor, taskID, addr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.net.ipamDir(), networkName, addr))
	if err != nil || !strings.HasPrefix(string(b), taskID) {
		t.Errorf("host-local has no reservation of %s for %s: %q, %v", addr, taskID, b, err)
	}
	if !pinned(e.net.netnsPath(taskID)) {
		t.Errorf("the network namespace of %s is not pinned at %s", taskID, e.net.netnsPath(taskID))
	}
	if out := command(t, "ip", "-o", "link", "show", "master", e.cfg.Bridge); !strings.Contains(out, "veth") {
		t.Errorf("no veth on bridge %s:\n%s", e.cfg.Bridge, out)
	}
	if out := command(t, "iptables", "-t", "nat", "-S", "POSTROUTING"); !strings.Contains(out, "CNI-") {
		t.Errorf("no masquerading rule for the task:\n%s", out)
	}
}

// requireNothingLeft checks that the tasks left nothing behind: no
// container, process or writable snapshot in containerd, no address in
// host-local's store, no pinned namespace, no veth or masquerading rule on
// the node, no files.
func requireNothingLeft(t *testing.T, cc childConfig, e *Executor, taskIDs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), cc.Namespace), 30*time.Second)
	defer cancel()
	raw := rawClient(t, cc)

	cs, err := e.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("Containers() = %+v after Remove; want none", cs)
	}
	for _, id := range taskIDs {
		if _, err := raw.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
			t.Errorf("container %s: %v; want not found", id, err)
		}
		if _, err := raw.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id}); !errdefs.IsNotFound(errgrpc.ToNative(err)) {
			t.Errorf("task %s: %v; want not found", id, err)
		}
		if _, err := os.Stat(e.LogPath(id)); !os.IsNotExist(err) {
			t.Errorf("log file of %s: %v; want it gone", id, err)
		}
		if _, err := os.Stat(e.taskDir(id)); !os.IsNotExist(err) {
			t.Errorf("directory of %s: %v; want it gone", id, err)
		}
	}
	var active []string
	err = raw.SnapshotService("").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			active = append(active, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) > 0 {
		t.Errorf("snapshots left that are not image layers: %v", active)
	}

	ipam := filepath.Join(e.net.ipamDir(), networkName)
	entries, _ := os.ReadDir(ipam)
	for _, ent := range entries {
		if _, err := netip.ParseAddr(ent.Name()); err == nil {
			b, _ := os.ReadFile(filepath.Join(ipam, ent.Name()))
			t.Errorf("host-local still has %s reserved (for %q)", ent.Name(), b)
		}
	}
	if pins, _ := os.ReadDir(e.net.netnsDir()); len(pins) > 0 {
		t.Errorf("pinned network namespaces left: %v", pins)
	}
	// The node's own eth0 is a veth too; the tasks' are plugged into the
	// bridge.
	for line := range strings.Lines(command(t, "ip", "-o", "link", "show", "type", "veth")) {
		if strings.Contains(line, " master ") {
			t.Errorf("a task's veth is left on the node: %s", line)
		}
	}
	if out := command(t, "iptables", "-t", "nat", "-S"); strings.Contains(out, "CNI-") {
		t.Errorf("masquerading rules left on the node:\n%s", out)
	}
}

func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
