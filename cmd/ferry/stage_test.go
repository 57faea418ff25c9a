package main

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type tarEntry struct {
	name     string
	typeflag byte
	mode     int64
	body     string
	linkname string
}

func tarOf(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: e.mode, Linkname: e.linkname}
		if e.typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tree lists dir as "path mode [-> target | = body]" lines.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + info.Mode().String()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.Mode().IsRegular():
			body, _ := os.ReadFile(p)
			line += " = " + string(body)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnpack(t *testing.T) {
	dir := t.TempDir()
	data := tarOf(t,
		tarEntry{name: "./", typeflag: tar.TypeDir, mode: 0o755},
		tarEntry{name: "bin/", typeflag: tar.TypeDir, mode: 0o750},
		tarEntry{name: "bin/run", typeflag: tar.TypeReg, mode: 0o4755, body: "#!/bin/sh\n"},
		tarEntry{name: "public/index.html", typeflag: tar.TypeReg, mode: 0o644, body: "hi"},
		tarEntry{name: "public/current", typeflag: tar.TypeSymlink, linkname: "index.html"},
		tarEntry{name: "public/up", typeflag: tar.TypeSymlink, linkname: "../bin/run"},
		tarEntry{name: "copy", typeflag: tar.TypeLink, linkname: "public/index.html"},
		tarEntry{name: "readonly/", typeflag: tar.TypeDir, mode: 0o555},
		tarEntry{name: "readonly/file", typeflag: tar.TypeReg, mode: 0o600, body: "x"},
		tarEntry{name: "public/index.html", typeflag: tar.TypeReg, mode: 0o640, body: "replaced"},
	)
	n, err := unpack(bytes.NewReader(data), dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Errorf("entries = %d, want 9", n)
	}
	want := []string{
		"bin drwxr-x---",
		"bin/run -rwxr-xr-x = #!/bin/sh\n",
		"copy -rw-r--r-- = hi",
		"public drwxr-xr-x",
		"public/current Lrwxrwxrwx -> index.html",
		"public/index.html -rw-r----- = replaced",
		"public/up Lrwxrwxrwx -> ../bin/run",
		"readonly dr-xr-xr-x",
		"readonly/file -rw------- = x",
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("unpacked tree (-want +got):\n%s", diff)
	}
}

func TestUnpackRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry tarEntry
		want  string
	}{
		{"absolute path", tarEntry{name: "/etc/passwd", typeflag: tar.TypeReg, mode: 0o644, body: "x"},
			"entry /etc/passwd has an absolute path"},
		{"parent path", tarEntry{name: "a/../../escape", typeflag: tar.TypeReg, mode: 0o644, body: "x"},
			"entry a/../../escape leaves the app directory"},
		{"absolute symlink", tarEntry{name: "link", typeflag: tar.TypeSymlink, linkname: "/etc/shadow"},
			`symbolic link link points to "/etc/shadow", outside the app directory`},
		{"climbing symlink", tarEntry{name: "sub/link", typeflag: tar.TypeSymlink, linkname: "../../outside"},
			`symbolic link sub/link points to "../../outside", outside the app directory`},
		{"climbing hard link", tarEntry{name: "link", typeflag: tar.TypeLink, linkname: "../outside"},
			"hard link link: entry ../outside leaves the app directory"},
		{"device", tarEntry{name: "dev", typeflag: tar.TypeChar, mode: 0o644},
			`entry dev has type '3': packages may contain only files, directories and links`},
		{"fifo", tarEntry{name: "pipe", typeflag: tar.TypeFifo, mode: 0o644},
			`entry pipe has type '6': packages may contain only files, directories and links`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "workspace")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := unpack(bytes.NewReader(tarOf(t, tc.entry)), dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
			if got := tree(t, parent); len(got) != 1 {
				t.Errorf("files written: %v", got)
			}
		})
	}
}

// TestUnpackSymlinkedDirectory checks that a file entry below a symbolic
// link to a directory outside cannot be written, even when the link
// itself slipped in, because every write goes through os.Root.
func TestUnpackSymlinkedDirectory(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "workspace")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(parent, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	_, err := unpack(bytes.NewReader(tarOf(t, tarEntry{name: "out/escaped", typeflag: tar.TypeReg, mode: 0o644, body: "x"})), dir)
	if err == nil {
		t.Error("a file was written through a symbolic link that leaves the directory")
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); !os.IsNotExist(err) {
		t.Errorf("escaped file exists: %v", err)
	}
}

func TestWritePlatformEnv(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env.json")
	if err := os.WriteFile(envFile, []byte(`{"GREETING":"hello","EMPTY":"","MULTI":"a\nb"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	platform := filepath.Join(dir, "platform")
	n, err := writePlatformEnv(envFile, platform)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("variables = %d, want 3", n)
	}
	want := []string{"env drwxr-xr-x", "env/EMPTY -rw-r----- = ", "env/GREETING -rw-r----- = hello", "env/MULTI -rw-r----- = a\nb"}
	if diff := cmp.Diff(want, tree(t, platform)); diff != "" {
		t.Errorf("platform dir (-want +got):\n%s", diff)
	}

	for _, bad := range []string{`{"../x":"v"}`, `{"A=B":"v"}`, `{"":"v"}`, `{"A":1}`, `[]`} {
		if err := os.WriteFile(envFile, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := writePlatformEnv(envFile, filepath.Join(t.TempDir(), "p")); err == nil {
			t.Errorf("staging environment %s was accepted", bad)
		} else if strings.Contains(err.Error(), `"v"`) {
			t.Errorf("error %q quotes a value", err)
		}
	}
}

func TestWriteOrder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "order.toml")
	if err := writeOrder(file, []string{"ferry/python@0.1.0", "ferry/procfile@1.2.3+build.4"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "[[order]]\n" +
		"  [[order.group]]\n    id = \"ferry/python\"\n    version = \"0.1.0\"\n" +
		"  [[order.group]]\n    id = \"ferry/procfile\"\n    version = \"1.2.3+build.4\"\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("order.toml (-want +got):\n%s", diff)
	}
}

func TestParseStageFetchRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", "/w"}, "--image is required"},
		{[]string{"--image", "x"}, "--dir is required"},
		{[]string{"--image", "x", "--dir", "/w", "--buildpack", "a@1"}, "--buildpack needs --order-file"},
		{[]string{"--image", "x", "--dir", "/w", "--order-file", "/o", "--buildpack", "a"}, `--buildpack "a" is invalid`},
		{[]string{"--image", "x", "--dir", "/w", "extra"}, "unexpected arguments"},
	} {
		_, err := parseStageFetch(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestStageFetch(t *testing.T) {
	server := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(server.Close)
	ref := strings.TrimPrefix(server.URL, "http://") + "/ferry/packages/p1:latest"
	data := tarOf(t,
		tarEntry{name: "app.py", typeflag: tar.TypeReg, mode: 0o755, body: "print('hi')\n"},
		tarEntry{name: "Procfile", typeflag: tar.TypeReg, mode: 0o644, body: "web: python3 app.py\n"},
	)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	workspace, platform, layers := filepath.Join(dir, "workspace"), filepath.Join(dir, "platform"), filepath.Join(dir, "layers")
	for _, d := range []string{workspace, platform, layers} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envFile := filepath.Join(dir, "env.json")
	if err := os.WriteFile(envFile, []byte(`{"SECRET_TOKEN":"s3cr3t-value"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	err = run([]string{"stage-fetch", "--image", ref, "--dir", workspace, "--env-file", envFile, "--platform-dir", platform,
		"--order-file", filepath.Join(layers, "order.toml"), "--buildpack", "ferry/python@0.1.0"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("stage-fetch: %v\n%s", err, stderr.String())
	}
	if diff := cmp.Diff([]string{"Procfile -rw-r--r-- = web: python3 app.py\n", "app.py -rwxr-xr-x = print('hi')\n"}, tree(t, workspace)); diff != "" {
		t.Errorf("workspace (-want +got):\n%s", diff)
	}
	if body, err := os.ReadFile(filepath.Join(platform, "env", "SECRET_TOKEN")); err != nil || string(body) != "s3cr3t-value" {
		t.Errorf("platform env file = %q, %v", body, err)
	}
	if _, err := os.Stat(filepath.Join(layers, "order.toml")); err != nil {
		t.Errorf("order file: %v", err)
	}
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "s3cr3t-value") {
		t.Errorf("output shows an environment value:\n%s", out)
	}
	for _, line := range []string{"Downloading the app package " + ref, "Unpacked 2 entries into " + workspace,
		"Wrote 1 staging environment variables", "Buildpacks: ferry/python@0.1.0"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}

	err = run([]string{"stage-fetch", "--image", strings.TrimSuffix(ref, "p1:latest") + "missing:latest", "--dir", t.TempDir()}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "stage-fetch: pull ") {
		t.Errorf("missing image: %v", err)
	}
}
