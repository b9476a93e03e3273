package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

func newInfoCommand(c *cli) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Swarm.Info(cmd.Context(), &api.InfoRequest{})
			if err != nil {
				return err
			}
			info := newInfoView(resp)
			if format != "" {
				return writeTemplate(c.out, format, info)
			}
			writeInfo(c.out, info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

// infoView is what `shoal info --format` templates see. Its shape follows
// Docker's /info (.Swarm.NodeID, .Swarm.LocalNodeState, .Swarm.Cluster.ID,
// .ServerVersion), with the Raft state added as .Swarm.Raft.
type infoView struct {
	Name          string // the node's hostname
	ServerVersion string
	Swarm         swarmInfo
}

type swarmInfo struct {
	NodeID           string
	NodeAddr         string
	LocalNodeState   string // inactive, pending, active, error
	ControlAvailable bool
	Error            string
	RemoteManagers   []peer
	Nodes            int          `json:",omitempty"`
	Managers         int          `json:",omitempty"`
	Cluster          *clusterInfo `json:",omitempty"`
	Raft             *raftInfo    `json:",omitempty"`
}

type peer struct {
	NodeID string
	Addr   string
}

type clusterInfo struct {
	ID   string
	Spec clusterSpec
}

type clusterSpec struct {
	Dispatcher struct{ HeartbeatPeriod time.Duration }
	CAConfig   struct{ NodeCertExpiry time.Duration }
}

type raftInfo struct {
	State              string // Leader, Follower, Candidate, Shutdown
	Term               uint64
	LeaderID           string
	LastLogIndex       uint64
	CommitIndex        uint64
	AppliedIndex       uint64
	SnapshotThreshold  uint64
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
}

func newInfoView(r *api.InfoResponse) infoView {
	v := infoView{
		Name:          r.GetHostname(),
		ServerVersion: r.GetEngineVersion(),
		Swarm: swarmInfo{
			NodeID:           r.GetNodeId(),
			NodeAddr:         r.GetNodeAddr(),
			LocalNodeState:   r.GetLocalNodeState(),
			ControlAvailable: r.GetControlAvailable(),
			Error:            r.GetError(),
			RemoteManagers:   []peer{},
			Nodes:            int(r.GetNodes()),
			Managers:         int(r.GetManagers()),
		},
	}
	if v.Swarm.LocalNodeState == "" {
		v.Swarm.LocalNodeState = "inactive"
	}
	for _, p := range r.GetRemoteManagers() {
		v.Swarm.RemoteManagers = append(v.Swarm.RemoteManagers, peer{NodeID: p.GetNodeId(), Addr: p.GetAddr()})
	}
	if r.GetClusterId() != "" {
		c := &clusterInfo{ID: r.GetClusterId()}
		c.Spec.Dispatcher.HeartbeatPeriod = time.Duration(r.GetHeartbeatPeriodNs())
		c.Spec.CAConfig.NodeCertExpiry = time.Duration(r.GetCertExpiryNs())
		v.Swarm.Cluster = c
	}
	if ri := r.GetRaft(); ri != nil {
		v.Swarm.Raft = &raftInfo{
			State:              ri.GetState(),
			Term:               ri.GetTerm(),
			LeaderID:           ri.GetLeaderId(),
			LastLogIndex:       ri.GetLastLogIndex(),
			CommitIndex:        ri.GetCommitIndex(),
			AppliedIndex:       ri.GetAppliedIndex(),
			SnapshotThreshold:  ri.GetSnapshotThreshold(),
			HeartbeatTimeout:   time.Duration(ri.GetHeartbeatTimeoutNs()),
			ElectionTimeout:    time.Duration(ri.GetElectionTimeoutNs()),
			LeaderLeaseTimeout: time.Duration(ri.GetLeaderLeaseTimeoutNs()),
		}
	}
	return v
}

// writeInfo prints info as `docker info` does, keeping to what shoal has:
// the versions, the Swarm section and the node's name.
func writeInfo(w io.Writer, info infoView) {
	fmt.Fprintln(w, "Client:")
	fmt.Fprintln(w, " Version:   ", version)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Server:")
	if info.ServerVersion != "" {
		fmt.Fprintln(w, " Server Version:", info.ServerVersion)
	}
	fmt.Fprintln(w, " Swarm:", info.Swarm.LocalNodeState)
	writeSwarmInfo(w, info.Swarm)
	if info.Name != "" {
		fmt.Fprintln(w, " Name:", info.Name)
	}
	fmt.Fprintln(w)
}

func writeSwarmInfo(w io.Writer, s swarmInfo) {
	if s.LocalNodeState == "inactive" || s.LocalNodeState == "locked" {
		return
	}
	fmt.Fprintln(w, "  NodeID:", s.NodeID)
	if s.Error != "" {
		fmt.Fprintln(w, "  Error:", s.Error)
	}
	fmt.Fprintln(w, "  Is Manager:", s.ControlAvailable)
	cluster := s.Cluster != nil && s.ControlAvailable && s.Error == "" && s.LocalNodeState != "error"
	if cluster {
		fmt.Fprintln(w, "  ClusterID:", s.Cluster.ID)
		fmt.Fprintln(w, "  Managers:", s.Managers)
		fmt.Fprintln(w, "  Nodes:", s.Nodes)
	}
	// Raft is shown even when the swarm reports an error: a manager that
	// lost quorum is exactly when its term and leader are worth seeing.
	if r := s.Raft; r != nil {
		leader := r.LeaderID
		if leader == "" {
			leader = "(none)"
		}
		fmt.Fprintln(w, "  Raft:")
		fmt.Fprintln(w, "   State:", r.State)
		fmt.Fprintln(w, "   Term:", r.Term)
		fmt.Fprintln(w, "   Leader:", leader)
		fmt.Fprintln(w, "   Last Log Index:", r.LastLogIndex)
		fmt.Fprintln(w, "   Commit Index:", r.CommitIndex)
		fmt.Fprintln(w, "   Applied Index:", r.AppliedIndex)
		fmt.Fprintln(w, "   Snapshot Threshold:", r.SnapshotThreshold)
		fmt.Fprintln(w, "   Heartbeat Timeout:", r.HeartbeatTimeout)
		fmt.Fprintln(w, "   Election Timeout:", r.ElectionTimeout)
		fmt.Fprintln(w, "   Leader Lease Timeout:", r.LeaderLeaseTimeout)
	}
	if cluster {
		if hb := s.Cluster.Spec.Dispatcher.HeartbeatPeriod; hb > 0 {
			fmt.Fprintln(w, "  Dispatcher:")
			fmt.Fprintln(w, "   Heartbeat Period:", humanDuration(hb))
		}
		if exp := s.Cluster.Spec.CAConfig.NodeCertExpiry; exp > 0 {
			fmt.Fprintln(w, "  CA Configuration:")
			fmt.Fprintln(w, "   Expiry Duration:", humanDuration(exp))
		}
	}
	fmt.Fprintln(w, "  Node Address:", s.NodeAddr)
	if len(s.RemoteManagers) > 0 {
		addrs := make([]string, 0, len(s.RemoteManagers))
		for _, p := range s.RemoteManagers {
			addrs = append(addrs, p.Addr)
		}
		slices.Sort(addrs)
		fmt.Fprintln(w, "  Manager Addresses:")
		for _, a := range addrs {
			fmt.Fprintf(w, "   %s\n", a)
		}
	}
}
