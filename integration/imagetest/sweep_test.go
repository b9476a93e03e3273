package imagetest_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/imagetest"
)

// sweepChildEnv makes the test binary play a test binary that dies with a
// container running.
const sweepChildEnv = "IMAGETEST_SWEEP_CHILD"

// TestSweepRemovesWhatADeadBinaryLeft runs this test binary again as a
// child that starts containerd and a container, kills the child, and wants
// Sweep to kill the container and remove the containerd directory.
func TestSweepRemovesWhatADeadBinaryLeft(t *testing.T) {
	if os.Getenv(sweepChildEnv) == "1" {
		leaveContainerBehind(t)
		return
	}
	imagetest.RequireContainerd(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepRemovesWhatADeadBinaryLeft$", "-test.v")
	cmd.Env = append(os.Environ(), sweepChildEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childLog strings.Builder
	cmd.Stderr = &childLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(opTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var dir, childTemp string
	var pid int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		childLog.WriteString(sc.Text() + "\n")
		if _, err := fmt.Sscanf(sc.Text(), "LEFT %s %d %s", &dir, &pid, &childTemp); err == nil {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if dir == "" {
		t.Fatalf("the child said nothing of what it left; its output:\n%s", childLog.String())
	}
	// The child's t.TempDir, which it could not remove.
	t.Cleanup(func() { os.RemoveAll(childTemp) })
	t.Logf("the child died leaving %s and a container with init pid %d", dir, pid)
	// What the next run would find: a lock nobody holds, old enough.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "lock"), old, old); err != nil {
		t.Fatal(err)
	}
	if !running(pid) {
		t.Fatalf("the child's container %d died with it; Sweep has nothing to do", pid)
	}

	if err := imagetest.Sweep(); err != nil {
		t.Errorf("Sweep: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after Sweep (%v)", dir, err)
	}
	if running(pid) {
		t.Errorf("the container's init %d still runs after Sweep", pid)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir+"/") {
		t.Errorf("mounts under %s are left after Sweep", dir)
	}
}

// leaveContainerBehind is the child: it starts a long-lived container, says
// where, and waits to be killed.
func leaveContainerBehind(t *testing.T) {
	socket := imagetest.StartContainerd(t)
	rt := newRuntime(t, socket)
	img := imagetest.ShellImage(t)
	ref := imagetest.ImportImage(t, socket, rt.ns, img)
	c := rt.start(ref, []string{"sleep 3600"})
	fmt.Printf("LEFT %s %d %s\n", filepath.Dir(socket), c.task.Pid(), filepath.Dir(img.Layout))
	<-time.After(opTimeout)
	t.Fatal("the parent never killed this child")
}

// running tells whether pid is a live process (not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}
