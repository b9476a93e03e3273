package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/manager"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/worker"
	"github.com/shoal-dev/shoal/worker/containerd"
	"github.com/shoal-dev/shoal/worker/mesh"
)

// Config is a daemon's settings: flags of `shoal daemon`.
type Config struct {
	DataDir       string
	Socket        string // unix:///path or /path
	Hostname      string
	EngineVersion string
	Manager       manager.Config // timings; addresses and certificate are set per node
	Containerd    containerd.Config
	// DashboardAddr, when set, serves the web dashboard there and
	// Prometheus metrics on /metrics (--dashboard-addr).
	DashboardAddr string
	Logger        *slog.Logger
}

// DefaultConfig returns the daemon's defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		DataDir:    "/var/lib/shoal",
		Socket:     "unix:///run/shoal/shoal.sock",
		Hostname:   host,
		Manager:    manager.DefaultConfig(),
		Containerd: containerd.DefaultConfig(),
	}
}

// Validate says what is wrong with a Config.
func (c Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("no data directory: give --data-dir")
	case c.Hostname == "":
		return errors.New("no hostname: give --hostname")
	case socketPath(c.Socket) == "":
		return fmt.Errorf("control socket %q: give -H unix:///path/to/shoal.sock", c.Socket)
	}
	return nil
}

func socketPath(s string) string {
	if p, ok := strings.CutPrefix(s, "unix://"); ok {
		return p
	}
	if strings.Contains(s, "://") {
		return ""
	}
	return s
}

// Daemon is one node.
type Daemon struct {
	cfg Config
	log *slog.Logger

	mu      ctxMutex // held by init, join, leave and role changes
	state   *State   // nil when in no swarm
	holder  *pki.Holder
	remotes *worker.Remotes
	stopAgt context.CancelFunc
	agtDone chan struct{}

	renewAt time.Time  // when to renew the certificate
	rnd     *rand.Rand // draws renewal times

	exec  *lazyExecutor
	tasks *worker.TaskManager // nil when in no swarm
	mesh  *mesh.Mesh          // nil when in no swarm

	mgr     atomic.Pointer[manager.Manager]
	desired atomic.Int32 // desired role from the last session message
	kick    chan struct{}
}

func (d *Daemon) manager() *manager.Manager { return d.mgr.Load() }

func (d *Daemon) certDir() string { return filepath.Join(d.cfg.DataDir, "certificates") }
func (d *Daemon) raftDir() string { return filepath.Join(d.cfg.DataDir, "raft") }

// Run serves the control socket and runs the node until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Containerd.StateDir = filepath.Join(cfg.DataDir, "executor")
	cfg.Containerd.Logger = cfg.Logger
	d := &Daemon{cfg: cfg, log: cfg.Logger.With("component", "daemon"), kick: make(chan struct{}, 1), mu: newCtxMutex(),
		exec: &lazyExecutor{cfg: cfg.Containerd},
		rnd:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	if cfg.DashboardAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		d.cfg.Manager.Metrics = manager.NewMetrics(reg, d.manager)
		_, stop, err := serveDashboard(cfg.DashboardAddr, socketPath(cfg.Socket), reg, cfg.Logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return err
	}
	if st != nil {
		d.mu.Lock()
		err := d.start(st, manager.Config{})
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("rejoin swarm %s as node %s: %w", st.ClusterID, st.NodeID, err)
		}
		d.log.Info("back in the swarm", "node", st.NodeID, "role", st.Role)
	}

	ln, err := listenSocket(socketPath(cfg.Socket))
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(manager.LocalUnary(d.manager)))
	api.RegisterSwarmServer(srv, &swarmServer{d: d})
	api.RegisterControlServer(srv, manager.NewControl(d.manager))
	go srv.Serve(ln)
	go d.roles(ctx)
	d.log.Info("serving", "socket", cfg.Socket, "data-dir", cfg.DataDir)

	<-ctx.Done()
	srv.Stop()
	d.mu.Lock()
	d.stop()
	d.mu.Unlock()
	d.exec.close()
	return nil
}

func listenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("another daemon already serves %s", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, os.Chmod(path, 0o660)
}

// start runs the node's parts for st: the manager if st says so, and the
// agent. extra carries one-off manager settings (bootstrap, force).
// Called with mu held.
func (d *Daemon) start(st *State, extra manager.Config) error {
	key, cert, ca, err := pki.LoadNodeFiles(d.certDir())
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	h, err := pki.NewHolder(key, cert, ca)
	if err != nil {
		return err
	}
	d.holder = h
	d.state = st
	d.renewAt = pki.RenewAt(h.Leaf(), d.rnd)
	d.desired.Store(int32(st.Role))
	if st.Role == api.NodeRole_MANAGER {
		if err := d.startManager(extra); err != nil {
			d.state, d.holder = nil, nil
			return err
		}
	}
	d.remotes = worker.NewRemotes(st.Managers, func() *tls.Config { return h.ClientConfig(pki.ManagerOU) })
	var agent *worker.Agent
	tasks := worker.NewTaskManager(d.exec, func(ctx context.Context, u []*api.TaskStatusUpdate) error {
		return agent.Report(ctx, u)
	}, d.cfg.Logger)
	d.tasks = tasks
	d.mesh = mesh.New(st.NodeID, d.cfg.Logger.With("component", "mesh"))
	actx, cancel := context.WithCancel(context.Background())
	agent = worker.New(worker.Config{
		Remotes:       d.remotes,
		Hostname:      d.cfg.Hostname,
		EngineVersion: d.cfg.EngineVersion,
		OnMessage:     func(msg *api.SessionMessage) { d.onSession(actx, msg) },
		Logger:        d.cfg.Logger,
	})
	done := make(chan struct{})
	d.stopAgt, d.agtDone = cancel, done
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); agent.Run(actx) }()
	go func() { defer wg.Done(); tasks.Run(actx) }()
	go func() { defer wg.Done(); refreshMesh(actx, d.mesh, d.log) }()
	go func() { wg.Wait(); close(done) }()
	return nil
}

// meshRefresh is how often the routing mesh is applied again, in case
// something else changed the node's rules or routes, or applying failed.
const meshRefresh = 30 * time.Second

func refreshMesh(ctx context.Context, m *mesh.Mesh, log *slog.Logger) {
	t := time.NewTicker(meshRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Refresh(); err != nil {
				log.Warn("routing mesh not fully applied; retried within a minute", "err", err)
			}
		}
	}
}

func (d *Daemon) startManager(extra manager.Config) error {
	mc := d.cfg.Manager
	mc.Holder = d.holder
	mc.ListenAddr = d.state.ListenAddr
	mc.AdvertiseAddr = d.state.AdvertiseAddr
	mc.Raft.DataDir = d.raftDir()
	mc.Bootstrap = extra.Bootstrap
	mc.ForceNewCluster = extra.ForceNewCluster
	mc.Logger = d.cfg.Logger
	m, err := manager.New(mc)
	if err != nil {
		return err
	}
	d.mgr.Store(m)
	return nil
}

func (d *Daemon) stopManager() {
	if m := d.mgr.Swap(nil); m != nil {
		m.Stop()
	}
}

// stop ends the agent and the manager. Called with mu held.
func (d *Daemon) stop() {
	if d.stopAgt != nil {
		d.stopAgt()
		<-d.agtDone
		d.stopAgt = nil
	}
	d.stopManager()
	if d.remotes != nil {
		d.remotes.Reset()
	}
	d.tasks, d.mesh = nil, nil
}

// onSession records what the agent's session says: the managers, and the
// role the cluster wants this node to have. It gives up when ctx, the
// agent's, ends: stop holds mu while it waits for the agent, and the agent
// waits for this call.
func (d *Daemon) onSession(ctx context.Context, msg *api.SessionMessage) {
	if msg.Node != nil {
		d.desired.Store(int32(msg.Node.DesiredRole))
	}
	if !d.mu.LockCtx(ctx) {
		return // the agent is being stopped: its news no longer matters
	}
	if msg.TasksSet && d.tasks != nil {
		d.tasks.Assign(msg.Tasks, msg.Node.GetSubnet())
	}
	if st := d.state; st != nil && len(msg.Managers) > 0 {
		addrs := make([]string, 0, len(msg.Managers))
		for _, p := range msg.Managers {
			addrs = append(addrs, p.Addr)
		}
		if !slices.Equal(addrs, st.Managers) {
			st.Managers = addrs
			if err := saveState(d.cfg.DataDir, st); err != nil {
				d.log.Warn("saving manager list", "err", err)
			}
		}
	}
	mesh := d.mesh
	d.mu.Unlock()
	// Outside mu: it runs ip and iptables, and has a lock of its own.
	if mesh != nil {
		if err := mesh.Apply(msg.Network); err != nil {
			d.log.Warn("routing mesh not fully applied; retried within a minute", "err", err)
		}
	}
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// roles applies role changes and renews the certificate when it ages.
func (d *Daemon) roles(ctx context.Context) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-retry.C:
		}
		d.mu.Lock()
		if d.state != nil {
			renew := !time.Now().Before(d.renewAt)
			want := api.NodeRole(d.desired.Load())
			if want != d.state.Role || renew {
				if err := d.changeRole(ctx, want); err != nil {
					d.log.Warn("certificate renewal or role change failed; will retry", "want", want, "err", err)
				}
			}
		}
		d.mu.Unlock()
	}
}

// changeRole gets a new certificate from the managers, with the role the
// cluster has for this node, and starts or stops the manager to match.
// Called with mu held.
func (d *Daemon) changeRole(ctx context.Context, want api.NodeRole) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	key, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return err
	}
	var resp *api.RenewNodeCertificateResponse
	err = d.remotes.Call(ctx, func(ctx context.Context, c *grpc.ClientConn) error {
		var err error
		resp, err = api.NewCAClient(c).RenewNodeCertificate(ctx, &api.RenewNodeCertificateRequest{CsrPem: csr})
		return err
	})
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	if err := pki.SaveNodeFiles(d.certDir(), key, resp.CertPem, d.holder.CAPEM()); err != nil {
		return err
	}
	if err := d.holder.Update(key, resp.CertPem); err != nil {
		return err
	}
	d.renewAt = pki.RenewAt(d.holder.Leaf(), d.rnd)
	d.remotes.Reset()
	st := d.state
	if resp.Role == st.Role {
		return nil
	}
	d.log.Info("role changed", "from", st.Role, "to", resp.Role)
	switch resp.Role {
	case api.NodeRole_MANAGER:
		if st.ListenAddr == "" {
			st.ListenAddr = fmt.Sprintf("0.0.0.0:%d", DefaultPort)
		}
		if st.AdvertiseAddr == "" {
			if st.AdvertiseAddr, err = advertiseAddr("", st.ListenAddr); err != nil {
				return err
			}
		}
		if err := d.startManager(manager.Config{}); err != nil {
			return err
		}
		if err := d.joinRaft(ctx); err != nil {
			d.stopManager()
			return err
		}
	case api.NodeRole_WORKER:
		d.stopManager()
		if err := os.RemoveAll(d.raftDir()); err != nil {
			d.log.Warn("removing Raft data", "err", err)
		}
	}
	st.Role = resp.Role
	return saveState(d.cfg.DataDir, st)
}

// joinRaft asks the leader to add this manager as a voter, retrying while
// the cluster elects or the leader is busy.
func (d *Daemon) joinRaft(ctx context.Context) error {
	var last error
	for ctx.Err() == nil {
		last = d.remotes.Call(ctx, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := api.NewRaftMembershipClient(c).Join(ctx, &api.RaftJoinRequest{Addr: d.state.AdvertiseAddr})
			return err
		})
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("join Raft: %w", last)
}

// ctxMutex is a mutex whose holder may wait for a goroutine that wants it
// too: LockCtx gives up when a context ends.
type ctxMutex chan struct{}

func newCtxMutex() ctxMutex { return make(ctxMutex, 1) }

func (m ctxMutex) Lock()   { m <- struct{}{} }
func (m ctxMutex) Unlock() { <-m }

// LockCtx locks m, or returns false once ctx has ended.
func (m ctxMutex) LockCtx(ctx context.Context) bool {
	select {
	case m <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}
