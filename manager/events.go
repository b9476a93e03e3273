package manager

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

// Bounds of the event bus.
const (
	eventHistory = 4096 // recent events kept for --since
	eventBuffer  = 1024 // events a subscriber may lag behind before it is cut off
)

// eventBus keeps recent cluster events and hands new ones to subscribers.
// The FSM publishes what each applied entry changed; the Raft observer
// publishes leader elections.
type eventBus struct {
	mu     sync.Mutex
	recent []*api.Event
	subs   map[chan *api.Event]struct{}
	closed bool
}

func newEventBus() *eventBus { return &eventBus{subs: map[chan *api.Event]struct{}{}} }

// publish never blocks: a subscriber too slow to keep up is cut off.
func (b *eventBus) publish(evs []*api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range evs {
		if e.UnixNano == 0 {
			e.UnixNano = time.Now().UnixNano()
		}
		b.recent = append(b.recent, e)
		for ch := range b.subs {
			select {
			case ch <- e:
			default:
				delete(b.subs, ch)
				close(ch)
			}
		}
	}
	if over := len(b.recent) - eventHistory; over > 0 {
		b.recent = slices.Delete(b.recent, 0, over)
	}
}

// subscribe returns the kept events at or after since, and a channel of
// the ones to come, closed when the bus closes or the subscriber lags.
func (b *eventBus) subscribe(since int64) ([]*api.Event, <-chan *api.Event, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var past []*api.Event
	if since > 0 {
		for _, e := range b.recent {
			if e.UnixNano >= since {
				past = append(past, e)
			}
		}
	}
	ch := make(chan *api.Event, eventBuffer)
	if b.closed {
		close(ch)
		return past, ch, func() {}
	}
	b.subs[ch] = struct{}{}
	return past, ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// publish hands events to the bus and to the metrics.
func (m *Manager) publish(evs []*api.Event) {
	m.events.publish(evs)
	if m.cfg.Metrics != nil {
		m.cfg.Metrics.observe(evs)
	}
}

// leaderEvent describes a leader change this manager saw.
func (m *Manager) leaderEvent(old *string) func(id string, term uint64) {
	return func(id string, term uint64) {
		name := func(id string) string {
			if n, ok := m.store.FSM().Node(id); ok {
				return n.Hostname
			}
			return id
		}
		e := &api.Event{Type: "raft", Action: "elect", Id: id, Attributes: map[string]string{
			"term": strconv.FormatUint(term, 10), "seen.by": name(m.id.NodeID)}}
		if id == "" {
			e.Action = "leader-lost"
		} else {
			e.Attributes["leader"] = name(id)
		}
		if *old != "" {
			e.Attributes["leader.old"] = name(*old)
		}
		*old = id
		m.publish([]*api.Event{e})
	}
}

// Events streams the recent events since the asked time, then live ones.
func (c *control) Events(req *api.EventsRequest, stream api.Control_EventsServer) error {
	past, live, cancel := c.m.events.subscribe(req.SinceUnixNano)
	defer cancel()
	want := func(e *api.Event) bool { return len(req.Types) == 0 || slices.Contains(req.Types, e.Type) }
	for _, e := range past {
		if want(e) {
			if err := stream.Send(e); err != nil {
				return err
			}
		}
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-live:
			if !ok {
				return status.Error(codes.Unavailable, "event stream ended: the manager stopped or the client fell behind; run shoal events again")
			}
			if want(e) {
				if err := stream.Send(e); err != nil {
					return err
				}
			}
		}
	}
}

func (l *localControl) Events(req *api.EventsRequest, stream api.Control_EventsServer) error {
	m := l.get()
	if m == nil {
		return ErrNotManager
	}
	return (&control{m: m}).Events(req, stream)
}
