package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeDashboardServesPageStateAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_test_total", Help: "a test counter"}))
	// No daemon answers on this socket: the page must say so, not break.
	addr, stop, err := serveDashboard("127.0.0.1:0", filepath.Join(t.TempDir(), "none.sock"), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	for path, want := range map[string]string{
		"/":        `<table id="managers"`,
		"/metrics": "shoal_test_total 0",
	} {
		if body := httpGet(t, "http://"+addr+path); !strings.Contains(body, want) {
			t.Errorf("GET %s lacks %q:\n%.300s", path, want, body)
		}
	}
	var state struct{ Problems []string }
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+addr+"/api/state")), &state); err != nil {
		t.Fatal(err)
	}
	if len(state.Problems) == 0 || !strings.HasPrefix(state.Problems[0], "Could not read Raft status") {
		t.Errorf("without a daemon, /api/state says %q; want why it could not read Raft status", state.Problems)
	}
}

func TestServeDashboardRefusesABadAddress(t *testing.T) {
	_, _, err := serveDashboard("nonsense", "/tmp/none.sock", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--dashboard-addr") {
		t.Errorf("serveDashboard(nonsense): %v, want an error naming --dashboard-addr", err)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}
