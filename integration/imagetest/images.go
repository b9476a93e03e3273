package imagetest

import (
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shoal-dev/shoal/internal/imagebuild"
)

// What the nginx image serves and where it keeps its configuration (see
// package imagebuild, which builds the images).
const (
	// NginxIndex is the body of GET / on the nginx image's port 80.
	NginxIndex = imagebuild.NginxIndex
	// NginxConf is the configuration file the image's entrypoint names.
	NginxConf = imagebuild.NginxConf
	// NginxBin is the machine's nginx binary that the image carries.
	NginxBin = imagebuild.NginxBin
)

// LocalRefPrefix starts the name that an image has in a layout and after
// ImportImage: LocalRefPrefix + "nginx:latest". It names no registry that
// exists, so nothing can pull it by mistake.
const LocalRefPrefix = imagebuild.LocalRefPrefix

// Image is a test image built from this machine's own binaries, written as
// an OCI image layout that holds it alone.
type Image struct {
	// Name is the image's repository name, "nginx" or "shell".
	Name string
	// Digest is the manifest digest, "sha256:...".
	Digest string
	// Layout is an OCI image layout directory (oci-layout, index.json,
	// blobs/) that holds only this image. It lives in a temp dir of the test
	// that asked for the image.
	Layout string

	img v1.Image
}

// LocalRef is the image's name in its layout and after ImportImage.
func (i *Image) LocalRef() string { return LocalRefPrefix + i.Name + ":latest" }

// NginxImage returns the nginx image: the machine's /usr/sbin/nginx with the
// libraries it links, a configuration that serves NginxIndex on port 80 with
// one worker, logs errors to stderr and access to stdout, and the
// directories nginx needs. Its entrypoint is
//
//	/usr/sbin/nginx -c /etc/nginx/nginx.conf -g "daemon off;"
//
// with no Cmd, so extra arguments (say "-t") go after it. SIGTERM is nginx's
// fast shutdown; SIGQUIT its graceful one.
func NginxImage(t testing.TB) *Image {
	t.Helper()
	return writeImage(t, &nginx)
}

// ShellImage returns the shell image: /bin/sh (dash), /bin/sleep, /bin/true
// and /bin/false with their libraries. Its entrypoint is ["/bin/sh", "-c"]
// and its Cmd ["sleep 3600"], so a task's arguments are one shell command:
// "exit 3", "sleep 1; exit 1".
func ShellImage(t testing.TB) *Image {
	t.Helper()
	return writeImage(t, &shell)
}

// builtImage is an image built once per test binary, in memory.
type builtImage struct {
	spec *imagebuild.Spec

	once sync.Once
	img  v1.Image
	err  error
}

var (
	nginx = builtImage{spec: imagebuild.Nginx}
	shell = builtImage{spec: imagebuild.Shell}
)

// writeImage builds b once per test binary and writes it to a new layout in
// a temp dir of t. It skips the test (fails it when CI=true) when the
// machine lacks what the image is made of.
func writeImage(t testing.TB, b *builtImage) *Image {
	t.Helper()
	skipOrFail(t, "the "+b.spec.Name+" test image", b.spec.Missing())
	b.once.Do(func() {
		start := time.Now()
		b.img, b.err = b.spec.Build()
		if b.err == nil {
			size, _ := imagebuild.LayerSize(b.img)
			t.Logf("imagetest: built the %s image (%d bytes compressed) in %s",
				b.spec.Name, size, time.Since(start).Round(time.Millisecond))
		}
	})
	if b.err != nil {
		t.Fatalf("imagetest: building the %s image: %v", b.spec.Name, b.err)
	}
	dir := t.TempDir()
	digest, err := b.spec.WriteLayout(dir, b.img)
	if err != nil {
		t.Fatalf("imagetest: writing the %s image: %v", b.spec.Name, err)
	}
	return &Image{Name: b.spec.Name, Digest: digest, Layout: dir, img: b.img}
}

// tool is a program a helper needs and the Debian package that has it.
type tool struct{ bin, pkg string }

// requireBinaries skips the test, or fails it when CI=true, unless every
// tool is there.
func requireBinaries(t testing.TB, what string, tools []tool) {
	t.Helper()
	var missing []string
	for _, tl := range tools {
		if _, err := exec.LookPath(tl.bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tl.bin, tl.pkg))
		}
	}
	skipOrFail(t, what, missing)
}
