package appbits

import (
	"archive/tar"
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// epoch is the modification time of every tar entry Ferry writes, so the
// same tree always gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

// zipEpoch is the earliest time a zip entry can carry (MS-DOS time).
var zipEpoch = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// WriteTar writes the tree under dir to w as a tar stream that is the same
// for the same tree. Paths are relative to dir, with "/" separators and a
// trailing "/" on directories, in lexical order. Every entry has owner and
// group 0 without names, the Unix epoch as its time, and its permission
// bits as on disk. Symlinks stay symlinks, and other file types are an
// error.
func WriteTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if full == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, full)
		if err != nil {
			return err
		}
		return writeTarEntry(tw, full, filepath.ToSlash(rel), d)
	})
	if err != nil {
		return fmt.Errorf("write tar of %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write tar of %s: %w", dir, err)
	}
	return nil
}

func writeTarEntry(tw *tar.Writer, full, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), ModTime: epoch}

	switch {
	case info.IsDir():
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case info.Mode()&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(full); err != nil {
			return err
		}
	case info.Mode().IsRegular():
		hdr.Typeflag = tar.TypeReg
		hdr.Size = info.Size()
	default:
		return fmt.Errorf("%s has unsupported file type %s", name, info.Mode().Type())
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}

	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("%s changed size while it was archived", name)
	}
	return err
}

// WriteZip converts the tar stream r, as WriteTar writes it, to a zip
// archive on w in the form the cf CLI uploads: directory entries, Unix
// modes in the external attributes, and symlinks as entries holding their
// target. Entries of other types, and names that are absolute or contain
// "..", are skipped.
func WriteZip(w io.Writer, r io.Reader) error {
	tr := tar.NewReader(r)
	zw := zip.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read package layer: %w", err)
		}
		if err := writeZipEntry(zw, tr, hdr); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write zip: %w", err)
	}
	return nil
}

func writeZipEntry(zw *zip.Writer, tr *tar.Reader, hdr *tar.Header) error {
	name := path.Clean(hdr.Name)
	if _, _, perr := cleanPath(hdr.Name); perr != nil || name == "." {
		return nil
	}
	perm := fs.FileMode(hdr.Mode).Perm()
	zh := &zip.FileHeader{Name: name, Modified: zipEpoch}
	switch hdr.Typeflag {
	case tar.TypeDir:
		zh.Name += "/"
		zh.Method = zip.Store
		zh.SetMode(fs.ModeDir | perm)
	case tar.TypeSymlink:
		zh.Method = zip.Store
		zh.SetMode(fs.ModeSymlink | 0o777)
	case tar.TypeReg:
		zh.Method = zip.Deflate
		zh.SetMode(perm)
	default:
		return nil
	}

	out, err := zw.CreateHeader(zh)
	if err != nil {
		return fmt.Errorf("write zip entry %s: %w", name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		_, err = io.WriteString(out, hdr.Linkname)
	case tar.TypeReg:
		_, err = io.Copy(out, tr)
	}
	if err != nil {
		return fmt.Errorf("write zip entry %s: %w", name, err)
	}
	return nil
}
