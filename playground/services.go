package playground

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/internal/ctrdutil"
	"github.com/shoal-dev/shoal/internal/imagebuild"
	"github.com/shoal-dev/shoal/transport"
)

// readyTimeout bounds the wait for a process of the playground to answer.
const readyTimeout = 30 * time.Second

// waitReady polls check until it succeeds; it fails early, with the tail of
// the process's log, when the process (pid, as start returned it) exits,
// so that an answer from another process that holds the address does not
// count, and when ctx ends.
func waitReady(ctx context.Context, dir, name string, pid int, check func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if !alive(pid) {
			return fmt.Errorf("%s exited before it answered; the end of %s:\n%s", name, LogFile(dir, name), tail(LogFile(dir, name), 20))
		}
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s (%v); the end of %s:\n%s", name, readyTimeout, err, LogFile(dir, name), tail(LogFile(dir, name), 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// containerd

func containerdDir(dir string) string { return filepath.Join(dir, "containerd") }

func privateSocket(dir string) string { return filepath.Join(containerdDir(dir), "containerd.sock") }

func containerdMarker(dir string) string {
	return "--config " + filepath.Join(containerdDir(dir), "config.toml")
}

// startContainerd starts the playground's own containerd.
func startContainerd(ctx context.Context, dir string) error {
	cdir := containerdDir(dir)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(cdir, "config.toml")
	if err := os.WriteFile(conf, []byte(ctrdutil.Config(cdir, privateSocket(dir))), 0o600); err != nil {
		return err
	}
	pid, err := start(dir, "containerd", "", []string{"containerd", "--config", conf})
	if err != nil {
		return err
	}
	return waitReady(ctx, dir, "containerd", pid, func() error { return ctrdutil.Answers(privateSocket(dir)) })
}

// The registry

func registryMarker(dir string) string {
	return "serve " + filepath.Join(dir, "registry", "config.yml")
}

// startRegistry runs Debian's docker-registry on rootIP, plain HTTP.
func startRegistry(ctx context.Context, dir string) error {
	rdir := filepath.Join(dir, "registry")
	if err := os.MkdirAll(rdir, 0o700); err != nil {
		return err
	}
	conf := filepath.Join(rdir, "config.yml")
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
  secret: shoal-playground
`, filepath.Join(rdir, "data"), registryAddr)
	if err := os.WriteFile(conf, []byte(config), 0o600); err != nil {
		return err
	}
	pid, err := start(dir, "registry", "", []string{"docker-registry", "serve", conf})
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	return waitReady(ctx, dir, "registry", pid, func() error {
		resp, err := client.Get("http://" + registryAddr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
}

// pushNginx builds the nginx image from this machine's nginx and pushes it
// to the registry as Docker Hub's library/nginx, which the daemons' mirror
// setting turns "nginx" into.
func pushNginx(ctx context.Context) (string, error) {
	spec := imagebuild.Lookup("nginx")
	img, err := spec.Build()
	if err != nil {
		return "", fmt.Errorf("building the nginx image from this machine's nginx: %w", err)
	}
	ref, err := name.ParseReference(registryAddr+"/library/nginx:latest", name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	digest, err := img.Digest()
	return digest.String(), err
}

// Daemons

func daemonMarker(s *State, n *Node) string { return "--data-dir " + s.DataDir(n) + " " }

// startDaemon starts the node's daemon and waits until it answers.
func startDaemon(ctx context.Context, s *State, n *Node) error {
	if err := os.MkdirAll(s.DataDir(n), 0o700); err != nil {
		return err
	}
	pid, err := start(s.Dir, n.Name, n.NS(), n.Args)
	if err != nil {
		return err
	}
	return waitReady(ctx, s.Dir, n.Name, pid, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := info(ctx, s, n)
		return err
	})
}

// dial connects to a node's local API.
func dial(s *State, n *Node) (*grpc.ClientConn, error) {
	return transport.DialLocal(s.Socket(n))
}

// info asks a node's daemon what it is.
func info(ctx context.Context, s *State, n *Node) (*api.InfoResponse, error) {
	cc, err := dial(s, n)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	return api.NewSwarmClient(cc).Info(ctx, &api.InfoRequest{})
}
