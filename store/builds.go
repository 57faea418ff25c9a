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

// Build states, as Cloud Controller names them.
const (
	BuildStateStaging = "STAGING"
	BuildStateStaged  = "STAGED"
	BuildStateFailed  = "FAILED"
)

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintBuildStagingPerApp is the unique index that allows one
	// STAGING build per app.
	ConstraintBuildStagingPerApp = "builds_one_staging_per_app"
	// ConstraintBuildApp is the foreign key from a build to its app.
	ConstraintBuildApp = "builds_app_guid_fkey"
)

// BuildsChannel is the PostgreSQL notification channel on which a build's
// GUID is sent when the build is created, so a controller in another
// process starts staging it without waiting for its next resync.
const BuildsChannel = "ferry_builds"

// AppsChannel carries the GUID of every app whose row or processes
// changed; triggers from migration 00010 send it.
const AppsChannel = "ferry_apps"

// ErrBuildNotStaging is returned when a build that should be STAGING has
// already finished, for example because another controller finished it.
var ErrBuildNotStaging = errors.New("build is not staging")

// Build is a Cloud Controller build: a request to stage a package.
type Build struct {
	GUID        string
	AppGUID     string
	PackageGUID string
	// PackageImage is the package image, pinned by digest, as Ferry reaches
	// the registry. It is "" for docker builds.
	PackageImage string
	// SpaceGUID and OrgGUID are those of the app. They are read with the
	// build and ignored on writes.
	SpaceGUID string
	OrgGUID   string
	// State is BuildStateStaging, BuildStateStaged or BuildStateFailed.
	State string
	// Error is "<error name> - <message>" for a failed build, else "".
	Error string
	// LifecycleType is LifecycleBuildpack or LifecycleDocker.
	LifecycleType string
	// Buildpacks are the requested buildpack names; empty means the
	// builder detects them.
	Buildpacks []string
	Stack      string
	// StagingMemoryMB and StagingDiskMB are the staging container's memory
	// and disk limits in MiB.
	StagingMemoryMB int64
	StagingDiskMB   int64
	// StagingLogRateLimit is in bytes per second; -1 means unlimited.
	StagingLogRateLimit int64
	// DropletGUID is the droplet the build produced, or "".
	DropletGUID    string
	CreatedByGUID  string
	CreatedByName  string
	CreatedByEmail string
	Labels         map[string]string
	Annotations    map[string]string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// BuildFilter selects builds. A nil slice does not filter.
type BuildFilter struct {
	CommonFilter
	AppGUIDs      []string
	PackageGUIDs  []string
	States        []string
	LabelSelector LabelSelector
}

const buildColumns = `b.guid, b.app_guid, b.package_guid, b.package_image, a.space_guid, s.organization_guid, b.state,
	COALESCE(b.error, ''), b.lifecycle_type, b.lifecycle_buildpacks, COALESCE(b.lifecycle_stack, ''),
	b.staging_memory_in_mb, b.staging_disk_in_mb, b.staging_log_rate_limit_bytes_per_second,
	COALESCE(b.droplet_guid, ''), b.created_by_user_guid, b.created_by_user_name, b.created_by_user_email,
	b.labels, b.annotations, b.created_at, b.updated_at`

// buildFrom joins each build to its app and the app's space, which carry
// the visibility and the organization.
const buildFrom = ` FROM builds b JOIN apps a ON a.guid = b.app_guid JOIN spaces s ON s.guid = a.space_guid`

var buildOrder = map[string]string{
	"created_at": "b.created_at",
	"updated_at": "b.updated_at",
}

// scanBuild scans buildColumns followed by extra destinations.
func scanBuild(row interface{ Scan(...any) error }, extra ...any) (Build, error) {
	var b Build
	var buildpacks pq.StringArray
	var labels, annotations []byte
	dest := append([]any{&b.GUID, &b.AppGUID, &b.PackageGUID, &b.PackageImage, &b.SpaceGUID, &b.OrgGUID, &b.State,
		&b.Error, &b.LifecycleType, &buildpacks, &b.Stack, &b.StagingMemoryMB, &b.StagingDiskMB, &b.StagingLogRateLimit,
		&b.DropletGUID, &b.CreatedByGUID, &b.CreatedByName, &b.CreatedByEmail, &labels, &annotations,
		&b.CreatedAt, &b.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Build{}, mapError(err)
	}
	b.Buildpacks = []string(buildpacks)
	if b.Buildpacks == nil {
		b.Buildpacks = []string{}
	}
	var err error
	if b.Labels, err = jsonMap(labels); err != nil {
		return Build{}, err
	}
	if b.Annotations, err = jsonMap(annotations); err != nil {
		return Build{}, err
	}
	return b, nil
}

// CreateBuild inserts b through q and returns it as stored. A second
// STAGING build of the same app is a *UniqueError on
// ConstraintBuildStagingPerApp; an app that no longer exists is a
// *ForeignKeyError on ConstraintBuildApp. b.DropletGUID is not written:
// CompleteBuild and CreateStagedBuild set it.
func CreateBuild(ctx context.Context, q querier, b Build) (Build, error) {
	buildpacks := b.Buildpacks
	if buildpacks == nil {
		buildpacks = []string{}
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO builds (guid, app_guid, package_guid, package_image, state, error, lifecycle_type,
			lifecycle_buildpacks, lifecycle_stack, staging_memory_in_mb, staging_disk_in_mb,
			staging_log_rate_limit_bytes_per_second, created_by_user_guid, created_by_user_name,
			created_by_user_email, labels, annotations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		b.GUID, b.AppGUID, b.PackageGUID, b.PackageImage, b.State, nullIfEmpty(b.Error), b.LifecycleType,
		pq.Array(buildpacks), nullIfEmpty(b.Stack), b.StagingMemoryMB, b.StagingDiskMB, b.StagingLogRateLimit,
		b.CreatedByGUID, b.CreatedByName, b.CreatedByEmail, metadataJSON(b.Labels), metadataJSON(b.Annotations))
	if err != nil {
		return Build{}, fmt.Errorf("create build %s: %w", b.GUID, mapError(err))
	}
	created, err := buildThrough(ctx, q, b.GUID)
	if err != nil {
		return Build{}, fmt.Errorf("create build %s: %w", b.GUID, err)
	}
	return created, nil
}

// NotifyBuild sends the build's GUID on BuildsChannel through q. Inside a
// transaction the notification is delivered only if it commits.
func NotifyBuild(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `SELECT pg_notify($1, $2)`, BuildsChannel, guid); err != nil {
		return fmt.Errorf("notify build %s: %w", guid, mapError(err))
	}
	return nil
}

// buildThrough reads the build guid through q with no visibility check.
func buildThrough(ctx context.Context, q querier, guid string) (Build, error) {
	return scanBuild(q.QueryRowContext(ctx, `SELECT `+buildColumns+buildFrom+` WHERE b.guid = $1`, guid))
}

// Build returns the build guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Build(ctx context.Context, vis Visibility, guid string) (Build, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+buildColumns+buildFrom+`
		WHERE b.guid = $1 AND `+vis.spaceCondition("a.space_guid", &a), a...)
	b, err := scanBuild(row)
	if err != nil {
		return Build{}, fmt.Errorf("build %s: %w", guid, err)
	}
	return b, nil
}

// Builds returns one page of the builds vis may see that match f, and the
// total number of matches across all pages. It runs one query, and a
// second only for a page past the last one.
func (s *Store) Builds(ctx context.Context, f BuildFilter, page Page, vis Visibility) ([]Build, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("b", &a, where)
	if f.AppGUIDs != nil {
		where = append(where, "b.app_guid = ANY("+a.add(pq.Array(f.AppGUIDs))+"::text[])")
	}
	if f.PackageGUIDs != nil {
		where = append(where, "b.package_guid = ANY("+a.add(pq.Array(f.PackageGUIDs))+"::text[])")
	}
	if f.States != nil {
		where = append(where, "b.state = ANY("+a.add(pq.Array(f.States))+"::text[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("b.labels", &a))
	}

	from := buildFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+buildColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(buildOrder, "b.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list builds: %w", mapError(err))
	}
	defer rows.Close()

	builds := []Build{}
	total := 0
	for rows.Next() {
		b, err := scanBuild(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list builds: %w", err)
		}
		builds = append(builds, b)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list builds: %w", mapError(err))
	}
	if len(builds) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list builds: %w", err)
		}
	}
	return builds, total, nil
}

// UpdateBuildMetadata applies patch to the labels and annotations of the
// build guid through q and returns the build, or ErrNotFound when there is
// no such build.
func UpdateBuildMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Build, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Build{}, fmt.Errorf("update build %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE builds SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err := affectedOne(res, err); err != nil {
		return Build{}, fmt.Errorf("update build %s: %w", guid, err)
	}
	b, err := buildThrough(ctx, q, guid)
	if err != nil {
		return Build{}, fmt.Errorf("update build %s: %w", guid, err)
	}
	return b, nil
}

// affectedOne turns an Exec result that changed no row into ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return mapError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// StagingBuild returns the build guid with no visibility check, for the
// controller, which acts for every user.
func (s *Store) StagingBuild(ctx context.Context, guid string) (Build, error) {
	b, err := buildThrough(ctx, s.db, guid)
	if err != nil {
		return Build{}, fmt.Errorf("build %s: %w", guid, err)
	}
	return b, nil
}

// StagingBuildGUIDs returns the GUIDs of every STAGING build, oldest
// first, for the controller's resync.
func (s *Store) StagingBuildGUIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT guid FROM builds WHERE state = 'STAGING' ORDER BY created_at, guid`)
	if err != nil {
		return nil, fmt.Errorf("list staging builds: %w", mapError(err))
	}
	defer rows.Close()
	guids := []string{}
	for rows.Next() {
		var guid string
		if err := rows.Scan(&guid); err != nil {
			return nil, fmt.Errorf("list staging builds: %w", err)
		}
		guids = append(guids, guid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list staging builds: %w", mapError(err))
	}
	return guids, nil
}

// setBuildFinished moves the build guid from STAGING to state through q,
// with errText and dropletGUID ("" for none). It returns ErrNotFound when
// the build does not exist and ErrBuildNotStaging when it has finished.
func setBuildFinished(ctx context.Context, q querier, guid, state, errText, dropletGUID string) error {
	// Under READ COMMITTED a concurrent finisher blocks on the row lock and
	// then re-checks the state condition, so only one of them wins.
	res, err := q.ExecContext(ctx, `
		UPDATE builds SET state = $2, error = $3, droplet_guid = $4, updated_at = now()
		WHERE guid = $1 AND state = 'STAGING'`, guid, state, nullIfEmpty(errText), nullIfEmpty(dropletGUID))
	if err := affectedOne(res, err); !errors.Is(err, ErrNotFound) {
		return err
	}
	var current string
	if err := q.QueryRowContext(ctx, `SELECT state FROM builds WHERE guid = $1`, guid).Scan(&current); err != nil {
		return mapError(err)
	}
	return ErrBuildNotStaging
}

// FailBuild marks the STAGING build guid FAILED with errText, which has
// Cloud Controller's "<error name> - <message>" form, and records event
// (an audit.app.build.failed event) in the same transaction. A build that
// has already finished is left as it is and ErrBuildNotStaging returned.
func (s *Store) FailBuild(ctx context.Context, guid, errText string, event AuditEvent) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if err := setBuildFinished(ctx, tx, guid, BuildStateFailed, errText, ""); err != nil {
			return err
		}
		return RecordAuditEvent(ctx, tx, event)
	})
	if err != nil {
		return fmt.Errorf("fail build %s: %w", guid, err)
	}
	return nil
}

// CompleteBuild stores droplet, marks the STAGING build guid STAGED with it,
// and records events, all in one transaction. A build that has already
// finished is left as it is, no droplet is stored, and ErrBuildNotStaging
// is returned.
func (s *Store) CompleteBuild(ctx context.Context, guid string, droplet Droplet, events ...AuditEvent) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := CreateDroplet(ctx, tx, droplet); err != nil {
			return err
		}
		if err := setBuildFinished(ctx, tx, guid, BuildStateStaged, "", droplet.GUID); err != nil {
			return err
		}
		for _, ev := range events {
			if err := RecordAuditEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete build %s: %w", guid, err)
	}
	return nil
}

// CreateStagedBuild inserts b as a STAGED build together with its droplet
// through q, which should be a transaction. Docker builds take this path:
// their droplet is the user's image, so there is nothing to stage.
func CreateStagedBuild(ctx context.Context, q querier, b Build, droplet Droplet) (Build, error) {
	b.State = BuildStateStaging
	if _, err := CreateBuild(ctx, q, b); err != nil {
		return Build{}, err
	}
	droplet.BuildGUID = b.GUID
	if _, err := CreateDroplet(ctx, q, droplet); err != nil {
		return Build{}, err
	}
	if err := setBuildFinished(ctx, q, b.GUID, BuildStateStaged, "", droplet.GUID); err != nil {
		return Build{}, fmt.Errorf("create build %s: %w", b.GUID, err)
	}
	created, err := buildThrough(ctx, q, b.GUID)
	if err != nil {
		return Build{}, fmt.Errorf("create build %s: %w", b.GUID, err)
	}
	return created, nil
}

// ListenBuilds calls fn with the GUID of every build announced on
// BuildsChannel until ctx ends; see Listen.
func ListenBuilds(ctx context.Context, url string, fn func(guid string)) error {
	return Listen(ctx, url, BuildsChannel, fn)
}

// ListenApps calls fn with the GUID of every app that changed, as the
// triggers on apps and processes announce on AppsChannel; see Listen.
func ListenApps(ctx context.Context, url string, fn func(guid string)) error {
	return Listen(ctx, url, AppsChannel, fn)
}

// Listen calls fn with the payload of every notification on channel until
// ctx ends. url is the PostgreSQL URL; the listener keeps its own
// connection and reconnects after a failure, calling fn with "" after every
// reconnect, because notifications sent meanwhile are lost and the caller
// should resync.
func Listen(ctx context.Context, url, channel string, fn func(payload string)) error {
	listener := pq.NewListener(url, time.Second, time.Minute, nil)
	defer listener.Close()
	if err := listener.Listen(channel); err != nil {
		return fmt.Errorf("listen on %s: %w", channel, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-listener.Notify:
			if n == nil {
				fn("")
				continue
			}
			fn(n.Extra)
		case <-time.After(90 * time.Second):
			// Ping detects a dead connection that would otherwise stay
			// silent; the listener reconnects on its own.
			go listener.Ping()
		}
	}
}
