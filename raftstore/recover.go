package raftstore

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// ForceNewCluster rewrites the Raft configuration in cfg.DataDir to this
// server alone, keeping the state (`swarm init --force-new-cluster` on a
// surviving manager). Call it before Open, which then elects this server.
//
// hashicorp/raft's RecoverCluster replays every entry in the log into a new
// snapshot, including entries the old cluster may never have committed, and
// compacts the log. trans is used only to encode the configuration and may
// be nil; it is neither started nor closed, so don't pass a transport whose
// listener would compete with the one given to Open.
func ForceNewCluster(cfg Config, trans raft.Transport) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.logger().With("component", "raft")
	d, err := openDisk(cfg, log)
	if err != nil {
		return err
	}
	defer d.bolt.Close()
	if trans == nil {
		_, inmem := raft.NewInmemTransport(raft.ServerAddress(cfg.Addr))
		defer inmem.Close()
		trans = inmem
	}
	self := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(cfg.NodeID), Address: raft.ServerAddress(cfg.Addr),
	}}}
	if err := raft.RecoverCluster(cfg.raftConfig(nil, log), NewFSM(), d.logs, d.bolt, d.snaps, trans, self); err != nil {
		return fmt.Errorf("force new cluster: %w", err)
	}
	cfg.logger().With("component", "raftstore").Warn("raft configuration rewritten to this manager alone", "id", cfg.NodeID, "addr", cfg.Addr)
	return nil
}
