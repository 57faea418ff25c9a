// Package appbits owns app bits on their way from a cf push to a package
// image. It validates the uploaded zip against zip slip, zip bombs and
// special files, and rebuilds the app directory from the zip plus files
// from the content-addressed resource cache, which it also keeps. It
// converts the directory to a reproducible tar stream, and a tar stream
// back to a zip.
package appbits

import (
	"fmt"
	"io/fs"
)

// Limits bound what one upload may contain. A zero field means the
// corresponding DefaultLimits value.
type Limits struct {
	// MaxZipBytes is the largest zip file accepted, compressed.
	MaxZipBytes int64
	// MaxEntries is the largest number of zip entries plus matched
	// resources.
	MaxEntries int
	// MaxAppBytes is the largest total size of the app's files,
	// uncompressed, counting matched resources.
	MaxAppBytes int64
	// MaxRatio is the largest uncompressed-to-compressed size ratio of one
	// zip entry that is at least RatioFloorBytes long uncompressed.
	MaxRatio int64
	// RatioFloorBytes exempts small entries from MaxRatio: a small file of
	// repeated bytes compresses very well and costs nothing to extract.
	RatioFloorBytes int64
}

// DefaultLimits are the limits Ferry applies unless configured otherwise.
// MaxAppBytes is Cloud Controller's default max_package_size (1 GiB).
// DEFLATE reaches ratios near 1000:1 only on degenerate input, and source
// code and assets stay far below 100:1.
func DefaultLimits() Limits {
	return Limits{
		MaxZipBytes:     1 << 30,
		MaxEntries:      100_000,
		MaxAppBytes:     1 << 30,
		MaxRatio:        100,
		RatioFloorBytes: 1 << 20,
	}
}

// WithDefaults returns l with its zero fields set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxZipBytes <= 0 {
		l.MaxZipBytes = d.MaxZipBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxAppBytes <= 0 {
		l.MaxAppBytes = d.MaxAppBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.RatioFloorBytes <= 0 {
		l.RatioFloorBytes = d.RatioFloorBytes
	}
	return l
}

// Resource is a file the client did not upload because the resource cache
// already has its content: a matched resource of cf push.
type Resource struct {
	// Path is relative to the app directory, with "/" separators.
	Path string
	// Mode holds the file's permission bits.
	Mode fs.FileMode
	// SHA1 is the lowercase hex SHA-1 of the content.
	SHA1 string
	Size int64
}

// File is a regular file of an assembled app directory.
type File struct {
	Path string
	SHA1 string
	Size int64
}

// InvalidError reports an upload that Ferry rejects. Its message names the
// problem and, when there is one, the offending entry. It contains no
// internal paths, so it may be shown to clients.
type InvalidError struct {
	// Entry is the zip entry or resource path at fault, or "".
	Entry   string
	Problem string
}

func (e *InvalidError) Error() string {
	if e.Entry == "" {
		return e.Problem
	}
	return fmt.Sprintf("entry '%s': %s", e.Entry, e.Problem)
}

func invalid(entry, format string, args ...any) *InvalidError {
	return &InvalidError{Entry: entry, Problem: fmt.Sprintf(format, args...)}
}

// MissingResourceError reports a matched resource whose content is not in
// the resource cache, or no longer matches its checksum.
type MissingResourceError struct {
	Path string
	SHA1 string
}

func (e *MissingResourceError) Error() string {
	return fmt.Sprintf("resource '%s' with SHA-1 %s is not in the resource cache", e.Path, e.SHA1)
}
