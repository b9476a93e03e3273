package dashboard

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/shoal-dev/shoal/api"
)

//go:embed index.html
var page []byte

// Config is what a Handler needs: the local Control API and its timings.
type Config struct {
	// Control is a client of the local daemon's control socket.
	Control api.ControlClient
	// Refresh is the longest a stream goes without a snapshot: Raft
	// indexes and last contacts move without events.
	Refresh time.Duration
	// Debounce gathers the events of one change (a task's run of states,
	// an election seen by several managers) into one snapshot.
	Debounce time.Duration
	// CallTimeout bounds each call of a snapshot.
	CallTimeout time.Duration
	// History is how far back the timeline starts when a page connects.
	History time.Duration
	// Retry is how long a stream waits before asking for events again when
	// the daemon refused (not a manager yet) or ended them.
	Retry  time.Duration
	Logger *slog.Logger
}

// DefaultConfig returns the settings the daemon uses; Control is left for
// the caller.
func DefaultConfig() Config {
	return Config{
		Refresh:     time.Second,
		Debounce:    150 * time.Millisecond,
		CallTimeout: 3 * time.Second,
		History:     10 * time.Minute,
		Retry:       time.Second,
	}
}

// Validate says what is wrong with a Config.
func (c Config) Validate() error {
	switch {
	case c.Control == nil:
		return errors.New("dashboard: no Control client")
	case c.Refresh <= 0 || c.Debounce <= 0 || c.CallTimeout <= 0 || c.Retry <= 0:
		return fmt.Errorf("dashboard: Refresh (%s), Debounce (%s), CallTimeout (%s) and Retry (%s) must be positive",
			c.Refresh, c.Debounce, c.CallTimeout, c.Retry)
	case c.History < 0:
		return fmt.Errorf("dashboard: negative History %s", c.History)
	}
	return nil
}

// Handler serves the dashboard. Make it with New.
type Handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the dashboard's handler, to mount at the root of a mux.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.With("component", "dashboard"), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /api/state", h.state)
	h.mux.HandleFunc("GET /api/stream", h.stream)
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(page)
}

func (h *Handler) state(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(snapshot(r.Context(), h.cfg.Control, h.cfg.CallTimeout, time.Now()))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// Event is one cluster event on the timeline, as `shoal events --format
// json` names its fields.
type Event struct {
	Time       time.Time         `json:"time"`
	Type       string            `json:"type"`   // node, service, task, raft
	Action     string            `json:"action"` // create, update, remove, elect, leader-lost, ...
	ID         string            `json:"id"`
	Attributes map[string]string `json:"attributes"`
}

// stream serves server-sent events until the client goes away: a snapshot
// first, the recent events, then events as they come and snapshots after
// them and every Refresh. It returns only once the goroutine that follows
// the daemon's events has ended.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	ctx, cancel := context.WithCancel(r.Context())
	events := make(chan *api.Event)
	followed := make(chan struct{})
	defer func() { cancel(); <-followed }()
	go func() { defer close(followed); h.follow(ctx, time.Now().Add(-h.cfg.History), events) }()

	send := func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendState := func() error { return send("state", snapshot(ctx, h.cfg.Control, h.cfg.CallTimeout, time.Now())) }
	// The browser reconnects a second after a broken stream.
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", h.cfg.Retry.Milliseconds()); err != nil {
		return
	}
	if err := sendState(); err != nil {
		return
	}
	h.log.Debug("stream opened", "remote", r.RemoteAddr)
	defer h.log.Debug("stream closed", "remote", r.RemoteAddr)

	tick := time.NewTicker(h.cfg.Refresh)
	defer tick.Stop()
	var debounce <-chan time.Time
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case e := <-events:
			err = send("event", Event{Time: time.Unix(0, e.GetUnixNano()).UTC(), Type: e.GetType(),
				Action: e.GetAction(), ID: e.GetId(), Attributes: e.GetAttributes()})
			if debounce == nil {
				debounce = time.After(h.cfg.Debounce)
			}
		case <-debounce:
			debounce = nil
			err = sendState()
			tick.Reset(h.cfg.Refresh)
		case <-tick.C:
			err = sendState()
		}
		if err != nil {
			return // the client went away
		}
	}
}

// follow hands the daemon's events since the given time to out until ctx
// ends. When the daemon refuses (not a manager) or ends the stream (the
// manager stopped, or this client fell behind) it asks again after Retry,
// from the last event it passed on.
func (h *Handler) follow(ctx context.Context, since time.Time, out chan<- *api.Event) {
	from := since.UnixNano()
	for ctx.Err() == nil {
		err := h.followOnce(ctx, &from, out)
		if ctx.Err() != nil {
			return
		}
		h.log.Debug("event stream ended; asking again", "in", h.cfg.Retry, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.cfg.Retry):
		}
	}
}

func (h *Handler) followOnce(ctx context.Context, from *int64, out chan<- *api.Event) error {
	stream, err := h.cfg.Control.Events(ctx, &api.EventsRequest{SinceUnixNano: *from})
	if err != nil {
		return err
	}
	for {
		e, err := stream.Recv()
		if err != nil {
			return err
		}
		*from = e.GetUnixNano() + 1
		select {
		case out <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
