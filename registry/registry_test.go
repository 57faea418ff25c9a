package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrycf/ferry/config"
)

// newTestClient starts an in-process registry on loopback and returns a
// client for it with the repository prefix "ferry".
func newTestClient(t *testing.T) (*Client, string) {
	t.Helper()
	server := httptest.NewServer(ggcrregistry.New())
	t.Cleanup(server.Close)
	addr := strings.TrimPrefix(server.URL, "http://")
	return New(config.Registry{Address: addr, ClusterAddress: "10.88.0.1:5000", Repository: "ferry"}), addr
}

type tarEntry struct {
	name     string
	mode     int64
	body     string
	typeflag byte
	linkname string
}

func tarOpener(t *testing.T, entries []tarEntry) Opener {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: e.typeflag,
			Linkname: e.linkname, ModTime: time.Unix(0, 0)}
		if e.typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

func readTar(t *testing.T, r io.Reader) []tarEntry {
	t.Helper()
	var got []tarEntry
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tarEntry{name: hdr.Name, mode: hdr.Mode, body: string(body), typeflag: hdr.Typeflag, linkname: hdr.Linkname})
	}
}

var sampleEntries = []tarEntry{
	{name: "app.sh", mode: 0o755, body: "#!/bin/sh\necho hi\n", typeflag: tar.TypeReg},
	{name: "sub/", mode: 0o755, typeflag: tar.TypeDir},
	{name: "sub/data.txt", mode: 0o644, body: "data", typeflag: tar.TypeReg},
	{name: "link", mode: 0o777, typeflag: tar.TypeSymlink, linkname: "sub/data.txt"},
}

func TestPushLayerRoundTrip(t *testing.T) {
	ctx := context.Background()
	client, addr := newTestClient(t)
	repo := client.PackageRepository("pkg-1")
	if want := addr + "/ferry/packages/pkg-1"; repo != want {
		t.Fatalf("PackageRepository = %q, want %q", repo, want)
	}

	labels := map[string]string{"org.example.package": "pkg-1"}
	ref, err := client.PushLayer(ctx, repo, tarOpener(t, sampleEntries), labels)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, repo+"@sha256:") {
		t.Fatalf("reference %q is not pinned by digest in %s", ref, repo)
	}

	cfg, err := client.ConfigFile(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	gotLabels, err := client.Labels(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(labels, gotLabels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	layer, err := client.OpenLayer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	if diff := cmp.Diff(sampleEntries, readTar(t, layer), cmp.AllowUnexported(tarEntry{})); diff != "" {
		t.Errorf("layer contents (-want +got):\n%s", diff)
	}
}

func TestPushLayerIsReproducible(t *testing.T) {
	ctx := context.Background()
	client, _ := newTestClient(t)
	first, err := client.PushLayer(ctx, client.PackageRepository("a"), tarOpener(t, sampleEntries), nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.PushLayer(ctx, client.PackageRepository("b"), tarOpener(t, sampleEntries), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, firstDigest, _ := strings.Cut(first, "@")
	_, secondDigest, _ := strings.Cut(second, "@")
	if firstDigest != secondDigest {
		t.Errorf("digests differ for equal content: %s and %s", firstDigest, secondDigest)
	}
}

func TestResolveTag(t *testing.T) {
	ctx := context.Background()
	client, _ := newTestClient(t)
	repo := client.Repository("droplets", "app-1")
	ref, err := client.PushLayer(ctx, repo+":build-1", tarOpener(t, sampleEntries), nil)
	if err != nil {
		t.Fatal(err)
	}

	resolved, err := client.Resolve(ctx, repo+":build-1")
	if err != nil {
		t.Fatal(err)
	}
	if resolved != ref {
		t.Errorf("Resolve(tag) = %q, want %q", resolved, ref)
	}
	again, err := client.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if again != ref {
		t.Errorf("Resolve(digest) = %q, want %q", again, ref)
	}

	_, err = client.Resolve(ctx, repo+":missing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(missing tag) error = %v, want ErrNotFound", err)
	}
}

func TestDeleteManifest(t *testing.T) {
	ctx := context.Background()
	client, _ := newTestClient(t)
	ref, err := client.PushLayer(ctx, client.PackageRepository("gone"), tarOpener(t, sampleEntries), nil)
	if err != nil {
		t.Fatal(err)
	}

	if err := client.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ConfigFile(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("ConfigFile after delete: error = %v, want ErrNotFound", err)
	}
	if err := client.Delete(ctx, ref); err != nil {
		t.Errorf("second Delete = %v, want nil for a manifest already gone", err)
	}
	if err := client.Delete(ctx, client.PackageRepository("gone")+":latest"); err == nil {
		t.Error("Delete of a tag reference succeeded, want an error asking for a digest")
	}
}

func TestCopyKeepsDigest(t *testing.T) {
	ctx := context.Background()
	client, _ := newTestClient(t)
	src, err := client.PushLayer(ctx, client.PackageRepository("src"), tarOpener(t, sampleEntries), map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}

	dst, err := client.Copy(ctx, src, client.PackageRepository("dst"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dst, client.PackageRepository("dst")+"@") {
		t.Fatalf("copy reference %q is not in the destination repository", dst)
	}
	_, srcDigest, _ := strings.Cut(src, "@")
	_, dstDigest, _ := strings.Cut(dst, "@")
	if srcDigest != dstDigest {
		t.Errorf("copy digest = %s, want %s", dstDigest, srcDigest)
	}

	// Deleting the source leaves the copy readable.
	if err := client.Delete(ctx, src); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ConfigFile(ctx, dst); err != nil {
		t.Errorf("copy unreadable after deleting the source: %v", err)
	}
}

func TestOpenLayerRejectsMultiLayerImage(t *testing.T) {
	ctx := context.Background()
	client, _ := newTestClient(t)
	if _, err := client.OpenLayer(ctx, client.PackageRepository("none")+":latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenLayer(missing) error = %v, want ErrNotFound", err)
	}

	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(client.Repository("two-layers") + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	_, err = client.OpenLayer(ctx, tag.String())
	if err == nil || !strings.Contains(err.Error(), "has 2 layers") {
		t.Errorf("OpenLayer(two layers) error = %v, want one naming the layer count", err)
	}
}

func TestClusterReference(t *testing.T) {
	client := New(config.Registry{Address: "127.0.0.1:5000", ClusterAddress: "10.88.0.1:5000", Repository: "ferry"})
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000/ferry/packages/p@sha256:abc", "10.88.0.1:5000/ferry/packages/p@sha256:abc"},
		{"docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"},
		{"127.0.0.10:5000/other", "127.0.0.10:5000/other"},
	} {
		if got := client.ClusterReference(tc.in); got != tc.want {
			t.Errorf("ClusterReference(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidateReference(t *testing.T) {
	for _, tc := range []struct {
		ref   string
		valid bool
	}{
		{"nginx", true},
		{"nginx:1.25", true},
		{"registry.example.com:5000/team/app@sha256:" + strings.Repeat("a", 64), true},
		{"", false},
		{" nginx", false},
		{"UPPER/case", false},
		{"nginx:bad tag", false},
		{"https://registry.example.com/app", false},
	} {
		err := ValidateReference(tc.ref)
		if (err == nil) != tc.valid {
			t.Errorf("ValidateReference(%q) = %v, want valid=%v", tc.ref, err, tc.valid)
		}
	}
}
