// Package imagebuild builds the images that shoal's tests and playground
// run, from this machine's own binaries, with no image from outside:
// Lookup("nginx") (nginx serving NginxIndex on port 80) and Lookup("shell")
// (dash, sleep, true, false). Each is
// one layer of files copied from this machine with the libraries ldd lists,
// stamped with a fixed time, so that the same machine always builds the same
// digests.
//
// It has no test dependencies, so that the integration tests (through
// imagetest) and the playground build the same images.
package imagebuild

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the nginx image serves and where it keeps its configuration.
const (
	// NginxIndex is the body of GET / on the nginx image's port 80.
	NginxIndex = "shoal nginx\n"
	// NginxConf is the configuration file the image's entrypoint names.
	NginxConf = "/etc/nginx/nginx.conf"
	// NginxBin is the machine's nginx binary that the image carries.
	NginxBin = "/usr/sbin/nginx"
)

// LocalRefPrefix starts the name that an image has in a layout that
// WriteLayout wrote: LocalRefPrefix + "nginx:latest". It names no registry
// that exists, so nothing can pull it by mistake.
const LocalRefPrefix = "imagetest.shoal.invalid/"

// Tool is a program that building an image needs, and the Debian package
// that has it.
type Tool struct{ Bin, Package string }

// Spec is one of the images this package builds.
type Spec struct {
	// Name is the image's repository name, "nginx" or "shell".
	Name string
	// Needs lists the machine's programs the image is made of, and ldd.
	Needs []Tool

	rootfs func() (*rootfs, v1.Config, error)
}

// The images, by name.
var (
	Nginx = &Spec{
		Name:   "nginx",
		Needs:  []Tool{{NginxBin, "nginx-light"}, {"ldd", "libc-bin"}},
		rootfs: nginxRootfs,
	}
	Shell = &Spec{
		Name:   "shell",
		Needs:  []Tool{{"/bin/sh", "dash"}, {"/bin/sleep", "coreutils"}, {"ldd", "libc-bin"}},
		rootfs: shellRootfs,
	}
	Specs = []*Spec{Nginx, Shell}
)

// Lookup returns the image called name, or nil.
func Lookup(name string) *Spec {
	for _, s := range Specs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// LocalRef is the image's name in a layout that WriteLayout wrote.
func (s *Spec) LocalRef() string { return LocalRefPrefix + s.Name + ":latest" }

// Build builds the image in memory. The nginx image is the machine's
// /usr/sbin/nginx with the libraries it links, a configuration that serves
// NginxIndex on port 80 with one worker, logs errors to stderr and access to
// stdout, and the directories nginx needs. Its entrypoint is
//
//	/usr/sbin/nginx -c /etc/nginx/nginx.conf -g "daemon off;"
//
// with no Cmd, so extra arguments (say "-t") go after it. SIGTERM is nginx's
// fast shutdown; SIGQUIT its graceful one.
//
// The shell image is /bin/sh (dash), /bin/sleep, /bin/true and /bin/false
// with their libraries. Its entrypoint is ["/bin/sh", "-c"] and its Cmd
// ["sleep 3600"], so a task's arguments are one shell command: "exit 3",
// "sleep 1; exit 1".
func (s *Spec) Build() (v1.Image, error) {
	fs, cfg, err := s.rootfs()
	if err != nil {
		return nil, err
	}
	fs.file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"+
		"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"))
	fs.file("/etc/group", 0o644, []byte("root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n"))
	fs.file("/etc/nsswitch.conf", 0o644, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
	fs.dir("/tmp", 0o777|os.ModeSticky)
	fs.dir("/root", 0o700)
	gz, err := fs.layer()
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: "shoal imagetest: " + s.Name + " from this machine's binaries",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// WriteLayout writes img, the image of s, as the only image of a new OCI
// image layout (oci-layout, index.json, blobs/) in dir, named s.LocalRef()
// for containerd's import. It returns the manifest digest, "sha256:...".
func (s *Spec) WriteLayout(dir string, img v1.Image) (string, error) {
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	err = p.AppendImage(img, layout.WithAnnotations(map[string]string{
		// containerd's import names the image after this one.
		"io.containerd.image.name": s.LocalRef(),
		// The OCI spec's own, which other tools read.
		"org.opencontainers.image.ref.name": "latest",
	}))
	if err != nil {
		return "", err
	}
	return digest.String(), nil
}

// LayerSize is the compressed size of img's layers.
func LayerSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func nginxRootfs() (*rootfs, v1.Config, error) {
	fs := newRootfs()
	if err := fs.binary(NginxBin); err != nil {
		return nil, v1.Config{}, err
	}
	fs.file(NginxConf, 0o644, []byte(nginxConf))
	fs.file("/etc/nginx/mime.types", 0o644, []byte(mimeTypes))
	fs.file("/usr/share/nginx/html/index.html", 0o644, []byte(NginxIndex))
	// The temp paths built into Debian's nginx (nginx -V), its log and pid
	// directories.
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fs.dir("/var/lib/nginx/"+d, 0o700)
	}
	fs.dir("/var/log/nginx", 0o755)
	fs.dir("/var/lock", 0o755)
	fs.dir("/run", 0o755)
	return fs, v1.Config{
		Entrypoint:   []string{NginxBin, "-c", NginxConf, "-g", "daemon off;"},
		Env:          []string{defaultPath},
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
	}, nil
}

// nginxConf has no "daemon" directive: the entrypoint gives it with -g, and
// nginx refuses one given twice.
const nginxConf = `user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr notice;

events {
	worker_connections 64;
}

http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log /dev/stdout;
	sendfile on;

	server {
		listen 80 default_server;
		server_name _;
		root /usr/share/nginx/html;
		index index.html;
	}
}
`

const mimeTypes = `types {
	text/html html htm;
	text/plain txt;
	text/css css;
	application/javascript js;
	application/json json;
	image/png png;
}
`

func shellRootfs() (*rootfs, v1.Config, error) {
	fs := newRootfs()
	for _, bin := range []string{"/bin/sh", "/bin/sleep", "/bin/true", "/bin/false"} {
		if err := fs.binary(bin); err != nil {
			return nil, v1.Config{}, err
		}
	}
	return fs, v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"sleep 3600"},
		Env:        []string{defaultPath},
		WorkingDir: "/",
	}, nil
}

// Missing lists the tools of s that this machine lacks, as "BIN (PACKAGE)".
func (s *Spec) Missing() []string {
	var missing []string
	for _, tl := range s.Needs {
		if _, err := exec.LookPath(tl.Bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tl.Bin, tl.Package))
		}
	}
	return missing
}
