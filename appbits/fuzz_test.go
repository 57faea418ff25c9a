package appbits

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzAssemble feeds arbitrary bytes to Assemble as an upload. Whatever the
// input, Assemble must not panic, must write nothing outside the app
// directory, and must leave no symlink that resolves outside it.
func FuzzAssemble(f *testing.F) {
	f.Add(buildZip(f, zipEntry{name: "a.txt", body: "a"}, zipEntry{name: "sub/", mode: fs.ModeDir | 0o755}))
	f.Add(buildZip(f, zipEntry{name: "link", mode: fs.ModeSymlink | 0o777, body: "../x"}))
	f.Add(buildZip(f,
		zipEntry{name: "here", mode: fs.ModeSymlink | 0o777, body: "."},
		zipEntry{name: "out", mode: fs.ModeSymlink | 0o777, body: "here/.."}))
	f.Add(buildZip(f,
		zipEntry{name: "d", mode: fs.ModeSymlink | 0o777, body: "sub"},
		zipEntry{name: "sub/", mode: fs.ModeDir | 0o500},
		zipEntry{name: "sub/f", mode: 0o000, body: "f"}))
	f.Add(buildZip(f, zipEntry{name: "../../escape", body: "x"}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))

	f.Fuzz(func(t *testing.T, data []byte) {
		zipPath := writeTemp(t, data)
		parent := t.TempDir()
		dir := filepath.Join(parent, "app")

		_, err := Assemble(zipPath, nil, NewCache(filepath.Join(parent, "cache")), dir,
			Limits{MaxZipBytes: 1 << 20, MaxEntries: 1000, MaxAppBytes: 1 << 20})
		var invalidErr *InvalidError
		if err != nil && !errors.As(err, &invalidErr) {
			t.Fatalf("Assemble returned a non-validation error: %v", err)
		}

		entries, readErr := os.ReadDir(parent)
		if readErr != nil {
			t.Fatal(readErr)
		}
		for _, e := range entries {
			if e.Name() != "app" {
				t.Errorf("Assemble wrote %q next to the app directory", e.Name())
			}
		}
		if err != nil {
			return
		}

		realDir, _ := filepath.EvalSymlinks(dir)
		walkErr := filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			resolved, evalErr := filepath.EvalSymlinks(full)
			if evalErr != nil {
				// A dangling symlink points at nothing that exists.
				return nil
			}
			if resolved != realDir && !strings.HasPrefix(resolved, realDir+string(filepath.Separator)) {
				t.Errorf("symlink %s resolves to %s, outside the app directory", full, resolved)
			}
			return nil
		})
		if walkErr != nil {
			t.Fatal(walkErr)
		}
	})
}
