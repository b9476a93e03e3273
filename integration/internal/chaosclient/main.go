// Command chaosclient is the client of TestChaos. Run inside a test host with
// a manager's certificate, it keeps scaling services up and down and reading
// their replica counts through random managers while the test kills and
// restarts them, and prints every operation as a JSON line for the test to
// check with a linearizability checker.
//
//	chaosclient -certs DIR -managers node-01=10.77.0.2:2377,... -services a,b
//
// Each service is a register: a write is UpdateService(replicas=N), a read is
// GetService(...).spec.replicas. Several workers (-clients) run at once; each
// makes one call at a time, to one manager picked at random among those whose
// connection is up. A call is never retried: its outcome is what it is.
//
// Every line is a history.Op in JSON. The first, of kind "start", gives the
// start in Unix nanoseconds; the times of the others count nanoseconds from
// it on one monotonic clock. A read answered NotFound is a read of
// history.NotFound. A write that failed in a way that leaves its effect in
// doubt (the manager died, lost leadership, timed out...) is marked unknown:
// it must stay in the history with no end. A worker that had such a write
// carries on under a new client number, since its old one is still, for all
// anyone knows, in the middle of that write.
//
// The program stops when its stdin closes or after -duration; it then waits
// for the calls in flight, and reads every service from every manager until
// they all agree. It records that read as one more operation and prints a
// line of kind "final" with the agreed value (or, not ok, why they never
// agreed).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/integration/internal/chaosclient/history"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/transport"
)

type manager struct {
	name string
	conn *grpc.ClientConn
	ctl  api.ControlClient
	// failedAt is when a call through it last failed (UnixNano), so that
	// workers leave it alone for a moment.
	failedAt atomic.Int64
}

type client struct {
	managers  []*manager
	services  []string
	max       int64
	opTimeout time.Duration
	pause     time.Duration
	start     time.Time
	ids       atomic.Int64 // next client number

	mu  sync.Mutex
	out *json.Encoder
}

func main() {
	certs := flag.String("certs", "", "directory with a manager's key.pem, cert.pem, ca.pem")
	managers := flag.String("managers", "", "the managers, as NAME=HOST:PORT,...")
	services := flag.String("services", "", "the services to scale, by name, comma-separated")
	clients := flag.Int("clients", 3, "workers making calls at once")
	max := flag.Int64("max", 4, "largest replica count to write")
	duration := flag.Duration("duration", 5*time.Minute, "stop after this long even if stdin stays open")
	opTimeout := flag.Duration("op-timeout", 10*time.Second, "deadline of one call")
	pause := flag.Duration("pause", 50*time.Millisecond, "longest pause between a worker's calls")
	settle := flag.Duration("settle", 30*time.Second, "how long the final reads wait for the managers to agree")
	flag.Parse()
	if *certs == "" || *managers == "" || *services == "" || *clients < 1 {
		fmt.Fprintln(os.Stderr, "usage: chaosclient -certs DIR -managers NAME=HOST:PORT,... -services A,B [-clients N]")
		os.Exit(2)
	}
	c, err := newClient(*certs, *managers, *services)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosclient:", err)
		os.Exit(2)
	}
	c.max, c.opTimeout, c.pause = *max, *opTimeout, *pause
	c.ids.Store(int64(*clients))
	c.emit(history.Op{Kind: history.Start, Value: c.start.UnixNano(), OK: true})

	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	go func() {
		<-stop
		cancel()
	}()
	var wg sync.WaitGroup
	for i := range *clients {
		wg.Go(func() { c.work(ctx, i) })
	}
	wg.Wait()
	cancel()
	if !c.final(*settle) {
		os.Exit(1)
	}
}

func newClient(certs, managers, services string) (*client, error) {
	key, cert, ca, err := pki.LoadNodeFiles(certs)
	if err != nil {
		return nil, err
	}
	h, err := pki.NewHolder(key, cert, ca)
	if err != nil {
		return nil, err
	}
	conf := h.ClientConfig(pki.ManagerOU)
	c := &client{services: strings.Split(services, ","), start: time.Now(), out: json.NewEncoder(os.Stdout)}
	for _, m := range strings.Split(managers, ",") {
		name, addr, ok := strings.Cut(m, "=")
		if !ok {
			return nil, fmt.Errorf("manager %q: want NAME=HOST:PORT", m)
		}
		conn, err := transport.Dial(addr, conf)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		conn.Connect()
		c.managers = append(c.managers, &manager{name: name, conn: conn, ctl: api.NewControlClient(conn)})
	}
	return c, nil
}

// now is the time since the start, the clock of every line.
func (c *client) now() int64 { return int64(time.Since(c.start)) }

func (c *client) emit(o history.Op) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out.Encode(o)
}

// work makes calls until ctx ends; a call under way when it does is finished
// and recorded.
func (c *client) work(ctx context.Context, id int) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(id)))
	for ctx.Err() == nil {
		svc := c.services[rng.IntN(len(c.services))]
		m := c.pick(rng)
		var o history.Op
		if rng.IntN(2) == 0 {
			o = c.write(m, svc, rng.Int64N(c.max+1))
		} else {
			o = c.read(m, svc)
		}
		o.Client = id
		c.emit(o)
		pause := time.Duration(rng.Int64N(int64(c.pause) + 1))
		if !o.OK {
			m.failedAt.Store(time.Now().UnixNano())
			pause += c.pause
		}
		if o.Unknown {
			id = int(c.ids.Add(1) - 1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// pick returns a random manager whose connection is up, preferring those
// that have not failed a call in the last half second; with none up, any.
func (c *client) pick(rng *rand.Rand) *manager {
	var up, rested []*manager
	recent := time.Now().Add(-500 * time.Millisecond).UnixNano()
	for _, m := range c.managers {
		switch m.conn.GetState() {
		case connectivity.Ready:
			up = append(up, m)
			if m.failedAt.Load() < recent {
				rested = append(rested, m)
			}
		case connectivity.Idle:
			m.conn.Connect()
		}
	}
	switch {
	case len(rested) > 0:
		return rested[rng.IntN(len(rested))]
	case len(up) > 0:
		return up[rng.IntN(len(up))]
	}
	return c.managers[rng.IntN(len(c.managers))]
}

func (c *client) write(m *manager, svc string, n int64) history.Op {
	o := history.Op{Service: svc, Kind: history.Write, Value: n, Manager: m.name}
	ctx, cancel := context.WithTimeout(context.Background(), c.opTimeout)
	defer cancel()
	replicas := uint64(n)
	o.Call = c.now()
	_, err := m.ctl.UpdateService(ctx, &api.UpdateServiceRequest{Ref: svc, Replicas: &replicas})
	o.Return = c.now()
	if err != nil {
		o.Err = err.Error()
		o.Unknown = !refused(err)
		return o
	}
	o.OK = true
	return o
}

// refused tells whether a failed write is known not to have taken effect:
// gRPC never sent it (no connection to the manager), or the manager turned
// it down before it reached Raft.
func refused(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated,
		codes.FailedPrecondition, codes.AlreadyExists, codes.Unimplemented:
		return true
	case codes.Unavailable:
		// gRPC-go fails a call with these before it opens a stream.
		msg := status.Convert(err).Message()
		return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "authentication handshake failed")
	}
	return false
}

func (c *client) read(m *manager, svc string) history.Op {
	o := history.Op{Service: svc, Kind: history.Read, Manager: m.name}
	ctx, cancel := context.WithTimeout(context.Background(), c.opTimeout)
	defer cancel()
	o.Call = c.now()
	s, err := m.ctl.GetService(ctx, &api.GetServiceRequest{Ref: svc})
	o.Return = c.now()
	switch {
	case status.Code(err) == codes.NotFound:
		// An answer all the same: this manager does not know the service.
		o.OK, o.Value, o.Err = true, history.NotFound, err.Error()
	case err != nil:
		o.Err = err.Error()
	default:
		o.OK, o.Value = true, int64(s.GetSpec().GetReplicas())
	}
	return o
}

// final reads each service from every manager until they all agree, records
// that as one read, and prints the agreed value. It reports whether every
// service settled.
func (c *client) final(settle time.Duration) bool {
	all := true
	for _, svc := range c.services {
		deadline := time.Now().Add(settle)
		var last string
		for {
			call := c.now()
			seen := map[int64]bool{}
			var errs []string
			for _, m := range c.managers {
				o := c.read(m, svc)
				if !o.OK {
					errs = append(errs, m.name+": "+o.Err)
					continue
				}
				seen[o.Value] = true
			}
			if len(errs) == 0 && len(seen) == 1 {
				for v := range seen {
					id := int(c.ids.Add(1) - 1)
					c.emit(history.Op{Client: id, Service: svc, Kind: history.Read, Value: v, Call: call, Return: c.now(), OK: true, Manager: "all"})
					c.emit(history.Op{Client: id, Service: svc, Kind: history.Final, Value: v, OK: true})
				}
				break
			}
			if len(errs) > 0 {
				last = strings.Join(errs, "; ")
			} else {
				last = fmt.Sprintf("the managers read %v", seen)
			}
			if time.Now().After(deadline) {
				c.emit(history.Op{Service: svc, Kind: history.Final, Err: fmt.Sprintf("the managers did not agree within %s: %s", settle, last)})
				all = false
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return all
}
