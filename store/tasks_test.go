package store_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

func newTask(appGUID, dropletGUID, name string) store.Task {
	return store.Task{GUID: uuid.NewString(), AppGUID: appGUID, Name: name, Command: "echo hi", MemoryMB: 256,
		DiskMB: 512, LogRateLimit: -1, DropletGUID: dropletGUID, CreatedByGUID: "user-1"}
}

func (s stagingSeed) task(appGUID, dropletGUID, name string) store.Task {
	s.t.Helper()
	t, err := store.CreateTask(context.Background(), s.st.DB(), newTask(appGUID, dropletGUID, name))
	if err != nil {
		s.t.Fatal(err)
	}
	return t
}

func TestTaskCreateAndRead(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	space := seed.space(org, "dev", nil)
	app := seed.app(space, "web")
	droplet := seed.droplet(app, uuid.NewString())

	want := newTask(app, droplet.GUID, "migrate")
	want.Labels = map[string]string{"a": "1"}
	got, err := store.CreateTask(ctx, st.DB(), want)
	if err != nil {
		t.Fatal(err)
	}
	want.SpaceGUID, want.OrgGUID, want.DropletImage = space, org, droplet.Image
	want.State, want.SequenceID, want.Annotations = store.TaskStatePending, 1, map[string]string{}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		name := p.Last().String()
		return name == ".CreatedAt" || name == ".UpdatedAt"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignore); diff != "" {
		t.Errorf("created task (-want +got):\n%s", diff)
	}

	read, err := st.Task(ctx, store.Visibility{All: true}, got.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("read task (-created +read):\n%s", diff)
	}
	if _, err := st.Task(ctx, store.Visibility{UserGUID: uuid.NewString()}, got.GUID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("task for a stranger: %v, want ErrNotFound", err)
	}
}

func TestTaskSequenceIDsPerApp(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	space := seed.space(seed.org("acme", nil), "dev", nil)
	appA, appB := seed.app(space, "a"), seed.app(space, "b")

	// Concurrent creates, each in its own transaction, get distinct
	// numbers.
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			errs <- st.InTx(ctx, func(tx *sql.Tx) error {
				_, err := store.CreateTask(ctx, tx, newTask(appA, "", "t"))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	other := seed.task(appB, "", "first of b")
	if other.SequenceID != 1 {
		t.Errorf("first task of another app: sequence id %d, want 1", other.SequenceID)
	}

	tasks, total, err := st.Tasks(ctx, store.TaskFilter{AppGUIDs: []string{appA}}, store.Page{}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, task := range tasks {
		ids = append(ids, task.SequenceID)
	}
	// Concurrent transactions may commit out of order, so compare the set.
	slices.Sort(ids)
	if diff := cmp.Diff([]int64{1, 2, 3, 4, 5}, ids); diff != "" || total != 5 {
		t.Errorf("sequence ids of app a (-want +got), total %d:\n%s", total, diff)
	}
}

func TestTaskCreateForMissingApp(t *testing.T) {
	_, st := newStagingSeed(t)
	_, err := store.CreateTask(context.Background(), st.DB(), newTask(uuid.NewString(), "", "x"))
	var fk *store.ForeignKeyError
	if !errors.As(err, &fk) || fk.Constraint != store.ConstraintTaskApp {
		t.Errorf("create task of a missing app: %v, want a foreign key error on %s", err, store.ConstraintTaskApp)
	}
}

func TestTaskListFilters(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	org := seed.org("acme", nil)
	dev, prod := seed.space(org, "dev", nil), seed.space(org, "prod", nil)
	appA, appB := seed.app(dev, "a"), seed.app(prod, "b")
	first, second, third := seed.task(appA, "", "one"), seed.task(appA, "", "two"), seed.task(appB, "", "one")
	if _, err := st.SetTaskState(ctx, second.GUID, store.TaskStateRunning, ""); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		filter store.TaskFilter
		want   []string
	}{
		{"all", store.TaskFilter{}, []string{first.GUID, second.GUID, third.GUID}},
		{"names", store.TaskFilter{Names: []string{"one"}}, []string{first.GUID, third.GUID}},
		{"states", store.TaskFilter{States: []string{store.TaskStateRunning}}, []string{second.GUID}},
		{"space", store.TaskFilter{SpaceGUIDs: []string{prod}}, []string{third.GUID}},
		{"organization", store.TaskFilter{OrganizationGUIDs: []string{org}}, []string{first.GUID, second.GUID, third.GUID}},
		{"sequence ids", store.TaskFilter{AppGUIDs: []string{appA}, SequenceIDs: []int64{2}}, []string{second.GUID}},
		{"guids", store.TaskFilter{CommonFilter: store.CommonFilter{GUIDs: []string{third.GUID}}}, []string{third.GUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tasks, total, err := st.Tasks(ctx, tc.filter, store.Page{}, store.Visibility{All: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, task := range tasks {
				got = append(got, task.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Errorf("total = %d, want %d", total, len(tc.want))
			}
		})
	}
}

func TestTaskStateTransitions(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a")

	task := seed.task(app, "", "t")
	running, err := st.SetTaskState(ctx, task.GUID, store.TaskStateRunning, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if running.State != store.TaskStateRunning || running.FailureReason != "" {
		t.Errorf("after RUNNING: state %s, failure reason %q", running.State, running.FailureReason)
	}
	failed, err := st.SetTaskState(ctx, task.GUID, store.TaskStateFailed, "Exited with status 3")
	if err != nil {
		t.Fatal(err)
	}
	if failed.State != store.TaskStateFailed || failed.FailureReason != "Exited with status 3" {
		t.Errorf("after FAILED: state %s, failure reason %q", failed.State, failed.FailureReason)
	}

	_, err = st.SetTaskState(ctx, task.GUID, store.TaskStateCanceling, "")
	var stateErr *store.TaskStateError
	if !errors.As(err, &stateErr) || stateErr.Current != store.TaskStateFailed {
		t.Errorf("cancel a FAILED task: %v, want a TaskStateError from FAILED", err)
	}
	if _, err := st.SetTaskState(ctx, uuid.NewString(), store.TaskStateRunning, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("move a missing task: %v, want ErrNotFound", err)
	}

	active, err := st.ActiveTaskGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 0 {
		t.Errorf("active tasks after FAILED: %v, want none", active)
	}
}

func TestTaskCancelRecordsEvent(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a")
	task := seed.task(app, "", "t")

	event := store.AuditEvent{Type: "audit.app.task.cancel", ActorGUID: "user-1", ActorType: "user",
		TargetGUID: app, TargetType: "app"}
	canceling, err := st.SetTaskState(ctx, task.GUID, store.TaskStateCanceling, "", event)
	if err != nil {
		t.Fatal(err)
	}
	if canceling.State != store.TaskStateCanceling {
		t.Errorf("state = %s, want CANCELING", canceling.State)
	}
	events, _, err := st.AuditEvents(ctx, store.Visibility{All: true}, store.AuditEventFilter{Types: []string{"audit.app.task.cancel"}},
		store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Errorf("cancel events = %d, want 1", len(events))
	}

	active, err := st.ActiveTaskGUIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{task.GUID}, active); diff != "" {
		t.Errorf("active tasks (-want +got):\n%s", diff)
	}
	if err := st.SetTaskJobName(ctx, task.GUID, "task-"+task.GUID); err != nil {
		t.Fatal(err)
	}
	read, err := st.ControllerTask(ctx, task.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if read.JobName != "task-"+task.GUID {
		t.Errorf("job name = %q, want task-%s", read.JobName, task.GUID)
	}
}

func TestTaskMetadataUpdate(t *testing.T) {
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "a")
	task := seed.task(app, "", "t")

	value := "x"
	updated, err := store.UpdateTaskMetadata(ctx, st.DB(), task.GUID,
		store.MetadataPatch{Labels: map[string]*string{"k": &value}})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Labels["k"] != "x" {
		t.Errorf("labels = %v, want k=x", updated.Labels)
	}
	tasks, _, err := st.Tasks(ctx, store.TaskFilter{LabelSelector: store.LabelSelector{
		{Key: "k", Operator: store.LabelIn, Values: []string{"x"}}}}, store.Page{}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Errorf("tasks with k=x: %d, want 1", len(tasks))
	}
}
