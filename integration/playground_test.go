package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/testhost"
	"github.com/shoal-dev/shoal/playground"
)

// playgroundRun is a playground in a temp dir, run through the CLI.
type playgroundRun struct {
	t   *testing.T
	bin string
	dir string
}

// newPlaygroundRun checks the prerequisites; the playground it names is
// removed at cleanup if it is still up.
func newPlaygroundRun(t *testing.T) *playgroundRun {
	testhost.Require(t)
	imagetest.RequireContainerd(t)
	imagetest.RequireRegistry(t)
	inUse := []string{"/var/run/netns/shpg-lan", "/sys/class/net/shpg0"}
	if b, err := os.ReadFile("/run/shoal-playground.dir"); err == nil {
		inUse = append(inUse, strings.TrimSpace(string(b))) // the directory of the one that is up
	}
	for _, p := range inUse {
		if _, err := os.Stat(p); err == nil {
			// One playground per machine: a developer's own is in the way.
			testhost.SkipOrFail(t, fmt.Sprintf("a playground is up on this machine (%s exists): `shoal playground down` removes it", p))
		}
	}
	p := &playgroundRun{t: t, bin: clustertest.BuildShoal(t), dir: filepath.Join(t.TempDir(), "pg")}
	t.Cleanup(func() {
		if _, err := os.Stat(p.dir); err == nil {
			if out, err := p.pg("down"); err != nil {
				t.Errorf("cleanup: %v (%s)", err, out)
			}
		}
	})
	return p
}

func (p *playgroundRun) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("shoal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// pg runs `shoal playground --dir DIR ARGS`.
func (p *playgroundRun) pg(args ...string) (string, error) {
	return p.run(append([]string{"playground", "--dir", p.dir}, args...)...)
}

func (p *playgroundRun) mustPG(args ...string) string {
	p.t.Helper()
	out, err := p.pg(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// on runs the CLI against a node of the playground.
func (p *playgroundRun) on(node string, args ...string) (string, error) {
	return p.run(append([]string{"-H", "unix://" + filepath.Join(p.dir, node+".sock")}, args...)...)
}

// down runs `down` and checks that nothing the playground made is left.
func (p *playgroundRun) down() {
	t := p.t
	t.Helper()
	start := time.Now()
	p.mustPG("down")
	t.Logf("playground down took %s", time.Since(start).Round(10*time.Millisecond))
	if _, err := os.Stat(p.dir); err == nil {
		t.Errorf("%s still exists after down", p.dir)
	}
	if left, _ := filepath.Glob("/var/run/netns/shpg-*"); len(left) > 0 {
		t.Errorf("network namespaces left after down: %v", left)
	}
	if _, err := os.Stat("/sys/class/net/shpg0"); err == nil {
		t.Error("interface shpg0 left after down")
	}
	if out, _ := exec.Command("pgrep", "-f", p.dir).Output(); len(out) > 0 {
		t.Errorf("processes naming %s left after down: %s", p.dir, out)
	}
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/shpg-node-*")
	v2, _ := filepath.Glob("/sys/fs/cgroup/shpg-node-*")
	if cgs := append(v1, v2...); len(cgs) > 0 {
		t.Errorf("cgroups left after down: %v", cgs)
	}
	if _, err := os.Stat("/run/shoal-playground.dir"); err == nil {
		t.Error("/run/shoal-playground.dir left after down")
	}
	if _, err := p.pg("ls"); err == nil || !strings.Contains(err.Error(), "no playground is up") {
		t.Errorf("ls after down: got %v", err)
	}
}

// The playground as a learner uses it, through the CLI: up (with its own
// containerd), nginx x8, kill the leader, partition a node and heal it,
// start the killed node, down; and down leaves nothing behind.
func TestPlayground(t *testing.T) {
	p := newPlaygroundRun(t)
	pg, mustPG, on, dir := p.pg, p.mustPG, p.on, p.dir

	start := time.Now()
	out := mustPG("up", "--managers", "3", "--workers", "1", "--containerd", "private")
	t.Logf("playground up took %s", time.Since(start).Round(10*time.Millisecond))
	for _, want := range []string{"playground --dir " + dir + " env node-01", "http://10.77.0.11:8080/"} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q:\n%s", want, out)
		}
	}
	if _, err := pg("up"); err == nil || !strings.Contains(err.Error(), "a playground is up in "+dir) {
		t.Errorf("a second up: got %v, want a refusal that names the one up", err)
	}
	ls := mustPG("ls")
	rows := playgroundRows(t, ls)
	if len(rows) != 4 {
		t.Fatalf("ls: got %d nodes, want 4:\n%s", len(rows), ls)
	}
	if !strings.Contains(ls, "containerd: the playground's own") || !strings.Contains(ls, "registry:   http://10.77.0.1:5000\n") {
		t.Errorf("ls does not say how containerd and the registry are:\n%s", ls)
	}
	if r := rows["node-01"]; !strings.HasPrefix(r["RAFT"], "Leader") || r["NETWORK"] != "connected" {
		t.Errorf("node-01 after up: %v, want the connected leader", r)
	}
	if r := rows["node-04"]; r["ROLE"] != "worker" || !strings.HasPrefix(r["DAEMON"], "running") {
		t.Errorf("node-04 after up: %v, want a running worker", r)
	}
	if env := mustPG("env", "node-02"); !strings.Contains(env, "export SHOAL_HOST=unix://"+filepath.Join(dir, "node-02.sock")) {
		t.Errorf("env node-02: %s", env)
	}
	if _, err := pg("kill", "node-09"); err == nil || !strings.Contains(err.Error(), "node-01, node-02, node-03, node-04") {
		t.Errorf("kill node-09: got %v, want an error that lists the nodes", err)
	}

	// "nginx" comes from the playground's registry, as Docker Hub's nginx.
	if out, err := on("node-02", "service", "create", "--name", "nginx", "--replicas", "8", "--timeout", "2m", "nginx"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, "converged") {
		t.Errorf("service create: %s", out)
	}
	// The dashboard address is reachable from this machine.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://10.77.0.12:8080/metrics")
	if err != nil {
		t.Fatalf("node-02's dashboard address from this machine: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "shoal_raft_term") {
		t.Errorf("node-02's /metrics has no shoal_raft_term:\n%.500s", body)
	}

	mustPG("kill", "node-01")
	clustertest.WaitFor(t, 20*time.Second, "a new leader after the kill", func() error {
		rows := playgroundRows(t, mustPG("ls"))
		if d := rows["node-01"]["DAEMON"]; d != "stopped" {
			return fmt.Errorf("node-01's daemon is %q", d)
		}
		for _, n := range []string{"node-02", "node-03"} {
			if strings.HasPrefix(rows[n]["RAFT"], "Leader") {
				return nil
			}
		}
		return fmt.Errorf("no leader among node-02 and node-03: %v %v", rows["node-02"], rows["node-03"])
	})

	mustPG("partition", "node-04")
	if r := playgroundRows(t, mustPG("ls"))["node-04"]; r["NETWORK"] != "partitioned" {
		t.Errorf("node-04 after partition: %v", r)
	}
	clustertest.WaitFor(t, 30*time.Second, "the managers to see node-04 Down", func() error {
		return nodeState(on, "node-02", "node-04", "Down")
	})
	mustPG("heal", "node-04")
	clustertest.WaitFor(t, 30*time.Second, "node-04 Ready again", func() error {
		return nodeState(on, "node-02", "node-04", "Ready")
	})

	mustPG("start", "node-01")
	if _, err := pg("start", "node-01"); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Errorf("start of a running node: got %v", err)
	}
	clustertest.WaitFor(t, 20*time.Second, "node-01 back as a follower", func() error {
		if r := playgroundRows(t, mustPG("ls"))["node-01"]; !strings.HasPrefix(r["RAFT"], "Follower") {
			return fmt.Errorf("node-01: %v", r)
		}
		return nil
	})
	clustertest.WaitFor(t, time.Minute, "8 nginx tasks running", func() error {
		out, err := on("node-01", "service", "ls", "--format", "{{.Replicas}}")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "8/8" {
			return fmt.Errorf("replicas %s", strings.TrimSpace(out))
		}
		return nil
	})

	p.down()
}

// A playground shares a containerd that answers, and down removes its
// namespaces from it, and nothing else.
func TestPlaygroundSharesContainerd(t *testing.T) {
	p := newPlaygroundRun(t)
	socket := imagetest.SharedContainerd(t)
	if out := p.mustPG("up", "--managers", "1", "--workers", "1", "--containerd", socket); !strings.Contains(out, "sharing the one at "+socket) {
		t.Errorf("up does not say it shares %s:\n%s", socket, out)
	}
	if _, err := p.on("node-01", "service", "create", "--name", "nginx", "--replicas", "2", "--timeout", "2m", "nginx"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ctr", "-a", socket, "namespaces", "ls", "-q").Output(); err != nil || !strings.Contains(string(out), "shpg-node-02") {
		t.Errorf("the shared containerd's namespaces: %s (%v), want shpg-node-02 among them", out, err)
	}
	// down needs no state file: it finds the nodes, and the containerd they
	// use, from what runs.
	if err := os.WriteFile(filepath.Join(p.dir, "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.down()
	if out := p.mustPG("down"); !strings.Contains(out, "nothing to remove") {
		t.Errorf("a second down: %s", out)
	}
	out, err := exec.Command("ctr", "-a", socket, "namespaces", "ls", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "shpg-") {
		t.Errorf("the shared containerd still has playground namespaces after down:\n%s", out)
	}
}

// playgroundRows parses `playground ls` into rows by node, cells by header.
func playgroundRows(t *testing.T, out string) map[string]map[string]string {
	t.Helper()
	table, _, _ := strings.Cut(out, "\n\n") // containerd and registry follow the table
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := lines[0]
	cols := []string{"NODE", "ADDRESS", "DAEMON", "NETWORK", "ROLE", "RAFT", "DASHBOARD"}
	starts := make([]int, len(cols))
	for i, c := range cols {
		if starts[i] = strings.Index(header, c); starts[i] < 0 {
			t.Fatalf("ls has no column %s:\n%s", c, out)
		}
	}
	rows := map[string]map[string]string{}
	for _, l := range lines[1:] {
		r := map[string]string{}
		for i, c := range cols {
			end := len(l)
			if i+1 < len(cols) {
				end = min(starts[i+1], len(l))
			}
			r[c] = strings.TrimSpace(l[min(starts[i], len(l)):end])
		}
		rows[r["NODE"]] = r
	}
	return rows
}

// nodeState checks a node's STATUS in `node ls` on a manager.
func nodeState(on func(string, ...string) (string, error), via, node, want string) error {
	out, err := on(via, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == node {
			if f[1] != want {
				return fmt.Errorf("%s is %s", node, f[1])
			}
			return nil
		}
	}
	return fmt.Errorf("%s is not in node ls:\n%s", node, out)
}

// make demo, the README's main command: its script brings a playground up
// with nginx x8 running, and says where the dashboard is.
func TestDemoScript(t *testing.T) {
	p := newPlaygroundRun(t)
	p.dir = playground.DefaultDir // the script uses the default directory
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "SHOAL_BIN="+p.bin)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	t.Logf("scripts/demo.sh took %s", time.Since(start).Round(10*time.Millisecond))
	for _, want := range []string{"verify: Service converged", "http://10.77.0.11:8080/", "node-04"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	ps, err := p.on("node-01", "service", "ps", "nginx", "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(ps, "Running"); n != 8 {
		t.Errorf("%d nginx tasks running after the demo, want 8:\n%s", n, ps)
	}
	p.down()
}
