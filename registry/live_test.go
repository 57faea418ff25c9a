package registry

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/config"
)

// TestLiveRegistryRoundTrip runs the client against the registry of the
// local environment, a CNCF distribution registry, when FERRY_REGISTRY
// names it (eval "$(bash hack/env.sh env)" sets it). It cleans up the
// manifests it pushes.
func TestLiveRegistryRoundTrip(t *testing.T) {
	addr := os.Getenv("FERRY_REGISTRY")
	if addr == "" {
		t.Skip("FERRY_REGISTRY is not set: run eval \"$(bash hack/env.sh env)\" to test against the local registry")
	}
	ctx := context.Background()
	client := New(config.Registry{Address: addr, Repository: "ferry-test/" + uuid.NewString()})

	ref, err := client.PushLayer(ctx, client.PackageRepository("live"), tarOpener(t, sampleEntries), map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Delete(context.Background(), ref) })

	labels, err := client.Labels(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if labels["k"] != "v" {
		t.Errorf("labels = %v, want k=v", labels)
	}
	resolved, err := client.Resolve(ctx, client.PackageRepository("live")+":latest")
	if err != nil {
		t.Fatal(err)
	}
	if resolved != ref {
		t.Errorf("Resolve(latest) = %q, want %q", resolved, ref)
	}

	copied, err := client.Copy(ctx, ref, client.PackageRepository("copy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Delete(context.Background(), copied) })
	layer, err := client.OpenLayer(ctx, copied)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, layer)
	layer.Close()
	if len(entries) != len(sampleEntries) {
		t.Errorf("copied layer has %d entries, want %d", len(entries), len(sampleEntries))
	}

	if err := client.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Resolve(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := client.Resolve(ctx, client.PackageRepository("live")+":latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(tag) after deleting its manifest: error = %v, want ErrNotFound", err)
	}
	if _, err := client.ConfigFile(ctx, copied); err != nil {
		t.Errorf("copy unreadable after deleting the source: %v", err)
	}
}
