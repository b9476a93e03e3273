package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// ShoalPackage is the import path BuildShoal builds.
const ShoalPackage = "github.com/shoal-dev/shoal/cmd/shoal"

var built struct {
	once sync.Once
	path string
	dir  string // a temp dir of our own, removed by Main
	err  error
}

// BuildShoal returns the path of a shoal binary built from this tree, once
// per test binary. When the environment names a binary in SHOAL_BIN (an
// absolute path, or one relative to the module root), it returns that one
// instead and builds nothing.
func BuildShoal(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if bin := os.Getenv("SHOAL_BIN"); bin != "" {
			built.path, built.err = resolveBin(bin)
			return
		}
		start := time.Now()
		built.dir, built.err = os.MkdirTemp("", "shoal-bin-")
		if built.err != nil {
			return
		}
		built.path, built.err = GoBuild(built.dir, ShoalPackage)
		if built.err == nil {
			t.Logf("clustertest: built %s in %s", built.path, time.Since(start).Round(time.Millisecond))
		}
	})
	if built.err != nil {
		t.Fatalf("clustertest: no shoal binary: %v", built.err)
	}
	return built.path
}

// GoBuild builds the main package pkg (an import path in this module) into
// dir and returns the binary's path.
func GoBuild(dir, pkg string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	// go test puts its own toolchain first in PATH, so "go" is the one that
	// builds this test.
	if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out, nil
}

// Main runs the tests of a package that uses BuildShoal and then removes the
// binary it built, and runs the given cleanups. Call it from TestMain:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func resolveBin(bin string) (string, error) {
	if !filepath.IsAbs(bin) {
		root, err := moduleRoot()
		if err != nil {
			return "", fmt.Errorf("SHOAL_BIN=%s is relative and %v", bin, err)
		}
		bin = filepath.Join(root, bin)
	}
	info, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("SHOAL_BIN: %w", err)
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return "", fmt.Errorf("SHOAL_BIN=%s is not an executable file", bin)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod above the working directory,
// which go test sets to the package's directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
