package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// ALPN protocol names on the cluster port.
const (
	ProtoGRPC = "h2"
	ProtoRaft = "shoal-raft"
)

const handshakeTimeout = 5 * time.Second

// Mux is the cluster port: one TLS listener whose connections go to gRPC or
// to Raft by the ALPN protocol the client asked for.
type Mux struct {
	ln        net.Listener
	conf      *tls.Config
	authRaft  func(*x509.Certificate) error
	log       *slog.Logger
	grpc      *connListener
	raft      *connListener
	closeOnce sync.Once
}

// Listen opens the cluster port. conf must offer both protocols and verify
// client certificates if given; authRaft decides whether a verified peer may
// speak Raft (a manager of this cluster).
func Listen(addr string, conf *tls.Config, authRaft func(*x509.Certificate) error, log *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on cluster port %s: %w", addr, err)
	}
	m := &Mux{
		ln:       ln,
		conf:     conf,
		authRaft: authRaft,
		log:      log,
		grpc:     newConnListener(ln.Addr()),
		raft:     newConnListener(ln.Addr()),
	}
	go m.serve()
	return m, nil
}

// Addr is the address actually listened on.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// GRPCListener yields handshaken TLS connections that asked for HTTP/2.
// Serve it with a grpc.Server built with Credentials().
func (m *Mux) GRPCListener() net.Listener { return m.grpc }

// Close stops accepting and closes both listeners.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.ln.Close()
		m.grpc.Close()
		m.raft.Close()
	})
	return err
}

func (m *Mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.grpc.Close()
			m.raft.Close()
			return
		}
		go m.route(c)
	}
}

func (m *Mux) route(raw net.Conn) {
	conn := tls.Server(raw, m.conf)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		m.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr(), "err", err)
		raw.Close()
		return
	}
	state := conn.ConnectionState()
	switch state.NegotiatedProtocol {
	case ProtoRaft:
		var peer *x509.Certificate
		if len(state.PeerCertificates) > 0 {
			peer = state.PeerCertificates[0]
		}
		if err := m.authRaft(peer); err != nil {
			m.log.Warn("refused Raft connection", "remote", raw.RemoteAddr(), "err", err)
			conn.Close()
			return
		}
		m.raft.push(conn)
	default:
		m.grpc.push(conn)
	}
}

// connListener is a net.Listener fed by the mux.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// Credentials are gRPC server credentials for connections the mux has
// already handshaken: they only expose the TLS state to gRPC, so that
// peer.Peer carries the verified client certificate.
func Credentials() credentials.TransportCredentials { return handshaken{} }

type handshaken struct{}

var errClientSide = errors.New("transport: handshaken credentials are for servers only")

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errClientSide
}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, fmt.Errorf("transport: connection is %T, not TLS", c)
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (h handshaken) Clone() credentials.TransportCredentials { return h }

func (handshaken) OverrideServerName(string) error { return nil }
