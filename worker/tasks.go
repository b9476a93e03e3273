package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Defaults of the task manager. DefaultStopGrace is Docker's, for a task
// whose spec says none.
const (
	DefaultStopGrace = 10 * time.Second
	execRetryMin     = 100 * time.Millisecond // pause after a failed executor call
	execRetryMax     = 5 * time.Second
)

// TaskManager runs this node's tasks through an Executor, as Docker Swarm's
// agent does: one controller goroutine per task moves it through accepted,
// preparing, ready, starting and running to its end, stops it when its
// desired state goes past running, and removes its container when the
// managers no longer assign it. Status updates go through a queue that
// never makes a controller wait for the network.
//
// When Run's context ends the manager returns and leaves the containers as
// they are: after a restart, Run lists them again, adopts those still
// assigned and removes the others.
type TaskManager struct {
	exec   Executor
	log    *slog.Logger
	status *statusQueue

	// Pauses between failed executor calls (listing, stop, remove).
	retryMin, retryMax time.Duration

	wg sync.WaitGroup // controllers and the status queue

	mu       sync.Mutex
	ctx      context.Context // Run's, set once the listing is done
	listed   bool            // Run has listed the containers
	stopped  bool            // Run's context has ended
	assigned bool            // Assign has been called
	latest   []*api.Task     // the latest assignment
	subnet   string
	found    map[string]Container // listed, not yet handed to a controller
	ctls     map[string]*controller
}

// NewTaskManager returns a task manager; Run starts it. report must not be
// nil.
func NewTaskManager(exec Executor, report Reporter, log *slog.Logger) *TaskManager {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "tasks")
	return &TaskManager{
		exec:     exec,
		log:      log,
		status:   newStatusQueue(report, log),
		retryMin: execRetryMin,
		retryMax: execRetryMax,
		found:    map[string]Container{},
		ctls:     map[string]*controller{},
	}
}

// Run first lists the executor's containers to learn what survived a
// restart, then runs the assigned tasks until ctx ends. Nothing is started
// or removed before the listing is done, and nothing is removed before the
// first Assign: a worker that restarts without reaching a manager keeps its
// tasks running. When ctx ends, Run waits for its goroutines and returns;
// the containers keep running. Run may be called once.
func (m *TaskManager) Run(ctx context.Context) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.status.run(ctx)
	}()
	if found, ok := m.list(ctx); ok {
		m.mu.Lock()
		m.ctx, m.found, m.listed = ctx, found, true
		if m.assigned {
			m.apply()
		}
		m.mu.Unlock()
	}
	<-ctx.Done()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
}

// list asks the executor for its containers until it answers or ctx ends.
func (m *TaskManager) list(ctx context.Context) (map[string]Container, bool) {
	backoff := m.retryMin
	for {
		cs, err := m.exec.Containers(ctx)
		if err == nil {
			found := make(map[string]Container, len(cs))
			for _, c := range cs {
				if c.TaskID == "" {
					continue
				}
				if prev, dup := found[c.TaskID]; dup && prev.Running {
					continue
				}
				found[c.TaskID] = c
			}
			m.log.Info("found task containers", "count", len(found))
			return found, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		m.log.Warn("cannot list task containers; tasks wait until it works", "retry_in", backoff, "err", err)
		if !pause(ctx, backoff, nil) {
			return nil, false
		}
		backoff = min(2*backoff, m.retryMax)
	}
}

// Assign gives the full set of tasks the managers have for this node;
// subnet is the node's subnet for task addresses. The agent calls it on
// every session message, possibly before Run has listed the containers: it
// only records the set then, and Run applies it once the listing is done.
// Assign does not block; the tasks must not be changed afterwards.
func (m *TaskManager) Assign(tasks []*api.Task, subnet string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latest, m.subnet, m.assigned = tasks, subnet, true
	if m.listed && !m.stopped {
		m.apply()
	}
}

// apply brings the controllers in line with the latest assignment: a new
// controller for each task that needs one, news for the others, and
// removal for what is no longer assigned, including the containers the
// listing found that no task claims. Called with m.mu held.
func (m *TaskManager) apply() {
	set := make(map[string]*api.Task, len(m.latest))
	for _, t := range m.latest {
		if t.GetId() != "" {
			set[t.Id] = t
		}
	}
	for id, t := range set {
		m.status.floor(id, t.GetStatus().GetState())
		if c, ok := m.ctls[id]; ok {
			c.update(t)
			continue
		}
		found, ok := m.found[id]
		delete(m.found, id)
		switch {
		case ok:
			m.spawn(id, t, &found)
		case !t.GetStatus().GetState().Terminal():
			m.spawn(id, t, nil)
		}
		// A task that ended and has no container here needs nothing.
	}
	for id, c := range m.ctls {
		if _, ok := set[id]; !ok {
			c.remove()
		}
	}
	for id, found := range m.found {
		m.spawn(id, nil, &found)
	}
	clear(m.found)
	m.status.prune(func(id string) bool {
		_, assigned := set[id]
		_, controlled := m.ctls[id]
		return assigned || controlled
	})
}

// spawn starts a controller for task id. t is nil for a container that no
// assigned task claims: the controller only removes it. found is what the
// listing found of the task, if anything. Called with m.mu held.
func (m *TaskManager) spawn(id string, t *api.Task, found *Container) {
	c := &controller{
		id:      id,
		task:    t,
		removed: t == nil,
		found:   found,
		wake:    make(chan struct{}, 1),
	}
	m.ctls[id] = c
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.control(m.ctx, c)
	}()
}

// retired forgets a controller that has removed its task's container, and
// gives the task a new controller if it is assigned again.
func (m *TaskManager) retired(c *controller) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctls[c.id] == c {
		delete(m.ctls, c.id)
	}
	if !m.stopped {
		m.apply()
	}
}

// subnetNow is the node's subnet as last assigned.
func (m *TaskManager) subnetNow() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subnet
}
