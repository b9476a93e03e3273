package integration

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/integration/clustertest"
)

var probeBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// probe runs the probe program on node `from`'s host against node `to`'s
// cluster port, as the given identity, and returns what it printed.
func (c *cluster) probe(t *testing.T, from, to int, as, certs, call string) string {
	t.Helper()
	probeBin.once.Do(func() {
		probeBin.dir, probeBin.err = os.MkdirTemp("", "shoal-probe-")
		if probeBin.err != nil {
			return
		}
		probeBin.path, probeBin.err = clustertest.GoBuild(probeBin.dir, "github.com/shoal-dev/shoal/integration/internal/probe")
	})
	if probeBin.err != nil {
		t.Fatalf("build probe: %v", probeBin.err)
	}
	args := []string{"-addr", c.addr(to), "-as", as, call}
	if certs != "" {
		args = append([]string{"-certs", certs}, args...)
	}
	out, err := c.node(from).Host.Command(probeBin.path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("probe %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestJoinSecurity(t *testing.T) {
	c := newCluster(t, 3)
	worker, _ := c.init(1)
	c.join(2, worker, 1)
	c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}})
	parts := strings.Split(worker, "-") // SWMTKN, 1, digest, secret

	t.Run("token for another CA", func(t *testing.T) {
		bad := fmt.Sprintf("SWMTKN-1-%s-%s", strings.Repeat("0", 49)+"1", parts[3])
		out, err := c.node(3).CLI("swarm", "join", "--token", bad, c.addr(1))
		if err == nil || !strings.Contains(out, "remote CA does not match fingerprint") {
			t.Fatalf("join with a foreign CA digest: err=%v out=%s", err, out)
		}
		c.checkNotJoined(t, 3)
	})
	t.Run("wrong secret", func(t *testing.T) {
		bad := fmt.Sprintf("SWMTKN-1-%s-%s", parts[2], strings.Repeat("0", 24)+"7")
		out, err := c.node(3).CLI("swarm", "join", "--token", bad, c.addr(1))
		if err == nil || !strings.Contains(out, "A valid join token is necessary to join this cluster") {
			t.Fatalf("join with a wrong secret: err=%v out=%s", err, out)
		}
		c.checkNotJoined(t, 3)
	})
	t.Run("rotated token", func(t *testing.T) {
		out := c.node(1).MustCLI(t, "swarm", "join-token", "--rotate", "worker")
		if !strings.HasPrefix(out, "Successfully rotated worker join token.") {
			t.Fatalf("rotate printed %q", out)
		}
		out, err := c.node(3).CLI("swarm", "join", "--token", worker, c.addr(1))
		if err == nil || !strings.Contains(out, "A valid join token is necessary") {
			t.Fatalf("join with the rotated-out token: err=%v out=%s", err, out)
		}
		c.checkNotJoined(t, 3)
		// node-02 joined with the old token; its certificate still counts.
		c.node(2).Kill(t)
		c.node(2).Restart(t)
		c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}})
		fresh := strings.TrimSpace(c.node(1).MustCLI(t, "swarm", "join-token", "-q", "worker"))
		c.join(3, fresh, 1)
		c.waitNodes(1, settle, map[string]want{"node-01": {"Ready", "Leader"}, "node-02": {"Ready", ""}, "node-03": {"Ready", ""}})
	})

	// What each kind of client reaches on the manager's cluster port.
	workerCerts := c.certDir(2)
	cases := []struct {
		as, certs, call, want string
	}{
		{"certs", workerCerts, "Session", "OK"},
		{"certs", workerCerts, "ListNodes", "PermissionDenied"},
		{"certs", workerCerts, "RotateJoinToken", "PermissionDenied"},
		{"certs", workerCerts, "RaftJoin", "PermissionDenied"},
		{"certs", workerCerts, "Ping", "PermissionDenied"},
		{"certs", workerCerts, "raft", "refused"},
		{"none", "", "GetRootCA", "OK"},
		{"none", "", "IssueNodeCertificate", "InvalidArgument"}, // reached, and refused the bad token
		{"none", "", "RenewNodeCertificate", "Unauthenticated"},
		{"none", "", "Session", "Unauthenticated"},
		{"none", "", "Heartbeat", "Unauthenticated"},
		{"none", "", "ListNodes", "Unauthenticated"},
		{"none", "", "RotateJoinToken", "Unauthenticated"},
		{"none", "", "raft", "refused"},
		{"foreign", "", "ListNodes", "Unavailable"},
		{"foreign", "", "Session", "Unavailable"},
		{"foreign", "", "RenewNodeCertificate", "Unavailable"},
		{"foreign", "", "raft", "refused"},
	}
	for _, tc := range cases {
		t.Run(tc.as+"/"+tc.call, func(t *testing.T) {
			got := c.probe(t, 2, 1, tc.as, tc.certs, tc.call)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s calling %s: got %q, want %s", tc.as, tc.call, got, tc.want)
			}
		})
	}
	// A manager's own certificate reaches the manager-only calls.
	if got := c.probe(t, 1, 1, "certs", c.certDir(1), "ListNodes"); !strings.HasPrefix(got, "OK") {
		t.Errorf("manager calling ListNodes: %q", got)
	}
}

// checkNotJoined: node i is in no swarm, holds no certificate, and the
// manager lists no node for it.
func (c *cluster) checkNotJoined(t *testing.T, i int) {
	t.Helper()
	if out := c.node(i).MustCLI(t, "info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("node-%02d after a refused join:\n%s", i, out)
	}
	if _, err := os.Stat(c.certDir(i)); !os.IsNotExist(err) {
		t.Errorf("node-%02d kept a certificate directory after a refused join: %v", i, err)
	}
	rows, err := c.nodeLs(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rows[fmt.Sprintf("node-%02d", i)]; ok {
		t.Errorf("a refused node-%02d is listed: %v", i, rows)
	}
}
