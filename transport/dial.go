package transport

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial opens a gRPC client connection to a manager's cluster port. Its
// reconnect backoff is short, so a restarted manager is found again quickly.
func Dial(addr string, conf *tls.Config) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(credentials.NewTLS(conf)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
	)
}

// DialLocal opens a gRPC client connection to a daemon's local control
// socket, given as a path or as unix:///path; a relative path is made
// absolute, since "unix:" would read it as an authority. The socket speaks
// plain gRPC: its file permissions guard it.
func DialLocal(socket string) (*grpc.ClientConn, error) {
	path, err := filepath.Abs(strings.TrimPrefix(socket, "unix://"))
	if err != nil {
		return nil, err
	}
	return grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
}
