package testhost

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Require skips the test unless this machine can build test hosts: it needs
// root, ip and bridge (iproute2), nsenter (util-linux), and the right to make
// network namespaces (which it tries once per process). When the
// environment says CI=true a missing prerequisite fails the test instead,
// because in CI a skipped integration test is a silent hole in the run.
func Require(t testing.TB) {
	t.Helper()
	missing := missingPrerequisites()
	if len(missing) == 0 {
		return
	}
	SkipOrFail(t, fmt.Sprintf("test hosts need %s (run the tests as root; `make deps` installs the tools)", strings.Join(missing, ", ")))
}

// SkipOrFail skips the test for a missing prerequisite that msg names, or
// fails it when the environment says CI=true: in CI a skipped integration
// test is a silent hole in the run.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true, so a missing prerequisite is a failure", msg)
	}
	t.Skip(msg)
}

func missingPrerequisites() []string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"ip", "iproute2"},
		{"bridge", "iproute2"},
		{"nsenter", "util-linux"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tool.bin, tool.pkg))
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		missing = append(missing, "network namespaces (/proc/self/ns/net)")
	}
	if len(missing) == 0 {
		probeOnce.Do(func() { probeErr = probeNetns() })
		if probeErr != nil {
			missing = append(missing, fmt.Sprintf("the right to make network namespaces (%v)", probeErr))
		}
	}
	return missing
}

var (
	probeOnce sync.Once
	probeErr  error
)

// probeNetns makes and deletes a namespace, since root in a container may
// still lack the capabilities for it. The probe's name is outside Sweep's
// pattern: no sweeper deletes it under the probe's feet.
func probeNetns() error {
	name := fmt.Sprintf("%sp%d", NSPrefix, os.Getpid())
	if err := runIP("netns", "add", name); err != nil {
		return err
	}
	return runIP("netns", "del", name)
}
