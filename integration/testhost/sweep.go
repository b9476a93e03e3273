package testhost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// lockDir holds one lock file per live LAN, <tag>.lock, flock(2)ed by the
// process that owns the LAN. The kernel drops the lock when that process
// dies, however it dies, so an unlocked (or missing) lock file marks the
// LAN's namespaces as stale. /run is a tmpfs, like /run/netns: both are gone
// after a reboot.
const lockDir = "/run/shoal-testhost"

// staleLockAge is how old an unlocked lock file without namespaces must be
// before Sweep removes it; younger ones may belong to a LAN being made.
const staleLockAge = 10 * time.Minute

var (
	sweepOnce sync.Once
	nsName    = regexp.MustCompile(`^` + NSPrefix + `([0-9a-f]{6})-`)
	rootLink  = regexp.MustCompile(`^` + NSPrefix + `([0-9a-f]{6})-root$`)
)

// Sweep removes the namespaces of LANs whose test binary died without
// cleaning up: it kills the processes still running in them and deletes
// them. It leaves alone the LANs of live test binaries, also those of other
// packages running at the same time. NewLAN calls it once per process.
func Sweep() error {
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	byTag := map[string][]string{}
	for _, e := range entries {
		if m := nsName.FindStringSubmatch(e.Name()); m != nil {
			byTag[m[1]] = append(byTag[m[1]], e.Name())
		}
	}
	links, err := rootLinksByTag()
	if err != nil {
		return err
	}
	for tag := range links {
		if _, ok := byTag[tag]; !ok {
			byTag[tag] = nil // a root link whose LAN is gone: should not happen, as it dies with it
		}
	}
	var errs []error
	for tag, names := range byTag {
		lock, live, err := tryLockTag(tag)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if live {
			continue
		}
		// The root namespace's link and the hosts first, so that no veth
		// outlives its bridge for long.
		for _, link := range links[tag] {
			errs = append(errs, deleteRootLink(link))
		}
		for _, name := range names {
			if !strings.HasSuffix(name, "-lan") {
				errs = append(errs, removeNS(name))
			}
		}
		for _, name := range names {
			if strings.HasSuffix(name, "-lan") {
				errs = append(errs, removeNS(name))
			}
		}
		releaseTag(tag, lock)
	}
	errs = append(errs, sweepLockFiles(byTag))
	return errors.Join(errs...)
}

// rootLinksByTag finds the root namespace's interfaces on test LANs (see
// LAN.AttachRoot), by their LAN's tag.
func rootLinksByTag() (map[string][]string, error) {
	out, err := ipOutput("-o", "link", "show")
	if err != nil {
		return nil, err
	}
	links := map[string][]string{}
	for line := range strings.Lines(out) {
		// "7: shtT-root@if2: <FLAGS> ..."
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if m := rootLink.FindStringSubmatch(name); m != nil {
			links[m[1]] = append(links[m[1]], name)
		}
	}
	return links, nil
}

// sweepLockFiles removes old unlocked lock files of tags without namespaces,
// left by a binary that died between taking its lock and making its LAN.
func sweepLockFiles(withNS map[string][]string) error {
	entries, err := os.ReadDir(lockDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		tag, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || withNS[tag] != nil {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleLockAge {
			continue
		}
		if lock, live, err := tryLockTag(tag); err == nil && !live {
			releaseTag(tag, lock)
		}
	}
	return nil
}

// lockTag creates and locks the lock file of a new tag. It fails with an
// error satisfying os.IsExist if the tag is taken.
func lockTag(tag string) (*os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(lockDir, tag+".lock"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// tryLockTag tells whether a live process holds tag's lock. When none does,
// it returns the lock, now held by this process (nil if the file is gone).
func tryLockTag(tag string) (lock *os.File, live bool, err error) {
	f, err := os.OpenFile(filepath.Join(lockDir, tag+".lock"), os.O_WRONLY, 0)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, false, nil
}

// releaseTag removes the lock file, then drops the lock: in that order, a
// sweeper that opened the file meanwhile finds the LAN's namespaces gone.
func releaseTag(tag string, lock *os.File) {
	if lock == nil {
		return
	}
	os.Remove(filepath.Join(lockDir, tag+".lock"))
	lock.Close()
}

// removeNS kills every process in the named network namespace, waits until
// they have left it, and deletes it. A namespace that does not exist is not
// an error.
func removeNS(name string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); os.IsNotExist(err) {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := nsPIDs(name)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in netns %s 10s after SIGKILL", pids, name)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := runIP("netns", "del", name); err != nil {
		if _, statErr := os.Stat(filepath.Join(netnsDir, name)); os.IsNotExist(statErr) {
			return nil // someone else (a concurrent sweep) was quicker
		}
		return err
	}
	return nil
}

// nsPIDs lists the processes whose network namespace is the named one.
func nsPIDs(name string) ([]int, error) {
	out, err := ipOutput("netns", "pids", name)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(netnsDir, name)); os.IsNotExist(statErr) {
			return nil, nil
		}
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func runIP(args ...string) error {
	_, err := ipOutput(args...)
	return err
}

// runAll runs ip once per argument list and stops at the first failure.
func runAll(cmds ...[]string) error {
	for _, args := range cmds {
		if err := runIP(args...); err != nil {
			return err
		}
	}
	return nil
}

func ipOutput(args ...string) (string, error) { return toolOutput("ip", args...) }

func bridgeOutput(args ...string) (string, error) { return toolOutput("bridge", args...) }

func toolOutput(tool string, args ...string) (string, error) {
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
