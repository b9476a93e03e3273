package manager

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
)

// Every method served on the cluster port has a policy, and every write
// that is forwarded is one of them: a new RPC cannot slip through unchecked.
func TestEveryMethodHasAPolicy(t *testing.T) {
	s := grpc.NewServer()
	api.RegisterControlServer(s, &control{})
	api.RegisterCAServer(s, &caServer{})
	api.RegisterDispatcherServer(s, &dispatcher{})
	api.RegisterRaftMembershipServer(s, &membership{})
	methods := 0
	for service, info := range s.GetServiceInfo() {
		for _, m := range info.Methods {
			methods++
			full := "/" + service + "/" + m.Name
			if _, ok := policy[full]; !ok {
				t.Errorf("%s has no authorisation policy", full)
			}
		}
	}
	if methods < 10 {
		t.Fatalf("found only %d methods on the cluster port", methods)
	}
	for m := range writes {
		if _, ok := policy[m]; !ok {
			t.Errorf("forwarded write %s has no policy", m)
		}
	}
	// Only the two calls of a node that has not joined go without a certificate.
	for m, roles := range policy {
		open := m == "/shoal.v1.CA/GetRootCA" || m == "/shoal.v1.CA/IssueNodeCertificate"
		if (roles == nil) != open {
			t.Errorf("%s: roles %v", m, roles)
		}
	}
}

func TestForwardedIdentityIsBelievedOnlyFromManagers(t *testing.T) {
	md := metadata.Pairs(mdForwardedNode, "w1", mdForwardedOU, pki.WorkerOU)
	ctx := metadata.NewIncomingContext(context.Background(), md)
	tests := []struct {
		direct pki.Identity
		want   bool
	}{
		{pki.Identity{NodeID: "m1", OU: pki.ManagerOU, ClusterID: "c"}, true},
		{pki.Identity{NodeID: "w2", OU: pki.WorkerOU, ClusterID: "c"}, false},
	}
	for _, tc := range tests {
		id, ok := forwardedFor(ctx, tc.direct)
		if ok != tc.want {
			t.Errorf("forwarded by %s: believed=%v, want %v", tc.direct.OU, ok, tc.want)
		}
		if ok && (id.NodeID != "w1" || id.OU != pki.WorkerOU || id.ClusterID != "c") {
			t.Errorf("forwarded identity %+v", id)
		}
	}
	if _, ok := forwardedFor(context.Background(), pki.Identity{OU: pki.ManagerOU}); ok {
		t.Error("a call without forwarding metadata was taken as forwarded")
	}
}
