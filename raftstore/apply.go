package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

const (
	leaderPoll       = 10 * time.Millisecond // how often Apply looks for a new leader
	appliedPoll      = 25 * time.Millisecond // WaitApplied's check for entries the FSM never sees
	maxEffectlessRun = 64                    // longest run of no-op entries WaitApplied looks through
)

// Apply runs one command through Raft and returns the FSM's answer: the log
// index (a uint64) at which the command took effect, which another manager
// can pass to WaitApplied. An FSM refusal (ErrNotFound, ErrExists, ...) comes
// back as the error.
//
// Only the leader applies. A follower that knows the leader returns
// ErrNotLeader at once, for the caller to forward. With no leader known it
// waits up to LeaderWait for an election: ErrNoLeader if none comes,
// ErrNotLeader if another server wins. Once the command is in Raft, Apply
// waits at most ApplyTimeout or until ctx ends; a leader that loses its
// quorum steps down within about two LeaderLeaseTimeouts, and Apply then
// returns ErrNoLeader (the command may or may not be committed later).
func (s *Store) Apply(ctx context.Context, cmd *api.Command) (any, error) {
	if cmd.GetOp() == nil {
		return nil, errors.New("raft apply: empty command")
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("raft apply: encode command: %w", err)
	}
	if err := s.awaitLeadership(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(s.cfg.ApplyTimeout)
	f := s.raft.Apply(data, s.cfg.ApplyTimeout)
	if err := s.await(ctx, f, deadline); err != nil {
		return nil, err
	}
	if s.cfg.ObserveCommit != nil {
		s.cfg.ObserveCommit(time.Since(start))
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

// leadership says where a change can run now: nil when this server leads,
// ErrNotLeader when another server does, ErrNoLeader when none is known.
func (s *Store) leadership() error {
	switch s.raft.State() {
	case raft.Leader:
		return nil
	case raft.Shutdown:
		return ErrShutdown
	}
	if _, id := s.raft.LeaderWithID(); id != "" && string(id) != s.cfg.NodeID {
		return ErrNotLeader
	}
	return ErrNoLeader
}

// awaitLeadership waits up to LeaderWait for a known leader, and returns nil
// if it is this server.
func (s *Store) awaitLeadership(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.LeaderWait)
	tick := time.NewTicker(leaderPoll)
	defer tick.Stop()
	for {
		err := s.leadership()
		if !errors.Is(err, ErrNoLeader) || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a raft leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// await waits for the future of a change this leader started, until
// deadline (ApplyTimeout after the start) or the end of ctx at the latest:
// Raft itself bounds only the enqueueing.
func (s *Store) await(ctx context.Context, f raft.Future, deadline time.Time) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case err := <-done:
		return s.raftError(err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for raft to commit: %w", ctx.Err())
	case <-timer.C:
		if s.leadership() != nil {
			return ErrNoLeader
		}
		return fmt.Errorf("raft did not commit the change within %s; it may still be committed: %w",
			s.cfg.ApplyTimeout, context.DeadlineExceeded)
	}
}

// raftError turns hashicorp/raft's errors into this package's.
func (s *Store) raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		// Refused before it entered the log: safe to send to the leader.
		if errors.Is(s.leadership(), ErrNotLeader) {
			return ErrNotLeader
		}
		return ErrNoLeader
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore):
		// In the log, perhaps; the outcome is unknown, so don't redirect.
		return ErrNoLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raft leader too busy to take the change within %s: %w", s.cfg.ApplyTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("raft: %w", err)
}

// WaitApplied waits until this server's FSM holds every entry up to index,
// or ctx ends. A follower calls it with the index the leader reports after a
// forwarded write, so that its next read sees the write.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	changes, cancel := s.fsm.Changes()
	defer cancel()
	tick := time.NewTicker(appliedPoll)
	defer tick.Stop()
	for !s.hasApplied(index) {
		if s.raft.State() == raft.Shutdown {
			return ErrShutdown
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for raft index %d (applied %d): %w", index, s.AppliedIndex(), ctx.Err())
		case <-changes:
		case <-tick.C:
		}
	}
	return nil
}

// hasApplied tells whether the FSM holds the effect of every entry up to
// index. The FSM never sees some entries (the no-op each new leader writes,
// barriers); those count once Raft has applied them.
func (s *Store) hasApplied(index uint64) bool {
	applied := s.fsm.appliedIndex()
	if applied >= index {
		return true
	}
	if s.raft.AppliedIndex() < index || index-applied > maxEffectlessRun {
		return false
	}
	for i := applied + 1; i <= index; i++ {
		var l raft.Log
		if err := s.disk.logs.GetLog(i, &l); err != nil {
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false // the FSM has yet to apply it
		}
	}
	return true
}
