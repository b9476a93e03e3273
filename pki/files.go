package pki

import (
	"fmt"
	"os"
	"path/filepath"
)

// Names of the files a node keeps in its certificate directory.
const (
	KeyFile  = "key.pem"
	CertFile = "cert.pem"
	CAFile   = "ca.pem"
)

// SaveNodeFiles writes a node's key (mode 0600), certificate and CA
// certificate into dir, creating dir (mode 0700) if needed. Each file is
// replaced atomically: all three are written to temporary files and synced
// first, then renamed into place, so a crash leaves every file whole, either
// old or new. (Only a crash between two renames can leave an old key beside a
// new certificate; NewHolder then refuses the pair.)
func SaveNodeFiles(dir string, keyPEM, certPEM, caPEM []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save node certificates: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CAFile, caPEM, 0o644},
		{KeyFile, keyPEM, 0o600},
		{CertFile, certPEM, 0o644},
	}
	temps := make([]string, 0, len(files))
	defer func() {
		for _, t := range temps {
			_ = os.Remove(t) // fails harmlessly once renamed
		}
	}()
	for _, f := range files {
		tmp, err := writeTemp(dir, f.name, f.data, f.mode)
		if err != nil {
			return fmt.Errorf("save node certificates: %w", err)
		}
		temps = append(temps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(temps[i], filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("save node certificates: %w", err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save node certificates: %w", err)
	}
	return nil
}

// writeTemp writes data to a new synced temporary file in dir with the given
// mode and returns its path.
func writeTemp(dir, name string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	path := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadNodeFiles reads the files SaveNodeFiles wrote. If the node has not
// joined a swarm, the error wraps fs.ErrNotExist.
func LoadNodeFiles(dir string) (keyPEM, certPEM, caPEM []byte, err error) {
	read := func(name string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			err = fmt.Errorf("load node certificates: %w", err)
		}
		return b
	}
	keyPEM, certPEM, caPEM = read(KeyFile), read(CertFile), read(CAFile)
	if err != nil {
		return nil, nil, nil, err
	}
	return keyPEM, certPEM, caPEM, nil
}
