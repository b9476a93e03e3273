// Package testhost builds a small LAN of test hosts out of Linux network
// namespaces, so that integration tests can run real processes on separate
// "machines" and cut them off the network the way a pulled cable would.
//
// Topology of one LAN, with tag T (random, so that runs never collide):
//
//	netns shtT-lan:   bridge br0, with one port per host (p1, p2, ...)
//	netns shtT-h1:    eth0 = 10.77.K.11/24, lo          (veth peer of p1)
//	netns shtT-h2:    eth0 = 10.77.K.12/24, lo          (veth peer of p2)
//
// Nothing of it lives in the root namespace: the bridge has its own namespace
// and carries no address, so test traffic can only reach the test hosts.
// The one exception is asked for: LAN.AttachRoot plugs the root namespace in
// as 10.77.K.1 (interface shtT-root, bridge port proot), for a test that must
// reach the hosts itself, such as a browser opening a daemon's web page.
// Processes run on a host through nsenter(1), which switches only the network
// namespace and leaves the mount namespace (and so /sys and cgroups) alone.
// Unix sockets are files, so the root namespace still reaches a daemon's
// control socket on any host.
//
// Every LAN and host registers its removal with t.Cleanup, so it goes away
// also when a test fails. A crashed test binary cannot clean up; its
// namespaces are swept by the next NewLAN (see Sweep), which tells stale
// namespaces from those of a live run by a lock that only a live process
// holds.
//
// This package must not know anything about shoal itself: it is plumbing for
// the packages that start shoal daemons (clustertest, integration).
package testhost
