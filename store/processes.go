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

// ConstraintProcessType is the unique constraint on an app's process types.
const ConstraintProcessType = "processes_app_type_key"

// ProcessTypeWeb is the process type every app has, the one that routes
// send traffic to.
const ProcessTypeWeb = "web"

// Health check types of processes, as Cloud Controller names them.
const (
	HealthCheckPort    = "port"
	HealthCheckProcess = "process"
	HealthCheckHTTP    = "http"
)

// Defaults of a new process: Cloud Controller's default_app_memory and
// default_app_disk_in_mb, and no log rate limit.
const (
	DefaultProcessMemoryMB     = 1024
	DefaultProcessDiskMB       = 1024
	UnlimitedLogRate           = -1
	DefaultProcessLogRateLimit = UnlimitedLogRate
)

// HealthCheck is a liveness or readiness check of a process. Zero
// durations are unset and take the runtime's default. Endpoint is the HTTP
// path of an "http" check.
type HealthCheck struct {
	Type              string
	Endpoint          string
	Timeout           int
	InvocationTimeout int
	Interval          int
}

// Process is a Cloud Controller process: one runnable type of an app.
type Process struct {
	GUID    string
	AppGUID string
	// SpaceGUID and OrgGUID are those of the app. DetectedCommand is the
	// command the app's current droplet defines for the type, or "". They
	// are read with the process and ignored on writes.
	SpaceGUID       string
	OrgGUID         string
	DetectedCommand string
	Type            string
	// Command is the user's start command, or nil to run DetectedCommand.
	Command      *string
	Instances    int
	MemoryMB     int64
	DiskMB       int64
	LogRateLimit int64
	// CPUMillicores is an absolute CPU limit, or 0 to derive it from
	// MemoryMB.
	CPUMillicores int
	HealthCheck   HealthCheck
	// Readiness has no Timeout: it checks for as long as the instance runs.
	Readiness   HealthCheck
	Version     string
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// EffectiveCommand returns the command instances of p run.
func (p Process) EffectiveCommand() string {
	if p.Command != nil {
		return *p.Command
	}
	return p.DetectedCommand
}

// NewProcess returns a process of type processType for the app appGUID
// with Cloud Controller's defaults. The web process has the app's guid,
// one instance and a port health check. Other types get a new guid, no
// instances and a process health check.
func NewProcess(appGUID, processType string) Process {
	p := Process{
		GUID:         uuid.NewString(),
		AppGUID:      appGUID,
		Type:         processType,
		MemoryMB:     DefaultProcessMemoryMB,
		DiskMB:       DefaultProcessDiskMB,
		LogRateLimit: DefaultProcessLogRateLimit,
		HealthCheck:  HealthCheck{Type: HealthCheckProcess},
		Readiness:    HealthCheck{Type: HealthCheckProcess},
	}
	if processType == ProcessTypeWeb {
		p.GUID = appGUID
		p.Instances = 1
		p.HealthCheck.Type = HealthCheckPort
	}
	return p
}

// ProcessFilter selects processes. A nil slice does not filter.
type ProcessFilter struct {
	CommonFilter
	Types             []string
	AppGUIDs          []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	LabelSelector     LabelSelector
}

// processColumns reads a process (p) with its app (a), the app's space (s),
// and the command the app's current droplet defines for the process type,
// or an empty string without a droplet. A subquery reads the command, so a
// list looks up the droplets of its own rows by key instead of joining every
// droplet.
const processColumns = `p.guid, p.app_guid, a.space_guid, s.organization_guid,
	COALESCE((SELECT d.process_types ->> p.type FROM droplets d WHERE d.guid = a.current_droplet_guid), ''),
	p.type, p.command, p.instances, p.memory_in_mb, p.disk_in_mb,
	p.log_rate_limit_in_bytes_per_second, COALESCE(p.cpu_millicores, 0),
	p.health_check_type, COALESCE(p.health_check_endpoint, ''), COALESCE(p.health_check_timeout, 0),
	COALESCE(p.health_check_invocation_timeout, 0), COALESCE(p.health_check_interval, 0),
	p.readiness_health_check_type, COALESCE(p.readiness_health_check_endpoint, ''),
	COALESCE(p.readiness_health_check_invocation_timeout, 0), COALESCE(p.readiness_health_check_interval, 0),
	p.version, p.labels, p.annotations, p.created_at, p.updated_at`

// processJoins joins a process table aliased p to its app and space.
const processJoins = ` JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid`

const processFrom = ` FROM processes p` + processJoins

var processOrder = map[string]string{
	"created_at": "p.created_at",
	"updated_at": "p.updated_at",
}

// scanProcess scans processColumns followed by extra destinations.
func scanProcess(row interface{ Scan(...any) error }, extra ...any) (Process, error) {
	var r processRow
	if err := row.Scan(append(r.destinations(), extra...)...); err != nil {
		return Process{}, mapError(err)
	}
	return r.process()
}

// processRow receives the processColumns of one row.
type processRow struct {
	p                   Process
	command             sql.NullString
	labels, annotations []byte
}

// destinations returns the Scan destinations of processColumns.
func (r *processRow) destinations() []any {
	p := &r.p
	return []any{&p.GUID, &p.AppGUID, &p.SpaceGUID, &p.OrgGUID, &p.DetectedCommand, &p.Type, &r.command,
		&p.Instances, &p.MemoryMB, &p.DiskMB, &p.LogRateLimit, &p.CPUMillicores,
		&p.HealthCheck.Type, &p.HealthCheck.Endpoint, &p.HealthCheck.Timeout, &p.HealthCheck.InvocationTimeout,
		&p.HealthCheck.Interval, &p.Readiness.Type, &p.Readiness.Endpoint, &p.Readiness.InvocationTimeout,
		&p.Readiness.Interval, &p.Version, &r.labels, &r.annotations, &p.CreatedAt, &p.UpdatedAt}
}

// process decodes the scanned row.
func (r *processRow) process() (Process, error) {
	p := r.p
	if r.command.Valid {
		p.Command = &r.command.String
	}
	var err error
	if p.Labels, err = jsonMap(r.labels); err != nil {
		return Process{}, err
	}
	if p.Annotations, err = jsonMap(r.annotations); err != nil {
		return Process{}, err
	}
	return p, nil
}

// nullIfZero maps 0 to SQL NULL, for optional durations and limits.
func nullIfZero(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

// CreateProcess inserts p through q and returns it as stored. An empty
// Version gets a new one. A type the app already has is a *UniqueError on
// ConstraintProcessType.
func CreateProcess(ctx context.Context, q querier, p Process) (Process, error) {
	if p.Version == "" {
		p.Version = uuid.NewString()
	}
	row := q.QueryRowContext(ctx, `
		WITH p AS (
			INSERT INTO processes (guid, app_guid, type, command, instances, memory_in_mb, disk_in_mb,
				log_rate_limit_in_bytes_per_second, cpu_millicores, health_check_type, health_check_endpoint,
				health_check_timeout, health_check_invocation_timeout, health_check_interval,
				readiness_health_check_type, readiness_health_check_endpoint, readiness_health_check_invocation_timeout,
				readiness_health_check_interval, version, labels, annotations)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
			RETURNING *)
		SELECT `+processColumns+` FROM p`+processJoins,
		p.GUID, p.AppGUID, p.Type, p.Command, p.Instances, p.MemoryMB, p.DiskMB, p.LogRateLimit, nullIfZero(p.CPUMillicores),
		p.HealthCheck.Type, nullIfEmpty(p.HealthCheck.Endpoint), nullIfZero(p.HealthCheck.Timeout),
		nullIfZero(p.HealthCheck.InvocationTimeout), nullIfZero(p.HealthCheck.Interval),
		p.Readiness.Type, nullIfEmpty(p.Readiness.Endpoint), nullIfZero(p.Readiness.InvocationTimeout),
		nullIfZero(p.Readiness.Interval), p.Version, metadataJSON(p.Labels), metadataJSON(p.Annotations))
	created, err := scanProcess(row)
	if err != nil {
		return Process{}, fmt.Errorf("create process %s of app %s: %w", p.Type, p.AppGUID, err)
	}
	return created, nil
}

// EnsureProcessTypes creates, through q, each process type in types that
// the app appGUID does not have yet, with NewProcess's defaults, and
// returns the processes it created in the order of types. Call it in the
// transaction that sets an app's current droplet, with the droplet's
// process types, so every type the droplet defines can be scaled. Types
// that exist keep their settings. A process created concurrently by
// another transaction is skipped, not an error.
func EnsureProcessTypes(ctx context.Context, q querier, appGUID string, types []string) ([]Process, error) {
	created := []Process{}
	seen := map[string]bool{}
	for _, processType := range types {
		if seen[processType] {
			continue
		}
		seen[processType] = true

		p := NewProcess(appGUID, processType)
		row := q.QueryRowContext(ctx, `
			WITH p AS (
				INSERT INTO processes (guid, app_guid, type, instances, memory_in_mb, disk_in_mb,
					log_rate_limit_in_bytes_per_second, health_check_type, readiness_health_check_type, version)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
				ON CONFLICT DO NOTHING
				RETURNING *)
			SELECT `+processColumns+` FROM p`+processJoins,
			p.GUID, p.AppGUID, p.Type, p.Instances, p.MemoryMB, p.DiskMB, p.LogRateLimit, p.HealthCheck.Type,
			p.Readiness.Type, uuid.NewString())
		process, err := scanProcess(row)
		if err == ErrNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ensure process %s of app %s: %w", processType, appGUID, err)
		}
		created = append(created, process)
	}
	return created, nil
}

// LockProcess returns the process guid through tx and locks its row until
// tx ends, so a read-modify-write with SaveProcess loses no concurrent
// change. It returns ErrNotFound when there is no such process.
func LockProcess(ctx context.Context, tx *sql.Tx, guid string) (Process, error) {
	row := tx.QueryRowContext(ctx, `SELECT `+processColumns+processFrom+` WHERE p.guid = $1 FOR UPDATE OF p`, guid)
	p, err := scanProcess(row)
	if err != nil {
		return Process{}, fmt.Errorf("lock process %s: %w", guid, err)
	}
	return p, nil
}

// SaveProcess writes every setting of p through q and applies patch to its
// metadata. The version changes when the command, the limits or a health
// check changed, because running instances must then be replaced. It
// returns the stored process, or ErrNotFound when there is no such process.
func SaveProcess(ctx context.Context, q querier, p Process, patch MetadataPatch) (Process, error) {
	a := args{p.GUID}
	// Each placeholder is cast to its column's type, because the one inside
	// ROW(...) below has no column to take its type from.
	settings := []struct {
		column, sqlType string
		value           any
	}{
		{"command", "text", p.Command},
		{"memory_in_mb", "bigint", p.MemoryMB},
		{"disk_in_mb", "bigint", p.DiskMB},
		{"log_rate_limit_in_bytes_per_second", "bigint", p.LogRateLimit},
		{"cpu_millicores", "integer", nullIfZero(p.CPUMillicores)},
		{"health_check_type", "text", p.HealthCheck.Type},
		{"health_check_endpoint", "text", nullIfEmpty(p.HealthCheck.Endpoint)},
		{"health_check_timeout", "integer", nullIfZero(p.HealthCheck.Timeout)},
		{"health_check_invocation_timeout", "integer", nullIfZero(p.HealthCheck.InvocationTimeout)},
		{"health_check_interval", "integer", nullIfZero(p.HealthCheck.Interval)},
		{"readiness_health_check_type", "text", p.Readiness.Type},
		{"readiness_health_check_endpoint", "text", nullIfEmpty(p.Readiness.Endpoint)},
		{"readiness_health_check_invocation_timeout", "integer", nullIfZero(p.Readiness.InvocationTimeout)},
		{"readiness_health_check_interval", "integer", nullIfZero(p.Readiness.Interval)},
	}
	set := "instances = " + a.add(p.Instances) + ", updated_at = now()"
	columns := make([]string, len(settings))
	values := make([]string, len(settings))
	for i, s := range settings {
		columns[i] = s.column
		values[i] = a.add(s.value) + "::" + s.sqlType
		set += ", " + s.column + " = " + values[i]
	}
	// In an UPDATE the right-hand side reads the old row, so this compares
	// the stored settings with the new ones.
	set += ", version = CASE WHEN ROW(" + strings.Join(columns, ", ") + ") IS DISTINCT FROM ROW(" +
		strings.Join(values, ", ") + ") THEN " + a.add(uuid.NewString()) + " ELSE version END"
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Process{}, fmt.Errorf("save process %s: %w", p.GUID, err)
	}
	set += meta

	row := q.QueryRowContext(ctx, `
		WITH p AS (UPDATE processes SET `+set+` WHERE guid = $1 RETURNING *)
		SELECT `+processColumns+` FROM p`+processJoins, a...)
	saved, err := scanProcess(row)
	if err != nil {
		return Process{}, fmt.Errorf("save process %s: %w", p.GUID, err)
	}
	return saved, nil
}

// Process returns the process guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Process(ctx context.Context, vis Visibility, guid string) (Process, error) {
	a := args{guid}
	row := s.preparedRow(ctx, `SELECT `+processColumns+processFrom+`
		WHERE p.guid = $1 AND `+vis.spaceRowCondition("a.space_guid", "s.organization_guid", &a), a...)
	p, err := scanProcess(row)
	if err != nil {
		return Process{}, fmt.Errorf("process %s: %w", guid, err)
	}
	return p, nil
}

// ProcessWithApp returns the process guid and its app if vis may see the
// app's space, and ErrNotFound otherwise. It costs one query where Process
// and App cost two, for the endpoints the cf CLI calls once per process.
func (s *Store) ProcessWithApp(ctx context.Context, vis Visibility, guid string) (Process, App, error) {
	a := args{guid}
	row := s.preparedRow(ctx, `SELECT `+appColumns+`, `+processColumns+processFrom+`
		WHERE p.guid = $1 AND `+vis.spaceRowCondition("a.space_guid", "s.organization_guid", &a), a...)
	var r processRow
	app, err := scanApp(row, r.destinations()...)
	if err != nil {
		return Process{}, App{}, fmt.Errorf("process %s: %w", guid, err)
	}
	p, err := r.process()
	if err != nil {
		return Process{}, App{}, fmt.Errorf("process %s: %w", guid, err)
	}
	return p, app, nil
}

// ProcessByType returns the process of type processType of the app
// appGUID if vis may see the app's space, and ErrNotFound otherwise.
func (s *Store) ProcessByType(ctx context.Context, vis Visibility, appGUID, processType string) (Process, error) {
	a := args{appGUID, processType}
	row := s.preparedRow(ctx, `SELECT `+processColumns+processFrom+`
		WHERE p.app_guid = $1 AND p.type = $2 AND `+vis.spaceRowCondition("a.space_guid", "s.organization_guid", &a), a...)
	p, err := scanProcess(row)
	if err != nil {
		return Process{}, fmt.Errorf("process %s of app %s: %w", processType, appGUID, err)
	}
	return p, nil
}

// AppProcesses returns every process of the app appGUID through q, ordered
// by type. The caller has checked that the app is visible.
func AppProcesses(ctx context.Context, q querier, appGUID string) ([]Process, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+processColumns+processFrom+` WHERE p.app_guid = $1 ORDER BY p.type`, appGUID)
	if err != nil {
		return nil, fmt.Errorf("processes of app %s: %w", appGUID, mapError(err))
	}
	defer rows.Close()

	processes := []Process{}
	for rows.Next() {
		p, err := scanProcess(rows)
		if err != nil {
			return nil, fmt.Errorf("processes of app %s: %w", appGUID, err)
		}
		processes = append(processes, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("processes of app %s: %w", appGUID, mapError(err))
	}
	return processes, nil
}

// Processes returns one page of the processes vis may see that match f,
// and the total number of matches across all pages. It runs one query, and
// a second only for a page past the last one.
func (s *Store) Processes(ctx context.Context, f ProcessFilter, page Page, vis Visibility) ([]Process, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("p", &a, where)
	for _, filter := range []struct {
		column string
		values []string
	}{
		{"p.type", f.Types},
		{"p.app_guid", f.AppGUIDs},
		{"a.space_guid", f.SpaceGUIDs},
		{"s.organization_guid", f.OrganizationGUIDs},
	} {
		if filter.values != nil {
			where = append(where, filter.column+" = ANY("+a.add(pq.Array(filter.values))+"::text[])")
		}
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("p.labels", &a))
	}

	from := processFrom + ` WHERE ` + strings.Join(where, " AND ")
	totalColumn := listTotal(vis, from)
	if f.AppGUIDs != nil || f.SpaceGUIDs != nil {
		// No index returns these processes in page order, so every page
		// sorts all of them and the window function counts them in the
		// same pass, where a scalar count would run the joins again. The
		// cf CLI pages through both filters in cf apps.
		totalColumn = "COUNT(*) OVER ()"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+processColumns+`, `+totalColumn+from+
		page.orderBy(processOrder, "p.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list processes: %w", mapError(err))
	}
	defer rows.Close()

	processes := []Process{}
	total := 0
	for rows.Next() {
		p, err := scanProcess(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list processes: %w", err)
		}
		processes = append(processes, p)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list processes: %w", mapError(err))
	}
	if len(processes) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list processes: %w", err)
		}
	}
	return processes, total, nil
}
