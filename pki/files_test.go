package pki

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestNodeFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certificates")
	key, cert, ca := []byte("key 1"), []byte("cert 1"), []byte("ca 1")
	if err := SaveNodeFiles(dir, key, cert, ca); err != nil {
		t.Fatalf("SaveNodeFiles: %v", err)
	}
	assertFiles(t, dir, key, cert, ca)

	wantModes := map[string]os.FileMode{".": 0o700, KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644}
	for name, want := range wantModes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}

	// Saving again replaces all three and leaves no temporary files behind.
	key, cert = []byte("key 2"), []byte("cert 2")
	if err := SaveNodeFiles(dir, key, cert, ca); err != nil {
		t.Fatalf("SaveNodeFiles again: %v", err)
	}
	assertFiles(t, dir, key, cert, ca)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the three files", names)
	}
}

func assertFiles(t *testing.T, dir string, key, cert, ca []byte) {
	t.Helper()
	gotKey, gotCert, gotCA, err := LoadNodeFiles(dir)
	if err != nil {
		t.Fatalf("LoadNodeFiles: %v", err)
	}
	if !bytes.Equal(gotKey, key) || !bytes.Equal(gotCert, cert) || !bytes.Equal(gotCA, ca) {
		t.Fatalf("LoadNodeFiles = %q, %q, %q; want %q, %q, %q", gotKey, gotCert, gotCA, key, cert, ca)
	}
}

func TestLoadNodeFilesMissing(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := LoadNodeFiles(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadNodeFiles(empty dir) = %v, want fs.ErrNotExist", err)
	}
	if err := SaveNodeFiles(dir, []byte("k"), []byte("c"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	key, cert, ca, err := LoadNodeFiles(dir)
	if !errors.Is(err, fs.ErrNotExist) || key != nil || cert != nil || ca != nil {
		t.Fatalf("LoadNodeFiles(no ca.pem) = %q, %q, %q, %v; want nils and fs.ErrNotExist", key, cert, ca, err)
	}
}
