package transport

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// RaftLayer is the hashicorp/raft stream layer on the cluster port: it
// accepts the mux's Raft connections and dials other managers with TLS,
// asking for the Raft protocol by ALPN.
type RaftLayer struct {
	*connListener
	advertise net.Addr
	client    func() *tls.Config
}

// RaftLayer returns the stream layer. advertise is the address the other
// managers reach this one at; client makes the TLS config for dialling
// (it must present this node's certificate and verify a manager's).
func (m *Mux) RaftLayer(advertise string, client func() *tls.Config) (*RaftLayer, error) {
	addr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, err
	}
	return &RaftLayer{connListener: m.raft, advertise: addr, client: client}, nil
}

// Addr is the advertised address, which Raft records as this server's.
func (l *RaftLayer) Addr() net.Addr { return l.advertise }

// Dial opens a Raft connection to another manager.
func (l *RaftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conf := l.client()
	conf.NextProtos = []string{ProtoRaft}
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), conf)
}
