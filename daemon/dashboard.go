package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/dashboard"
	"github.com/shoal-dev/shoal/transport"
)

// serveDashboard serves the web dashboard and /metrics on addr until stop
// is called, and returns the address it listens on. The dashboard reads the
// cluster through the daemon's own control socket, like the CLI: it sees
// what `shoal -H socket` sees, and the socket need not answer yet (the
// client connects on first use).
func serveDashboard(addr, socket string, reg *prometheus.Registry, log *slog.Logger) (bound string, stop func(), err error) {
	cc, err := transport.DialLocal(socket)
	if err != nil {
		return "", nil, fmt.Errorf("dashboard: client of %s: %w", socket, err)
	}
	cfg := dashboard.DefaultConfig()
	cfg.Control, cfg.Logger = api.NewControlClient(cc), log
	dash, err := dashboard.New(cfg)
	if err != nil {
		cc.Close()
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cc.Close()
		return "", nil, fmt.Errorf("--dashboard-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", dash)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("dashboard", "url", "http://"+ln.Addr().String()+"/")
	return ln.Addr().String(), func() { srv.Close(); cc.Close() }, nil
}
