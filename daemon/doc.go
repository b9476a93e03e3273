// Package daemon is one node's life: its state on disk (identity,
// certificates, role, managers), the local control socket, and the parts it
// runs by role — every node an agent, a manager also the manager package's
// cluster port and Raft. It performs init, join and leave, and turns a
// change of desired role (promote, demote) or an ageing certificate into a
// new certificate and, where the role changed, a manager started or stopped.
//
// It must not hold cluster state of its own: that lives in Raft.
package daemon
