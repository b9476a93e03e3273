// Command imagectl does imagetest's registry work from inside a test host,
// where the registry is reachable and the test process is not. Each
// subcommand does one thing and exits 0 on success, 1 on failure (with the
// reason on stderr), 2 on bad usage.
//
//	imagectl get [-timeout D] URL
//	    GET URL; prints the body when the answer is 200.
//	imagectl push [-timeout D] LAYOUT REF
//	    pushes the only image of the OCI layout LAYOUT to REF over plain
//	    HTTP; prints the manifest digest.
//	imagectl check [-timeout D] [-digest D] REF
//	    fetches REF's manifest, config and layers and checks every digest
//	    (and that the manifest digest is -digest); prints the digest.
//	imagectl pull [-timeout D] -address SOCKET -namespace NS REF
//	    pulls REF over plain HTTP into containerd, through the containerd v2
//	    client as shoal's executor does, and unpacks it; prints
//	    "NAME DIGEST".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	timeout := fs.Duration("timeout", time.Minute, "limit for the whole command")
	var run func(ctx context.Context) (string, error)
	switch cmd {
	case "get":
		run = func(ctx context.Context) (string, error) { return get(ctx, arg(fs, 0, 1)) }
	case "push":
		run = func(ctx context.Context) (string, error) { return push(ctx, arg(fs, 0, 2), arg(fs, 1, 2)) }
	case "check":
		digest := fs.String("digest", "", "the manifest digest REF must have")
		run = func(ctx context.Context) (string, error) { return check(ctx, arg(fs, 0, 1), *digest) }
	case "pull":
		address := fs.String("address", "", "containerd's socket")
		ns := fs.String("namespace", "", "containerd namespace to pull into")
		run = func(ctx context.Context) (string, error) { return pull(ctx, *address, *ns, arg(fs, 0, 1)) }
	default:
		usage()
	}
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	out, err := run(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "imagectl %s: %v\n", cmd, err)
		os.Exit(1)
	}
	fmt.Print(out)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: imagectl get|push|check|pull [flags] ARGS (see the package doc)")
	os.Exit(2)
}

// arg returns positional argument i of want, or exits with a usage error.
func arg(fs *flag.FlagSet, i, want int) string {
	if fs.NArg() != want {
		fmt.Fprintf(os.Stderr, "imagectl %s: want %d arguments, got %q\n", fs.Name(), want, fs.Args())
		os.Exit(2)
	}
	return fs.Arg(i)
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

func push(ctx context.Context, dir, ref string) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	if len(m.Manifests) != 1 {
		return "", fmt.Errorf("layout %s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return "", err
	}
	return m.Manifests[0].Digest.String() + "\n", nil
}

func check(ctx context.Context, ref, want string) (string, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(r, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	if want != "" && desc.Digest.String() != want {
		return "", fmt.Errorf("%s has digest %s, want %s", ref, desc.Digest, want)
	}
	img, err := desc.Image()
	if err != nil {
		return "", err
	}
	if err := validate.Image(img); err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return desc.Digest.String() + "\n", nil
}

func pull(ctx context.Context, address, ns, ref string) (string, error) {
	if address == "" || ns == "" {
		return "", fmt.Errorf("give -address and -namespace")
	}
	client, err := containerd.New(address)
	if err != nil {
		return "", err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, ns)
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts)),
	})
	img, err := client.Pull(ctx, ref, containerd.WithResolver(resolver), containerd.WithPullUnpack)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s\n", img.Name(), img.Target().Digest), nil
}
