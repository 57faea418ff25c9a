package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func (s appSeed) pkg(appGUID string, mutate func(*store.Package)) store.Package {
	s.t.Helper()
	p := store.Package{GUID: uuid.NewString(), AppGUID: appGUID, Type: store.PackageTypeBits, State: store.PackageAwaitingUpload}
	if mutate != nil {
		mutate(&p)
	}
	created, err := store.CreatePackage(context.Background(), s.st.DB(), p)
	if err != nil {
		s.t.Fatal(err)
	}
	return created
}

func packageGUIDs(packages []store.Package) []string {
	guids := []string{}
	for _, p := range packages {
		guids = append(guids, p.GUID)
	}
	return guids
}

func TestPackageCreateAndRead(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web", nil)

	created := seed.pkg(app.GUID, func(p *store.Package) {
		p.Type, p.State, p.Image = store.PackageTypeDocker, store.PackageReady, "nginx:1.25"
		p.DockerUsername, p.DockerPassword = "bot", "s3cret"
		p.Labels = map[string]string{"tier": "web"}
	})
	want := store.Package{
		GUID: created.GUID, AppGUID: app.GUID, AppName: "web", SpaceGUID: space, OrgGUID: org,
		Type: store.PackageTypeDocker, State: store.PackageReady, Image: "nginx:1.25",
		DockerUsername: "bot", DockerPassword: "s3cret",
		Labels: map[string]string{"tier": "web"}, Annotations: map[string]string{},
		CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt,
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created package (-want +got):\n%s", diff)
	}
	got, err := st.Package(ctx, store.Visibility{All: true}, created.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("read package differs (-created +read):\n%s", diff)
	}

	_, err = store.CreatePackage(ctx, st.DB(), store.Package{GUID: uuid.NewString(), AppGUID: "no-such-app",
		Type: store.PackageTypeBits, State: store.PackageAwaitingUpload})
	var fkErr *store.ForeignKeyError
	if !errors.As(err, &fkErr) {
		t.Errorf("create for a missing app: error = %v, want *ForeignKeyError", err)
	}
}

func TestPackageVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	devPkg := seed.pkg(seed.app(dev, "web", nil).GUID, nil)
	prodPkg := seed.pkg(seed.app(prod, "web", nil).GUID, nil)

	developer := uuid.NewString()
	seed.role(developer, "space_developer", "", dev)
	manager := uuid.NewString()
	seed.role(manager, "organization_manager", org, "")
	stranger := uuid.NewString()
	seed.role(stranger, "organization_user", org, "")

	tests := []struct {
		name string
		vis  store.Visibility
		want []string
	}{
		{"admin", store.Visibility{All: true}, []string{devPkg.GUID, prodPkg.GUID}},
		{"space developer", store.Visibility{UserGUID: developer}, []string{devPkg.GUID}},
		{"org manager", store.Visibility{UserGUID: manager}, []string{devPkg.GUID, prodPkg.GUID}},
		{"org user only", store.Visibility{UserGUID: stranger}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := st.Packages(ctx, store.PackageFilter{}, store.Page{Number: 1, PerPage: 50}, tc.vis)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, packageGUIDs(got)); diff != "" {
				t.Errorf("visible packages (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}

	if _, err := st.Package(ctx, store.Visibility{UserGUID: developer}, prodPkg.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("developer reads a package of another space: error = %v, want ErrNotFound", err)
	}
}

func TestPackageFilters(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	orgA := seed.org("a", nil)
	orgB := seed.org("b", nil)
	spaceA := seed.space(orgA, "dev", nil)
	spaceB := seed.space(orgB, "dev", nil)
	appA := seed.app(spaceA, "web", nil)
	appB := seed.app(spaceB, "web", nil)
	bits := seed.pkg(appA.GUID, func(p *store.Package) { p.Labels = map[string]string{"env": "prod"} })
	ready := seed.pkg(appA.GUID, func(p *store.Package) { p.State, p.Image = store.PackageReady, "r@sha256:1" })
	docker := seed.pkg(appB.GUID, func(p *store.Package) {
		p.Type, p.State, p.Image = store.PackageTypeDocker, store.PackageReady, "nginx"
	})

	tests := []struct {
		name   string
		filter store.PackageFilter
		want   []string
	}{
		{"app guids", store.PackageFilter{AppGUIDs: []string{appA.GUID}}, []string{bits.GUID, ready.GUID}},
		{"states", store.PackageFilter{States: []string{store.PackageReady}}, []string{ready.GUID, docker.GUID}},
		{"types", store.PackageFilter{Types: []string{store.PackageTypeDocker}}, []string{docker.GUID}},
		{"space guids", store.PackageFilter{SpaceGUIDs: []string{spaceB}}, []string{docker.GUID}},
		{"organization guids", store.PackageFilter{OrganizationGUIDs: []string{orgA}}, []string{bits.GUID, ready.GUID}},
		{"guids", store.PackageFilter{CommonFilter: store.CommonFilter{GUIDs: []string{docker.GUID, bits.GUID}}}, []string{bits.GUID, docker.GUID}},
		{"label selector", store.PackageFilter{LabelSelector: store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod"}}}}, []string{bits.GUID}},
		{"empty match", store.PackageFilter{States: []string{""}}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := st.Packages(ctx, tc.filter, store.Page{Number: 1, PerPage: 50}, store.Visibility{All: true})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, packageGUIDs(got)); diff != "" {
				t.Errorf("packages (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}

	page, total, err := st.Packages(ctx, store.PackageFilter{}, store.Page{Number: 2, PerPage: 2, OrderBy: "created_at", Descending: true}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bits.GUID}, packageGUIDs(page)); diff != "" || total != 3 {
		t.Errorf("page 2 of 2 newest first: total %d, packages (-want +got):\n%s", total, diff)
	}
	past, total, err := st.Packages(ctx, store.PackageFilter{}, store.Page{Number: 9, PerPage: 2}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(past) != 0 || total != 3 {
		t.Errorf("page past the end: %d packages, total %d; want 0 and 3", len(past), total)
	}
}

func TestPackageTransition(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web", nil)
	p := seed.pkg(app.GUID, nil)

	processing, err := store.TransitionPackage(ctx, st.DB(), p.GUID, []string{store.PackageAwaitingUpload},
		store.PackageResult{State: store.PackageProcessingUpload})
	if err != nil {
		t.Fatal(err)
	}
	if processing.State != store.PackageProcessingUpload {
		t.Errorf("state = %s, want PROCESSING_UPLOAD", processing.State)
	}
	_, err = store.TransitionPackage(ctx, st.DB(), p.GUID, []string{store.PackageAwaitingUpload},
		store.PackageResult{State: store.PackageProcessingUpload})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second transition from AWAITING_UPLOAD: error = %v, want ErrNotFound", err)
	}

	ready, err := store.TransitionPackage(ctx, st.DB(), p.GUID, []string{store.PackageProcessingUpload},
		store.PackageResult{State: store.PackageReady, Image: "reg/p@sha256:ab", Checksum: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	if ready.State != store.PackageReady || ready.Image != "reg/p@sha256:ab" || ready.Checksum != "ab" || ready.Error != "" {
		t.Errorf("ready package = %+v", ready)
	}
	if !ready.UpdatedAt.After(p.UpdatedAt) && !ready.UpdatedAt.Equal(p.UpdatedAt) {
		t.Errorf("updated_at went backwards: %v before %v", ready.UpdatedAt, p.UpdatedAt)
	}
}

func TestPackageUpdateAndDelete(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web", nil)
	p := seed.pkg(app.GUID, func(p *store.Package) {
		p.Type, p.State, p.Image, p.DockerUsername, p.DockerPassword = store.PackageTypeDocker, store.PackageReady, "nginx", "u", "old"
		p.Labels = map[string]string{"keep": "1", "drop": "2"}
	})

	password, empty := "new", ""
	updated, err := store.UpdatePackage(ctx, st.DB(), p.GUID, store.PackageUpdate{
		DockerPassword: &password,
		Metadata:       store.MetadataPatch{Labels: map[string]*string{"drop": nil}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.DockerPassword != "new" || updated.DockerUsername != "u" {
		t.Errorf("credentials = %q/%q, want u/new", updated.DockerUsername, updated.DockerPassword)
	}
	if diff := cmp.Diff(map[string]string{"keep": "1"}, updated.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	cleared, err := store.UpdatePackage(ctx, st.DB(), p.GUID, store.PackageUpdate{DockerUsername: &empty, DockerPassword: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if cleared.DockerUsername != "" || cleared.DockerPassword != "" {
		t.Errorf("credentials after clearing = %q/%q", cleared.DockerUsername, cleared.DockerPassword)
	}
	if _, err := store.UpdatePackage(ctx, st.DB(), "missing", store.PackageUpdate{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing package: error = %v, want ErrNotFound", err)
	}

	bits := seed.pkg(app.GUID, func(p *store.Package) { p.State, p.Image = store.PackageReady, "reg/b@sha256:1" })
	images, err := store.PackageImagesOfApp(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"reg/b@sha256:1"}, images); diff != "" {
		t.Errorf("package images of app (-want +got):\n%s", diff)
	}

	deleted, err := store.DeletePackage(ctx, st.DB(), bits.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if deleted.Image != "reg/b@sha256:1" {
		t.Errorf("deleted package image = %q", deleted.Image)
	}
	if _, err := store.DeletePackage(ctx, st.DB(), bits.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: error = %v, want ErrNotFound", err)
	}

	if err := store.DeleteApp(ctx, st.DB(), app.GUID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Package(ctx, store.Visibility{All: true}, p.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("package after its app was deleted: error = %v, want ErrNotFound", err)
	}
}
