package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/api"
)

// Config is what an agent needs.
type Config struct {
	Remotes       *Remotes
	Hostname      string
	EngineVersion string
	// OnMessage is called with every session message, in order, from the
	// agent's goroutine: the daemon records the managers and acts on the
	// node's desired role. It must not block for long.
	OnMessage func(*api.SessionMessage)
	// Retry bounds the pause between attempts to reach a manager.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

// Agent keeps a session with the leader.
type Agent struct {
	cfg Config
	log *slog.Logger
	cur atomic.Pointer[current] // the session now open, if any
}

// current is an open session: where task status goes.
type current struct {
	client api.DispatcherClient
	id     string
}

// ErrNoSession is what Report returns while no session is open.
var ErrNoSession = errors.New("no session with a manager")

// Report sends task status updates through the open session; the task
// manager retries when it fails.
func (a *Agent) Report(ctx context.Context, updates []*api.TaskStatusUpdate) error {
	c := a.cur.Load()
	if c == nil {
		return ErrNoSession
	}
	_, err := c.client.UpdateTaskStatus(ctx, &api.UpdateTaskStatusRequest{SessionId: c.id, Updates: updates})
	return err
}

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 500 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Agent{cfg: cfg, log: log.With("component", "agent")}
}

// Run holds sessions until ctx ends, moving to another manager whenever the
// current one fails or is not the leader.
func (a *Agent) Run(ctx context.Context) {
	pause := a.cfg.RetryMin
	for ctx.Err() == nil {
		addr, err := a.cfg.Remotes.Pick()
		if err == nil {
			var leader string
			leader, err = a.session(ctx, addr)
			if leader != "" && leader != addr {
				a.cfg.Remotes.Prefer(leader)
				pause = a.cfg.RetryMin
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Debug("session ended", "manager", addr, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(pause*2, a.cfg.RetryMax)
	}
}

// session runs one session with the manager at addr. It returns the
// leader's address when the manager named one.
func (a *Agent) session(ctx context.Context, addr string) (leader string, err error) {
	conn, err := a.cfg.Remotes.Conn(addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := api.NewDispatcherClient(conn)
	stream, err := client.Session(ctx, &api.SessionRequest{Hostname: a.cfg.Hostname, EngineVersion: a.cfg.EngineVersion})
	if err != nil {
		return "", err
	}
	msg, err := stream.Recv()
	if err != nil {
		return leaderHint(stream.Trailer()), err
	}
	a.log.Info("session established", "manager", addr)
	cur := &current{client: client, id: msg.SessionId}
	a.cur.Store(cur)
	defer a.cur.CompareAndSwap(cur, nil)
	a.handle(msg)
	period := time.Duration(msg.HeartbeatPeriodNs)
	beats := make(chan error, 1)
	go func() { beats <- a.heartbeat(ctx, client, msg.SessionId, period) }()
	recv := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recv <- err
				return
			}
			a.handle(m)
		}
	}()
	select {
	case err = <-beats:
		cancel()
		<-recv
	case err = <-recv:
		cancel()
		<-beats
		leader = leaderHint(stream.Trailer())
	}
	a.log.Info("session lost", "manager", addr, "err", err)
	return leader, err
}

func (a *Agent) handle(msg *api.SessionMessage) {
	a.cfg.Remotes.Set(msg.Managers)
	if a.cfg.OnMessage != nil {
		a.cfg.OnMessage(msg)
	}
}

// heartbeat beats every period until it fails or ctx ends. A beat that takes
// longer than two periods counts as failed: the manager is gone or cut off
// (one period was too tight for a leader busy with a thousand sessions).
func (a *Agent) heartbeat(ctx context.Context, client api.DispatcherClient, session string, period time.Duration) error {
	if period <= 0 {
		return errors.New("manager sent no heartbeat period")
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		bctx, cancel := context.WithTimeout(ctx, 2*period)
		resp, err := client.Heartbeat(bctx, &api.HeartbeatRequest{SessionId: session}, grpc.WaitForReady(false))
		cancel()
		if err != nil {
			return err
		}
		if p := time.Duration(resp.PeriodNs); p > 0 && p != period {
			period = p
			t.Reset(period)
		}
	}
}

func leaderHint(md metadata.MD) string {
	if v := md.Get(api.MDLeader); len(v) == 1 {
		return v[0]
	}
	return ""
}
