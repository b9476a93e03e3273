package scale

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The manager daemon serves no pprof. With SHOAL_SCALE_PERF=DIR a run
// samples it with Linux perf instead, one file per phase (join, converge).
// perf report needs the binary that ran, so build one that stays:
//
//	go build -o /tmp/scale/shoal ./cmd/shoal
//	SHOAL_BIN=/tmp/scale/shoal SHOAL_SCALE_PERF=/tmp/scale make bench-scale
//	perf report -i /tmp/scale/converge.data --no-children --sort symbol
const perfEnv = "SHOAL_SCALE_PERF"

// perfRecord starts `perf record` on process pid, writing DIR/phase.data,
// if SHOAL_SCALE_PERF names a DIR; it returns the function that stops it.
// Without the variable it does nothing.
func perfRecord(tb testing.TB, pid int, phase string) (stop func()) {
	tb.Helper()
	dir := os.Getenv(perfEnv)
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("%s: %v", perfEnv, err)
	}
	out := filepath.Join(dir, phase+".data")
	os.Remove(out)
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", out)
	log, err := os.Create(filepath.Join(dir, phase+".log"))
	if err != nil {
		tb.Fatalf("%s: %v", perfEnv, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		tb.Fatalf("%s: starting perf (is linux-perf installed?): %v", perfEnv, err)
	}
	// perf writes its file's header once it has attached.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: perf did not start writing %s in 10s; see %s", perfEnv, out, log.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		log.Close()
		fmt.Printf("perf: %s phase of pid %d in %s (%v)\n", phase, pid, out, err)
	}
}
