package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// Config says where Raft keeps its data, who this server is, and how fast it
// reacts. DESIGN.md explains the default timings.
type Config struct {
	DataDir string // raft.db (bbolt: log and stable store) and snapshots/ live here
	NodeID  string // Raft ServerID: the node ID
	Addr    string // Raft ServerAddress: host:port other managers reach this one at

	// HeartbeatTimeout: a follower that hears nothing from the leader for this
	// long (randomised up to twice as long) starts an election. The leader
	// sends heartbeats ten times per HeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: a candidate that has not won within this long
	// (randomised up to twice as long) starts a new election.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: a leader that has not heard from a quorum for this
	// long steps down, failing the changes it was committing.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: how often an idle leader tells followers the commit index.
	CommitTimeout time.Duration

	SnapshotThreshold uint64        // snapshot once this many entries follow the last one
	SnapshotInterval  time.Duration // how often to check SnapshotThreshold
	TrailingLogs      uint64        // entries kept after a snapshot, for slow followers

	ApplyTimeout time.Duration // bound on one Apply or membership change once started
	LeaderWait   time.Duration // how long Apply waits for an election before ErrNoLeader

	Logger *slog.Logger // nil: slog.Default()
	// ObserveCommit, if set, is told how long each committed Apply took
	// from submission to the FSM's answer (commit latency, for metrics).
	ObserveCommit func(time.Duration)
}

// DefaultConfig returns shoal's Raft settings: a new leader within about a
// second of the old one dying, yet no spurious elections on a busy 2-core
// machine. DataDir, NodeID and Addr are left for the caller.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		ApplyTimeout:       5 * time.Second,
		LeaderWait:         2 * time.Second,
	}
}

// Validate says what is wrong with a Config, all of it at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("raft config: "+format, args...)) }
	if c.DataDir == "" {
		bad("no data directory")
	}
	if c.NodeID == "" {
		bad("no node ID")
	}
	if c.Addr == "" {
		bad("no Raft address")
	}
	if c.ApplyTimeout <= 0 {
		bad("apply timeout %s must be positive", c.ApplyTimeout)
	}
	if c.LeaderWait < 0 {
		bad("leader wait %s must not be negative", c.LeaderWait)
	}
	if c.SnapshotThreshold == 0 {
		bad("snapshot threshold must be positive")
	}
	// The timing rules are hashicorp/raft's own; ask it rather than copy them.
	rc := c.raftConfig(nil, nil)
	if rc.LocalID == "" {
		rc.LocalID = "validate"
	}
	if err := raft.ValidateConfig(rc); err != nil {
		bad("%v", err)
	}
	return errors.Join(errs...)
}

// raftConfig is the hashicorp/raft configuration for c.
func (c Config) raftConfig(notify chan<- bool, logger *slog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.NotifyCh = notify
	if logger != nil {
		rc.Logger = NewHCLogger(logger)
	}
	return rc
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
