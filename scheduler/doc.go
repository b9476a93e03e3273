// Package scheduler owns placement decisions: which node each pending task
// runs on, or why it can run nowhere.
//
// It is pure logic. The leader's scheduling loop builds a view of the nodes
// (NodeInfo) and a batch of pending tasks, calls Schedule, and writes the
// decisions back through Raft itself. This package must not know Raft, gRPC
// or the store, must not wait, and must not keep state between calls: the
// same view always gives the same decisions.
//
// Placement follows Docker Swarm: a list of filters drops the nodes that
// cannot take a task (not ready, not active, a host-mode port it publishes
// already in use; later constraints and resources), and the spread strategy ranks the rest by how many active
// tasks of the task's service they run, then by how many active tasks they
// run in all. A task that fits nowhere gets Swarm's explanation, for example
// "no suitable node (2 nodes down; 1 node not available for new tasks)".
package scheduler
