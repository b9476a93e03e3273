package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
)

// node makes a certificate holder for a node of the test cluster.
func node(t *testing.T, ca *pki.CA, ou string) *pki.Holder {
	t.Helper()
	key, csr, err := pki.NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueNodeCert(csr, pki.NewID(), ou, "cluster1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pki.NewHolder(key, cert, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// whoami answers Ping with the CN of the verified peer certificate.
type whoami struct {
	api.UnimplementedRaftMembershipServer
}

func (whoami) Ping(ctx context.Context, _ *api.PingRequest) (*api.PingResponse, error) {
	p, _ := peer.FromContext(ctx)
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return &api.PingResponse{}, nil
	}
	return &api.PingResponse{NodeId: info.State.PeerCertificates[0].Subject.CommonName}, nil
}

func TestMuxRoutesGRPCAndRaftByALPN(t *testing.T) {
	ca, err := pki.NewRootCA()
	if err != nil {
		t.Fatal(err)
	}
	server, manager, worker := node(t, ca, pki.ManagerOU), node(t, ca, pki.ManagerOU), node(t, ca, pki.WorkerOU)
	onlyManagers := func(c *x509.Certificate) error {
		if c == nil || c.Subject.OrganizationalUnit[0] != pki.ManagerOU {
			return errors.New("not a manager")
		}
		return nil
	}
	mux, err := Listen("127.0.0.1:0", server.ServerConfig(ProtoGRPC, ProtoRaft), onlyManagers, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	gs := grpc.NewServer(grpc.Creds(Credentials()))
	api.RegisterRaftMembershipServer(gs, whoami{})
	go gs.Serve(mux.GRPCListener())
	defer gs.Stop()
	addr := mux.Addr().String()

	// gRPC sees the verified client certificate.
	conn, err := Dial(addr, worker.ClientConfig(pki.ManagerOU))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := api.NewRaftMembershipClient(conn).Ping(ctx, &api.PingRequest{})
	if err != nil {
		t.Fatalf("gRPC over the mux: %v", err)
	}
	if resp.NodeId != worker.Identity().NodeID {
		t.Errorf("server saw peer %q, want %q", resp.NodeId, worker.Identity().NodeID)
	}

	// A manager's Raft connection reaches the Raft listener, both ways.
	layer, err := mux.RaftLayer(addr, func() *tls.Config { return manager.ClientConfig(pki.ManagerOU) })
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan []byte, 1)
	go func() {
		c, err := layer.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		defer c.Close()
		b := make([]byte, 4)
		io.ReadFull(c, b)
		accepted <- b
	}()
	rc, err := layer.Dial(raftAddr(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("raft dial: %v", err)
	}
	rc.Write([]byte("raft"))
	select {
	case b := <-accepted:
		if string(b) != "raft" {
			t.Errorf("raft listener read %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Raft connection never reached the Raft listener")
	}
	rc.Close()

	// A worker's Raft connection is closed by the mux.
	wl, _ := mux.RaftLayer(addr, func() *tls.Config { return worker.ClientConfig(pki.ManagerOU) })
	wc, err := wl.Dial(raftAddr(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("worker raft dial: %v", err)
	}
	defer wc.Close()
	wc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := wc.Read(make([]byte, 1)); err == nil {
		t.Error("a worker's Raft connection was kept open")
	}
}

func raftAddr(a string) raft.ServerAddress { return raft.ServerAddress(a) }
