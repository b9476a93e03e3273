// Package containerd is the worker.Executor that runs shoal tasks as real
// containers: it pulls images and runs containers through containerd's v2 Go
// client, and gives each task its own network namespace on a bridge through
// CNI (loopback, bridge with host-local IPAM, portmap).
//
// Every node has a containerd namespace and a state directory of its own,
// so that several nodes can share one containerd and one machine. The
// container ID is the task ID, and the container's labels (shoal.task.id,
// shoal.service.id, shoal.service.name, shoal.slot) let a restarted node
// find its containers again.
//
// A task's network namespace is pinned by a bind mount under the state
// directory from CNI ADD until Remove, so that CNI DEL can still tear down
// the veth and the masquerading rules after the task's process has exited.
//
// This package knows nothing of managers, sessions or Raft: it only does
// what the worker agent asks of an Executor.
package containerd
