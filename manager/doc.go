// Package manager is a manager node's cluster port and its cluster logic:
// the Control API (nodes, join tokens), the CA service that admits nodes
// with join tokens, the dispatcher that holds every node's session and turns
// heartbeats into node status, and the Raft membership calls between
// managers. Every call is authorised from the peer's certificate; writes that
// reach a follower are forwarded to the leader in one place (forward.go).
//
// It owns no state of its own beyond sessions and reachability: the cluster
// state is the raftstore FSM, and the node's certificate comes from pki.
// It must not run containers or know about the local control socket.
package manager
