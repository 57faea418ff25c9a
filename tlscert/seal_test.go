package tlscert

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func newTestSealer(t *testing.T, key []byte) *Sealer {
	t.Helper()
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := newTestSealer(t, randomKey(t))
	plaintext := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")

	first, err := s.Seal(plaintext, []byte("guid-1"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Seal(plaintext, []byte("guid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(first, []byte("secret")) {
		t.Error("sealed value contains the plaintext")
	}
	if bytes.Equal(first, second) {
		t.Error("two seals of one plaintext are equal; each needs its own data key and nonces")
	}

	opened, err := s.Open(first, []byte("guid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(opened, plaintext) {
		t.Errorf("Open = %q, want %q", opened, plaintext)
	}
}

func TestOpenRejects(t *testing.T) {
	key := randomKey(t)
	s := newTestSealer(t, key)
	sealed, err := s.Seal([]byte("private key"), []byte("guid-1"))
	if err != nil {
		t.Fatal(err)
	}
	other := newTestSealer(t, randomKey(t))

	flip := func(i int) []byte {
		changed := bytes.Clone(sealed)
		changed[i] ^= 1
		return changed
	}
	for _, tc := range []struct {
		name   string
		sealer *Sealer
		sealed []byte
		guid   string
		want   error
	}{
		{"other key", other, sealed, "guid-1", ErrOtherKey},
		{"other record", s, sealed, "guid-2", ErrCorrupt},
		{"changed wrapped key", s, flip(1 + keyIDSize + nonceSize), "guid-1", ErrCorrupt},
		{"changed ciphertext", s, flip(len(sealed) - 1), "guid-1", ErrCorrupt},
		{"unknown version", s, flip(0), "guid-1", ErrCorrupt},
		{"truncated", s, sealed[:sealHeaderLen], "guid-1", ErrCorrupt},
		{"empty", s, nil, "guid-1", ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.sealer.Open(tc.sealed, []byte(tc.guid))
			if !errors.Is(err, tc.want) {
				t.Errorf("Open = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewSealerKeySize(t *testing.T) {
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

func TestLoadKeyConfigured(t *testing.T) {
	key := randomKey(t)
	dir := t.TempDir()

	got, path, generated, err := LoadKey(base64.StdEncoding.EncodeToString(key)+"\n", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) || path != "" || generated {
		t.Errorf("LoadKey = (key equal %v, %q, %v), want the configured key, no path, not generated", bytes.Equal(got, key), path, generated)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadKey with a configured key wrote a key file: %v", err)
	}
}

func TestLoadKeyConfiguredInvalid(t *testing.T) {
	for _, configured := range []string{"c2hvcnQ=", "not base64!"} {
		_, _, _, err := LoadKey(configured, t.TempDir())
		if err == nil {
			t.Errorf("LoadKey(%q) accepted an invalid key", configured)
			continue
		}
		if strings.Contains(err.Error(), configured) {
			t.Errorf("error %q contains the configured value", err)
		}
		if !strings.Contains(err.Error(), "routing.certificate_key") {
			t.Errorf("error %q does not name routing.certificate_key", err)
		}
	}
}

func TestLoadKeyGeneratesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")

	first, path, generated, err := LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !generated || path != filepath.Join(dir, KeyFileName) || len(first) != KeySize {
		t.Fatalf("first LoadKey = (%d bytes, %q, generated %v), want a new %d-byte key in %s", len(first), path, generated, KeySize, KeyFileName)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, KeyFileName+".tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	second, _, generated, err := LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if generated || !bytes.Equal(first, second) {
		t.Errorf("second LoadKey generated %v, same key %v; want the stored key", generated, bytes.Equal(first, second))
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	key := randomKey(t)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}

	got, _, generated, err := LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if generated || !bytes.Equal(got, key) {
		t.Errorf("LoadKey generated %v, same key %v; want the file's key", generated, bytes.Equal(got, key))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o after LoadKey, want 600", perm)
	}

	if err := os.WriteFile(path, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := LoadKey("", dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadKey of a short key file = %v, want an error naming %s", err, path)
	}
}

func TestLoadSealerGenerated(t *testing.T) {
	dir := t.TempDir()
	sealer, path, generated, err := LoadSealer("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !generated || path != filepath.Join(dir, KeyFileName) {
		t.Errorf("LoadSealer = (%q, generated %v), want a new key file", path, generated)
	}
	sealed, err := sealer.Seal([]byte("key"), []byte("guid"))
	if err != nil {
		t.Fatal(err)
	}

	// A later start loads the same key and opens what the first sealed.
	again, _, generated, err := LoadSealer("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if generated {
		t.Error("second LoadSealer generated another key")
	}
	if opened, err := again.Open(sealed, []byte("guid")); err != nil || string(opened) != "key" {
		t.Errorf("Open after reload = %q, %v", opened, err)
	}
}
