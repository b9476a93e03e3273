package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// Snapshot captures the state as it is now: copies taken under the lock, so
// Apply may go on while Persist writes them.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &api.Snapshot{
		Nodes:    make([]*api.Node, 0, len(f.nodes)),
		Services: make([]*api.Service, 0, len(f.t.services)),
		Tasks:    make([]*api.Task, 0, len(f.t.tasks)),
	}
	if f.cluster != nil {
		s.Cluster = proto.CloneOf(f.cluster)
	}
	for _, n := range f.nodes {
		s.Nodes = append(s.Nodes, proto.CloneOf(n))
	}
	for _, svc := range f.t.services {
		s.Services = append(s.Services, proto.CloneOf(svc))
	}
	for _, t := range f.t.tasks {
		s.Tasks = append(s.Tasks, proto.CloneOf(t))
	}
	// Sorted, so that equal states make equal snapshot files.
	slices.SortFunc(s.Nodes, func(a, b *api.Node) int { return strings.Compare(a.Id, b.Id) })
	slices.SortFunc(s.Services, func(a, b *api.Service) int { return strings.Compare(a.Id, b.Id) })
	slices.SortFunc(s.Tasks, func(a, b *api.Task) int { return strings.Compare(a.Id, b.Id) })
	return &fsmSnapshot{state: s, applied: f.applied}, nil
}

// Restore replaces the whole state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s, applied, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	nodes := make(map[string]*api.Node, len(s.Nodes))
	for _, n := range s.Nodes {
		nodes[n.Id] = n
	}
	t := newTables()
	for _, svc := range s.Services {
		t.services[svc.Id] = svc
	}
	for _, task := range s.Tasks {
		t.putTask(task)
	}
	f.mu.Lock()
	f.cluster, f.nodes, f.t, f.applied = s.Cluster, nodes, t, applied
	f.gens.counter++
	f.gens.restore = f.gens.counter
	f.mu.Unlock()
	f.notify()
	return nil
}

type fsmSnapshot struct {
	state   *api.Snapshot
	applied uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := encodeSnapshot(s.state, s.applied)
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("persist snapshot: %w", err), sink.Cancel())
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// A snapshot file is snapshotMagic, the FSM's applied index as 8 bytes big
// endian, then the api.Snapshot in proto wire format. The applied index lets
// a restored FSM know which entries it holds, which WaitApplied depends on;
// the proto has no field for it. Only this package reads these files.
const snapshotMagic = "shoal-snapshot-1\n"

func encodeSnapshot(s *api.Snapshot, applied uint64) ([]byte, error) {
	data := binary.BigEndian.AppendUint64([]byte(snapshotMagic), applied)
	return proto.MarshalOptions{Deterministic: true}.MarshalAppend(data, s)
}

func decodeSnapshot(data []byte) (*api.Snapshot, uint64, error) {
	rest, ok := bytes.CutPrefix(data, []byte(snapshotMagic))
	if !ok || len(rest) < 8 {
		return nil, 0, errors.New("decode snapshot: not a shoal snapshot (bad header)")
	}
	var s api.Snapshot
	if err := proto.Unmarshal(rest[8:], &s); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot: %w", err)
	}
	return &s, binary.BigEndian.Uint64(rest), nil
}
