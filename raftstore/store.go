package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/shoal-dev/shoal/api"
)

const (
	boltFile        = "raft.db"
	boltLockTimeout = time.Second // a second daemon on the same DataDir fails instead of hanging
	logCacheSize    = 512         // recent entries kept in memory for replication
	retainSnapshots = 2
)

// Store is this manager's Raft node with its FSM and on-disk stores.
type Store struct {
	cfg      Config
	log      *slog.Logger
	raft     *raft.Raft
	fsm      *FSM
	disk     *disk
	trans    raft.Transport
	hasState bool

	leaderCh  chan bool     // what LeaderChanges returns
	closing   chan struct{} // closed by Shutdown
	forwarder chan struct{} // closed when forwardLeadership has returned

	shutdownOnce sync.Once
	shutdownErr  error
}

// disk is Raft's storage under DataDir.
type disk struct {
	bolt  *raftboltdb.BoltStore // log and stable store
	logs  raft.LogStore         // bolt behind a cache of recent entries
	snaps raft.SnapshotStore
}

func openDisk(cfg Config, log *slog.Logger) (*disk, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("raft data directory: %w", err)
	}
	path := filepath.Join(cfg.DataDir, boltFile)
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: boltLockTimeout}})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process; is another shoal daemon using %s?", path, cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	logs, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, retainSnapshots, NewHCLogger(log).Named("snapshot"))
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("raft snapshot store: %w", err)
	}
	return &disk{bolt: bolt, logs: logs, snaps: snaps}, nil
}

// Open opens (or reopens) Raft on cfg.DataDir, talking to the other managers
// through trans (production: NewTransport over the cluster port's stream
// layer; tests: raft.NewInmemTransport). A new data directory starts with no
// configuration: call Bootstrap for the first manager, or let the leader add
// this one with AddVoter. On success the Store owns trans and closes it on
// Shutdown.
func Open(cfg Config, trans raft.Transport) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if trans == nil {
		return nil, errors.New("raft store: no transport")
	}
	log := cfg.logger()
	raftLog := log.With("component", "raft")
	log = log.With("component", "raftstore")
	if local := string(trans.LocalAddr()); local != cfg.Addr {
		log.Warn("the transport's address differs from the configured Raft address", "transport", local, "addr", cfg.Addr)
	}
	d, err := openDisk(cfg, raftLog)
	if err != nil {
		return nil, err
	}
	hasState, err := raft.HasExistingState(d.logs, d.bolt, d.snaps)
	if err != nil {
		d.bolt.Close()
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	fsm := NewFSM()
	// Raft blocks its main loop until NotifyCh takes a value: the buffer and
	// forwardLeadership make sure it never waits on our caller.
	notify := make(chan bool, 16)
	r, err := raft.NewRaft(cfg.raftConfig(notify, raftLog), fsm, d.logs, d.bolt, d.snaps, trans)
	if err != nil {
		d.bolt.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	s := &Store{
		cfg: cfg, log: log, raft: r, fsm: fsm, disk: d, trans: trans, hasState: hasState,
		leaderCh:  make(chan bool, 16),
		closing:   make(chan struct{}),
		forwarder: make(chan struct{}),
	}
	go s.forwardLeadership(notify)
	log.Info("raft started", "id", cfg.NodeID, "addr", cfg.Addr, "existing_state", hasState)
	return s, nil
}

// FSM is the store's state machine, for reads.
func (s *Store) FSM() *FSM { return s.fsm }

// HasState tells whether DataDir held Raft state when the store was opened.
func (s *Store) HasState() bool { return s.hasState }

// Bootstrap makes this server the single voter of a new cluster (the first
// manager, `swarm init`). It fails with raft.ErrCantBootstrap on a store
// that has state.
func (s *Store) Bootstrap() error {
	cfg := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.cfg.Addr),
	}}}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("bootstrap raft: %w", s.raftError(err))
	}
	return nil
}

// IsLeader tells whether this server is the leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Term is this server's current Raft term.
func (s *Store) Term() uint64 { return s.raft.CurrentTerm() }

// Leader returns the leader's ID and address as this server knows them;
// both are empty when it knows of no leader.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// LeaderChanges delivers true when this server becomes the leader and false
// when it stops being it, every transition in order; Raft never waits for the
// receiver. There is one channel per Store, for one consumer. It is not
// closed by Shutdown; a pending false is delivered if the buffer has room.
func (s *Store) LeaderChanges() <-chan bool { return s.leaderCh }

// forwardLeadership moves Raft's leadership notifications to leaderCh
// through an unbounded queue: Raft is never blocked, and nothing is dropped
// (transitions are rare, so the queue stays short).
func (s *Store) forwardLeadership(in <-chan bool) {
	defer close(s.forwarder)
	var queue []bool
	for {
		var out chan<- bool
		var next bool
		if len(queue) > 0 {
			out, next = s.leaderCh, queue[0]
		}
		select {
		case v := <-in:
			s.logLeadership(v)
			queue = append(queue, v)
		case out <- next:
			queue = queue[1:]
		case <-s.closing:
			// Hand over what fits without waiting: Raft's last word may be
			// the false of a leader shutting down.
			for len(in) > 0 { // Raft has stopped: nothing more will come
				v := <-in
				s.logLeadership(v)
				queue = append(queue, v)
			}
			for _, v := range queue {
				select {
				case s.leaderCh <- v:
				default:
				}
			}
			return
		}
	}
}

func (s *Store) logLeadership(leader bool) {
	if leader {
		s.log.Info("became the Raft leader", "term", s.raft.CurrentTerm())
	} else {
		s.log.Info("no longer the Raft leader")
	}
}

// AppliedIndex is the index of the last log entry whose effect this
// server's FSM holds. Unlike raft's own applied index it never runs ahead of
// the FSM, so after WaitApplied(i) a read of the FSM sees entry i.
func (s *Store) AppliedIndex() uint64 { return s.fsm.appliedIndex() }

// Info reports the Raft state for `shoal info`: state, term, leader, indexes
// (from raft.Stats) and the configured timings.
func (s *Store) Info() *api.RaftInfo {
	stats := s.raft.Stats()
	num := func(key string) uint64 {
		v, _ := strconv.ParseUint(stats[key], 10, 64)
		return v
	}
	leader, _ := s.Leader()
	return &api.RaftInfo{
		State:                stats["state"],
		Term:                 num("term"),
		LeaderId:             leader,
		LastLogIndex:         num("last_log_index"),
		CommitIndex:          num("commit_index"),
		AppliedIndex:         num("applied_index"),
		HeartbeatTimeoutNs:   int64(s.cfg.HeartbeatTimeout),
		ElectionTimeoutNs:    int64(s.cfg.ElectionTimeout),
		LeaderLeaseTimeoutNs: int64(s.cfg.LeaderLeaseTimeout),
		SnapshotThreshold:    s.cfg.SnapshotThreshold,
		LastContactUnixNano:  unixNano(s.raft.LastContact()),
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Shutdown stops Raft, then closes the transport and the bolt database. It
// may be called more than once; later calls return the first result.
func (s *Store) Shutdown() error {
	s.shutdownOnce.Do(func() {
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		close(s.closing)
		<-s.forwarder
		if c, ok := s.trans.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft transport: %w", err))
			}
		}
		if err := s.disk.bolt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", boltFile, err))
		}
		s.shutdownErr = errors.Join(errs...)
		s.log.Info("raft stopped")
	})
	return s.shutdownErr
}

// Barrier waits until every entry committed before this server became
// leader is applied to its FSM, so that the leader's loops act on the
// whole state, not on what this server had replayed so far.
func (s *Store) Barrier(ctx context.Context) error {
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if err := s.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("raft barrier: %w", s.raftError(err))
	}
	return nil
}
