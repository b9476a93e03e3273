package integration

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/imagetest"
)

// specTasks lists a service's tasks with their specs, through node-01.
func (c *serviceCluster) specTasks(t *testing.T, service string) []*api.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.control(1).ListTasks(ctx, &api.ListTasksRequest{Service: service})
	if err != nil {
		t.Fatalf("listing the tasks of %s: %v", service, err)
	}
	return resp.Tasks
}

// runningWith returns the running tasks (wanted running) whose spec
// satisfies ok.
func runningWith(ts []*api.Task, ok func(*api.ContainerSpec) bool) []*api.Task {
	var out []*api.Task
	for _, x := range ts {
		if x.DesiredState == api.TaskState_RUNNING && x.GetStatus().GetState() == api.TaskState_RUNNING && ok(x.Spec) {
			out = append(out, x)
		}
	}
	return out
}

func hasEnv(kv string) func(*api.ContainerSpec) bool {
	return func(s *api.ContainerSpec) bool { return slices.Contains(s.GetEnv(), kv) }
}

// The rolling-update part of Docker's swarm tutorial: service update
// replaces the tasks Parallelism at a time with the delay between; a
// failing new spec pauses the update with Swarm's message; a fixed spec
// resumes it; --force replaces every task without a change.
func TestServiceRollingUpdate(t *testing.T) {
	c := newServiceCluster(t, 2, 1)
	n1 := c.node(1)
	n1.MustCLI(t, "service", "create", "--name", "web", "--replicas", "4", "--env", "MODE=one",
		"--update-parallelism", "2", "--update-delay", "1s", "--update-monitor", "1s", c.images.Nginx)
	c.waitRunning(t, "web", 4)
	before := time.Now()

	out := n1.MustCLI(t, "service", "update", "--env-add", "MODE=two", "web")
	if !strings.Contains(out, "converged") {
		t.Errorf("service update did not report convergence:\n%s", out)
	}
	fresh := runningWith(c.specTasks(t, "web"), hasEnv("MODE=two"))
	if len(fresh) != 4 {
		t.Fatalf("%d tasks run the new spec after the update, want 4:\n%s", len(fresh), c.psOut("web"))
	}
	// Two at a time: each replacement after the first two was made no
	// earlier than the delay after one of those before it ran.
	slices.SortFunc(fresh, func(a, b *api.Task) int { return cmp.Compare(a.CreatedUnixNano, b.CreatedUnixNano) })
	var ran []int64
	for i, x := range fresh {
		if i >= 2 {
			slices.Sort(ran)
			if gap := time.Duration(x.CreatedUnixNano - ran[i-2]); gap < time.Second {
				t.Errorf("replacement %d was made %v after a slot freed, want at least the 1s delay", i+1, gap)
			}
		}
		ran = append(ran, x.Status.UnixNano)
	}
	t.Logf("update of 4 tasks, 2 at a time with a 1s delay: %v until converged", time.Since(before).Round(time.Millisecond))
	for i := 1; i <= 2; i++ {
		for _, x := range c.running(t, "web")[fmt.Sprintf("node-%02d", i)] {
			if body := imagetest.RunTool(t, c.node(i).Host, "get", "http://"+x.Address+"/"); body != imagetest.NginxIndex {
				t.Errorf("GET http://%s/ after the update: %q", x.Address, body)
			}
		}
	}
	clustertest.WaitFor(t, converge, "the update to complete", func() error {
		if state := strings.TrimSpace(n1.MustCLI(t, "service", "inspect", "--format", "{{.UpdateStatus.State}}", "web")); state != "completed" {
			return fmt.Errorf("update state %q", state)
		}
		return nil
	})

	// An image that does not exist: the first two replacements fail, the
	// update pauses, the other two keep running the old spec.
	bad := c.registry + "/nosuch:1"
	out, err := n1.CLI("service", "update", "--image", bad, "web")
	if err == nil || !strings.Contains(out, "update paused due to failure or early termination of task") {
		t.Fatalf("service update to a missing image: err=%v, want a paused update:\n%s", err, out)
	}
	pretty := n1.MustCLI(t, "service", "inspect", "--pretty", "web")
	if !strings.Contains(pretty, "State:\t\tpaused") || !strings.Contains(pretty, "update paused due to failure") {
		t.Errorf("service inspect --pretty of a paused update:\n%s", pretty)
	}
	c.holds(t, "web", 3*time.Second, func([]task) error {
		if old := runningWith(c.specTasks(t, "web"), hasEnv("MODE=two")); len(old) != 2 {
			return fmt.Errorf("%d tasks of the last good spec run while the update is paused, want 2", len(old))
		}
		return nil
	})

	// Back to the good image: the spec equals the last good one again, so
	// only the two failed slots are replaced, and the update resumes.
	out = n1.MustCLI(t, "service", "update", "--image", c.images.Nginx, "web")
	if !strings.Contains(out, "converged") {
		t.Errorf("service update back to the good image did not converge:\n%s", out)
	}
	good := runningWith(c.specTasks(t, "web"), func(s *api.ContainerSpec) bool { return s.GetImage() == c.images.Nginx })
	if len(good) != 4 {
		t.Fatalf("%d tasks run the good image, want 4:\n%s", len(good), c.psOut("web"))
	}
	kept := 0
	for _, x := range good {
		for _, y := range fresh {
			if x.Id == y.Id {
				kept++
			}
		}
	}
	if kept != 2 {
		t.Errorf("%d of the tasks that never changed spec were kept, want 2", kept)
	}

	// --force replaces every task, with nothing changed.
	n1.MustCLI(t, "service", "update", "--force", "--update-parallelism", "0", "web")
	forced := runningWith(c.specTasks(t, "web"), func(s *api.ContainerSpec) bool { return s.GetForceUpdate() == 1 })
	if len(forced) != 4 {
		t.Fatalf("%d tasks replaced by --force, want 4:\n%s", len(forced), c.psOut("web"))
	}
	for _, x := range forced {
		for _, y := range good {
			if x.Id == y.Id {
				t.Errorf("task %s survived --force", x.Id)
			}
		}
	}

	// service rollback puts the spec from before the last update back.
	n1.MustCLI(t, "service", "update", "--env-add", "EXTRA=1", "web")
	out = n1.MustCLI(t, "service", "rollback", "web")
	if !strings.Contains(out, "converged") {
		t.Errorf("service rollback did not converge:\n%s", out)
	}
	if extra := runningWith(c.specTasks(t, "web"), hasEnv("EXTRA=1")); len(extra) != 0 {
		t.Errorf("%d tasks still run the spec rolled back from", len(extra))
	}
	if state := strings.TrimSpace(n1.MustCLI(t, "service", "inspect", "--format", "{{.UpdateStatus.State}}", "web")); state != "rollback_completed" {
		t.Errorf("update state after service rollback: %q", state)
	}

	// --update-failure-action rollback: a failing update undoes itself.
	out, err = n1.CLI("service", "update", "--update-failure-action", "rollback", "--image", bad, "web")
	if err == nil || !strings.Contains(out, "update rolled back due to failure or early termination of task") {
		t.Fatalf("a failing update with failure action rollback: err=%v\n%s", err, out)
	}
	clustertest.WaitFor(t, converge, "the automatic rollback to complete", func() error {
		good := runningWith(c.specTasks(t, "web"), func(s *api.ContainerSpec) bool { return s.GetImage() == c.images.Nginx })
		state := strings.TrimSpace(n1.MustCLI(t, "service", "inspect", "--format", "{{.UpdateStatus.State}} {{.Spec.TaskTemplate.ContainerSpec.Image}}", "web"))
		if len(good) != 4 || state != "rollback_completed "+c.images.Nginx {
			return fmt.Errorf("%d tasks run the good image; update state and image: %q\n%s", len(good), state, c.psOut("web"))
		}
		return nil
	})

	// A change made from an old read is refused, not merged.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc, err := c.control(1).GetService(ctx, &api.GetServiceRequest{Ref: "web"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.control(1).UpdateService(ctx, &api.UpdateServiceRequest{Ref: "web", Spec: svc.Spec, Version: svc.Version - 1})
	if err == nil || !strings.Contains(err.Error(), "update out of sequence") {
		t.Errorf("an update made from version %d of %d: %v, want out of sequence", svc.Version-1, svc.Version, err)
	}

	n1.MustCLI(t, "service", "rm", "web")
	c.waitNothingLeft(t)
}
