package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

func TestSwarmInit(t *testing.T) {
	f := newFakeDaemon()
	f.initResp = &api.InitResponse{
		NodeId:        idManager1,
		WorkerToken:   f.tokens[api.NodeRole_WORKER],
		AdvertiseAddr: "10.0.0.1:2377",
	}
	host := f.serve(t)

	assertGolden(t, "swarm-init", mustShoal(t, host, "swarm", "init", "--advertise-addr", "10.0.0.1"))
	mustShoal(t, host, "swarm", "init", "--listen-addr", "10.0.0.1", "--cert-expiry", "2h", "--force-new-cluster")

	reqs := f.requests("Init")
	first, second := reqs[0].(*api.InitRequest), reqs[1].(*api.InitRequest)
	if first.ListenAddr != "0.0.0.0:2377" || first.AdvertiseAddr != "10.0.0.1" || first.CertExpiryNs != 0 || first.ForceNewCluster {
		t.Errorf("default init sent %v", first)
	}
	if second.ListenAddr != "10.0.0.1:2377" || second.CertExpiryNs != int64(2*time.Hour) || !second.ForceNewCluster {
		t.Errorf("init with flags sent %v", second)
	}
}

func TestSwarmInitAdvertiseHint(t *testing.T) {
	f := newFakeDaemon()
	f.fail["Init"] = status.Error(codes.InvalidArgument, "could not choose an IP address to advertise since this system has multiple addresses")
	r := shoal(t, f.serve(t), "swarm", "init")
	want := "Error response from daemon: could not choose an IP address to advertise since this system has multiple addresses - specify one with --advertise-addr\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("got %s", r)
	}
}

func TestSwarmJoinToken(t *testing.T) {
	f := newFakeDaemon()
	f.addrs = []string{"10.0.0.1:2377", "10.0.0.2:2377"}
	host := f.serve(t)

	assertGolden(t, "swarm-join-token-worker", mustShoal(t, host, "swarm", "join-token", "worker"))
	assertGolden(t, "swarm-join-token-manager", mustShoal(t, host, "swarm", "join-token", "manager"))
	assertGolden(t, "swarm-join-token-rotate", mustShoal(t, host, "swarm", "join-token", "--rotate", "worker"))

	if got, want := mustShoal(t, host, "swarm", "join-token", "-q", "manager"), f.tokens[api.NodeRole_MANAGER]+"\n"; got != want {
		t.Errorf("join-token -q manager = %q, want %q", got, want)
	}
	// -q with --rotate prints the new token alone, as Docker does.
	got := mustShoal(t, host, "swarm", "join-token", "-q", "--rotate", "manager")
	if want := f.tokens[api.NodeRole_MANAGER] + "\n"; got != want || !strings.Contains(got, "0002") {
		t.Errorf("join-token -q --rotate manager = %q, want the rotated token %q", got, want)
	}
	if n := len(f.requests("RotateJoinToken")); n != 2 {
		t.Errorf("want 2 RotateJoinToken calls, got %d", n)
	}

	r := shoal(t, host, "swarm", "join-token", "admin")
	if r.code != 1 || r.stderr != "unknown role \"admin\": use worker or manager\n" {
		t.Errorf("bad role: got %s", r)
	}
}

func TestSwarmJoin(t *testing.T) {
	f := newFakeDaemon()
	host := f.serve(t)
	if got := mustShoal(t, host, "swarm", "join", "--token", "SWMTKN-1-x-y", "10.0.0.1:2377"); got != "This node joined a swarm as a worker.\n" {
		t.Errorf("join as worker printed %q", got)
	}
	f.joinRole = api.NodeRole_MANAGER
	if got := mustShoal(t, host, "swarm", "join", "--token", "SWMTKN-1-x-y", "--advertise-addr", "10.0.0.5", "--listen-addr", ":4000", "10.0.0.1:2377"); got != "This node joined a swarm as a manager.\n" {
		t.Errorf("join as manager printed %q", got)
	}
	req := f.requests("Join")[1].(*api.JoinRequest)
	if req.RemoteAddr != "10.0.0.1:2377" || req.Token != "SWMTKN-1-x-y" || req.AdvertiseAddr != "10.0.0.5" || req.ListenAddr != "0.0.0.0:4000" {
		t.Errorf("join sent %v", req)
	}
	if r := shoal(t, host, "swarm", "join", "10.0.0.1:2377"); r.code != 1 || !strings.Contains(r.stderr, `"token"`) {
		t.Errorf("join without --token: got %s", r)
	}
}

func TestSwarmLeave(t *testing.T) {
	f := newFakeDaemon()
	host := f.serve(t)
	if got := mustShoal(t, host, "swarm", "leave", "-f"); got != "Node left the swarm.\n" {
		t.Errorf("leave printed %q", got)
	}
	if req := f.requests("Leave")[0].(*api.LeaveRequest); !req.Force {
		t.Errorf("leave -f sent %v", req)
	}
	f.fail["Leave"] = status.Error(codes.FailedPrecondition, "You are attempting to leave the swarm on a node that is participating as a manager.")
	if r := shoal(t, host, "swarm", "leave"); r.code != 1 || !strings.HasPrefix(r.stderr, "Error response from daemon: You are attempting") {
		t.Errorf("refused leave: got %s", r)
	}
}

func TestWithDefaultPort(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:2377":   "0.0.0.0:2377",
		"10.0.0.1":       "10.0.0.1:2377",
		"10.0.0.1:4000":  "10.0.0.1:4000",
		":4000":          "0.0.0.0:4000",
		"::1":            "[::1]:2377",
		"[::1]":          "[::1]:2377",
		"[fe80::1]:2378": "[fe80::1]:2378",
		"node-1":         "node-1:2377",
	} {
		if got, err := withDefaultPort(in); err != nil || got != want {
			t.Errorf("withDefaultPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := withDefaultPort("a:b:c"); err == nil {
		t.Error("withDefaultPort(a:b:c) should fail")
	}
}
