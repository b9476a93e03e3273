package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/raftstore"
	"github.com/shoal-dev/shoal/transport"
)

// Config is what a manager needs to run.
type Config struct {
	ListenAddr    string // cluster port, host:port
	AdvertiseAddr string // host:port other nodes reach this manager at
	Holder        *pki.Holder
	Raft          raftstore.Config // DataDir and timings; NodeID and Addr are filled in
	Bootstrap     bool             // first manager of a new cluster
	// ForceNewCluster rewrites the Raft configuration to this manager alone
	// before starting (swarm init --force-new-cluster).
	ForceNewCluster bool

	HeartbeatPeriod time.Duration // told to agents; Down after DownAfter periods missed
	DownAfter       int
	// ReconnectGrace is how long a new leader waits for nodes to reconnect
	// before it marks them down.
	ReconnectGrace time.Duration
	ProbeInterval  time.Duration // how often managers ping each other
	Metrics        *Metrics      // nil: none
	Logger         *slog.Logger
}

// DefaultConfig returns the settings shoal runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		ListenAddr:      "0.0.0.0:2377",
		Raft:            raftstore.DefaultConfig(),
		HeartbeatPeriod: time.Second,
		DownAfter:       3,
		ReconnectGrace:  3 * time.Second,
		ProbeInterval:   500 * time.Millisecond,
	}
}

// Validate says what is wrong with a Config.
func (c Config) Validate() error {
	switch {
	case c.Holder == nil:
		return errors.New("manager: no node certificate")
	case c.AdvertiseAddr == "":
		return errors.New("manager: no advertise address")
	case c.HeartbeatPeriod <= 0 || c.DownAfter < 1:
		return fmt.Errorf("manager: heartbeat period %s and down-after %d must be positive", c.HeartbeatPeriod, c.DownAfter)
	case c.ProbeInterval <= 0:
		return errors.New("manager: probe interval must be positive")
	}
	return nil
}

// Manager is a running manager: cluster port, Raft, and the leader's loops.
type Manager struct {
	cfg    Config
	id     pki.Identity
	log    *slog.Logger
	mux    *transport.Mux
	store  *raftstore.Store
	server *grpc.Server
	peers  *peerConns
	probe  *prober
	disp   *dispatcher
	events *eventBus
	fsm    atomic.Pointer[raftstore.FSM] // set once Raft is open
	// appliedTerm is the term in which this manager, as leader, has
	// applied everything committed before it led.
	appliedTerm atomic.Uint64
	joinMu      sync.Mutex // joins one at a time: subnets

	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// New starts a manager: it opens the cluster port, starts Raft on its data
// dir (bootstrapping a one-manager cluster if asked) and serves the cluster
// API. It returns once serving; leadership comes when Raft decides.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{cfg: cfg, id: cfg.Holder.Identity(), log: log.With("component", "manager")}
	m.peers = newPeerConns(func() *tls.Config { return cfg.Holder.ClientConfig(pki.ManagerOU) })

	mux, err := transport.Listen(cfg.ListenAddr, cfg.Holder.ServerConfig(transport.ProtoGRPC, transport.ProtoRaft), m.authorizeRaft, m.log)
	if err != nil {
		return nil, err
	}
	m.mux = mux
	layer, err := mux.RaftLayer(cfg.AdvertiseAddr, func() *tls.Config { return cfg.Holder.ClientConfig(pki.ManagerOU) })
	if err != nil {
		mux.Close()
		return nil, fmt.Errorf("advertise address %q: %w", cfg.AdvertiseAddr, err)
	}
	rcfg := cfg.Raft
	rcfg.NodeID, rcfg.Addr = m.id.NodeID, cfg.AdvertiseAddr
	if rcfg.Logger == nil {
		rcfg.Logger = log
	}
	if cfg.Metrics != nil {
		rcfg.ObserveCommit = func(d time.Duration) { cfg.Metrics.commit.Observe(d.Seconds()) }
	}
	if cfg.ForceNewCluster {
		if err := raftstore.ForceNewCluster(rcfg, nil); err != nil {
			mux.Close()
			return nil, fmt.Errorf("force new cluster: %w", err)
		}
	}
	store, err := raftstore.Open(rcfg, raftstore.NewTransport(layer, rcfg.Logger))
	if err != nil {
		mux.Close()
		return nil, err
	}
	m.store = store
	m.fsm.Store(store.FSM())
	m.events = newEventBus()
	store.FSM().SetEventSink(m.publish)
	if cfg.Bootstrap && !store.HasState() {
		if err := store.Bootstrap(); err != nil {
			m.Stop()
			return nil, fmt.Errorf("bootstrap Raft: %w", err)
		}
	}

	m.probe = newProber(m)
	m.disp = newDispatcher(m)
	m.server = grpc.NewServer(
		grpc.Creds(transport.Credentials()),
		grpc.ChainUnaryInterceptor(m.authorizeUnary, m.forwardUnary),
		grpc.ChainStreamInterceptor(m.authorizeStream),
	)
	api.RegisterControlServer(m.server, &control{m: m})
	api.RegisterCAServer(m.server, &caServer{m: m})
	api.RegisterDispatcherServer(m.server, m.disp)
	api.RegisterRaftMembershipServer(m.server, &membership{m: m})

	var lastLeader string
	stopObserving := store.ObserveLeader(m.leaderEvent(&lastLeader))
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = func() { cancel(); stopObserving(); m.events.close() }
	m.goRun(func() { m.server.Serve(mux.GRPCListener()) })
	m.goRun(func() { m.watchLeadership(ctx) })
	m.goRun(func() { m.probe.run(ctx) })
	return m, nil
}

func (m *Manager) goRun(f func()) {
	m.wg.Add(1)
	go func() { defer m.wg.Done(); f() }()
}

// Store is the manager's Raft store.
func (m *Manager) Store() *raftstore.Store { return m.store }

// Stop shuts the manager down: no more calls are served and Raft stops.
func (m *Manager) Stop() {
	m.stop.Do(func() {
		if m.cancel != nil {
			m.cancel()
		}
		if m.server != nil {
			m.server.Stop()
		}
		m.mux.Close()
		if m.store != nil {
			if err := m.store.Shutdown(); err != nil {
				m.log.Warn("raft shutdown", "err", err)
			}
		}
		m.wg.Wait()
		m.peers.close()
	})
}

// watchLeadership starts the leader's loops when this manager gains
// leadership and stops them when it loses it.
func (m *Manager) watchLeadership(ctx context.Context) {
	var leading *leaderLoops
	defer func() { leading.stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case isLeader := <-m.store.LeaderChanges():
			switch {
			case isLeader && leading == nil:
				m.log.Info("became leader")
				leading = m.startLeading(ctx)
			case !isLeader && leading != nil:
				m.log.Info("lost leadership")
				leading.stop()
				leading = nil
			}
		}
	}
}

// leaderLoops are the loops that run only on the leader.
type leaderLoops struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *Manager) startLeading(ctx context.Context) *leaderLoops {
	lctx, cancel := context.WithCancel(ctx)
	l := &leaderLoops{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// A new leader may not have applied all that its predecessor
		// committed; the loops must not act on a past state, and reads
		// must not answer from one (leaderReady).
		for {
			term := m.store.Term()
			err := m.store.Barrier(lctx)
			if err == nil {
				m.appliedTerm.Store(term)
				break
			}
			m.log.Warn("waiting to apply the log before leading", "err", err)
			select {
			case <-lctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		var wg sync.WaitGroup
		for _, loop := range []func(context.Context){m.disp.lead, m.reconcile} {
			wg.Add(1)
			go func() { defer wg.Done(); loop(lctx) }()
		}
		wg.Wait()
	}()
	return l
}

func (l *leaderLoops) stop() {
	if l != nil {
		l.cancel()
		<-l.done
	}
}

// InitCluster writes a new cluster's first entry once this manager leads.
func (m *Manager) InitCluster(ctx context.Context, c *api.Cluster, self *api.Node) error {
	if err := m.waitLeader(ctx); err != nil {
		return err
	}
	_, err := m.store.Apply(ctx, &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{Cluster: c, Node: self}}})
	return err
}

// waitLeader waits until this manager is the leader.
func (m *Manager) waitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !m.store.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting to become the Raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// managers lists the Raft members as peers, the leader first.
func (m *Manager) managers() []*api.Peer {
	servers, err := m.store.Servers()
	if err != nil {
		return nil
	}
	leader, _ := m.store.Leader()
	var out []*api.Peer
	for _, s := range servers {
		p := &api.Peer{NodeId: string(s.ID), Addr: string(s.Address)}
		if string(s.ID) == leader {
			out = append([]*api.Peer{p}, out...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// managerStatus is a node's MANAGER STATUS as this manager sees it.
func (m *Manager) managerStatus(servers []raft.Server, leader, id string) *api.ManagerStatus {
	for _, s := range servers {
		if string(s.ID) != id {
			continue
		}
		ms := &api.ManagerStatus{Addr: string(s.Address), Leader: id == leader, Reachability: api.Reachability_UNREACHABLE}
		if m.probe.reachable(id) {
			ms.Reachability = api.Reachability_REACHABLE
		}
		return ms
	}
	return nil
}

// authorizeRaft admits a Raft connection from a manager of this cluster.
func (m *Manager) authorizeRaft(cert *x509.Certificate) error {
	_, err := pki.Authorize(cert, m.id.ClusterID, m.isRemoved, pki.ManagerOU)
	return err
}

// isRemoved tells whether a node was removed from the cluster.
func (m *Manager) isRemoved(id string) bool {
	f := m.fsm.Load()
	return f != nil && f.IsRemoved(id)
}
