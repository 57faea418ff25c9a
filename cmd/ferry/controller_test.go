package main

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferrycf/ferry/cfapi"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// pushConfig pushes a random image with cfg to ref and returns ref.
func pushConfig(t *testing.T, ref string, cfg v1.Config) string {
	t.Helper()
	img, err := random.Image(16, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
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
	return ref
}

func TestStagingBackends(t *testing.T) {
	server := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(server.Close)
	addr := strings.TrimPrefix(server.URL, "http://")
	cfg := config.Default()
	cfg.Registry = config.Registry{Address: addr, ClusterAddress: "10.88.0.1:5000", Repository: "ferry"}
	cfg.Staging.Builders = []config.Builder{{Stack: "ferry-test", Image: addr + "/ferry/builder:test"}}
	images := registry.New(cfg.Registry)
	builders, docker := stagingBackends(cfg, images, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()

	pushConfig(t, addr+"/ferry/builder:test", v1.Config{Labels: map[string]string{
		"io.buildpacks.builder.metadata": `{"description":"d","images":[{"image":"run:1"}],"buildpacks":[{"id":"ferry/python","version":"0.1.0"}]}`}})
	info, err := builders.Builder(ctx, "ferry-test")
	if err != nil {
		t.Fatal(err)
	}
	if info.Description != "d" || info.RunImage != "run:1" || len(info.Buildpacks) != 1 || info.Buildpacks[0] != (cfapi.BuildpackInfo{ID: "ferry/python", Version: "0.1.0"}) {
		t.Errorf("builder = %+v", info)
	}

	build := store.Build{GUID: "b", AppGUID: "a", PackageGUID: "p", LifecycleType: store.LifecycleDocker}
	image := pushConfig(t, addr+"/team/web:1", v1.Config{Entrypoint: []string{"/srv"}, ExposedPorts: map[string]struct{}{"8080/tcp": {}}})
	droplet, err := docker.DockerDroplet(ctx, store.Package{Image: image}, build)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(droplet.Image, "10.88.0.1:5000/team/web@sha256:") || droplet.ProcessTypes["web"] != "/srv" ||
		droplet.ExecutionMetadata != `{"entrypoint":["/srv"],"ports":[{"Port":8080,"Protocol":"tcp"}]}` || droplet.GUID == "" {
		t.Errorf("docker droplet = %+v", droplet)
	}

	bad := pushConfig(t, addr+"/team/bad:1", v1.Config{ExposedPorts: map[string]struct{}{"http/tcp": {}}})
	_, err = docker.DockerDroplet(ctx, store.Package{Image: bad}, build)
	var unusable *cfapi.UnusableImageError
	if !errors.As(err, &unusable) || !strings.Contains(unusable.Reason, `exposed port "http/tcp"`) {
		t.Errorf("image with a bad port: %v, want an UnusableImageError", err)
	}
	_, err = docker.DockerDroplet(ctx, store.Package{Image: addr + "/team/missing:1"}, build)
	if !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("missing image: %v, want registry.ErrNotFound", err)
	}
}
