package playground

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
	"github.com/shoal-dev/shoal/internal/imagebuild"
)

// Options are `playground up`'s.
type Options struct {
	Dir      string
	Managers int
	Workers  int
	// Bin is the shoal binary the daemons run.
	Bin string
	// Containerd is the socket of a containerd to share if it answers;
	// "private" always starts the playground's own.
	Containerd string
	// Log gets one line per step.
	Log io.Writer
	// NoSwarm leaves the daemons out of any swarm, for a tutorial that
	// runs swarm init and join by hand.
	NoSwarm bool
}

// DefaultContainerd is the containerd that `up` uses when it answers.
const DefaultContainerd = "/run/containerd/containerd.sock"

// DefaultOptions are `playground up`'s defaults: three managers and a
// worker, sharing the machine's containerd if it answers.
func DefaultOptions() Options {
	return Options{Dir: DefaultDir, Managers: 3, Workers: 1, Containerd: DefaultContainerd}
}

// DirFlag is what a hint adds to name the playground's directory.
func DirFlag(dir string) string {
	if dir == DefaultDir {
		return ""
	}
	return " --dir " + dir
}

// joinTimeout bounds the wait for every node to be Ready after the joins.
const joinTimeout = 60 * time.Second

// Up makes a playground: the LAN, containerd, the registry with nginx, and
// the nodes, node-01 initialising the swarm and the others joining it. When
// a step fails, what was made stays for a look, and Down removes it.
func Up(ctx context.Context, o Options) (*State, error) {
	private := o.Containerd == "private"
	if err := prerequisites(private); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if other := recordedDir(); other != "" {
		return nil, fmt.Errorf("a playground is up in %s: `shoal playground down%s` removes it", other, DirFlag(other))
	}
	if left := playgroundNamespaces(); len(left) > 0 {
		return nil, fmt.Errorf("network namespaces of another playground exist (%s): `shoal playground down` removes them, and the nodes it finds in them (or `ip netns del` them)", strings.Join(left, ", "))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty: `shoal playground down%s` removes what a playground left there (or give --dir another directory)", dir, DirFlag(dir))
	}
	if err := makeDir(dir); err != nil {
		return nil, err
	}
	sock := o.Containerd
	if private || ctrdutil.Answers(sock) != nil {
		sock, private = privateSocket(dir), true
	}
	s, err := newState(dir, o.Managers, o.Workers, o.Bin, sock)
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	s.PrivateContainerd = private
	if err := s.save(); err != nil { // from here on, Down finds what to remove
		return nil, err
	}
	if err := recordDir(dir); err != nil {
		return nil, err
	}
	_ = unplugRoot() // a cable left by a playground whose namespaces are gone
	log := func(format string, args ...any) { fmt.Fprintf(o.Log, "playground: "+format+"\n", args...) }
	failed := func(err error) (*State, error) {
		return s, fmt.Errorf("%w\nwhat was made stays for a look (logs in %s); `shoal playground down%s` removes it", err, s.Dir, DirFlag(s.Dir))
	}

	log("LAN %s0/24 on bridge %s in netns %s; this machine is %s on it (%s)", subnet, bridge, lanNS, rootIP, rootIf)
	if err := makeLAN(); err != nil {
		return failed(err)
	}
	if s.PrivateContainerd {
		log("containerd: starting the playground's own at %s", s.Containerd)
		if err := startContainerd(ctx, dir); err != nil {
			return failed(err)
		}
	} else {
		log("containerd: sharing the one at %s", s.Containerd)
	}
	log("registry: docker-registry at http://%s", registryAddr)
	if err := startRegistry(ctx, dir); err != nil {
		return failed(err)
	}
	digest, err := pushNginx(ctx)
	if err != nil {
		return failed(err)
	}
	log("registry: %s/library/nginx:latest (%s), built from this machine's nginx; the nodes pull %q from there", registryAddr, digest, NginxImage)

	for _, n := range s.Nodes {
		if err := makeHost(n); err != nil {
			return failed(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(s.Nodes))
	for i, n := range s.Nodes {
		wg.Go(func() { errs[i] = startDaemon(ctx, s, n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return failed(err)
	}
	log("daemons: %d up, one per netns (%s...)", len(s.Nodes), s.Nodes[0].NS())
	if o.NoSwarm {
		return s, nil
	}
	if err := formSwarm(ctx, s, log); err != nil {
		return failed(err)
	}
	return s, nil
}

// formSwarm: node-01 inits, the other managers join one at a time (each
// is a Raft membership change), then the workers all at once.
func formSwarm(ctx context.Context, s *State, log func(string, ...any)) error {
	first := s.Nodes[0]
	cc, err := dial(s, first)
	if err != nil {
		return err
	}
	defer cc.Close()
	swarm, control := api.NewSwarmClient(cc), api.NewControlClient(cc)
	if _, err := swarm.Init(ctx, &api.InitRequest{AdvertiseAddr: first.IP}); err != nil {
		return fmt.Errorf("%s: swarm init: %w", first.Name, err)
	}
	log("%s: swarm init --advertise-addr %s", first.Name, first.IP)
	tokens := map[bool]string{}
	for _, manager := range []bool{false, true} {
		role := api.NodeRole_WORKER
		if manager {
			role = api.NodeRole_MANAGER
		}
		t, err := control.GetJoinToken(ctx, &api.GetJoinTokenRequest{Role: role})
		if err != nil {
			return fmt.Errorf("%s: join-token: %w", first.Name, err)
		}
		tokens[manager] = t.Token
	}
	join := func(n *Node) error {
		ncc, err := dial(s, n)
		if err != nil {
			return err
		}
		defer ncc.Close()
		_, err = api.NewSwarmClient(ncc).Join(ctx, &api.JoinRequest{
			RemoteAddr: fmt.Sprintf("%s:%d", first.IP, clusterPort), Token: tokens[n.Manager], AdvertiseAddr: n.IP})
		if err != nil {
			return fmt.Errorf("%s: swarm join: %w", n.Name, err)
		}
		role := "worker"
		if n.Manager {
			role = "manager"
		}
		log("%s: joined as a %s", n.Name, role)
		return nil
	}
	var workers []*Node
	for _, n := range s.Nodes[1:] {
		if !n.Manager {
			workers = append(workers, n)
			continue
		}
		if err := join(n); err != nil {
			return err
		}
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, n := range workers {
		wg.Go(func() { errs[i] = join(n) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	deadline := time.Now().Add(joinTimeout)
	for {
		resp, err := control.ListNodes(ctx, &api.ListNodesRequest{})
		var notReady []string
		if err == nil {
			ready := map[string]bool{}
			for _, n := range resp.Nodes {
				ready[n.Hostname] = n.State == api.NodeState_READY
			}
			for _, n := range s.Nodes {
				if !ready[n.Name] {
					notReady = append(notReady, n.Name)
				}
			}
			if len(notReady) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s cannot list the nodes %s after the joins: %w", first.Name, joinTimeout, err)
			}
			return fmt.Errorf("%s %s not Ready %s after the joins; see %s", strings.Join(notReady, ", "),
				plural(len(notReady), "is", "are"), joinTimeout, LogFile(s.Dir, notReady[0]))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prerequisites names what is missing, and how to get it.
func prerequisites(privateContainerd bool) error {
	if os.Geteuid() != 0 {
		return errNoRoot
	}
	var missing []string
	need := map[string]string{"ip": "iproute2", "nsenter": "util-linux", "runc": "runc", "docker-registry": "docker-registry"}
	if privateContainerd {
		need["containerd"] = "containerd"
	} else if _, err := os.Stat(DefaultContainerd); err != nil {
		need["containerd"] = "containerd"
	}
	for bin, pkg := range need {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", bin, pkg))
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		missing = append(missing, "the CNI plugins in /usr/lib/cni (Debian package containernetworking-plugins)")
	}
	missing = append(missing, imagebuild.Lookup("nginx").Missing()...)
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("the playground needs %s: `make deps` installs them", strings.Join(missing, ", "))
}

// Down removes everything the playground in dir made. It goes on past
// errors, and returns them all. It needs no state file: without one (a
// failed up, a broken file) it finds the nodes by their PID files and
// namespaces.
func Down(dir string, log io.Writer) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if other := recordedDir(); other != "" && other != abs {
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("no playground in %s; the one up is in %s: `shoal playground down --dir %s`", abs, other, other)
		}
	}
	s, err := Load(abs)
	if err != nil {
		if _, statErr := os.Stat(abs); statErr != nil && len(playgroundNamespaces()) == 0 {
			fmt.Fprintf(log, "playground: none is up in %s; nothing to remove\n", abs)
			return nil
		}
		fmt.Fprintf(log, "playground: %v; removing what is there anyway\n", err)
		s = salvage(abs)
	}
	// The daemons first, all at once: nothing may start containers after.
	errs := make([]error, len(s.Nodes))
	var wg sync.WaitGroup
	for i, n := range s.Nodes {
		if pid := running(s.Dir, n.Name, daemonMarker(s, n)); pid != 0 {
			wg.Go(func() {
				if err := stop(pid, 10*time.Second); err != nil {
					errs[i] = fmt.Errorf("%s: %w", n.Name, err)
				}
			})
		}
	}
	wg.Wait()
	errs = append(errs, s.removeContainers(log))
	if pid := running(s.Dir, "registry", registryMarker(s.Dir)); pid != 0 {
		errs = append(errs, stop(pid, 10*time.Second))
	}
	errs = append(errs, deleteNamespaces(playgroundNamespaces()))
	errs = append(errs, unmountBelow(s.Dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\n%s stays: fix the above, then run `shoal playground down%s` again", err, s.Dir, DirFlag(s.Dir))
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return err
	}
	forgetDir(s.Dir)
	fmt.Fprintf(log, "playground: removed the daemons, their containers, the namespaces and %s\n", s.Dir)
	return nil
}

// salvage makes up the state of a playground whose state file is missing
// or broken: its nodes from their PID files and namespaces, its containerd
// from what the directory holds.
func salvage(dir string) *State {
	s := &State{Dir: dir, Containerd: DefaultContainerd}
	if _, err := os.Stat(filepath.Join(containerdDir(dir), "config.toml")); err == nil {
		s.Containerd, s.PrivateContainerd = privateSocket(dir), true
	}
	names := map[string]bool{}
	pids, _ := filepath.Glob(filepath.Join(dir, "node-*.pid"))
	for _, p := range pids {
		names[strings.TrimSuffix(filepath.Base(p), ".pid")] = true
	}
	for _, ns := range playgroundNamespaces() {
		if name, ok := strings.CutPrefix(ns, nsPrefix); ok && strings.HasPrefix(name, "node-") {
			names[name] = true
		}
	}
	for name := range names {
		n := &Node{Name: name}
		s.Nodes = append(s.Nodes, n)
		// A daemon that still runs says which containerd it uses.
		if pid := running(dir, name, daemonMarker(s, n)); pid != 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
				args := strings.Split(string(b), "\x00")
				if i := slices.Index(args, "--containerd-socket"); i >= 0 && i+1 < len(args) {
					s.Containerd = args[i+1]
					s.PrivateContainerd = s.Containerd == privateSocket(dir)
				}
			}
		}
	}
	slices.SortFunc(s.Nodes, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// removeContainers empties and deletes every node's containerd namespace,
// then stops the playground's own containerd. A private containerd that
// died, or hangs, is started again for that.
func (s *State) removeContainers(log io.Writer) error {
	marker := containerdMarker(s.Dir)
	answers := ctrdutil.Answers(s.Containerd) == nil
	if s.PrivateContainerd && !answers {
		if pid := running(s.Dir, "containerd", marker); pid != 0 {
			fmt.Fprintf(log, "playground: the playground's containerd does not answer; restarting it\n")
			if err := stop(pid, 5*time.Second); err != nil {
				return err
			}
		}
		if _, err := os.Stat(filepath.Join(containerdDir(s.Dir), "config.toml")); err != nil {
			return nil // never started
		}
		fmt.Fprintf(log, "playground: starting the playground's containerd again, to remove its containers\n")
		if err := startContainerd(context.Background(), s.Dir); err != nil {
			return err
		}
		answers = ctrdutil.Answers(s.Containerd) == nil
	}
	errs := make([]error, len(s.Nodes))
	if answers {
		var wg sync.WaitGroup
		for i, n := range s.Nodes {
			wg.Go(func() {
				if err := ctrdutil.DeleteNamespace(s.Containerd, n.NS()); err != nil {
					errs[i] = fmt.Errorf("%s: %w", n.Name, err)
				}
				// runc's state of the namespace, once empty.
				os.Remove(filepath.Join("/run/containerd/runc", n.NS()))
			})
		}
		wg.Wait()
	}
	if pid := running(s.Dir, "containerd", marker); pid != 0 {
		errs = append(errs, stop(pid, 15*time.Second))
	}
	return errors.Join(errs...)
}

func deleteNamespaces(names []string) error {
	errs := []error{unplugRoot()}
	for _, ns := range names {
		errs = append(errs, deleteNS(ns))
	}
	return errors.Join(errs...)
}

// unmountBelow detaches what is still mounted below dir, deepest first:
// network namespaces that daemons pinned for their tasks, containerd's
// snapshots.
func unmountBelow(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 {
			if mp := unescapeMount(f[4]); strings.HasPrefix(mp, dir+"/") {
				mps = append(mps, mp)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	var errs []error
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline
// and backslash.
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// Kill sends SIGKILL to the node's daemon: a crash.
func Kill(s *State, n *Node) error {
	pid := running(s.Dir, n.Name, daemonMarker(s, n))
	if pid == 0 {
		return fmt.Errorf("%s's daemon does not run: `shoal playground start %s` starts it", n.Name, n.Name)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone([]int{pid}, 5*time.Second) {
		return fmt.Errorf("%s's daemon (pid %d) outlived SIGKILL", n.Name, pid)
	}
	return nil
}

// Stop stops the node's daemon the polite way (SIGTERM).
func Stop(s *State, n *Node) error {
	pid := running(s.Dir, n.Name, daemonMarker(s, n))
	if pid == 0 {
		return fmt.Errorf("%s's daemon does not run; `shoal playground ls%s` shows what does", n.Name, DirFlag(s.Dir))
	}
	return stop(pid, 15*time.Second)
}

// Start starts the node's daemon again, on its data dir: it comes back into
// the swarm by itself.
func Start(s *State, n *Node) error {
	if pid := running(s.Dir, n.Name, daemonMarker(s, n)); pid != 0 {
		return fmt.Errorf("%s's daemon already runs (pid %d)", n.Name, pid)
	}
	if !nsExists(n.NS()) {
		return fmt.Errorf("%s's network namespace %s is gone (was the machine restarted?): `shoal playground down%s`, then up", n.Name, n.NS(), DirFlag(s.Dir))
	}
	return startDaemon(context.Background(), s, n)
}

// Partition pulls the node's cable: it keeps running, cut off from the
// others.
func Partition(n *Node) error { return setCable(n, false) }

// Heal plugs the node's cable back in.
func Heal(n *Node) error { return setCable(n, true) }

// Env is what points the CLI at a node, for eval.
func Env(s *State, n *Node) string {
	return fmt.Sprintf("export SHOAL_HOST=%s\n# Run this command to configure your shell:\n# eval $(shoal playground%s env %s)\n", s.Socket(n), DirFlag(s.Dir), n.Name)
}

// List writes a table of the nodes: whether each daemon runs, whether its
// cable is in, and its Raft state as it sees it.
func List(ctx context.Context, w io.Writer, s *State) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tDAEMON\tNETWORK\tROLE\tRAFT\tDASHBOARD")
	rows := make([]string, len(s.Nodes))
	var wg sync.WaitGroup
	for i, n := range s.Nodes {
		wg.Go(func() { rows[i] = listRow(ctx, s, n) })
	}
	wg.Wait()
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	cd := "shared, at " + s.Containerd
	if s.PrivateContainerd {
		cd = "the playground's own, at " + s.Containerd
	}
	if ctrdutil.Answers(s.Containerd) != nil {
		cd += " (NOT ANSWERING: tasks cannot start)"
	}
	reg := "http://" + registryAddr
	if running(s.Dir, "registry", registryMarker(s.Dir)) == 0 {
		reg += " (NOT RUNNING: images cannot be pulled)"
	}
	_, err := fmt.Fprintf(w, "\ncontainerd: %s\nregistry:   %s\n", cd, reg)
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func listRow(ctx context.Context, s *State, n *Node) string {
	daemon, role, raft := "stopped", "-", "-"
	if pid := running(s.Dir, n.Name, daemonMarker(s, n)); pid != 0 {
		daemon = fmt.Sprintf("running (pid %d)", pid)
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		in, err := info(ictx, s, n)
		cancel()
		switch {
		case err != nil:
			role = "not answering"
		case in.LocalNodeState == "inactive":
			role = "not in a swarm"
		case in.ControlAvailable:
			role = "manager"
			if r := in.GetRaft(); r != nil {
				raft = fmt.Sprintf("%s, term %d", r.State, r.Term)
			}
		default:
			role = "worker"
		}
	}
	network := "connected"
	if in, err := cableIn(n); err != nil {
		network = "?"
	} else if !in {
		network = "partitioned"
	}
	return strings.Join([]string{n.Name, n.IP, daemon, network, role, raft, n.Dashboard()}, "\t")
}
