package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writeHostFile writes content to a new file in dir with the given mode and
// returns its path.
func writeHostFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
	return file
}

// buildTestArchive runs `imagetool build` with a binary and a config file and
// returns the archive path and the reference with digest that build printed.
func buildTestArchive(t *testing.T, dir, archiveName string) (string, string) {
	t.Helper()
	binary := writeHostFile(t, dir, "pause", "#!binary", 0o755)
	config := writeHostFile(t, dir, "settings", "key=value\n", 0o600)
	archive := filepath.Join(dir, archiveName)

	var stdout, stderr bytes.Buffer
	err := run([]string{"build", "-o", archive, "-ref", "127.0.0.1:5000/pause:3.10",
		"-add", binary + "=/pause", "-add", config + "=/etc/ferry/settings",
		"-entrypoint", "/pause", "-env", "A=1", "-user", "65535:65535", "-workdir", "/",
		"-platform", "linux/arm64/v8"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("build: %v (stderr: %s)", err, stderr.String())
	}
	return archive, strings.TrimSpace(stdout.String())
}

func TestBuildArchiveReadsAsLayoutAndDockerSave(t *testing.T) {
	dir := t.TempDir()
	archive, printed := buildTestArchive(t, dir, "pause.tar")

	fromLayout, err := loadSource(archive, t.TempDir())
	if err != nil {
		t.Fatalf("load archive as OCI layout: %v", err)
	}
	digest, err := fromLayout.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1:5000/pause:3.10@" + digest.String(); printed != want {
		t.Errorf("build printed %q, want %q", printed, want)
	}

	image, ok := fromLayout.(v1.Image)
	if !ok {
		t.Fatalf("layout content is %T, want an image", fromLayout)
	}
	config, err := image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/pause"}, config.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"A=1"}, config.Config.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if config.Config.User != "65535:65535" {
		t.Errorf("user = %q, want 65535:65535", config.Config.User)
	}
	if got := config.Platform().String(); got != "linux/arm64/v8" {
		t.Errorf("platform = %q, want linux/arm64/v8", got)
	}
	if !config.Created.Time.Equal(epoch) {
		t.Errorf("created = %v, want the Unix epoch", config.Created.Time)
	}

	dockerImage, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatalf("read archive as docker-save: %v", err)
	}
	dockerConfig, err := dockerImage.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	layoutConfig, err := image.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if dockerConfig != layoutConfig {
		t.Errorf("docker-save config digest %s, OCI layout config digest %s", dockerConfig, layoutConfig)
	}
}

func TestBuildLayerContents(t *testing.T) {
	archive, _ := buildTestArchive(t, t.TempDir(), "pause.tar")
	content, err := loadSource(archive, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layers, err := content.(v1.Image).Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	type entry struct {
		Name  string
		Mode  int64
		UID   int
		GID   int
		Body  string
		Epoch bool
	}
	var got []entry
	tr := tar.NewReader(rc)
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{header.Name, header.Mode, header.Uid, header.Gid, string(body), header.ModTime.Equal(epoch)})
	}
	want := []entry{
		{"etc/", 0o755, 0, 0, "", true},
		{"etc/ferry/", 0o755, 0, 0, "", true},
		{"etc/ferry/settings", 0o600, 0, 0, "key=value\n", true},
		{"pause", 0o755, 0, 0, "#!binary", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	first, firstRef := buildTestArchive(t, dir, "first.tar")
	second, secondRef := buildTestArchive(t, dir, "second.tar")
	if firstRef != secondRef {
		t.Errorf("two builds printed %q and %q", firstRef, secondRef)
	}
	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two builds from the same inputs wrote different archives")
	}
}

func TestPushSources(t *testing.T) {
	server := httptest.NewServer(registry.New())
	defer server.Close()
	host := strings.TrimPrefix(server.URL, "http://")
	dir := t.TempDir()

	archive, _ := buildTestArchive(t, dir, "pause.tar")
	layoutDir := t.TempDir()
	if err := extractLayout(archive, layoutDir); err != nil {
		t.Fatal(err)
	}
	dockerSave := filepath.Join(dir, "docker-save.tar")
	randomImage, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(dockerSave, name.MustParseReference("example.test/random:1"), randomImage); err != nil {
		t.Fatal(err)
	}

	for _, source := range []string{archive, layoutDir, dockerSave} {
		t.Run(filepath.Base(source), func(t *testing.T) {
			content, err := loadSource(source, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			want, err := content.Digest()
			if err != nil {
				t.Fatal(err)
			}

			var stdout, stderr bytes.Buffer
			ref := host + "/ferry/" + strings.TrimSuffix(filepath.Base(source), ".tar") + ":v1"
			if err := run([]string{"push", source, ref}, &stdout, &stderr); err != nil {
				t.Fatalf("push: %v (stderr: %s)", err, stderr.String())
			}
			if got := strings.TrimSpace(stdout.String()); got != strings.TrimSuffix(ref, ":v1")+"@"+want.String() {
				t.Errorf("push printed %q, want the repository with digest %s", got, want)
			}

			pullRef, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			pulled, err := remote.Image(pullRef, remote.WithContext(context.Background()))
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			got, err := pulled.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("registry digest %s, source digest %s", got, want)
			}
		})
	}
}

func TestExtractLayoutRejectsEscapingEntries(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "evil.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../blobs/sha256/x", Mode: 0o644, Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	target := filepath.Join(dir, "out")
	if err := extractLayout(archive, target); err == nil {
		t.Error("extractLayout accepted an entry named ../blobs/sha256/x")
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an entry was written outside the target directory (stat: %v)", err)
	}
}

func TestParseFileMapping(t *testing.T) {
	got, err := parseFileMapping("/tmp/pause=/usr/bin/../pause")
	if err != nil {
		t.Fatal(err)
	}
	if want := (fileMapping{source: "/tmp/pause", target: "/usr/pause"}); got != want {
		t.Errorf("parseFileMapping = %+v, want %+v", got, want)
	}

	for _, value := range []string{"/tmp/pause", "=/pause", "/tmp/pause=", "/tmp/pause=pause", "/tmp/pause=/"} {
		if _, err := parseFileMapping(value); err == nil {
			t.Errorf("parseFileMapping(%q) succeeded, want an error", value)
		}
	}
}

func TestLayerTarRejectsFileAsParent(t *testing.T) {
	dir := t.TempDir()
	file := writeHostFile(t, dir, "f", "x", 0o644)
	_, err := layerTar([]fileMapping{{source: file, target: "/a"}, {source: file, target: "/a/b"}})
	if err == nil {
		t.Error("layerTar accepted /a as both a file and a directory")
	}
}

func TestRunRejectsBadArguments(t *testing.T) {
	file := writeHostFile(t, t.TempDir(), "f", "x", 0o644)
	output := filepath.Join(t.TempDir(), "x.tar")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"inspect"}, "unknown command"},
		{[]string{"build", "-ref", "127.0.0.1:5000/x:1", "-add", file + "=/f"}, "-o, -ref and at least one -add are required"},
		{[]string{"build", "-o", output, "-ref", "127.0.0.1:5000/x", "-add", file + "=/f"}, "must be a tagged reference"},
		{[]string{"build", "-o", output, "-ref", "127.0.0.1:5000/x:1", "-add", file + "=/f", "-env", "=1"}, "invalid -env"},
		{[]string{"build", "-o", output, "-ref", "127.0.0.1:5000/x:1", "-add", file + "=f"}, "must be absolute"},
		{[]string{"push", "only-one-argument"}, "expected SOURCE and REF"},
	} {
		err := run(tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
