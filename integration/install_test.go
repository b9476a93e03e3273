package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/integration/testhost"
)

// make install, as someone with a few machines of their own runs it: the
// binary under PREFIX, and a systemd unit that starts it and that systemd
// accepts without a warning.
func TestMakeInstall(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testhost.SkipOrFail(t, "systemd-analyze not found (apt-get install systemd): "+err.Error())
	}
	dest := t.TempDir()
	if out, err := exec.Command("make", "-C", "..", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX=/opt/shoal").CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	bin := filepath.Join(dest, "opt/shoal/bin/shoal")
	if out, err := exec.Command(bin, "daemon", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--data-dir") {
		t.Errorf("the installed shoal daemon --help: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/shoal.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/opt/shoal/bin/shoal daemon ") {
		t.Errorf("the unit does not start the installed binary:\n%s", unit)
	}
	// systemd-analyze checks that ExecStart exists: point it at the copy.
	check := filepath.Join(t.TempDir(), "shoal.service")
	if err := os.WriteFile(check, []byte(strings.ReplaceAll(string(unit), "/opt/shoal/bin/shoal", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", check).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify of the unit: %v\n%s", err, out)
	}
}
