package containerd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/api"
)

const (
	// networkName names the CNI network; host-local keeps its allocations
	// in <dataDir>/<networkName>, libcni its cache under that name.
	networkName = "shoal"
	// containerIf is the task's interface in its network namespace.
	containerIf = "eth0"
	// cniVersion is the newest version that Debian 12's plugins (1.1.1)
	// speak.
	cniVersion = "1.0.0"
)

// cniPlugins are the plugins the network needs, for a clear error at New.
var cniPlugins = []string{"loopback", "bridge", "host-local", "portmap"}

// network gives tasks their addresses through CNI. All its state lives
// under dir: host-local's allocations, libcni's cache, the pinned network
// namespaces.
type network struct {
	cni    *libcni.CNIConfig
	bridge string
	dir    string
}

func newNetwork(binDir, bridge, dir string) (*network, error) {
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(binDir, p)); err != nil {
			return nil, fmt.Errorf("CNI plugin %s not found in %s (install containernetworking-plugins or set the CNI directory): %w", p, binDir, err)
		}
	}
	n := &network{bridge: bridge, dir: dir}
	// libcni fills in a nil exec lazily, on every call, unguarded: tasks
	// set up and torn down at once would race on it. Give it one.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{binDir}, n.cacheDir(), exec)
	for _, d := range []string{n.ipamDir(), n.cacheDir(), n.netnsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ipamDir is host-local's dataDir.
func (n *network) ipamDir() string  { return filepath.Join(n.dir, "ipam") }
func (n *network) cacheDir() string { return filepath.Join(n.dir, "cache") }
func (n *network) netnsDir() string { return filepath.Join(n.dir, "netns") }

// netnsPath is where a task's network namespace is pinned.
func (n *network) netnsPath(taskID string) string { return filepath.Join(n.netnsDir(), taskID) }

// confList is the network of a task whose node has the given subnet.
func (n *network) confList(subnet string) (*libcni.NetworkConfigList, error) {
	if _, err := netip.ParsePrefix(subnet); err != nil {
		return nil, fmt.Errorf("node subnet %q: %w", subnet, err)
	}
	type obj = map[string]any
	conf := obj{
		"cniVersion": cniVersion,
		"name":       networkName,
		"plugins": []obj{
			{"type": "loopback"},
			{
				"type":        "bridge",
				"bridge":      n.bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": obj{
					"type":    "host-local",
					"ranges":  [][]obj{{{"subnet": subnet}}},
					"routes":  []obj{{"dst": "0.0.0.0/0"}},
					"dataDir": n.ipamDir(),
				},
			},
			{"type": "portmap", "capabilities": obj{"portMappings": true}},
		},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(b)
}

func runtimeConf(taskID, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: taskID, NetNS: netns, IfName: containerIf}
}

// portMappings is the portmap plugin's capability argument for the task's
// host-mode ports: each opens on every address of the node.
func portMappings(ports []*api.PortConfig) []map[string]any {
	var out []map[string]any
	for _, p := range ports {
		if p.GetMode() == api.PortConfig_HOST {
			out = append(out, map[string]any{"hostPort": p.GetPublished(), "containerPort": p.GetTarget(), "protocol": cmp.Or(p.GetProtocol(), "tcp")})
		}
	}
	return out
}

// add pins the network namespace of the task's process pid and connects it
// to the bridge, with its host-mode ports published. It returns the task's
// IPv4 address. On failure it undoes what it did.
func (n *network) add(ctx context.Context, taskID, subnet string, pid uint32, ports []*api.PortConfig) (addr string, err error) {
	list, err := n.confList(subnet)
	if err != nil {
		return "", err
	}
	path := n.netnsPath(taskID)
	if err := pinNetNS(pid, path); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			if derr := n.del(context.WithoutCancel(ctx), taskID, subnet); derr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, derr)
			}
		}
	}()
	rt := runtimeConf(taskID, path)
	if pm := portMappings(ports); len(pm) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	res, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		return "", fmt.Errorf("CNI: %w", err)
	}
	return taskAddress(res)
}

// taskAddress finds the IPv4 address CNI gave the task's interface.
func taskAddress(res types.Result) (string, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return "", fmt.Errorf("CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Interface == nil || *ip.Interface < 0 || *ip.Interface >= len(r.Interfaces) {
			continue
		}
		itf := r.Interfaces[*ip.Interface]
		if itf.Sandbox == "" || itf.Name != containerIf || ip.Address.IP.To4() == nil {
			continue
		}
		return ip.Address.IP.String(), nil
	}
	return "", fmt.Errorf("CNI gave no IPv4 address to %s: %v", containerIf, r.IPs)
}

// del disconnects the task and releases its address, then unpins its
// network namespace. It uses the configuration the task was added with (as
// libcni cached it), or else the one for subnet; with neither there is
// nothing to delete. When the namespace is no longer pinned (the machine
// rebooted), the plugins get no namespace and only release the address.
// It is idempotent.
func (n *network) del(ctx context.Context, taskID, subnet string) error {
	path := n.netnsPath(taskID)
	netns := ""
	if pinned(path) {
		netns = path
	}
	rt := runtimeConf(taskID, netns)
	list, cached, err := n.cachedConfList(rt)
	if err != nil {
		return err
	}
	if cached != nil {
		rt.CapabilityArgs = cached.CapabilityArgs // the ports portmap must unpublish
	}
	if list == nil && subnet != "" {
		if list, err = n.confList(subnet); err != nil {
			return err
		}
	}
	if list != nil {
		if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
			return fmt.Errorf("CNI: %w", err)
		}
	}
	return unpinNetNS(path)
}

// cachedConfList returns the configuration and runtime settings the task
// was added with, as libcni cached them; nil when there are none.
func (n *network) cachedConfList(rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	// Only the name of the list matters to find the cache entry.
	b, cached, err := n.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: networkName}, rt)
	if err != nil || b == nil {
		return nil, nil, err
	}
	list, err := libcni.NetworkConfFromBytes(b)
	return list, cached, err
}

// pinNetNS bind-mounts the network namespace of process pid on path, so
// that it outlives the process: CNI DEL needs it to remove the veth and the
// masquerading rule that the bridge plugin made.
func pinNetNS(pid uint32, path string) error {
	if pinned(path) {
		if err := unpinNetNS(path); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pinning network namespace: %w", err)
	}
	f.Close()
	src := fmt.Sprintf("/proc/%d/ns/net", pid)
	if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("pinning network namespace: bind-mounting %s on %s: %w", src, path, err)
	}
	return nil
}

// pinned tells whether path is a pinned network namespace.
func pinned(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// unpinNetNS undoes pinNetNS; the namespace goes away with its last user.
func unpinNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpinning network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
