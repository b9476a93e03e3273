// Package raftstore owns shoal's replicated state: a hashicorp/raft node, the
// FSM that holds the cluster objects (cluster settings and CA, nodes), the
// bbolt log and stable store (DataDir/raft.db) and the file snapshot store
// (DataDir/snapshots).
//
// Every change is an api.Command applied through Raft on the leader with
// Store.Apply; reads come from the local FSM on any manager. The package
// answers with sentinel errors (ErrNotLeader, ErrNoLeader, ErrNotFound, ...)
// that callers match with errors.Is.
//
// It must not know gRPC or TLS: forwarding a write from a follower to the
// leader, and the encrypted stream layer under Raft's transport, belong to
// the manager and transport packages. It must not read the clock in the FSM:
// commands carry the times they need.
package raftstore
