package appbits

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// zipEntry describes one entry of a test zip. A zero mode means a regular
// file with mode 0644. Modes go into the Unix external attributes, as the
// cf CLI writes them.
type zipEntry struct {
	name   string
	mode   fs.FileMode
	body   string
	method uint16
}

func buildZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		method := e.method
		if method == 0 && !mode.IsDir() {
			method = zip.Deflate
		}
		hdr := &zip.FileHeader{Name: e.name, Method: method}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "package.zip")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// treeEntry is what one path of an assembled directory looks like on disk.
type treeEntry struct {
	Mode   fs.FileMode
	Body   string
	Target string
}

func readTree(t testing.TB, dir string) map[string]treeEntry {
	t.Helper()
	got := map[string]treeEntry{}
	err := filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil || full == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, full)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := treeEntry{Mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.Target, err = os.Readlink(full)
		case info.Mode().IsRegular():
			var data []byte
			data, err = os.ReadFile(full)
			e.Body = string(data)
		}
		got[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAssembleKeepsModesAndSymlinks(t *testing.T) {
	cache := NewCache(t.TempDir())
	cachedSrc := filepath.Join(t.TempDir(), "cached")
	if err := os.WriteFile(cachedSrc, []byte("cached content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cache.Add(cachedSrc, sum("cached content")); err != nil {
		t.Fatal(err)
	}

	zipPath := writeTemp(t, buildZip(t,
		zipEntry{name: "run.sh", mode: 0o755, body: "#!/bin/sh\n"},
		zipEntry{name: "sub/", mode: fs.ModeDir | 0o700},
		zipEntry{name: "sub/data.txt", mode: 0o640, body: "data"},
		zipEntry{name: "sub/empty", mode: 0o644},
		zipEntry{name: "deep/a/b.txt", mode: 0o444, body: "b"},
		zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "sub/data.txt"},
		zipEntry{name: "sub/up", mode: fs.ModeSymlink | 0o777, body: "../run.sh"},
	))
	resources := []Resource{{Path: "lib/cached.txt", Mode: 0o644, SHA1: sum("cached content"), Size: 14}}
	dir := filepath.Join(t.TempDir(), "app")

	files, err := Assemble(zipPath, resources, cache, dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]treeEntry{
		"run.sh":         {Mode: 0o755, Body: "#!/bin/sh\n"},
		"sub":            {Mode: fs.ModeDir | 0o700},
		"sub/data.txt":   {Mode: 0o640, Body: "data"},
		"sub/empty":      {Mode: 0o644},
		"sub/up":         {Mode: fs.ModeSymlink | 0o777, Target: "../run.sh"},
		"deep":           {Mode: fs.ModeDir | 0o755},
		"deep/a":         {Mode: fs.ModeDir | 0o755},
		"deep/a/b.txt":   {Mode: 0o644, Body: "b"},
		"link":           {Mode: fs.ModeSymlink | 0o777, Target: "sub/data.txt"},
		"lib":            {Mode: fs.ModeDir | 0o755},
		"lib/cached.txt": {Mode: 0o644, Body: "cached content"},
	}
	if diff := cmp.Diff(want, readTree(t, dir)); diff != "" {
		t.Errorf("app directory (-want +got):\n%s", diff)
	}

	wantFiles := []File{
		{Path: "deep/a/b.txt", SHA1: sum("b"), Size: 1},
		{Path: "run.sh", SHA1: sum("#!/bin/sh\n"), Size: 10},
		{Path: "sub/data.txt", SHA1: sum("data"), Size: 4},
		{Path: "sub/empty", SHA1: sum(""), Size: 0},
	}
	if diff := cmp.Diff(wantFiles, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestAssembleWithoutZip(t *testing.T) {
	cache := NewCache(t.TempDir())
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("only cached"), 0o600)
	if err := cache.Add(src, sum("only cached")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "app")
	_, err := Assemble("", []Resource{{Path: "a/b.txt", Mode: 0o755, SHA1: sum("only cached"), Size: 11}}, cache, dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]treeEntry{
		"a":       {Mode: fs.ModeDir | 0o755},
		"a/b.txt": {Mode: 0o755, Body: "only cached"},
	}
	if diff := cmp.Diff(want, readTree(t, dir)); diff != "" {
		t.Errorf("app directory (-want +got):\n%s", diff)
	}
}

func zeros(n int) string { return string(make([]byte, n)) }

func TestAssembleRejects(t *testing.T) {
	valid := buildZip(t, zipEntry{name: "a.txt", body: strings.Repeat("hello ", 100)})
	corrupt := bytes.Clone(valid)
	// Flip bytes inside the deflated data of the only entry, leaving its
	// header and the central directory intact.
	for i := 40; i < 50; i++ {
		corrupt[i] ^= 0xff
	}

	tests := []struct {
		name      string
		zip       []byte
		resources []Resource
		limits    Limits
		want      string
	}{
		{name: "zip slip", zip: buildZip(t, zipEntry{name: "../evil.sh", body: "x"}),
			want: "entry '../evil.sh': the path contains '..'"},
		{name: "zip slip inside", zip: buildZip(t, zipEntry{name: "sub/../../evil.sh", body: "x"}),
			want: "entry 'sub/../../evil.sh': the path contains '..'"},
		{name: "absolute path", zip: buildZip(t, zipEntry{name: "/etc/cron.d/x", body: "x"}),
			want: "entry '/etc/cron.d/x': the path is absolute"},
		{name: "drive letter", zip: buildZip(t, zipEntry{name: "C:/x", body: "x"}),
			want: "entry 'C:/x': the path starts with a drive letter"},
		{name: "backslash", zip: buildZip(t, zipEntry{name: `..\evil`, body: "x"}),
			want: `entry '..\evil': the path contains a backslash`},
		{name: "device file", zip: buildZip(t, zipEntry{name: "dev", mode: fs.ModeDevice | 0o644}),
			want: "entry 'dev': the entry is a device file"},
		{name: "char device", zip: buildZip(t, zipEntry{name: "tty", mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}),
			want: "entry 'tty': the entry is a device file"},
		{name: "fifo", zip: buildZip(t, zipEntry{name: "pipe", mode: fs.ModeNamedPipe | 0o644}),
			want: "entry 'pipe': the entry is a FIFO"},
		{name: "socket", zip: buildZip(t, zipEntry{name: "sock", mode: fs.ModeSocket | 0o644}),
			want: "entry 'sock': the entry is a socket"},
		{name: "symlink escape", zip: buildZip(t, zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "../../etc/passwd"}),
			want: "entry 'link': the symlink target '../../etc/passwd' points outside the app directory"},
		{name: "symlink escape from subdirectory", zip: buildZip(t,
			zipEntry{name: "a/b/link", mode: fs.ModeSymlink | 0o777, body: "../../../x"}),
			want: "entry 'a/b/link': the symlink target '../../../x' points outside"},
		{name: "absolute symlink", zip: buildZip(t, zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "/etc/passwd"}),
			want: "entry 'link': the symlink target '/etc/passwd' is absolute"},
		{name: "symlink escape through symlink", zip: buildZip(t,
			zipEntry{name: "here", mode: fs.ModeSymlink | 0o777, body: "."},
			zipEntry{name: "out", mode: fs.ModeSymlink | 0o777, body: "here/.."}),
			want: "the symlink target 'here/..' points outside the app directory"},
		{name: "symlink loop", zip: buildZip(t,
			zipEntry{name: "a", mode: fs.ModeSymlink | 0o777, body: "b/x"},
			zipEntry{name: "b", mode: fs.ModeSymlink | 0o777, body: "a/y"}),
			want: "is part of a symlink loop"},
		{name: "file inside symlink", zip: buildZip(t,
			zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "sub"},
			zipEntry{name: "link/file", body: "x"}),
			want: "entry 'link/file': the path is inside 'link', which is a symlink"},
		{name: "duplicate entry", zip: buildZip(t, zipEntry{name: "a", body: "1"}, zipEntry{name: "a", body: "2"}),
			want: "entry 'a': the path appears more than once"},
		{name: "file and directory", zip: buildZip(t, zipEntry{name: "a/b", body: "1"}, zipEntry{name: "a", body: "2"}),
			want: "entry 'a': the path is both a directory and a file"},
		{name: "zip bomb", zip: buildZip(t, zipEntry{name: "zeros.bin", body: zeros(4 << 20)}),
			want: "entry 'zeros.bin': the entry expands from"},
		{name: "truncated zip", zip: valid[:len(valid)/2],
			want: "the file is not a valid zip archive, or it is truncated"},
		{name: "corrupt data", zip: corrupt,
			want: "entry 'a.txt': the entry's data is corrupt or truncated"},
		{name: "empty file", zip: []byte{},
			want: "the zip file is empty"},
		{name: "not a zip", zip: []byte("this is not a zip file at all"),
			want: "the file is not a valid zip archive"},
		{name: "encrypted entry", zip: encryptedZip(t),
			want: "entry 'secret.txt': the entry is encrypted"},
		{name: "too many entries", zip: buildZip(t, zipEntry{name: "a"}, zipEntry{name: "b"}, zipEntry{name: "c"}),
			limits: Limits{MaxEntries: 2}, want: "the upload has 3 entries, more than the maximum of 2"},
		{name: "app too large", zip: buildZip(t, zipEntry{name: "a", body: "12345"}, zipEntry{name: "b", body: "678"}),
			limits: Limits{MaxAppBytes: 7}, want: "entry 'b': the app would be larger than the maximum of 7 bytes"},
		{name: "zip too large", zip: valid,
			limits: Limits{MaxZipBytes: 10}, want: "more than the maximum of 10 bytes"},
		{name: "resource escapes", resources: []Resource{{Path: "../x", Mode: 0o644, SHA1: sum("x"), Size: 1}},
			want: "entry '../x': the path contains '..'"},
		{name: "resource collides with entry", zip: buildZip(t, zipEntry{name: "a", body: "1"}),
			resources: []Resource{{Path: "a", Mode: 0o644, SHA1: sum("1"), Size: 1}},
			want:      "entry 'a': the path appears more than once"},
		{name: "resource inside file", zip: buildZip(t, zipEntry{name: "a", body: "1"}),
			resources: []Resource{{Path: "a/b", Mode: 0o644, SHA1: sum("1"), Size: 1}},
			want:      "entry 'a/b': the path is inside 'a', which is a file"},
		{name: "resource not cached", resources: []Resource{{Path: "lib/x.js", Mode: 0o644, SHA1: sum("nope"), Size: 4}},
			want: "resource 'lib/x.js' with SHA-1 " + sum("nope") + " is not in the resource cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			zipPath := ""
			if tc.zip != nil {
				zipPath = writeTemp(t, tc.zip)
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "app")

			_, err := Assemble(zipPath, tc.resources, NewCache(t.TempDir()), dir, tc.limits)
			if err == nil {
				t.Fatalf("Assemble succeeded, want error containing %q", tc.want)
			}
			var invalidErr *InvalidError
			var missingErr *MissingResourceError
			if !errors.As(err, &invalidErr) && !errors.As(err, &missingErr) {
				t.Errorf("error %v (%T) is neither *InvalidError nor *MissingResourceError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
			if tc.name != "corrupt data" {
				if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("app directory exists after a rejected upload (stat error %v)", err)
				}
			}
		})
	}
}

// encryptedZip is a zip whose only entry has the "encrypted" flag set.
func encryptedZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "secret.txt", Method: zip.Store, Flags: 0x1}
	hdr.SetMode(0o644)
	w, err := zw.CreateRaw(hdr)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("0123456789ab"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAssembleRejectsEntryLongerThanDeclared(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	body := "this body is longer than the header says"
	hdr := &zip.FileHeader{Name: "liar.txt", Method: zip.Store, UncompressedSize64: 4, CompressedSize64: uint64(len(body))}
	hdr.SetMode(0o644)
	w, err := zw.CreateRaw(hdr)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	zw.Close()

	_, err = Assemble(writeTemp(t, buf.Bytes()), nil, NewCache(t.TempDir()), filepath.Join(t.TempDir(), "app"), Limits{})
	var invalidErr *InvalidError
	if !errors.As(err, &invalidErr) || invalidErr.Entry != "liar.txt" {
		t.Errorf("Assemble error = %v, want an *InvalidError for liar.txt", err)
	}
}

func TestCacheChecksumMismatchIsMissing(t *testing.T) {
	cacheDir := t.TempDir()
	cache := NewCache(cacheDir)
	key := sum("original")
	// Content that does not match its key, as after disk corruption.
	os.MkdirAll(filepath.Join(cacheDir, key[:2]), 0o700)
	if err := os.WriteFile(filepath.Join(cacheDir, key[:2], key), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := Assemble("", []Resource{{Path: "f", Mode: 0o644, SHA1: key, Size: 8}}, cache, filepath.Join(t.TempDir(), "app"), Limits{})
	var missing *MissingResourceError
	if !errors.As(err, &missing) {
		t.Fatalf("Assemble error = %v, want *MissingResourceError", err)
	}
	if cache.Has(key, 8) {
		t.Error("the mismatching cache entry is still there")
	}
}

func TestCacheAdd(t *testing.T) {
	cache := NewCache(t.TempDir())
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("content"), 0o600)

	if err := cache.Add(src, sum("other")); err == nil {
		t.Error("Add with a wrong SHA-1 succeeded")
	}
	if cache.Has(sum("other"), 7) {
		t.Error("a rejected Add left an entry")
	}
	if err := cache.Add(src, "../../etc/passwd"); err == nil {
		t.Error("Add with a path as key succeeded")
	}
	if err := cache.Add(src, sum("content")); err != nil {
		t.Fatal(err)
	}
	if !cache.Has(sum("content"), 7) {
		t.Error("Has = false after Add")
	}
	if cache.Has(sum("content"), 8) {
		t.Error("Has = true for the wrong size")
	}
	if err := cache.Add(src, sum("content")); err != nil {
		t.Errorf("second Add = %v, want nil", err)
	}
}

func TestWriteTarIsReproducible(t *testing.T) {
	zipPath := writeTemp(t, buildZip(t,
		zipEntry{name: "b.txt", body: "b"},
		zipEntry{name: "a/", mode: fs.ModeDir | 0o755},
		zipEntry{name: "a/x.sh", mode: 0o755, body: "x"},
		zipEntry{name: "l", mode: fs.ModeSymlink | 0o777, body: "b.txt"},
	))
	var tars [2]bytes.Buffer
	for i := range tars {
		dir := filepath.Join(t.TempDir(), "app")
		if _, err := Assemble(zipPath, nil, nil, dir, Limits{}); err != nil {
			t.Fatal(err)
		}
		if err := WriteTar(&tars[i], dir); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(tars[0].Bytes(), tars[1].Bytes()) {
		t.Error("two tars of equal trees differ")
	}
}

func TestZipTarRoundTrip(t *testing.T) {
	zipPath := writeTemp(t, buildZip(t,
		zipEntry{name: "run.sh", mode: 0o755, body: "#!/bin/sh\n"},
		zipEntry{name: "sub/", mode: fs.ModeDir | 0o750},
		zipEntry{name: "sub/data.txt", mode: 0o600, body: "data"},
		zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "sub/data.txt"},
	))
	first := filepath.Join(t.TempDir(), "app")
	if _, err := Assemble(zipPath, nil, nil, first, Limits{}); err != nil {
		t.Fatal(err)
	}
	var tarBuf, zipBuf bytes.Buffer
	if err := WriteTar(&tarBuf, first); err != nil {
		t.Fatal(err)
	}
	if err := WriteZip(&zipBuf, &tarBuf); err != nil {
		t.Fatal(err)
	}

	second := filepath.Join(t.TempDir(), "app")
	if _, err := Assemble(writeTemp(t, zipBuf.Bytes()), nil, nil, second, Limits{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(readTree(t, first), readTree(t, second)); diff != "" {
		t.Errorf("tree after zip → tar → zip (-first +second):\n%s", diff)
	}
}
