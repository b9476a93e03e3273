package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// epoch is the time stamp of every file, layer and config in the test
// images, so that the same machine always builds the same digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// rootfs is the file tree of a one-layer image, built in memory. Paths are
// absolute, as seen inside the container.
type rootfs struct {
	entries map[string]entry
}

type entry struct {
	mode os.FileMode // permission bits and, for directories, os.ModeDir
	data []byte
}

func newRootfs() *rootfs { return &rootfs{entries: map[string]entry{}} }

// dir adds a directory; its parents come by themselves.
func (r *rootfs) dir(p string, perm os.FileMode) {
	r.entries[path.Clean(p)] = entry{mode: os.ModeDir | perm}
}

// file adds a regular file with the given content.
func (r *rootfs) file(p string, perm os.FileMode, data []byte) {
	r.entries[path.Clean(p)] = entry{mode: perm, data: data}
}

// copyFile adds the machine's file src at the path dst, as a regular file:
// symbolic links on the machine (such as /lib64/ld-linux-x86-64.so.2 or
// /bin/sh) are resolved, so the image needs none of its own.
func (r *rootfs) copyFile(dst, src string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return err
	}
	info, err := os.Stat(real)
	if err != nil {
		return err
	}
	r.file(dst, info.Mode().Perm(), data)
	return nil
}

// binary adds the machine's executable bin at the same path, with every
// shared library that ldd(1) says it loads, the dynamic loader included.
func (r *rootfs) binary(bin string) error {
	if err := r.copyFile(bin, bin); err != nil {
		return err
	}
	libs, err := sharedLibraries(bin)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := r.copyFile(lib, lib); err != nil {
			return fmt.Errorf("library of %s: %w", bin, err)
		}
	}
	return nil
}

// sharedLibraries lists the files that ldd prints for bin: lines such as
//
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
//
// The vDSO, which has no file, is left out; a library ldd cannot find is an
// error.
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, bytes.TrimSpace(out))
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("ldd %s: %s", bin, line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if p, _, _ := strings.Cut(line, " "); strings.HasPrefix(p, "/") {
			libs = append(libs, p)
		}
	}
	if len(libs) == 0 {
		return nil, fmt.Errorf("ldd %s listed no libraries: %s", bin, bytes.TrimSpace(out))
	}
	return libs, nil
}

// layer returns the tree as a gzipped tar, the same bytes for the same tree:
// entries sorted, parents before children, owned by root, all stamped with
// epoch.
func (r *rootfs) layer() ([]byte, error) {
	all := map[string]entry{}
	for p, e := range r.entries {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = entry{mode: os.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, p := range paths {
		e := all[p]
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    int64(e.mode.Perm()),
			ModTime: epoch,
		}
		if e.mode&os.ModeSticky != 0 {
			hdr.Mode |= 0o1000 // c_ISVTX
		}
		if e.mode.IsDir() {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
