package imagetest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/integration/testhost"
)

// RequireContainerd skips the test unless this machine can run containerd
// for it: root, and containerd, its runc shim and runc in PATH. When the
// environment says CI=true a missing prerequisite fails the test instead:
// in CI a skipped integration test is a silent hole in the run.
func RequireContainerd(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tl := range []tool{
		{"containerd", "containerd"},
		{"containerd-shim-runc-v2", "containerd"},
		{"runc", "runc"},
	} {
		if _, err := exec.LookPath(tl.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tl.bin, tl.pkg))
		}
	}
	skipOrFail(t, "containerd", missing)
}

// RequireRegistry skips the test (fails it when CI=true) unless this machine
// has Debian's docker-registry.
func RequireRegistry(t testing.TB) {
	t.Helper()
	requireBinaries(t, "the test registry", []tool{{RegistryBin, "docker-registry"}})
}

// skipOrFail does nothing when missing is empty, and otherwise skips the
// test, or fails it when CI=true, naming what is missing for what.
func skipOrFail(t testing.TB, what string, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	testhost.SkipOrFail(t, fmt.Sprintf("imagetest: %s needs %s (run the tests as root; `make deps` installs the packages)",
		what, strings.Join(missing, ", ")))
}
