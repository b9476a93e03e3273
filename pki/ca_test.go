package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewRootCA(t *testing.T) {
	ca := newTestCA(t)
	c := ca.Cert
	if c.Subject.CommonName != CACommonName || !c.IsCA || !c.BasicConstraintsValid {
		t.Fatalf("CA subject %q IsCA %v: want CN %q and a CA", c.Subject, c.IsCA, CACommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("CA is not self-signed: %v", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if life := c.NotAfter.Sub(time.Now()); life < 19*365*24*time.Hour || life > 21*365*24*time.Hour {
		t.Fatalf("CA lasts %v more, want about 20 years", life)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("CA cannot sign certificates")
	}

	again, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatalf("ParseCA(NewRootCA output): %v", err)
	}
	if !again.Cert.Equal(ca.Cert) || string(again.CertPEM) != string(ca.CertPEM) {
		t.Fatal("ParseCA did not give back the same CA")
	}
}

func TestParseCARejects(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	_, leafPEM := issue(t, ca, NewID(), ManagerOU, NewID(), time.Hour)
	leafKey, _ := issue(t, ca, NewID(), ManagerOU, NewID(), time.Hour)

	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		wantErr         string
	}{
		{"no certificate", nil, ca.KeyPEM, "no \"CERTIFICATE\" PEM block"},
		{"no key", ca.CertPEM, nil, "parse CA key: no PEM block"},
		{"key of another CA", ca.CertPEM, other.KeyPEM, "does not match"},
		{"leaf certificate", leafPEM, leafKey, "is not a CA certificate"},
		{"garbage key", ca.CertPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "parse CA key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCA(tt.certPEM, tt.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCA error = %v, want %q in it", err, tt.wantErr)
			}
		})
	}
}

func TestParseCAKeyFormats(t *testing.T) {
	ca := newTestCA(t)
	ecKey, err := x509.MarshalECPrivateKey(ca.Signer.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecKey})
	if _, err := ParseCA(ca.CertPEM, sec1); err != nil {
		t.Fatalf("ParseCA with an EC PRIVATE KEY: %v", err)
	}
}

func TestIssueNodeCert(t *testing.T) {
	ca := newTestCA(t)
	nodeID, clusterID := NewID(), NewID()
	keyPEM, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	certPEM, err := ca.IssueNodeCert(csrPEM, nodeID, WorkerOU, clusterID, 2*time.Hour)
	if err != nil {
		t.Fatalf("IssueNodeCert: %v", err)
	}
	cert := parseCert(t, certPEM)

	s := cert.Subject
	if s.CommonName != nodeID || !slices.Equal(s.OrganizationalUnit, []string{WorkerOU}) || !slices.Equal(s.Organization, []string{clusterID}) {
		t.Errorf("subject = %q, want CN=%s OU=%s O=%s", s, nodeID, WorkerOU, clusterID)
	}
	if !slices.Equal(cert.DNSNames, []string{WorkerOU, nodeID}) {
		t.Errorf("DNS SANs = %v, want [%s %s]", cert.DNSNames, WorkerOU, nodeID)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v, want server and client auth", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("node certificate is a CA")
	}
	if nb := before.Sub(cert.NotBefore); nb < 59*time.Second || nb > 2*time.Minute {
		t.Errorf("NotBefore is %v before issue, want about a minute", nb)
	}
	if na := cert.NotAfter.Sub(before); na < 2*time.Hour-time.Second || na > 2*time.Hour+time.Minute {
		t.Errorf("NotAfter is %v after issue, want 2h", na)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
	opts := x509.VerifyOptions{Roots: poolOf(ca), DNSName: WorkerOU, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		t.Errorf("Verify against the CA pool: %v", err)
	}

	// The certificate carries the CSR's public key: it pairs with keyPEM.
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !signer.Public().(*ecdsa.PublicKey).Equal(cert.PublicKey) {
		t.Error("certificate public key is not the CSR's")
	}
}

// TestIssueNodeCertIgnoresCSRNames shows that only the CSR's key is used: a
// request asking to be a manager of another cluster gets what the CA decides.
func TestIssueNodeCertIgnoresCSRNames(t *testing.T) {
	ca := newTestCA(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "evil", OrganizationalUnit: []string{ManagerOU}, Organization: []string{"other"}},
		DNSNames: []string{ManagerOU, "evil.example"},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, req, key)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	certPEM, err := ca.IssueNodeCert(csrPEM, "node1", WorkerOU, "cluster1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, certPEM)
	id, err := IdentityOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{NodeID: "node1", ClusterID: "cluster1", OU: WorkerOU}); id != want {
		t.Errorf("identity = %+v, want %+v", id, want)
	}
	if !slices.Equal(cert.DNSNames, []string{WorkerOU, "node1"}) {
		t.Errorf("DNS SANs = %v, want the CA's", cert.DNSNames)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("certificate public key is not the CSR's")
	}
}

func TestIssueNodeCertRejects(t *testing.T) {
	ca := newTestCA(t)
	_, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	// Flip the last byte of the DER: the signature no longer verifies, but
	// the request still parses.
	block, _ := pem.Decode(csrPEM)
	bad := append([]byte(nil), block.Bytes...)
	bad[len(bad)-1] ^= 0x01
	badSigPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: bad})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})

	tests := []struct {
		name    string
		csr     []byte
		ou      string
		expiry  time.Duration
		wantErr string
		wantIs  error
	}{
		{"bad signature", badSigPEM, WorkerOU, time.Hour, "signature", ErrInvalidCSR},
		{"not PEM", []byte("hello"), WorkerOU, time.Hour, "no \"CERTIFICATE REQUEST\" PEM block", ErrInvalidCSR},
		{"a certificate, not a CSR", certPEM, WorkerOU, time.Hour, "no \"CERTIFICATE REQUEST\" PEM block", ErrInvalidCSR},
		{"expiry too short", csrPEM, WorkerOU, time.Hour - time.Second, "certificate expiry must be at least 1h0m0s", nil},
		{"zero expiry", csrPEM, WorkerOU, 0, "certificate expiry must be at least 1h0m0s", nil},
		{"unknown role", csrPEM, "swarm-admin", time.Hour, `unknown role "swarm-admin"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.IssueNodeCert(tt.csr, "node", tt.ou, "cluster", tt.expiry)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IssueNodeCert error = %v, want %q in it", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %q does not wrap %q", err, tt.wantIs)
			}
		})
	}
	if _, err := ca.IssueNodeCert(csrPEM, "", WorkerOU, "cluster", time.Hour); err == nil {
		t.Error("IssueNodeCert with an empty node ID succeeded")
	}
}

func TestIssueNodeCertCappedAtCAExpiry(t *testing.T) {
	ca := newTestCA(t)
	_, certPEM := issue(t, ca, "node", ManagerOU, "cluster", 30*365*24*time.Hour)
	if cert := parseCert(t, certPEM); !cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want the CA's %v", cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestValidateCertExpiry(t *testing.T) {
	tests := []struct {
		d  time.Duration
		ok bool
	}{
		{-time.Hour, false},
		{0, false},
		{59 * time.Minute, false},
		{time.Hour, true},
		{DefaultNodeCertExpiry, true},
	}
	for _, tt := range tests {
		err := ValidateCertExpiry(tt.d)
		if tt.ok != (err == nil) {
			t.Errorf("ValidateCertExpiry(%v) = %v, want ok=%v", tt.d, err, tt.ok)
		}
		if err != nil && err.Error() != "certificate expiry must be at least 1h0m0s" {
			t.Errorf("ValidateCertExpiry(%v) error = %q", tt.d, err)
		}
	}
}

func TestRandomSerial(t *testing.T) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 100 {
		if n := randomSerial(); n.Sign() <= 0 || n.Cmp(limit) >= 0 {
			t.Fatalf("serial %v outside (0, 2^128)", n)
		}
	}
}

func poolOf(cas ...*CA) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	return pool
}
