package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/daemon"
)

// newDaemonCommand is `shoal daemon`: flags into a daemon.Config, then Run
// until SIGINT or SIGTERM.
func newDaemonCommand() *cobra.Command {
	cfg := daemon.DefaultConfig()
	var debug bool
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run a shoal node (like dockerd): serves the control socket given with -H",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, err := cmd.Flags().GetString("host")
			if err != nil {
				return err
			}
			cfg.Socket = host
			cfg.EngineVersion = version
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", cfg.Hostname)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := daemon.Run(ctx, cfg); err != nil {
				return fmt.Errorf("shoal daemon: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "Directory for the node's state, certificates and Raft data")
	f.StringVar(&cfg.Hostname, "hostname", cfg.Hostname, "Name of this node in the swarm")
	f.BoolVarP(&debug, "debug", "D", false, "Log debug messages")
	f.StringVar(&cfg.DashboardAddr, "dashboard-addr", "", "Serve a live web dashboard on http://ADDR/ and Prometheus metrics on http://ADDR/metrics (off unless given)")
	c := &cfg.Containerd
	f.StringVar(&c.Socket, "containerd-socket", c.Socket, "containerd's socket")
	f.StringVar(&c.Namespace, "containerd-namespace", c.Namespace, "containerd namespace of this node's containers (several local nodes may share one containerd)")
	f.StringSliceVar(&c.InsecureRegistries, "insecure-registry", nil, "Registry HOST:PORT to pull from over plain HTTP (repeatable)")
	f.StringSliceVar(&c.RegistryMirrors, "registry-mirror", nil, "Registry URL (http://HOST:PORT or https://...) to pull Docker Hub images from first (repeatable)")
	m := &cfg.Manager
	f.DurationVar(&m.HeartbeatPeriod, "heartbeat-period", m.HeartbeatPeriod, "Agent heartbeat period, set for the cluster by `swarm init`")
	f.IntVar(&m.DownAfter, "down-after", m.DownAfter, "Heartbeat periods missed before a node is Down")
	f.DurationVar(&m.ReconnectGrace, "reconnect-grace", m.ReconnectGrace, "How long a new leader waits for nodes to reconnect before marking them Down")
	f.DurationVar(&m.ProbeInterval, "probe-interval", m.ProbeInterval, "How often managers check that the others are reachable")
	r := &m.Raft
	f.DurationVar(&r.HeartbeatTimeout, "raft-heartbeat-timeout", r.HeartbeatTimeout, "Raft: time without a leader's contact before a follower starts an election")
	f.DurationVar(&r.ElectionTimeout, "raft-election-timeout", r.ElectionTimeout, "Raft: time a candidate waits for votes")
	f.DurationVar(&r.LeaderLeaseTimeout, "raft-leader-lease", r.LeaderLeaseTimeout, "Raft: time a leader keeps leading without hearing from a quorum")
	f.Uint64Var(&r.SnapshotThreshold, "raft-snapshot-threshold", r.SnapshotThreshold, "Raft: log entries between snapshots")
	f.Uint64Var(&r.TrailingLogs, "raft-trailing-logs", r.TrailingLogs, "Raft: log entries kept after a snapshot, so that a follower a little behind needs no snapshot")
	f.DurationVar(&r.SnapshotInterval, "raft-snapshot-interval", r.SnapshotInterval, "Raft: how often to check whether a snapshot is due")
	f.DurationVar(&r.LeaderWait, "raft-leader-wait", r.LeaderWait, "How long a write waits for a leader before failing")
	return cmd
}
