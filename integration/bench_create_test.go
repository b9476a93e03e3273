package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// What BenchmarkCreate creates, and how its floor runs.
const (
	createNodes    = 4
	createReplicas = 8
	createRounds   = 7   // the issue asks for the median of at least 5
	createGoal     = 1.3 // at most this many times the floor

	// floorEnv carries a floorConfig to the floor's child processes.
	floorEnv = "SHOAL_BENCH_FLOOR_CHILD"
	// floorReply starts every line a child answers with.
	floorReply = "FLOOR"
	// The floor's tasks get a bridge and a subnet of their own on each
	// host, beside shoal's shoal0 and node subnet.
	floorBridge  = "floor0"
	floorSubnet  = "10.99.0.0/24"
	floorTimeout = 2 * time.Minute // one step of a child
	// createPoll is how often `create -d` rounds ask node-01 for the tasks.
	// They take the time from the leader's own record, so the poll need not
	// be fast; polling every 10ms took CPU enough to slow the workers down.
	createPoll = 50 * time.Millisecond
)

// BenchmarkCreate measures `shoal service create --replicas 8` of nginx on
// four nodes until all eight tasks run, beside the floor: the same eight
// containers started straight through containerd by the executor that
// shoal's workers use (worker/containerd), two in each node's network
// namespace, all at once. Every round times the floor, `service create`
// without -d (the headline: the CLI returns once the service has converged,
// as a user sees it) and `service create -d` until the leader has received
// the last RUNNING status (without the CLI's 200ms polling), in an order
// that rotates from round to round; both sides start from an image already
// pulled on every node. Each round also prints where shoal's time went,
// from the leader's records and the workers' debug logs, and the CPU used.
// SHOAL_BENCH_ROUNDS sets the number of rounds (default 7);
// SHOAL_BENCH_LOGS=DIR keeps the daemons' and the floor's logs there.
//
//	make bench-create
func BenchmarkCreate(b *testing.B) {
	rounds := createRounds
	if v, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for range b.N {
		bc := newCreateBench(b)
		bc.warmUp()
		fmt.Printf("create: %d nginx replicas on %d nodes until all run, beside the floor (the same %d containers through worker/containerd, %d per node at once); %d rounds\n",
			createReplicas, createNodes, createReplicas, createReplicas/createNodes, rounds)
		var floors, creates, detached []time.Duration
		var cli, det []shoalResult
		var floorTasks []floorTask
		for round := 1; round <= rounds; round++ {
			var f floorResult
			var cr, dr shoalResult
			steps := []func(){
				func() { f = bc.floor(round) },
				func() { cr = bc.shoal(fmt.Sprintf("b%d", round), false) },
				func() { dr = bc.shoal(fmt.Sprintf("bd%d", round), true) },
			}
			for i := range steps {
				steps[(i+round)%len(steps)]()
			}
			floors, creates, detached = append(floors, f.took), append(creates, cr.took), append(detached, dr.took)
			cli, det = append(cli, cr), append(det, dr)
			floorTasks = append(floorTasks, f.tasks...)
			fmt.Printf("round %d: floor %s | create %s (%.2fx) | create -d: leader had all running at %s (%.2fx; the CLI returned after %s, the poll saw it at %s)\n",
				round, secs(f.took), secs(cr.took), ratio(cr.took, f.took), secs(dr.took), ratio(dr.took, f.took), millis(dr.returned), secs(dr.timeline.done))
			fmt.Printf("  create    %s\n  create -d %s\n", cr.timeline, dr.timeline)
			fmt.Printf("  cpu: floor %s\n       create %s\n       create -d %s\n", f.cpu, cr.cpu, dr.cpu)
		}
		mf, mc, md := median(floors), median(creates), median(detached)
		verdict := "met"
		if ratio(mc, mf) > createGoal {
			verdict = "NOT met"
		}
		fmt.Printf("medians over %d rounds: floor %s; create %s = %.2fx the floor (goal: at most %.2fx: %s); create -d, until the leader had all running, %s = %.2fx\n",
			rounds, secs(mf), secs(mc), ratio(mc, mf), createGoal, verdict, secs(md), ratio(md, mf))
		printPhases("create", cli, mf)
		printPhases("create -d", det, mf)
		printPerTask(append(cli, det...), floorTasks)
		bc.keepLogs(os.Getenv("SHOAL_BENCH_LOGS"))
		b.ReportMetric(0, "ns/op") // the set-up dominates it; the figures are below
		b.ReportMetric(mf.Seconds(), "floor-s")
		b.ReportMetric(mc.Seconds(), "create-s")
		b.ReportMetric(ratio(mc, mf), "create/floor")
		b.ReportMetric(md.Seconds(), "detach-s")
		b.ReportMetric(ratio(md, mf), "detach/floor")
	}
}

// createBench is one cluster of four nodes, a control connection to
// node-01 (the manager) and the floor's child on every node's host.
type createBench struct {
	tb     testing.TB
	sc     *serviceCluster
	floors []*floorChild
}

// newCreateBench starts what newServiceCluster starts, for a benchmark,
// with the daemons logging at debug level (the timelines come from their
// task status lines), and the floor's children.
func newCreateBench(tb testing.TB) *createBench {
	tb.Helper()
	sc := newServiceCluster(tb, createNodes, 1, "--debug")
	bc := &createBench{tb: tb, sc: sc}
	for i := 1; i <= createNodes; i++ {
		bc.floors = append(bc.floors, startFloorChild(tb, sc.node(i).Host, sc.containerd, sc.registry, sc.images.Nginx))
	}
	return bc
}

// warmUp creates and removes a service of 8 replicas, and runs one floor
// round, untimed, so that every node has the image pulled and unpacked in
// both its own and the floor's containerd namespace, and both bridges exist.
func (bc *createBench) warmUp() {
	bc.tb.Helper()
	start := time.Now()
	bc.sc.node(1).MustCLI(bc.tb, "service", "create", "-d", "--name", "warm", "--replicas", strconv.Itoa(createReplicas), bc.sc.images.Nginx)
	tasks := bc.pollRunning("warm")
	nodes := map[string]bool{}
	for _, t := range tasks {
		nodes[t.NodeId] = true
	}
	if len(nodes) != createNodes {
		bc.tb.Fatalf("warm-up: the 8 tasks ran on %d nodes, want all %d", len(nodes), createNodes)
	}
	bc.sc.node(1).MustCLI(bc.tb, "service", "rm", "warm")
	bc.sc.waitNothingLeft(bc.tb)
	bc.floor(0)
	fmt.Printf("warm-up (%s): service warm (8 replicas) created and removed, and one untimed floor round: every node has pulled %s into its own containerd namespace and the floor's, so no measured Prepare downloads a layer; each still resolves the tag at the registry, in shoal as in the floor. Daemons log at debug level.\n",
		secs(time.Since(start)), bc.sc.images.Nginx)
}

// --- shoal's side ---

// shoalResult is one timed `service create`.
type shoalResult struct {
	took     time.Duration // until all run: the CLI's return, or (-d) when the leader received the last RUNNING
	returned time.Duration // when the CLI returned
	timeline createTimeline
	cpu      cpuUse
}

// shoal creates a service of 8 nginx replicas through node-01's CLI and
// times it until all run; then removes it and waits until nothing is left.
// Without detach the CLI itself waits for convergence, and its return is
// the time; with it, this polls ListTasks every createPoll until 8 run, and
// the time is when the leader received the last RUNNING status (a Raft
// commit, a few milliseconds, before any client can see it).
func (bc *createBench) shoal(name string, detach bool) shoalResult {
	bc.tb.Helper()
	args := []string{"service", "create"}
	if detach {
		args = append(args, "-d")
	}
	args = append(args, "--name", name, "--replicas", strconv.Itoa(createReplicas), bc.sc.images.Nginx)
	cpu0 := bc.cpu()
	start := time.Now()
	out, err := bc.sc.node(1).CLI(args...)
	r := shoalResult{returned: time.Since(start)}
	if err != nil {
		bc.tb.Fatalf("%v", err)
	}
	var tasks []*api.Task
	seen := r.returned
	if detach {
		tasks = bc.pollRunning(name)
		seen = time.Since(start)
	} else {
		r.took = r.returned
		if !strings.Contains(out, "converged") {
			bc.tb.Fatalf("service create %s returned without converging:\n%s", name, out)
		}
		tasks = bc.running(name)
		if len(tasks) != createReplicas {
			bc.tb.Fatalf("service create %s said it converged, but %d tasks run", name, len(tasks))
		}
	}
	r.cpu = bc.cpu().since(cpu0)
	r.timeline = bc.timeline(name, start, tasks, seen)
	if detach {
		r.took = r.timeline.reported
	}
	bc.sc.node(1).MustCLI(bc.tb, "service", "rm", name)
	bc.sc.waitNothingLeft(bc.tb)
	return r
}

func (bc *createBench) listTasks(req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bc.sc.control(1).ListTasks(ctx, req)
}

// running returns the service's tasks that run and are wanted running.
func (bc *createBench) running(service string) []*api.Task {
	resp, err := bc.listTasks(&api.ListTasksRequest{Service: service})
	if err != nil {
		bc.tb.Fatalf("ListTasks %s: %v", service, err)
	}
	var run []*api.Task
	for _, t := range resp.Tasks {
		if t.GetStatus().GetState() == api.TaskState_RUNNING && t.DesiredState == api.TaskState_RUNNING {
			run = append(run, t)
		}
	}
	return run
}

// pollRunning asks node-01 for the service's tasks every createPoll until
// createReplicas of them run.
func (bc *createBench) pollRunning(service string) []*api.Task {
	bc.tb.Helper()
	deadline := time.Now().Add(converge)
	for {
		if run := bc.running(service); len(run) == createReplicas {
			return run
		} else if time.Now().After(deadline) {
			bc.tb.Fatalf("timed out after %s waiting for %d running tasks of %s: %d run\nservice ps:\n%s",
				converge, createReplicas, service, len(run), bc.sc.psOut(service))
		}
		time.Sleep(createPoll)
	}
}

// createTimeline is where one create's time went, each step measured from
// the CLI's start to the slowest task reaching it. The manager's times are
// node-01's clock, the workers' come from their logs (milliseconds); all
// run on one machine.
type createTimeline struct {
	service    time.Duration    // the manager took the service (CreateService)
	planned    time.Duration    // the reconcile pass made and placed the tasks
	accepted   [2]time.Duration // the first and the last worker took its task
	prepared   time.Duration    // Prepare returned (image resolved, container created)
	started    time.Duration    // Start returned (process, CNI, start)
	reported   time.Duration    // the leader received the RUNNING status
	done       time.Duration    // the CLI returned, or the poll saw 8 running
	prepare    []time.Duration
	start      []time.Duration
	perNode    map[string]int
	incomplete bool // a worker log lacked a status line
}

func (tl createTimeline) String() string {
	s := fmt.Sprintf("service +%s, tasks planned +%s, accepted +%s..+%s, prepared +%s, started +%s, leader knew +%s, seen +%s",
		millis(tl.service), millis(tl.planned), millis(tl.accepted[0]), millis(tl.accepted[1]), millis(tl.prepared), millis(tl.started), millis(tl.reported), millis(tl.done))
	s += fmt.Sprintf(" | per task: prepare %s (max %s), start %s (max %s)",
		millis(median(tl.prepare)), millis(slices.Max(append([]time.Duration{0}, tl.prepare...))),
		millis(median(tl.start)), millis(slices.Max(append([]time.Duration{0}, tl.start...))))
	for _, n := range tl.perNode {
		if n != createReplicas/createNodes {
			s += fmt.Sprintf(" | UNEVEN spread %v", tl.perNode)
			break
		}
	}
	if tl.incomplete {
		s += " | (some worker status lines missing)"
	}
	return s
}

// statusLog matches a worker's debug line for a task's move to a state.
var statusLog = regexp.MustCompile(`^time=(\S+) .*msg="task status" .*\btask=(\S+) state=(\S+)`)

func (bc *createBench) timeline(service string, t0 time.Time, tasks []*api.Task, done time.Duration) createTimeline {
	bc.tb.Helper()
	rel := func(ns int64) time.Duration { return time.Unix(0, ns).Sub(t0) }
	tl := createTimeline{done: done, perNode: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if svc, err := bc.sc.control(1).GetService(ctx, &api.GetServiceRequest{Ref: service}); err == nil {
		tl.service = rel(svc.CreatedUnixNano)
	}
	ids := map[string]bool{}
	for _, t := range tasks {
		ids[t.Id] = true
		tl.perNode[t.NodeId]++
		tl.planned = max(tl.planned, rel(t.CreatedUnixNano))
		tl.reported = max(tl.reported, rel(t.GetStatus().GetUnixNano()))
	}
	seen := map[string]map[string]time.Time{} // task, state: first time
	for i := 1; i <= createNodes; i++ {
		f, err := os.Open(bc.sc.node(i).LogPath)
		if err != nil {
			bc.tb.Fatalf("%v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			m := statusLog.FindStringSubmatch(sc.Text())
			if m == nil || !ids[m[2]] {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			if seen[m[2]] == nil {
				seen[m[2]] = map[string]time.Time{}
			}
			if _, ok := seen[m[2]][m[3]]; !ok {
				seen[m[2]][m[3]] = at
			}
		}
		f.Close()
	}
	tl.accepted[0] = time.Duration(1<<63 - 1)
	for id := range ids {
		st := seen[id]
		acc, prep, ready, starting, run := st["ACCEPTED"], st["PREPARING"], st["TASK_READY"], st["STARTING"], st["RUNNING"]
		if acc.IsZero() || prep.IsZero() || ready.IsZero() || starting.IsZero() || run.IsZero() {
			tl.incomplete = true
			continue
		}
		tl.accepted[0] = min(tl.accepted[0], acc.Sub(t0))
		tl.accepted[1] = max(tl.accepted[1], acc.Sub(t0))
		tl.prepared = max(tl.prepared, ready.Sub(t0))
		tl.started = max(tl.started, run.Sub(t0))
		tl.prepare = append(tl.prepare, ready.Sub(prep))
		tl.start = append(tl.start, run.Sub(starting))
	}
	if tl.accepted[0] > tl.accepted[1] {
		tl.accepted[0] = 0
	}
	return tl
}

// --- figures ---

// printPhases splits the medians of a kind of create into where the time
// went: before the workers had the tasks, on the workers (prepare and start,
// what the floor does), the status report to the leader, and until the
// client saw all running.
func printPhases(kind string, rs []shoalResult, floor time.Duration) {
	var dispatch, workers, report, observe []time.Duration
	for _, r := range rs {
		tl := r.timeline
		dispatch = append(dispatch, tl.accepted[1])
		workers = append(workers, tl.started-tl.accepted[0])
		report = append(report, tl.reported-tl.started)
		observe = append(observe, tl.done-tl.reported)
	}
	fmt.Printf("%s, medians of its phases: until every worker accepted %s; prepare+start on the workers %s (floor %s); status to the leader %s; until seen %s\n",
		kind, millis(median(dispatch)), millis(median(workers)), millis(floor), millis(median(report)), millis(median(observe)))
}

// printPerTask compares what one task's Prepare and Start took in shoal's
// workers and in the floor, over all rounds.
func printPerTask(shoal []shoalResult, floor []floorTask) {
	var sp, ss, fp, fs []time.Duration
	for _, r := range shoal {
		sp, ss = append(sp, r.timeline.prepare...), append(ss, r.timeline.start...)
	}
	for _, t := range floor {
		fp, fs = append(fp, t.Prepare), append(fs, t.Start)
	}
	fmt.Printf("per task, median over all rounds: Prepare %s in shoal vs %s in the floor; Start %s vs %s\n",
		millis(median(sp)), millis(median(fp)), millis(median(ss)), millis(median(fs)))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func secs(d time.Duration) string   { return fmt.Sprintf("%.3fs", d.Seconds()) }
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// --- CPU ---

// cpuSample is the CPU time used so far by the machine and by the
// processes of the benchmark. A process's time includes that of its reaped
// children: the CNI plugins of an executor, runc under a shim.
type cpuSample struct {
	at                           time.Time
	busy                         time.Duration // the machine, all CPUs, idle and iowait left out
	daemons, floors, ctrd, shims time.Duration
}

// cpuUse is what a round used: the difference of two samples.
type cpuUse struct {
	wall                         time.Duration
	busy                         time.Duration
	daemons, floors, ctrd, shims time.Duration
}

func (u cpuUse) String() string {
	return fmt.Sprintf("machine busy %s of %s on %d CPUs (%.0f%%): shoal daemons %s, floor children %s, containerd %s, shims+runc %s",
		millis(u.busy), millis(u.wall), runtime.NumCPU(), 100*ratio(u.busy, u.wall*time.Duration(runtime.NumCPU())),
		millis(u.daemons), millis(u.floors), millis(u.ctrd), millis(u.shims))
}

func (s cpuSample) since(s0 cpuSample) cpuUse {
	return cpuUse{wall: s.at.Sub(s0.at), busy: s.busy - s0.busy, daemons: s.daemons - s0.daemons,
		floors: s.floors - s0.floors, ctrd: s.ctrd - s0.ctrd, shims: s.shims - s0.shims}
}

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpu samples the machine and the processes. Shims that exited since the
// last sample are lost, so rounds sample before they create and before
// they remove.
func (bc *createBench) cpu() cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			if i != 3 && i != 4 && i < 8 { // idle, iowait; guest is in user already
				s.busy += time.Duration(n) * clockTick
			}
		}
	}
	for i := 1; i <= createNodes; i++ {
		s.daemons += procCPU(bc.sc.node(i).PID())
	}
	for _, f := range bc.floors {
		s.floors += procCPU(f.pid)
	}
	config := filepath.Join(filepath.Dir(bc.sc.containerd), "config.toml")
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := string(b)
		switch {
		case strings.HasPrefix(cmd, "containerd\x00") && strings.Contains(cmd, config):
			s.ctrd += procCPU(pid)
		case strings.Contains(cmd, "containerd-shim") && strings.Contains(cmd, bc.sc.containerd):
			s.shims += procCPU(pid)
		}
	}
	return s
}

// procCPU is a process's user and system time with its reaped children's.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	var total time.Duration
	for _, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		if k < len(f) {
			n, _ := strconv.ParseInt(f[k], 10, 64)
			total += time.Duration(n) * clockTick
		}
	}
	return total
}

// keepLogs copies the daemons' logs and the floor children's into dir, if
// dir is set, for reading after the run.
func (bc *createBench) keepLogs(dir string) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		bc.tb.Errorf("keeping logs: %v", err)
		return
	}
	for i := 1; i <= createNodes; i++ {
		if b, err := os.ReadFile(bc.sc.node(i).LogPath); err == nil {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("node-%02d.log", i)), b, 0o644)
		}
	}
	for i, f := range bc.floors {
		f.mu.Lock()
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("floor-%02d.log", i+1)), f.log.Bytes(), 0o644)
		f.mu.Unlock()
	}
	fmt.Printf("logs kept in %s\n", dir)
}
