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

// joinTimeout bounds the wait for every node to be Ready after the joins.
const joinTimeout = 60 * time.Second

// Up makes a playground: the LAN, containerd, the registry with nginx, and
// the nodes, node-01 initialising the swarm and the others joining it. When
// a step fails, what was made stays for a look, and Down removes it.
func Up(ctx context.Context, o Options) (*State, error) {
	if err := prerequisites(o.Containerd == "private"); err != nil {
		return nil, err
	}
	if s, err := Load(o.Dir); err == nil {
		return nil, fmt.Errorf("a playground is already up in %s (%d nodes): `shoal playground down` removes it", s.Dir, len(s.Nodes))
	}
	if left := playgroundNamespaces(); len(left) > 0 {
		return nil, fmt.Errorf("network namespaces of another playground exist (%s): `shoal playground down --dir DIR` with its directory removes them (or `ip netns del` them)", strings.Join(left, ", "))
	}
	_ = unplugRoot() // a cable left by a playground whose namespaces are gone
	log := func(format string, args ...any) { fmt.Fprintf(o.Log, "playground: "+format+"\n", args...) }
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s, err := newState(dir, o.Managers, o.Workers, o.Bin)
	if err != nil {
		return nil, err
	}
	if err := s.save(); err != nil { // from here on, Down finds what to remove
		return nil, err
	}
	failed := func(err error) (*State, error) {
		return s, fmt.Errorf("%w\nwhat was made stays for a look (logs in %s); `shoal playground down` removes it", err, s.Dir)
	}

	log("LAN %s0/24 on bridge %s in netns %s; this machine is %s on it (%s)", subnet, bridge, lanNS, rootIP, rootIf)
	if err := makeLAN(); err != nil {
		return failed(err)
	}
	if o.Containerd != "private" && ctrdutil.Answers(o.Containerd) == nil {
		s.Containerd = o.Containerd
		log("containerd: sharing the one at %s", s.Containerd)
	} else {
		s.Containerd, s.PrivateContainerd = privateSocket(dir), true
		log("containerd: starting the playground's own at %s", s.Containerd)
		if err := startContainerd(dir); err != nil {
			return failed(err)
		}
	}
	s.setContainerd(s.Containerd)
	if err := s.save(); err != nil {
		return failed(err)
	}
	log("registry: docker-registry at http://%s", registryAddr)
	if err := startRegistry(dir); err != nil {
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
		wg.Go(func() { errs[i] = startDaemon(s, n) })
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

// setContainerd names the containerd in every daemon's command line.
func (s *State) setContainerd(sock string) {
	for _, n := range s.Nodes {
		i := slices.Index(n.Args, "--containerd-socket")
		n.Args[i+1] = sock
	}
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
		ready := 0
		if err == nil {
			for _, n := range resp.Nodes {
				if n.State == api.NodeState_READY {
					ready++
				}
			}
		}
		if ready == len(s.Nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d nodes are Ready %s after the joins (%v); see the node logs", ready, len(s.Nodes), joinTimeout, err)
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
// errors, and returns them all.
func Down(dir string, log io.Writer) error {
	s, err := Load(dir)
	if errors.Is(err, ErrNotUp) {
		if left := playgroundNamespaces(); len(left) > 0 {
			fmt.Fprintf(log, "playground: no state in %s, but removing the playground's network namespaces\n", dir)
			return deleteNamespaces(left)
		}
		return err
	}
	if err != nil {
		return err
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
	fmt.Fprintf(log, "playground: daemons stopped\n")
	errs = append(errs, s.removeContainers(log))
	if pid := running(s.Dir, "registry", registryMarker(s.Dir)); pid != 0 {
		errs = append(errs, stop(pid, 10*time.Second))
	}
	errs = append(errs, deleteNamespaces(playgroundNamespaces()))
	errs = append(errs, unmountBelow(s.Dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\n%s stays, for a look", err, s.Dir)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return err
	}
	fmt.Fprintf(log, "playground: removed the namespaces, the containers and %s\n", s.Dir)
	return nil
}

// removeContainers empties and deletes every node's containerd namespace,
// then stops the playground's own containerd. A private containerd that
// died is started again for that.
func (s *State) removeContainers(log io.Writer) error {
	if s.Containerd == "" {
		return nil
	}
	marker := containerdMarker(s.Dir)
	if s.PrivateContainerd && running(s.Dir, "containerd", marker) == 0 {
		fmt.Fprintf(log, "playground: starting the playground's containerd again, to remove its containers\n")
		if err := startContainerd(s.Dir); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range s.Nodes {
		if err := ctrdutil.DeleteNamespace(s.Containerd, n.NS()); err != nil && !strings.Contains(err.Error(), "not found") {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
		// runc's state of a shared containerd's namespace, once empty.
		os.Remove(filepath.Join("/run/containerd/runc", n.NS()))
	}
	fmt.Fprintf(log, "playground: removed the nodes' containers and images from containerd\n")
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
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
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
		return fmt.Errorf("%s's daemon does not run", n.Name)
	}
	return stop(pid, 15*time.Second)
}

// Start starts the node's daemon again, on its data dir: it comes back into
// the swarm by itself.
func Start(s *State, n *Node) error {
	if pid := running(s.Dir, n.Name, daemonMarker(s, n)); pid != 0 {
		return fmt.Errorf("%s's daemon already runs (pid %d)", n.Name, pid)
	}
	return startDaemon(s, n)
}

// Partition pulls the node's cable: it keeps running, cut off from the
// others.
func Partition(n *Node) error { return setCable(n, false) }

// Heal plugs the node's cable back in.
func Heal(n *Node) error { return setCable(n, true) }

// Env is what points the CLI at a node, for eval.
func Env(s *State, n *Node) string {
	return fmt.Sprintf("export SHOAL_HOST=%s\n# Run this command to configure your shell:\n# eval $(shoal playground env %s)\n", s.Socket(n), n.Name)
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
	return tw.Flush()
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
