// Package pki owns shoal's cluster identity: the root CA, join tokens,
// random IDs and secrets, node certificates and their renewal times, the
// key, certificate and CA files a node keeps on disk, authorisation of
// peers from their certificates, and the TLS configurations that every
// cluster connection uses.
//
// The trust model follows Docker Swarm. A cluster has one root CA (ECDSA
// P-256, CN "swarm-ca"). A join token, SWMTKN-1-<digest>-<secret>, pins that
// CA by the SHA-256 digest of its PEM bytes and carries a role's secret. A
// node certificate names the node (CN), its role (OU, ManagerOU or WorkerOU)
// and its cluster (O); after joining, a node is known only by that
// certificate.
//
// pki is pure mechanism. It must not know about Raft, gRPC servers or the
// cluster store: callers decide which secret is current, which nodes are
// removed and which roles may make which call, and pass those facts in.
package pki
