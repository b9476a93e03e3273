package containerd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/core/transfer"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NoSuchImageError says that the registry does not have the image (or the
// tag) a task asks for.
type NoSuchImageError struct {
	Ref string // as normalised, e.g. docker.io/library/nginx:latest
}

func (e *NoSuchImageError) Error() string { return "No such image: " + e.Ref }

// ErrNoSuchImage matches every NoSuchImageError with errors.Is.
var ErrNoSuchImage = errors.New("no such image")

func (e *NoSuchImageError) Is(target error) bool { return target == ErrNoSuchImage }

// normalizeRef turns an image name as a person writes it into the full
// reference containerd stores, as Docker does: "nginx" becomes
// "docker.io/library/nginx:latest".
func normalizeRef(image string) (string, error) {
	if strings.TrimSpace(image) == "" {
		return "", errors.New("the task has no image")
	}
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", fmt.Errorf("invalid image reference %q: %w", image, err)
	}
	return named.String(), nil
}

// pull fetches and unpacks ref into the default snapshotter. As Docker
// Swarm does, it uses an image already on the node when the registry
// cannot be reached, but not when the registry says the image is gone.
func (e *Executor) pull(ctx context.Context, ref string) (client.Image, error) {
	unlock := e.pulls.lock(ref)
	defer unlock()

	start := time.Now()
	img, err := e.client.Pull(ctx, ref,
		client.WithPullUnpack,
		client.WithResolver(&notFoundResolver{e.resolver()}),
	)
	if err == nil {
		e.log.Debug("pulled image", "ref", ref, "took", time.Since(start))
		return img, nil
	}
	var notFound *NoSuchImageError
	if errors.As(err, &notFound) {
		return nil, notFound
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	err = pullError(ref, err, e.cfg.InsecureRegistries)
	local, lerr := e.client.GetImage(ctx, ref)
	if lerr != nil {
		return nil, err
	}
	if ok, _ := local.IsUnpacked(ctx, ""); !ok {
		if uerr := local.Unpack(ctx, ""); uerr != nil {
			return nil, err
		}
	}
	e.log.Warn("pull failed, using the image already on this node", "ref", ref, "err", err)
	return local, nil
}

// pullError explains a failed pull to a person.
func pullError(ref string, err error, insecure []string) error {
	msg := err.Error()
	if strings.Contains(msg, "server gave HTTP response to HTTPS client") {
		host := registryHost(ref)
		if !slices.Contains(insecure, host) {
			return fmt.Errorf("pull %s: %w (the registry speaks plain HTTP: name %s as an insecure registry)", ref, err, host)
		}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// registryHost returns the registry part of a normalised reference.
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	return reference.Domain(named)
}

// resolver returns a resolver that speaks plain HTTP to the insecure
// registries and HTTPS to every other one, and that asks the mirrors before
// Docker Hub.
func (e *Executor) resolver() remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: registryHosts(e.cfg)})
}

// registryHosts says where to pull each registry's images from, and how.
func registryHosts(cfg Config) docker.RegistryHosts {
	secure := config.ConfigureHosts(context.Background(), config.HostOptions{})
	plain := config.ConfigureHosts(context.Background(), config.HostOptions{DefaultScheme: "http"})
	insecure := cfg.InsecureRegistries
	hosts := func(host string) ([]docker.RegistryHost, error) {
		if slices.Contains(insecure, host) {
			return plain(host)
		}
		return secure(host)
	}
	mirrors := cfg.RegistryMirrors
	return func(host string) ([]docker.RegistryHost, error) {
		if host != "docker.io" || len(mirrors) == 0 {
			return hosts(host)
		}
		var all []docker.RegistryHost
		for _, m := range mirrors {
			scheme, mhost, err := parseMirror(m)
			if err != nil {
				return nil, err
			}
			configure := secure
			if scheme == "http" {
				configure = plain
			}
			hs, err := configure(mhost)
			if err != nil {
				return nil, err
			}
			for i := range hs {
				hs[i].Capabilities &^= docker.HostCapabilityPush // a mirror is for pulls
			}
			all = append(all, hs...)
		}
		hub, err := hosts(host)
		return append(all, hub...), err
	}
}

// notFoundResolver turns "not found" from the manifest lookup, and only
// from it (a missing layer is another story), into a NoSuchImageError.
type notFoundResolver struct {
	remotes.Resolver
}

func (r *notFoundResolver) Resolve(ctx context.Context, ref string) (string, ocispec.Descriptor, error) {
	name, desc, err := r.Resolver.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		return name, desc, &NoSuchImageError{Ref: ref}
	}
	return name, desc, err
}

// SetOptions passes the pull's download settings on to the real resolver.
func (r *notFoundResolver) SetOptions(options ...transfer.ImageResolverOption) {
	if o, ok := r.Resolver.(remotes.ResolverWithOptions); ok {
		o.SetOptions(options...)
	}
}

// keyedMutex serialises pulls of one image, so that several replicas
// starting at once fetch it once.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*sync.Mutex{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &sync.Mutex{}
		k.locks[key] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}
