package raftstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Servers returns the latest Raft configuration: the managers and their
// Raft addresses.
func (s *Store) Servers() ([]raft.Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.raftError(err)
	}
	return f.Configuration().Servers, nil
}

// AddVoter adds a manager to the Raft configuration as a voter. It runs on
// the leader only (ErrNotLeader / ErrNoLeader as Apply) and does nothing when
// id is already a voter at addr; a voter with a new address is updated. It
// returns once the new configuration is committed, which needs the new
// server to be up: call it from that server's join request.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if err := s.awaitLeadership(ctx); err != nil {
		return err
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	for _, srv := range servers {
		if string(srv.ID) == id && string(srv.Address) == addr && srv.Suffrage == raft.Voter {
			return nil
		}
	}
	deadline := time.Now().Add(s.cfg.ApplyTimeout)
	f := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout)
	if err := s.await(ctx, f, deadline); err != nil {
		return fmt.Errorf("add raft voter %s at %s: %w", id, addr, err)
	}
	s.log.Info("raft voter added", "id", id, "addr", addr)
	return nil
}

// RemoveServer removes a manager from the Raft configuration, on the leader
// only; removing a server that is not a member does nothing. Check
// CanRemove first. The removed server may never hear of its removal (the
// leader stops replicating to it): it stays a follower that starts no
// elections until its owner calls Shutdown.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if err := s.awaitLeadership(ctx); err != nil {
		return err
	}
	servers, err := s.Servers()
	if err != nil {
		return err
	}
	member := false
	for _, srv := range servers {
		member = member || string(srv.ID) == id
	}
	if !member {
		return nil
	}
	deadline := time.Now().Add(s.cfg.ApplyTimeout)
	f := s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout)
	if err := s.await(ctx, f, deadline); err != nil {
		return fmt.Errorf("remove raft server %s: %w", id, err)
	}
	s.log.Info("raft server removed", "id", id)
	return nil
}

// CanRemove is the quorum guard for demoting or removing the manager id,
// with Swarm's rule: after the removal, the reachable voters among the rest
// must still make a quorum of the smaller configuration, (n-1)/2+1. The last
// voter cannot go (ErrLastManager). reachable reports whether a manager can
// be reached now; it must say true for the manager asking. A server that is
// not a voter can always go: it doesn't count toward quorum.
func CanRemove(servers []raft.Server, id string, reachable func(id string) bool) error {
	voters, member := 0, false
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter {
			voters++
			member = member || string(srv.ID) == id
		}
	}
	if !member {
		return nil
	}
	if voters == 1 {
		return ErrLastManager
	}
	up := 0
	for _, srv := range servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != id && reachable(string(srv.ID)) {
			up++
		}
	}
	if quorum := (voters-1)/2 + 1; up < quorum {
		return ErrQuorumLoss
	}
	return nil
}
