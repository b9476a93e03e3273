// Package integration holds the tests that start real shoal daemons, each
// on a test host (a network namespace on a bridge of its own), with real
// containerd, CNI and a registry on the test LAN: the tutorial, security,
// failures and partitions, chaos, and the benchmarks that print figures.
// Helpers live in clustertest, testhost and imagetest.
package integration
