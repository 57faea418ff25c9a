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

// appSeed creates apps for store tests.
type appSeed struct {
	tenancySeed
}

func (s appSeed) app(spaceGUID, name string, mutate func(*store.App)) store.App {
	s.t.Helper()
	app := store.App{GUID: uuid.NewString(), Name: name, SpaceGUID: spaceGUID, LifecycleType: store.LifecycleBuildpack, Stack: "ferry-test"}
	if mutate != nil {
		mutate(&app)
	}
	created, err := store.CreateApp(context.Background(), s.st.DB(), app)
	if err != nil {
		s.t.Fatal(err)
	}
	return created
}

func appNames(apps []store.App) []string {
	names := []string{}
	for _, a := range apps {
		names = append(names, a.Name)
	}
	return names
}

func TestAppCreateAndRead(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)

	created := seed.app(space, "web", func(a *store.App) {
		a.Buildpacks = []string{"go_buildpack", "https://example.com/bp.git"}
		a.EnvironmentVariables = map[string]string{"MODE": "prod", "EMPTY": ""}
		a.Labels = map[string]string{"tier": "web"}
	})
	want := store.App{
		GUID: created.GUID, Name: "web", SpaceGUID: space, OrgGUID: org, State: store.AppStateStopped,
		LifecycleType: store.LifecycleBuildpack, Buildpacks: []string{"go_buildpack", "https://example.com/bp.git"},
		Stack: "ferry-test", EnvironmentVariables: map[string]string{"MODE": "prod", "EMPTY": ""}, RevisionsEnabled: true,
		Labels: map[string]string{"tier": "web"}, Annotations: map[string]string{},
		CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt,
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created app (-want +got):\n%s", diff)
	}

	got, err := st.App(ctx, store.Visibility{All: true}, created.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("read app differs from created (-created +read):\n%s", diff)
	}

	docker := seed.app(space, "img", func(a *store.App) { a.LifecycleType, a.Stack = store.LifecycleDocker, "" })
	if docker.Stack != "" || len(docker.Buildpacks) != 0 || docker.Buildpacks == nil {
		t.Errorf("docker app stack %q, buildpacks %#v; want no stack and an empty, non-nil list", docker.Stack, docker.Buildpacks)
	}
}

func TestAppCreateConstraints(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	seed.app(dev, "Web", nil)

	_, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "web", SpaceGUID: dev, LifecycleType: store.LifecycleBuildpack})
	if !store.IsUnique(err, store.ConstraintAppName) {
		t.Errorf("duplicate name with other case: %v, want unique violation of %s", err, store.ConstraintAppName)
	}
	if _, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "web", SpaceGUID: prod, LifecycleType: store.LifecycleBuildpack}); err != nil {
		t.Errorf("same name in another space: %v", err)
	}

	_, err = store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "x", SpaceGUID: uuid.NewString(), LifecycleType: store.LifecycleBuildpack})
	var fk *store.ForeignKeyError
	if !errors.As(err, &fk) || fk.Constraint != store.ConstraintAppSpace {
		t.Errorf("unknown space: %v, want foreign key violation of %s", err, store.ConstraintAppSpace)
	}

	_, err = store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "y", SpaceGUID: dev, LifecycleType: "cnb"})
	if err == nil {
		t.Error("lifecycle type cnb was stored; the check constraint allows only buildpack and docker")
	}
}

func TestAppUpdates(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web", func(a *store.App) {
		a.Buildpacks = []string{"a"}
		a.EnvironmentVariables = map[string]string{"KEEP": "1", "DROP": "2", "CHANGE": "3"}
		a.Labels = map[string]string{"gone": "x"}
	})
	seed.app(space, "taken", nil)

	name, stack, none := "api", "other", []string{}
	updated, err := store.UpdateApp(ctx, st.DB(), app.GUID, store.AppUpdate{Name: &name, Stack: &stack, Buildpacks: &none,
		Metadata: store.MetadataPatch{Labels: map[string]*string{"gone": nil}}})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Name != "api" || updated.Stack != "other" || len(updated.Buildpacks) != 0 || len(updated.Labels) != 0 || updated.OrgGUID != org {
		t.Errorf("updated app = %+v", updated)
	}
	taken := "TAKEN"
	if _, err := store.UpdateApp(ctx, st.DB(), app.GUID, store.AppUpdate{Name: &taken}); !store.IsUnique(err, store.ConstraintAppName) {
		t.Errorf("rename to a taken name: %v, want unique violation", err)
	}

	changed := "new"
	patched, err := store.PatchAppEnvironment(ctx, st.DB(), app.GUID, map[string]*string{"DROP": nil, "CHANGE": &changed, "ADD": &changed})
	if err != nil {
		t.Fatal(err)
	}
	wantEnv := map[string]string{"KEEP": "1", "CHANGE": "new", "ADD": "new"}
	if diff := cmp.Diff(wantEnv, patched.EnvironmentVariables); diff != "" {
		t.Errorf("patched environment (-want +got):\n%s", diff)
	}

	started, err := store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStarted)
	if err != nil || started.State != store.AppStateStarted {
		t.Errorf("start: %v, state %q", err, started.State)
	}
	noDroplet, err := store.SetAppCurrentDroplet(ctx, st.DB(), app.GUID, "")
	if err != nil || noDroplet.DropletGUID != "" {
		t.Errorf("clear droplet: %v, droplet %q", err, noDroplet.DropletGUID)
	}
	noRevisions, err := store.SetAppRevisionsEnabled(ctx, st.DB(), app.GUID, false)
	if err != nil || noRevisions.RevisionsEnabled {
		t.Errorf("disable revisions: %v, enabled %v", err, noRevisions.RevisionsEnabled)
	}
	if _, err := store.SetAppState(ctx, st.DB(), app.GUID, "RUNNING"); err == nil {
		t.Error("state RUNNING was stored; the check constraint allows only STARTED and STOPPED")
	}

	missing := uuid.NewString()
	for name, err := range map[string]error{
		"update": func() error {
			_, err := store.UpdateApp(ctx, st.DB(), missing, store.AppUpdate{Name: &name})
			return err
		}(),
		"state":   func() error { _, err := store.SetAppState(ctx, st.DB(), missing, store.AppStateStopped); return err }(),
		"env":     func() error { _, err := store.PatchAppEnvironment(ctx, st.DB(), missing, nil); return err }(),
		"droplet": func() error { _, err := store.SetAppCurrentDroplet(ctx, st.DB(), missing, ""); return err }(),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a missing app: %v, want ErrNotFound", name, err)
		}
	}
}

func TestAppDeleteCascades(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web", nil)
	other := seed.app(space, "other", nil)

	if err := store.DeleteApp(ctx, st.DB(), app.GUID); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteApp(ctx, st.DB(), app.GUID); err != nil {
		t.Errorf("second delete: %v, want success", err)
	}
	if _, err := st.App(ctx, store.Visibility{All: true}, app.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted app read: %v, want ErrNotFound", err)
	}

	if err := store.DeleteSpace(ctx, st.DB(), space); err != nil {
		t.Fatal(err)
	}
	if _, err := st.App(ctx, store.Visibility{All: true}, other.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("app of a deleted space: %v, want ErrNotFound", err)
	}
}

func TestAppsFiltersAndVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	acme := seed.org("acme", nil)
	dev := seed.space(acme, "dev", nil)
	prod := seed.space(acme, "prod", nil)
	other := seed.org("other", nil)
	elsewhere := seed.space(other, "x", nil)

	seed.app(dev, "web", func(a *store.App) { a.Labels = map[string]string{"tier": "web"} })
	seed.app(dev, "Worker", func(a *store.App) { a.Stack = "other-stack" })
	seed.app(prod, "img", func(a *store.App) { a.LifecycleType, a.Stack = store.LifecycleDocker, "" })
	seed.app(elsewhere, "far", nil)

	developer, manager, stranger := uuid.NewString(), uuid.NewString(), uuid.NewString()
	seed.role(developer, "space_developer", "", dev)
	seed.role(manager, "organization_manager", acme, "")
	seed.role(stranger, "organization_user", other, "")

	byName := store.Page{Number: 1, PerPage: 50, OrderBy: "name"}
	all := store.Visibility{All: true}
	tests := []struct {
		name   string
		filter store.AppFilter
		vis    store.Visibility
		want   []string
	}{
		{"admin sees all", store.AppFilter{}, all, []string{"far", "img", "web", "Worker"}},
		{"space developer sees the space", store.AppFilter{}, store.Visibility{UserGUID: developer}, []string{"web", "Worker"}},
		{"org manager sees the org", store.AppFilter{}, store.Visibility{UserGUID: manager}, []string{"img", "web", "Worker"}},
		{"org user sees no apps", store.AppFilter{}, store.Visibility{UserGUID: stranger}, []string{}},
		{"names ignore case", store.AppFilter{Names: []string{"WEB", "worker"}}, all, []string{"web", "Worker"}},
		{"space guids", store.AppFilter{SpaceGUIDs: []string{prod, elsewhere}}, all, []string{"far", "img"}},
		{"organization guids", store.AppFilter{OrganizationGUIDs: []string{other}}, all, []string{"far"}},
		{"stacks", store.AppFilter{Stacks: []string{"other-stack"}}, all, []string{"Worker"}},
		{"lifecycle type", store.AppFilter{LifecycleType: store.LifecycleDocker}, all, []string{"img"}},
		{"label selector", store.AppFilter{LabelSelector: store.LabelSelector{{Key: "tier", Operator: store.LabelIn, Values: []string{"web"}}}}, all, []string{"web"}},
		{"empty names match nothing", store.AppFilter{Names: []string{""}}, all, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, total, err := st.Apps(ctx, tt.filter, byName, tt.vis)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, appNames(apps)); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if total != len(tt.want) {
				t.Errorf("total = %d, want %d", total, len(tt.want))
			}
		})
	}

	page2 := store.Page{Number: 2, PerPage: 3, OrderBy: "name", Descending: true}
	apps, total, err := st.Apps(ctx, store.AppFilter{}, page2, all)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"far"}, appNames(apps)); diff != "" || total != 4 {
		t.Errorf("page 2 by name descending: total %d, names (-want +got):\n%s", total, diff)
	}
	past := store.Page{Number: 9, PerPage: 3, OrderBy: "name"}
	apps, total, err = st.Apps(ctx, store.AppFilter{}, past, all)
	if err != nil || len(apps) != 0 || total != 4 {
		t.Errorf("page past the end: %v, %d apps, total %d; want none and total 4", err, len(apps), total)
	}
}

func TestAppStartCount(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "web", nil)
	if app.StartCount != 0 {
		t.Fatalf("new app start count = %d, want 0", app.StartCount)
	}

	steps := []struct {
		name      string
		change    func() (store.App, error)
		wantState string
		wantCount int64
	}{
		{"start a stopped app", func() (store.App, error) { return store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStarted) },
			store.AppStateStarted, 1},
		{"start a started app", func() (store.App, error) { return store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStarted) },
			store.AppStateStarted, 1},
		{"restart a started app", func() (store.App, error) { return store.RestartApp(ctx, st.DB(), app.GUID) },
			store.AppStateStarted, 2},
		{"stop", func() (store.App, error) { return store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStopped) },
			store.AppStateStopped, 2},
		{"stop a stopped app", func() (store.App, error) { return store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStopped) },
			store.AppStateStopped, 2},
		{"restart a stopped app", func() (store.App, error) { return store.RestartApp(ctx, st.DB(), app.GUID) },
			store.AppStateStarted, 3},
	}
	for _, step := range steps {
		got, err := step.change()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got.State != step.wantState || got.StartCount != step.wantCount {
			t.Errorf("%s: state %s, start count %d, want %s and %d", step.name, got.State, got.StartCount, step.wantState, step.wantCount)
		}
	}

	read, err := st.App(ctx, store.Visibility{All: true}, app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if read.StartCount != 3 {
		t.Errorf("read start count = %d, want 3", read.StartCount)
	}
	if _, err := store.RestartApp(ctx, st.DB(), uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("restart of a missing app: %v, want ErrNotFound", err)
	}
}

func TestAppsOmitEnvironment(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	dev := seed.space(seed.org("acme", nil), "dev", nil)
	seed.app(dev, "web", func(a *store.App) { a.EnvironmentVariables = map[string]string{"SECRET": "s3cret"} })
	page := store.Page{Number: 1, PerPage: 50}
	all := store.Visibility{All: true}

	apps, _, err := st.Apps(ctx, store.AppFilter{}, page, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || apps[0].EnvironmentVariables["SECRET"] != "s3cret" {
		t.Fatalf("Apps() = %+v, want the app with its variables", apps)
	}

	apps, _, err = st.Apps(ctx, store.AppFilter{OmitEnvironment: true}, page, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || len(apps[0].EnvironmentVariables) != 0 {
		t.Errorf("Apps(OmitEnvironment) variables = %d, want none", len(apps[0].EnvironmentVariables))
	}
}
