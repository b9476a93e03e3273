package raftstore

import "errors"

// Errors born in this package. Match them with errors.Is; the FSM wraps the
// last four with the object they concern, as in "node abc: not found".
var (
	// ErrNotLeader: this manager is a follower and knows who leads; the
	// caller forwards the request to Leader().
	ErrNotLeader = errors.New("this manager is not the Raft leader")

	// ErrNoLeader: no leader is known, or leadership was lost while a change
	// was being committed. The text is Docker Swarm's, capitals included.
	ErrNoLeader = errors.New("The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.") //nolint:staticcheck // Swarm's words

	// ErrLastManager and ErrQuorumLoss are CanRemove's refusals, in Swarm's words.
	ErrLastManager = errors.New("attempting to demote the last manager of the swarm")
	ErrQuorumLoss  = errors.New("can't remove member from the raft: this would result in a loss of quorum")

	// ErrNotFound: the object a command names is missing.
	ErrNotFound = errors.New("not found")
	// ErrExists: the object a command creates is already there.
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("changed since it was read")
	// ErrRemoved: the node ID was removed from the swarm and cannot come back.
	ErrRemoved = errors.New("was removed from the swarm")

	// ErrShutdown: this store's Raft has stopped, either by Shutdown or
	// because this manager was removed from the Raft configuration.
	ErrShutdown = errors.New("raft is shut down on this manager")
)
