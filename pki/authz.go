package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Authorisation failures. Authorize wraps them with %w and the detail; match
// them with errors.Is. At a gRPC boundary ErrNoCertificate maps to
// Unauthenticated and the others to PermissionDenied.
var (
	ErrNoCertificate   = errors.New("no node certificate: this call needs a certificate from the swarm's CA")
	ErrInvalidIdentity = errors.New("the certificate does not name a node, role and cluster")
	ErrWrongCluster    = errors.New("the certificate belongs to another swarm")
	ErrRoleNotAllowed  = errors.New("the node's role is not allowed to make this call")
	ErrNodeRemoved     = errors.New("the node has been removed from the swarm")
)

// Identity is who a node certificate speaks for.
type Identity struct {
	NodeID    string // CN
	ClusterID string // O
	OU        string // role: ManagerOU or WorkerOU
}

// IdentityOf reads the identity from a node certificate. The certificate must
// have a CN and exactly one OU and one O. Errors wrap ErrInvalidIdentity.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, ErrNoCertificate
	}
	s := cert.Subject
	switch {
	case s.CommonName == "":
		return Identity{}, fmt.Errorf("%w: empty CN", ErrInvalidIdentity)
	case len(s.OrganizationalUnit) != 1:
		return Identity{}, fmt.Errorf("%w: want one OU, got %d", ErrInvalidIdentity, len(s.OrganizationalUnit))
	case len(s.Organization) != 1:
		return Identity{}, fmt.Errorf("%w: want one O, got %d", ErrInvalidIdentity, len(s.Organization))
	}
	return Identity{NodeID: s.CommonName, ClusterID: s.Organization[0], OU: s.OrganizationalUnit[0]}, nil
}

// Authorize decides whether the peer holding cert may make a call. TLS must
// already have verified cert against the cluster CA; Authorize only reads it.
// The peer must belong to clusterID, not be removed (removed may be nil), and
// have one of allowedOUs as its role (none given allows no role), checked in
// that order. It returns
// the peer's identity, or an error wrapping ErrNoCertificate,
// ErrInvalidIdentity, ErrWrongCluster, ErrRoleNotAllowed or ErrNodeRemoved.
func Authorize(cert *x509.Certificate, clusterID string, removed func(nodeID string) bool, allowedOUs ...string) (Identity, error) {
	id, err := IdentityOf(cert)
	if err != nil {
		return Identity{}, err
	}
	if id.ClusterID != clusterID {
		return Identity{}, fmt.Errorf("%w: node %s is in swarm %s, this is swarm %s", ErrWrongCluster, id.NodeID, id.ClusterID, clusterID)
	}
	// A removed node learns that it was removed, whatever it called.
	if removed != nil && removed(id.NodeID) {
		return Identity{}, fmt.Errorf("%w: node %s must join again with a join token", ErrNodeRemoved, id.NodeID)
	}
	if !slices.Contains(allowedOUs, id.OU) {
		need := "no role may make it"
		if len(allowedOUs) > 0 {
			need = "it needs " + strings.Join(allowedOUs, " or ")
		}
		return Identity{}, fmt.Errorf("%w: node %s has role %s; %s", ErrRoleNotAllowed, id.NodeID, id.OU, need)
	}
	return id, nil
}
