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

// scheduledTaskFixture is an org with spaces dev and prod, an app in each,
// and a user with a role in dev only.
type scheduledTaskFixture struct {
	st        *store.Store
	org       string
	dev, prod string
	web, api  store.App
	devUser   string
}

func newScheduledTaskFixture(t *testing.T) scheduledTaskFixture {
	t.Helper()
	st := pgtest.NewStore(t)
	seed := appSeed{tenancySeed{t, st}}
	f := scheduledTaskFixture{st: st, org: seed.org("acme", nil), devUser: uuid.NewString()}
	f.dev = seed.space(f.org, "dev", nil)
	f.prod = seed.space(f.org, "prod", nil)
	f.web = seed.app(f.dev, "web", nil)
	f.api = seed.app(f.prod, "api", nil)
	seed.role(f.devUser, "space_developer", "", f.dev)
	return f
}

func nightly(appGUID string) store.ScheduledTask {
	return store.ScheduledTask{
		AppGUID: appGUID, Name: "nightly", Command: "bin/report", Schedule: "0 2 * * *", TimeZone: "Europe/Berlin",
		ConcurrencyPolicy: store.ConcurrencyForbid, SuccessfulHistoryLimit: 3, FailedHistoryLimit: 1,
		DeadlineSeconds: 600, StartingDeadlineSeconds: 60, MemoryMB: 256, DiskMB: 512, Labels: map[string]string{"team": "ops"},
	}
}

func TestScheduledTaskCreateAndRead(t *testing.T) {
	f := newScheduledTaskFixture(t)
	ctx := context.Background()

	created, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID))
	if err != nil {
		t.Fatal(err)
	}
	want := nightly(f.web.GUID)
	want.GUID, want.SpaceGUID, want.OrgGUID = created.GUID, f.dev, f.org
	want.Annotations = map[string]string{}
	want.CreatedAt, want.UpdatedAt = created.CreatedAt, created.UpdatedAt
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}

	got, err := f.st.ScheduledTask(ctx, store.Visibility{UserGUID: f.devUser}, created.GUID)
	if err != nil {
		t.Fatalf("read as a space developer: %v", err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
	if _, err := f.st.ScheduledTask(ctx, store.Visibility{UserGUID: uuid.NewString()}, created.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read by a stranger = %v, want ErrNotFound", err)
	}
}

func TestScheduledTaskCreateErrors(t *testing.T) {
	f := newScheduledTaskFixture(t)
	ctx := context.Background()
	if _, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID)); err != nil {
		t.Fatal(err)
	}

	_, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID))
	if !store.IsUnique(err, store.ConstraintScheduledTaskName) {
		t.Errorf("second create with the same name = %v, want a unique violation", err)
	}
	// The same name on another app is fine.
	if _, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.api.GUID)); err != nil {
		t.Errorf("create on another app = %v", err)
	}
	var fk *store.ForeignKeyError
	if _, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(uuid.NewString())); !errors.As(err, &fk) {
		t.Errorf("create for a missing app = %v, want a *ForeignKeyError", err)
	}
	bad := nightly(f.web.GUID)
	bad.Name, bad.ConcurrencyPolicy = "bad policy", "Sometimes"
	if _, err := store.CreateScheduledTask(ctx, f.st.DB(), bad); err == nil {
		t.Error("create with an unknown concurrency policy succeeded")
	}
}

func TestScheduledTaskSaveAndDelete(t *testing.T) {
	f := newScheduledTaskFixture(t)
	ctx := context.Background()
	created, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID))
	if err != nil {
		t.Fatal(err)
	}

	var saved store.ScheduledTask
	err = f.st.InTx(ctx, func(tx *sql.Tx) error {
		current, err := store.LockScheduledTask(ctx, tx, created.GUID)
		if err != nil {
			return err
		}
		current.Suspended = true
		current.Schedule = "*/5 * * * *"
		current.TimeZone = ""
		current.DeadlineSeconds = 0
		current.StartingDeadlineSeconds = 0
		current.ConcurrencyPolicy = store.ConcurrencyReplace
		value := "yes"
		saved, err = store.SaveScheduledTask(ctx, tx, current, store.MetadataPatch{
			Labels: map[string]*string{"team": nil, "paused": &value},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Suspended || saved.Schedule != "*/5 * * * *" || saved.TimeZone != "" || saved.DeadlineSeconds != 0 || saved.StartingDeadlineSeconds != 0 ||
		saved.ConcurrencyPolicy != store.ConcurrencyReplace {
		t.Errorf("saved = %+v, want suspended, */5 * * * *, no time zone, no deadline, Replace", saved)
	}
	if diff := cmp.Diff(map[string]string{"paused": "yes"}, saved.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	if err := store.DeleteScheduledTask(ctx, f.st.DB(), created.GUID); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteScheduledTask(ctx, f.st.DB(), created.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
}

func TestScheduledTasksListFilters(t *testing.T) {
	f := newScheduledTaskFixture(t)
	ctx := context.Background()
	webNightly, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID))
	if err != nil {
		t.Fatal(err)
	}
	hourly := nightly(f.web.GUID)
	hourly.Name, hourly.Schedule = "hourly", "@hourly"
	webHourly, err := store.CreateScheduledTask(ctx, f.st.DB(), hourly)
	if err != nil {
		t.Fatal(err)
	}
	apiNightly, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.api.GUID))
	if err != nil {
		t.Fatal(err)
	}

	all := store.Visibility{All: true}
	page := store.Page{Number: 1, PerPage: 50, OrderBy: "created_at"}
	for _, tc := range []struct {
		name   string
		filter store.ScheduledTaskFilter
		vis    store.Visibility
		want   []string
	}{
		{"everything", store.ScheduledTaskFilter{}, all, []string{webNightly.GUID, webHourly.GUID, apiNightly.GUID}},
		{"names", store.ScheduledTaskFilter{Names: []string{"nightly"}}, all, []string{webNightly.GUID, apiNightly.GUID}},
		{"app", store.ScheduledTaskFilter{AppGUIDs: []string{f.web.GUID}}, all, []string{webNightly.GUID, webHourly.GUID}},
		{"space", store.ScheduledTaskFilter{SpaceGUIDs: []string{f.prod}}, all, []string{apiNightly.GUID}},
		{"organization", store.ScheduledTaskFilter{OrganizationGUIDs: []string{f.org}}, all, []string{webNightly.GUID, webHourly.GUID, apiNightly.GUID}},
		{"label selector", store.ScheduledTaskFilter{LabelSelector: store.LabelSelector{{Key: "team", Operator: store.LabelIn, Values: []string{"ops"}}}}, all,
			[]string{webNightly.GUID, webHourly.GUID, apiNightly.GUID}},
		{"visible to a space developer", store.ScheduledTaskFilter{}, store.Visibility{UserGUID: f.devUser}, []string{webNightly.GUID, webHourly.GUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, total, err := f.st.ScheduledTasks(ctx, tc.filter, page, tc.vis)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, task := range tasks {
				got = append(got, task.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("guids (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}

	spaces, err := f.st.ScheduledTaskSpaceGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(spaces) != 2 {
		t.Errorf("spaces with scheduled tasks = %v, want dev and prod", spaces)
	}
	inDev, err := f.st.SpaceScheduledTasks(ctx, f.dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(inDev) != 2 {
		t.Errorf("scheduled tasks of dev = %d, want 2", len(inDev))
	}
}

func TestScheduledTaskRecordRunOnce(t *testing.T) {
	f := newScheduledTaskFixture(t)
	ctx := context.Background()
	scheduled, err := store.CreateScheduledTask(ctx, f.st.DB(), nightly(f.web.GUID))
	if err != nil {
		t.Fatal(err)
	}
	run := store.ScheduledRun{TaskGUID: uuid.NewString(), JobName: "st-" + scheduled.GUID + "-29000000"}

	created, err := f.st.RecordScheduledRun(ctx, scheduled, run)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("first RecordScheduledRun reported an existing task")
	}
	created, err = f.st.RecordScheduledRun(ctx, scheduled, run)
	if err != nil {
		t.Fatalf("second RecordScheduledRun = %v, want no error", err)
	}
	if created {
		t.Error("second RecordScheduledRun inserted another task")
	}

	runs, err := f.st.ScheduledTaskRuns(ctx, scheduled.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("runs = %d, want 1", len(runs))
	}
	task := runs[0]
	if task.GUID != run.TaskGUID || task.JobName != run.JobName || task.State != store.TaskStatePending ||
		task.Name != "nightly" || task.Command != "bin/report" || task.MemoryMB != 256 || task.SequenceID != 1 {
		t.Errorf("recorded task = %+v", task)
	}

	var events []string
	rows, err := f.st.DB().QueryContext(ctx, `SELECT actor_type || ' ' || actor_guid || ' ' || target_guid
		FROM audit_events WHERE type = 'audit.app.task.create'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if want := "scheduled_task " + scheduled.GUID + " " + f.web.GUID; len(events) != 1 || events[0] != want {
		t.Errorf("task create events = %q, want one %q", events, want)
	}

	// Deleting the scheduled task keeps its runs.
	if err := store.DeleteScheduledTask(ctx, f.st.DB(), scheduled.GUID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Task(ctx, store.Visibility{All: true}, run.TaskGUID); err != nil {
		t.Errorf("run after the scheduled task's delete: %v", err)
	}
}
