package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Holder keeps a node's current key and certificate and the cluster CA, and
// makes the TLS configurations that use them. Update swaps the certificate
// while connections run: new handshakes pick up the new one. A Holder is safe
// for concurrent use.
type Holder struct {
	caPEM   []byte
	caCerts []*x509.Certificate
	pool    *x509.CertPool

	mu  sync.Mutex // serialises Update
	cur atomic.Pointer[heldCert]
}

type heldCert struct {
	cert *tls.Certificate // cert.Leaf is set
	id   Identity
}

// NewHolder makes a Holder from a node's key, certificate and CA certificate
// (or bundle) in PEM. The certificate must match the key, be signed by the CA
// and carry a node identity.
func NewHolder(keyPEM, certPEM, caPEM []byte) (*Holder, error) {
	caCerts, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range caCerts {
		pool.AddCert(c)
	}
	h := &Holder{caPEM: bytes.Clone(caPEM), caCerts: caCerts, pool: pool}
	held, err := h.load(keyPEM, certPEM)
	if err != nil {
		return nil, err
	}
	h.cur.Store(held)
	return h, nil
}

// Update replaces the node's key and certificate, after a renewal or a role
// change. The new certificate must pass the same checks as in NewHolder and
// name the same node and cluster; its role may differ.
func (h *Holder) Update(keyPEM, certPEM []byte) error {
	held, err := h.load(keyPEM, certPEM)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.cur.Load().id
	if held.id.NodeID != old.NodeID || held.id.ClusterID != old.ClusterID {
		return fmt.Errorf("update node certificate: the new certificate is for node %s in swarm %s, this node is %s in swarm %s",
			held.id.NodeID, held.id.ClusterID, old.NodeID, old.ClusterID)
	}
	h.cur.Store(held)
	return nil
}

func (h *Holder) load(keyPEM, certPEM []byte) (*heldCert, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load node certificate: %w", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("load node certificate: %w", err)
		}
	}
	if !h.signedByCA(pair.Leaf) {
		return nil, errors.New("load node certificate: the certificate is not signed by the swarm's CA")
	}
	id, err := IdentityOf(pair.Leaf)
	if err != nil {
		return nil, fmt.Errorf("load node certificate: %w", err)
	}
	return &heldCert{cert: &pair, id: id}, nil
}

// signedByCA checks the signature only, not the validity period: an expired
// certificate still loads, and the peer refuses it, which says more.
func (h *Holder) signedByCA(leaf *x509.Certificate) bool {
	for _, ca := range h.caCerts {
		if leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// Leaf returns the current certificate. The caller must not change it.
func (h *Holder) Leaf() *x509.Certificate { return h.cur.Load().cert.Leaf }

// Identity returns the identity of the current certificate.
func (h *Holder) Identity() Identity { return h.cur.Load().id }

// CAPEM returns a copy of the CA certificate PEM the Holder was made with.
func (h *Holder) CAPEM() []byte { return bytes.Clone(h.caPEM) }

// CAPool returns a pool holding the CA certificate(s); the caller may change it.
func (h *Holder) CAPool() *x509.CertPool { return h.pool.Clone() }

func (h *Holder) current() *tls.Certificate { return h.cur.Load().cert }

// ServerConfig returns a TLS server configuration that serves the current
// certificate and verifies a client certificate against the CA if the client
// sends one. Calls that need one check it with Authorize; the unauthenticated
// CA calls of a join work without one.
func (h *Holder) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  h.CAPool(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return h.current(), nil
		},
		NextProtos: nextProtos,
	}
}

// ClientConfig returns a TLS client configuration that presents the current
// certificate and verifies the server against the CA under serverName (use
// ManagerOU to reach any manager, or a node ID for one node).
func (h *Holder) ClientConfig(serverName string, nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    h.CAPool(),
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return h.current(), nil
		},
		NextProtos: nextProtos,
	}
}

// BootstrapClientConfig returns a TLS client configuration for the first step
// of a join, fetching the root CA: it verifies nothing and sends no
// certificate. The fetched CA must be checked with Token.CheckCA before use.
func BootstrapClientConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // the CA is checked against the join token's digest afterwards
		NextProtos:         nextProtos,
	}
}

// PinnedClientConfig returns a TLS client configuration for a node that has
// the CA (checked against its join token) but no certificate yet: it verifies
// the server as a manager of that CA and sends no certificate.
func PinnedClientConfig(caPEM []byte, nextProtos ...string) (*tls.Config, error) {
	certs, err := parseCertsPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pinned TLS config: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		ServerName: ManagerOU,
		NextProtos: nextProtos,
	}, nil
}
