package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/transport"
)

// Remotes is the set of managers a node knows, with one connection each.
// The preferred one (the leader, as far as we know) is tried first.
type Remotes struct {
	tls func() *tls.Config

	mu        sync.Mutex
	addrs     []string
	preferred string
	next      int
	conns     map[string]*grpc.ClientConn
}

// NewRemotes starts from the given manager addresses; conf makes the TLS
// config for each new connection (the node's current certificate).
func NewRemotes(addrs []string, conf func() *tls.Config) *Remotes {
	r := &Remotes{tls: conf, conns: map[string]*grpc.ClientConn{}}
	r.addrs = append(r.addrs, addrs...)
	return r
}

// Set replaces the list of managers with what a session reported.
func (r *Remotes) Set(peers []*api.Peer) {
	if len(peers) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = r.addrs[:0]
	for _, p := range peers {
		r.addrs = append(r.addrs, p.Addr)
	}
}

// Addrs returns the known manager addresses.
func (r *Remotes) Addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

// Prefer makes addr the next one tried.
func (r *Remotes) Prefer(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.preferred = addr
}

// Pick returns the manager to try next: the preferred one once, then the
// others in turn.
func (r *Remotes) Pick() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.preferred != "" {
		a := r.preferred
		r.preferred = ""
		return a, nil
	}
	if len(r.addrs) == 0 {
		return "", errors.New("no managers known")
	}
	a := r.addrs[r.next%len(r.addrs)]
	r.next++
	return a, nil
}

// Conn returns the connection to a manager, making it if needed.
func (r *Remotes) Conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := transport.Dial(addr, r.tls())
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

// Reset drops every connection, so the next ones present a new certificate.
func (r *Remotes) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for a, c := range r.conns {
		c.Close()
		delete(r.conns, a)
	}
}

// Call runs f against the managers in turn until one succeeds, ctx ends or
// every manager was tried once; it returns the last error.
func (r *Remotes) Call(ctx context.Context, f func(context.Context, *grpc.ClientConn) error) error {
	var last error = errors.New("no managers known")
	for range max(len(r.Addrs()), 1) {
		addr, err := r.Pick()
		if err != nil {
			return err
		}
		conn, err := r.Conn(addr)
		if err == nil {
			if err = f(ctx, conn); err == nil {
				r.Prefer(addr)
				return nil
			}
		}
		last = err
		if ctx.Err() != nil {
			return last
		}
	}
	return last
}
