package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/shoal-dev/shoal/api"
)

func TestProcessArgsFollowsDocker(t *testing.T) {
	nginx := ocispec.ImageConfig{Entrypoint: []string{"/usr/sbin/nginx", "-g", "daemon off;"}}
	shell := ocispec.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"sleep 3600"}}
	cmdOnly := ocispec.ImageConfig{Cmd: []string{"/bin/app", "--serve"}}
	for _, tc := range []struct {
		name          string
		img           ocispec.ImageConfig
		command, args []string
		want          []string
	}{
		{"image as it is", shell, nil, nil, []string{"/bin/sh", "-c", "sleep 3600"}},
		{"args replace cmd", shell, nil, []string{"exit 3"}, []string{"/bin/sh", "-c", "exit 3"}},
		{"args follow an entrypoint without cmd", nginx, nil, []string{"-t"}, []string{"/usr/sbin/nginx", "-g", "daemon off;", "-t"}},
		{"command replaces entrypoint and drops cmd", shell, []string{"/bin/true"}, nil, []string{"/bin/true"}},
		{"command and args", shell, []string{"/bin/echo"}, []string{"hi"}, []string{"/bin/echo", "hi"}},
		{"cmd alone", cmdOnly, nil, nil, []string{"/bin/app", "--serve"}},
		{"args replace a lone cmd", cmdOnly, nil, []string{"/bin/other"}, []string{"/bin/other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(tc.img, &api.ContainerSpec{Command: tc.command, Args: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := processArgs(ocispec.ImageConfig{}, &api.ContainerSpec{}); err == nil {
		t.Error("an image without entrypoint or cmd and a spec without command gave no error")
	}
	// The image's slices must not be changed by appending to them.
	img := ocispec.ImageConfig{Entrypoint: make([]string, 1, 4)}
	img.Entrypoint[0] = "/bin/sh"
	processArgs(img, &api.ContainerSpec{Args: []string{"a"}})
	if got := img.Entrypoint[:2]; got[1] != "" {
		t.Errorf("processArgs wrote into the image's entrypoint: %q", got)
	}
}

func TestNormalizeRefLikeDocker(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                         "docker.io/library/nginx:latest",
		"nginx:1.25":                    "docker.io/library/nginx:1.25",
		"someone/app":                   "docker.io/someone/app:latest",
		"10.77.1.11:5000/nginx":         "10.77.1.11:5000/nginx:latest",
		"10.77.1.11:5000/shell:latest":  "10.77.1.11:5000/shell:latest",
		"localhost:5000/a/b:v1":         "localhost:5000/a/b:v1",
		"ghcr.io/org/img@sha256:" + d64: "ghcr.io/org/img@sha256:" + d64,
	} {
		got, err := normalizeRef(in)
		if err != nil || got != want {
			t.Errorf("normalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "  ", "Nginx", "nginx:", "a b"} {
		if got, err := normalizeRef(bad); err == nil {
			t.Errorf("normalizeRef(%q) = %q, want an error", bad, got)
		}
	}
}

const d64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestErrorsSayWhatFailed(t *testing.T) {
	err := error(&NoSuchImageError{Ref: "10.77.1.11:5000/nope:latest"})
	if got, want := err.Error(), "No such image: 10.77.1.11:5000/nope:latest"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, ErrNoSuchImage) {
		t.Error("a NoSuchImageError does not match ErrNoSuchImage")
	}

	https := errors.New(`failed to resolve reference "10.77.1.11:5000/nginx:latest": http: server gave HTTP response to HTTPS client`)
	got := pullError("10.77.1.11:5000/nginx:latest", https, nil).Error()
	for _, want := range []string{"pull 10.77.1.11:5000/nginx:latest: ", "HTTPS client", "name 10.77.1.11:5000 as an insecure registry"} {
		if !strings.Contains(got, want) {
			t.Errorf("pull error %q does not say %q", got, want)
		}
	}
	if got := pullError("10.77.1.11:5000/nginx:latest", https, []string{"10.77.1.11:5000"}).Error(); strings.Contains(got, "insecure") {
		t.Errorf("pull error %q suggests an insecure registry that is already one", got)
	}
}

func TestResolvConfDropsLoopbackNameservers(t *testing.T) {
	for _, tc := range []struct{ name, host, want string }{
		{"kept", "search lan\nnameserver 10.0.0.53\noptions ndots:2\n", "search lan\nnameserver 10.0.0.53\noptions ndots:2\n"},
		{"loopback dropped", "nameserver 127.0.0.53\nnameserver 192.0.2.1\n", "nameserver 192.0.2.1\n"},
		{"only loopback", "search lan\nnameserver 127.0.0.53\nnameserver ::1\n", "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"no file", "", "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
	} {
		if got := string(containerResolvConf([]byte(tc.host))); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEtcFilesNameTheTask(t *testing.T) {
	dir := t.TempDir()
	task := &api.Task{Id: "x1y2z3a4b5c6d7e8f9g0h1i2j", ServiceName: "web", Slot: 3}
	f := newEtcFiles(filepath.Join(dir, "task"))
	if err := f.write(task, "", filepath.Join(dir, "absent")); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(f.hostname); got != "x1y2z3a4b5c6\n" {
		t.Errorf("hostname file: %q", got)
	}
	hosts := read(f.hosts)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "127.0.1.1\tx1y2z3a4b5c6 web.3\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts before start lacks %q:\n%s", want, hosts)
		}
	}
	before, _ := os.Stat(f.hosts)
	if err := f.writeHosts(task, "10.88.0.2"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(f.hosts)
	if !os.SameFile(before, after) {
		t.Error("writeHosts replaced the file; a bind mount of it would keep the old one")
	}
	if hosts := read(f.hosts); !strings.Contains(hosts, "10.88.0.2\tx1y2z3a4b5c6 web.3\n") || strings.Contains(hosts, "127.0.1.1") {
		t.Errorf("hosts after start:\n%s", hosts)
	}
}

func TestConfListIsTheDesignedChain(t *testing.T) {
	n := &network{bridge: "shoal0", dir: "/state/cni"}
	list, err := n.confList("10.88.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if want := []string{"loopback", "bridge", "portmap"}; !slices.Equal(types, want) {
		t.Errorf("plugins %v, want %v", types, want)
	}
	var bridge struct {
		Bridge    string `json:"bridge"`
		IsGateway bool   `json:"isGateway"`
		IPMasq    bool   `json:"ipMasq"`
		IPAM      struct {
			Type    string `json:"type"`
			DataDir string `json:"dataDir"`
			Ranges  [][]struct {
				Subnet string `json:"subnet"`
			} `json:"ranges"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[1].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Bridge != "shoal0" || !bridge.IsGateway || !bridge.IPMasq || bridge.IPAM.Type != "host-local" ||
		bridge.IPAM.DataDir != "/state/cni/ipam" || bridge.IPAM.Ranges[0][0].Subnet != "10.88.0.0/24" {
		t.Errorf("bridge plugin config: %s", list.Plugins[1].Bytes)
	}
	if !strings.Contains(string(list.Plugins[2].Bytes), `"portMappings":true`) {
		t.Errorf("portmap lacks the portMappings capability: %s", list.Plugins[2].Bytes)
	}
	for _, bad := range []string{"", "10.88.0.0", "nonsense/24"} {
		if _, err := n.confList(bad); err == nil {
			t.Errorf("confList(%q) gave no error", bad)
		}
	}
}

func TestTaskAddressIsTheContainerInterfaces(t *testing.T) {
	zero, one := 0, 1
	res := &types100.Result{
		CNIVersion: cniVersion,
		Interfaces: []*types100.Interface{
			{Name: "shoal0"},
			{Name: "eth0", Sandbox: "/state/cni/netns/x"},
		},
		IPs: []*types100.IPConfig{
			{Interface: &zero, Address: mustCIDR(t, "10.88.0.1/24")},
			{Interface: &one, Address: mustCIDR(t, "fd00::5/64")},
			{Interface: &one, Address: mustCIDR(t, "10.88.0.5/24")},
		},
	}
	if got, err := taskAddress(res); err != nil || got != "10.88.0.5" {
		t.Errorf("taskAddress = %q, %v; want 10.88.0.5", got, err)
	}
	res.IPs = res.IPs[:2]
	if got, err := taskAddress(res); err == nil {
		t.Errorf("taskAddress = %q without an IPv4 address on eth0; want an error", got)
	}
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return *n
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	c, err := Config{StateDir: "rel/dir"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Socket != "/run/containerd/containerd.sock" || c.Namespace != "shoal" || c.CNIBinDir != "/usr/lib/cni" ||
		c.Bridge != "shoal0" || c.Logger == nil || !filepath.IsAbs(c.StateDir) {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
	for name, change := range map[string]func(*Config){
		"no state dir":     func(c *Config) { c.StateDir = "" },
		"long bridge name": func(c *Config) { c.Bridge = "a-bridge-name-too-long" },
		"registry URL":     func(c *Config) { c.InsecureRegistries = []string{"http://10.0.0.1:5000/"} },
	} {
		bad := c
		change(&bad)
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate gave no error", name)
		}
	}
}

func TestNewSaysWhatIsMissing(t *testing.T) {
	cni := t.TempDir()
	for _, p := range cniPlugins {
		if err := os.WriteFile(filepath.Join(cni, p), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	socket := filepath.Join(t.TempDir(), "containerd.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := New(ctx, Config{Socket: socket, CNIBinDir: cni, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "is containerd running at "+socket+"?") {
		t.Errorf("New without containerd: %v; want it to ask whether containerd runs at %s", err, socket)
	}

	os.Remove(filepath.Join(cni, "portmap"))
	_, err = New(ctx, Config{Socket: socket, CNIBinDir: cni, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "CNI plugin portmap not found in "+cni) {
		t.Errorf("New without the portmap plugin: %v; want it to name the plugin", err)
	}

	if _, err := New(ctx, Config{Socket: socket, CNIBinDir: cni}); err == nil || !strings.Contains(err.Error(), "StateDir is required") {
		t.Errorf("New without a state dir: %v", err)
	}
}
