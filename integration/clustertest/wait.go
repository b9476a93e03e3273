package clustertest

import (
	"testing"
	"time"
)

// PollInterval is how often WaitFor tries again.
const PollInterval = 100 * time.Millisecond

// WaitFor calls f every PollInterval until it returns nil. When timeout has
// passed it fails the test, saying what it waited for and how f last failed,
// so that the failure tells what never happened:
//
//	timed out after 10s waiting for node-02 to be Leader: last error: leader is node-01
func WaitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: last error: %v", timeout, what, err)
		}
		time.Sleep(PollInterval)
	}
}
