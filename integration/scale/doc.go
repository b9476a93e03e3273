// Package scale holds the scale benchmark and its small CI test: one real
// `shoal daemon` manager on loopback and many simulated nodes in the test
// process. Each simulated node joins through the real join path (root CA,
// join token, CSR), holds a real gRPC session with its own certificate
// through a worker.Agent, and runs its tasks through a worker.TaskManager
// over an in-memory executor that starts everything at once.
//
//	make bench-scale   # 1,000 nodes, one 10,000-replica service
//
// SHOAL_SCALE_NODES and SHOAL_SCALE_TASKS change the sizes of the benchmark;
// SHOAL_SCALE_PERF=DIR samples the manager with Linux perf (perf_test.go).
// The simulated nodes share the machine's CPUs with the manager, and the
// report says how much CPU each side, and every other process, used.
// The package has only tests; it must not be imported.
package scale
