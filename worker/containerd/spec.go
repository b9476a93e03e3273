package containerd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-dev/shoal/api"
)

// hostnameLen is how much of the task ID the container's hostname keeps,
// as Docker keeps 12 characters of the container ID.
const hostnameLen = 12

func hostname(taskID string) string {
	if len(taskID) > hostnameLen {
		return taskID[:hostnameLen]
	}
	return taskID
}

// taskName is the name Swarm gives a replicated task: service.slot.
func taskName(t *api.Task) string {
	return fmt.Sprintf("%s.%d", t.ServiceName, t.Slot)
}

// processArgs works out the command line as Docker does: the spec's
// command replaces the image's entrypoint (and drops the image's cmd), the
// spec's args replace the cmd.
func processArgs(img ocispec.ImageConfig, spec *api.ContainerSpec) ([]string, error) {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if len(spec.GetCommand()) > 0 {
		entrypoint, cmd = spec.GetCommand(), nil
	}
	if len(spec.GetArgs()) > 0 {
		cmd = spec.GetArgs()
	}
	args := append(append([]string(nil), entrypoint...), cmd...)
	if len(args) == 0 {
		return nil, errors.New("the image has no entrypoint or command and the service gives none")
	}
	return args, nil
}

// specOpts builds the container's OCI spec on top of containerd's default
// (which gives the container new namespaces, network included): the
// image's config, the service's overrides, the hostname and the generated
// /etc files.
func specOpts(img oci.Image, imgConfig ocispec.ImageConfig, t *api.Task, etc etcFiles) ([]oci.SpecOpts, error) {
	args, err := processArgs(imgConfig, t.Spec)
	if err != nil {
		return nil, err
	}
	host := hostname(t.Id)
	env := append([]string{"HOSTNAME=" + host}, t.Spec.GetEnv()...)
	return []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(env),
		oci.WithHostname(host),
		oci.WithMounts([]specs.Mount{
			bindFile(etc.hosts, "/etc/hosts"),
			bindFile(etc.hostname, "/etc/hostname"),
			bindFile(etc.resolvConf, "/etc/resolv.conf"),
		}),
	}, nil
}

func bindFile(src, dst string) specs.Mount {
	return specs.Mount{
		Destination: dst,
		Type:        "bind",
		Source:      src,
		Options:     []string{"rbind", "rprivate", "rw"},
	}
}

// etcFiles are the files a task gets as /etc/hosts, /etc/hostname and
// /etc/resolv.conf. They live in the task's directory under StateDir.
type etcFiles struct {
	hosts, hostname, resolvConf string
}

func newEtcFiles(dir string) etcFiles {
	return etcFiles{
		hosts:      filepath.Join(dir, "hosts"),
		hostname:   filepath.Join(dir, "hostname"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
}

// write writes all three; addr is empty until the task has its network.
func (f etcFiles) write(t *api.Task, addr, hostResolvConf string) error {
	if err := os.MkdirAll(filepath.Dir(f.hosts), 0o755); err != nil {
		return err
	}
	if err := f.writeHosts(t, addr); err != nil {
		return err
	}
	if err := os.WriteFile(f.hostname, []byte(hostname(t.Id)+"\n"), 0o644); err != nil {
		return err
	}
	src, err := os.ReadFile(hostResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(f.resolvConf, containerResolvConf(src), 0o644)
}

// writeHosts writes the hosts file in place: once the container runs,
// its bind mount holds the file's inode, so the file must not be replaced.
func (f etcFiles) writeHosts(t *api.Task, addr string) error {
	return os.WriteFile(f.hosts, hostsFile(hostname(t.Id), taskName(t), addr), 0o644)
}

func hostsFile(host, name, addr string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("ff00::0\tip6-mcastprefix\n")
	b.WriteString("ff02::1\tip6-allnodes\n")
	b.WriteString("ff02::2\tip6-allrouters\n")
	if addr == "" {
		// Until the task has an address its names resolve to itself.
		addr = "127.0.1.1"
	}
	fmt.Fprintf(&b, "%s\t%s %s\n", addr, host, name)
	return b.Bytes()
}

// fallbackNameservers are Docker's, for a host whose only nameservers are
// on its loopback (a local resolver that the container cannot reach).
var fallbackNameservers = []string{"8.8.8.8", "8.8.4.4"}

// containerResolvConf copies the host's resolv.conf without the nameservers
// a container cannot reach (those on loopback).
func containerResolvConf(host []byte) []byte {
	var b bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			a, err := netip.ParseAddr(strings.SplitN(f[1], "%", 2)[0])
			if err == nil && a.IsLoopback() {
				continue
			}
			servers++
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if servers == 0 {
		for _, ns := range fallbackNameservers {
			fmt.Fprintf(&b, "nameserver %s\n", ns)
		}
	}
	return b.Bytes()
}
