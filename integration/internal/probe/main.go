// Command probe makes one call to a manager's cluster port with a chosen
// identity and prints the gRPC code it got. The security tests run it inside
// a test host to check what each kind of client can reach.
//
//	probe -addr 10.77.0.2:2377 -as certs|none|foreign [-certs DIR] CALL
//
// CALL is one of GetRootCA, IssueNodeCertificate, RenewNodeCertificate,
// Session, Heartbeat, ListNodes, RotateJoinToken, RaftJoin, Ping, raft.
// It prints "CODE message" on one line; for raft, "accepted" or "refused".
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/transport"
)

func main() {
	addr := flag.String("addr", "", "manager cluster address host:port")
	as := flag.String("as", "certs", "identity: certs (a node's files in -certs), none, or foreign (a CA of another cluster)")
	dir := flag.String("certs", "", "directory with key.pem, cert.pem, ca.pem")
	flag.Parse()
	if flag.NArg() != 1 || *addr == "" {
		fmt.Fprintln(os.Stderr, "usage: probe -addr HOST:PORT -as certs|none|foreign [-certs DIR] CALL")
		os.Exit(2)
	}
	conf, err := clientConfig(*as, *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	call := flag.Arg(0)
	if call == "raft" {
		fmt.Println(raftProbe(*addr, conf))
		return
	}
	err = grpcCall(*addr, conf, call)
	st := status.Convert(err)
	fmt.Printf("%s %s\n", st.Code(), st.Message())
}

func clientConfig(as, dir string) (*tls.Config, error) {
	switch as {
	case "none":
		return pki.BootstrapClientConfig(), nil
	case "certs":
		key, cert, ca, err := pki.LoadNodeFiles(dir)
		if err != nil {
			return nil, err
		}
		h, err := pki.NewHolder(key, cert, ca)
		if err != nil {
			return nil, err
		}
		return h.ClientConfig(pki.ManagerOU), nil
	case "foreign":
		ca, err := pki.NewRootCA()
		if err != nil {
			return nil, err
		}
		key, csr, err := pki.NewKeyAndCSR()
		if err != nil {
			return nil, err
		}
		cert, err := ca.IssueNodeCert(csr, pki.NewID(), pki.ManagerOU, pki.NewID(), time.Hour)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		return &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}, nil
	}
	return nil, fmt.Errorf("unknown identity %q", as)
}

func grpcCall(addr string, conf *tls.Config, call string) error {
	conn, err := transport.Dial(addr, conf)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ca, ctl := api.NewCAClient(conn), api.NewControlClient(conn)
	switch call {
	case "GetRootCA":
		_, err = ca.GetRootCA(ctx, &api.GetRootCARequest{})
	case "IssueNodeCertificate":
		_, err = ca.IssueNodeCertificate(ctx, &api.IssueNodeCertificateRequest{Token: "SWMTKN-1-bad"})
	case "RenewNodeCertificate":
		_, csr, kerr := pki.NewKeyAndCSR()
		if kerr != nil {
			return kerr
		}
		_, err = ca.RenewNodeCertificate(ctx, &api.RenewNodeCertificateRequest{CsrPem: csr})
	case "Session":
		var s api.Dispatcher_SessionClient
		if s, err = api.NewDispatcherClient(conn).Session(ctx, &api.SessionRequest{}); err == nil {
			_, err = s.Recv()
		}
	case "Heartbeat":
		_, err = api.NewDispatcherClient(conn).Heartbeat(ctx, &api.HeartbeatRequest{})
	case "ListNodes":
		_, err = ctl.ListNodes(ctx, &api.ListNodesRequest{})
	case "RotateJoinToken":
		_, err = ctl.RotateJoinToken(ctx, &api.GetJoinTokenRequest{})
	case "RaftJoin":
		_, err = api.NewRaftMembershipClient(conn).Join(ctx, &api.RaftJoinRequest{Addr: "192.0.2.1:2377"})
	case "Ping":
		_, err = api.NewRaftMembershipClient(conn).Ping(ctx, &api.PingRequest{})
	default:
		return fmt.Errorf("unknown call %q", call)
	}
	return err
}

// raftProbe opens a Raft connection and tells whether the manager kept it
// open (accepted) or closed it (refused).
func raftProbe(addr string, conf *tls.Config) string {
	conf = conf.Clone()
	conf.NextProtos = []string{transport.ProtoRaft}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return "refused " + err.Error()
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "accepted"
	}
	if errors.Is(err, io.EOF) || err != nil {
		return fmt.Sprintf("refused %v", err)
	}
	return "accepted"
}
