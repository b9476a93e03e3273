package worker

import (
	"context"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Executor runs tasks as containers on this node. The containerd executor
// (worker/containerd) is the real one; unit tests and the scale benchmark
// use fakes. Every method is idempotent, keyed by the task ID, so that the
// agent can retry and can reconcile after a restart.
type Executor interface {
	// Containers lists the task containers this node has, whatever their
	// state, so the agent can adopt the wanted ones and remove the rest.
	Containers(ctx context.Context) ([]Container, error)
	// Prepare pulls the task's image and creates its container, ready to
	// start. subnet is the node's CIDR for task addresses.
	Prepare(ctx context.Context, t *api.Task, subnet string) error
	// Start starts the prepared container, gives it its network, and
	// returns what the task reports: container ID and address.
	Start(ctx context.Context, t *api.Task) (Started, error)
	// Wait blocks until the task's process exits or ctx ends, and returns
	// the exit code.
	Wait(ctx context.Context, taskID string) (exitCode int, err error)
	// Stop sends SIGTERM and, if the process has not exited after grace,
	// SIGKILL; it returns once the process is gone.
	Stop(ctx context.Context, taskID string, grace time.Duration) error
	// Remove deletes the container, its snapshot and its network.
	Remove(ctx context.Context, taskID string) error
}

// Container is a task container as the executor finds it.
type Container struct {
	TaskID    string
	ServiceID string
	Running   bool
	ExitCode  int // when not running
	Address   string
}

// Started is what starting a task gives back.
type Started struct {
	ContainerID string
	Address     string
}
