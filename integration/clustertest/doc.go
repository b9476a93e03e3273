// Package clustertest runs real `shoal daemon` processes for integration
// tests: on test hosts made by testhost (or in the root namespace, for
// loopback-only tests), each with its own data directory, control socket and
// log file under a short temp dir of the test's own.
//
// A typical test:
//
//	bin := clustertest.BuildShoal(t)
//	lan := testhost.NewLAN(t)
//	d1 := clustertest.StartDaemon(t, bin, lan.AddHost(t, "node-01"), "node-01")
//	d1.MustCLI(t, "swarm", "init", "--advertise-addr", d1.Host.IP)
//	d1.Kill(t)
//	clustertest.WaitFor(t, 10*time.Second, "a new leader", func() error { ... })
//
// Every daemon is killed when its test ends, passed or failed; when the test
// failed, the tail of each daemon's log goes to t.Log first. Packages that
// call BuildShoal should have a TestMain that calls Main, which removes the
// built binary at the end.
//
// The package knows how to start, stop and talk to daemons, nothing about
// what they do: cluster-level helpers (Leader, WaitForNewLeader) belong to the
// tests that use them.
package clustertest
