package imagetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/testhost"
)

const (
	// RegistryBin is Debian's build of the distribution registry (2.8).
	RegistryBin = "/usr/bin/docker-registry"
	// RegistryPort is the port the registry listens on, on its host's IP.
	RegistryPort = "5000"
	// RegistryReadyTimeout bounds how long StartRegistry waits for GET /v2/.
	RegistryReadyTimeout = 30 * time.Second
)

// StartRegistry runs a registry on the test host h, plain HTTP on
// h.IP:5000, with its storage in a temp dir of the test, and returns its
// address, "10.77.K.N:5000", once GET /v2/ answers 200 from inside h. The
// registry lives in h's network namespace only, so it is reachable from
// the other hosts of the LAN (where the shoal daemons pull) and from
// nowhere else; the test process itself reaches it only through programs
// it runs on a host (see PushImages). It is stopped when the test ends; when
// the test failed, the tail of its log goes to t.Log first.
//
// The daemons must treat the address as an insecure (plain HTTP) registry.
func StartRegistry(t testing.TB, h *testhost.Host) string {
	t.Helper()
	RequireRegistry(t)
	addr := net.JoinHostPort(h.IP, RegistryPort)
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	logPath := filepath.Join(dir, "registry.log")
	if err := os.WriteFile(conf, []byte(registryConfig(addr, filepath.Join(dir, "data"))), 0o644); err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer logFile.Close()

	probe := Tool(t)
	start := time.Now()
	cmd := h.Command(RegistryBin, "serve", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("imagetest: starting the registry on %s: %v", h, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, "the registry", logPath)
		}
		stopProcess(cmd, exited, 5*time.Second)
	})

	url := "http://" + addr + "/v2/"
	deadline := time.Now().Add(RegistryReadyTimeout)
	for {
		out, err := h.Command(probe, "get", "-timeout", "1s", url).CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("imagetest: the registry on %s exited (%v) before answering; its log:\n%s", h, cmd.ProcessState, tail(logPath, logTailLines))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("imagetest: timed out after %s waiting for the registry to answer GET %s on %s: last error: %v: %s",
				RegistryReadyTimeout, url, h, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("imagetest: registry at %s on %s answered in %s", addr, h, time.Since(start).Round(time.Millisecond))
	return addr
}

// registryConfig is a distribution 2.8 configuration: one address, plain
// HTTP, filesystem storage, deletes allowed, no health checks of its own.
func registryConfig(addr, data string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: shoal-imagetest
`, data, addr)
}

// stopProcess sends SIGTERM, then SIGKILL after grace, and waits for the
// process to be reaped.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill()
		<-exited
	}
}
