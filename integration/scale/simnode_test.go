package scale

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/transport"
	"github.com/shoal-dev/shoal/worker"
)

// simEngineVersion is what simulated nodes say they run.
const simEngineVersion = "scale-sim"

// simNode is one simulated node in the test process: a node ID and
// certificate from a real join, an agent holding a session with the
// leader, and a task manager over a fakeExec, wired as daemon.go wires
// them.
type simNode struct {
	name     string
	id       string
	exec     *fakeExec
	assigned atomic.Int64 // tasks in the last assignment the agent got
	sessions atomic.Int64 // sessions opened (each new session ID seen)
	messages atomic.Int64 // session messages received
	remotes  *worker.Remotes
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

// joined is what a join gives a node: its identity and who the managers are.
type joined struct {
	holder   *pki.Holder
	nodeID   string
	managers []string
}

// joinCallTimeout bounds each call of a join.
const joinCallTimeout = time.Minute

// joinSim joins a node called name through the manager at addr the way
// `shoal swarm join` does: fetch the root CA without trusting it, check it
// against the token, then send a CSR with the token over a connection that
// trusts that CA, and get a certificate.
//
// Unlike the daemon's join, the calls wait for their connection
// (WaitForReady) instead of failing when a TLS handshake takes longer than
// transport.Dial's one-second connect timeout, as it does under the load of
// a thousand joins. A call is still sent once only: a certificate issued
// twice would leave a node that never comes up.
func joinSim(ctx context.Context, addr, token, name string) (*joined, error) {
	tok, err := pki.ParseToken(token)
	if err != nil {
		return nil, err
	}
	caPEM, err := fetchRootCA(ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := tok.CheckCA(caPEM); err != nil {
		return nil, fmt.Errorf("%s: root CA of %s: %w", name, addr, err)
	}
	key, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	conf, err := pki.PinnedClientConfig(caPEM)
	if err != nil {
		return nil, err
	}
	conn, err := transport.Dial(addr, conf)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, joinCallTimeout)
	defer cancel()
	resp, err := api.NewCAClient(conn).IssueNodeCertificate(cctx, &api.IssueNodeCertificateRequest{
		CsrPem: csr, Token: token, Hostname: name,
		EngineVersion: simEngineVersion, Os: runtime.GOOS, Arch: runtime.GOARCH,
	}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("%s: issue node certificate: %w", name, err)
	}
	h, err := pki.NewHolder(key, resp.CertPem, caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	managers := []string{addr}
	for _, p := range resp.Managers {
		if p.Addr != addr {
			managers = append(managers, p.Addr)
		}
	}
	return &joined{holder: h, nodeID: resp.NodeId, managers: managers}, nil
}

func fetchRootCA(ctx context.Context, addr string) ([]byte, error) {
	conn, err := transport.Dial(addr, pki.BootstrapClientConfig())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, joinCallTimeout)
	defer cancel()
	resp, err := api.NewCAClient(conn).GetRootCA(ctx, &api.GetRootCARequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, fmt.Errorf("fetch root CA from %s: %w", addr, err)
	}
	return resp.CaCertPem, nil
}

// startSim runs the agent and task manager of a joined node until stop.
func startSim(name string, j *joined, log *slog.Logger) *simNode {
	n := &simNode{name: name, id: j.nodeID, exec: newFakeExec()}
	h := j.holder
	n.remotes = worker.NewRemotes(j.managers, func() *tls.Config { return h.ClientConfig(pki.ManagerOU) })
	log = log.With("node", name)
	var agent *worker.Agent
	var session string // the agent calls OnMessage from one goroutine
	tasks := worker.NewTaskManager(n.exec, func(ctx context.Context, u []*api.TaskStatusUpdate) error {
		return agent.Report(ctx, u)
	}, log)
	agent = worker.New(worker.Config{
		Remotes:       n.remotes,
		Hostname:      name,
		EngineVersion: simEngineVersion,
		OnMessage: func(msg *api.SessionMessage) {
			n.messages.Add(1)
			if msg.SessionId != session {
				session = msg.SessionId
				n.sessions.Add(1)
			}
			if msg.TasksSet {
				n.assigned.Store(int64(len(msg.Tasks)))
				tasks.Assign(msg.Tasks, msg.Node.GetSubnet())
			}
		},
		Logger: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.done.Add(2)
	go func() { defer n.done.Done(); agent.Run(ctx) }()
	go func() { defer n.done.Done(); tasks.Run(ctx) }()
	return n
}

// stop ends the node's agent and task manager and closes its connections.
// The fake tasks are left as they are.
func (n *simNode) stop() {
	n.cancel()
	n.done.Wait()
	n.remotes.Reset()
}
