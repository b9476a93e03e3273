package playground

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The playground's LAN. One playground runs on a machine at a time: the
// names and the subnet are fixed.
const (
	nsPrefix      = "shpg-"
	lanNS         = nsPrefix + "lan"
	bridge        = "br0"
	rootIf        = "shpg0"  // this machine's end of its cable to the LAN
	rootPort      = "p-root" // the bridge's end of it
	subnet        = "10.77.0."
	rootIP        = subnet + "1"
	registryAddr  = rootIP + ":5000"
	clusterPort   = 2377
	dashboardPort = 8080
	// NginxImage is the image that the playground's registry holds, as
	// Docker Hub's nginx.
	NginxImage = "nginx"
	// DefaultDir is where a playground keeps everything: in /run, which
	// only root may write to and which a reboot empties, as it does the
	// network namespaces.
	DefaultDir = "/run/shoal-playground"
	// MaxNodes bounds managers plus workers: addresses .11 to .210.
	MaxNodes = 200
)

// recordFile names the directory of the playground that is up, for the
// commands that are given another one. A variable so that unit tests do not
// see a playground that is up on the machine.
var recordFile = "/run/shoal-playground.dir"

// State is what `up` made, kept in DIR/state.json for the other commands.
type State struct {
	Dir string `json:"dir"`
	// Containerd is the socket of the containerd that the nodes share;
	// PrivateContainerd says whether the playground started it.
	Containerd        string  `json:"containerd"`
	PrivateContainerd bool    `json:"private_containerd"`
	Nodes             []*Node `json:"nodes"`
}

// Node is one daemon of the playground on a host of its own.
type Node struct {
	Name    string   `json:"name"` // node-01
	IP      string   `json:"ip"`
	Manager bool     `json:"manager"` // joined as a manager at `up`
	Args    []string `json:"args"`    // the daemon's command line
}

// NS is the node's network namespace, and its containerd namespace.
func (n *Node) NS() string { return nsPrefix + n.Name }

// port is the bridge's end of the node's cable, in the LAN's namespace.
func (n *Node) port() string { return "p-" + n.Name }

// Socket is where the node's daemon serves its local API, as -H takes it.
func (s *State) Socket(n *Node) string { return "unix://" + filepath.Join(s.Dir, n.Name+".sock") }

// DataDir is the node's --data-dir.
func (s *State) DataDir(n *Node) string { return filepath.Join(s.Dir, n.Name) }

// Dashboard is the URL of the node's dashboard, reachable from this machine.
func (n *Node) Dashboard() string { return fmt.Sprintf("http://%s:%d/", n.IP, dashboardPort) }

// Node finds a node by name, as "node-02" or "2".
func (s *State) Node(name string) (*Node, error) {
	if i, err := strconv.Atoi(name); err == nil {
		name = nodeName(i)
	}
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	names := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		names[i] = n.Name
	}
	return nil, fmt.Errorf("the playground has no node %q; it has %s", name, strings.Join(names, ", "))
}

func nodeName(i int) string { return fmt.Sprintf("node-%02d", i) }

func nodeIP(i int) string { return subnet + strconv.Itoa(10+i) }

// newState lays out a playground of managers and workers: node-01 first,
// the managers, then the workers.
func newState(dir string, managers, workers int, bin, containerdSock string) (*State, error) {
	if managers < 1 {
		return nil, fmt.Errorf("--managers %d: a swarm needs at least one manager", managers)
	}
	if workers < 0 {
		return nil, fmt.Errorf("--workers %d: cannot be negative", workers)
	}
	if managers+workers > MaxNodes {
		return nil, fmt.Errorf("%d managers and %d workers: the playground holds at most %d nodes", managers, workers, MaxNodes)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// containerd's ttrpc socket is the longest path a unix socket needs.
	if long := filepath.Join(abs, "containerd", "containerd.sock.ttrpc"); len(long) >= 108 {
		return nil, fmt.Errorf("--dir %s is too long for the unix sockets under it (%s is %d bytes; the limit is 107)", dir, long, len(long))
	}
	s := &State{Dir: abs, Containerd: containerdSock}
	for i := 1; i <= managers+workers; i++ {
		n := &Node{Name: nodeName(i), IP: nodeIP(i), Manager: i <= managers}
		n.Args = []string{bin, "daemon",
			"--data-dir", s.DataDir(n),
			"-H", s.Socket(n),
			"--hostname", n.Name,
			"--containerd-socket", containerdSock,
			"--containerd-namespace", n.NS(),
			"--registry-mirror", "http://" + registryAddr,
			"--insecure-registry", registryAddr,
			"--dashboard-addr", fmt.Sprintf("%s:%d", n.IP, dashboardPort),
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s, nil
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.Dir))
}

// makeDir makes the playground's directory, or accepts an empty one that
// only root can write to: the commands run as root what its files say.
func makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return checkDir(dir)
}

func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid = int(st.Uid)
	}
	if !fi.IsDir() || uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s must be a directory that only root can write to (it is %s, owner uid %d): the playground runs as root what it finds there; give --dir another directory, or fix its owner and mode", dir, fi.Mode(), uid)
	}
	return nil
}

// recordDir notes that the playground in dir is up; forgetDir undoes it.
func recordDir(dir string) error { return os.WriteFile(recordFile, []byte(dir+"\n"), 0o600) }

func forgetDir(dir string) {
	if b, err := os.ReadFile(recordFile); err == nil && strings.TrimSpace(string(b)) == dir {
		os.Remove(recordFile)
	}
}

// recordedDir is the directory of the playground that is up, or "".
func recordedDir() string {
	b, err := os.ReadFile(recordFile)
	if err != nil {
		return ""
	}
	dir := strings.TrimSpace(string(b))
	if _, err := os.Stat(dir); err != nil {
		return "" // removed by hand, or by a reboot
	}
	return dir
}

// ErrNotUp says that there is no playground in the directory.
var ErrNotUp = errors.New("no playground is up")

// Load reads the state of the playground in dir.
func Load(dir string) (*State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(abs))
	if errors.Is(err, fs.ErrNotExist) {
		if other := recordedDir(); other != "" && other != abs {
			return nil, fmt.Errorf("%w in %s; the one up is in %s: give --dir %s", ErrNotUp, abs, other, other)
		}
		return nil, fmt.Errorf("%w in %s: start one with `shoal playground up%s`", ErrNotUp, abs, DirFlag(abs))
	}
	if err != nil {
		return nil, err
	}
	if err := checkDir(abs); err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w (`shoal playground down%s` removes the playground anyway)", statePath(abs), err, DirFlag(abs))
	}
	s.Dir = abs
	return &s, nil
}
