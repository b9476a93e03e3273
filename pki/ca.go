package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

const (
	// CACommonName is the CN of every shoal root CA, as in Docker Swarm.
	CACommonName = "swarm-ca"
	// ManagerOU is the OU of a manager's certificate and a DNS SAN of it, so
	// a client dials any manager with ServerName ManagerOU.
	ManagerOU = "swarm-manager"
	// WorkerOU is the OU of a worker's certificate.
	WorkerOU = "swarm-worker"

	// DefaultNodeCertExpiry is how long a node certificate lasts by default.
	DefaultNodeCertExpiry = 90 * 24 * time.Hour
	// MinNodeCertExpiry is the shortest node certificate life allowed.
	MinNodeCertExpiry = time.Hour

	// caValidity is how long a root CA lasts.
	caValidity = 20 * 365 * 24 * time.Hour
	// backdate is how far NotBefore lies in the past, to allow for clock skew.
	backdate = time.Minute

	pemCert = "CERTIFICATE"
	pemCSR  = "CERTIFICATE REQUEST"
	pemKey  = "PRIVATE KEY"
)

// ErrInvalidCSR is wrapped by IssueNodeCert when the certificate request is
// unreadable or its signature does not verify.
var ErrInvalidCSR = errors.New("invalid certificate signing request")

// CA is a cluster's root certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte // exactly the bytes served to joining nodes and digested in tokens
	Signer  crypto.Signer
	KeyPEM  []byte
}

// NewRootCA creates a self-signed root CA: ECDSA P-256, CN "swarm-ca", valid
// for 20 years.
func NewRootCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: CACommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return ParseCA(pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), keyPEM)
}

// ParseCA loads a CA from its certificate and private key in PEM. The key may
// be PKCS#8, SEC 1 (EC) or PKCS#1 (RSA); it must match the certificate, which
// must be a CA certificate.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("parse CA certificate: %q is not a CA certificate", cert.Subject.CommonName)
	}
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse CA key: %w", err)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("parse CA: the private key does not match the CA certificate")
	}
	return &CA{Cert: cert, CertPEM: certPEM, Signer: signer, KeyPEM: keyPEM}, nil
}

// ValidateCertExpiry checks a node certificate life asked for by a user.
func ValidateCertExpiry(d time.Duration) error {
	if d < MinNodeCertExpiry {
		return fmt.Errorf("certificate expiry must be at least %s", MinNodeCertExpiry)
	}
	return nil
}

// IssueNodeCert signs a node certificate for the public key in csrPEM, after
// checking the request's signature. Nothing else in the request is used: the
// certificate gets CN=nodeID, OU=[ou], O=[clusterID], DNS SANs [ou, nodeID],
// server and client auth, NotBefore a minute in the past and NotAfter
// now+expiry, cut to the CA's own NotAfter. ou must be ManagerOU or WorkerOU.
// It returns the certificate in PEM.
func (ca *CA) IssueNodeCert(csrPEM []byte, nodeID, ou, clusterID string, expiry time.Duration) ([]byte, error) {
	if err := ValidateCertExpiry(expiry); err != nil {
		return nil, err
	}
	if ou != ManagerOU && ou != WorkerOU {
		return nil, fmt.Errorf("issue node certificate: unknown role %q, want %q or %q", ou, ManagerOU, WorkerOU)
	}
	if nodeID == "" || clusterID == "" {
		return nil, errors.New("issue node certificate: node ID and cluster ID must not be empty")
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != pemCSR {
		return nil, fmt.Errorf("%w: no %q PEM block", ErrInvalidCSR, pemCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify: %v", ErrInvalidCSR, err)
	}

	now := time.Now()
	notAfter := now.Add(expiry)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, isRSA := csr.PublicKey.(*rsa.PublicKey); isRSA {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         nodeID,
			OrganizationalUnit: []string{ou},
			Organization:       []string{clusterID},
		},
		DNSNames:              []string{ou, nodeID},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Signer)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), nil
}

// NewKeyAndCSR makes a node's private key (ECDSA P-256) and a certificate
// request for it, both in PEM. The request carries no names: the CA decides
// them.
func NewKeyAndCSR() (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate node key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der}), nil
}

// parseCertPEM parses the first CERTIFICATE block in b.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("no %q PEM block", pemCert)
		}
		if block.Type == pemCert {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// parseCertsPEM parses every CERTIFICATE block in b, and wants at least one.
func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != pemCert {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no %q PEM block", pemCert)
	}
	return certs, nil
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case pemKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return signer, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() *big.Int {
	var b [16]byte
	_, _ = rand.Read(b[:])
	n := new(big.Int).SetBytes(b[:])
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n
}
