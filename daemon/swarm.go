package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/manager"
	"github.com/shoal-dev/shoal/manager/orchestrator"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/transport"
	"github.com/shoal-dev/shoal/worker"
)

var errInSwarm = status.Error(codes.FailedPrecondition,
	`This node is already part of a swarm. Use "shoal swarm leave" to leave this swarm and join another one.`)

var errNotInSwarm = status.Error(codes.FailedPrecondition,
	"This node is not part of a swarm")

// joinTimeout bounds init and join, so that a wrong address fails clearly;
// fetchCATimeout bounds the first call to the manager a join names.
const (
	joinTimeout    = 20 * time.Second
	fetchCATimeout = 5 * time.Second
)

// swarmServer is the local Swarm service: init, join, leave, info.
type swarmServer struct {
	api.UnimplementedSwarmServer
	d *Daemon
}

func (s *swarmServer) Init(ctx context.Context, req *api.InitRequest) (*api.InitResponse, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if req.ForceNewCluster && d.state != nil {
		return d.forceNewCluster(ctx)
	}
	if d.state != nil {
		return nil, errInSwarm
	}
	listen, err := withPort(orDefault(req.ListenAddr, "0.0.0.0"), DefaultPort)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--listen-addr: %v", err)
	}
	advertise, err := advertiseAddr(req.AdvertiseAddr, listen)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--advertise-addr: %v", err)
	}
	expiry := pki.DefaultNodeCertExpiry
	if req.CertExpiryNs != 0 {
		expiry = time.Duration(req.CertExpiryNs)
	}
	if err := pki.ValidateCertExpiry(expiry); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--cert-expiry: %v", err)
	}

	pool, size := orDefault(req.DefaultAddrPool, manager.DefaultAddrPool), int(req.DefaultAddrPoolMaskLength)
	if size == 0 {
		size = manager.DefaultSubnetSize
	}
	subnet, err := manager.NextSubnet(pool, size, nil)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--default-addr-pool: %v", err)
	}

	ca, err := pki.NewRootCA()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "create root CA: %v", err)
	}
	clusterID, nodeID := pki.NewID(), pki.NewID()
	key, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	cert, err := ca.IssueNodeCert(csr, nodeID, pki.ManagerOU, clusterID, expiry)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if err := pki.SaveNodeFiles(d.certDir(), key, cert, ca.CertPEM); err != nil {
		return nil, status.Errorf(codes.Internal, "save certificates: %v", err)
	}
	st := &State{NodeID: nodeID, ClusterID: clusterID, Role: api.NodeRole_MANAGER,
		ListenAddr: listen, AdvertiseAddr: advertise, Managers: []string{advertise}}
	if err := d.start(st, manager.Config{Bootstrap: true}); err != nil {
		d.wipe()
		return nil, status.Errorf(codes.Internal, "start manager: %v", err)
	}
	now := time.Now().UnixNano()
	cluster := &api.Cluster{
		Id: clusterID, CaCertPem: ca.CertPEM, CaKeyPem: ca.KeyPEM,
		WorkerSecret: pki.NewSecret(), ManagerSecret: pki.NewSecret(),
		Settings: &api.ClusterSettings{
			NodeCertExpiryNs:  int64(expiry),
			HeartbeatPeriodNs: int64(d.cfg.Manager.HeartbeatPeriod),
			TaskHistoryLimit:  orchestrator.DefaultHistoryLimit,
			DefaultAddrPool:   pool,
			SubnetSize:        uint32(size),
		},
		CreatedUnixNano: now,
	}
	self := d.describeSelf(nodeID, api.NodeRole_MANAGER, advertise, now)
	self.Subnet = subnet
	ictx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	if err := d.manager().InitCluster(ictx, cluster, self); err != nil {
		d.stop()
		d.wipe()
		return nil, status.Errorf(codes.Internal, "initialise cluster: %v", err)
	}
	if err := saveState(d.cfg.DataDir, st); err != nil {
		d.stop()
		d.wipe()
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	d.log.Info("swarm initialised", "cluster", clusterID, "node", nodeID, "addr", advertise)
	return &api.InitResponse{NodeId: nodeID, WorkerToken: pki.FormatToken(ca.CertPEM, cluster.WorkerSecret), AdvertiseAddr: advertise}, nil
}

// forceNewCluster makes this manager the only member of its Raft cluster,
// keeping the state it has. Called with mu held.
func (d *Daemon) forceNewCluster(ctx context.Context) (*api.InitResponse, error) {
	st := d.state
	if st.Role != api.NodeRole_MANAGER {
		return nil, status.Error(codes.FailedPrecondition, "--force-new-cluster needs a manager: this node is a worker")
	}
	var removed []*api.Peer
	var ids []string
	if m := d.manager(); m != nil {
		servers, _ := m.Store().Servers()
		for _, s := range servers {
			if string(s.ID) != st.NodeID {
				removed = append(removed, &api.Peer{NodeId: string(s.ID), Addr: string(s.Address)})
				ids = append(ids, string(s.ID))
			}
		}
	}
	d.stop()
	if err := d.start(st, manager.Config{ForceNewCluster: true}); err != nil {
		return nil, status.Errorf(codes.Internal, "restart as a new cluster: %v", err)
	}
	st.Managers = []string{st.AdvertiseAddr}
	if err := saveState(d.cfg.DataDir, st); err != nil {
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	m := d.manager()
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	if err := m.ForgetManagers(ctx, ids); err != nil {
		return nil, status.Errorf(codes.Internal, "record the removed managers as workers: %v", err)
	}
	cl := m.Store().FSM().Cluster()
	if cl == nil {
		return nil, status.Error(codes.Internal, "this manager has no cluster state to keep")
	}
	for _, p := range removed {
		d.log.Info("force-new-cluster removed a manager", "node", p.NodeId, "addr", p.Addr)
	}
	return &api.InitResponse{NodeId: st.NodeID, WorkerToken: pki.FormatToken(cl.CaCertPem, cl.WorkerSecret),
		AdvertiseAddr: st.AdvertiseAddr, RemovedManagers: removed}, nil
}

func (s *swarmServer) Join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != nil {
		return nil, errInSwarm
	}
	req.Token = strings.TrimSpace(req.Token)
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	remote, err := withPort(req.RemoteAddr, DefaultPort)
	if err != nil || remote == "" {
		return nil, status.Errorf(codes.InvalidArgument, "manager address %q: give HOST:PORT of a manager", req.RemoteAddr)
	}
	listen, err := withPort(orDefault(req.ListenAddr, "0.0.0.0"), DefaultPort)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--listen-addr: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()

	caPEM, err := fetchRootCA(ctx, remote)
	if err != nil {
		return nil, err
	}
	if err := tok.CheckCA(caPEM); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "error while validating Root CA Certificate: %v", err)
	}
	advertise, advErr := advertiseAddr(req.AdvertiseAddr, listen)
	key, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	resp, err := issueCertificate(ctx, remote, caPEM, &api.IssueNodeCertificateRequest{
		CsrPem: csr, Token: req.Token, Hostname: d.cfg.Hostname, AdvertiseAddr: advertise,
		EngineVersion: d.cfg.EngineVersion, Os: runtime.GOOS, Arch: runtime.GOARCH,
	})
	if err != nil {
		return nil, err
	}
	if resp.Role == api.NodeRole_MANAGER && advErr != nil {
		return nil, status.Errorf(codes.InvalidArgument, "--advertise-addr: %v", advErr)
	}
	if err := pki.SaveNodeFiles(d.certDir(), key, resp.CertPem, caPEM); err != nil {
		return nil, status.Errorf(codes.Internal, "save certificates: %v", err)
	}
	st := &State{NodeID: resp.NodeId, ClusterID: resp.ClusterId, Role: resp.Role,
		ListenAddr: listen, AdvertiseAddr: advertise, Managers: []string{remote}}
	for _, p := range resp.Managers {
		if p.Addr != remote {
			st.Managers = append(st.Managers, p.Addr)
		}
	}
	if err := d.start(st, manager.Config{}); err != nil {
		d.wipe()
		return nil, status.Errorf(codes.Internal, "start node: %v", err)
	}
	if resp.Role == api.NodeRole_MANAGER {
		if err := d.joinRaft(ctx); err != nil {
			d.stop()
			d.wipe()
			return nil, status.Errorf(codes.Unavailable, "%v", err)
		}
	}
	if err := saveState(d.cfg.DataDir, st); err != nil {
		d.stop()
		d.wipe()
		return nil, status.Errorf(codes.Internal, "save state: %v", err)
	}
	d.log.Info("joined swarm", "cluster", resp.ClusterId, "node", resp.NodeId, "role", resp.Role)
	return &api.JoinResponse{NodeId: resp.NodeId, Role: resp.Role}, nil
}

// fetchRootCA asks a manager for the root CA without trusting it yet: the
// caller checks it against the token's digest.
func fetchRootCA(ctx context.Context, remote string) ([]byte, error) {
	conn, err := transport.Dial(remote, pki.BootstrapClientConfig())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "manager address %s: %v", remote, err)
	}
	defer conn.Close()
	// Wait a little for the connection: a busy manager may take longer than
	// the dialer's first attempt to answer; a wrong address still fails soon.
	ctx, cancel := context.WithTimeout(ctx, fetchCATimeout)
	defer cancel()
	resp, err := api.NewCAClient(conn).GetRootCA(ctx, &api.GetRootCARequest{}, grpc.WaitForReady(true))
	if err != nil {
		return nil, status.Errorf(status.Code(err), "could not reach the manager at %s to fetch its root CA: %v", remote, status.Convert(err).Message())
	}
	return resp.CaCertPem, nil
}

// issueCertificate asks for a first certificate, now trusting the pinned CA.
func issueCertificate(ctx context.Context, remote string, caPEM []byte, req *api.IssueNodeCertificateRequest) (*api.IssueNodeCertificateResponse, error) {
	conf, err := pki.PinnedClientConfig(caPEM)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	conn, err := transport.Dial(remote, conf)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "manager address %s: %v", remote, err)
	}
	defer conn.Close()
	return api.NewCAClient(conn).IssueNodeCertificate(ctx, req, grpc.WaitForReady(true))
}

func (s *swarmServer) Leave(ctx context.Context, req *api.LeaveRequest) (*api.LeaveResponse, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == nil {
		return nil, errNotInSwarm
	}
	if d.state.Role == api.NodeRole_MANAGER && !req.Force {
		return nil, status.Error(codes.FailedPrecondition, d.leaveWarning())
	}
	mesh := d.mesh
	d.stop()
	d.removeContainers(ctx)
	if mesh != nil {
		if err := mesh.Apply(nil); err != nil {
			d.log.Warn("clearing the routing mesh", "err", err)
		}
	}
	d.wipe()
	d.log.Info("left the swarm")
	return &api.LeaveResponse{}, nil
}

// removeContainers stops and removes the node's task containers: a node
// that leaves the swarm runs none of its tasks any more.
func (d *Daemon) removeContainers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ctrs, err := d.exec.Containers(ctx)
	if err != nil {
		d.log.Warn("leaving: listing task containers", "err", err)
		return
	}
	for _, c := range ctrs {
		if err := d.exec.Stop(ctx, c.TaskID, worker.DefaultStopGrace); err != nil {
			d.log.Warn("leaving: stopping task", "task", c.TaskID, "err", err)
		}
		if err := d.exec.Remove(ctx, c.TaskID); err != nil {
			d.log.Warn("leaving: removing task", "task", c.TaskID, "err", err)
		}
	}
}

// leaveWarning is Swarm's refusal to let a manager leave without --force.
func (d *Daemon) leaveWarning() string {
	msg := "You are attempting to leave the swarm on a node that is participating as a manager. "
	m := d.manager()
	if m == nil {
		return msg + "Doing so may lose the consensus of your cluster. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
	}
	reachable, total := m.Reachability()
	quorum := total/2 + 1
	if reachable-1 < quorum {
		if total == 1 {
			return msg + "Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
		}
		msg += fmt.Sprintf("Removing this node leaves %d managers out of %d. Without a Raft quorum your swarm will be inaccessible. ", reachable-1, total)
	}
	return msg + "The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
}

// wipe forgets the swarm: state, certificates and Raft data.
func (d *Daemon) wipe() {
	for _, p := range []string{d.certDir(), d.raftDir()} {
		if err := os.RemoveAll(p); err != nil {
			d.log.Warn("cleaning up", "path", p, "err", err)
		}
	}
	os.Remove(filepath.Join(d.cfg.DataDir, stateFile))
	d.state, d.holder, d.remotes = nil, nil, nil
}

func (s *swarmServer) Info(ctx context.Context, _ *api.InfoRequest) (*api.InfoResponse, error) {
	d := s.d
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	out := &api.InfoResponse{Hostname: d.cfg.Hostname, EngineVersion: d.cfg.EngineVersion, LocalNodeState: "inactive"}
	if st == nil {
		return out, nil
	}
	out.LocalNodeState = "active"
	out.NodeId, out.ClusterId = st.NodeID, st.ClusterID
	out.NodeAddr = hostOf(st.AdvertiseAddr)
	m := d.manager()
	if m == nil {
		for _, a := range st.Managers {
			out.RemoteManagers = append(out.RemoteManagers, &api.Peer{Addr: a})
		}
		return out, nil
	}
	out.ControlAvailable = true
	store := m.Store()
	out.Raft = store.Info()
	if cl := store.FSM().Cluster(); cl != nil {
		out.CertExpiryNs = cl.Settings.GetNodeCertExpiryNs()
		out.HeartbeatPeriodNs = cl.Settings.GetHeartbeatPeriodNs()
	}
	nodes := store.FSM().Nodes()
	out.Nodes = int32(len(nodes))
	if servers, err := store.Servers(); err == nil {
		out.Managers = int32(len(servers))
		for _, s := range servers {
			out.RemoteManagers = append(out.RemoteManagers, &api.Peer{NodeId: string(s.ID), Addr: string(s.Address)})
		}
	}
	return out, nil
}

func (d *Daemon) describeSelf(id string, role api.NodeRole, advertise string, now int64) *api.Node {
	return &api.Node{
		Id: id, Hostname: d.cfg.Hostname, Role: role, DesiredRole: role,
		State: api.NodeState_UNKNOWN, Addr: hostOf(advertise), AdvertiseAddr: advertise,
		EngineVersion: d.cfg.EngineVersion, Os: runtime.GOOS, Arch: runtime.GOARCH,
		CreatedUnixNano: now, UpdatedUnixNano: now,
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
