package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// stagingSeed creates the rows builds and droplets hang off.
type stagingSeed struct {
	tenancySeed
}

func newStagingSeed(t *testing.T) (stagingSeed, *store.Store) {
	st := pgtest.NewStore(t)
	return stagingSeed{tenancySeed{t, st}}, st
}

func (s stagingSeed) app(spaceGUID, name string) string {
	s.t.Helper()
	app, err := store.CreateApp(context.Background(), s.st.DB(), store.App{GUID: uuid.NewString(), Name: name,
		SpaceGUID: spaceGUID, LifecycleType: store.LifecycleBuildpack})
	if err != nil {
		s.t.Fatal(err)
	}
	return app.GUID
}

func (s stagingSeed) build(appGUID, packageGUID string) store.Build {
	s.t.Helper()
	b, err := store.CreateBuild(context.Background(), s.st.DB(), newBuild(appGUID, packageGUID))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

func newBuild(appGUID, packageGUID string) store.Build {
	return store.Build{GUID: uuid.NewString(), AppGUID: appGUID, PackageGUID: packageGUID,
		PackageImage: "127.0.0.1:5000/ferry/packages/" + packageGUID + "@sha256:" + sha("p"),
		State:        store.BuildStateStaging, LifecycleType: store.LifecycleBuildpack, Buildpacks: []string{"go_buildpack"},
		Stack: "ferry-test", StagingMemoryMB: 1024, StagingDiskMB: 4096, StagingLogRateLimit: -1,
		CreatedByGUID: "user-1", CreatedByName: "alice", Labels: map[string]string{"tier": "web"}}
}

func newDroplet(appGUID, packageGUID string) store.Droplet {
	return store.Droplet{GUID: uuid.NewString(), AppGUID: appGUID, PackageGUID: packageGUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		Image:        "10.88.0.1:5000/ferry/droplets/" + appGUID + "@sha256:" + sha("d"),
		ProcessTypes: map[string]string{"web": "busybox httpd -f"},
		Buildpacks:   []store.DropletBuildpack{{Name: "test/static", BuildpackName: "test/static", Version: "0.0.1"}},
		Stack:        "ferry-test"}
}

func sha(seed string) string {
	out := make([]byte, 64)
	for i := range out {
		out[i] = "0123456789abcdef"[(int(seed[0])+i)%16]
	}
	return string(out)
}

func TestBuildCreateAndRead(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web")

	want := newBuild(app, uuid.NewString())
	got, err := store.CreateBuild(ctx, st.DB(), want)
	if err != nil {
		t.Fatal(err)
	}
	want.SpaceGUID, want.OrgGUID, want.Annotations = space, org, map[string]string{}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		name := p.Last().String()
		return name == ".CreatedAt" || name == ".UpdatedAt"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Errorf("created build (-want +got):\n%s", diff)
	}

	read, err := st.Build(ctx, store.Visibility{All: true}, want.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("read build (-want +got):\n%s", diff)
	}
}

func TestBuildConstraints(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "web")
	seed.build(app, uuid.NewString())

	_, err := store.CreateBuild(ctx, st.DB(), newBuild(app, uuid.NewString()))
	if !store.IsUnique(err, store.ConstraintBuildStagingPerApp) {
		t.Errorf("second staging build: %v, want unique violation of %s", err, store.ConstraintBuildStagingPerApp)
	}

	_, err = store.CreateBuild(ctx, st.DB(), newBuild(uuid.NewString(), uuid.NewString()))
	var fk *store.ForeignKeyError
	if !errors.As(err, &fk) || fk.Constraint != store.ConstraintBuildApp {
		t.Errorf("unknown app: %v, want foreign key violation of %s", err, store.ConstraintBuildApp)
	}

	other := newBuild(app, uuid.NewString())
	other.State = store.BuildStateFailed
	if _, err := store.CreateBuild(ctx, st.DB(), other); err != nil {
		t.Errorf("a finished build next to a staging one: %v", err)
	}
}

func TestBuildVisibility(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	devBuild := seed.build(seed.app(dev, "web"), uuid.NewString())
	prodBuild := seed.build(seed.app(prod, "web"), uuid.NewString())
	user := uuid.NewString()
	seed.role(user, "space_auditor", "", dev)
	vis := store.Visibility{UserGUID: user}

	if _, err := st.Build(ctx, vis, devBuild.GUID); err != nil {
		t.Errorf("build in the user's space: %v", err)
	}
	if _, err := st.Build(ctx, vis, prodBuild.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("build in another space: %v, want ErrNotFound", err)
	}
	builds, total, err := st.Builds(ctx, store.BuildFilter{}, store.Page{Number: 1, PerPage: 10}, vis)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(builds) != 1 || builds[0].GUID != devBuild.GUID {
		t.Errorf("visible builds = %d %v, want only %s", total, builds, devBuild.GUID)
	}
}

func TestBuildListFilters(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	appA, appB := seed.app(space, "a"), seed.app(space, "b")
	pkg := uuid.NewString()
	first := seed.build(appA, pkg)
	if err := st.FailBuild(ctx, first.GUID, "StagingError - Staging error: x", store.AuditEvent{Type: "audit.app.build.failed",
		ActorType: "user", TargetGUID: appA, TargetType: "app"}); err != nil {
		t.Fatal(err)
	}
	second := seed.build(appA, pkg)
	third := seed.build(appB, uuid.NewString())

	all := store.Visibility{All: true}
	for _, tc := range []struct {
		name   string
		filter store.BuildFilter
		want   []string
	}{
		{"no filter", store.BuildFilter{}, []string{first.GUID, second.GUID, third.GUID}},
		{"app", store.BuildFilter{AppGUIDs: []string{appB}}, []string{third.GUID}},
		{"package", store.BuildFilter{PackageGUIDs: []string{pkg}}, []string{first.GUID, second.GUID}},
		{"state", store.BuildFilter{States: []string{store.BuildStateFailed}}, []string{first.GUID}},
		{"guid", store.BuildFilter{CommonFilter: store.CommonFilter{GUIDs: []string{second.GUID}}}, []string{second.GUID}},
		{"label", store.BuildFilter{LabelSelector: store.LabelSelector{{Key: "tier", Operator: store.LabelIn, Values: []string{"web"}}}},
			[]string{first.GUID, second.GUID, third.GUID}},
		{"nothing", store.BuildFilter{States: []string{}}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			builds, total, err := st.Builds(ctx, tc.filter, store.Page{Number: 1, PerPage: 10, OrderBy: "created_at"}, all)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, b := range builds {
				got = append(got, b.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("builds (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}

	page, total, err := st.Builds(ctx, store.BuildFilter{}, store.Page{Number: 2, PerPage: 2, OrderBy: "created_at", Descending: true}, all)
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(page) != 1 || page[0].GUID != first.GUID {
		t.Errorf("second page, newest first = %d %v, want the oldest build", total, page)
	}
}

func TestBuildCompleteOnce(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "web")
	b := seed.build(app, uuid.NewString())

	droplet := newDroplet(app, b.PackageGUID)
	droplet.BuildGUID = b.GUID
	event := store.AuditEvent{Type: "audit.app.build.staged", ActorGUID: "user-1", ActorType: "user", TargetGUID: app, TargetType: "app"}
	if err := st.CompleteBuild(ctx, b.GUID, droplet, event); err != nil {
		t.Fatal(err)
	}
	got, err := st.StagingBuild(ctx, b.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.BuildStateStaged || got.DropletGUID != droplet.GUID || got.Error != "" {
		t.Errorf("completed build = %s %q %q, want STAGED with droplet %s", got.State, got.DropletGUID, got.Error, droplet.GUID)
	}

	again := newDroplet(app, b.PackageGUID)
	if err := st.CompleteBuild(ctx, b.GUID, again, event); !errors.Is(err, store.ErrBuildNotStaging) {
		t.Errorf("second completion: %v, want ErrBuildNotStaging", err)
	}
	if _, err := st.Droplet(ctx, store.Visibility{All: true}, again.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("droplet of the rejected completion: %v, want ErrNotFound", err)
	}
	if err := st.FailBuild(ctx, b.GUID, "StagingError - Staging error: late", event); !errors.Is(err, store.ErrBuildNotStaging) {
		t.Errorf("failing a staged build: %v, want ErrBuildNotStaging", err)
	}
	if err := st.FailBuild(ctx, uuid.NewString(), "x", event); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failing an unknown build: %v, want ErrNotFound", err)
	}

	var events int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE target_guid = $1`, app).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Errorf("audit events = %d, want 1 (only the successful completion records one)", events)
	}
}

func TestBuildFailAndResync(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	a, b := seed.build(seed.app(space, "a"), uuid.NewString()), seed.build(seed.app(space, "b"), uuid.NewString())

	guids, err := st.StagingBuildGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a.GUID, b.GUID}, guids); diff != "" {
		t.Errorf("staging builds (-want +got):\n%s", diff)
	}

	msg := "NoAppDetectedError - An app was not successfully detected by any available buildpack"
	if err := st.FailBuild(ctx, a.GUID, msg, store.AuditEvent{Type: "audit.app.build.failed", ActorType: "user",
		TargetGUID: a.AppGUID, TargetType: "app"}); err != nil {
		t.Fatal(err)
	}
	got, err := st.StagingBuild(ctx, a.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.BuildStateFailed || got.Error != msg {
		t.Errorf("failed build = %s %q", got.State, got.Error)
	}
	guids, err = st.StagingBuildGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{b.GUID}, guids); diff != "" {
		t.Errorf("staging builds after a failure (-want +got):\n%s", diff)
	}
}

func TestBuildStagedWithDroplet(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "web")

	b := newBuild(app, uuid.NewString())
	b.LifecycleType, b.Buildpacks, b.Stack, b.PackageImage = store.LifecycleDocker, nil, "", ""
	d := newDroplet(app, b.PackageGUID)
	d.LifecycleType, d.Buildpacks, d.Stack = store.LifecycleDocker, nil, ""
	d.ExecutionMetadata = `{"entrypoint":["/srv"]}`
	var got store.Build
	err := st.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		got, err = store.CreateStagedBuild(ctx, tx, b, d)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.BuildStateStaged || got.DropletGUID != d.GUID {
		t.Errorf("docker build = %s %q, want STAGED with droplet %s", got.State, got.DropletGUID, d.GUID)
	}
	droplet, err := st.Droplet(ctx, store.Visibility{All: true}, d.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if droplet.BuildGUID != b.GUID || droplet.ExecutionMetadata != d.ExecutionMetadata || len(droplet.Buildpacks) != 0 {
		t.Errorf("docker droplet = %+v", droplet)
	}
}

func TestBuildMetadataUpdate(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web")
	b := seed.build(app, uuid.NewString())

	v := "blue"
	got, err := store.UpdateBuildMetadata(ctx, st.DB(), b.GUID, store.MetadataPatch{
		Labels: map[string]*string{"tier": nil, "color": &v}, Annotations: map[string]*string{"note": &v}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"color": "blue"}, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if got.Annotations["note"] != "blue" || got.UpdatedAt.Before(b.UpdatedAt) {
		t.Errorf("annotations %v, updated_at %v before %v", got.Annotations, got.UpdatedAt, b.UpdatedAt)
	}
	if _, err := store.UpdateBuildMetadata(ctx, st.DB(), uuid.NewString(), store.MetadataPatch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown build: %v, want ErrNotFound", err)
	}
}

func TestBuildNotifyOnCommit(t *testing.T) {
	url := pgtest.NewURL(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seed := stagingSeed{tenancySeed{t, st}}
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web")

	listener := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	defer listener.Close()
	if err := listener.Listen(store.BuildsChannel); err != nil {
		t.Fatal(err)
	}

	rolledBack := newBuild(app, uuid.NewString())
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.NotifyBuild(ctx, tx, rolledBack.GUID); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("the transaction did not roll back")
	}

	b := newBuild(app, uuid.NewString())
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.CreateBuild(ctx, tx, b); err != nil {
			return err
		}
		return store.NotifyBuild(ctx, tx, b.GUID)
	})
	if err != nil {
		t.Fatal(err)
	}

	select {
	case n := <-listener.Notify:
		if n == nil || n.Extra != b.GUID {
			t.Errorf("notification = %+v, want the committed build %s first", n, b.GUID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no notification within 30s")
	}
}
