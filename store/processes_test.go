package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestProcessWebCreatedWithApp(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web", nil)

	processes, err := store.AppProcesses(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(processes) != 1 {
		t.Fatalf("app has %d processes, want 1", len(processes))
	}
	got := processes[0]
	want := store.Process{
		GUID: app.GUID, AppGUID: app.GUID, SpaceGUID: space, OrgGUID: org, Type: "web", Instances: 1,
		MemoryMB: 1024, DiskMB: 1024, LogRateLimit: -1,
		HealthCheck: store.HealthCheck{Type: "port"}, Readiness: store.HealthCheck{Type: "process"},
		Version: got.Version, Labels: map[string]string{}, Annotations: map[string]string{},
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("web process (-want +got):\n%s", diff)
	}
	if got.Version == "" {
		t.Error("web process has no version")
	}
}

func TestEnsureProcessTypesCreatesMissingTypes(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "multi", nil)

	created, err := store.EnsureProcessTypes(ctx, st.DB(), app.GUID, []string{"web", "worker", "clock", "worker"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"worker", "clock"}, processTypesOf(created)); diff != "" {
		t.Errorf("created types (-want +got):\n%s", diff)
	}
	for _, p := range created {
		if p.Instances != 0 || p.HealthCheck.Type != "process" || p.GUID == app.GUID {
			t.Errorf("new %s process = %+v, want 0 instances, a process check and its own guid", p.Type, p)
		}
	}

	again, err := store.EnsureProcessTypes(ctx, st.DB(), app.GUID, []string{"worker", "web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second call created %v, want nothing", processTypesOf(again))
	}
	all, err := store.AppProcesses(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"clock", "web", "worker"}, processTypesOf(all)); diff != "" {
		t.Errorf("app processes (-want +got):\n%s", diff)
	}
}

func processTypesOf(processes []store.Process) []string {
	types := []string{}
	for _, p := range processes {
		types = append(types, p.Type)
	}
	return types
}

func TestCreateProcessDuplicateType(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a", nil)

	_, err := store.CreateProcess(ctx, st.DB(), store.NewProcess(app.GUID, "web"))
	var unique *store.UniqueError
	if !errors.As(err, &unique) {
		t.Fatalf("CreateProcess of a second web = %v, want a unique violation", err)
	}
	// The web process has the app's guid, so the first violated constraint
	// may be the primary key or the type, and both reject the duplicate.
	if unique.Constraint != store.ConstraintProcessType && unique.Constraint != "processes_pkey" {
		t.Errorf("constraint = %q", unique.Constraint)
	}
	worker := store.NewProcess(app.GUID, "worker")
	if _, err := store.CreateProcess(ctx, st.DB(), worker); err != nil {
		t.Fatal(err)
	}
	other := store.NewProcess(app.GUID, "worker")
	if _, err := store.CreateProcess(ctx, st.DB(), other); !store.IsUnique(err, store.ConstraintProcessType) {
		t.Errorf("CreateProcess of a second worker = %v, want a violation of %s", err, store.ConstraintProcessType)
	}
}

func TestSaveProcessVersion(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a", nil)
	original, err := st.Process(ctx, store.Visibility{All: true}, app.GUID)
	if err != nil {
		t.Fatal(err)
	}

	save := func(mutate func(*store.Process), patch store.MetadataPatch) store.Process {
		t.Helper()
		var saved store.Process
		err := st.InTx(ctx, func(tx *sql.Tx) error {
			p, err := store.LockProcess(ctx, tx, app.GUID)
			if err != nil {
				return err
			}
			mutate(&p)
			saved, err = store.SaveProcess(ctx, tx, p, patch)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return saved
	}

	scaled := save(func(p *store.Process) { p.Instances = 4 }, store.MetadataPatch{})
	if scaled.Instances != 4 || scaled.Version != original.Version {
		t.Errorf("after scaling: instances %d, version changed %t; want 4 and the same version",
			scaled.Instances, scaled.Version != original.Version)
	}

	tier := "web"
	labelled := save(func(*store.Process) {}, store.MetadataPatch{Labels: map[string]*string{"tier": &tier}})
	if labelled.Labels["tier"] != "web" || labelled.Version != original.Version {
		t.Errorf("after labelling: labels %v, version changed %t", labelled.Labels, labelled.Version != original.Version)
	}

	command := "./run --fast"
	changed := save(func(p *store.Process) {
		p.Command = &command
		p.MemoryMB = 256
		p.HealthCheck = store.HealthCheck{Type: "http", Endpoint: "/health", Timeout: 30, InvocationTimeout: 2, Interval: 5}
		p.Readiness = store.HealthCheck{Type: "http", Endpoint: "/ready", InvocationTimeout: 3, Interval: 7}
		p.CPUMillicores = 250
	}, store.MetadataPatch{})
	if changed.Version == original.Version {
		t.Error("version did not change with the command, memory and health checks")
	}
	want := store.Process{
		GUID: app.GUID, AppGUID: app.GUID, SpaceGUID: app.SpaceGUID, OrgGUID: app.OrgGUID, Type: "web",
		Command: &command, Instances: 4, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1, CPUMillicores: 250,
		HealthCheck: store.HealthCheck{Type: "http", Endpoint: "/health", Timeout: 30, InvocationTimeout: 2, Interval: 5},
		Readiness:   store.HealthCheck{Type: "http", Endpoint: "/ready", InvocationTimeout: 3, Interval: 7},
		Version:     changed.Version, Labels: map[string]string{"tier": "web"}, Annotations: map[string]string{},
		CreatedAt: changed.CreatedAt, UpdatedAt: changed.UpdatedAt,
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("saved process (-want +got):\n%s", diff)
	}

	reset := save(func(p *store.Process) { p.Command = nil; p.HealthCheck = store.HealthCheck{Type: "port"} }, store.MetadataPatch{})
	if reset.Command != nil || reset.HealthCheck != (store.HealthCheck{Type: "port"}) || reset.Version == changed.Version {
		t.Errorf("after reset: command %v, health check %+v, version changed %t", reset.Command, reset.HealthCheck, reset.Version != changed.Version)
	}
}

func TestProcessDetectedCommandFromCurrentDroplet(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a", nil)

	droplet, err := store.CreateDroplet(ctx, st.DB(), store.Droplet{
		GUID: uuid.NewString(), AppGUID: app.GUID, State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		ProcessTypes: map[string]string{"web": "bundle exec rackup", "worker": "bundle exec sidekiq"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app.GUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	p, err := st.ProcessByType(ctx, store.Visibility{All: true}, app.GUID, "web")
	if err != nil {
		t.Fatal(err)
	}
	if p.DetectedCommand != "bundle exec rackup" || p.EffectiveCommand() != "bundle exec rackup" {
		t.Errorf("detected %q, effective %q; want the droplet's web command", p.DetectedCommand, p.EffectiveCommand())
	}
}

func TestProcessesListFiltersAndVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	devApp := seed.app(dev, "a", nil)
	prodApp := seed.app(prod, "b", nil)
	if _, err := store.EnsureProcessTypes(ctx, st.DB(), devApp.GUID, []string{"worker"}); err != nil {
		t.Fatal(err)
	}
	developer := uuid.NewString()
	seed.role(developer, "space_developer", "", dev)

	page := store.Page{Number: 1, PerPage: 10, OrderBy: "created_at"}
	tests := []struct {
		name   string
		filter store.ProcessFilter
		vis    store.Visibility
		want   []string
	}{
		{"all for admins", store.ProcessFilter{}, store.Visibility{All: true}, []string{devApp.GUID + "/web", prodApp.GUID + "/web", devApp.GUID + "/worker"}},
		{"developer sees own space", store.ProcessFilter{}, store.Visibility{UserGUID: developer}, []string{devApp.GUID + "/web", devApp.GUID + "/worker"}},
		{"stranger sees nothing", store.ProcessFilter{}, store.Visibility{UserGUID: uuid.NewString()}, []string{}},
		{"types", store.ProcessFilter{Types: []string{"web"}}, store.Visibility{All: true}, []string{devApp.GUID + "/web", prodApp.GUID + "/web"}},
		{"app guids", store.ProcessFilter{AppGUIDs: []string{prodApp.GUID}}, store.Visibility{All: true}, []string{prodApp.GUID + "/web"}},
		{"space guids", store.ProcessFilter{SpaceGUIDs: []string{dev}}, store.Visibility{All: true}, []string{devApp.GUID + "/web", devApp.GUID + "/worker"}},
		{"organization guids", store.ProcessFilter{OrganizationGUIDs: []string{uuid.NewString()}}, store.Visibility{All: true}, []string{}},
		{"guids", store.ProcessFilter{CommonFilter: store.CommonFilter{GUIDs: []string{prodApp.GUID}}}, store.Visibility{All: true}, []string{prodApp.GUID + "/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			processes, total, err := st.Processes(ctx, tt.filter, page, tt.vis)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, p := range processes {
				got = append(got, p.AppGUID+"/"+p.Type)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("processes (-want +got):\n%s", diff)
			}
			if total != len(tt.want) {
				t.Errorf("total = %d, want %d", total, len(tt.want))
			}
		})
	}

	second, total, err := st.Processes(ctx, store.ProcessFilter{}, store.Page{Number: 2, PerPage: 2, OrderBy: "created_at"}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 || total != 3 {
		t.Errorf("page 2 of 2: %d processes, total %d; want 1 and 3", len(second), total)
	}
}

func TestRouteIntentRoundTrip(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a", nil)

	empty, err := store.AppRouteIntent(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Routes) != 0 || empty.NoRoute || empty.DefaultRoute {
		t.Errorf("intent before any manifest = %+v, want empty", empty)
	}

	intent := store.RouteIntent{AppGUID: app.GUID, DefaultRoute: true, Routes: []store.ManifestRoute{
		{Route: "a.example.com/api", Protocol: "http2", Options: map[string]string{"loadbalancing": "round-robin"}},
	}}
	if err := store.SetRouteIntent(ctx, st.DB(), intent); err != nil {
		t.Fatal(err)
	}
	got, err := store.AppRouteIntent(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	intent.UpdatedAt = got.UpdatedAt
	if diff := cmp.Diff(intent, got); diff != "" {
		t.Errorf("intent (-want +got):\n%s", diff)
	}

	if err := store.SetRouteIntent(ctx, st.DB(), store.RouteIntent{AppGUID: app.GUID, NoRoute: true}); err != nil {
		t.Fatal(err)
	}
	all, err := store.RouteIntents(ctx, st.DB(), []string{app.GUID, uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || !all[app.GUID].NoRoute || len(all[app.GUID].Routes) != 0 {
		t.Errorf("intents = %+v, want one with no route", all)
	}
}

func TestAppByNameIgnoresCase(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "MyApp", nil)

	got, err := store.AppByName(ctx, st.DB(), space, "myapp")
	if err != nil || got.GUID != app.GUID {
		t.Errorf("AppByName = %v, %v; want %s", got.GUID, err, app.GUID)
	}
	if _, err := store.AppByName(ctx, st.DB(), space, "other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AppByName of a missing app = %v, want ErrNotFound", err)
	}
}
