// Package transport is the cluster port: one TLS listener whose
// connections go to gRPC or to hashicorp/raft's stream layer by the ALPN
// protocol the client asked for, gRPC server credentials for connections
// already handshaken, and the dialer every node uses to reach a manager.
//
// It owns no policy: which certificates it trusts and who may speak Raft
// come from its caller (pki certificates, the manager's authorisation).
package transport
