package cfapi

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// pushTestImage pushes a one-file image with a label that makes its
// digest unique to ref and returns the digest-pinned reference.
func (f *packageFixture) pushTestImage(ref string) string {
	f.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app.txt", Mode: 0o644, Size: 2}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := tw.Write([]byte("hi")); err != nil {
		f.t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		f.t.Fatal(err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }
	pinned, err := f.registry.PushLayer(context.Background(), ref, open, map[string]string{"ref": ref})
	if err != nil {
		f.t.Fatalf("push %s: %v", ref, err)
	}
	return pinned
}

// addDroplet records a staged droplet of app with image.
func (f *packageFixture) addDroplet(appGUID, lifecycle, image string) {
	f.t.Helper()
	_, err := store.CreateDroplet(context.Background(), f.env.store.DB(), store.Droplet{GUID: uuid.NewString(), AppGUID: appGUID,
		State: store.DropletStateStaged, LifecycleType: lifecycle, Image: image})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *packageFixture) imageExists(ref string) bool {
	f.t.Helper()
	_, err := f.registry.ConfigFile(context.Background(), ref)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		f.t.Fatalf("read %s: %v", ref, err)
	}
	return err == nil
}

func TestAppDeleteRemovesImages(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	packageImage := f.imageOf(pkg.GUID)

	droplets := f.registry.Repository("droplets", f.appGUID)
	first := f.pushTestImage(droplets + ":build-1")
	second := f.pushTestImage(droplets + ":build-2")
	f.addDroplet(f.appGUID, store.LifecycleBuildpack, first)
	f.addDroplet(f.appGUID, store.LifecycleBuildpack, second)
	f.addDroplet(f.appGUID, store.LifecycleBuildpack, second)
	cache := f.pushTestImage(f.registry.Repository("cache", f.appGUID))

	// Images of other apps, and a docker droplet's image, stay even when
	// a droplet of the deleted app names them.
	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	otherDroplet := f.pushTestImage(f.registry.Repository("droplets", other) + ":build-3")
	f.addDroplet(other, store.LifecycleBuildpack, otherDroplet)
	f.addDroplet(f.appGUID, store.LifecycleBuildpack, otherDroplet)
	userImage := f.pushTestImage(f.registry.Repository("library", "nginx") + ":1")
	f.addDroplet(f.dockerAppGUID, store.LifecycleDocker, userImage)
	f.addDroplet(f.appGUID, store.LifecycleDocker, userImage)
	otherCache := f.pushTestImage(f.registry.Repository("cache", other))

	f.env.do(http.MethodDelete, "/v3/apps/"+f.appGUID, f.developer, nil).expect(http.StatusAccepted)
	f.env.runner.RunPending(context.Background())

	if n := f.count(`SELECT count(*) FROM apps WHERE guid = $1`, f.appGUID); n != 0 {
		t.Fatal("app row left after delete")
	}
	for name, ref := range map[string]string{"package": packageImage, "first droplet": first, "second droplet": second, "build cache": cache} {
		if f.imageExists(ref) {
			t.Errorf("%s image %s left in the registry", name, ref)
		}
	}
	for name, ref := range map[string]string{"other app's droplet": otherDroplet, "docker image": userImage, "other app's cache": otherCache} {
		if !f.imageExists(ref) {
			t.Errorf("%s image %s was deleted", name, ref)
		}
	}
}

func TestAppDeleteWithoutImages(t *testing.T) {
	f := newPackageFixture(t)
	if err := f.env.api.deleteAppImages(context.Background(), f.appGUID); err != nil {
		t.Errorf("deleteAppImages of an app without images: %v", err)
	}
	f.env.api.registry = nil
	if err := f.env.api.deleteAppImages(context.Background(), f.appGUID); err != nil {
		t.Errorf("deleteAppImages without a registry: %v", err)
	}
}
