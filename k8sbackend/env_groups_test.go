package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestStagingEnvironmentGroup(t *testing.T) {
	plan := testPlan()
	plan.StagingGroup = map[string]string{"GREETING": "from the group", "BP_LOG_LEVEL": "DEBUG", "CF_STACK": "group-stack"}

	env := StagingEnvironment(plan, testConfig())
	for name, want := range map[string]string{
		"GREETING":     "hello",      // the app's variable overrides the group's
		"BP_LOG_LEVEL": "DEBUG",      // the group adds its own
		"CF_STACK":     "ferry-test", // the platform's variables override both
	} {
		if got := env[name]; got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if plan.App.EnvironmentVariables["BP_LOG_LEVEL"] != "" || plan.StagingGroup["GREETING"] != "from the group" {
		t.Error("StagingEnvironment changed its input")
	}
}

func TestDesiredAppRunningGroup(t *testing.T) {
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
	droplet, err := store.CreateDroplet(ctx, st.DB(), store.Droplet{GUID: uuid.NewString(), AppGUID: app.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Image: runImage,
		ProcessTypes: map[string]string{"web": "run"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app.GUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	greeting, level := "from the group", "debug"
	if _, err := store.PatchEnvironmentVariableGroup(ctx, st.DB(), store.EnvironmentVariableGroupRunning,
		map[string]*string{"GREETING": &greeting, "LOG_LEVEL": &level}); err != nil {
		t.Fatal(err)
	}

	got, err := desired.DesiredApp(ctx, app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"GREETING": "hello", "LOG_LEVEL": "debug"}, got.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
}
