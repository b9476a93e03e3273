package containerd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
)

// Config says where containerd, the CNI plugins and this node's state are.
type Config struct {
	// Socket is containerd's address.
	Socket string
	// Namespace is the containerd namespace of this node. Nodes that share
	// one containerd must use different namespaces.
	Namespace string
	// InsecureRegistries are registries, as HOST:PORT (or HOST for port
	// 80), pulled over plain HTTP.
	InsecureRegistries []string
	// RegistryMirrors are registries, as http:// or https:// URLs, tried
	// before Docker Hub for images of docker.io, as Docker's
	// --registry-mirror: an image "nginx" is pulled from MIRROR/library/nginx.
	RegistryMirrors []string
	// CNIBinDir holds the CNI plugins (bridge, host-local, loopback,
	// portmap).
	CNIBinDir string
	// StateDir is this node's own directory for task logs, generated
	// /etc files, pinned network namespaces and CNI state (the host-local
	// allocations and libcni's cache). Nodes on one machine must not share
	// it.
	StateDir string
	// Bridge is the name of the bridge the tasks' veths are plugged into.
	Bridge string
	// Logger gets the executor's logs; slog.Default() if nil.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults for everything but StateDir, which
// every node must choose.
func DefaultConfig() Config {
	return Config{
		Socket:    "/run/containerd/containerd.sock",
		Namespace: "shoal",
		CNIBinDir: "/usr/lib/cni",
		Bridge:    "shoal0",
	}
}

// withDefaults fills the zero fields from DefaultConfig and makes StateDir
// absolute (log files must have absolute paths).
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Socket == "" {
		c.Socket = d.Socket
	}
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	if c.CNIBinDir == "" {
		c.CNIBinDir = d.CNIBinDir
	}
	if c.Bridge == "" {
		c.Bridge = d.Bridge
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StateDir != "" {
		abs, err := filepath.Abs(c.StateDir)
		if err != nil {
			return c, fmt.Errorf("state directory %q: %w", c.StateDir, err)
		}
		c.StateDir = abs
	}
	return c, nil
}

// Validate checks a config after defaults are applied.
func (c Config) Validate() error {
	var errs []error
	if c.StateDir == "" {
		errs = append(errs, errors.New("StateDir is required: every node needs a state directory of its own"))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("Namespace is required"))
	}
	// Linux limits interface names to 15 bytes.
	if n := len(c.Bridge); n == 0 || n > 15 {
		errs = append(errs, fmt.Errorf("bridge name %q must have 1 to 15 characters", c.Bridge))
	}
	for _, r := range c.InsecureRegistries {
		if r == "" || strings.Contains(r, "/") {
			errs = append(errs, fmt.Errorf("insecure registry %q must be HOST:PORT (or HOST)", r))
		}
	}
	for _, m := range c.RegistryMirrors {
		if _, _, err := parseMirror(m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseMirror splits a registry mirror URL into its scheme and host.
func parseMirror(m string) (scheme, host string, err error) {
	u, perr := url.Parse(m)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", "", fmt.Errorf("registry mirror %q must be a URL such as http://10.0.0.1:5000 (scheme and host, no path)", m)
	}
	return u.Scheme, u.Host, nil
}
