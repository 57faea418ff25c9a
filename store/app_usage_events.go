package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnknownAfterGUID is returned by AppUsageEvents when the after_guid
// filter names no stored event.
var ErrUnknownAfterGUID = errors.New("after_guid names no app usage event")

// AppUsageEvent is one Cloud Controller app usage event: a process started,
// stopped or changed its footprint while started. It copies names and
// counts, so it outlives the app it describes.
type AppUsageEvent struct {
	GUID string
	// State is the process state after the change, such as STARTED or
	// STOPPED, and PreviousState the one before, or "" when unknown.
	State         string
	PreviousState string
	InstanceCount int
	// PreviousInstanceCount and PreviousMemoryMB are nil when unknown.
	PreviousInstanceCount *int
	MemoryMB              int64
	PreviousMemoryMB      *int64
	AppGUID               string
	AppName               string
	ProcessGUID           string
	ProcessType           string
	SpaceGUID             string
	SpaceName             string
	OrgGUID               string
	// BuildpackGUID and BuildpackName are "" when unknown, as for docker
	// apps.
	BuildpackGUID string
	BuildpackName string
	// TaskGUID and TaskName are "" for process events.
	TaskGUID  string
	TaskName  string
	CreatedAt time.Time
}

// AppUsageEventFilter selects app usage events. UpdatedAts is ignored,
// because usage events never change.
type AppUsageEventFilter struct {
	CommonFilter
	// AfterGUID keeps only events recorded after that event. The empty
	// string does not filter.
	AfterGUID string
}

const appUsageEventColumns = `e.guid, e.state, COALESCE(e.previous_state, ''), e.instance_count,
	e.previous_instance_count, e.memory_in_mb_per_instance, e.previous_memory_in_mb_per_instance, e.app_guid,
	e.app_name, COALESCE(e.process_guid, ''), COALESCE(e.process_type, ''), e.space_guid, e.space_name,
	e.organization_guid, COALESCE(e.buildpack_guid, ''), COALESCE(e.buildpack_name, ''), COALESCE(e.task_guid, ''),
	COALESCE(e.task_name, ''), e.created_at`

func scanAppUsageEvent(row interface{ Scan(...any) error }, extra ...any) (AppUsageEvent, error) {
	var ev AppUsageEvent
	var previousInstances, previousMemory sql.NullInt64
	dest := []any{&ev.GUID, &ev.State, &ev.PreviousState, &ev.InstanceCount, &previousInstances, &ev.MemoryMB,
		&previousMemory, &ev.AppGUID, &ev.AppName, &ev.ProcessGUID, &ev.ProcessType, &ev.SpaceGUID, &ev.SpaceName,
		&ev.OrgGUID, &ev.BuildpackGUID, &ev.BuildpackName, &ev.TaskGUID, &ev.TaskName, &ev.CreatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return AppUsageEvent{}, mapError(err)
	}
	if previousInstances.Valid {
		n := int(previousInstances.Int64)
		ev.PreviousInstanceCount = &n
	}
	if previousMemory.Valid {
		ev.PreviousMemoryMB = &previousMemory.Int64
	}
	return ev, nil
}

// appUsageEventOrder maps order_by values to columns. "id", the order when
// the client asks for none, is insertion order, as in Cloud Controller.
var appUsageEventOrder = map[string]string{"id": "e.id", "created_at": "e.created_at"}

// AppUsageEvents returns one page of app usage events and the total number
// of matching events. It returns ErrUnknownAfterGUID when f.AfterGUID names
// no event. Callers check that the actor may read every event.
func (s *Store) AppUsageEvents(ctx context.Context, f AppUsageEventFilter, page Page) ([]AppUsageEvent, int, error) {
	var a args
	where := []string{"TRUE"}
	if f.AfterGUID != "" {
		var afterID int64
		err := s.db.QueryRowContext(ctx, `SELECT id FROM app_usage_events WHERE guid = $1`, f.AfterGUID).Scan(&afterID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, ErrUnknownAfterGUID
		}
		if err != nil {
			return nil, 0, fmt.Errorf("list app usage events: %w", mapError(err))
		}
		where = append(where, "e.id > "+a.add(afterID))
	}
	f.UpdatedAts = TimeFilter{}
	where = f.conditions("e", &a, where)

	query := `SELECT ` + appUsageEventColumns + `, COUNT(*) OVER() FROM app_usage_events e WHERE ` +
		strings.Join(where, " AND ") + page.orderBy(appUsageEventOrder, "e.id") + page.limitOffset()
	rows, err := s.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list app usage events: %w", mapError(err))
	}
	defer rows.Close()

	events := []AppUsageEvent{}
	total := 0
	for rows.Next() {
		ev, err := scanAppUsageEvent(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list app usage events: %w", err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list app usage events: %w", mapError(err))
	}
	if len(events) == 0 && page.Number > 1 {
		total, err = s.countRows(ctx, "app_usage_events e", where, a)
	}
	return events, total, err
}

// AppUsageEvent returns one app usage event, or ErrNotFound.
func (s *Store) AppUsageEvent(ctx context.Context, guid string) (AppUsageEvent, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+appUsageEventColumns+` FROM app_usage_events e WHERE e.guid = $1`, guid)
	ev, err := scanAppUsageEvent(row)
	if err != nil {
		return AppUsageEvent{}, fmt.Errorf("app usage event %s: %w", guid, err)
	}
	return ev, nil
}

// CreateAppUsageEvents inserts events through tx, which should be the
// transaction of the change they record. An event without a GUID is an
// error. CreatedAt is set to the transaction's start time.
func CreateAppUsageEvents(ctx context.Context, tx *sql.Tx, events []AppUsageEvent) error {
	if len(events) == 0 {
		return nil
	}
	// Events are a handful per change (one per process), so one
	// multi-row INSERT is enough.
	const columns = 18
	var query strings.Builder
	query.WriteString(`INSERT INTO app_usage_events (guid, state, previous_state, instance_count,
		previous_instance_count, memory_in_mb_per_instance, previous_memory_in_mb_per_instance, app_guid, app_name,
		process_guid, process_type, space_guid, space_name, organization_guid, buildpack_guid, buildpack_name,
		task_guid, task_name) VALUES `)
	args := make([]any, 0, len(events)*columns)
	for i, ev := range events {
		if ev.GUID == "" {
			return fmt.Errorf("record app usage events: an event of app %s has no guid", ev.AppGUID)
		}
		if i > 0 {
			query.WriteString(", ")
		}
		query.WriteString("(")
		for c := range columns {
			if c > 0 {
				query.WriteString(", ")
			}
			fmt.Fprintf(&query, "$%d", i*columns+c+1)
		}
		query.WriteString(")")
		args = append(args, ev.GUID, ev.State, nullIfEmpty(ev.PreviousState), ev.InstanceCount,
			ev.PreviousInstanceCount, ev.MemoryMB, ev.PreviousMemoryMB, ev.AppGUID, ev.AppName,
			nullIfEmpty(ev.ProcessGUID), nullIfEmpty(ev.ProcessType), ev.SpaceGUID, ev.SpaceName, ev.OrgGUID,
			nullIfEmpty(ev.BuildpackGUID), nullIfEmpty(ev.BuildpackName), nullIfEmpty(ev.TaskGUID),
			nullIfEmpty(ev.TaskName))
	}
	if _, err := tx.ExecContext(ctx, query.String(), args...); err != nil {
		return fmt.Errorf("record app usage events: %w", mapError(err))
	}
	return nil
}

// PurgeAppUsageEvents deletes every app usage event through tx. TRUNCATE
// waits for transactions that are recording events and blocks new ones
// until tx ends, so each event is either purged or recorded after tx.
func PurgeAppUsageEvents(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `TRUNCATE app_usage_events`); err != nil {
		return fmt.Errorf("purge app usage events: %w", mapError(err))
	}
	return nil
}

// ProcessFootprint is the state of one process that usage events copy: its
// app, space and organization, its instances and memory, and the
// buildpack of the app's current droplet.
type ProcessFootprint struct {
	AppGUID     string
	AppName     string
	AppState    string
	ProcessGUID string
	ProcessType string
	Instances   int
	MemoryMB    int64
	SpaceGUID   string
	SpaceName   string
	OrgGUID     string
	// Buildpack is the last buildpack of the app's current droplet and
	// Stack that droplet's stack. Both are "" without a buildpack droplet.
	Buildpack string
	Stack     string
}

// processFootprintQuery reads footprints of processes (p) with their app
// (a), space (s) and the app's current droplet (d), which may be missing.
const processFootprintQuery = `SELECT a.guid, a.name, a.state, p.guid, p.type, p.instances, p.memory_in_mb,
		s.guid, s.name, s.organization_guid, COALESCE(d.buildpacks -> -1 ->> 'name', ''), COALESCE(d.stack, '')
	FROM processes p
	JOIN apps a ON a.guid = p.app_guid
	JOIN spaces s ON s.guid = a.space_guid
	LEFT JOIN droplets d ON d.guid = a.current_droplet_guid AND d.lifecycle_type = 'buildpack'`

func scanProcessFootprints(rows *sql.Rows) ([]ProcessFootprint, error) {
	defer rows.Close()
	var out []ProcessFootprint
	for rows.Next() {
		var fp ProcessFootprint
		if err := rows.Scan(&fp.AppGUID, &fp.AppName, &fp.AppState, &fp.ProcessGUID, &fp.ProcessType, &fp.Instances,
			&fp.MemoryMB, &fp.SpaceGUID, &fp.SpaceName, &fp.OrgGUID, &fp.Buildpack, &fp.Stack); err != nil {
			return nil, mapError(err)
		}
		out = append(out, fp)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return out, nil
}

// AppProcessFootprints returns the footprint of every process of the app
// guid, in creation order, read through tx. It holds a share lock on the
// app's row until tx ends, so a concurrent start or stop, which locks the
// row with LockAppState, cannot change the state these footprints report.
func AppProcessFootprints(ctx context.Context, tx *sql.Tx, appGUID string) ([]ProcessFootprint, error) {
	rows, err := tx.QueryContext(ctx, processFootprintQuery+`
		WHERE a.guid = $1 ORDER BY p.created_at, p.guid FOR SHARE OF a`, appGUID)
	if err != nil {
		return nil, fmt.Errorf("footprints of app %s: %w", appGUID, mapError(err))
	}
	footprints, err := scanProcessFootprints(rows)
	if err != nil {
		return nil, fmt.Errorf("footprints of app %s: %w", appGUID, err)
	}
	return footprints, nil
}

// StartedProcessFootprints returns the footprint of every process of every
// started app, read through tx, in a stable order.
func StartedProcessFootprints(ctx context.Context, tx *sql.Tx) ([]ProcessFootprint, error) {
	rows, err := tx.QueryContext(ctx, processFootprintQuery+`
		WHERE a.state = 'STARTED' ORDER BY p.created_at, p.guid`)
	if err != nil {
		return nil, fmt.Errorf("footprints of started apps: %w", mapError(err))
	}
	footprints, err := scanProcessFootprints(rows)
	if err != nil {
		return nil, fmt.Errorf("footprints of started apps: %w", err)
	}
	return footprints, nil
}

// LockAppState locks the row of the app guid for update until tx ends and
// returns its desired state, so a caller that changes the state gets the
// state it replaces. It returns ErrNotFound when there is no such app.
func LockAppState(ctx context.Context, tx *sql.Tx, guid string) (string, error) {
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM apps WHERE guid = $1 FOR UPDATE`, guid).Scan(&state); err != nil {
		return "", fmt.Errorf("lock app %s: %w", guid, mapError(err))
	}
	return state, nil
}
