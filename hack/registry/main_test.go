package main

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry runs the registry on a free loopback port with storage in
// root, and returns its address and a function that stops it and returns
// run's error.
func startRegistry(t *testing.T, root string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: []string{"127.0.0.1:0"}, root: root, logLevel: "warn"}, ready)
	}()

	select {
	case addrs := <-ready:
		return addrs[0].String(), func() error {
			cancel()
			return <-done
		}
	case err := <-done:
		cancel()
		t.Fatalf("registry did not start: %v", err)
		return "", nil
	}
}

func TestManifestsAndTagsSurviveRestart(t *testing.T) {
	root := t.TempDir()
	image, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, err := image.Digest()
	if err != nil {
		t.Fatal(err)
	}

	addr, stop := startRegistry(t, root)
	tag, err := name.NewTag(addr + "/ferry/test:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, image); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("first registry run returned %v", err)
	}

	addr, stop = startRegistry(t, root)
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("second registry run returned %v", err)
		}
	}()
	tag, err = name.NewTag(addr + "/ferry/test:v1")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(tag)
	if err != nil {
		t.Fatalf("pull %s after restart: %v", tag, err)
	}
	got, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("digest after restart = %s, want %s", got, want)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, layer := range layers {
		if _, err := layer.Compressed(); err != nil {
			t.Errorf("layer %d after restart: %v", i, err)
		}
	}

	repositories, err := remote.Catalog(context.Background(), tag.Context().Registry)
	if err != nil {
		t.Fatalf("list repositories after restart: %v", err)
	}
	if fmt.Sprint(repositories) != "[ferry/test]" {
		t.Errorf("repositories after restart = %v, want [ferry/test]", repositories)
	}

	tags, err := remote.List(tag.Context())
	if err != nil {
		t.Fatalf("list tags after restart: %v", err)
	}
	if fmt.Sprint(tags) != "[v1]" {
		t.Errorf("tags after restart = %v, want [v1]", tags)
	}
}

func TestListenOnSeveralAddresses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: []string{"127.0.0.1:0", "127.0.0.1:0"}, root: t.TempDir(), logLevel: "warn"}, ready)
	}()
	var addrs []net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("registry did not start: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry run returned %v", err)
		}
	}()

	image, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	pushTag, err := name.NewTag(addrs[0].String() + "/ferry/multi:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(pushTag, image); err != nil {
		t.Fatalf("push through %s: %v", addrs[0], err)
	}
	pullTag, err := name.NewTag(addrs[1].String() + "/ferry/multi:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(pullTag); err != nil {
		t.Errorf("pull through %s: %v", addrs[1], err)
	}
}

func TestListenFailureStopsStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	err = run(context.Background(), options{listen: []string{"127.0.0.1:0", busy.Addr().String()}, root: t.TempDir(), logLevel: "warn"}, nil)
	if err == nil {
		t.Fatal("run succeeded with an address already in use")
	}
}

func TestParseFlags(t *testing.T) {
	opts, err := parseFlags([]string{"-root", "/tmp/r", "-listen", "127.0.0.1:5000", "-listen", "10.88.0.1:5000"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(opts.listen) != "[127.0.0.1:5000 10.88.0.1:5000]" {
		t.Errorf("listen = %v, want [127.0.0.1:5000 10.88.0.1:5000]", opts.listen)
	}

	opts, err = parseFlags([]string{"-root", "/tmp/r"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(opts.listen) != "[127.0.0.1:5000]" {
		t.Errorf("default listen = %v, want [127.0.0.1:5000]", opts.listen)
	}

	for _, args := range [][]string{
		{},
		{"-root", "/tmp/r", "-listen", "5000"},
		{"-root", "/tmp/r", "extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}
