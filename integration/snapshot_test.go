package integration

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// The Raft settings of TestSnapshotsAndCatchUp: a snapshot every 200
// entries, checked for every 200 ms (hashicorp/raft waits between one and
// two intervals), and 100 entries kept behind each one. The defaults are
// 8192 / 30 s / 10240.
const (
	snapThreshold = 200
	snapTrailing  = 100
	snapInterval  = 200 * time.Millisecond
	snapWrites    = 3000 // join-token rotations
	snapWriters   = 8    // at once, over one connection
	// installedSnapshot is what hashicorp/raft logs (at Info, which shoal
	// logs at debug level) once a follower has restored a snapshot the
	// leader sent it: the leader sends one only when it no longer holds the
	// log entries the follower needs next.
	installedSnapshot = `msg="Installed remote snapshot"`
	// catchUp bounds how long a manager may take to catch up.
	catchUp = 30 * time.Second
)

// Several thousand writes with a low snapshot threshold: every running
// manager takes snapshots and truncates its log; a manager that was down
// during the writes and a worker promoted after them both catch up from a
// snapshot the leader sends, and answer with the latest state.
//
// The writes are join-token rotations sent by this test over one gRPC
// connection to the leader's control socket, eight at a time: 3,000 took
// 2.7 to 8.4 s here, where the CLI would start a process and open a
// connection for every write. No helper program is needed either: the
// control socket is a unix socket, reachable from the test's namespace.
// Each rotation is one Raft entry with a fresh secret, so the last token
// names the last write exactly.
func TestSnapshotsAndCatchUp(t *testing.T) {
	testhost.Require(t)
	raftArgs := []string{
		"--raft-snapshot-threshold", strconv.Itoa(snapThreshold),
		"--raft-trailing-logs", strconv.Itoa(snapTrailing),
		"--raft-snapshot-interval", snapInterval.String(),
	}
	c := &cluster{t: t, bin: clustertest.BuildShoal(t), lan: testhost.NewLAN(t)}
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("node-%02d", i)
		args := raftArgs
		if i == 4 {
			// Raft logs its snapshot installs at debug level.
			args = append(slices.Clone(raftArgs), "--debug")
		}
		c.nodes = append(c.nodes, clustertest.StartDaemon(t, c.bin, c.lan.AddHost(t, name), name, args...))
	}
	worker, manager := c.init(1)
	c.join(2, manager, 1)
	c.join(3, manager, 1)
	c.join(4, worker, 1)
	c.waitNodes(1, settle, map[string]want{
		"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"},
		"node-03": {"Ready", "Reachable"}, "node-04": {"Ready", ""},
	})
	leader := dialControl(t, c.node(1))

	c.node(3).Kill(t)
	before := mustRaftInfo(t, leader)
	start := time.Now()
	rotateMany(t, leader.ctl, snapWrites, snapWriters)
	pause := api.NodeAvailability_PAUSE
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := leader.ctl.UpdateNode(ctx, &api.UpdateNodeRequest{Ref: "node-04", Availability: &pause})
	cancel()
	if err != nil {
		t.Fatalf("pausing node-04: %v", err)
	}
	token := rotateMany(t, leader.ctl, 1, 1) // the last write
	took := time.Since(start)
	after := mustRaftInfo(t, leader)
	t.Logf("%d writes in %s (%.0f/s): the leader's applied index went from %d to %d",
		snapWrites+2, took.Round(time.Millisecond), float64(snapWrites+2)/took.Seconds(), before.AppliedIndex, after.AppliedIndex)
	if after.AppliedIndex < before.AppliedIndex+snapWrites {
		t.Fatalf("applied index %d after %d writes from %d", after.AppliedIndex, snapWrites, before.AppliedIndex)
	}

	// A snapshot is due once snapThreshold entries follow the last one, so
	// each running manager soon has one within snapThreshold of the end.
	for _, i := range []int{1, 2} {
		clustertest.WaitFor(t, 10*time.Second, fmt.Sprintf("node-%02d to snapshot past index %d", i, after.LastLogIndex-snapThreshold), func() error {
			snaps, err := snapshots(c.node(i))
			if err != nil {
				return err
			}
			if len(snaps) == 0 || snaps[0].Index <= after.LastLogIndex-snapThreshold {
				return fmt.Errorf("snapshots: %v", snaps)
			}
			return nil
		})
		snaps, _ := snapshots(c.node(i))
		t.Logf("node-%02d's snapshots: %v", i, snaps)
	}

	// The manager that missed the writes: the leader no longer has the
	// entries it lacks, so it must send a snapshot.
	n3 := c.node(3)
	n3.Args = append(n3.Args, "--debug")
	restarted := time.Now()
	n3.Restart(t)
	c.waitCaughtUp(t, 3, after.AppliedIndex, token)
	t.Logf("node-03 caught up %s after its restart", time.Since(restarted).Round(time.Millisecond))

	// A worker promoted after the writes starts Raft with an empty log.
	promoted := time.Now()
	if out := c.node(1).MustCLI(t, "node", "promote", "node-04"); !strings.Contains(out, "promoted to a manager") {
		t.Fatalf("node promote node-04 printed %q", out)
	}
	c.waitCaughtUp(t, 4, mustRaftInfo(t, leader).AppliedIndex, token)
	t.Logf("node-04 caught up %s after its promotion", time.Since(promoted).Round(time.Millisecond))
	all := map[string]want{
		"node-01": {"Ready", "Leader"}, "node-02": {"Ready", "Reachable"},
		"node-03": {"Ready", "Reachable"}, "node-04": {"Ready", "Reachable"},
	}
	c.waitNodes(1, settle, all)
	c.waitNodes(4, settle, all)

	// The logs, read from raft.db once the daemons have stopped (bbolt's
	// file lock keeps readers out while a daemon has it open).
	leader.conn.Close()
	for i := 4; i >= 1; i-- {
		c.node(i).Stop(t)
	}
	for i := 1; i <= 4; i++ {
		first, last, held := raftLog(t, c.node(i))
		snaps, _ := snapshots(c.node(i))
		t.Logf("node-%02d: log from %d to %d, %d entries held; snapshots %v", i, first, last, held, snaps)
		if i > 2 {
			// Installing a snapshot leaves a follower's older entries when
			// it holds fewer than TrailingLogs of them (hashicorp/raft's
			// compactLogs): node-03 keeps the dozen it had before the
			// writes, then a gap up to the snapshot. Nothing to check on
			// node-03 and node-04.
			continue
		}
		// After the last snapshot S and its compaction the log holds at
		// most the entries after S and snapTrailing before it, and fewer
		// than snapThreshold follow S (else another snapshot is due); a
		// few more may have come since the last check.
		if first <= before.LastLogIndex || held > snapThreshold+snapTrailing+50 {
			t.Errorf("node-%02d's log holds %d entries from %d to %d after %d writes from index %d: not truncated",
				i, held, first, last, snapWrites, before.LastLogIndex)
		}
	}
}

// raftInfo is the Raft state of the daemon behind c, as `shoal info` shows
// it, or an error if it shows none.
func raftInfo(c controlConn) (*api.RaftInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.swarm.Info(ctx, &api.InfoRequest{})
	if err == nil && info.GetRaft() == nil {
		err = fmt.Errorf("info shows no Raft state: %v", info)
	}
	return info.GetRaft(), err
}

// mustRaftInfo is raftInfo that fails the test on error.
func mustRaftInfo(tb testing.TB, c controlConn) *api.RaftInfo {
	tb.Helper()
	ri, err := raftInfo(c)
	if err != nil {
		tb.Fatalf("info: %v", err)
	}
	return ri
}

// rotateMany rotates the worker join token n times, from `writers`
// goroutines at once, and returns the token of the last rotation.
func rotateMany(tb testing.TB, ctl api.ControlClient, n, writers int) string {
	tb.Helper()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		token string
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				tok, err := ctl.RotateJoinToken(ctx, &api.GetJoinTokenRequest{Role: api.NodeRole_WORKER})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					token = tok.GetToken()
				}
				mu.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("rotating the worker join token %d times: %v", n, err)
	}
	return token
}

// waitCaughtUp waits until manager i has applied the leader's index, holds
// the latest join token and node-04's Pause, and has logged a snapshot
// install.
func (c *cluster) waitCaughtUp(t *testing.T, i int, applied uint64, token string) {
	t.Helper()
	ctl := dialControl(t, c.node(i))
	clustertest.WaitFor(t, catchUp, fmt.Sprintf("node-%02d to apply index %d", i, applied), func() error {
		ri, err := raftInfo(ctl)
		if err != nil {
			return err
		}
		if ri.GetAppliedIndex() < applied {
			return fmt.Errorf("raft: %v", ri)
		}
		return nil
	})
	ctl.conn.Close()
	if got := strings.TrimSpace(c.node(i).MustCLI(t, "swarm", "join-token", "-q", "worker")); got != token {
		t.Errorf("node-%02d's worker token is %s, want the last rotation's %s", i, got, token)
	}
	rows, err := c.nodeLs(i)
	if err != nil || rows["node-04"].Availability != "Pause" {
		t.Errorf("node ls on node-%02d shows node-04 as %+v (%v), want Pause", i, rows["node-04"], err)
	}
	log, err := os.ReadFile(c.node(i).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), installedSnapshot) {
		t.Errorf("node-%02d caught up without installing a snapshot from the leader (no %s in its log)", i, installedSnapshot)
	}
}

// snapshotMeta is what a snapshot's meta.json holds, in part.
type snapshotMeta struct {
	ID    string
	Index uint64
	Term  uint64
	Size  int64
}

func (m snapshotMeta) String() string {
	return fmt.Sprintf("%s(index %d, %d bytes)", m.ID, m.Index, m.Size)
}

// snapshots lists the finished snapshots in d's data dir, newest first.
func snapshots(d *clustertest.Daemon) ([]snapshotMeta, error) {
	dirs, err := filepath.Glob(filepath.Join(d.DataDir, "raft", "snapshots", "*", "meta.json"))
	if err != nil {
		return nil, err
	}
	var metas []snapshotMeta
	for _, path := range dirs {
		if strings.HasSuffix(filepath.Dir(path), ".tmp") {
			continue // being written
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err // reaped since the glob: try again
		}
		var m snapshotMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		metas = append(metas, m)
	}
	slices.SortFunc(metas, func(a, b snapshotMeta) int { return cmp.Compare(b.Index, a.Index) })
	return metas, nil
}

// raftLog opens a stopped daemon's raft.db read-only and returns the first
// and last index of its log, and how many entries it holds between them
// (the log may have a gap: see the caller).
func raftLog(t *testing.T, d *clustertest.Daemon) (first, last, held uint64) {
	t.Helper()
	path := filepath.Join(d.DataDir, "raft", "raft.db")
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	defer store.Close()
	if first, err = store.FirstIndex(); err == nil {
		last, err = store.LastIndex()
	}
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for i := first; i <= last && i > 0; i++ {
		var entry raft.Log
		switch err := store.GetLog(i, &entry); {
		case err == nil:
			held++
		case !errors.Is(err, raft.ErrLogNotFound):
			t.Fatalf("%s: entry %d: %v", path, i, err)
		}
	}
	return first, last, held
}
