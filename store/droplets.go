package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Droplet states Ferry produces. Cloud Controller's other states
// (AWAITING_UPLOAD, PROCESSING_UPLOAD, COPYING, EXPIRED) are accepted by
// the schema for droplet uploads and copies.
const (
	DropletStateStaged = "STAGED"
	DropletStateFailed = "FAILED"
)

// ErrDropletInUse is returned when a droplet to delete is the current
// droplet of its app.
var ErrDropletInUse = errors.New("droplet is the current droplet of its app")

// Droplet is a Cloud Controller droplet: a runnable image of an app.
type Droplet struct {
	GUID        string
	AppGUID     string
	PackageGUID string
	BuildGUID   string
	// SpaceGUID and OrgGUID are those of the app. They are read with the
	// droplet and ignored on writes.
	SpaceGUID string
	OrgGUID   string
	State     string
	Error     string
	// LifecycleType is LifecycleBuildpack or LifecycleDocker.
	LifecycleType string
	// Image is the droplet image as the cluster pulls it, pinned by digest.
	Image string
	// ProcessTypes maps each process type, such as "web", to its command.
	ProcessTypes map[string]string
	Buildpacks   []DropletBuildpack
	Stack        string
	// ExecutionMetadata is the JSON a docker droplet records about its
	// image (entrypoint, command, user, ports); "" for buildpack droplets.
	ExecutionMetadata string
	Labels            map[string]string
	Annotations       map[string]string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// DropletBuildpack is one buildpack that took part in staging a droplet.
type DropletBuildpack struct {
	Name          string
	BuildpackName string
	DetectOutput  string
	Version       string
}

// dropletBuildpackJSON is the stored form of a DropletBuildpack.
type dropletBuildpackJSON struct {
	Name          string `json:"name"`
	BuildpackName string `json:"buildpack_name"`
	DetectOutput  string `json:"detect_output"`
	Version       string `json:"version"`
}

// DropletFilter selects droplets. A nil slice does not filter.
type DropletFilter struct {
	CommonFilter
	AppGUIDs          []string
	PackageGUIDs      []string
	States            []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	// Current keeps only droplets that are their app's current droplet.
	Current       bool
	LabelSelector LabelSelector
}

const dropletColumns = `d.guid, d.app_guid, COALESCE(d.package_guid, ''), COALESCE(d.build_guid, ''), a.space_guid,
	s.organization_guid, d.state, COALESCE(d.error, ''), d.lifecycle_type, d.image, d.process_types, d.buildpacks,
	COALESCE(d.stack, ''), d.execution_metadata, d.labels, d.annotations, d.created_at, d.updated_at`

// dropletFrom joins each droplet to its app and the app's space.
const dropletFrom = ` FROM droplets d JOIN apps a ON a.guid = d.app_guid JOIN spaces s ON s.guid = a.space_guid`

var dropletOrder = map[string]string{
	"created_at": "d.created_at",
	"updated_at": "d.updated_at",
}

// scanDroplet scans dropletColumns followed by extra destinations.
func scanDroplet(row interface{ Scan(...any) error }, extra ...any) (Droplet, error) {
	var d Droplet
	var processTypes, buildpacks, labels, annotations []byte
	dest := append([]any{&d.GUID, &d.AppGUID, &d.PackageGUID, &d.BuildGUID, &d.SpaceGUID, &d.OrgGUID, &d.State,
		&d.Error, &d.LifecycleType, &d.Image, &processTypes, &buildpacks, &d.Stack, &d.ExecutionMetadata,
		&labels, &annotations, &d.CreatedAt, &d.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Droplet{}, mapError(err)
	}
	var err error
	if d.ProcessTypes, err = jsonMap(processTypes); err != nil {
		return Droplet{}, fmt.Errorf("decode process types of droplet %s: %w", d.GUID, err)
	}
	var bps []dropletBuildpackJSON
	if err := json.Unmarshal(buildpacks, &bps); err != nil {
		return Droplet{}, fmt.Errorf("decode buildpacks of droplet %s: %w", d.GUID, err)
	}
	d.Buildpacks = make([]DropletBuildpack, len(bps))
	for i, bp := range bps {
		d.Buildpacks[i] = DropletBuildpack(bp)
	}
	if d.Labels, err = jsonMap(labels); err != nil {
		return Droplet{}, err
	}
	if d.Annotations, err = jsonMap(annotations); err != nil {
		return Droplet{}, err
	}
	return d, nil
}

// CreateDroplet inserts d through q and returns it as stored. An app that
// no longer exists is a *ForeignKeyError.
func CreateDroplet(ctx context.Context, q querier, d Droplet) (Droplet, error) {
	processTypes := d.ProcessTypes
	if processTypes == nil {
		processTypes = map[string]string{}
	}
	rawProcessTypes, err := json.Marshal(processTypes)
	if err != nil {
		return Droplet{}, fmt.Errorf("create droplet %s: encode process types: %w", d.GUID, err)
	}
	bps := make([]dropletBuildpackJSON, len(d.Buildpacks))
	for i, bp := range d.Buildpacks {
		bps[i] = dropletBuildpackJSON(bp)
	}
	rawBuildpacks, err := json.Marshal(bps)
	if err != nil {
		return Droplet{}, fmt.Errorf("create droplet %s: encode buildpacks: %w", d.GUID, err)
	}

	_, err = q.ExecContext(ctx, `
		INSERT INTO droplets (guid, app_guid, package_guid, build_guid, state, error, lifecycle_type, image,
			process_types, buildpacks, stack, execution_metadata, labels, annotations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		d.GUID, d.AppGUID, nullIfEmpty(d.PackageGUID), nullIfEmpty(d.BuildGUID), d.State, nullIfEmpty(d.Error),
		d.LifecycleType, d.Image, rawProcessTypes, rawBuildpacks, nullIfEmpty(d.Stack), d.ExecutionMetadata,
		metadataJSON(d.Labels), metadataJSON(d.Annotations))
	if err != nil {
		return Droplet{}, fmt.Errorf("create droplet %s: %w", d.GUID, mapError(err))
	}
	created, err := dropletThrough(ctx, q, d.GUID)
	if err != nil {
		return Droplet{}, fmt.Errorf("create droplet %s: %w", d.GUID, err)
	}
	return created, nil
}

// dropletThrough reads the droplet guid through q with no visibility check.
func dropletThrough(ctx context.Context, q querier, guid string) (Droplet, error) {
	return scanDroplet(q.QueryRowContext(ctx, `SELECT `+dropletColumns+dropletFrom+` WHERE d.guid = $1`, guid))
}

// Droplet returns the droplet guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Droplet(ctx context.Context, vis Visibility, guid string) (Droplet, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+dropletColumns+dropletFrom+`
		WHERE d.guid = $1 AND `+vis.spaceCondition("a.space_guid", &a), a...)
	d, err := scanDroplet(row)
	if err != nil {
		return Droplet{}, fmt.Errorf("droplet %s: %w", guid, err)
	}
	return d, nil
}

// CurrentDroplet returns the current droplet of the app appGUID if vis may
// see the app, and ErrNotFound when the app is invisible or has none.
func (s *Store) CurrentDroplet(ctx context.Context, vis Visibility, appGUID string) (Droplet, error) {
	a := args{appGUID}
	row := s.db.QueryRowContext(ctx, `SELECT `+dropletColumns+dropletFrom+`
		WHERE a.guid = $1 AND d.guid = a.current_droplet_guid AND `+vis.spaceCondition("a.space_guid", &a), a...)
	d, err := scanDroplet(row)
	if err != nil {
		return Droplet{}, fmt.Errorf("current droplet of app %s: %w", appGUID, err)
	}
	return d, nil
}

// Droplets returns one page of the droplets vis may see that match f, and
// the total number of matches across all pages. It runs one query, and a
// second only for a page past the last one.
func (s *Store) Droplets(ctx context.Context, f DropletFilter, page Page, vis Visibility) ([]Droplet, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("d", &a, where)
	if f.AppGUIDs != nil {
		where = append(where, "d.app_guid = ANY("+a.add(pq.Array(f.AppGUIDs))+"::text[])")
	}
	if f.PackageGUIDs != nil {
		where = append(where, "d.package_guid = ANY("+a.add(pq.Array(f.PackageGUIDs))+"::text[])")
	}
	if f.States != nil {
		where = append(where, "d.state = ANY("+a.add(pq.Array(f.States))+"::text[])")
	}
	if f.SpaceGUIDs != nil {
		where = append(where, "a.space_guid = ANY("+a.add(pq.Array(f.SpaceGUIDs))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "s.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.Current {
		where = append(where, "a.current_droplet_guid = d.guid")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("d.labels", &a))
	}

	from := dropletFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+dropletColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(dropletOrder, "d.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list droplets: %w", mapError(err))
	}
	defer rows.Close()

	droplets := []Droplet{}
	total := 0
	for rows.Next() {
		d, err := scanDroplet(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list droplets: %w", err)
		}
		droplets = append(droplets, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list droplets: %w", mapError(err))
	}
	if len(droplets) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list droplets: %w", err)
		}
	}
	return droplets, total, nil
}

// UpdateDropletMetadata applies patch to the labels and annotations of the
// droplet guid through q and returns the droplet, or ErrNotFound when there
// is no such droplet.
func UpdateDropletMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Droplet, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Droplet{}, fmt.Errorf("update droplet %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE droplets SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err := affectedOne(res, err); err != nil {
		return Droplet{}, fmt.Errorf("update droplet %s: %w", guid, err)
	}
	d, err := dropletThrough(ctx, q, guid)
	if err != nil {
		return Droplet{}, fmt.Errorf("update droplet %s: %w", guid, err)
	}
	return d, nil
}

// DeleteDroplet deletes the droplet guid through q and returns it, unless it
// is its app's current droplet: then it returns ErrDropletInUse and deletes
// nothing. A droplet that is already gone is ErrNotFound, which a retried
// delete job treats as done.
func DeleteDroplet(ctx context.Context, q querier, guid string) (Droplet, error) {
	d, err := scanDroplet(q.QueryRowContext(ctx, `SELECT `+dropletColumns+dropletFrom+` WHERE d.guid = $1 FOR UPDATE OF a, d`, guid))
	if err != nil {
		return Droplet{}, fmt.Errorf("delete droplet %s: %w", guid, err)
	}
	var current bool
	err = q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM apps WHERE current_droplet_guid = $1)`, guid).Scan(&current)
	if err != nil {
		return Droplet{}, fmt.Errorf("delete droplet %s: %w", guid, mapError(err))
	}
	if current {
		return Droplet{}, fmt.Errorf("delete droplet %s: %w", guid, ErrDropletInUse)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM droplets WHERE guid = $1`, guid); err != nil {
		return Droplet{}, fmt.Errorf("delete droplet %s: %w", guid, mapError(err))
	}
	return d, nil
}

// DropletImageInUse reports whether any droplet other than exceptGUID
// references image, so a droplet delete removes a registry image only when
// no other droplet still runs it.
func DropletImageInUse(ctx context.Context, q querier, image, exceptGUID string) (bool, error) {
	var used bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM droplets WHERE image = $1 AND guid <> $2)`,
		image, exceptGUID).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("droplets using image: %w", mapError(err))
	}
	return used, nil
}
