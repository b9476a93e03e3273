package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/internal/chaosclient/history"
)

// The chaos test's bounds: the managers are killed and restarted for at most
// chaosRounds rounds or chaosBudget, whichever ends first.
const (
	chaosRounds   = 20
	chaosBudget   = 100 * time.Second
	chaosReplicas = 1 // each service's replicas when the client starts
	chaosMax      = 4 // the most replicas the client asks for
	// chaosCommand stops at once on SIGTERM; sh as PID 1 would ignore it.
	chaosCommand = `trap "exit 0" TERM; sleep 3600 & wait`
)

// Managers are killed and restarted at random while a client scales two
// services up and down and reads their sizes through random managers. At the
// end the client's history is linearizable (each service a register), the
// final sizes keep every acknowledged write, and each service runs exactly
// that many tasks, one per slot, each in one container.
func TestChaos(t *testing.T) {
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	c := newServiceCluster(t, 4, 3)
	services := []string{"chaos-a", "chaos-b"}
	for _, s := range services {
		c.node(1).MustCLI(t, "service", "create", "-d", "--name", s, "--replicas", strconv.Itoa(chaosReplicas),
			"--stop-grace-period", "2s", c.images.Shell, chaosCommand)
	}
	for _, s := range services {
		c.waitRunning(t, s, chaosReplicas)
	}

	cl := startChaosClient(t, c, services)
	start := time.Now()
	rounds := c.killManagers(t, rng)
	t.Logf("chaos: %d rounds in %s", rounds, time.Since(start).Round(100*time.Millisecond))
	c.waitLeaderAgreed(t)
	ops, finals := cl.stop(t)

	checkLinearizable(t, ops)
	for _, s := range services {
		final, ok := finals[s]
		if !ok {
			t.Fatalf("the client printed no final value for %s", s)
		}
		if err := history.CheckFinal(ops, s, chaosReplicas, final); err != nil {
			t.Error(err)
		}
	}
	c.via = 1
	for _, s := range services {
		took := c.waitConverged(t, s, int(finals[s]))
		t.Logf("%s runs its %d replicas %s after the client stopped", s, finals[s], took.Round(100*time.Millisecond))
	}
	c.waitContainersMatchTasks(t)
}

// chaosSeed is SHOAL_CHAOS_SEED, to replay a run's choice of managers and
// pauses, or else a new one; it is logged either way.
func chaosSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHOAL_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SHOAL_CHAOS_SEED=%s: %v", s, err)
		}
	}
	t.Logf("chaos: seed %d (set SHOAL_CHAOS_SEED to replay the kills)", seed)
	return seed
}

// killManagers kills a random manager with SIGKILL, leaves it down for 0.5
// to 2 s, restarts it and waits until it knows a leader; again, for
// chaosRounds rounds or until chaosBudget has passed. Between rounds it
// checks that no slot runs twice. It returns the number of rounds.
func (c *serviceCluster) killManagers(t *testing.T, rng *rand.Rand) int {
	t.Helper()
	start := time.Now()
	for round := 1; round <= chaosRounds; round++ {
		if time.Since(start) > chaosBudget {
			t.Logf("chaos: stopping after %d rounds: the %s budget is spent", round-1, chaosBudget)
			return round - 1
		}
		i := 1 + rng.IntN(3)
		role := "follower"
		if rows, err := c.nodeLs(i); err == nil && rows[fmt.Sprintf("node-%02d", i)].ManagerStatus == "Leader" {
			role = "leader"
		}
		down := 500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		c.node(i).Kill(t)
		// The length of the outage is the point here, not a wait for
		// something to happen.
		time.Sleep(down)
		c.node(i).Restart(t)
		leader := c.leader(i, failover)
		t.Logf("chaos: round %d: node-%02d (%s) was down %s; node-%02d leads", round, i, role,
			down.Round(10*time.Millisecond), leader)
		c.via = leader
		c.checkNoSlotTwice(t)
	}
	return chaosRounds
}

// checkNoSlotTwice fails the test if some slot of a service has two tasks
// running that are both meant to run, as the manager c.via sees it.
func (c *serviceCluster) checkNoSlotTwice(t *testing.T) {
	t.Helper()
	seen := map[string]task{}
	for _, x := range c.tasks(t) {
		if x.State != "RUNNING" || x.Desired != "RUNNING" {
			continue
		}
		key := x.Service + "." + x.Slot
		if y, ok := seen[key]; ok {
			t.Errorf("slot %s runs twice: task %s on %s and task %s on %s", key, y.ID, y.Node, x.ID, x.Node)
		}
		seen[key] = x
	}
}

// waitLeaderAgreed waits until the three managers name the same leader.
func (c *serviceCluster) waitLeaderAgreed(t *testing.T) {
	t.Helper()
	clustertest.WaitFor(t, failover, "the three managers to name one leader", func() error {
		leaders := map[int]bool{}
		for i := 1; i <= 3; i++ {
			leaders[c.leader(i, failover)] = true
		}
		if len(leaders) != 1 {
			return fmt.Errorf("the managers name %v", leaders)
		}
		return nil
	})
}

// waitConverged waits until the service runs n tasks, in slots 1 to n, no
// slot twice, and says how long that took.
func (c *serviceCluster) waitConverged(t *testing.T, service string, n int) time.Duration {
	t.Helper()
	start := time.Now()
	clustertest.WaitFor(t, converge, fmt.Sprintf("%s to run %d tasks in slots 1-%d", service, n, n), func() error {
		byNode := c.running(t, service)
		total, slots := 0, map[string]bool{}
		for _, ts := range byNode {
			for _, x := range ts {
				if slots[x.Slot] {
					return fmt.Errorf("slot %s runs twice: %v", x.Slot, byNode)
				}
				if s, err := strconv.Atoi(x.Slot); err != nil || s < 1 || s > n {
					return fmt.Errorf("task %s runs in slot %s: %v", x.ID, x.Slot, byNode)
				}
				slots[x.Slot] = true
				total++
			}
		}
		if total != n {
			return fmt.Errorf("%d running: %v\nservice ps:\n%s", total, byNode, c.psOut(service))
		}
		return nil
	})
	return time.Since(start)
}

// waitContainersMatchTasks waits until every node holds a container for
// each task it runs and none other: no killed manager left a task's
// container running beside its replacement, and no stopped task kept its
// container.
func (c *serviceCluster) waitContainersMatchTasks(t *testing.T) {
	t.Helper()
	clustertest.WaitFor(t, converge, "each node to hold exactly the containers of its running tasks", func() error {
		byID, want := map[string]task{}, map[string][]string{}
		for _, x := range c.tasks(t) {
			byID[x.ID] = x
			if x.State == "RUNNING" && x.Desired == "RUNNING" {
				want[x.Node] = append(want[x.Node], x.ID)
			}
		}
		for i, ns := range c.namespaces {
			left, err := imagetest.Leftovers(t, c.containerd, ns)
			if err != nil {
				return err
			}
			var have []string
			for _, l := range left {
				if id, ok := strings.CutPrefix(l, "container "); ok {
					have = append(have, id)
				}
			}
			node := fmt.Sprintf("node-%02d", i+1)
			slices.Sort(have)
			slices.Sort(want[node])
			if !slices.Equal(have, want[node]) {
				var extra []string
				for _, id := range have {
					if x, ok := byID[id]; !ok {
						extra = append(extra, id+" (a task the managers no longer list)")
					} else if !slices.Contains(want[node], id) {
						extra = append(extra, fmt.Sprintf("%s (%s.%s on %s, %s, desired %s)", id, x.Service, x.Slot, x.Node, x.State, x.Desired))
					}
				}
				return fmt.Errorf("%s holds containers %v for its running tasks %v; extra: %v", node, have, want[node], extra)
			}
		}
		return nil
	})
}

// chaosClient is the chaosclient program running on a test host.
type chaosClient struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

// startChaosClient builds chaosclient and runs it on the worker's host with
// a copy of node-01's certificate, which every manager accepts.
func startChaosClient(t *testing.T, c *serviceCluster, services []string) *chaosClient {
	t.Helper()
	bin, err := clustertest.GoBuild(t.TempDir(), "github.com/shoal-dev/shoal/integration/internal/chaosclient")
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(t.TempDir(), "certs")
	copyDir(t, c.certDir(1), certs)
	var managers []string
	for i := 1; i <= 3; i++ {
		managers = append(managers, fmt.Sprintf("node-%02d=%s", i, c.addr(i)))
	}
	cl := &chaosClient{exited: make(chan struct{})}
	cl.cmd = c.node(4).Host.Command(bin, "-certs", certs, "-managers", strings.Join(managers, ","),
		"-services", strings.Join(services, ","), "-clients", "3", "-max", strconv.Itoa(chaosMax), "-duration", "4m")
	cl.cmd.Stdout, cl.cmd.Stderr = &cl.stdout, &cl.stderr
	if cl.stdin, err = cl.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cl.cmd.Start(); err != nil {
		t.Fatalf("start chaosclient: %v", err)
	}
	go func() {
		cl.err = cl.cmd.Wait()
		close(cl.exited)
	}()
	t.Cleanup(func() {
		cl.stdin.Close()
		select {
		case <-cl.exited:
		case <-time.After(time.Second):
			cl.cmd.Process.Kill()
			<-cl.exited
		}
	})
	return cl
}

// stop closes the client's stdin, waits for it to finish its calls and its
// final reads, and returns its history and the final value of each service.
func (cl *chaosClient) stop(t *testing.T) ([]history.Op, map[string]int64) {
	t.Helper()
	cl.stdin.Close()
	select {
	case <-cl.exited:
	case <-time.After(time.Minute):
		cl.cmd.Process.Kill()
		<-cl.exited
		t.Fatalf("chaosclient did not end within a minute of its stdin closing; stderr:\n%s", cl.stderr.String())
	}
	var ops []history.Op
	finals := map[string]int64{}
	sc := bufio.NewScanner(&cl.stdout)
	for sc.Scan() {
		var o history.Op
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("chaosclient line %q: %v", sc.Text(), err)
		}
		switch {
		case o.Kind == history.Start:
			t.Logf("chaos: the client started at %s; its times count from there",
				time.Unix(0, o.Value).Format("15:04:05.000"))
		case o.Kind != history.Final:
			ops = append(ops, o)
		case o.OK:
			finals[o.Service] = o.Value
		default:
			t.Errorf("no final value of %s: %s", o.Service, o.Err)
		}
	}
	if cl.err != nil {
		t.Fatalf("chaosclient: %v\n%s", cl.err, cl.stderr.String())
	}
	t.Logf("chaos: %d operations:\n%s", len(ops), history.Stats(ops))
	if writes, reads := countOK(ops); writes < 20 || reads < 20 {
		t.Fatalf("the client got %d writes and %d reads through; too few to tell anything\nstderr:\n%s",
			writes, reads, cl.stderr.String())
	}
	return ops, finals
}

// countOK counts the acknowledged writes and the answered reads.
func countOK(ops []history.Op) (writes, reads int) {
	for _, o := range ops {
		switch {
		case !o.OK:
		case o.Kind == history.Write:
			writes++
		case o.Kind == history.Read:
			reads++
		}
	}
	return writes, reads
}

// porcupineTimeout bounds porcupine's search. A linearizable history of this
// test takes it milliseconds; one that is not, with tens of writes of
// unknown outcome, can take it hours.
const porcupineTimeout = 30 * time.Second

// checkLinearizable checks the history: first for stale reads, which prove
// at once that it is not linearizable and say where, then with porcupine.
// If it is not linearizable (or porcupine could not tell), it writes
// porcupine's visualization and the history to a directory that outlives
// the test.
func checkLinearizable(t *testing.T, ops []history.Op) {
	t.Helper()
	stale := history.StaleReads(ops, chaosReplicas)
	for i, s := range stale {
		if i == 10 {
			t.Errorf("... and %d more stale reads", len(stale)-i)
			break
		}
		t.Errorf("stale read: %s", s)
	}
	timeout := porcupineTimeout
	if len(stale) > 0 {
		timeout /= 6 // porcupine only draws the history now
	}
	model := history.Model(chaosReplicas)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history.Operations(ops), timeout)
	t.Logf("chaos: porcupine says %s in %s", res, time.Since(start).Round(time.Millisecond))
	if res == porcupine.Ok {
		if len(stale) > 0 {
			t.Errorf("porcupine found linearizable a history with %d stale reads; one of the two checks is wrong", len(stale))
		}
		return
	}
	switch {
	case res == porcupine.Unknown && len(stale) > 0:
		t.Logf("chaos: porcupine gave up after %s; the stale reads above show the history is not linearizable", timeout)
	default:
		t.Errorf("the client's history is not linearizable (porcupine: %s)", res)
	}
	dir, err := os.MkdirTemp("", "shoal-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "linearizability.html")
	if err := porcupine.VisualizePath(model, info, html); err != nil {
		t.Errorf("porcupine visualization: %v", err)
	}
	raw, _ := json.MarshalIndent(ops, "", " ")
	if err := os.WriteFile(filepath.Join(dir, "history.json"), raw, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("chaos: porcupine's view of the history is %s; beside it, history.json, which "+
		"SHOAL_CHAOS_HISTORY=<path> go test -run TestChaosHistory checks again", html)
}

// A history that TestChaos saved (history.json), checked again; skipped
// unless SHOAL_CHAOS_HISTORY names one.
func TestChaosHistory(t *testing.T) {
	path := os.Getenv("SHOAL_CHAOS_HISTORY")
	if path == "" {
		t.Skip("SHOAL_CHAOS_HISTORY names no history.json to check")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []history.Op
	if err := json.Unmarshal(raw, &ops); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	t.Logf("chaos: %d operations:\n%s", len(ops), history.Stats(ops))
	checkLinearizable(t, ops)
}

// copyDir copies the files of directory from into a new directory to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
