package appbits

import (
	"archive/zip"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Assemble builds the app directory dir from the zip file at zipPath ("" when
// the upload has no bits) plus resources copied from cache, and returns the
// regular files it wrote from the zip.
//
// Everything that can be checked before writing is checked first: the
// zip's central directory against limits and path rules, symlink targets,
// and the cache's holdings. Data that turns out corrupt or larger than its
// header says stops the extraction with an *InvalidError, leaving a partial
// dir for the caller to remove. dir must not exist; its parent must.
//
// Permission bits are kept, except that owners always get read and write
// access to files and full access to directories, so the staging user can
// work in the tree. An entry without Unix permissions gets 0644 or 0755.
// Setuid, setgid and sticky bits are dropped.
func Assemble(zipPath string, resources []Resource, cache *Cache, dir string, limits Limits) ([]File, error) {
	limits = limits.WithDefaults()

	var zr *zip.Reader
	if zipPath != "" {
		f, err := os.Open(zipPath)
		if err != nil {
			return nil, fmt.Errorf("open upload: %w", err)
		}
		defer f.Close()
		if zr, err = openZip(f, limits); err != nil {
			return nil, err
		}
	}

	t, err := planTree(zr, resources, limits)
	if err != nil {
		return nil, err
	}
	if err := t.checkSymlinks(); err != nil {
		return nil, err
	}
	if err := checkCached(resources, cache); err != nil {
		return nil, err
	}

	return t.write(dir, zr, cache)
}

// openZip opens the upload as a zip archive within the size limit.
func openZip(f *os.File, limits Limits) (*zip.Reader, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open upload: %w", err)
	}
	switch {
	case info.Size() == 0:
		return nil, invalid("", "the zip file is empty")
	case info.Size() > limits.MaxZipBytes:
		return nil, invalid("", "the zip file is %d bytes, more than the maximum of %d bytes", info.Size(), limits.MaxZipBytes)
	}
	zr, err := zip.NewReader(f, info.Size())
	// ErrInsecurePath comes with a usable reader, and cleanPath applies
	// stricter rules to every name anyway.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, invalid("", "the file is not a valid zip archive, or it is truncated")
	}
	return zr, nil
}

// planTree builds the tree the zip and the resources describe, enforcing
// the limits and the path and file-type rules. Symlink targets are read
// from the zip here, because they are needed before anything is written.
func planTree(zr *zip.Reader, resources []Resource, limits Limits) (*tree, error) {
	count := len(resources)
	if zr != nil {
		count += len(zr.File)
	}
	if count > limits.MaxEntries {
		return nil, invalid("", "the upload has %d entries, more than the maximum of %d", count, limits.MaxEntries)
	}

	t := newTree()
	var total uint64
	addSize := func(entry string, size uint64) error {
		total += size
		if size > math.MaxInt64 || total > uint64(limits.MaxAppBytes) {
			return invalid(entry, "the app would be larger than the maximum of %d bytes", limits.MaxAppBytes)
		}
		return nil
	}

	if zr != nil {
		for i, f := range zr.File {
			n, p, err := zipNode(f, i, limits)
			if err != nil {
				return nil, err
			}
			if n == nil {
				continue
			}
			if n.kind == kindFile {
				if err := addSize(f.Name, f.UncompressedSize64); err != nil {
					return nil, err
				}
			}
			if err := t.add(p, n, f.Name); err != nil {
				return nil, err
			}
		}
	}

	for i := range resources {
		res := &resources[i]
		p, isDir, perr := cleanPath(res.Path)
		if perr != nil {
			return nil, perr
		}
		if isDir || p == "" {
			return nil, invalid(res.Path, "a matched resource must be a file path")
		}
		if res.Size < 0 {
			return nil, invalid(res.Path, "the resource size is negative")
		}
		if err := addSize(res.Path, uint64(res.Size)); err != nil {
			return nil, err
		}
		n := &node{kind: kindFile, perm: res.Mode, explicit: true, zipIndex: -1, resource: res}
		if err := t.add(p, n, res.Path); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// zipNode validates one zip entry and returns its node and clean path, or
// a nil node for an entry naming the root directory.
func zipNode(f *zip.File, index int, limits Limits) (*node, string, error) {
	p, slashDir, perr := cleanPath(f.Name)
	if perr != nil {
		return nil, "", perr
	}
	if f.Flags&0x1 != 0 {
		return nil, "", invalid(f.Name, "the entry is encrypted")
	}

	mode := f.Mode()
	n := &node{perm: mode.Perm(), explicit: true, zipIndex: index}
	switch {
	case mode&fs.ModeSymlink != 0:
		n.kind = kindSymlink
	case mode.IsDir() || slashDir:
		n.kind = kindDir
	case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return nil, "", invalid(f.Name, "the entry is a device file: only files, directories and symlinks are allowed")
	case mode&fs.ModeNamedPipe != 0:
		return nil, "", invalid(f.Name, "the entry is a FIFO: only files, directories and symlinks are allowed")
	case mode&fs.ModeSocket != 0:
		return nil, "", invalid(f.Name, "the entry is a socket: only files, directories and symlinks are allowed")
	case !mode.IsRegular():
		return nil, "", invalid(f.Name, "the entry has an unsupported file type: only files, directories and symlinks are allowed")
	default:
		n.kind = kindFile
	}

	if p == "" {
		if n.kind != kindDir {
			return nil, "", invalid(f.Name, "the entry has no file name")
		}
		return nil, "", nil
	}
	if n.kind == kindDir {
		return n, p, nil
	}

	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, "", invalid(f.Name, "the entry uses compression method %d: only stored and deflated entries are supported", f.Method)
	}
	if n.kind == kindSymlink {
		target, err := readSymlinkTarget(f)
		if err != nil {
			return nil, "", err
		}
		n.target = target
		return n, p, nil
	}
	size := f.UncompressedSize64
	if size >= uint64(limits.RatioFloorBytes) && (f.CompressedSize64 == 0 || size/f.CompressedSize64 > uint64(limits.MaxRatio)) {
		return nil, "", invalid(f.Name, "the entry expands from %d to %d bytes, a ratio above %d:1, which marks a zip bomb",
			f.CompressedSize64, size, limits.MaxRatio)
	}
	return n, p, nil
}

func readSymlinkTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxSymlinkBytes {
		return "", invalid(f.Name, "the symlink target is longer than %d bytes", maxSymlinkBytes)
	}
	rc, err := f.Open()
	if err != nil {
		return "", invalid(f.Name, "the entry's data is corrupt or truncated")
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSymlinkBytes+1))
	if err != nil || len(data) > maxSymlinkBytes {
		return "", invalid(f.Name, "the entry's data is corrupt or truncated")
	}
	target := string(data)
	switch {
	case target == "":
		return "", invalid(f.Name, "the symlink has an empty target")
	case strings.ContainsRune(target, 0):
		return "", invalid(f.Name, "the symlink target contains a NUL byte")
	case strings.Contains(target, `\`):
		return "", invalid(f.Name, "the symlink target contains a backslash: use '/' as the separator")
	}
	return target, nil
}

// checkCached fails with a *MissingResourceError for the first resource,
// in path order, that the cache does not have.
func checkCached(resources []Resource, cache *Cache) error {
	sorted := slices.Clone(resources)
	slices.SortFunc(sorted, func(a, b Resource) int { return strings.Compare(a.Path, b.Path) })
	for _, res := range sorted {
		if cache == nil || !cache.Has(res.SHA1, res.Size) {
			return &MissingResourceError{Path: res.Path, SHA1: res.SHA1}
		}
	}
	return nil
}

// write creates dir and the tree in it. Parents sort before their
// children, so one pass in path order creates every directory before its
// contents. Symlinks are created last, so no write goes through one, and
// permissions are applied at the end, deepest directories first, so a
// read-only directory does not block its own contents.
func (t *tree) write(dir string, zr *zip.Reader, cache *Cache) ([]File, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create app directory: %w", err)
	}
	paths := make([]string, 0, len(t.nodes))
	for p := range t.nodes {
		if p != "" {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)

	var files []File
	for _, p := range paths {
		n := t.nodes[p]
		full := filepath.Join(dir, filepath.FromSlash(p))
		switch {
		case n.kind == kindDir:
			if err := os.Mkdir(full, 0o700); err != nil {
				return nil, fmt.Errorf("create directory %s: %w", p, err)
			}
		case n.kind == kindFile && n.resource != nil:
			if err := cache.copyOut(*n.resource, full); err != nil {
				return nil, err
			}
		case n.kind == kindFile:
			file, err := extractFile(zr.File[n.zipIndex], p, full)
			if err != nil {
				return nil, err
			}
			files = append(files, file)
		}
	}

	for _, p := range paths {
		if n := t.nodes[p]; n.kind == kindSymlink {
			if err := os.Symlink(n.target, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return nil, fmt.Errorf("create symlink %s: %w", p, err)
			}
		}
	}

	for i := len(paths) - 1; i >= 0; i-- {
		n := t.nodes[paths[i]]
		if n.kind == kindSymlink {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(paths[i])), n.finalPerm()); err != nil {
			return nil, fmt.Errorf("set mode of %s: %w", paths[i], err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("set mode of app directory: %w", err)
	}
	return files, nil
}

// finalPerm is the permission the node gets on disk, as Assemble
// documents.
func (n *node) finalPerm() fs.FileMode {
	perm := n.perm.Perm()
	if n.kind == kindDir {
		if perm == 0 {
			perm = 0o755
		}
		return perm | 0o700
	}
	if perm == 0 {
		perm = 0o644
	}
	return perm | 0o600
}

// extractFile writes one zip entry to the new file full, hashing it, and
// rejects data that is corrupt or longer than the entry declares.
func extractFile(f *zip.File, p, full string) (File, error) {
	rc, err := f.Open()
	if err != nil {
		return File{}, invalid(f.Name, "the entry's data is corrupt or truncated")
	}
	defer rc.Close()

	out, err := createExclusive(full)
	if err != nil {
		return File{}, err
	}
	hash := sha1.New()
	declared := int64(f.UncompressedSize64)
	n, copyErr := io.Copy(io.MultiWriter(out, hash), io.LimitReader(rc, declared+1))
	if err := out.Close(); err != nil && copyErr == nil {
		return File{}, fmt.Errorf("write %s: %w", p, err)
	}
	var pathErr *fs.PathError
	switch {
	case errors.As(copyErr, &pathErr):
		return File{}, fmt.Errorf("write %s: %w", p, copyErr)
	case copyErr != nil:
		return File{}, invalid(f.Name, "the entry's data is corrupt or truncated")
	case n > declared:
		return File{}, invalid(f.Name, "the entry holds more data than its header declares, which marks a zip bomb")
	case n < declared:
		return File{}, invalid(f.Name, "the entry's data is corrupt or truncated")
	}
	return File{Path: p, SHA1: hex.EncodeToString(hash.Sum(nil)), Size: n}, nil
}

// createExclusive creates a new file for writing, never following a
// symlink and never reusing an existing file.
func createExclusive(full string) (*os.File, error) {
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Base(full), err)
	}
	return f, nil
}

// AddFiles adds the files Assemble wrote under dir to the cache. Empty
// files are skipped, because the cf CLI sends only files larger than
// 0 bytes to resource matching.
func (c *Cache) AddFiles(dir string, files []File) error {
	for _, f := range files {
		if f.Size == 0 {
			continue
		}
		if err := c.Add(filepath.Join(dir, filepath.FromSlash(f.Path)), f.SHA1); err != nil {
			return err
		}
	}
	return nil
}
