package k8sbackend

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestStoreDesiredApps(t *testing.T) {
	ctx := t.Context()
	st := pgtest.NewStore(t)
	desired := StoreDesiredApps{Store: st}

	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	space, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org.GUID})
	if err != nil {
		t.Fatal(err)
	}
	app, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "web-app", SpaceGUID: space.GUID,
		LifecycleType: store.LifecycleBuildpack, EnvironmentVariables: map[string]string{"GREETING": "hello"}})
	if err != nil {
		t.Fatal(err)
	}

	got, err := desired.DesiredApp(ctx, app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Droplet != nil || got.GUID != app.GUID {
		t.Errorf("app without droplet = %+v, want its GUID and no droplet", got)
	}
	guids, err := desired.DesiredAppGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(guids, app.GUID) {
		t.Errorf("DesiredAppGUIDs() = %v, want no app without droplet", guids)
	}

	droplet, err := store.CreateDroplet(ctx, st.DB(), store.Droplet{GUID: uuid.NewString(), AppGUID: app.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Image: runImage,
		ProcessTypes: map[string]string{"web": "run", "worker": "work"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app.GUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureProcessTypes(ctx, st.DB(), app.GUID, []string{"web", "worker"}); err != nil {
		t.Fatal(err)
	}
	processes, err := store.AppProcesses(ctx, st.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppState(ctx, st.DB(), app.GUID, store.AppStateStarted); err != nil {
		t.Fatal(err)
	}

	got, err = desired.DesiredApp(ctx, app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	want := AppSpec{
		GUID: app.GUID, Name: "web-app", SpaceGUID: space.GUID, SpaceName: "dev", OrgGUID: org.GUID, OrgName: "acme",
		Started: true,
		Droplet: &DropletSpec{GUID: droplet.GUID, LifecycleType: store.LifecycleBuildpack, Image: runImage,
			ProcessTypes: map[string]string{"web": "run", "worker": "work"}},
		Env:      map[string]string{"GREETING": "hello"},
		Revision: "1",
	}
	for _, p := range processes {
		want.Processes = append(want.Processes, ProcessSpec{GUID: p.GUID, Type: p.Type, Instances: int32(p.Instances),
			MemoryMB: p.MemoryMB, DiskMB: p.DiskMB, LogRateLimit: p.LogRateLimit,
			HealthCheck: HealthCheck{Type: p.HealthCheck.Type}, Readiness: HealthCheck{Type: p.Readiness.Type}})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DesiredApp() mismatch (-want +got):\n%s", diff)
	}
	if len(got.Processes) != 2 || got.Processes[0].Type != "web" || got.Processes[0].Instances != 1 || got.Processes[1].Instances != 0 {
		t.Errorf("processes = %+v, want web with 1 instance and worker with 0", got.Processes)
	}

	guids, err = desired.DesiredAppGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(guids, app.GUID) {
		t.Errorf("DesiredAppGUIDs() = %v, want the app with a droplet", guids)
	}

	if err := store.DeleteApp(ctx, st.DB(), app.GUID); err != nil {
		t.Fatal(err)
	}
	if _, err := desired.DesiredApp(ctx, app.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DesiredApp() of a deleted app: %v, want store.ErrNotFound", err)
	}
}

func TestAppSpecFromStoreCommands(t *testing.T) {
	custom := "./run --fast"
	processes := []store.Process{
		{GUID: "p1", Type: "web", Command: &custom, Instances: 3, MemoryMB: 64, DiskMB: 128, LogRateLimit: 1024, CPUMillicores: 500,
			HealthCheck: store.HealthCheck{Type: "http", Endpoint: "/health", Timeout: 10, InvocationTimeout: 2, Interval: 5},
			Readiness:   store.HealthCheck{Type: "port", InvocationTimeout: 3, Interval: 7}},
		{GUID: "p2", Type: "worker", DetectedCommand: "work"},
	}
	app := store.App{GUID: runApp, Name: "my-app", SpaceGUID: runSpace, OrgGUID: runOrg, State: store.AppStateStopped}
	got, err := AppSpecFromStore(app, "dev", "acme", store.Droplet{GUID: runDroplet, LifecycleType: store.LifecycleBuildpack}, processes)
	if err != nil {
		t.Fatal(err)
	}
	want := []ProcessSpec{
		{GUID: "p1", Type: "web", Command: "./run --fast", Instances: 3, MemoryMB: 64, DiskMB: 128, LogRateLimit: 1024,
			CPUMillicores: 500,
			HealthCheck:   HealthCheck{Type: "http", Endpoint: "/health", Timeout: 10, InvocationTimeout: 2, Interval: 5},
			Readiness:     HealthCheck{Type: "port", InvocationTimeout: 3, Interval: 7}},
		{GUID: "p2", Type: "worker"},
	}
	if diff := cmp.Diff(want, got.Processes); diff != "" {
		t.Errorf("processes mismatch (-want +got):\n%s", diff)
	}
	if got.Started {
		t.Error("a STOPPED app is started")
	}
}

// TestRestartChangesPodTemplate checks which stored changes give the
// StatefulSet a new pod template, which makes it replace running pods.
// Only a higher start count does: environment variables reach running
// instances on their next start, as on Cloud Foundry.
func TestRestartChangesPodTemplate(t *testing.T) {
	base := store.App{GUID: runApp, Name: "my-app", SpaceGUID: runSpace, OrgGUID: runOrg, State: store.AppStateStarted,
		StartCount: 4, EnvironmentVariables: map[string]string{"GREETING": "hello"}}
	droplet := store.Droplet{GUID: runDroplet, LifecycleType: store.LifecycleBuildpack, Image: runImage,
		ProcessTypes: map[string]string{"web": "run"}}
	processes := []store.Process{{GUID: runWeb, Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024}}

	for _, tc := range []struct {
		name         string
		change       func(*store.App)
		wantRevision string
		wantReplaced bool
		wantReplicas int32
	}{
		{"unchanged", func(*store.App) {}, "4", false, 2},
		{"restart", func(a *store.App) { a.StartCount++ }, "5", true, 2},
		{"stop", func(a *store.App) { a.State = store.AppStateStopped }, "4", false, 0},
		{"start after stop", func(a *store.App) { a.StartCount++ }, "5", true, 2},
		{"environment change", func(a *store.App) { a.EnvironmentVariables = map[string]string{"GREETING": "bye"} }, "4", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := base
			tc.change(&changed)
			before := statefulSetFromStore(t, base, droplet, processes)
			after := statefulSetFromStore(t, changed, droplet, processes)

			if got := after.Spec.Template.Labels[LabelRevision]; got != tc.wantRevision {
				t.Errorf("revision label = %q, want %q", got, tc.wantRevision)
			}
			if replaced := !cmp.Equal(before.Spec.Template, after.Spec.Template); replaced != tc.wantReplaced {
				t.Errorf("pod template changed = %v, want %v", replaced, tc.wantReplaced)
			}
			if got := *after.Spec.Replicas; got != tc.wantReplicas {
				t.Errorf("replicas = %d, want %d", got, tc.wantReplicas)
			}
		})
	}
}

// statefulSetFromStore translates stored rows into the StatefulSet of the
// app's first process.
func statefulSetFromStore(t *testing.T, app store.App, droplet store.Droplet, processes []store.Process) *appsv1.StatefulSet {
	t.Helper()
	spec, err := AppSpecFromStore(app, "dev", "acme", droplet, processes)
	if err != nil {
		t.Fatal(err)
	}
	return MakeStatefulSet(spec, spec.Processes[0], runTestWorkload())
}
