package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func activeManagerInfo() *api.InfoResponse {
	return &api.InfoResponse{
		NodeId:           idManager1,
		Hostname:         "manager-1",
		LocalNodeState:   "active",
		NodeAddr:         "10.0.0.1",
		ControlAvailable: true,
		ClusterId:        "q2zvf4b4s8xr0wm3m1kdy7c5n",
		Managers:         3,
		Nodes:            6,
		RemoteManagers: []*api.Peer{
			{NodeId: idManager3, Addr: "10.0.0.3:2377"},
			{NodeId: idManager1, Addr: "10.0.0.1:2377"},
			{NodeId: idManager2, Addr: "10.0.0.2:2377"},
		},
		Raft: &api.RaftInfo{
			State: "Leader", Term: 4, LeaderId: idManager1,
			LastLogIndex: 112, CommitIndex: 112, AppliedIndex: 111,
			HeartbeatTimeoutNs:   int64(500 * time.Millisecond),
			ElectionTimeoutNs:    int64(time.Second),
			LeaderLeaseTimeoutNs: int64(250 * time.Millisecond),
			SnapshotThreshold:    8192,
		},
		EngineVersion:     "0.1.0-dev",
		CertExpiryNs:      int64(90 * 24 * time.Hour),
		HeartbeatPeriodNs: int64(time.Second),
	}
}

func TestInfo(t *testing.T) {
	leaderless := activeManagerInfo()
	leaderless.Error = "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
	leaderless.Raft.State, leaderless.Raft.LeaderId, leaderless.Raft.Term = "Candidate", "", 9

	for _, tc := range []struct {
		golden string
		info   *api.InfoResponse
		args   []string
	}{
		{"info-manager", activeManagerInfo(), nil},
		{"info-manager-no-leader", leaderless, nil},
		{"info-worker", &api.InfoResponse{
			NodeId: idWorker2, Hostname: "worker-2", LocalNodeState: "active", NodeAddr: "10.0.0.12",
			RemoteManagers: []*api.Peer{{NodeId: idManager1, Addr: "10.0.0.1:2377"}},
			EngineVersion:  "0.1.0-dev",
		}, nil},
		{"info-inactive", &api.InfoResponse{Hostname: "lonely", LocalNodeState: "inactive", EngineVersion: "0.1.0-dev"}, nil},
		{"info-json", activeManagerInfo(), []string{"--format", "json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			f := newFakeDaemon()
			f.info = tc.info
			assertGolden(t, tc.golden, mustShoal(t, f.serve(t), append([]string{"info"}, tc.args...)...))
		})
	}
}

func TestInfoFormat(t *testing.T) {
	f := newFakeDaemon()
	f.info = activeManagerInfo()
	host := f.serve(t)
	for format, want := range map[string]string{
		"{{.Swarm.LocalNodeState}}":                       "active\n",
		"{{.Swarm.NodeID}}":                               idManager1 + "\n",
		"{{.Swarm.ControlAvailable}}":                     "true\n",
		"{{.Swarm.Cluster.ID}}":                           "q2zvf4b4s8xr0wm3m1kdy7c5n\n",
		"{{.Swarm.Raft.State}} {{.Swarm.Raft.Term}}":      "Leader 4\n",
		"{{.Swarm.Raft.ElectionTimeout}}":                 "1s\n",
		"{{.ServerVersion}} {{.Name | upper}}":            "0.1.0-dev MANAGER-1\n",
		"{{len .Swarm.RemoteManagers}}":                   "3\n",
		"{{json .Swarm.Cluster.ID}}":                      `"q2zvf4b4s8xr0wm3m1kdy7c5n"` + "\n",
		"{{truncate .Swarm.NodeID 12}}":                   idManager1[:12] + "\n",
		"{{title .Swarm.LocalNodeState}}":                 "Active\n",
		"{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}": "2160h0m0s\n",
	} {
		if got := mustShoal(t, host, "info", "--format", format); got != want {
			t.Errorf("info --format %q = %q, want %q", format, got, want)
		}
	}

	var v map[string]any
	if err := json.Unmarshal([]byte(mustShoal(t, host, "info", "--format", "{{json .}}")), &v); err != nil {
		t.Fatalf("{{json .}} is not JSON: %v", err)
	}
	if v["Swarm"].(map[string]any)["NodeID"] != idManager1 {
		t.Errorf("{{json .}}: Swarm.NodeID missing in %v", v)
	}
}
