package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintAppName is the unique index on an app's space and its name
	// without regard to case.
	ConstraintAppName = "apps_space_name_key"
	// ConstraintAppSpace is the foreign key from an app to its space.
	ConstraintAppSpace = "apps_space_guid_fkey"
)

// App states, as Cloud Controller names an app's desired state.
const (
	AppStateStopped = "STOPPED"
	AppStateStarted = "STARTED"
)

// App lifecycle types Ferry stages and runs.
const (
	LifecycleBuildpack = "buildpack"
	LifecycleDocker    = "docker"
)

// App is a Cloud Controller v3 app: the desired state of one application.
type App struct {
	GUID      string
	Name      string
	SpaceGUID string
	// OrgGUID is the organization of the app's space. It is read with the
	// app and ignored on writes.
	OrgGUID string
	// State is AppStateStopped or AppStateStarted.
	State string
	// LifecycleType is LifecycleBuildpack or LifecycleDocker.
	LifecycleType string
	// Buildpacks are buildpack names or URLs in detection order. Empty means
	// the builder detects them. Docker apps have none.
	Buildpacks []string
	// Stack is the stack of a buildpack app, and "" for docker apps.
	Stack string
	// EnvironmentVariables are the user's variables. The values are secrets:
	// never log them or copy them into audit events.
	EnvironmentVariables map[string]string
	// DropletGUID is the current droplet, or "" for none.
	DropletGUID      string
	RevisionsEnabled bool
	Labels           map[string]string
	Annotations      map[string]string
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// StartCount goes up by one on every start from STOPPED and on every
	// restart, so each run of the app has its own number. It is read with
	// the app and ignored on create.
	StartCount int64
}

// AppFilter selects apps. A nil slice does not filter.
type AppFilter struct {
	CommonFilter
	// Names match without regard to case.
	Names             []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	Stacks            []string
	// LifecycleType filters on one lifecycle type. The empty string does
	// not filter.
	LifecycleType string
	LabelSelector LabelSelector
	// OmitEnvironment leaves EnvironmentVariables empty. Lists that never
	// show the variables set it, because reading and decoding them is a
	// noticeable part of listing a thousand apps.
	OmitEnvironment bool
}

// AppUpdate is a partial update of an app. Nil fields stay as they are.
type AppUpdate struct {
	Name *string
	// Buildpacks replaces the buildpack list, and a non-nil empty slice
	// clears it.
	Buildpacks *[]string
	Stack      *string
	Metadata   MetadataPatch
}

const appColumns = `a.guid, a.name, a.space_guid, s.organization_guid, a.state, a.lifecycle_type, a.lifecycle_buildpacks,
	COALESCE(a.lifecycle_stack, ''), a.environment_variables, COALESCE(a.current_droplet_guid, ''), a.revisions_enabled,
	a.labels, a.annotations, a.created_at, a.updated_at, a.start_count`

// appFrom joins each app to its space, which carries the organization.
const appFrom = ` FROM apps a JOIN spaces s ON s.guid = a.space_guid`

var appOrder = map[string]string{
	"created_at": "a.created_at",
	"updated_at": "a.updated_at",
	"name":       "lower(a.name)",
	"state":      "a.state",
}

// scanApp scans appColumns followed by extra destinations.
func scanApp(row interface{ Scan(...any) error }, extra ...any) (App, error) {
	var app App
	var buildpacks pq.StringArray
	var env, labels, annotations []byte
	dest := append([]any{&app.GUID, &app.Name, &app.SpaceGUID, &app.OrgGUID, &app.State, &app.LifecycleType, &buildpacks,
		&app.Stack, &env, &app.DropletGUID, &app.RevisionsEnabled, &labels, &annotations, &app.CreatedAt, &app.UpdatedAt, &app.StartCount}, extra...)
	if err := row.Scan(dest...); err != nil {
		return App{}, mapError(err)
	}
	app.Buildpacks = []string(buildpacks)
	if app.Buildpacks == nil {
		app.Buildpacks = []string{}
	}
	var err error
	if app.EnvironmentVariables, err = envMap(env); err != nil {
		return App{}, err
	}
	if app.Labels, err = jsonMap(labels); err != nil {
		return App{}, err
	}
	if app.Annotations, err = jsonMap(annotations); err != nil {
		return App{}, err
	}
	return app, nil
}

// envMap decodes the environment_variables column. Its error never quotes
// the column, because the values are secrets.
func envMap(raw []byte) (map[string]string, error) {
	out := map[string]string{}
	if len(raw) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode environment variables: the stored value is not an object of strings")
	}
	return out, nil
}

// envJSON encodes environment variables for the jsonb column. A nil map
// is the empty object.
func envJSON(env map[string]string) []byte {
	if env == nil {
		env = map[string]string{}
	}
	raw, _ := json.Marshal(env) // A map of strings always encodes.
	return raw
}

// nullIfEmpty maps "" to SQL NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateApp inserts app through q and returns it as stored. A name that
// collides with another app's in the space, ignoring case, is a
// *UniqueError on ConstraintAppName. A space that no longer exists is a
// *ForeignKeyError on ConstraintAppSpace. An empty State is STOPPED. It
// also creates the app's web process with NewProcess's defaults.
func CreateApp(ctx context.Context, q querier, app App) (App, error) {
	if app.State == "" {
		app.State = AppStateStopped
	}
	buildpacks := app.Buildpacks
	if buildpacks == nil {
		buildpacks = []string{}
	}
	row := q.QueryRowContext(ctx, `
		WITH a AS (
			INSERT INTO apps (guid, name, space_guid, state, lifecycle_type, lifecycle_buildpacks, lifecycle_stack,
				environment_variables, current_droplet_guid, labels, annotations)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			RETURNING *)
		SELECT `+appColumns+` FROM a JOIN spaces s ON s.guid = a.space_guid`,
		app.GUID, app.Name, app.SpaceGUID, app.State, app.LifecycleType, pq.Array(buildpacks), nullIfEmpty(app.Stack),
		envJSON(app.EnvironmentVariables), nullIfEmpty(app.DropletGUID), metadataJSON(app.Labels), metadataJSON(app.Annotations))
	created, err := scanApp(row)
	if err == nil {
		// Every app has a web process, as in Cloud Controller.
		_, err = EnsureProcessTypes(ctx, q, created.GUID, []string{ProcessTypeWeb})
	}
	if err != nil {
		return App{}, fmt.Errorf("create app %s: %w", app.GUID, err)
	}
	return created, nil
}

// updateApp runs "UPDATE apps SET set WHERE guid = $1" with a's arguments
// and returns the updated app, or ErrNotFound when there is no such app.
func updateApp(ctx context.Context, q querier, guid, set string, a args) (App, error) {
	row := q.QueryRowContext(ctx, `
		WITH a AS (UPDATE apps SET `+set+` WHERE guid = $1 RETURNING *)
		SELECT `+appColumns+` FROM a JOIN spaces s ON s.guid = a.space_guid`, a...)
	return scanApp(row)
}

// UpdateApp applies u to the app guid through q and returns the result. It
// returns ErrNotFound when there is no such app, and a *UniqueError on
// ConstraintAppName when the new name is taken in the space.
func UpdateApp(ctx context.Context, q querier, guid string, u AppUpdate) (App, error) {
	a := args{guid}
	set := "updated_at = now()"
	if u.Name != nil {
		set += ", name = " + a.add(*u.Name)
	}
	if u.Buildpacks != nil {
		buildpacks := *u.Buildpacks
		if buildpacks == nil {
			buildpacks = []string{}
		}
		set += ", lifecycle_buildpacks = " + a.add(pq.Array(buildpacks))
	}
	if u.Stack != nil {
		set += ", lifecycle_stack = " + a.add(nullIfEmpty(*u.Stack))
	}
	meta, err := metadataAssignments(u.Metadata, &a)
	if err != nil {
		return App{}, fmt.Errorf("update app %s: %w", guid, err)
	}
	set += meta

	app, err := updateApp(ctx, q, guid, set, a)
	if err != nil {
		return App{}, fmt.Errorf("update app %s: %w", guid, err)
	}
	return app, nil
}

// SetAppState sets the desired state of the app guid through q to state,
// AppStateStarted or AppStateStopped, and returns the app. Starting a
// stopped app increments its StartCount in the same statement, and
// starting a started app leaves it, as Cloud Controller leaves running
// instances alone. It returns ErrNotFound when there is no such app.
func SetAppState(ctx context.Context, q querier, guid, state string) (App, error) {
	a := args{guid}
	newState := a.add(state)
	set := "state = " + newState + ", updated_at = now(), start_count = start_count + " +
		"CASE WHEN " + newState + " = '" + AppStateStarted + "' AND state = '" + AppStateStopped + "' THEN 1 ELSE 0 END"
	app, err := updateApp(ctx, q, guid, set, a)
	if err != nil {
		return App{}, fmt.Errorf("set state of app %s: %w", guid, err)
	}
	return app, nil
}

// RestartApp sets the desired state of the app guid through q to
// AppStateStarted and increments its StartCount, whatever its state was,
// so the runtime replaces the instances of a started app. It returns the
// app, or ErrNotFound when there is no such app.
func RestartApp(ctx context.Context, q querier, guid string) (App, error) {
	a := args{guid}
	set := "state = " + a.add(AppStateStarted) + ", updated_at = now(), start_count = start_count + 1"
	app, err := updateApp(ctx, q, guid, set, a)
	if err != nil {
		return App{}, fmt.Errorf("restart app %s: %w", guid, err)
	}
	return app, nil
}

// SetAppCurrentDroplet makes dropletGUID the current droplet of the app
// guid through q, or clears it when dropletGUID is "", and returns the app.
// It returns ErrNotFound when there is no such app, and a *ForeignKeyError
// when the droplet does not exist. The caller checks that the droplet
// belongs to the app and is staged.
func SetAppCurrentDroplet(ctx context.Context, q querier, guid, dropletGUID string) (App, error) {
	a := args{guid}
	app, err := updateApp(ctx, q, guid, "current_droplet_guid = "+a.add(nullIfEmpty(dropletGUID))+", updated_at = now()", a)
	if err != nil {
		return App{}, fmt.Errorf("set current droplet of app %s: %w", guid, err)
	}
	return app, nil
}

// SetAppRevisionsEnabled turns the revisions feature of the app guid on or
// off through q and returns the app, or ErrNotFound when there is no such
// app.
func SetAppRevisionsEnabled(ctx context.Context, q querier, guid string, enabled bool) (App, error) {
	a := args{guid}
	app, err := updateApp(ctx, q, guid, "revisions_enabled = "+a.add(enabled)+", updated_at = now()", a)
	if err != nil {
		return App{}, fmt.Errorf("set revisions feature of app %s: %w", guid, err)
	}
	return app, nil
}

// PatchAppEnvironment merges patch into the environment variables of the
// app guid through q: a key with a value sets it, a key with a nil value
// removes it, and other keys stay. It returns the app, or ErrNotFound when
// there is no such app.
func PatchAppEnvironment(ctx context.Context, q querier, guid string, patch map[string]*string) (App, error) {
	set, remove, err := splitPatch(patch)
	if err != nil {
		return App{}, fmt.Errorf("patch environment of app %s: encode variables", guid)
	}
	a := args{guid}
	app, err := updateApp(ctx, q, guid, "environment_variables = (environment_variables || "+a.add(set)+"::jsonb) - "+
		a.add(remove)+"::text[], updated_at = now()", a)
	if err != nil {
		return App{}, fmt.Errorf("patch environment of app %s: %w", guid, err)
	}
	return app, nil
}

// DeleteApp deletes the app guid through q. Rows that reference the app
// with ON DELETE CASCADE go with it. Deleting an app that is already gone
// succeeds, so a retried delete job finishes.
func DeleteApp(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM apps WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete app %s: %w", guid, mapError(err))
	}
	return nil
}

// App returns the app guid if vis may see its space, and ErrNotFound
// otherwise.
func (s *Store) App(ctx context.Context, vis Visibility, guid string) (App, error) {
	a := args{guid}
	row := s.preparedRow(ctx, `SELECT `+appColumns+appFrom+`
		WHERE a.guid = $1 AND `+vis.spaceRowCondition("a.space_guid", "s.organization_guid", &a), a...)
	app, err := scanApp(row)
	if err != nil {
		return App{}, fmt.Errorf("app %s: %w", guid, err)
	}
	return app, nil
}

// Apps returns one page of the apps vis may see that match f, and the
// total number of matches across all pages. It runs one query, and a
// second only for a page past the last one.
func (s *Store) Apps(ctx context.Context, f AppFilter, page Page, vis Visibility) ([]App, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("a", &a, where)
	if f.Names != nil {
		where = append(where, "lower(a.name) = ANY("+a.add(pq.Array(lowerAll(f.Names)))+"::text[])")
	}
	if f.SpaceGUIDs != nil {
		where = append(where, "a.space_guid = ANY("+a.add(pq.Array(f.SpaceGUIDs))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "s.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.Stacks != nil {
		where = append(where, "COALESCE(a.lifecycle_stack, '') = ANY("+a.add(pq.Array(f.Stacks))+"::text[])")
	}
	if f.LifecycleType != "" {
		where = append(where, "a.lifecycle_type = "+a.add(f.LifecycleType))
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("a.labels", &a))
	}

	from := appFrom + ` WHERE ` + strings.Join(where, " AND ")
	columns := appColumns
	if f.OmitEnvironment {
		columns = strings.Replace(appColumns, "a.environment_variables", "NULL::jsonb", 1)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, `+listTotal(vis, from)+from+
		page.orderBy(appOrder, "a.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list apps: %w", mapError(err))
	}
	defer rows.Close()

	apps := []App{}
	total := 0
	for rows.Next() {
		app, err := scanApp(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list apps: %w", err)
		}
		apps = append(apps, app)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list apps: %w", mapError(err))
	}
	if len(apps) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list apps: %w", err)
		}
	}
	return apps, total, nil
}
