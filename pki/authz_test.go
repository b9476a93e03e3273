package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"
)

// certWithSubject signs a certificate with an arbitrary subject, as a broken
// or foreign issuer might.
func certWithSubject(t *testing.T, ca *CA, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIdentityOf(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name    string
		subject pkix.Name
		want    Identity
		wantErr bool
	}{
		{"node", pkix.Name{CommonName: "n", OrganizationalUnit: []string{WorkerOU}, Organization: []string{"c"}}, Identity{"n", "c", WorkerOU}, false},
		{"no CN", pkix.Name{OrganizationalUnit: []string{WorkerOU}, Organization: []string{"c"}}, Identity{}, true},
		{"no OU", pkix.Name{CommonName: "n", Organization: []string{"c"}}, Identity{}, true},
		{"two OUs", pkix.Name{CommonName: "n", OrganizationalUnit: []string{WorkerOU, ManagerOU}, Organization: []string{"c"}}, Identity{}, true},
		{"no O", pkix.Name{CommonName: "n", OrganizationalUnit: []string{WorkerOU}}, Identity{}, true},
		{"two Os", pkix.Name{CommonName: "n", OrganizationalUnit: []string{WorkerOU}, Organization: []string{"c", "d"}}, Identity{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IdentityOf(certWithSubject(t, ca, tt.subject))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidIdentity) {
					t.Fatalf("IdentityOf = %+v, %v; want ErrInvalidIdentity", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentityOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	ca := newTestCA(t)
	const cluster = "cluster-a"
	cert := func(nodeID, ou, clusterID string) *x509.Certificate {
		_, certPEM := issue(t, ca, nodeID, ou, clusterID, time.Hour)
		return parseCert(t, certPEM)
	}
	manager := cert("m1", ManagerOU, cluster)
	worker := cert("w1", WorkerOU, cluster)
	removedWorker := cert("gone", WorkerOU, cluster)
	foreign := cert("f1", ManagerOU, "cluster-b")
	noOU := certWithSubject(t, ca, pkix.Name{CommonName: "x", Organization: []string{cluster}})
	removed := func(id string) bool { return id == "gone" }
	both := []string{ManagerOU, WorkerOU}
	managers := []string{ManagerOU}

	tests := []struct {
		name    string
		cert    *x509.Certificate
		removed func(string) bool
		allowed []string
		want    Identity
		wantErr error
	}{
		{"manager on manager call", manager, removed, managers, Identity{"m1", cluster, ManagerOU}, nil},
		{"manager on any-role call", manager, removed, both, Identity{"m1", cluster, ManagerOU}, nil},
		{"worker on any-role call", worker, removed, both, Identity{"w1", cluster, WorkerOU}, nil},
		{"worker on manager-only call", worker, removed, managers, Identity{}, ErrRoleNotAllowed},
		{"no roles allowed", manager, removed, nil, Identity{}, ErrRoleNotAllowed},
		{"other cluster", foreign, removed, both, Identity{}, ErrWrongCluster},
		{"removed node", removedWorker, removed, both, Identity{}, ErrNodeRemoved},
		{"removed node on a call its role may not make", removedWorker, removed, managers, Identity{}, ErrNodeRemoved},
		{"nil removed func", worker, nil, both, Identity{"w1", cluster, WorkerOU}, nil},
		{"no certificate", nil, removed, both, Identity{}, ErrNoCertificate},
		{"no OU", noOU, removed, both, Identity{}, ErrInvalidIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Authorize(tt.cert, cluster, tt.removed, tt.allowed...)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Authorize error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("Authorize = %+v, want %+v", got, tt.want)
			}
			// Errors about a node name it, so a log line says who was refused.
			if tt.wantErr == ErrWrongCluster || tt.wantErr == ErrRoleNotAllowed || tt.wantErr == ErrNodeRemoved {
				if !strings.Contains(err.Error(), "node "+tt.cert.Subject.CommonName) {
					t.Fatalf("error %q does not name node %s", err, tt.cert.Subject.CommonName)
				}
			}
		})
	}
}

// TestAuthorizeNeedsVerifiedCert shows why Authorize must only see
// certificates TLS verified: a certificate from another CA can carry this
// cluster's names, and only verification against the pool catches it.
func TestAuthorizeNeedsVerifiedCert(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	_, certPEM := issue(t, other, "m1", ManagerOU, "cluster-a", time.Hour)
	forged := parseCert(t, certPEM)

	opts := x509.VerifyOptions{Roots: poolOf(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	_, err := forged.Verify(opts)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Verify against our pool = %v, want UnknownAuthorityError", err)
	}
	// Its fields alone would pass; verification is what keeps it out.
	if _, err := Authorize(forged, "cluster-a", nil, ManagerOU); err != nil {
		t.Fatalf("Authorize on fields alone = %v", err)
	}
	// And a certificate from our CA verifies.
	_, ownPEM := issue(t, ca, "m1", ManagerOU, "cluster-a", time.Hour)
	if _, err := parseCert(t, ownPEM).Verify(opts); err != nil {
		t.Fatalf("Verify of our own certificate: %v", err)
	}
}
