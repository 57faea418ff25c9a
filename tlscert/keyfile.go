package tlscert

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the file under the data directory that holds the
// generated certificate key when none is configured.
const KeyFileName = "certificate-key"

// DecodeKey decodes a certificate key written in standard base64, as
// `openssl rand -base64 32` prints one. Its errors never contain the
// value.
func DecodeKey(encoded string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, errors.New("the certificate key is not standard base64")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("the certificate key is %d bytes: it must be %d", len(key), KeySize)
	}
	return key, nil
}

// LoadKey returns the certificate key. A configured key (base64) wins.
// Without one, the key is read from KeyFileName under dataDir, and
// generated into that file, readable by its owner only, when the file does
// not exist. path is that file ("" for a configured key) and generated
// reports whether this call created it, so the caller can log where the
// key is. The key itself must never be logged.
//
// A generated key suits a single machine: API replicas on several
// machines must share one configured key, or each one cannot open the
// private keys the others stored.
func LoadKey(configured, dataDir string) (key []byte, path string, generated bool, err error) {
	if configured != "" {
		key, err := DecodeKey(configured)
		if err != nil {
			return nil, "", false, fmt.Errorf("routing.certificate_key: %w", err)
		}
		return key, "", false, nil
	}

	path = filepath.Join(dataDir, KeyFileName)
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, path, false, err
	}
	key, generated, err = createKeyFile(dataDir, path)
	return key, path, generated, err
}

// readKeyFile reads the key file at path and narrows its permissions to
// the owner, which an older file or a careless copy may have widened.
func readKeyFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, info.Mode().Perm()&0o700); err != nil {
			return nil, fmt.Errorf("restrict the certificate key file %s to its owner: %w", path, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := DecodeKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("certificate key file %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new random key to a temporary file and links it
// to path, which fails when path exists. So a process that starts at the
// same moment never reads a partly written file: the one that loses the
// race reads the winner's key.
func createKeyFile(dataDir, path string) ([]byte, bool, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create the data directory for the certificate key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generate the certificate key: %w", err)
	}

	tmp, err := os.CreateTemp(dataDir, KeyFileName+".tmp-*")
	if err != nil {
		return nil, false, fmt.Errorf("write the certificate key: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file readable by its owner only.
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, false, fmt.Errorf("write the certificate key: %w", err)
	}

	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		existing, err := readKeyFile(path)
		return existing, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("write the certificate key to %s: %w", path, err)
	}
	return key, true, nil
}

// LoadSealer returns a Sealer for the key LoadKey returns, with LoadKey's
// path and generated results. The key bytes stay inside the Sealer.
func LoadSealer(configured, dataDir string) (sealer *Sealer, path string, generated bool, err error) {
	key, path, generated, err := LoadKey(configured, dataDir)
	if err != nil {
		return nil, "", false, err
	}
	defer clear(key)
	sealer, err = NewSealer(key)
	return sealer, path, generated, err
}
