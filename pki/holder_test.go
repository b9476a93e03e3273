package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

type handshakeResult struct {
	server, client       tls.ConnectionState
	serverErr, clientErr error
}

// handshake runs one TLS handshake over loopback TCP between a server and a
// client configuration. Loopback rather than net.Pipe: in TLS 1.3 the client
// finishes first, and the server's rejection alert needs a buffer to land in.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	type side struct {
		state tls.ConnectionState
		err   error
	}
	serverDone := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverDone <- side{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		tc := tls.Server(c, serverCfg)
		err = tc.Handshake()
		serverDone <- side{tc.ConnectionState(), err}
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	tc := tls.Client(c, clientCfg)
	var r handshakeResult
	r.clientErr = tc.Handshake()
	r.client = tc.ConnectionState()
	s := <-serverDone
	r.server, r.serverErr = s.state, s.err
	return r
}

func peerLeaf(t *testing.T, cs tls.ConnectionState) *x509.Certificate {
	t.Helper()
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

func TestHolderMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	cluster := NewID()
	mgr := newTestHolder(t, ca, "m1", ManagerOU, cluster)
	wrk := newTestHolder(t, ca, "w1", WorkerOU, cluster)

	r := handshake(t, mgr.ServerConfig("h2", "raft"), wrk.ClientConfig(ManagerOU, "raft"))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	if r.client.NegotiatedProtocol != "raft" {
		t.Errorf("ALPN = %q, want raft", r.client.NegotiatedProtocol)
	}
	// The server sees the worker, verified, and authorises it by role.
	if len(r.server.VerifiedChains) == 0 {
		t.Fatal("server did not verify the client certificate")
	}
	id, err := Authorize(peerLeaf(t, r.server), cluster, nil, ManagerOU, WorkerOU)
	if err != nil || id.NodeID != "w1" {
		t.Fatalf("Authorize(client) = %+v, %v; want w1", id, err)
	}
	if _, err := Authorize(peerLeaf(t, r.server), cluster, nil, ManagerOU); !errors.Is(err, ErrRoleNotAllowed) {
		t.Fatalf("Authorize(worker, manager-only) = %v, want ErrRoleNotAllowed", err)
	}
	if got := peerLeaf(t, r.client).Subject.CommonName; got != "m1" {
		t.Errorf("client reached %q, want m1", got)
	}
}

func TestHolderTLSRejects(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	cluster := NewID()
	mgr := newTestHolder(t, ca, "m1", ManagerOU, cluster)
	wrk := newTestHolder(t, ca, "w1", WorkerOU, cluster)
	foreign := newTestHolder(t, other, "m1", ManagerOU, cluster)

	t.Run("client cert from another CA", func(t *testing.T) {
		// It trusts our CA, so it accepts the server, but the server must
		// refuse its certificate.
		cfg := &tls.Config{
			RootCAs:    mgr.CAPool(),
			ServerName: ManagerOU,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return foreign.current(), nil
			},
		}
		r := handshake(t, mgr.ServerConfig(), cfg)
		var unknown x509.UnknownAuthorityError
		if !errors.As(r.serverErr, &unknown) {
			t.Fatalf("server error = %v, want x509.UnknownAuthorityError", r.serverErr)
		}
	})
	t.Run("server cert from another CA", func(t *testing.T) {
		r := handshake(t, foreign.ServerConfig(), wrk.ClientConfig(ManagerOU))
		var unknown x509.UnknownAuthorityError
		if !errors.As(r.clientErr, &unknown) {
			t.Fatalf("client error = %v, want x509.UnknownAuthorityError", r.clientErr)
		}
	})
	t.Run("worker posing as a manager", func(t *testing.T) {
		r := handshake(t, wrk.ServerConfig(), mgr.ClientConfig(ManagerOU))
		var hostErr x509.HostnameError
		if !errors.As(r.clientErr, &hostErr) {
			t.Fatalf("client error = %v, want x509.HostnameError", r.clientErr)
		}
	})
	t.Run("client without a certificate", func(t *testing.T) {
		cfg, err := PinnedClientConfig(ca.CertPEM)
		if err != nil {
			t.Fatal(err)
		}
		r := handshake(t, mgr.ServerConfig(), cfg)
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
		}
		if _, err := Authorize(peerLeaf(t, r.server), cluster, nil, ManagerOU, WorkerOU); !errors.Is(err, ErrNoCertificate) {
			t.Fatalf("Authorize(no client cert) = %v, want ErrNoCertificate", err)
		}
	})
}

func TestJoinTLSConfigs(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	mgr := newTestHolder(t, ca, "m1", ManagerOU, NewID())

	r := handshake(t, mgr.ServerConfig("h2"), BootstrapClientConfig("h2"))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("bootstrap handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	if len(r.server.PeerCertificates) != 0 || r.client.NegotiatedProtocol != "h2" {
		t.Fatalf("bootstrap: client sent %d certificates, ALPN %q", len(r.server.PeerCertificates), r.client.NegotiatedProtocol)
	}

	pinned, err := PinnedClientConfig(ca.CertPEM, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if r := handshake(t, mgr.ServerConfig("h2"), pinned); r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("pinned handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	wrongPin, err := PinnedClientConfig(other.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if r := handshake(t, mgr.ServerConfig(), wrongPin); r.clientErr == nil {
		t.Fatal("pinned to another CA, the client accepted the manager")
	}
	if _, err := PinnedClientConfig([]byte("junk")); err == nil {
		t.Fatal("PinnedClientConfig(junk) succeeded")
	}
}

func TestHolderUpdate(t *testing.T) {
	ca := newTestCA(t)
	cluster := NewID()
	srv := newTestHolder(t, ca, "n1", WorkerOU, cluster)
	cli := newTestHolder(t, ca, "n2", ManagerOU, cluster)
	serverCfg := srv.ServerConfig() // made once: Update must reach it
	servedSerial := func() string {
		r := handshake(t, serverCfg, cli.ClientConfig("n1"))
		if r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
		}
		return peerLeaf(t, r.client).SerialNumber.String()
	}
	if got, want := servedSerial(), srv.Leaf().SerialNumber.String(); got != want {
		t.Fatalf("served serial %s, want %s", got, want)
	}

	// A role change: same node, new key, manager OU.
	key, cert := issue(t, ca, "n1", ManagerOU, cluster, DefaultNodeCertExpiry)
	if err := srv.Update(key, cert); err != nil {
		t.Fatalf("Update: %v", err)
	}
	newSerial := parseCert(t, cert).SerialNumber.String()
	if got := servedSerial(); got != newSerial {
		t.Fatalf("after Update served serial %s, want %s", got, newSerial)
	}
	if id := srv.Identity(); id.OU != ManagerOU || id.NodeID != "n1" {
		t.Fatalf("Identity after Update = %+v", id)
	}
	// Now it serves ManagerOU.
	if r := handshake(t, serverCfg, cli.ClientConfig(ManagerOU)); r.clientErr != nil {
		t.Fatalf("handshake as manager after promotion: %v", r.clientErr)
	}
}

func TestHolderRejects(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	cluster := NewID()
	key, cert := issue(t, ca, "n1", WorkerOU, cluster, time.Hour)
	otherKey, _ := issue(t, ca, "n1", WorkerOU, cluster, time.Hour)
	foreignKey, foreignCert := issue(t, other, "n1", WorkerOU, cluster, time.Hour)
	otherNodeKey, otherNodeCert := issue(t, ca, "n2", WorkerOU, cluster, time.Hour)

	if _, err := NewHolder(key, cert, []byte("junk")); err == nil {
		t.Error("NewHolder with no CA succeeded")
	}
	h, err := NewHolder(key, cert, ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		key, cert []byte
		wantErr   string
	}{
		{"key does not match", otherKey, cert, "private key does not match"},
		{"another CA", foreignKey, foreignCert, "not signed by the swarm's CA"},
		{"another node", otherNodeKey, otherNodeCert, "for node n2"},
		{"junk", []byte("junk"), []byte("junk"), "load node certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.Update(tt.key, tt.cert); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Update error = %v, want %q in it", err, tt.wantErr)
			}
			if _, err := NewHolder(tt.key, tt.cert, ca.CertPEM); tt.name == "another CA" && err == nil {
				t.Fatal("NewHolder with a certificate from another CA succeeded")
			}
		})
	}
	if h.Identity().NodeID != "n1" || !h.Leaf().Equal(parseCert(t, cert)) {
		t.Fatal("a refused Update changed the held certificate")
	}
	if got := h.CAPEM(); string(got) != string(ca.CertPEM) {
		t.Fatal("CAPEM differs from the CA given")
	}
}

// TestHolderConcurrentUpdate runs handshakes while the certificate is swapped;
// run with -race.
func TestHolderConcurrentUpdate(t *testing.T) {
	ca := newTestCA(t)
	cluster := NewID()
	srv := newTestHolder(t, ca, "n1", ManagerOU, cluster)
	cli := newTestHolder(t, ca, "n2", WorkerOU, cluster)
	pairs := make([][2][]byte, 2)
	for i := range pairs {
		k, c := issue(t, ca, "n1", ManagerOU, cluster, time.Hour)
		pairs[i] = [2][]byte{k, c}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := srv.Update(pairs[i%2][0], pairs[i%2][1]); err != nil {
				done <- err
				return
			}
			_ = srv.Leaf()
		}
	}()
	serverCfg := srv.ServerConfig()
	for range 10 {
		if r := handshake(t, serverCfg, cli.ClientConfig(ManagerOU)); r.clientErr != nil || r.serverErr != nil {
			t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("Update: %v", err)
	}
}
