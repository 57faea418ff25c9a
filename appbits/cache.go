package appbits

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Cache is the content-addressed resource cache behind resource matching:
// one file per SHA-1 at <dir>/<sha1[:2]>/<sha1>. Entries are written to a
// temporary file and renamed into place, so readers never see a partial
// entry and concurrent writers of the same content agree.
//
// NOTE: like Cloud Controller's resource pool, the cache is shared by all
// tenants, so a client that knows a file's SHA-1 and size can have it
// added to its package. The cache lives in one directory: API replicas
// that do not share it may match a file that another replica then lacks,
// which fails the upload with a 422 asking to push again.
// TODO: evict least recently used entries once a size limit is
// configured. Until then the cache grows until an operator prunes it.
type Cache struct {
	dir string
}

// NewCache returns the cache rooted at dir, which is created on first
// write.
func NewCache(dir string) *Cache { return &Cache{dir: dir} }

// ValidSHA1 reports whether s is a lowercase hex SHA-1, the only form the
// cache accepts as a key, which also keeps keys from naming other paths.
func ValidSHA1(s string) bool {
	if len(s) != 2*sha1.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (c *Cache) path(sum string) string {
	return filepath.Join(c.dir, sum[:2], sum)
}

// Has reports whether the cache has content with SHA-1 sum and the given
// size. Only files larger than zero bytes are ever cached.
func (c *Cache) Has(sum string, size int64) bool {
	if !ValidSHA1(sum) || size <= 0 {
		return false
	}
	info, err := os.Lstat(c.path(sum))
	return err == nil && info.Mode().IsRegular() && info.Size() == size
}

// Add copies the file at src, whose content has SHA-1 sum, into the cache
// unless the cache already has it.
func (c *Cache) Add(src, sum string) error {
	if !ValidSHA1(sum) {
		return fmt.Errorf("add to resource cache: invalid SHA-1 %q", sum)
	}
	dst := c.path(sum)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}

	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	hash := sha1.New()
	if _, err := io.Copy(io.MultiWriter(tmp, hash), in); err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != sum {
		return fmt.Errorf("add to resource cache: content of %s has SHA-1 %s, not %s", src, got, sum)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("add to resource cache: %w", err)
	}
	committed = true
	return nil
}

// copyOut writes the cached content of res to the new file dst, checking
// its SHA-1 and size on the way. Content that no longer matches its key is
// removed from the cache and reported as missing, like content that is
// absent.
func (c *Cache) copyOut(res Resource, dst string) error {
	missing := &MissingResourceError{Path: res.Path, SHA1: res.SHA1}
	if !ValidSHA1(res.SHA1) {
		return missing
	}
	in, err := os.Open(c.path(res.SHA1))
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		return fmt.Errorf("read resource cache: %w", err)
	}
	defer in.Close()

	out, err := createExclusive(dst)
	if err != nil {
		return err
	}
	hash := sha1.New()
	n, err := io.Copy(io.MultiWriter(out, hash), in)
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("copy resource %s: %w", res.Path, err)
	}
	if hex.EncodeToString(hash.Sum(nil)) != res.SHA1 {
		os.Remove(c.path(res.SHA1))
		return missing
	}
	if n != res.Size {
		return missing
	}
	return nil
}
