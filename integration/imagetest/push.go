package imagetest

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// ToolPackage is the helper program that does the registry work on test
// hosts; see its package doc for its subcommands.
const ToolPackage = "github.com/shoal-dev/shoal/integration/imagetest/internal/imagectl"

// PushTimeout bounds one imagectl run (a push, a check, a pull).
const PushTimeout = 2 * time.Minute

var tools struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Tool returns the path of the imagectl helper, built once per test binary
// into a temp dir that Cleanup removes. Run it on a host with
// host.Command(imagetest.Tool(t), "get", url) and the like.
func Tool(t testing.TB) string {
	t.Helper()
	tools.once.Do(func() {
		start := time.Now()
		tools.dir, tools.err = os.MkdirTemp("", "shoal-imagectl-")
		if tools.err != nil {
			return
		}
		tools.path, tools.err = clustertest.GoBuild(tools.dir, ToolPackage)
		if tools.err == nil {
			t.Logf("imagetest: built %s in %s", tools.path, time.Since(start).Round(time.Millisecond))
		}
	})
	if tools.err != nil {
		t.Fatalf("imagetest: no imagectl helper: %v", tools.err)
	}
	return tools.path
}

func removeTools() {
	if tools.dir != "" {
		os.RemoveAll(tools.dir)
	}
}

// Images names the test images in a registry, as a service's image
// argument takes them.
type Images struct {
	// Nginx is "ADDR/nginx:latest", the image of NginxImage.
	Nginx string
	// Shell is "ADDR/shell:latest", the image of ShellImage.
	Shell string
	// NginxDigest and ShellDigest are their manifest digests.
	NginxDigest, ShellDigest string
}

// PushImages builds the nginx and shell images and pushes them to the
// registry at addr (see StartRegistry) as addr/nginx:latest and
// addr/shell:latest. The push runs imagectl on registryHost, because the
// registry is reachable only from the LAN; any host of that LAN would do.
func PushImages(t testing.TB, registryHost *testhost.Host, addr string) Images {
	t.Helper()
	var imgs Images
	for _, p := range []struct {
		img         *Image
		ref, digest *string
	}{
		{NginxImage(t), &imgs.Nginx, &imgs.NginxDigest},
		{ShellImage(t), &imgs.Shell, &imgs.ShellDigest},
	} {
		*p.ref = addr + "/" + p.img.Name + ":latest"
		*p.digest = p.img.Digest
		PushImage(t, registryHost, p.img, *p.ref)
	}
	return imgs
}

// PushImage pushes img to ref, a reference in a plain HTTP registry, by
// running imagectl on h.
func PushImage(t testing.TB, h *testhost.Host, img *Image, ref string) {
	t.Helper()
	start := time.Now()
	out := RunTool(t, h, "push", img.Layout, ref)
	if got := strings.TrimSpace(out); got != img.Digest {
		t.Fatalf("imagetest: pushing %s printed digest %q, want %s", ref, got, img.Digest)
	}
	t.Logf("imagetest: pushed %s (%s) from %s in %s", ref, img.Digest, h, time.Since(start).Round(time.Millisecond))
}

// RunTool runs `imagectl SUBCOMMAND ARGS...` on h with a time limit of
// PushTimeout, and returns its standard output; it fails the test with the
// helper's stderr when the helper fails.
func RunTool(t testing.TB, h *testhost.Host, subcommand string, args ...string) string {
	t.Helper()
	full := append([]string{subcommand, "-timeout", PushTimeout.String()}, args...)
	cmd := h.Command(Tool(t), full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imagetest: imagectl %s on %s: %v: %s", strings.Join(full, " "), h, err, strings.TrimSpace(stderr.String()))
	}
	return string(out)
}
