package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Package types.
const (
	PackageTypeBits   = "bits"
	PackageTypeDocker = "docker"
)

// Package states, as Cloud Controller names them.
const (
	PackageAwaitingUpload   = "AWAITING_UPLOAD"
	PackageProcessingUpload = "PROCESSING_UPLOAD"
	PackageReady            = "READY"
	PackageFailed           = "FAILED"
	PackageCopying          = "COPYING"
	PackageExpired          = "EXPIRED"
)

// Package is an app's source: uploaded bits stored as an image in Ferry's
// registry, or a docker image.
type Package struct {
	GUID    string
	AppGUID string
	// AppName, SpaceGUID and OrgGUID are read with the package and ignored
	// on writes.
	AppName   string
	SpaceGUID string
	OrgGUID   string
	// Type is PackageTypeBits or PackageTypeDocker.
	Type  string
	State string
	// Image is, for bits, the package image as Ferry reaches it, pinned by
	// digest, and "" until the upload finishes. For docker it is the image
	// reference the user gave.
	Image string
	// Checksum is the hex SHA-256 digest of a bits package's image
	// manifest, or "".
	Checksum string
	// Error is the reason a bits upload or copy failed, or "".
	Error          string
	DockerUsername string
	// DockerPassword is a secret: never log it or present it.
	DockerPassword string
	Labels         map[string]string
	Annotations    map[string]string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// PackageFilter selects packages. A nil slice does not filter.
type PackageFilter struct {
	CommonFilter
	AppGUIDs          []string
	States            []string
	Types             []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	LabelSelector     LabelSelector
}

// PackageUpdate is a partial update of a package. Nil fields stay as they
// are.
type PackageUpdate struct {
	DockerUsername *string
	DockerPassword *string
	Metadata       MetadataPatch
}

// PackageResult is the outcome of an upload or copy step: the state a
// package moves to and what it holds then.
type PackageResult struct {
	State    string
	Image    string
	Checksum string
	Error    string
}

// packageColumns reads a package joined to its app (a) and the app's space
// (s), which carry the names and tenancy GUIDs.
const packageColumns = `p.guid, p.app_guid, a.name, a.space_guid, s.organization_guid, p.type, p.state, p.image,
	p.checksum, COALESCE(p.error, ''), COALESCE(p.docker_username, ''), COALESCE(p.docker_password, ''),
	p.labels, p.annotations, p.created_at, p.updated_at`

const packageFrom = ` FROM packages p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid`

var packageOrder = map[string]string{
	"created_at": "p.created_at",
	"updated_at": "p.updated_at",
}

// scanPackage scans packageColumns followed by extra destinations.
func scanPackage(row interface{ Scan(...any) error }, extra ...any) (Package, error) {
	var p Package
	var labels, annotations []byte
	dest := []any{&p.GUID, &p.AppGUID, &p.AppName, &p.SpaceGUID, &p.OrgGUID, &p.Type, &p.State, &p.Image,
		&p.Checksum, &p.Error, &p.DockerUsername, &p.DockerPassword, &labels, &annotations, &p.CreatedAt, &p.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Package{}, mapError(err)
	}
	var err error
	if p.Labels, err = jsonMap(labels); err != nil {
		return Package{}, err
	}
	if p.Annotations, err = jsonMap(annotations); err != nil {
		return Package{}, err
	}
	return p, nil
}

// CreatePackage inserts p through q and returns it as stored. An app that
// no longer exists is a *ForeignKeyError.
func CreatePackage(ctx context.Context, q querier, p Package) (Package, error) {
	row := q.QueryRowContext(ctx, `
		WITH p AS (
			INSERT INTO packages (guid, app_guid, type, state, image, checksum, error, docker_username, docker_password,
				labels, annotations)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, ''), $10, $11)
			RETURNING *)
		SELECT `+packageColumns+` FROM p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid`,
		p.GUID, p.AppGUID, p.Type, p.State, p.Image, p.Checksum, p.Error, p.DockerUsername, p.DockerPassword,
		metadataJSON(p.Labels), metadataJSON(p.Annotations))
	created, err := scanPackage(row)
	if err != nil {
		return Package{}, fmt.Errorf("create package %s: %w", p.GUID, err)
	}
	return created, nil
}

// updatePackage runs "UPDATE packages SET set WHERE guid = $1 AND where"
// and returns the row, or ErrNotFound when no row matched. set and where
// name the packages columns unqualified.
func updatePackage(ctx context.Context, q querier, guid, set, where string, a args) (Package, error) {
	if where != "" {
		where = " AND " + where
	}
	row := q.QueryRowContext(ctx, `
		WITH p AS (UPDATE packages SET `+set+` WHERE guid = $1`+where+` RETURNING *)
		SELECT `+packageColumns+` FROM p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid`, a...)
	return scanPackage(row)
}

// UpdatePackage applies u to the package guid through q. It returns
// ErrNotFound when there is no such package.
func UpdatePackage(ctx context.Context, q querier, guid string, u PackageUpdate) (Package, error) {
	a := args{guid}
	set := "updated_at = now()"
	if u.DockerUsername != nil {
		set += ", docker_username = NULLIF(" + a.add(*u.DockerUsername) + ", '')"
	}
	if u.DockerPassword != nil {
		set += ", docker_password = NULLIF(" + a.add(*u.DockerPassword) + ", '')"
	}
	meta, err := metadataAssignments(u.Metadata, &a)
	if err != nil {
		return Package{}, fmt.Errorf("update package %s: %w", guid, err)
	}
	p, err := updatePackage(ctx, q, guid, set+meta, "", a)
	if err != nil {
		return Package{}, fmt.Errorf("update package %s: %w", guid, err)
	}
	return p, nil
}

// TransitionPackage moves the package guid from one of the states from to
// the result's state, setting its image, checksum and error, through q.
// It returns ErrNotFound when the package does not exist or is in another
// state, so two uploads racing for one package cannot both proceed.
func TransitionPackage(ctx context.Context, q querier, guid string, from []string, to PackageResult) (Package, error) {
	a := args{guid}
	set := "updated_at = now(), state = " + a.add(to.State) + ", image = " + a.add(to.Image) +
		", checksum = " + a.add(to.Checksum) + ", error = NULLIF(" + a.add(to.Error) + ", '')"
	where := "state = ANY(" + a.add(pq.Array(from)) + "::text[])"
	p, err := updatePackage(ctx, q, guid, set, where, a)
	if err != nil {
		return Package{}, fmt.Errorf("set state of package %s to %s: %w", guid, to.State, err)
	}
	return p, nil
}

// DeletePackage deletes the package guid through q and returns it, so the
// caller can clean up its image. It returns ErrNotFound when the package is
// already gone.
func DeletePackage(ctx context.Context, q querier, guid string) (Package, error) {
	row := q.QueryRowContext(ctx, `
		WITH p AS (DELETE FROM packages WHERE guid = $1 RETURNING *)
		SELECT `+packageColumns+` FROM p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid`, guid)
	p, err := scanPackage(row)
	if err != nil {
		return Package{}, fmt.Errorf("delete package %s: %w", guid, err)
	}
	return p, nil
}

// Package returns the package guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Package(ctx context.Context, vis Visibility, guid string) (Package, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+packageColumns+packageFrom+`
		WHERE p.guid = $1 AND `+vis.spaceCondition("a.space_guid", &a), a...)
	p, err := scanPackage(row)
	if err != nil {
		return Package{}, fmt.Errorf("package %s: %w", guid, err)
	}
	return p, nil
}

// Packages returns one page of the packages vis may see that match f, and
// the total number of matches across all pages. It runs one query, and a
// second only for a page past the last one.
func (s *Store) Packages(ctx context.Context, f PackageFilter, page Page, vis Visibility) ([]Package, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("p", &a, where)
	for _, in := range []struct {
		column string
		values []string
	}{
		{"p.app_guid", f.AppGUIDs},
		{"p.state", f.States},
		{"p.type", f.Types},
		{"a.space_guid", f.SpaceGUIDs},
		{"s.organization_guid", f.OrganizationGUIDs},
	} {
		if in.values != nil {
			where = append(where, in.column+" = ANY("+a.add(pq.Array(in.values))+"::text[])")
		}
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("p.labels", &a))
	}

	from := packageFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+packageColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(packageOrder, "p.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list packages: %w", mapError(err))
	}
	defer rows.Close()

	packages := []Package{}
	total := 0
	for rows.Next() {
		p, err := scanPackage(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list packages: %w", err)
		}
		packages = append(packages, p)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list packages: %w", mapError(err))
	}
	if len(packages) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list packages: %w", err)
		}
	}
	return packages, total, nil
}

// PackageImagesOfApp returns the images of the app's bits packages, for
// deleting them from the registry along with the app.
func PackageImagesOfApp(ctx context.Context, q querier, appGUID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT image FROM packages
		WHERE app_guid = $1 AND type = 'bits' AND image <> '' ORDER BY created_at, guid`, appGUID)
	if err != nil {
		return nil, fmt.Errorf("package images of app %s: %w", appGUID, mapError(err))
	}
	defer rows.Close()
	images := []string{}
	for rows.Next() {
		var image string
		if err := rows.Scan(&image); err != nil {
			return nil, fmt.Errorf("package images of app %s: %w", appGUID, err)
		}
		images = append(images, image)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("package images of app %s: %w", appGUID, mapError(err))
	}
	return images, nil
}
