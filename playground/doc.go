// Package playground runs a whole shoal cluster on one machine, for
// learning and for trying failures by hand: `shoal playground up`.
//
// Every node is a `shoal daemon` in a network namespace of its own
// (shpg-node-01, ...), with eth0 on 10.77.0.0/24 plugged into a bridge that
// lives in a namespace of its own too (shpg-lan), so nodes talk over a real
// LAN and `partition NODE` can pull a node's cable. This machine is on that
// LAN as 10.77.0.1 (interface shpg0): from here one reaches every node's
// dashboard and published ports, and the nodes reach the registry that the
// playground runs at 10.77.0.1:5000. The registry holds an nginx image built
// from this machine's nginx (there is no Docker Hub here), and every daemon
// names it as its --registry-mirror, so `service create nginx` pulls it.
//
// All nodes share one containerd: the one at /run/containerd/containerd.sock
// (or --containerd SOCKET) if it answers, else the playground's own
// (--containerd private always starts it). Each node keeps its containers
// in a containerd namespace named after its network namespace.
//
// Everything else is under the playground's directory (default
// /run/shoal-playground): state.json (what was made, for the other
// commands), each node's data dir, socket and log, the registry's storage,
// the private containerd. /run/shoal-playground.dir names the directory of
// the playground that is up, for commands given another. `down` removes all
// of it: daemons, containers, images, namespaces, mounts, the directory; it
// needs no state file, finding the nodes by their PID files and namespaces.
package playground
