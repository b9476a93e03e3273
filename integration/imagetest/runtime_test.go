package imagetest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/shoal-dev/shoal/internal/ctrdutil"
)

// opTimeout bounds one containerd call or one wait for a task in these
// tests.
const opTimeout = 30 * time.Second

// runtime is a containerd namespace of one test, removed with all it holds
// when the test ends.
type runtime struct {
	t      *testing.T
	client *containerd.Client
	ns     string
}

func newRuntime(t *testing.T, socket string) *runtime {
	t.Helper()
	client, err := containerd.New(socket)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	r := &runtime{t: t, client: client, ns: "imagetest-" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		if err := r.removeNamespace(); err != nil {
			t.Errorf("removing containerd namespace %s: %v", r.ns, err)
		}
		client.Close()
	})
	return r
}

// ctx returns a context in the runtime's namespace, bounded by opTimeout.
func (r *runtime) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(namespaces.WithNamespace(context.Background(), r.ns), opTimeout)
}

// container is a container with a started task, whose output goes to out.
type container struct {
	c      containerd.Container
	task   containerd.Task
	exitC  <-chan containerd.ExitStatus
	out    *syncBuffer
	ref    string
	rt     *runtime
	waited bool
}

// start runs image ref as a new container with args after the image's
// entrypoint (in place of its Cmd, as Docker does), and extra spec options
// (its own, empty, network namespace unless they say otherwise). The
// container and its task are deleted when the test ends.
func (r *runtime) start(ref string, args []string, opts ...oci.SpecOpts) *container {
	r.t.Helper()
	ctx, cancel := r.ctx()
	defer cancel()
	img, err := r.client.GetImage(ctx, ref)
	if err != nil {
		r.t.Fatalf("image %s: %v", ref, err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := "c-" + hex.EncodeToString(b)
	spec := append([]oci.SpecOpts{oci.WithImageConfigArgs(img, args)}, opts...)
	c, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id, img),
		containerd.WithNewSpec(spec...))
	if err != nil {
		r.t.Fatalf("creating a container of %s: %v", ref, err)
	}
	ct := &container{c: c, out: &syncBuffer{}, ref: ref, rt: r}
	r.t.Cleanup(ct.remove)
	ct.task, err = c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, ct.out, ct.out)))
	if err != nil {
		r.t.Fatalf("creating the task of %s: %v", ref, err)
	}
	// Wait before Start, or a quick exit could be missed.
	ct.exitC, err = ct.task.Wait(namespaces.WithNamespace(context.Background(), r.ns))
	if err != nil {
		r.t.Fatalf("waiting on the task of %s: %v", ref, err)
	}
	if err := ct.task.Start(ctx); err != nil {
		r.t.Fatalf("starting the task of %s: %v; output: %s", ref, err, ct.out)
	}
	r.t.Logf("started %s %q as container %s in namespace %s", ref, args, id, r.ns)
	return ct
}

// wait returns the task's exit code, failing the test if it has not
// exited within timeout.
func (c *container) wait(timeout time.Duration) uint32 {
	c.rt.t.Helper()
	select {
	case st := <-c.exitC:
		c.waited = true
		code, _, err := st.Result()
		if err != nil {
			c.rt.t.Fatalf("the task of %s: %v", c.ref, err)
		}
		c.rt.t.Logf("%s exited with %d; output: %q", c.ref, code, c.out)
		return code
	case <-time.After(timeout):
		c.rt.t.Fatalf("the task of %s did not exit within %s; output: %q", c.ref, timeout, c.out)
		return 0
	}
}

// signal sends sig to the task's main process.
func (c *container) signal(sig syscall.Signal) {
	c.rt.t.Helper()
	ctx, cancel := c.rt.ctx()
	defer cancel()
	if err := c.task.Kill(ctx, sig); err != nil {
		c.rt.t.Fatalf("sending %v to %s: %v", sig, c.ref, err)
	}
}

// remove kills the task if it still runs, and deletes it, the container and
// its snapshot.
func (c *container) remove() {
	ctx, cancel := c.rt.ctx()
	defer cancel()
	if c.task != nil {
		if _, err := c.task.Delete(ctx, containerd.WithProcessKill); err != nil {
			c.rt.t.Errorf("deleting the task of %s: %v", c.ref, err)
		}
	}
	if err := c.c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		c.rt.t.Errorf("deleting the container of %s: %v", c.ref, err)
	}
}

// removeNamespace deletes the namespace's images (and with them, by
// containerd's garbage collection, their content and snapshots), its
// leases and then the namespace, which containerd refuses while anything
// is left in it.
func (r *runtime) removeNamespace() error {
	ctx, cancel := r.ctx()
	defer cancel()
	imgs, err := r.client.ImageService().List(ctx)
	if err != nil {
		return err
	}
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := r.client.ImageService().Delete(ctx, img.Name, opts...); err != nil {
			return fmt.Errorf("deleting image %s: %w", img.Name, err)
		}
	}
	leases, err := r.client.LeasesService().List(ctx)
	if err != nil {
		return err
	}
	for _, l := range leases {
		if err := r.client.LeasesService().Delete(ctx, l); err != nil {
			return fmt.Errorf("deleting lease %s: %w", l.ID, err)
		}
	}
	if err := r.client.NamespaceService().Delete(ctx, r.ns); err != nil {
		return err
	}
	return ctrdutil.RemoveCgroups(r.ns)
}

// syncBuffer is a bytes.Buffer that a task's output copier may write while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
