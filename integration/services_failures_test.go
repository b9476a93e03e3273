package integration

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
)

// of returns the tasks of one service.
func (c *serviceCluster) of(t *testing.T, service string) []task {
	var out []task
	for _, x := range c.tasks(t) {
		if x.Service == service {
			out = append(out, x)
		}
	}
	return out
}

// waitTasks waits until the service's tasks satisfy ok, and returns them.
func (c *serviceCluster) waitTasks(t *testing.T, service, what string, ok func([]task) error) []task {
	t.Helper()
	var ts []task
	clustertest.WaitFor(t, converge, service+": "+what, func() error {
		ts = c.of(t, service)
		if err := ok(ts); err != nil {
			return fmt.Errorf("%v\nservice ps:\n%s", err, c.psOut(service))
		}
		return nil
	})
	return ts
}

// holds checks that the service's tasks keep satisfying ok for a while:
// the way to see that something does not happen (no further restart).
func (c *serviceCluster) holds(t *testing.T, service string, d time.Duration, ok func([]task) error) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err := ok(c.of(t, service)); err != nil {
			t.Fatalf("%s: %v\nservice ps:\n%s", service, err, c.psOut(service))
		}
	}
}

func count(ts []task, state string) int {
	n := 0
	for _, x := range ts {
		if x.State == state {
			n++
		}
	}
	return n
}

// Restart policies, on real containers that exit.
func TestServiceRestartPolicy(t *testing.T) {
	c := newServiceCluster(t, 2, 1)
	shell := c.images.Shell
	const delay = 2 * time.Second

	t.Run("any restarts after the delay, up to max attempts", func(t *testing.T) {
		c.node(1).MustCLI(t, "service", "create", "-d", "--name", "fail", "--restart-delay", delay.String(),
			"--restart-max-attempts", "2", shell, "exit 3")
		ts := c.waitTasks(t, "fail", "three failed tasks in slot 1", func(ts []task) error {
			if len(ts) != 3 || count(ts, "FAILED") != 3 {
				return fmt.Errorf("%d tasks, %d failed", len(ts), count(ts, "FAILED"))
			}
			return nil
		})
		for _, x := range ts {
			if x.Slot != "1" || !strings.Contains(x.Error, "non-zero exit (3)") {
				t.Errorf("task %+v: want slot 1 and a non-zero exit (3) error", x)
			}
		}
		// Each restart waited for the delay after the previous task ended.
		slices.SortFunc(ts, func(a, b task) int { return cmp.Compare(a.Created, b.Created) })
		for i := 1; i < len(ts); i++ {
			if gap := time.Duration(ts[i].Created - ts[i-1].Since); gap < delay-100*time.Millisecond {
				t.Errorf("restart %d came %s after the previous task ended; the delay is %s", i, gap, delay)
			}
		}
		c.holds(t, "fail", 2*delay, func(ts []task) error {
			if len(ts) != 3 {
				return fmt.Errorf("restarted beyond max attempts: %d tasks", len(ts))
			}
			return nil
		})
		ps := c.node(1).MustCLI(t, "service", "ps", "fail")
		if strings.Count(ps, `\_ fail.1`) != 2 || !strings.Contains(ps, "non-zero exit (3)") {
			t.Errorf("service ps lacks the history rows or the error:\n%s", ps)
		}
	})

	t.Run("on-failure does not restart a clean exit", func(t *testing.T) {
		c.node(1).MustCLI(t, "service", "create", "-d", "--name", "clean", "--restart-condition", "on-failure",
			"--restart-delay", "500ms", shell, "exit 0")
		c.waitTasks(t, "clean", "one complete task", func(ts []task) error {
			if len(ts) != 1 || count(ts, "COMPLETE") != 1 {
				return fmt.Errorf("%d tasks, %d complete", len(ts), count(ts, "COMPLETE"))
			}
			return nil
		})
		c.holds(t, "clean", 2*time.Second, func(ts []task) error {
			if len(ts) != 1 {
				return fmt.Errorf("a clean exit was restarted: %d tasks", len(ts))
			}
			return nil
		})
	})

	t.Run("none never restarts", func(t *testing.T) {
		c.node(1).MustCLI(t, "service", "create", "-d", "--name", "once", "--restart-condition", "none",
			"--restart-delay", "500ms", shell, "exit 1")
		c.waitTasks(t, "once", "one failed task", func(ts []task) error {
			if len(ts) != 1 || count(ts, "FAILED") != 1 {
				return fmt.Errorf("%d tasks, %d failed", len(ts), count(ts, "FAILED"))
			}
			return nil
		})
		c.holds(t, "once", 2*time.Second, func(ts []task) error {
			if len(ts) != 1 {
				return fmt.Errorf("restarted with condition none: %d tasks", len(ts))
			}
			return nil
		})
	})

	t.Run("an image that does not exist", func(t *testing.T) {
		ref := strings.Replace(c.images.Nginx, "nginx", "no-such-image", 1)
		c.node(1).MustCLI(t, "service", "create", "-d", "--name", "ghost", "--restart-delay", "500ms", ref)
		c.waitTasks(t, "ghost", "a task rejected for the missing image", func(ts []task) error {
			for _, x := range ts {
				if x.State == "REJECTED" && strings.Contains(x.Error, "No such image") {
					return nil
				}
			}
			return fmt.Errorf("no rejected task: %v", ts)
		})
		if ps := c.node(1).MustCLI(t, "service", "ps", "ghost"); !strings.Contains(ps, "No such image") {
			t.Errorf("service ps does not show the error:\n%s", ps)
		}
		ghosts := map[string]bool{}
		for _, x := range c.of(t, "ghost") {
			ghosts["container "+x.ID] = true
			ghosts["snapshot "+x.ID] = true
		}
		for i, ns := range c.namespaces {
			left, err := imagetest.Leftovers(t, c.containerd, ns)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range left {
				if ghosts[l] {
					t.Errorf("node-%02d holds %s for an image that does not exist", i+1, l)
				}
			}
		}
	})

	for _, s := range []string{"fail", "clean", "once", "ghost"} {
		c.node(1).MustCLI(t, "service", "rm", s)
	}
	c.waitNothingLeft(t)
}

// Drain moves tasks away; a worker killed and restarted adopts its tasks.
func TestServiceDrainAndWorkerRestart(t *testing.T) {
	c := newServiceCluster(t, 3, 1)
	c.node(1).MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "6", c.images.Nginx)
	byNode := c.waitRunning(t, "web", 6)
	for i := 1; i <= 3; i++ {
		if n := len(byNode[fmt.Sprintf("node-%02d", i)]); n != 2 {
			t.Fatalf("node-%02d runs %d of 6, want 2: %v", i, n, byNode)
		}
	}

	t.Run("a killed worker adopts its containers", func(t *testing.T) {
		before := map[string]bool{}
		for _, x := range byNode["node-02"] {
			before[x.ID] = true
		}
		c.node(2).Kill(t)
		c.node(2).Restart(t)
		// Its tasks run on, the same ones, each in one container.
		clustertest.WaitFor(t, converge, "node-02 back with its own tasks", func() error {
			rows, err := c.nodeLs(1)
			if err != nil || rows["node-02"].Status != "Ready" {
				return fmt.Errorf("node-02: %v %v", rows["node-02"], err)
			}
			now := c.running(t, "web")["node-02"]
			if len(now) != 2 {
				return fmt.Errorf("node-02 runs %d tasks", len(now))
			}
			for _, x := range now {
				if !before[x.ID] {
					return fmt.Errorf("node-02 runs a new task %s, not its old ones %v", x.ID, before)
				}
			}
			return nil
		})
		// The restarted agent has had its session and its assignments
		// (its status in node ls comes from the new session); over a few
		// heartbeats it starts nothing more and leaves nothing behind.
		c.holds(t, "web", 3*time.Second, func(ts []task) error {
			left, err := imagetest.Leftovers(t, c.containerd, c.namespaces[1])
			if err != nil {
				return err
			}
			if n := countPrefix(left, "container "); n != 2 {
				return fmt.Errorf("node-02 has %d containers for its 2 tasks: %v", n, left)
			}
			if n := count(ts, "RUNNING"); n != 6 {
				return fmt.Errorf("%d tasks running, want 6", n)
			}
			return nil
		})
	})

	t.Run("drain moves tasks away and keeps new ones off", func(t *testing.T) {
		c.node(1).MustCLI(t, "node", "update", "--availability", "drain", "node-03")
		clustertest.WaitFor(t, converge, "node-03 to run nothing and the others 6", func() error {
			byNode := c.running(t, "web")
			if len(byNode["node-03"]) != 0 || len(byNode["node-01"])+len(byNode["node-02"]) != 6 {
				return fmt.Errorf("running: %v", byNode)
			}
			return nil
		})
		c.node(1).MustCLI(t, "service", "scale", "-d", "web=8")
		if byNode := c.waitRunning(t, "web", 8); len(byNode["node-03"]) != 0 {
			t.Errorf("a drained node got new tasks: %v", byNode)
		}
		c.node(1).MustCLI(t, "node", "update", "--availability", "active", "node-03")
		c.node(1).MustCLI(t, "service", "scale", "-d", "web=10")
		if byNode := c.waitRunning(t, "web", 10); len(byNode["node-03"]) != 2 {
			t.Errorf("node-03, active again, runs %d of the 2 new tasks: %v", len(byNode["node-03"]), byNode)
		}
	})

	c.node(1).MustCLI(t, "service", "rm", "web")
	c.waitNothingLeft(t)
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
