package pki

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewRootCA()
	if err != nil {
		t.Fatalf("NewRootCA: %v", err)
	}
	return ca
}

// issue makes a key and a certificate for nodeID from ca.
func issue(t *testing.T, ca *CA, nodeID, ou, clusterID string, expiry time.Duration) (keyPEM, certPEM []byte) {
	t.Helper()
	keyPEM, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	certPEM, err = ca.IssueNodeCert(csrPEM, nodeID, ou, clusterID, expiry)
	if err != nil {
		t.Fatalf("IssueNodeCert: %v", err)
	}
	return keyPEM, certPEM
}

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

func newTestHolder(t *testing.T, ca *CA, nodeID, ou, clusterID string) *Holder {
	t.Helper()
	keyPEM, certPEM := issue(t, ca, nodeID, ou, clusterID, DefaultNodeCertExpiry)
	h, err := NewHolder(keyPEM, certPEM, ca.CertPEM)
	if err != nil {
		t.Fatalf("NewHolder: %v", err)
	}
	return h
}
