package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/api"
)

// State is what a node remembers of its swarm across restarts.
type State struct {
	NodeID        string       `json:"node_id"`
	ClusterID     string       `json:"cluster_id"`
	Role          api.NodeRole `json:"role"`
	ListenAddr    string       `json:"listen_addr"`
	AdvertiseAddr string       `json:"advertise_addr"`
	Managers      []string     `json:"managers"`
}

const stateFile = "state.json"

// loadState returns nil, nil when the node is in no swarm.
func loadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): move it away and join the swarm again", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

// saveState writes the state atomically.
func saveState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}
