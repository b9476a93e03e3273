package raftstore

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// FSM is the replicated state machine: the cluster object, the nodes, and
// the services and tasks (services.go), changed only by committed
// api.Commands. It implements raft.FSM and
// raft.ConfigurationStore (only to learn the index of configuration entries).
//
// Apply is deterministic: it reads no clock and no randomness, only the
// command. Readers get clones, so nothing outside can change the state.
type FSM struct {
	mu      sync.RWMutex
	cluster *api.Cluster
	nodes   map[string]*api.Node
	t       tables // services and tasks
	gens    generations
	sink    func([]*api.Event) // see SetEventSink
	applied uint64             // index of the last entry whose effect the state holds

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
}

var (
	_ raft.FSM                = (*FSM)(nil)
	_ raft.ConfigurationStore = (*FSM)(nil)
)

// NewFSM returns an empty FSM: no cluster until InitCluster is applied.
func NewFSM() *FSM {
	return &FSM{nodes: map[string]*api.Node{}, t: newTables(), gens: newGenerations(), subs: map[chan struct{}]struct{}{}}
}

// Apply applies one committed command. It returns the entry's index (a
// uint64) when the command took effect and an error when it was refused; a
// refused command changes nothing.
func (f *FSM) Apply(l *raft.Log) any {
	var cmd api.Command
	err := proto.Unmarshal(l.Data, &cmd)
	if err != nil {
		err = fmt.Errorf("raft entry %d: decode command: %w", l.Index, err)
	}
	f.mu.Lock()
	if err == nil {
		nodes, orch, net := f.touched(&cmd)
		events := f.describe(&cmd)
		if err = f.apply(&cmd); err == nil {
			f.gens.bump(nodes, orch, net)
			if len(events) > 0 {
				f.sink(events)
			}
		}
	}
	f.applied = l.Index
	f.mu.Unlock()
	f.notify()
	if err != nil {
		return err
	}
	return l.Index
}

// StoreConfiguration records that a configuration entry was applied; the
// configuration itself is Raft's business.
func (f *FSM) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.mu.Lock()
	f.applied = index
	f.gens.counter++
	f.gens.config = f.gens.counter
	f.mu.Unlock()
	f.notify()
}

// appliedIndex is the index of the last log entry whose effect the state
// holds (commands and configuration entries; no-ops are not seen).
func (f *FSM) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// Cluster returns a copy of the cluster object, nil before InitCluster.
func (f *FSM) Cluster() *api.Cluster {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.cluster == nil {
		return nil
	}
	return proto.CloneOf(f.cluster)
}

// Settings returns a copy of the cluster's settings alone, or nil before
// the cluster is initialised: cheaper than Cluster, which copies the CA
// and the secrets too, for callers that run per heartbeat.
func (f *FSM) Settings() *api.ClusterSettings {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.cluster.GetSettings() == nil {
		return nil
	}
	return proto.CloneOf(f.cluster.Settings)
}

// Node returns a copy of one node.
func (f *FSM) Node(id string) (*api.Node, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n, ok := f.nodes[id]
	if !ok {
		return nil, false
	}
	return proto.CloneOf(n), true
}

// Nodes returns copies of all nodes, sorted by hostname then ID.
func (f *FSM) Nodes() []*api.Node {
	f.mu.RLock()
	out := make([]*api.Node, 0, len(f.nodes))
	for _, n := range f.nodes {
		out = append(out, proto.CloneOf(n))
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b *api.Node) int {
		return cmp.Or(strings.Compare(a.Hostname, b.Hostname), strings.Compare(a.Id, b.Id))
	})
	return out
}

// IsRemoved tells whether id was removed from the swarm.
func (f *FSM) IsRemoved(id string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.isRemoved(id)
}

func (f *FSM) isRemoved(id string) bool {
	return f.cluster != nil && slices.Contains(f.cluster.RemovedNodes, id)
}

// Changes subscribes to state changes: the channel receives a signal after
// every Apply and Restore. Signals coalesce (one is pending at most), so a
// receiver re-reads the state rather than counting. cancel ends the
// subscription; it does not close the channel.
func (f *FSM) Changes() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.subMu.Lock()
	f.subs[ch] = struct{}{}
	f.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.subMu.Lock()
			delete(f.subs, ch)
			f.subMu.Unlock()
		})
	}
}

func (f *FSM) notify() {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
