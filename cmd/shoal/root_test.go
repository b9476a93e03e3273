package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDaemonErrors checks that every gRPC failure reads as Docker's
// "Error response from daemon: ..." with the status message alone, and that
// only a socket nobody answers on reads as "Cannot connect".
func TestDaemonErrors(t *testing.T) {
	const noLeader = "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"not found", status.Error(codes.NotFound, "node x not found"), "Error response from daemon: node x not found\n"},
		{"no leader is not a dial failure", status.Error(codes.Unavailable, noLeader), "Error response from daemon: " + noLeader + "\n"},
		{"permission", status.Error(codes.PermissionDenied, "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."),
			"Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.\n"},
		{"precondition", status.Error(codes.FailedPrecondition, "attempting to demote the last manager of the swarm"), "Error response from daemon: attempting to demote the last manager of the swarm\n"},
		{"plain error", errors.New("boom"), "Error response from daemon: boom\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon()
			f.fail["ListNodes"] = tc.err
			r := shoal(t, f.serve(t), "node", "ls")
			if r.code != 1 || r.stdout != "" || r.stderr != tc.want {
				t.Errorf("got %s\nwant stderr %q", r, tc.want)
			}
		})
	}
}

func TestCannotConnect(t *testing.T) {
	dir := t.TempDir()

	missing := "unix://" + filepath.Join(dir, "missing.sock")
	// A socket file left behind by a daemon that is gone: connection refused.
	stale := filepath.Join(dir, "stale.sock")
	lis, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	lis.Close()

	for _, host := range []string{missing, "unix://" + stale, stale} {
		r := shoal(t, host, "node", "ls")
		want := "Cannot connect to the shoal daemon at unix://" + strings.TrimPrefix(host, "unix://") + ": is the daemon running?\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("-H %s: got %s\nwant stderr %q", host, r, want)
		}
	}
}

func TestTranslateErrorKeepsStatus(t *testing.T) {
	d := &dialRecord{}
	err := translateError("unix:///x", d, status.Error(codes.NotFound, "gone"))
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code(%v) = %v, want NotFound", err, status.Code(err))
	}
	d.record(syscall.ECONNREFUSED)
	err = translateError("unix:///x", d, status.Error(codes.Unavailable, "connection error"))
	var ce *connectError
	if !errors.As(err, &ce) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("want a connectError wrapping the dial error, got %#v", err)
	}
	d.record(nil)
	err = translateError("unix:///x", d, status.Error(codes.Unavailable, "no leader"))
	if !errors.As(err, new(*daemonError)) {
		t.Errorf("after a successful dial, Unavailable is the daemon's answer; got %#v", err)
	}
}

func TestHostFlagAndEnv(t *testing.T) {
	f := newFakeDaemon()
	f.info.LocalNodeState = "active"
	host := f.serve(t)

	t.Setenv(hostEnv, host)
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"info", "--format", "{{.Swarm.LocalNodeState}}"}, &out, &errb); code != 0 || out.String() != "active\n" {
		t.Errorf("with %s set: exit %d, stdout %q, stderr %q", hostEnv, code, out.String(), errb.String())
	}

	// -H wins over the environment.
	t.Setenv(hostEnv, "unix:///nonexistent/shoal.sock")
	if got := mustShoal(t, host, "info", "--format", "{{.Swarm.LocalNodeState}}"); got != "active\n" {
		t.Errorf("-H: got %q", got)
	}

	for _, bad := range []string{"tcp://10.0.0.1:2375", "unix://", "shoal.sock"} {
		r := shoal(t, bad, "node", "ls")
		if r.code != 1 || !strings.Contains(r.stderr, "invalid host") {
			t.Errorf("-H %s: got %s", bad, r)
		}
	}
}

func TestDefaultHost(t *testing.T) {
	t.Setenv(hostEnv, "")
	root := newRootCommand(os.Stdout, os.Stderr)
	if got := root.PersistentFlags().Lookup("host").DefValue; got != "unix:///run/shoal/shoal.sock" {
		t.Errorf("default host = %q", got)
	}
}

func TestUsageErrors(t *testing.T) {
	host := "unix:///nonexistent/shoal.sock"
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"node", "update"}, 1, "shoal: 'shoal node update' requires 1 argument\n\nUsage:  shoal node update [OPTIONS] NODE\n\nRun 'shoal node update --help' for more information\n"},
		{[]string{"node", "promote"}, 1, "shoal: 'shoal node promote' requires at least 1 argument\n\nUsage:  shoal node promote NODE [NODE...]\n\nSee 'shoal node promote --help' for more information\n"},
		{[]string{"node", "ls", "extra"}, 1, "shoal: 'shoal node ls' accepts no arguments\n\nUsage:  shoal node ls [OPTIONS]\n\nRun 'shoal node ls --help' for more information\n"},
		{[]string{"node", "ls", "--bogus"}, 125, "unknown flag: --bogus\nSee 'shoal node ls --help'.\n"},
		{[]string{"nodes"}, 1, "shoal: unknown command: shoal nodes\n\nUsage:  shoal [OPTIONS] COMMAND\n\nRun 'shoal --help' for more information\n"},
	} {
		r := shoal(t, host, tc.args...)
		if r.code != tc.code || r.stderr != tc.want {
			t.Errorf("shoal %v: got %s\nwant exit %d, stderr %q", tc.args, r, tc.code, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	f := newFakeDaemon()
	f.info.EngineVersion = "9.9.9"
	out := mustShoal(t, f.serve(t), "version")
	if !strings.HasPrefix(out, "Client:\n Version:           "+version+"\n") ||
		!strings.HasSuffix(out, "\nServer:\n Engine:\n  Version:          9.9.9\n") {
		t.Errorf("version printed:\n%s", out)
	}

	r := shoal(t, "unix:///nonexistent/shoal.sock", "version")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "Client:\n") || !strings.HasPrefix(r.stderr, "Cannot connect") {
		t.Errorf("version without a daemon: %s", r)
	}
}
