package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/imagetest"
	"github.com/shoal-dev/shoal/integration/internal/mounts"
	"github.com/shoal-dev/shoal/integration/testhost"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
	ctrexec "github.com/shoal-dev/shoal/worker/containerd"
)

// --- the floor ---

// floorResult is one timed floor round.
type floorResult struct {
	took  time.Duration // from "start" to the last child's answer
	tasks []floorTask
	cpu   cpuUse
}

// floor has every node's child prepare and start 2 nginx containers at
// once, and times it until the last child has started its two; then has
// them stop and remove the containers.
func (bc *createBench) floor(round int) floorResult {
	bc.tb.Helper()
	per := createReplicas / createNodes
	cpu0 := bc.cpu()
	start := time.Now()
	for i, f := range bc.floors {
		ids := make([]string, per)
		for k := range ids {
			ids[k] = fmt.Sprintf("floor-r%d-n%d-%d", round, i+1, k+1)
		}
		f.send(bc.tb, "start "+strings.Join(ids, " "))
	}
	var r floorResult
	var last time.Time
	for _, f := range bc.floors {
		var rep floorReport
		at := f.await(bc.tb, "started", &rep)
		if rep.Err != "" {
			bc.tb.Fatalf("floor on %s: %s\nits log:\n%s", f.host, rep.Err, f.logTail())
		}
		last = later(last, at)
		r.tasks = append(r.tasks, rep.Tasks...)
	}
	r.took = last.Sub(start)
	r.cpu = bc.cpu().since(cpu0)
	for _, f := range bc.floors {
		f.send(bc.tb, "remove")
	}
	for _, f := range bc.floors {
		var rep floorReport
		f.await(bc.tb, "removed", &rep)
		if rep.Err != "" {
			bc.tb.Fatalf("floor on %s: removing: %s\nits log:\n%s", f.host, rep.Err, f.logTail())
		}
		if left, err := imagetest.Leftovers(bc.tb, bc.sc.containerd, f.cfg.Namespace); err != nil || len(left) > 0 {
			bc.tb.Fatalf("floor on %s left %v (%v)", f.host, left, err)
		}
	}
	return r
}

// floorConfig is what a floor child needs, passed in floorEnv.
type floorConfig struct {
	Socket, Namespace, StateDir, Registry, Image string
}

// floorTask is one container a child started.
type floorTask struct {
	ID             string
	Prepare, Start time.Duration
}

// floorReport is a child's answer to "start" or "remove".
type floorReport struct {
	Elapsed time.Duration
	Tasks   []floorTask
	Err     string
}

// floorChild is this test binary run again on a test host, as
// TestCreateFloorNode: it holds an executor for the host and starts or
// removes containers when told to on its stdin.
type floorChild struct {
	host    *testhost.Host
	cfg     floorConfig
	pid     int
	stdin   io.WriteCloser
	replies chan floorLine
	exited  chan struct{}

	mu  sync.Mutex
	log bytes.Buffer // the child's stderr and stray stdout
}

type floorLine struct {
	kind string
	body []byte
	at   time.Time
}

func startFloorChild(tb testing.TB, h *testhost.Host, socket, registry, image string) *floorChild {
	tb.Helper()
	dir, err := os.MkdirTemp("", "shoal-floor-")
	if err != nil {
		tb.Fatal(err)
	}
	f := &floorChild{
		host:    h,
		cfg:     floorConfig{Socket: socket, Namespace: "floor-" + h.NS, StateDir: dir, Registry: registry, Image: image},
		replies: make(chan floorLine, 4),
		exited:  make(chan struct{}),
	}
	raw, _ := json.Marshal(f.cfg)
	cmd := h.Command(os.Args[0], "-test.run=^TestCreateFloorNode$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), floorEnv+"="+string(raw))
	cmd.Stderr = f
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		f.stdin, err = cmd.StdinPipe()
	}
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("starting the floor child on %s: %v", h, err)
	}
	f.pid = cmd.Process.Pid
	go f.read(stdout)
	go func() { cmd.Wait(); close(f.exited) }()
	tb.Cleanup(func() {
		f.stdin.Write([]byte("exit\n"))
		f.stdin.Close()
		select {
		case <-f.exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-f.exited
		}
		if tb.Failed() {
			tb.Logf("floor child on %s:\n%s", h, f.logTail())
		}
		// What a child that died mid-round left behind.
		if err := ctrdutil.RemoveNamespace(socket, f.cfg.Namespace); err != nil {
			tb.Errorf("removing containerd namespace %s: %v", f.cfg.Namespace, err)
		}
		if err := mounts.UnmountUnder(dir); err != nil {
			tb.Errorf("floor on %s: %v", h, err)
		}
		os.RemoveAll(dir)
	})
	var ready floorReport
	f.await(tb, "ready", &ready)
	if ready.Err != "" {
		tb.Fatalf("floor child on %s: %s\nits log:\n%s", h, ready.Err, f.logTail())
	}
	return f
}

// Write takes the child's stderr.
func (f *floorChild) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.Write(p)
}

func (f *floorChild) logTail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines := strings.Split(strings.TrimRight(f.log.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-60):], "\n")
}

// read sorts the child's stdout into replies, stamped when they came, and
// the rest, which goes to the log.
func (f *floorChild) read(r io.Reader) {
	defer close(f.replies)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		at := time.Now()
		kind, body, ok := strings.Cut(strings.TrimPrefix(sc.Text(), floorReply+" "), " ")
		if !strings.HasPrefix(sc.Text(), floorReply+" ") || !ok {
			fmt.Fprintln(f, sc.Text())
			continue
		}
		f.replies <- floorLine{kind: kind, body: []byte(body), at: at}
	}
}

func (f *floorChild) send(tb testing.TB, line string) {
	tb.Helper()
	if _, err := io.WriteString(f.stdin, line+"\n"); err != nil {
		tb.Fatalf("floor child on %s: %v\nits log:\n%s", f.host, err, f.logTail())
	}
}

// await waits for the child's answer of that kind, decodes it into v, and
// returns when it came.
func (f *floorChild) await(tb testing.TB, kind string, v any) time.Time {
	tb.Helper()
	select {
	case l, ok := <-f.replies:
		if !ok {
			tb.Fatalf("floor child on %s exited while %q was awaited\nits log:\n%s", f.host, kind, f.logTail())
		}
		if l.kind != kind {
			tb.Fatalf("floor child on %s answered %q, want %q", f.host, l.kind, kind)
		}
		if err := json.Unmarshal(l.body, v); err != nil {
			tb.Fatalf("floor child on %s: %q: %v", f.host, l.body, err)
		}
		return l.at
	case <-time.After(floorTimeout + 10*time.Second):
		tb.Fatalf("floor child on %s did not answer %q in %s\nits log:\n%s", f.host, kind, floorTimeout+10*time.Second, f.logTail())
	}
	return time.Time{}
}

// TestCreateFloorNode is not a test of its own: BenchmarkCreate runs the
// test binary again on each node's host with it. It makes an executor as a
// shoal worker does and then, for each line on stdin, answers on stdout:
//
//	start ID...   prepare and start a container of each ID at once
//	remove        stop (SIGTERM) and remove the containers started
//	exit
func TestCreateFloorNode(t *testing.T) {
	raw := os.Getenv(floorEnv)
	if raw == "" {
		t.Skip("runs only as BenchmarkCreate's child on a test host")
	}
	var fc floorConfig
	if err := json.Unmarshal([]byte(raw), &fc); err != nil {
		t.Fatalf("%s: %v", floorEnv, err)
	}
	reply := func(kind string, rep floorReport) {
		b, _ := json.Marshal(rep)
		fmt.Printf("%s %s %s\n", floorReply, kind, b)
	}
	e, err := ctrexec.New(context.Background(), ctrexec.Config{
		Socket:             fc.Socket,
		Namespace:          fc.Namespace,
		StateDir:           fc.StateDir,
		InsecureRegistries: []string{fc.Registry},
		Bridge:             floorBridge,
		Logger:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		reply("ready", floorReport{Err: err.Error()})
		t.Fatal(err)
	}
	defer e.Close()
	reply("ready", floorReport{})
	var ids []string
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, args, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "start":
			ids = strings.Fields(args)
			reply("started", floorStart(e, fc.Image, ids))
		case "remove":
			reply("removed", floorRemove(e, ids))
			ids = nil
		case "exit":
			return
		default:
			t.Fatalf("unknown command %q", in.Text())
		}
	}
}

// floorStart prepares and starts a container for each ID, all at once, as
// a worker's task controllers do (one goroutine each): Prepare with the
// image already there, then Start (process, CNI, start).
func floorStart(e *ctrexec.Executor, image string, ids []string) floorReport {
	ctx, cancel := context.WithTimeout(context.Background(), floorTimeout)
	defer cancel()
	rep := floorReport{Tasks: make([]floorTask, len(ids))}
	errs := make([]error, len(ids))
	start := time.Now()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			task := &api.Task{Id: id, ServiceId: "floor", ServiceName: "floor", Slot: uint64(i + 1),
				Spec: &api.ContainerSpec{Image: image}}
			t0 := time.Now()
			if errs[i] = e.Prepare(ctx, task, floorSubnet); errs[i] != nil {
				return
			}
			t1 := time.Now()
			_, errs[i] = e.Start(ctx, task)
			rep.Tasks[i] = floorTask{ID: id, Prepare: t1.Sub(t0), Start: time.Since(t1)}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	for _, err := range errs {
		if err != nil {
			rep.Err = err.Error()
		}
	}
	return rep
}

// floorRemove stops and removes the containers, all at once.
func floorRemove(e *ctrexec.Executor, ids []string) floorReport {
	ctx, cancel := context.WithTimeout(context.Background(), floorTimeout)
	defer cancel()
	errs := make([]error, len(ids))
	start := time.Now()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			if errs[i] = e.Stop(ctx, id, 10*time.Second); errs[i] == nil {
				errs[i] = e.Remove(ctx, id)
			}
		})
	}
	wg.Wait()
	rep := floorReport{Elapsed: time.Since(start)}
	for _, err := range errs {
		if err != nil {
			rep.Err = err.Error()
		}
	}
	return rep
}
