package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

func (s stagingSeed) droplet(appGUID, packageGUID string) store.Droplet {
	s.t.Helper()
	d, err := store.CreateDroplet(context.Background(), s.st.DB(), newDroplet(appGUID, packageGUID))
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func TestDropletCreateAndRead(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web")

	want := newDroplet(app, uuid.NewString())
	want.Labels = map[string]string{"a": "1"}
	got, err := store.CreateDroplet(ctx, st.DB(), want)
	if err != nil {
		t.Fatal(err)
	}
	want.SpaceGUID, want.OrgGUID, want.Annotations = space, org, map[string]string{}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		name := p.Last().String()
		return name == ".CreatedAt" || name == ".UpdatedAt"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Errorf("created droplet (-want +got):\n%s", diff)
	}

	if _, err := st.CurrentDroplet(ctx, store.Visibility{All: true}, app); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("current droplet before assignment: %v, want ErrNotFound", err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app, got.GUID); err != nil {
		t.Fatal(err)
	}
	current, err := st.CurrentDroplet(ctx, store.Visibility{All: true}, app)
	if err != nil {
		t.Fatal(err)
	}
	if current.GUID != got.GUID {
		t.Errorf("current droplet = %s, want %s", current.GUID, got.GUID)
	}
	if _, err := st.CurrentDroplet(ctx, store.Visibility{UserGUID: uuid.NewString()}, app); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("current droplet for a stranger: %v, want ErrNotFound", err)
	}
}

func TestDropletListFilters(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	dev, prod := seed.space(org, "dev", nil), seed.space(org, "prod", nil)
	appA, appB := seed.app(dev, "a"), seed.app(prod, "b")
	pkg := uuid.NewString()
	first, second, third := seed.droplet(appA, pkg), seed.droplet(appA, uuid.NewString()), seed.droplet(appB, pkg)
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), appA, second.GUID); err != nil {
		t.Fatal(err)
	}
	failed := newDroplet(appB, uuid.NewString())
	failed.State, failed.Error = store.DropletStateFailed, "StagingError - Staging error: x"
	if _, err := store.CreateDroplet(ctx, st.DB(), failed); err != nil {
		t.Fatal(err)
	}

	all := store.Visibility{All: true}
	for _, tc := range []struct {
		name   string
		filter store.DropletFilter
		vis    store.Visibility
		want   []string
	}{
		{"no filter", store.DropletFilter{}, all, []string{first.GUID, second.GUID, third.GUID, failed.GUID}},
		{"app", store.DropletFilter{AppGUIDs: []string{appA}}, all, []string{first.GUID, second.GUID}},
		{"package", store.DropletFilter{PackageGUIDs: []string{pkg}}, all, []string{first.GUID, third.GUID}},
		{"state", store.DropletFilter{States: []string{store.DropletStateStaged}}, all, []string{first.GUID, second.GUID, third.GUID}},
		{"space", store.DropletFilter{SpaceGUIDs: []string{prod}}, all, []string{third.GUID, failed.GUID}},
		{"organization", store.DropletFilter{OrganizationGUIDs: []string{org}}, all, []string{first.GUID, second.GUID, third.GUID, failed.GUID}},
		{"current", store.DropletFilter{AppGUIDs: []string{appA}, Current: true}, all, []string{second.GUID}},
		{"stranger", store.DropletFilter{}, store.Visibility{UserGUID: uuid.NewString()}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			droplets, total, err := st.Droplets(ctx, tc.filter, store.Page{Number: 1, PerPage: 10, OrderBy: "created_at"}, tc.vis)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, d := range droplets {
				got = append(got, d.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("droplets (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}
}

func TestDropletDelete(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web")
	current, old := seed.droplet(app, uuid.NewString()), seed.droplet(app, uuid.NewString())
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app, current.GUID); err != nil {
		t.Fatal(err)
	}

	deleteIn := func(guid string) (store.Droplet, error) {
		var d store.Droplet
		err := st.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			d, err = store.DeleteDroplet(ctx, tx, guid)
			return err
		})
		return d, err
	}
	if _, err := deleteIn(current.GUID); !errors.Is(err, store.ErrDropletInUse) {
		t.Errorf("deleting the current droplet: %v, want ErrDropletInUse", err)
	}
	deleted, err := deleteIn(old.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if deleted.GUID != old.GUID || deleted.Image != old.Image {
		t.Errorf("deleted droplet = %+v", deleted)
	}
	if _, err := deleteIn(old.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting again: %v, want ErrNotFound", err)
	}

	used, err := store.DropletImageInUse(ctx, st.DB(), current.Image, current.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if used {
		t.Error("the deleted droplet still counts as using the image")
	}
	used, err = store.DropletImageInUse(ctx, st.DB(), current.Image, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if !used {
		t.Error("the current droplet does not count as using its image")
	}
}

func TestDropletDeleteClearsBuildReference(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web")
	b := seed.build(app, uuid.NewString())
	d := newDroplet(app, b.PackageGUID)
	d.BuildGUID = b.GUID
	if err := st.CompleteBuild(ctx, b.GUID, d); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteDroplet(ctx, st.DB(), d.GUID); err != nil {
		t.Fatal(err)
	}
	got, err := st.StagingBuild(ctx, b.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DropletGUID != "" || got.State != store.BuildStateStaged {
		t.Errorf("build after its droplet was deleted = %s %q, want STAGED with no droplet", got.State, got.DropletGUID)
	}
}

func TestDropletMetadataUpdate(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	d := seed.droplet(seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web"), uuid.NewString())
	v := "x"
	got, err := store.UpdateDropletMetadata(ctx, st.DB(), d.GUID, store.MetadataPatch{Labels: map[string]*string{"k": &v}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["k"] != "x" {
		t.Errorf("labels = %v", got.Labels)
	}
	if _, err := store.UpdateDropletMetadata(ctx, st.DB(), uuid.NewString(), store.MetadataPatch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown droplet: %v, want ErrNotFound", err)
	}
}
