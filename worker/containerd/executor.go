package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/worker"
)

// Labels on every task container. labelSubnet and labelAddress are the
// executor's own notes: the node subnet the task was prepared for, and the
// address CNI gave it.
const (
	LabelTaskID      = "shoal.task.id"
	LabelServiceID   = "shoal.service.id"
	LabelServiceName = "shoal.service.name"
	LabelSlot        = "shoal.slot"
	labelSubnet      = "shoal.subnet"
	labelAddress     = "shoal.address"
)

// ErrNoSuchTask is returned (wrapped) by Start and Wait for a task that
// has no container, or no process, on this node.
var ErrNoSuchTask = errors.New("no such task")

// connectTimeout bounds New's first call to containerd.
const connectTimeout = 10 * time.Second

// Executor runs tasks as containerd containers. Make it with New.
type Executor struct {
	cfg    Config
	client *client.Client
	net    *network
	log    *slog.Logger
	pulls  keyedMutex
}

var _ worker.Executor = (*Executor)(nil)

// New connects to containerd and checks that the CNI plugins are there.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("containerd executor: %w", err)
	}
	for _, d := range []string{cfg.StateDir, logDir(cfg.StateDir), tasksDir(cfg.StateDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("containerd executor: state directory: %w", err)
		}
	}
	net, err := newNetwork(cfg.CNIBinDir, cfg.Bridge, filepath.Join(cfg.StateDir, "cni"))
	if err != nil {
		return nil, fmt.Errorf("containerd executor: %w", err)
	}
	// gRPC would retry a missing socket until the timeout; say it at once.
	if path, ok := strings.CutPrefix(cfg.Socket, "unix://"); ok || !strings.Contains(cfg.Socket, "://") {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("cannot reach containerd at %s (is containerd running at %s?): %w", cfg.Socket, cfg.Socket, err)
		}
	}
	c, err := client.New(cfg.Socket, client.WithDefaultNamespace(cfg.Namespace), client.WithTimeout(connectTimeout))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", cfg.Socket, err)
	}
	vctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	v, err := c.Version(vctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot reach containerd at %s (is containerd running at %s?): %w", cfg.Socket, cfg.Socket, err)
	}
	log := cfg.Logger.With("component", "executor", "namespace", cfg.Namespace)
	log.Debug("connected to containerd", "socket", cfg.Socket, "version", v.Version)
	return &Executor{cfg: cfg, client: c, net: net, log: log}, nil
}

// Close closes the connection to containerd. Containers keep running.
func (e *Executor) Close() error { return e.client.Close() }

func logDir(stateDir string) string   { return filepath.Join(stateDir, "logs") }
func tasksDir(stateDir string) string { return filepath.Join(stateDir, "tasks") }

// LogPath is the file that gets a task's stdout and stderr.
func (e *Executor) LogPath(taskID string) string {
	return filepath.Join(logDir(e.cfg.StateDir), taskID+".log")
}

func (e *Executor) taskDir(taskID string) string {
	return filepath.Join(tasksDir(e.cfg.StateDir), taskID)
}

// ctx puts the node's namespace on ctx, for the calls that read it from
// the context rather than from the client.
func (e *Executor) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, e.cfg.Namespace)
}

// Prepare pulls the task's image and creates its container. A container
// that already exists for the task is left as it is.
func (e *Executor) Prepare(ctx context.Context, t *api.Task, subnet string) (err error) {
	ctx = e.ctx(ctx)
	if t.GetId() == "" || t.GetSpec() == nil {
		return errors.New("prepare: the task has no ID or no container spec")
	}
	if _, err := e.net.confList(subnet); err != nil {
		return fmt.Errorf("prepare %s: %w", t.Id, err)
	}
	if c, err := e.client.LoadContainer(ctx, t.Id); err == nil {
		labels, err := c.Labels(ctx)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", t.Id, err)
		}
		if labels[LabelTaskID] != t.Id {
			return fmt.Errorf("prepare %s: containerd namespace %s has a container %s that is not shoal's", t.Id, e.cfg.Namespace, t.Id)
		}
		return nil
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("prepare %s: %w", t.Id, err)
	}

	ref, err := normalizeRef(t.Spec.Image)
	if err != nil {
		return err
	}
	img, err := e.pull(ctx, ref)
	if err != nil {
		return err
	}
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return fmt.Errorf("prepare %s: reading the config of %s: %w", t.Id, ref, err)
	}

	defer func() {
		if err != nil && !errdefs.IsAlreadyExists(err) {
			os.RemoveAll(e.taskDir(t.Id))
			e.removeSnapshot(context.WithoutCancel(ctx), t.Id)
		}
	}()
	etc := newEtcFiles(e.taskDir(t.Id))
	if err := etc.write(t, "", "/etc/resolv.conf"); err != nil {
		return fmt.Errorf("prepare %s: %w", t.Id, err)
	}
	opts, err := specOpts(img, imgSpec.Config, t, etc)
	if err != nil {
		return fmt.Errorf("prepare %s: %s: %w", t.Id, ref, err)
	}
	// A snapshot without a container is what a node that died inside
	// NewContainer leaves; it would block the new one.
	e.removeSnapshot(ctx, t.Id)
	_, err = e.client.NewContainer(ctx, t.Id,
		client.WithImage(img),
		client.WithNewSnapshot(t.Id, img),
		client.WithNewSpec(opts...),
		client.WithContainerLabels(containerLabels(t, subnet)),
	)
	if err != nil {
		return fmt.Errorf("prepare %s: creating the container: %w", t.Id, err)
	}
	return nil
}

// containerLabels are the service's labels plus shoal's own, which the
// service cannot override.
func containerLabels(t *api.Task, subnet string) map[string]string {
	labels := map[string]string{}
	for k, v := range t.Spec.GetLabels() {
		labels[k] = v
	}
	labels[LabelTaskID] = t.Id
	labels[LabelServiceID] = t.ServiceId
	labels[LabelServiceName] = t.ServiceName
	labels[LabelSlot] = strconv.FormatUint(t.Slot, 10)
	labels[labelSubnet] = subnet
	return labels
}

// Start creates the task's process (not yet running), connects its network
// namespace to the bridge, and then starts it.
func (e *Executor) Start(ctx context.Context, t *api.Task) (_ worker.Started, err error) {
	ctx = e.ctx(ctx)
	c, err := e.client.LoadContainer(ctx, t.GetId())
	if err != nil {
		if errdefs.IsNotFound(err) {
			return worker.Started{}, fmt.Errorf("start %s: the task is not prepared: %w", t.GetId(), ErrNoSuchTask)
		}
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		st, err := task.Status(ctx)
		switch {
		case err != nil:
			return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
		case st.Status == client.Running || st.Status == client.Paused || st.Status == client.Pausing:
			return worker.Started{ContainerID: t.Id, Address: labels[labelAddress]}, nil
		case st.Status == client.Stopped:
			return worker.Started{}, fmt.Errorf("start %s: the task has run already (exit code %d); a task runs only once", t.Id, st.ExitStatus)
		}
		// Left by a Start that died half-way: begin again. host-local
		// refuses a second address for the same task, so release the first.
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return worker.Started{}, fmt.Errorf("start %s: removing the earlier attempt: %w", t.Id, err)
		}
		if err := e.net.del(ctx, t.Id, labels[labelSubnet]); err != nil {
			return worker.Started{}, fmt.Errorf("start %s: releasing the earlier attempt's network: %w", t.Id, err)
		}
	} else if !errdefs.IsNotFound(err) {
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}

	task, err := c.NewTask(ctx, cio.LogFile(e.LogPath(t.Id)))
	if err != nil {
		return worker.Started{}, fmt.Errorf("start %s: creating the process: %w", t.Id, err)
	}
	defer func() {
		if err != nil {
			if _, derr := task.Delete(context.WithoutCancel(ctx), client.WithProcessKill); derr != nil {
				e.log.Warn("removing the process of a task that failed to start", "task", t.Id, "err", derr)
			}
		}
	}()
	subnet := labels[labelSubnet]
	addr, err := e.net.add(ctx, t.Id, subnet, task.Pid(), t.GetSpec().GetPorts())
	if err != nil {
		return worker.Started{}, fmt.Errorf("start %s: network: %w", t.Id, err)
	}
	defer func() {
		if err != nil {
			if derr := e.net.del(context.WithoutCancel(ctx), t.Id, subnet); derr != nil {
				e.log.Warn("releasing the network of a task that failed to start", "task", t.Id, "err", derr)
			}
		}
	}()
	if err := newEtcFiles(e.taskDir(t.Id)).writeHosts(t, addr); err != nil {
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}
	if _, err := c.SetLabels(ctx, map[string]string{labelAddress: addr}); err != nil {
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}
	if err := task.Start(ctx); err != nil {
		return worker.Started{}, fmt.Errorf("start %s: %w", t.Id, err)
	}
	e.log.Debug("started task", "task", t.Id, "address", addr, "pid", task.Pid())
	return worker.Started{ContainerID: t.Id, Address: addr}, nil
}

// loadTask finds the process of a task, also one started before this
// executor (or containerd) restarted.
func (e *Executor) loadTask(ctx context.Context, taskID string) (client.Task, error) {
	c, err := e.client.LoadContainer(ctx, taskID)
	if err != nil {
		return nil, err
	}
	return c.Task(ctx, nil)
}

// Wait blocks until the task's process exits, and returns its exit code.
func (e *Executor) Wait(ctx context.Context, taskID string) (int, error) {
	ctx = e.ctx(ctx)
	task, err := e.loadTask(ctx, taskID)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return 0, fmt.Errorf("wait %s: %w", taskID, ErrNoSuchTask)
		}
		return 0, fmt.Errorf("wait %s: %w", taskID, err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait %s: %w", taskID, err)
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("wait %s: %w", taskID, err)
		}
		return int(code), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Stop sends SIGTERM, then SIGKILL if the process still runs after grace,
// and returns once it has exited. A task without a running process is
// stopped already.
func (e *Executor) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	ctx = e.ctx(ctx)
	task, err := e.loadTask(ctx, taskID)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", taskID, err)
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) || (err == nil && st.Status == client.Stopped) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", taskID, err)
	}

	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("stop %s: %w", taskID, err)
	}
	if st.Status != client.Created { // a process never started gets SIGKILL at once
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !gone(err) {
			return fmt.Errorf("stop %s: SIGTERM: %w", taskID, err)
		}
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop %s: %w", taskID, ctx.Err())
		case <-timer.C:
		}
		e.log.Info("task did not exit after SIGTERM; sending SIGKILL", "task", taskID, "grace", grace)
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !gone(err) {
		return fmt.Errorf("stop %s: SIGKILL: %w", taskID, err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: still running after SIGKILL: %w", taskID, ctx.Err())
	}
}

// gone tells whether a Kill failed because the process is gone already.
func gone(err error) bool {
	return errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err)
}

// Remove deletes the task's process (killing it if it still runs), its
// network, its container and snapshot, and its files. It is idempotent,
// and it keeps the container as long as the network cannot be released,
// so that a retry (or a restarted node) finds it again.
func (e *Executor) Remove(ctx context.Context, taskID string) error {
	ctx = e.ctx(ctx)
	var subnet string
	c, err := e.client.LoadContainer(ctx, taskID)
	switch {
	case errdefs.IsNotFound(err):
		c = nil
	case err != nil:
		return fmt.Errorf("remove %s: %w", taskID, err)
	default:
		labels, err := c.Labels(ctx)
		if err != nil {
			return fmt.Errorf("remove %s: %w", taskID, err)
		}
		if labels[LabelTaskID] != taskID {
			return fmt.Errorf("remove %s: containerd namespace %s has a container %s that is not shoal's", taskID, e.cfg.Namespace, taskID)
		}
		subnet = labels[labelSubnet]
		if task, err := c.Task(ctx, nil); err == nil {
			if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("remove %s: deleting its process: %w", taskID, err)
			}
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: %w", taskID, err)
		}
	}
	if err := e.net.del(ctx, taskID, subnet); err != nil {
		return fmt.Errorf("remove %s: releasing its network: %w", taskID, err)
	}
	if c != nil {
		if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove %s: deleting its container: %w", taskID, err)
		}
	} else {
		// Prepare may have died between making the snapshot and the
		// container.
		e.removeSnapshot(ctx, taskID)
	}
	if err := os.RemoveAll(e.taskDir(taskID)); err != nil {
		return fmt.Errorf("remove %s: %w", taskID, err)
	}
	if err := os.Remove(e.LogPath(taskID)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", taskID, err)
	}
	return nil
}

// removeSnapshot removes the task's snapshot from the default snapshotter,
// if it is there.
func (e *Executor) removeSnapshot(ctx context.Context, taskID string) {
	err := e.client.SnapshotService("").Remove(ctx, taskID)
	if err != nil && !errdefs.IsNotFound(err) {
		e.log.Warn("removing a task's snapshot", "task", taskID, "err", err)
	}
}

// Containers lists the task containers in this node's namespace. A
// container whose process never started (or was lost when containerd
// restarted) is reported as not running with exit code -1.
func (e *Executor) Containers(ctx context.Context) ([]worker.Container, error) {
	ctx = e.ctx(ctx)
	cs, err := e.client.Containers(ctx, fmt.Sprintf("labels.%q", LabelTaskID))
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := make([]worker.Container, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			return nil, fmt.Errorf("listing containers: %s: %w", c.ID(), err)
		}
		wc := worker.Container{
			TaskID:    info.Labels[LabelTaskID],
			ServiceID: info.Labels[LabelServiceID],
			Address:   info.Labels[labelAddress],
			ExitCode:  -1,
		}
		task, err := c.Task(ctx, nil)
		if err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("listing containers: %s: %w", c.ID(), err)
		}
		if err == nil {
			st, err := task.Status(ctx)
			if err != nil && !errdefs.IsNotFound(err) {
				return nil, fmt.Errorf("listing containers: %s: %w", c.ID(), err)
			}
			switch st.Status {
			case client.Running, client.Paused, client.Pausing:
				wc.Running = true
			case client.Stopped:
				wc.ExitCode = int(st.ExitStatus)
			}
		}
		out = append(out, wc)
	}
	return out, nil
}
