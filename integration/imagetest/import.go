package imagetest

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// ImportImage loads img into the containerd at socket, in namespace ns, and
// unpacks it into the overlayfs snapshotter, so that a test can run it
// without a registry. It returns the image's name there, img.LocalRef().
// The image stays until the namespace's images are deleted.
func ImportImage(t testing.TB, socket, ns string, img *Image) string {
	t.Helper()
	start := time.Now()
	client, err := containerd.New(socket)
	if err != nil {
		t.Fatalf("imagetest: %v", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), PushTimeout)
	defer cancel()

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, img.Layout)) }()
	imported, err := client.Import(ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		t.Fatalf("imagetest: importing %s into containerd namespace %s: %v", img.LocalRef(), ns, err)
	}
	for _, i := range imported {
		if i.Name != img.LocalRef() {
			continue
		}
		if err := containerd.NewImage(client, i).Unpack(ctx, ""); err != nil {
			t.Fatalf("imagetest: unpacking %s in containerd namespace %s: %v", i.Name, ns, err)
		}
		t.Logf("imagetest: imported %s into containerd namespace %s in %s", i.Name, ns, time.Since(start).Round(time.Millisecond))
		return i.Name
	}
	t.Fatalf("imagetest: importing %s into containerd namespace %s gave %v, not the image", img.LocalRef(), ns, imported)
	return ""
}

// tarDir writes the files under dir to w as a tar stream, with paths
// relative to dir: what containerd's import takes for an OCI layout.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
