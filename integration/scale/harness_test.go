package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/transport"
)

// joinParallelism is how many simulated nodes join at once.
const joinParallelism = 16

// managerName is the manager daemon's --hostname.
const managerName = "manager"

// swarm is a manager daemon on loopback, drained so that it runs no task,
// and the simulated nodes that joined it.
type swarm struct {
	tb      testing.TB
	daemon  *clustertest.Daemon
	addr    string // cluster address, 127.0.0.1:port
	token   string // worker join token
	control api.ControlClient
	info    api.SwarmClient
	nodes   []*simNode
	logs    *tailWriter // the simulated nodes' warnings
}

// newSwarm starts the manager daemon, initialises the swarm on a free
// loopback port and drains the manager.
func newSwarm(tb testing.TB, openFiles uint64) *swarm {
	tb.Helper()
	raiseOpenFiles(tb, openFiles) // before the daemon starts: it inherits the limit
	bin := clustertest.BuildShoal(tb)
	s := &swarm{tb: tb, logs: &tailWriter{max: 40}}
	s.daemon = clustertest.StartDaemon(tb, bin, nil, managerName)
	s.addr = freeLoopbackAddr(tb)
	out := s.daemon.MustCLI(tb, "swarm", "init", "--listen-addr", s.addr, "--advertise-addr", s.addr)
	if !strings.Contains(out, "Swarm initialized") {
		tb.Fatalf("swarm init printed:\n%s", out)
	}
	s.token = strings.TrimSpace(s.daemon.MustCLI(tb, "swarm", "join-token", "-q", "worker"))
	s.daemon.MustCLI(tb, "node", "update", "--availability", "drain", managerName)

	cc, err := transport.DialLocal(s.daemon.SocketPath())
	if err != nil {
		tb.Fatalf("control socket: %v", err)
	}
	tb.Cleanup(func() { cc.Close() })
	s.control = api.NewControlClient(cc)
	s.info = api.NewSwarmClient(cc)
	// Registered after the daemon's cleanup, so it runs before the kill.
	tb.Cleanup(func() {
		s.stopNodes()
		if tb.Failed() {
			tb.Logf("last warnings of the simulated nodes:\n%s", s.logs.String())
		}
	})
	return s
}

// join joins n simulated nodes, joinParallelism at a time, and starts each
// one's agent as soon as it has its certificate. It returns how long each
// join took, sorted.
func (s *swarm) join(ctx context.Context, n int) ([]time.Duration, error) {
	log := slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nodes := make([]*simNode, n)
	errs := make([]error, n)
	took := make([]time.Duration, n)
	sem := make(chan struct{}, joinParallelism)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := fmt.Sprintf("sim-%04d", i+1)
			start := time.Now()
			j, err := joinSim(ctx, s.addr, s.token, name)
			took[i] = time.Since(start)
			if err != nil {
				errs[i] = err
				return
			}
			nodes[i] = startSim(name, j, log)
		}()
	}
	wg.Wait()
	for _, nd := range nodes {
		if nd != nil {
			s.nodes = append(s.nodes, nd)
		}
	}
	slices.Sort(took)
	return took, firstErrors(errs, 3)
}

// firstErrors joins the first n errors of errs and counts the others.
func firstErrors(errs []error, n int) error {
	var first []error
	failed := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		if failed++; len(first) < n {
			first = append(first, err)
		}
	}
	if failed > n {
		first = append(first, fmt.Errorf("and %d more", failed-n))
	}
	if failed > 0 {
		return fmt.Errorf("%d failed: %w", failed, errors.Join(first...))
	}
	return nil
}

func (s *swarm) stopNodes() {
	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
	s.nodes = nil
}

// waitReady polls until the manager lists want nodes, all Ready.
func (s *swarm) waitReady(want int, timeout time.Duration) {
	s.tb.Helper()
	clustertest.WaitFor(s.tb, timeout, fmt.Sprintf("%d nodes Ready", want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := s.control.ListNodes(ctx, &api.ListNodesRequest{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range resp.Nodes {
			if n.State == api.NodeState_READY {
				ready++
			}
		}
		if len(resp.Nodes) != want || ready != want {
			return fmt.Errorf("%d nodes listed, %d Ready", len(resp.Nodes), ready)
		}
		return nil
	})
}

// running is how many tasks of the service the manager reports running.
func (s *swarm) running(ctx context.Context, service string) (uint64, error) {
	resp, err := s.control.ListServices(ctx, &api.ListServicesRequest{})
	if err != nil {
		return 0, err
	}
	for _, sum := range resp.Services {
		if sum.GetService().GetSpec().GetName() == service {
			return sum.Running, nil
		}
	}
	return 0, fmt.Errorf("no service %s", service)
}

// local sums what the simulated nodes know: tasks assigned to them and
// tasks they run.
func (s *swarm) local() (assigned, running int) {
	for _, n := range s.nodes {
		assigned += int(n.assigned.Load())
		running += n.exec.Running()
	}
	return assigned, running
}

// raftIndex is the manager's last Raft log index: every write is an entry,
// and every entry wakes each session and the reconcile loop.
func (s *swarm) raftIndex() uint64 {
	s.tb.Helper()
	resp, err := s.info.Info(context.Background(), &api.InfoRequest{})
	if err != nil {
		s.tb.Fatalf("info: %v", err)
	}
	return resp.GetRaft().GetLastLogIndex()
}

// messages is how many session messages the simulated nodes have received.
func (s *swarm) messages() int {
	sum := 0
	for _, n := range s.nodes {
		sum += int(n.messages.Load())
	}
	return sum
}

// raiseOpenFiles makes sure this process, and the daemons it starts, may
// open want files: each simulated node holds a connection, and the manager
// the other end of each. Setting the limit ourselves also makes children
// inherit it (Go otherwise gives them the limit it started with).
func raiseOpenFiles(tb testing.TB, want uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatalf("getrlimit: %v", err)
	}
	next := syscall.Rlimit{Cur: max(lim.Cur, want), Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err == nil {
		return
	}
	// Not root: as much as the hard limit allows.
	next = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil || lim.Max < want {
		tb.Fatalf("open files: need %d, the hard limit is %d (%v); raise it (ulimit -Hn) or run as root", want, lim.Max, err)
	}
}

// freeLoopbackAddr returns 127.0.0.1:port with a port free just now.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tailWriter keeps the last max lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	lines []string
	total int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w.total++
		w.lines = append(w.lines, line)
		if len(w.lines) > w.max {
			w.lines = w.lines[1:]
		}
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.total == 0 {
		return "(none)"
	}
	return fmt.Sprintf("(%d in all, the last %d:)\n%s", w.total, len(w.lines), strings.Join(w.lines, "\n"))
}
