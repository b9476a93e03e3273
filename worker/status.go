package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// Reporter sends task status updates to the managers (the agent wires it to
// Dispatcher.UpdateTaskStatus). It may fail, for example while no manager
// can be reached: the updates are kept and sent again later, the latest
// status of each task winning.
type Reporter func(ctx context.Context, updates []*api.TaskStatusUpdate) error

// Defaults of the status queue.
const (
	reportEvery    = 5 * time.Millisecond // let a burst of updates gather this long
	reportBatch    = 256                  // send at once when this many wait
	reportTimeout  = 10 * time.Second     // bound one call to the Reporter
	reportRetryMin = 100 * time.Millisecond
	reportRetryMax = 2 * time.Second
)

// statusQueue sits between the task controllers and the Reporter. A
// controller only ever queues (it never waits for the network); one
// goroutine sends what is queued in batches and keeps it when sending
// fails. The queue also keeps, for each task it knows, the highest state
// reported or learnt from the managers, so that a task's state only moves
// forward and nothing follows a terminal state.
type statusQueue struct {
	report Reporter
	log    *slog.Logger

	every              time.Duration
	batch              int
	timeout            time.Duration
	retryMin, retryMax time.Duration

	kick chan struct{} // something is pending
	full chan struct{} // a whole batch is pending

	mu      sync.Mutex
	known   map[string]api.TaskState
	pending map[string]*api.TaskStatus
	order   []string // pending task IDs, oldest first
}

func newStatusQueue(report Reporter, log *slog.Logger) *statusQueue {
	return &statusQueue{
		report:   report,
		log:      log,
		every:    reportEvery,
		batch:    reportBatch,
		timeout:  reportTimeout,
		retryMin: reportRetryMin,
		retryMax: reportRetryMax,
		kick:     make(chan struct{}, 1),
		full:     make(chan struct{}, 1),
		known:    map[string]api.TaskState{},
		pending:  map[string]*api.TaskStatus{},
	}
}

// push queues st for the task, replacing any status still queued for it.
// It drops st (and says so) unless it moves the task forward from a state
// that is not terminal.
func (q *statusQueue) push(taskID string, st *api.TaskStatus) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.known[taskID]; ok && (cur.Terminal() || st.State <= cur) {
		return false
	}
	q.known[taskID] = st.State
	if _, ok := q.pending[taskID]; !ok {
		q.order = append(q.order, taskID)
	}
	q.pending[taskID] = st
	poke(q.kick)
	if len(q.pending) >= q.batch {
		poke(q.full)
	}
	return true
}

// floor records that the managers have the task in state s already.
func (q *statusQueue) floor(taskID string, s api.TaskState) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur, ok := q.known[taskID]; !ok || s > cur {
		q.known[taskID] = s
	}
}

// state is the highest state known for the task.
func (q *statusQueue) state(taskID string) api.TaskState {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.known[taskID]
}

// prune forgets the states of the tasks keep does not want. Updates still
// queued for them are sent all the same.
func (q *statusQueue) prune(keep func(taskID string) bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id := range q.known {
		if !keep(id) {
			delete(q.known, id)
		}
	}
}

// take removes up to n queued updates, oldest first.
func (q *statusQueue) take(n int) []*api.TaskStatusUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.order))
	out := make([]*api.TaskStatusUpdate, 0, n)
	for _, id := range q.order[:n] {
		out = append(out, &api.TaskStatusUpdate{TaskId: id, Status: q.pending[id]})
		delete(q.pending, id)
	}
	q.order = append([]string(nil), q.order[n:]...)
	if len(q.pending) < q.batch {
		select { // a stale "full" would cut the next gathering short
		case <-q.full:
		default:
		}
	}
	return out
}

// putBack queues again the updates that could not be sent, ahead of the
// others, unless a newer status for the same task was queued meanwhile.
func (q *statusQueue) putBack(updates []*api.TaskStatusUpdate) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var back []string
	for _, u := range updates {
		if _, newer := q.pending[u.TaskId]; newer {
			continue
		}
		q.pending[u.TaskId] = u.Status
		back = append(back, u.TaskId)
	}
	q.order = append(back, q.order...)
}

func (q *statusQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// run sends the queued updates until ctx ends. Updates still queued then
// are dropped: after a restart the task manager learns again what its
// containers did.
func (q *statusQueue) run(ctx context.Context) {
	backoff := q.retryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		if !pause(ctx, q.every, q.full) {
			return
		}
		for {
			batch := q.take(q.batch)
			if len(batch) == 0 {
				break
			}
			rctx, cancel := context.WithTimeout(ctx, q.timeout)
			err := q.report(rctx, batch)
			cancel()
			if err == nil {
				backoff = q.retryMin
				continue
			}
			q.putBack(batch)
			if ctx.Err() != nil {
				return
			}
			q.log.Info("cannot report task status; will retry", "updates", len(batch), "pending", q.size(), "retry_in", backoff, "err", err)
			if !pause(ctx, backoff, nil) {
				return
			}
			backoff = min(2*backoff, q.retryMax)
		}
	}
}

// poke wakes whoever waits on ch, without blocking.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pause waits for d, or less if early fires. It reports false if ctx ended.
func pause(ctx context.Context, d time.Duration, early <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-early:
	}
	return true
}
