package imagebuild

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/shoal-dev/shoal/integration/testhost"
)

// requireTools skips the test, or fails it when CI=true, unless the machine
// has every tool.
func requireTools(t *testing.T, tools ...Tool) {
	t.Helper()
	s := &Spec{Needs: tools}
	missing := s.Missing()
	if len(missing) == 0 {
		return
	}
	testhost.SkipOrFail(t, "imagebuild: needs "+strings.Join(missing, ", ")+" (`make deps` installs the packages)")
}

// TestImagesAreDeterministic builds each image twice and wants the same
// digest, and a layer whose entries carry the fixed time and root owner.
func TestImagesAreDeterministic(t *testing.T) {
	requireTools(t, append(Nginx.Needs, Shell.Needs...)...)
	for _, b := range Specs {
		first, err := b.Build()
		if err != nil {
			t.Fatalf("building %s: %v", b.Name, err)
		}
		second, err := b.Build()
		if err != nil {
			t.Fatalf("building %s again: %v", b.Name, err)
		}
		d1, _ := first.Digest()
		d2, _ := second.Digest()
		if d1 != d2 {
			t.Errorf("%s: two builds gave digests %s and %s", b.Name, d1, d2)
		}
		names := layerEntries(t, first)
		for _, want := range map[string][]string{
			"nginx": {"usr/sbin/nginx", "lib64/ld-linux-x86-64.so.2", "etc/nginx/nginx.conf", "usr/share/nginx/html/index.html", "var/lib/nginx/body/", "etc/passwd"},
			"shell": {"bin/sh", "bin/sleep", "bin/true", "bin/false", "lib64/ld-linux-x86-64.so.2"},
		}[b.Name] {
			if !names[want] {
				t.Errorf("%s: layer has no %s", b.Name, want)
			}
		}
		t.Logf("%s: %s, %d entries", b.Name, d1, len(names))
	}
}

// layerEntries reads the image's one layer, checks that every entry is
// stamped with epoch and owned by root, and returns the entries' names.
func layerEntries(t *testing.T, img v1.Image) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("image has layers %v (%v), want one", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	names := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(epoch) || hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s: mtime %s, owner %d:%d; want %s, 0:0", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, epoch)
		}
		names[hdr.Name] = true
	}
}

func TestSharedLibrariesOfShell(t *testing.T) {
	requireTools(t, Tool{"/bin/sh", "dash"}, Tool{"ldd", "libc-bin"})
	libs, err := sharedLibraries("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	var libc, loader bool
	for _, l := range libs {
		libc = libc || bytes.HasSuffix([]byte(l), []byte("/libc.so.6"))
		loader = loader || bytes.Contains([]byte(l), []byte("ld-linux"))
	}
	if !libc || !loader {
		t.Errorf("ldd /bin/sh gave %q, want libc.so.6 and the loader", libs)
	}
}
