package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// ConstraintScheduledTaskName is the unique constraint on the names of an
// app's scheduled tasks.
const ConstraintScheduledTaskName = "scheduled_tasks_app_name_key"

// ScheduledTasksChannel carries the GUID of a space whose scheduled tasks
// changed. The trigger of migration 00020 sends it on every insert, update
// and delete of a scheduled task.
const ScheduledTasksChannel = "ferry_scheduled_tasks"

// Concurrency policies of a scheduled task, with the values of a
// Kubernetes CronJob's spec.concurrencyPolicy.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"
)

// Defaults of a new scheduled task: the history limits Kubernetes gives a
// CronJob that sets none.
const (
	DefaultSuccessfulHistoryLimit = 3
	DefaultFailedHistoryLimit     = 1
)

// ScheduledTask is a Ferry scheduled task: a command of an app run on a
// cron schedule, each run as a task.
type ScheduledTask struct {
	GUID    string
	AppGUID string
	// SpaceGUID is the app's space. OrgGUID is the space's organization,
	// which is read with the scheduled task and ignored on writes.
	SpaceGUID string
	OrgGUID   string
	Name      string
	Command   string
	// TemplateProcessGUID is the process whose command and limits were
	// copied on create, or "".
	TemplateProcessGUID string
	Schedule            string
	// TimeZone is an IANA name, or "" for the time zone of the cluster's
	// kube-controller-manager.
	TimeZone          string
	ConcurrencyPolicy string
	// SuccessfulHistoryLimit and FailedHistoryLimit are how many finished
	// runs of each outcome the cluster keeps.
	SuccessfulHistoryLimit int
	FailedHistoryLimit     int
	// DeadlineSeconds bounds the run time of one run, or is 0 for no limit.
	DeadlineSeconds int64
	// StartingDeadlineSeconds is how late a run may start before it is
	// skipped, or 0 for no limit.
	StartingDeadlineSeconds int64
	Suspended               bool
	MemoryMB                int64
	DiskMB                  int64
	Labels                  map[string]string
	Annotations             map[string]string
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// ScheduledTaskFilter selects scheduled tasks. A nil slice does not filter.
type ScheduledTaskFilter struct {
	CommonFilter
	Names             []string
	AppGUIDs          []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	LabelSelector     LabelSelector
}

// scheduledTaskColumns reads a scheduled task (t) with the organization of
// its space (s).
const scheduledTaskColumns = `t.guid, t.app_guid, t.space_guid, s.organization_guid, t.name, t.command,
	COALESCE(t.template_process_guid, ''), t.schedule, COALESCE(t.time_zone, ''), t.concurrency_policy,
	t.successful_history_limit, t.failed_history_limit, COALESCE(t.deadline_seconds, 0),
	COALESCE(t.starting_deadline_seconds, 0), t.suspended,
	t.memory_in_mb, t.disk_in_mb, t.labels, t.annotations, t.created_at, t.updated_at`

const scheduledTaskJoins = ` JOIN spaces s ON s.guid = t.space_guid`

const scheduledTaskFrom = ` FROM scheduled_tasks t` + scheduledTaskJoins

var scheduledTaskOrder = map[string]string{
	"created_at": "t.created_at",
	"updated_at": "t.updated_at",
	"name":       "t.name",
}

// scanScheduledTask scans scheduledTaskColumns followed by extra
// destinations.
func scanScheduledTask(row interface{ Scan(...any) error }, extra ...any) (ScheduledTask, error) {
	var t ScheduledTask
	var labels, annotations []byte
	dest := []any{&t.GUID, &t.AppGUID, &t.SpaceGUID, &t.OrgGUID, &t.Name, &t.Command, &t.TemplateProcessGUID,
		&t.Schedule, &t.TimeZone, &t.ConcurrencyPolicy, &t.SuccessfulHistoryLimit, &t.FailedHistoryLimit,
		&t.DeadlineSeconds, &t.StartingDeadlineSeconds, &t.Suspended, &t.MemoryMB, &t.DiskMB, &labels, &annotations, &t.CreatedAt, &t.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return ScheduledTask{}, mapError(err)
	}
	var err error
	if t.Labels, err = jsonMap(labels); err != nil {
		return ScheduledTask{}, err
	}
	if t.Annotations, err = jsonMap(annotations); err != nil {
		return ScheduledTask{}, err
	}
	return t, nil
}

// nullIfZero64 maps 0 to SQL NULL.
func nullIfZero64(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// CreateScheduledTask inserts t through q and returns it as stored. An
// empty GUID gets a new one, and SpaceGUID is taken from the app. A name
// the app already uses is a *UniqueError on ConstraintScheduledTaskName,
// and a missing app is a *ForeignKeyError.
func CreateScheduledTask(ctx context.Context, q querier, t ScheduledTask) (ScheduledTask, error) {
	if t.GUID == "" {
		t.GUID = uuid.NewString()
	}
	row := q.QueryRowContext(ctx, `
		WITH t AS (
			INSERT INTO scheduled_tasks (guid, app_guid, space_guid, name, command, template_process_guid, schedule,
				time_zone, concurrency_policy, successful_history_limit, failed_history_limit, deadline_seconds,
				starting_deadline_seconds, suspended, memory_in_mb, disk_in_mb, labels, annotations)
			SELECT $1, $2, a.space_guid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17
			FROM apps a WHERE a.guid = $2
			RETURNING *)
		SELECT `+scheduledTaskColumns+` FROM t`+scheduledTaskJoins,
		t.GUID, t.AppGUID, t.Name, t.Command, nullIfEmpty(t.TemplateProcessGUID), t.Schedule, nullIfEmpty(t.TimeZone),
		t.ConcurrencyPolicy, t.SuccessfulHistoryLimit, t.FailedHistoryLimit, nullIfZero64(t.DeadlineSeconds),
		nullIfZero64(t.StartingDeadlineSeconds), t.Suspended, t.MemoryMB, t.DiskMB, metadataJSON(t.Labels), metadataJSON(t.Annotations))
	created, err := scanScheduledTask(row)
	if err == ErrNotFound {
		// INSERT … SELECT inserts nothing when the app is gone, so no
		// foreign key is violated. Report it as one all the same.
		err = &ForeignKeyError{Constraint: "scheduled_tasks_app_guid_fkey", Err: sql.ErrNoRows}
	}
	if err != nil {
		return ScheduledTask{}, fmt.Errorf("create scheduled task %q of app %s: %w", t.Name, t.AppGUID, err)
	}
	return created, nil
}

// LockScheduledTask returns the scheduled task guid through tx and locks
// its row until tx ends, so a read-modify-write with SaveScheduledTask
// loses no concurrent change. It returns ErrNotFound when there is none.
func LockScheduledTask(ctx context.Context, tx *sql.Tx, guid string) (ScheduledTask, error) {
	row := tx.QueryRowContext(ctx, `SELECT `+scheduledTaskColumns+scheduledTaskFrom+` WHERE t.guid = $1 FOR UPDATE OF t`, guid)
	t, err := scanScheduledTask(row)
	if err != nil {
		return ScheduledTask{}, fmt.Errorf("lock scheduled task %s: %w", guid, err)
	}
	return t, nil
}

// SaveScheduledTask writes every setting of t through q and applies patch
// to its metadata. The app, the space and the template process never
// change. It returns the stored scheduled task, ErrNotFound when there is
// none, or a *UniqueError on ConstraintScheduledTaskName for a name the
// app already uses.
func SaveScheduledTask(ctx context.Context, q querier, t ScheduledTask, patch MetadataPatch) (ScheduledTask, error) {
	a := args{t.GUID}
	set := []string{
		"name = " + a.add(t.Name),
		"command = " + a.add(t.Command),
		"schedule = " + a.add(t.Schedule),
		"time_zone = " + a.add(nullIfEmpty(t.TimeZone)),
		"concurrency_policy = " + a.add(t.ConcurrencyPolicy),
		"successful_history_limit = " + a.add(t.SuccessfulHistoryLimit),
		"failed_history_limit = " + a.add(t.FailedHistoryLimit),
		"deadline_seconds = " + a.add(nullIfZero64(t.DeadlineSeconds)),
		"starting_deadline_seconds = " + a.add(nullIfZero64(t.StartingDeadlineSeconds)),
		"suspended = " + a.add(t.Suspended),
		"memory_in_mb = " + a.add(t.MemoryMB),
		"disk_in_mb = " + a.add(t.DiskMB),
		"updated_at = now()",
	}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return ScheduledTask{}, fmt.Errorf("save scheduled task %s: %w", t.GUID, err)
	}

	row := q.QueryRowContext(ctx, `
		WITH t AS (UPDATE scheduled_tasks SET `+strings.Join(set, ", ")+meta+` WHERE guid = $1 RETURNING *)
		SELECT `+scheduledTaskColumns+` FROM t`+scheduledTaskJoins, a...)
	saved, err := scanScheduledTask(row)
	if err != nil {
		return ScheduledTask{}, fmt.Errorf("save scheduled task %s: %w", t.GUID, err)
	}
	return saved, nil
}

// DeleteScheduledTask deletes the scheduled task guid through q. Its past
// runs stay in tasks. It returns ErrNotFound when there is none.
func DeleteScheduledTask(ctx context.Context, q querier, guid string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM scheduled_tasks WHERE guid = $1`, guid)
	if err != nil {
		return fmt.Errorf("delete scheduled task %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete scheduled task %s: %w", guid, err)
	} else if n == 0 {
		return fmt.Errorf("delete scheduled task %s: %w", guid, ErrNotFound)
	}
	return nil
}

// ScheduledTask returns the scheduled task guid if vis may see its space,
// and ErrNotFound otherwise.
func (s *Store) ScheduledTask(ctx context.Context, vis Visibility, guid string) (ScheduledTask, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+scheduledTaskColumns+scheduledTaskFrom+`
		WHERE t.guid = $1 AND `+vis.spaceRowCondition("t.space_guid", "s.organization_guid", &a), a...)
	t, err := scanScheduledTask(row)
	if err != nil {
		return ScheduledTask{}, fmt.Errorf("scheduled task %s: %w", guid, err)
	}
	return t, nil
}

// ScheduledTasks returns one page of the scheduled tasks vis may see that
// match f, and the total number of matches across all pages.
func (s *Store) ScheduledTasks(ctx context.Context, f ScheduledTaskFilter, page Page, vis Visibility) ([]ScheduledTask, int, error) {
	var a args
	where := []string{vis.spaceCondition("t.space_guid", &a)}
	where = f.CommonFilter.conditions("t", &a, where)
	for _, filter := range []struct {
		column string
		values []string
	}{
		{"t.name", f.Names},
		{"t.app_guid", f.AppGUIDs},
		{"t.space_guid", f.SpaceGUIDs},
		{"s.organization_guid", f.OrganizationGUIDs},
	} {
		if filter.values != nil {
			where = append(where, filter.column+" = ANY("+a.add(pq.Array(filter.values))+"::text[])")
		}
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("t.labels", &a))
	}

	from := scheduledTaskFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+scheduledTaskColumns+`, COUNT(*) OVER ()`+from+
		page.orderBy(scheduledTaskOrder, "t.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list scheduled tasks: %w", mapError(err))
	}
	defer rows.Close()

	tasks := []ScheduledTask{}
	total := 0
	for rows.Next() {
		t, err := scanScheduledTask(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list scheduled tasks: %w", err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list scheduled tasks: %w", mapError(err))
	}
	if len(tasks) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list scheduled tasks: %w", err)
		}
	}
	return tasks, total, nil
}

// SpaceScheduledTasks returns every scheduled task of the space spaceGUID,
// ordered by GUID. It applies no visibility: the controller calls it to
// write the space's CronJobs.
func (s *Store) SpaceScheduledTasks(ctx context.Context, spaceGUID string) ([]ScheduledTask, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+scheduledTaskColumns+scheduledTaskFrom+`
		WHERE t.space_guid = $1 ORDER BY t.guid`, spaceGUID)
	if err != nil {
		return nil, fmt.Errorf("scheduled tasks of space %s: %w", spaceGUID, mapError(err))
	}
	return collectScheduledTasks(rows, "scheduled tasks of space "+spaceGUID)
}

// AppScheduledTasks returns every scheduled task of the app appGUID
// through q, ordered by name. The caller has checked that the app is
// visible.
func AppScheduledTasks(ctx context.Context, q querier, appGUID string) ([]ScheduledTask, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+scheduledTaskColumns+scheduledTaskFrom+`
		WHERE t.app_guid = $1 ORDER BY t.name`, appGUID)
	if err != nil {
		return nil, fmt.Errorf("scheduled tasks of app %s: %w", appGUID, mapError(err))
	}
	return collectScheduledTasks(rows, "scheduled tasks of app "+appGUID)
}

// collectScheduledTasks scans and closes rows. description names the list
// in errors.
func collectScheduledTasks(rows *sql.Rows, description string) ([]ScheduledTask, error) {
	defer rows.Close()
	tasks := []ScheduledTask{}
	for rows.Next() {
		t, err := scanScheduledTask(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", description, err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", description, mapError(err))
	}
	return tasks, nil
}

// ScheduledTaskSpaceGUIDs returns the GUID of every space that has a
// scheduled task, for the controller's resync.
func (s *Store) ScheduledTaskSpaceGUIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT space_guid FROM scheduled_tasks ORDER BY space_guid`)
	if err != nil {
		return nil, fmt.Errorf("spaces with scheduled tasks: %w", mapError(err))
	}
	defer rows.Close()
	guids := []string{}
	for rows.Next() {
		var guid string
		if err := rows.Scan(&guid); err != nil {
			return nil, fmt.Errorf("spaces with scheduled tasks: %w", mapError(err))
		}
		guids = append(guids, guid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("spaces with scheduled tasks: %w", mapError(err))
	}
	return guids, nil
}

// ListenScheduledTasks calls fn with the payload of every notification on
// ScheduledTasksChannel until ctx ends: the GUID of a space whose scheduled
// tasks changed. Like Listen, it also calls fn with "" after a reconnect.
func ListenScheduledTasks(ctx context.Context, url string, fn func(spaceGUID string)) error {
	return Listen(ctx, url, ScheduledTasksChannel, fn)
}

// ScheduledRun is one run of a scheduled task: a Job its CronJob started.
type ScheduledRun struct {
	// TaskGUID becomes the task's GUID. The controller passes the Job's
	// UID, so recording the same Job twice inserts one task.
	TaskGUID string
	JobName  string
	// DropletGUID is the droplet whose image the Job runs, or "".
	DropletGUID string
}

// RecordScheduledRun inserts the task of run, a run of scheduled task t,
// in PENDING with run.JobName, so the task controller follows the Job the
// CronJob created instead of creating one. It returns false, and no error,
// when the task was already recorded.
func (s *Store) RecordScheduledRun(ctx context.Context, t ScheduledTask, run ScheduledRun) (bool, error) {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		_, err := CreateTask(ctx, tx, Task{
			GUID:              run.TaskGUID,
			AppGUID:           t.AppGUID,
			Name:              t.Name,
			Command:           t.Command,
			MemoryMB:          t.MemoryMB,
			DiskMB:            t.DiskMB,
			LogRateLimit:      UnlimitedLogRate,
			DropletGUID:       run.DropletGUID,
			ScheduledTaskGUID: t.GUID,
			JobName:           run.JobName,
		})
		if err != nil {
			return err
		}
		// The run gets the event a task created through the API gets, so
		// cf events shows every run; the scheduled task is the actor.
		var appName string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM apps WHERE guid = $1`, t.AppGUID).Scan(&appName); err != nil {
			return err
		}
		return RecordAuditEvent(ctx, tx, AuditEvent{
			Type: "audit.app.task.create", ActorGUID: t.GUID, ActorType: "scheduled_task", ActorName: t.Name,
			TargetGUID: t.AppGUID, TargetType: "app", TargetName: appName,
			SpaceGUID: t.SpaceGUID, OrganizationGUID: t.OrgGUID,
			Data: map[string]any{"task_guid": run.TaskGUID, "job_name": run.JobName,
				"request": map[string]any{"name": t.Name, "memory_in_mb": t.MemoryMB}},
		})
	})
	if IsUnique(err, "tasks_pkey") {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record run %s of scheduled task %s: %w", run.JobName, t.GUID, err)
	}
	return true, nil
}

// ScheduledTaskRuns returns the tasks that are runs of the scheduled task
// guid, newest first. It applies no visibility.
func (s *Store) ScheduledTaskRuns(ctx context.Context, guid string) ([]Task, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+taskColumns+taskFrom+`
		WHERE t.scheduled_task_guid = $1 ORDER BY t.created_at DESC, t.guid`, guid)
	if err != nil {
		return nil, fmt.Errorf("runs of scheduled task %s: %w", guid, mapError(err))
	}
	defer rows.Close()
	tasks := []Task{}
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("runs of scheduled task %s: %w", guid, err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs of scheduled task %s: %w", guid, mapError(err))
	}
	return tasks, nil
}
