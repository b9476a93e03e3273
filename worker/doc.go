// Package worker is the agent every node runs: it holds a session with the
// leader's dispatcher, heartbeats, learns the list of managers and moves to
// another manager when its own goes away, and hands what the session says
// about this node (its desired role) to the daemon.
//
// It must not touch Raft or the cluster state: it knows the managers only
// through their cluster port.
package worker
