package raftstore

import (
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

const (
	transportPool    = 3               // idle connections kept per peer
	transportTimeout = 5 * time.Second // I/O deadline of one RPC (scaled up for snapshots)
)

// NewTransport is Raft's network transport over stream, a stream layer made
// elsewhere (in shoal, mutual TLS on the cluster port). Give it to Open,
// which then owns it.
func NewTransport(stream raft.StreamLayer, logger *slog.Logger) *raft.NetworkTransport {
	if logger == nil {
		logger = slog.Default()
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: transportPool,
		Timeout: transportTimeout,
		Logger:  NewHCLogger(logger.With("component", "raft")).Named("net"),
	})
}
