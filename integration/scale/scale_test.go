package scale

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// serviceName and serviceImage make the service under test; the fake
// executor never pulls the image.
const (
	serviceName  = "scale"
	serviceImage = "registry.invalid/scale:latest"
)

// scaleConfig is one run: how many nodes, how many replicas, how long each
// phase may take, and where progress goes.
type scaleConfig struct {
	nodes, tasks    int
	readyTimeout    time.Duration // all nodes joined and Ready
	convergeTimeout time.Duration // the manager reports every replica running
	logf            func(format string, args ...any)
}

// scaleResult is what a run saw. Converge times count from just before
// the service is created.
type scaleResult struct {
	join  time.Duration // every node has its certificate
	ready time.Duration // and the manager lists all of them Ready
	// One join (root CA, key, certificate), joinParallelism at a time:
	// median and slowest.
	joinP50, joinMax time.Duration
	// CPU (user+sys) from the first join until all are Ready: the
	// manager's, this process's, and the rest of the machine's.
	joinManagerCPU, joinSelfCPU, joinOthersCPU time.Duration

	// When a quarter, half, three quarters and all of the tasks were in
	// the nodes' assignments, and running on the nodes.
	assigned, started [4]time.Duration
	converged         time.Duration // the manager reports every task running

	// CPU (user+sys) in the converge window, as for the join.
	managerCPU, selfCPU, othersCPU time.Duration
	// Session messages the nodes received in the converge window (each
	// carries the node's whole task list), and Raft entries written.
	messages, entries int

	managerPeakKB, managerRSSKB int64 // VmHWM and VmRSS at the end
	perNode                     []int // tasks running on each simulated node
	sessions                    int   // sessions the nodes opened, all told
}

// runScale builds the swarm, creates the service and waits until the
// manager reports all of its replicas running.
func runScale(tb testing.TB, cfg scaleConfig) scaleResult {
	tb.Helper()
	var r scaleResult
	s := newSwarm(tb, uint64(2*cfg.nodes+1024))
	pid := s.daemon.PID()

	stopPerf := perfRecord(tb, pid, "join")
	s.joinAll(cfg, &r)
	stopPerf()
	cfg.logf("%d nodes joined in %s, all Ready after %s", cfg.nodes, r.join.Round(time.Millisecond), r.ready.Round(time.Millisecond))

	stopPerf = perfRecord(tb, pid, "converge")
	s.converge(cfg, &r)
	stopPerf()

	var err error
	if r.managerPeakKB, err = procStatusKB(pid, "VmHWM"); err != nil {
		tb.Fatal(err)
	}
	if r.managerRSSKB, err = procStatusKB(pid, "VmRSS"); err != nil {
		tb.Fatal(err)
	}
	for _, n := range s.nodes {
		r.perNode = append(r.perNode, n.exec.Running())
		r.sessions += int(n.sessions.Load())
	}
	s.checkPlacement(context.Background(), cfg.tasks)
	return r
}

// joinAll joins the simulated nodes and waits until all are Ready.
func (s *swarm) joinAll(cfg scaleConfig, r *scaleResult) {
	s.tb.Helper()
	pid := s.daemon.PID()
	cpu0 := cpuNow(s.tb, pid)
	begin := time.Now()
	took, err := s.join(context.Background(), cfg.nodes)
	if err != nil {
		s.tb.Fatalf("joining %d simulated nodes: %v", cfg.nodes, err)
	}
	r.join = time.Since(begin)
	r.joinP50, r.joinMax = took[len(took)/2], took[len(took)-1]
	s.waitReady(cfg.nodes+1, cfg.readyTimeout)
	r.ready = time.Since(begin)
	r.joinManagerCPU, r.joinSelfCPU, r.joinOthersCPU = cpuNow(s.tb, pid).since(cpu0)
}

// converge creates the service and waits until the manager reports all of
// its tasks running; a benchmark's timer runs only meanwhile.
func (s *swarm) converge(cfg scaleConfig, r *scaleResult) {
	s.tb.Helper()
	ctx := context.Background()
	pid := s.daemon.PID()
	cpu0 := cpuNow(s.tb, pid)
	msgs0, index0 := s.messages(), s.raftIndex()
	b, isBench := s.tb.(*testing.B)
	if isBench {
		b.StartTimer()
	}
	start := time.Now()
	_, err := s.control.CreateService(ctx, &api.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name: serviceName, Replicas: uint64(cfg.tasks), Container: &api.ContainerSpec{Image: serviceImage},
	}})
	if err != nil {
		s.tb.Fatalf("creating the service: %v", err)
	}
	s.waitConverged(ctx, cfg, start, r)
	if isBench {
		b.StopTimer()
	}
	r.managerCPU, r.selfCPU, r.othersCPU = cpuNow(s.tb, pid).since(cpu0)
	r.messages, r.entries = s.messages()-msgs0, int(s.raftIndex()-index0)
}

// waitConverged watches the run: what the simulated nodes have (cheap, in
// this process) every 10 ms, and what the manager reports through
// ListServices, every 250 ms while the nodes are still starting tasks and
// every 50 ms once they run them all. ListServices copies every task on
// the manager, so asking it less often while the work is under way keeps
// the measurement from slowing what it measures.
func (s *swarm) waitConverged(ctx context.Context, cfg scaleConfig, start time.Time, r *scaleResult) {
	s.tb.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var asked, told time.Time
	var reported uint64
	var lastErr error
	for {
		now := time.Since(start)
		assigned, running := s.local()
		for q := range 4 {
			if r.assigned[q] == 0 && 4*assigned >= (q+1)*cfg.tasks {
				r.assigned[q] = now
			}
			if r.started[q] == 0 && 4*running >= (q+1)*cfg.tasks {
				r.started[q] = now
			}
		}
		every := 250 * time.Millisecond
		if running >= cfg.tasks {
			every = 50 * time.Millisecond
		}
		if time.Since(asked) >= every {
			asked = time.Now()
			reported, lastErr = s.running(ctx, serviceName)
			if lastErr == nil && reported >= uint64(cfg.tasks) {
				r.converged = time.Since(start)
				return
			}
		}
		if time.Since(told) >= time.Second {
			told = time.Now()
			cfg.logf("  %6.2fs: %d tasks assigned to nodes, %d running on them, %d reported running by the manager",
				now.Seconds(), assigned, running, reported)
		}
		if now > cfg.convergeTimeout {
			s.tb.Fatalf("timed out after %s waiting for %d tasks reported running: the manager reports %d (last error: %v); the nodes have %d assigned and run %d",
				cfg.convergeTimeout, cfg.tasks, reported, lastErr, assigned, running)
		}
		<-tick.C
	}
}

// checkPlacement checks, through the manager, that every task runs on a
// simulated node and none on the drained manager.
func (s *swarm) checkPlacement(ctx context.Context, tasks int) {
	s.tb.Helper()
	resp, err := s.control.ListTasks(ctx, &api.ListTasksRequest{Service: serviceName})
	if err != nil {
		s.tb.Fatalf("listing tasks: %v", err)
	}
	sims := map[string]bool{}
	for _, n := range s.nodes {
		sims[n.id] = true
	}
	running := 0
	for _, t := range resp.Tasks {
		if t.DesiredState != api.TaskState_RUNNING {
			continue
		}
		if !sims[t.NodeId] {
			s.tb.Errorf("task %s.%d is on %s (%s), not on a simulated node", serviceName, t.Slot, resp.NodeNames[t.NodeId], t.NodeId)
		}
		if t.GetStatus().GetState() == api.TaskState_RUNNING {
			running++
		}
	}
	if running != tasks {
		s.tb.Errorf("the manager lists %d tasks running, want %d", running, tasks)
	}
}

// report prints a run's figures.
func (r scaleResult) report(nodes, tasks int) string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	cpu := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	quarters := func(q [4]time.Duration) string {
		s := make([]string, len(q))
		for i, d := range q {
			s[i] = ms(d)
		}
		return strings.Join(s, " / ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "scale: %d simulated nodes, one service of %d replicas\n", nodes, tasks)
	fmt.Fprintf(&b, "  join:      %d nodes joined in %s (%.0f joins/s), all Ready after %s\n",
		nodes, ms(r.join), float64(nodes)/r.join.Seconds(), ms(r.ready))
	fmt.Fprintf(&b, "             one join (%d at a time) took %s (median), %s at most\n",
		joinParallelism, ms(r.joinP50), ms(r.joinMax))
	fmt.Fprintf(&b, "             CPU meanwhile: manager %s, simulated nodes %s, other processes %s (of %s on %d CPUs)\n",
		cpu(r.joinManagerCPU), cpu(r.joinSelfCPU), cpu(r.joinOthersCPU), cpu(r.ready*time.Duration(runtime.NumCPU())), runtime.NumCPU())
	fmt.Fprintf(&b, "  converge:  all running as the manager reports after %s: %.0f tasks/s\n",
		ms(r.converged), float64(tasks)/r.converged.Seconds())
	fmt.Fprintf(&b, "             25/50/75/100%% in the nodes' assignments after %s\n", quarters(r.assigned))
	fmt.Fprintf(&b, "             25/50/75/100%% running on the nodes after      %s\n", quarters(r.started))
	fmt.Fprintf(&b, "             CPU meanwhile: manager %s, simulated nodes %s, other processes %s (of %s on %d CPUs)\n",
		cpu(r.managerCPU), cpu(r.selfCPU), cpu(r.othersCPU), cpu(r.converged*time.Duration(runtime.NumCPU())), runtime.NumCPU())
	fmt.Fprintf(&b, "             %d Raft entries; %d session messages to the nodes (%.1f per node)\n",
		r.entries, r.messages, float64(r.messages)/float64(nodes))
	fmt.Fprintf(&b, "  placement: %d to %d tasks per node; %d sessions opened by %d nodes\n",
		slices.Min(r.perNode), slices.Max(r.perNode), r.sessions, nodes)
	fmt.Fprintf(&b, "  manager:   peak RSS (VmHWM) %.1f MB, RSS at the end %.1f MB\n",
		float64(r.managerPeakKB)/1024, float64(r.managerRSSKB)/1024)
	return b.String()
}

// TestScaleSmall is the benchmark at a size CI runs in seconds: 20
// simulated nodes and 200 replicas, which the spread scheduler must place
// 10 on each node.
func TestScaleSmall(t *testing.T) {
	const nodes, tasks = 20, 200
	r := runScale(t, scaleConfig{
		nodes: nodes, tasks: tasks,
		readyTimeout: 30 * time.Second, convergeTimeout: 30 * time.Second,
		logf: t.Logf,
	})
	t.Log(r.report(nodes, tasks))
	if len(r.perNode) != nodes {
		t.Fatalf("%d simulated nodes run, want %d", len(r.perNode), nodes)
	}
	sum := 0
	for i, n := range r.perNode {
		sum += n
		if n < tasks/nodes-1 || n > tasks/nodes+1 {
			t.Errorf("node %d runs %d tasks, want %d ± 1 (spread)", i+1, n, tasks/nodes)
		}
	}
	if sum != tasks {
		t.Errorf("the simulated nodes run %d tasks in all, want %d", sum, tasks)
	}
}

// BenchmarkScale joins SHOAL_SCALE_NODES simulated nodes (default 1,000),
// creates a service of SHOAL_SCALE_TASKS replicas (default 10,000) and
// measures the time until the manager reports them all running, and the
// manager's peak memory. Goal: at most 2 s (5,000 tasks/s) and 500 MB.
//
//	make bench-scale
func BenchmarkScale(b *testing.B) {
	nodes := envInt(b, "SHOAL_SCALE_NODES", 1000)
	tasks := envInt(b, "SHOAL_SCALE_TASKS", 10000)
	for range b.N {
		b.StopTimer()
		r := runScale(b, scaleConfig{
			nodes: nodes, tasks: tasks,
			readyTimeout:    2*time.Minute + time.Duration(nodes)*50*time.Millisecond,
			convergeTimeout: 2*time.Minute + time.Duration(tasks)*20*time.Millisecond,
			logf:            func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
		})
		fmt.Print(r.report(nodes, tasks))
		b.ReportMetric(r.converged.Seconds(), "s-to-running")
		b.ReportMetric(float64(tasks)/r.converged.Seconds(), "tasks/s")
		b.ReportMetric(float64(r.managerPeakKB)/1024, "peak-MB")
		b.ReportMetric(r.join.Seconds(), "join-s")
		b.ReportMetric(r.managerCPU.Seconds(), "manager-cpu-s")
	}
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
