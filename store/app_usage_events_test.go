package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func recordUsageEvents(t *testing.T, st *store.Store, events ...store.AppUsageEvent) {
	t.Helper()
	err := st.InTx(context.Background(), func(tx *sql.Tx) error {
		return store.CreateAppUsageEvents(context.Background(), tx, events)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func usageEventGUIDs(events []store.AppUsageEvent) []string {
	out := []string{}
	for _, ev := range events {
		out = append(out, ev.GUID)
	}
	return out
}

func TestAppUsageEventsRoundTrip(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	two, mb := 2, int64(256)
	full := store.AppUsageEvent{
		GUID: uuid.NewString(), State: "STARTED", PreviousState: "STOPPED", InstanceCount: 3, PreviousInstanceCount: &two,
		MemoryMB: 512, PreviousMemoryMB: &mb, AppGUID: "app", AppName: "web", ProcessGUID: "proc", ProcessType: "web",
		SpaceGUID: "space", SpaceName: "dev", OrgGUID: "org", BuildpackGUID: "bp", BuildpackName: "paketo/node",
	}
	bare := store.AppUsageEvent{GUID: uuid.NewString(), State: "TASK_STARTED", InstanceCount: 1, MemoryMB: 128,
		AppGUID: "app", AppName: "web", SpaceGUID: "space", SpaceName: "dev", OrgGUID: "org", TaskGUID: "task", TaskName: "migrate"}
	recordUsageEvents(t, st, full, bare)

	for _, want := range []store.AppUsageEvent{full, bare} {
		got, err := st.AppUsageEvent(ctx, want.GUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt.IsZero() {
			t.Errorf("event %s has no created_at", want.GUID)
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.AppUsageEvent{}, "CreatedAt")); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	}
	if _, err := st.AppUsageEvent(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing event: %v, want ErrNotFound", err)
	}

	err := st.InTx(ctx, func(tx *sql.Tx) error {
		return store.CreateAppUsageEvents(ctx, tx, []store.AppUsageEvent{{State: "STARTED", AppGUID: "app"}})
	})
	if err == nil {
		t.Error("an event without a guid was recorded")
	}
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		return store.CreateAppUsageEvents(ctx, tx, []store.AppUsageEvent{full})
	})
	if !store.IsUnique(err, "app_usage_events_guid_key") {
		t.Errorf("duplicate guid: %v, want a unique violation", err)
	}
}

func TestAppUsageEventsAfterGUID(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	var events []store.AppUsageEvent
	for _, guid := range []string{"a", "b", "c"} {
		events = append(events, store.AppUsageEvent{GUID: guid, State: "STARTED", InstanceCount: 1, MemoryMB: 1,
			AppGUID: "app", AppName: "web", SpaceGUID: "s", SpaceName: "dev", OrgGUID: "o"})
	}
	recordUsageEvents(t, st, events...)
	page := store.Page{Number: 1, PerPage: 50, OrderBy: "id"}

	got, total, err := st.AppUsageEvents(ctx, store.AppUsageEventFilter{AfterGUID: "a"}, page)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "c"}, usageEventGUIDs(got)); diff != "" || total != 2 {
		t.Errorf("after a: total %d (-want +got):\n%s", total, diff)
	}
	if _, _, err := st.AppUsageEvents(ctx, store.AppUsageEventFilter{AfterGUID: "zzz"}, page); !errors.Is(err, store.ErrUnknownAfterGUID) {
		t.Errorf("unknown after guid: %v, want ErrUnknownAfterGUID", err)
	}

	// A page past the last still reports the total.
	got, total, err = st.AppUsageEvents(ctx, store.AppUsageEventFilter{}, store.Page{Number: 3, PerPage: 2, OrderBy: "id"})
	if err != nil || len(got) != 0 || total != 3 {
		t.Errorf("page past the end = %d events, total %d, %v; want none of 3", len(got), total, err)
	}

	err = st.InTx(ctx, func(tx *sql.Tx) error { return store.PurgeAppUsageEvents(ctx, tx) })
	if err != nil {
		t.Fatal(err)
	}
	if got, total, err = st.AppUsageEvents(ctx, store.AppUsageEventFilter{}, page); err != nil || len(got) != 0 || total != 0 {
		t.Errorf("after purge = %d events, total %d, %v; want none", len(got), total, err)
	}
}

func TestProcessFootprints(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	started := seed.app(space, "started", nil)
	stopped := seed.app(space, "stopped", nil)
	if _, err := store.SetAppState(ctx, st.DB(), started.GUID, store.AppStateStarted); err != nil {
		t.Fatal(err)
	}
	droplet, err := store.CreateDroplet(ctx, st.DB(), store.Droplet{GUID: uuid.NewString(), AppGUID: started.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Stack: "ferry-test",
		Buildpacks: []store.DropletBuildpack{{Name: "first"}, {Name: "last"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), started.GUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}

	var footprints, all []store.ProcessFootprint
	var state string
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if state, err = store.LockAppState(ctx, tx, started.GUID); err != nil {
			return err
		}
		if footprints, err = store.AppProcessFootprints(ctx, tx, started.GUID); err != nil {
			return err
		}
		all, err = store.StartedProcessFootprints(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if state != store.AppStateStarted {
		t.Errorf("locked state = %q, want STARTED", state)
	}
	want := []store.ProcessFootprint{{AppGUID: started.GUID, AppName: "started", AppState: store.AppStateStarted,
		ProcessGUID: started.GUID, ProcessType: "web", Instances: 1, MemoryMB: 1024, SpaceGUID: space, SpaceName: "dev",
		OrgGUID: org, Buildpack: "last", Stack: "ferry-test"}}
	if diff := cmp.Diff(want, footprints); diff != "" {
		t.Errorf("footprints of the started app (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("footprints of started apps (-want +got):\n%s", diff)
	}

	err = st.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		footprints, err = store.AppProcessFootprints(ctx, tx, stopped.GUID)
		return err
	})
	if err != nil || len(footprints) != 1 || footprints[0].AppState != store.AppStateStopped || footprints[0].Buildpack != "" {
		t.Errorf("footprints of the stopped app = %+v, %v; want its web process, stopped, without buildpack", footprints, err)
	}
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		_, err := store.LockAppState(ctx, tx, "missing")
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lock of a missing app: %v, want ErrNotFound", err)
	}
}
