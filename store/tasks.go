package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Task states, as Cloud Controller names them.
const (
	TaskStatePending   = "PENDING"
	TaskStateRunning   = "RUNNING"
	TaskStateSucceeded = "SUCCEEDED"
	TaskStateFailed    = "FAILED"
	TaskStateCanceling = "CANCELING"
)

// TasksChannel is the PostgreSQL notification channel that carries a
// task's GUID when the task is inserted or its state or job name changes.
// A trigger from migration 00019 sends it.
const TasksChannel = "ferry_tasks"

// ConstraintTaskApp is the foreign key from a task to its app.
const ConstraintTaskApp = "tasks_app_guid_fkey"

// taskPredecessors lists, for each state a task may move to, the states it
// may move from. PENDING is only a starting state, and SUCCEEDED and FAILED
// are final.
var taskPredecessors = map[string][]string{
	TaskStateRunning:   {TaskStatePending},
	TaskStateSucceeded: {TaskStatePending, TaskStateRunning},
	TaskStateFailed:    {TaskStatePending, TaskStateRunning, TaskStateCanceling},
	TaskStateCanceling: {TaskStatePending, TaskStateRunning},
}

// TaskStateError is returned when a task cannot move from its current
// state to the requested one, for example when a finished task is
// canceled.
type TaskStateError struct {
	Current   string
	Requested string
}

func (e *TaskStateError) Error() string {
	return "task in state " + e.Current + " cannot move to " + e.Requested
}

// Task is a Cloud Controller task: one run of a command from an app's
// droplet.
type Task struct {
	GUID    string
	AppGUID string
	// SpaceGUID and OrgGUID are those of the app, and DropletImage is the
	// image of the task's droplet ("" when the droplet is gone). They are
	// read with the task and ignored on writes.
	SpaceGUID    string
	OrgGUID      string
	DropletImage string
	Name         string
	Command      string
	// State is one of the TaskState constants; CreateTask defaults it to
	// TaskStatePending.
	State string
	// SequenceID numbers the app's tasks from 1; CreateTask assigns it.
	SequenceID int64
	// MemoryMB and DiskMB are the task container's limits in MiB.
	MemoryMB int64
	DiskMB   int64
	// LogRateLimit is in bytes per second; -1 means unlimited.
	LogRateLimit int64
	DropletGUID  string
	// FailureReason is the reason a FAILED task failed, else "".
	FailureReason string
	// ScheduledTaskGUID is the scheduled task this task is a run of, or "".
	ScheduledTaskGUID string
	// JobName is the Kubernetes Job that runs the task, or "" until the
	// controller creates it. A task created with a JobName is a run whose
	// Job something else created (a CronJob): the controller only follows
	// that Job.
	JobName       string
	CreatedByGUID string
	Labels        map[string]string
	Annotations   map[string]string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TaskFilter selects tasks. A nil slice does not filter.
type TaskFilter struct {
	CommonFilter
	Names             []string
	States            []string
	AppGUIDs          []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	SequenceIDs       []int64
	LabelSelector     LabelSelector
}

const taskColumns = `t.guid, t.app_guid, a.space_guid, s.organization_guid, COALESCE(d.image, ''), t.name, t.command,
	t.state, t.sequence_id, t.memory_in_mb, t.disk_in_mb, t.log_rate_limit_in_bytes_per_second,
	COALESCE(t.droplet_guid, ''), COALESCE(t.failure_reason, ''), COALESCE(t.scheduled_task_guid, ''),
	COALESCE(t.job_name, ''), t.created_by_user_guid, t.labels, t.annotations, t.created_at, t.updated_at`

// taskFrom joins each task to its app, the app's space and the task's
// droplet.
const taskFrom = ` FROM tasks t JOIN apps a ON a.guid = t.app_guid JOIN spaces s ON s.guid = a.space_guid
	LEFT JOIN droplets d ON d.guid = t.droplet_guid`

var taskOrder = map[string]string{
	"created_at": "t.created_at",
	"updated_at": "t.updated_at",
}

// scanTask scans taskColumns followed by extra destinations.
func scanTask(row interface{ Scan(...any) error }, extra ...any) (Task, error) {
	var t Task
	var labels, annotations []byte
	dest := append([]any{&t.GUID, &t.AppGUID, &t.SpaceGUID, &t.OrgGUID, &t.DropletImage, &t.Name, &t.Command,
		&t.State, &t.SequenceID, &t.MemoryMB, &t.DiskMB, &t.LogRateLimit, &t.DropletGUID, &t.FailureReason,
		&t.ScheduledTaskGUID, &t.JobName, &t.CreatedByGUID, &labels, &annotations, &t.CreatedAt, &t.UpdatedAt},
		extra...)
	if err := row.Scan(dest...); err != nil {
		return Task{}, mapError(err)
	}
	var err error
	if t.Labels, err = jsonMap(labels); err != nil {
		return Task{}, err
	}
	if t.Annotations, err = jsonMap(annotations); err != nil {
		return Task{}, err
	}
	return t, nil
}

// CreateTask inserts t through q, which may be a transaction of the
// caller, and returns it as stored. It assigns t's SequenceID as the app's
// next one and defaults State to TaskStatePending. An app that does not
// exist is a *ForeignKeyError.
func CreateTask(ctx context.Context, q querier, t Task) (Task, error) {
	if t.State == "" {
		t.State = TaskStatePending
	}
	if t.State != TaskStatePending && t.State != TaskStateRunning {
		return Task{}, fmt.Errorf("create task %s: invalid initial state %q", t.GUID, t.State)
	}

	var sequenceID int64
	err := q.QueryRowContext(ctx, `
		INSERT INTO task_sequences (app_guid, last_sequence_id) VALUES ($1, 1)
		ON CONFLICT (app_guid) DO UPDATE SET last_sequence_id = task_sequences.last_sequence_id + 1
		RETURNING last_sequence_id`, t.AppGUID).Scan(&sequenceID)
	if err != nil {
		err = mapError(err)
		var fk *ForeignKeyError
		if errors.As(err, &fk) {
			// Report the app's absence under the tasks table's constraint
			// name, which callers match on.
			err = &ForeignKeyError{Constraint: ConstraintTaskApp, Err: fk.Err}
		}
		return Task{}, fmt.Errorf("create task %s: %w", t.GUID, err)
	}

	_, err = q.ExecContext(ctx, `
		INSERT INTO tasks (guid, app_guid, name, command, state, sequence_id, memory_in_mb, disk_in_mb,
			log_rate_limit_in_bytes_per_second, droplet_guid, failure_reason, scheduled_task_guid, job_name,
			created_by_user_guid, labels, annotations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.GUID, t.AppGUID, t.Name, t.Command, t.State, sequenceID, t.MemoryMB, t.DiskMB, t.LogRateLimit,
		nullIfEmpty(t.DropletGUID), nullIfEmpty(t.FailureReason), nullIfEmpty(t.ScheduledTaskGUID),
		nullIfEmpty(t.JobName), t.CreatedByGUID, metadataJSON(t.Labels), metadataJSON(t.Annotations))
	if err != nil {
		return Task{}, fmt.Errorf("create task %s: %w", t.GUID, mapError(err))
	}
	created, err := taskThrough(ctx, q, t.GUID)
	if err != nil {
		return Task{}, fmt.Errorf("create task %s: %w", t.GUID, err)
	}
	return created, nil
}

// taskThrough reads the task guid through q with no visibility check.
func taskThrough(ctx context.Context, q querier, guid string) (Task, error) {
	return scanTask(q.QueryRowContext(ctx, `SELECT `+taskColumns+taskFrom+` WHERE t.guid = $1`, guid))
}

// Task returns the task guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Task(ctx context.Context, vis Visibility, guid string) (Task, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+taskColumns+taskFrom+`
		WHERE t.guid = $1 AND `+vis.spaceRowCondition("a.space_guid", "s.organization_guid", &a), a...)
	t, err := scanTask(row)
	if err != nil {
		return Task{}, fmt.Errorf("task %s: %w", guid, err)
	}
	return t, nil
}

// ControllerTask returns the task guid with no visibility check, for the
// controller, which acts for every user.
func (s *Store) ControllerTask(ctx context.Context, guid string) (Task, error) {
	t, err := taskThrough(ctx, s.db, guid)
	if err != nil {
		return Task{}, fmt.Errorf("task %s: %w", guid, err)
	}
	return t, nil
}

// Tasks returns one page of the tasks vis may see that match f, and the
// total number of matches across all pages.
func (s *Store) Tasks(ctx context.Context, f TaskFilter, page Page, vis Visibility) ([]Task, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("t", &a, where)
	if f.Names != nil {
		where = append(where, "t.name = ANY("+a.add(pq.Array(f.Names))+"::text[])")
	}
	if f.States != nil {
		where = append(where, "t.state = ANY("+a.add(pq.Array(f.States))+"::text[])")
	}
	if f.AppGUIDs != nil {
		where = append(where, "t.app_guid = ANY("+a.add(pq.Array(f.AppGUIDs))+"::text[])")
	}
	if f.SpaceGUIDs != nil {
		where = append(where, "a.space_guid = ANY("+a.add(pq.Array(f.SpaceGUIDs))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "s.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.SequenceIDs != nil {
		where = append(where, "t.sequence_id = ANY("+a.add(pq.Array(f.SequenceIDs))+"::bigint[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("t.labels", &a))
	}

	from := taskFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+taskColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(taskOrder, "t.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", mapError(err))
	}
	defer rows.Close()

	tasks := []Task{}
	total := 0
	for rows.Next() {
		t, err := scanTask(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list tasks: %w", err)
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", mapError(err))
	}
	if len(tasks) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list tasks: %w", err)
		}
	}
	return tasks, total, nil
}

// ActiveTaskGUIDs returns the GUIDs of every PENDING, RUNNING or CANCELING
// task, oldest first, for the controller's resync.
func (s *Store) ActiveTaskGUIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT guid FROM tasks
		WHERE state IN ('PENDING', 'RUNNING', 'CANCELING') ORDER BY created_at, guid`)
	if err != nil {
		return nil, fmt.Errorf("list active tasks: %w", mapError(err))
	}
	defer rows.Close()
	guids := []string{}
	for rows.Next() {
		var guid string
		if err := rows.Scan(&guid); err != nil {
			return nil, fmt.Errorf("list active tasks: %w", err)
		}
		guids = append(guids, guid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list active tasks: %w", mapError(err))
	}
	return guids, nil
}

// SetTaskState moves the task guid to state and records events in the same
// transaction. failureReason is stored when state is TaskStateFailed and
// ignored otherwise. The allowed moves are PENDING → RUNNING, PENDING or
// RUNNING → SUCCEEDED or CANCELING, and PENDING, RUNNING or CANCELING →
// FAILED; any other move is a *TaskStateError and changes nothing. A task
// that does not exist is ErrNotFound. Concurrent callers are serialized by
// the row lock, so only the first of two conflicting moves wins.
func (s *Store) SetTaskState(ctx context.Context, guid, state, failureReason string, events ...AuditEvent) (Task, error) {
	var updated Task
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if err := setTaskState(ctx, tx, guid, state, failureReason); err != nil {
			return err
		}
		for _, ev := range events {
			if err := RecordAuditEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		var err error
		updated, err = taskThrough(ctx, tx, guid)
		return err
	})
	if err != nil {
		return Task{}, fmt.Errorf("set state of task %s to %s: %w", guid, state, err)
	}
	return updated, nil
}

// setTaskState is SetTaskState's update through q.
func setTaskState(ctx context.Context, q querier, guid, state, failureReason string) error {
	from, ok := taskPredecessors[state]
	if !ok {
		return fmt.Errorf("invalid target state %q", state)
	}
	if state != TaskStateFailed {
		failureReason = ""
	}
	// Under READ COMMITTED a concurrent writer blocks on the row lock and
	// then re-checks the state condition against the committed row.
	res, err := q.ExecContext(ctx, `
		UPDATE tasks SET state = $2, failure_reason = $3, updated_at = now()
		WHERE guid = $1 AND state = ANY($4::text[])`, guid, state, nullIfEmpty(failureReason), pq.Array(from))
	if err := affectedOne(res, err); !errors.Is(err, ErrNotFound) {
		return err
	}
	var current string
	if err := q.QueryRowContext(ctx, `SELECT state FROM tasks WHERE guid = $1`, guid).Scan(&current); err != nil {
		return mapError(err)
	}
	return &TaskStateError{Current: current, Requested: state}
}

// SetTaskJobName records jobName as the Job that runs the task guid.
func (s *Store) SetTaskJobName(ctx context.Context, guid, jobName string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET job_name = $2, updated_at = now() WHERE guid = $1`,
		guid, jobName)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("set job name of task %s: %w", guid, err)
	}
	return nil
}

// UpdateTaskMetadata applies patch to the labels and annotations of the
// task guid through q and returns the task, or ErrNotFound when there is no
// such task.
func UpdateTaskMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Task, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Task{}, fmt.Errorf("update task %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE tasks SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err := affectedOne(res, err); err != nil {
		return Task{}, fmt.Errorf("update task %s: %w", guid, err)
	}
	t, err := taskThrough(ctx, q, guid)
	if err != nil {
		return Task{}, fmt.Errorf("update task %s: %w", guid, err)
	}
	return t, nil
}

// ListenTasks calls fn with the GUID of every task announced on
// TasksChannel until ctx ends; see Listen.
func ListenTasks(ctx context.Context, url string, fn func(guid string)) error {
	return Listen(ctx, url, TasksChannel, fn)
}
