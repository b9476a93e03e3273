package imagetest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

func TestMain(m *testing.M) { clustertest.Main(m, imagetest.Cleanup) }

func TestContainerdStartsAndAnswersVersion(t *testing.T) {
	socket := imagetest.StartContainerd(t)
	if len(socket) >= 108 {
		t.Fatalf("socket path %s is %d bytes; unix sockets allow fewer than 108", socket, len(socket))
	}
	client, err := containerd.New(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	v, err := client.Version(ctx)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.Version == "" {
		t.Fatalf("Version answered %+v, with no version", v)
	}
	t.Logf("containerd %s (revision %s)", v.Version, v.Revision)
}

// TestImagesRunInContainerd imports the test images into containerd, with
// no registry, and runs them with runc: the shell image's exit codes come
// through, and nginx accepts its configuration.
func TestImagesRunInContainerd(t *testing.T) {
	socket := imagetest.SharedContainerd(t)
	rt := newRuntime(t, socket)
	shell := imagetest.ImportImage(t, socket, rt.ns, imagetest.ShellImage(t))
	nginx := imagetest.ImportImage(t, socket, rt.ns, imagetest.NginxImage(t))

	if code := rt.start(shell, []string{"exit 3"}).wait(opTimeout); code != 3 {
		t.Errorf("sh -c 'exit 3' exited with %d, want 3", code)
	}
	start := time.Now()
	if code := rt.start(shell, []string{"sleep 1; exit 1"}).wait(opTimeout); code != 1 {
		t.Errorf("sh -c 'sleep 1; exit 1' exited with %d, want 1", code)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("sh -c 'sleep 1; exit 1' took %s, less than its sleep", d)
	}
	if code := rt.start(shell, []string{"true && ! false"}).wait(opTimeout); code != 0 {
		t.Errorf("sh -c 'true && ! false' exited with %d, want 0", code)
	}

	c := rt.start(nginx, []string{"-t"})
	if code := c.wait(opTimeout); code != 0 {
		t.Errorf("nginx -t exited with %d, want 0; output: %s", code, c.out)
	}
	if !strings.Contains(c.out.String(), "test is successful") {
		t.Errorf("nginx -t said %q, without \"test is successful\"", c.out)
	}
}

// TestRegistryOnLANServesPushedImages runs the registry on its own test
// host, pushes both images, checks them from another host, pulls the nginx
// image into containerd from a third through the containerd client as
// shoal's executor does, and serves from it on that host's address.
func TestRegistryOnLANServesPushedImages(t *testing.T) {
	socket := imagetest.SharedContainerd(t)
	imagetest.RequireRegistry(t)
	lan := testhost.NewLAN(t)
	reg := lan.AddHost(t, "registry")
	node1 := lan.AddHost(t, "node-01")
	node2 := lan.AddHost(t, "node-02")

	addr := imagetest.StartRegistry(t, reg)
	imgs := imagetest.PushImages(t, reg, addr)
	if want := addr + "/nginx:latest"; imgs.Nginx != want {
		t.Errorf("PushImages named nginx %q, want %q", imgs.Nginx, want)
	}
	for ref, digest := range map[string]string{imgs.Nginx: imgs.NginxDigest, imgs.Shell: imgs.ShellDigest} {
		got := strings.TrimSpace(imagetest.RunTool(t, node2, "check", "-digest", digest, ref))
		t.Logf("%s checked %s from the registry: %s", node2, ref, got)
	}

	rt := newRuntime(t, socket)
	for _, ref := range []string{imgs.Nginx, imgs.Shell} {
		out := imagetest.RunTool(t, node1, "pull", "-address", socket, "-namespace", rt.ns, ref)
		t.Logf("%s pulled %s", node1, strings.TrimSpace(out))
	}
	if code := rt.start(imgs.Shell, []string{"exit 3"}).wait(opTimeout); code != 3 {
		t.Errorf("the pulled shell image's sh -c 'exit 3' exited with %d, want 3", code)
	}

	// nginx in node-01's network namespace, as if node-01 ran it with host
	// networking; node-02 asks it for its page.
	web := rt.start(imgs.Nginx, nil, oci.WithLinuxNamespace(specs.LinuxNamespace{
		Type: specs.NetworkNamespace,
		Path: node1.NSPath(),
	}))
	url := "http://" + node1.IP + "/"
	var body string
	clustertest.WaitFor(t, opTimeout, "nginx on "+node1.String()+" to answer GET "+url, func() error {
		out, err := node2.Command(imagetest.Tool(t), "get", "-timeout", "1s", url).CombinedOutput()
		body = string(out)
		if err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	if body != imagetest.NginxIndex {
		t.Errorf("GET %s answered %q, want %q", url, body, imagetest.NginxIndex)
	}

	start := time.Now()
	web.signal(syscall.SIGTERM)
	if code := web.wait(10 * time.Second); code != 0 {
		t.Errorf("nginx exited with %d after SIGTERM, want 0", code)
	}
	t.Logf("nginx stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(web.out.String(), `"GET / HTTP/1.1" 200`) {
		t.Errorf("nginx's access log on stdout has no GET / 200: %q", web.out)
	}
}
