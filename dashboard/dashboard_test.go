package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// now is the fixed time of the snapshots in these tests: 1.5 s after the
// fake's members last contacted a leader.
var now = time.Unix(0, 1_500_000_000).UTC()

func TestSnapshotOfAClusterGolden(t *testing.T) {
	s := snapshot(context.Background(), threeManagers(), time.Second, now)
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "state.golden", append(got, '\n'))
}

func TestSnapshotWithoutLeaderOrQuorumSaysSo(t *testing.T) {
	f := threeManagers()
	for _, m := range f.raft.Members {
		m.Raft.LeaderId = ""
		m.Raft.State = "Candidate"
		m.Reachable = m.NodeId == "id02"
	}
	f.raft.Reachable = 1
	s := snapshot(context.Background(), f, time.Second, now)
	if s.Leader != "" {
		t.Errorf("leader %q, want none", s.Leader)
	}
	for _, m := range s.Managers {
		if m.Leader {
			t.Errorf("manager %s marked leader", m.Node)
		}
	}
	if want := "3 managers, quorum 2, 1 reachable: NO QUORUM, writes fail until 1 more comes back"; s.Quorum.Line != want || s.Quorum.OK {
		t.Errorf("quorum %+v, want line %q and not OK", s.Quorum, want)
	}
	if len(s.Problems) != 1 || !strings.HasPrefix(s.Problems[0], "No leader:") {
		t.Errorf("problems %q, want one saying there is no leader", s.Problems)
	}
	if len(s.Nodes) != 4 {
		t.Errorf("%d nodes, want the 4 of the local copy: reads work without quorum", len(s.Nodes))
	}
}

func TestSnapshotOnAWorkerSaysItIsNoManager(t *testing.T) {
	f := newFakeControl()
	f.setNotManager()
	s := snapshot(context.Background(), f, time.Second, now)
	if len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "This node is not a swarm manager") {
		t.Errorf("problems %q, want one saying this node is not a manager", s.Problems)
	}
	if s.Quorum != nil || len(s.Managers) != 0 || len(s.Nodes) != 0 || s.Leader != "" {
		t.Errorf("a worker's snapshot shows a cluster: %+v", s)
	}
}

func TestStateEndpointAndPage(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, threeManagers()))
	defer srv.Close()

	var s State
	resp := get(t, srv.URL+"/api/state")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/api/state Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("/api/state: %v", err)
	}
	if s.Leader != "node-01" || s.Self != "node-02" || len(s.Nodes) != 4 {
		t.Errorf("/api/state: leader %q, self %q, %d nodes; want node-01, node-02, 4", s.Leader, s.Self, len(s.Nodes))
	}

	body, _ := io.ReadAll(get(t, srv.URL+"/").Body)
	for _, want := range []string{`<table id="managers" data-leader="">`, `new EventSource("api/stream")`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if resp, err := http.Get(srv.URL + "/nope"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %v %v, want 404", resp.Status, err)
	}
	if resp, err := http.Post(srv.URL+"/api/state", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/state: %v %v, want 405", resp.Status, err)
	}
}

func TestStreamSendsStateThenEventsThenStateAfterThem(t *testing.T) {
	f := threeManagers()
	srv := httptest.NewServer(newHandler(t, f))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openStream(t, ctx, srv.URL)

	if got := r.next(t); got.name != "" || got.retry != "50" {
		t.Fatalf("stream starts with %+v, want retry: 50", got)
	}
	first := r.next(t)
	if first.name != "state" || !strings.Contains(first.data, `"leader":"node-01"`) {
		t.Fatalf("first message %+v, want a state naming node-01 leader", first)
	}
	f.events <- &api.Event{UnixNano: 2_000_000_000, Type: "raft", Action: "elect", Id: "id02",
		Attributes: map[string]string{"leader": "node-02", "term": "4"}}
	ev := r.next(t)
	want := `{"time":"1970-01-01T00:00:02Z","type":"raft","action":"elect","id":"id02","attributes":{"leader":"node-02","term":"4"}}`
	if ev.name != "event" || ev.data != want {
		t.Fatalf("after an event the stream sent %+v, want event %s", ev, want)
	}
	start := time.Now()
	if s := r.next(t); s.name != "state" {
		t.Fatalf("after an event the stream sent %+v, want a state", s)
	}
	// The debounce (20 ms) is far shorter than the refresh (5 s).
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the state after an event came %s later, want it after the debounce", d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if reqs := f.requests; len(reqs) != 1 || reqs[0].SinceUnixNano == 0 {
		t.Errorf("Events requests %v, want one asking for recent history", reqs)
	}
}

func TestStreamEndsWhenTheClientGoesAway(t *testing.T) {
	f := threeManagers()
	srv := httptest.NewServer(newHandler(t, f))
	ctx, cancel := context.WithCancel(context.Background())
	r := openStream(t, ctx, srv.URL)
	r.next(t) // retry
	r.next(t) // state
	clustertest.WaitFor(t, 5*time.Second, "the daemon's event stream to open", func() error {
		if n := f.openStreams(); n != 1 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})

	cancel()
	select {
	case <-f.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the daemon's event stream still runs 5s after the client went away")
	}
	// Close waits for every handler to return: a handler that outlives its
	// client blocks it.
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream handler still runs 5s after its client went away")
	}
	if n := f.openStreams(); n != 0 {
		t.Errorf("%d event streams still open", n)
	}
}

func TestStreamAsksForEventsAgainUntilTheNodeIsAManager(t *testing.T) {
	f := threeManagers()
	f.setNotManager()
	srv := httptest.NewServer(newHandler(t, f))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openStream(t, ctx, srv.URL)
	r.next(t) // retry
	if s := r.next(t); !strings.Contains(s.data, "This node is not a swarm manager") {
		t.Fatalf("a worker's first state %+v does not say it is not a manager", s)
	}
	clustertest.WaitFor(t, 5*time.Second, "a second Events request", func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.requests) < 2 {
			return fmt.Errorf("%d requests", len(f.requests))
		}
		return nil
	})
	f.mu.Lock()
	f.err = nil // promoted
	f.mu.Unlock()
	f.events <- &api.Event{UnixNano: 3_000_000_000, Type: "node", Action: "update", Id: "id02"}
	for {
		if m := r.next(t); m.name == "event" {
			break
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Control = newFakeControl()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no control", func(c *Config) { c.Control = nil }, "no Control client"},
		{"zero refresh", func(c *Config) { c.Refresh = 0 }, "must be positive"},
		{"negative history", func(c *Config) { c.History = -time.Second }, "negative History"},
	} {
		c := ok
		tc.change(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(ok); err != nil {
		t.Errorf("New(DefaultConfig): %v", err)
	}
}

func newHandler(t *testing.T, f *fakeControl) *Handler {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Control = f
	cfg.Refresh, cfg.Debounce, cfg.Retry = 5*time.Second, 20*time.Millisecond, 50*time.Millisecond
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return resp
}

// sseReader reads server-sent events one message at a time.
type sseReader struct {
	msgs chan sseMessage
}

type sseMessage struct{ name, data, retry string }

func openStream(t *testing.T, ctx context.Context, base string) *sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /api/stream: %s, Content-Type %q", resp.Status, ct)
	}
	r := &sseReader{msgs: make(chan sseMessage, 64)}
	go func() {
		defer resp.Body.Close()
		defer close(r.msgs)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				r.msgs <- m
				m = sseMessage{}
				continue
			}
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "event":
				m.name = v
			case "data":
				m.data = v
			case "retry":
				m.retry = v
			}
		}
	}()
	return r
}

func (r *sseReader) next(t *testing.T) sseMessage {
	t.Helper()
	select {
	case m, ok := <-r.msgs:
		if !ok {
			t.Fatal("the stream ended")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message on the stream for 5s")
	}
	return sseMessage{}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s\nwant:\n%s", path, got, want)
	}
}
