package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintSpaceName is the unique index on a space's organization
	// and its name without regard to case.
	ConstraintSpaceName = "spaces_org_name_key"
	// ConstraintSpaceOrganization is the foreign key from a space to its
	// organization.
	ConstraintSpaceOrganization = "spaces_organization_guid_fkey"
)

// Space is a Cloud Controller space.
type Space struct {
	GUID             string
	Name             string
	OrganizationGUID string
	// QuotaGUID is the applied space quota, or "" for none.
	QuotaGUID   string
	Suspended   bool
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SpaceFilter selects spaces. A nil slice does not filter.
type SpaceFilter struct {
	GUIDs []string
	// Names match without regard to case.
	Names             []string
	OrganizationGUIDs []string
	LabelSelector     LabelSelector
	CreatedAts        TimeFilter
	UpdatedAts        TimeFilter
}

// SpaceUpdate is a partial update of a space. Nil fields stay as they are.
type SpaceUpdate struct {
	Name      *string
	Suspended *bool
	Metadata  MetadataPatch
}

const spaceColumns = `s.guid, s.name, s.organization_guid, COALESCE(s.quota_guid, ''), s.suspended, s.labels, s.annotations, s.created_at, s.updated_at`

var spaceOrder = map[string]string{
	"created_at": "s.created_at",
	"updated_at": "s.updated_at",
	"name":       "lower(s.name)",
}

// scanSpace scans spaceColumns followed by extra destinations.
func scanSpace(row interface{ Scan(...any) error }, extra ...any) (Space, error) {
	var sp Space
	var labels, annotations []byte
	dest := append([]any{&sp.GUID, &sp.Name, &sp.OrganizationGUID, &sp.QuotaGUID, &sp.Suspended, &labels, &annotations, &sp.CreatedAt, &sp.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Space{}, mapError(err)
	}
	var err error
	if sp.Labels, err = jsonMap(labels); err != nil {
		return Space{}, err
	}
	if sp.Annotations, err = jsonMap(annotations); err != nil {
		return Space{}, err
	}
	return sp, nil
}

// CreateSpace inserts sp through q and returns it as stored. A name that
// collides with another space's in the organization, ignoring case, is a
// *UniqueError on ConstraintSpaceName. An organization that no longer
// exists is a *ForeignKeyError on ConstraintSpaceOrganization.
func CreateSpace(ctx context.Context, q querier, sp Space) (Space, error) {
	row := q.QueryRowContext(ctx, `
		INSERT INTO spaces AS s (guid, name, organization_guid, quota_guid, suspended, labels, annotations)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7)
		RETURNING `+spaceColumns,
		sp.GUID, sp.Name, sp.OrganizationGUID, sp.QuotaGUID, sp.Suspended, metadataJSON(sp.Labels), metadataJSON(sp.Annotations))
	created, err := scanSpace(row)
	if err != nil {
		return Space{}, fmt.Errorf("create space %s: %w", sp.GUID, err)
	}
	return created, nil
}

// UpdateSpace applies u to the space guid through q and returns the result.
// It returns ErrNotFound when there is no such space.
func UpdateSpace(ctx context.Context, q querier, guid string, u SpaceUpdate) (Space, error) {
	a := args{guid}
	set := "updated_at = now()"
	if u.Name != nil {
		set += ", name = " + a.add(*u.Name)
	}
	if u.Suspended != nil {
		set += ", suspended = " + a.add(*u.Suspended)
	}
	meta, err := metadataAssignments(u.Metadata, &a)
	if err != nil {
		return Space{}, fmt.Errorf("update space %s: %w", guid, err)
	}
	set += meta

	row := q.QueryRowContext(ctx, `UPDATE spaces AS s SET `+set+` WHERE s.guid = $1 RETURNING `+spaceColumns, a...)
	sp, err := scanSpace(row)
	if err != nil {
		return Space{}, fmt.Errorf("update space %s: %w", guid, err)
	}
	return sp, nil
}

// DeleteSpace deletes the space guid through q, and with it, by foreign-key
// cascades, every role in it. Deleting a space that is already gone
// succeeds, so a retried delete job finishes.
func DeleteSpace(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM spaces WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete space %s: %w", guid, mapError(err))
	}
	return nil
}

// Space returns the space guid if vis may see it, and ErrNotFound otherwise.
func (s *Store) Space(ctx context.Context, guid string, vis Visibility) (Space, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+spaceColumns+` FROM spaces s
		WHERE s.guid = $1 AND `+vis.spaceCondition("s.guid", &a), a...)
	sp, err := scanSpace(row)
	if err != nil {
		return Space{}, fmt.Errorf("space %s: %w", guid, err)
	}
	return sp, nil
}

// Spaces returns one page of the spaces vis may see that match f, and the
// total number of matches across all pages. It runs one query, and a
// second only for a page past the last one.
func (s *Store) Spaces(ctx context.Context, f SpaceFilter, page Page, vis Visibility) ([]Space, int, error) {
	var a args
	where := []string{vis.spaceCondition("s.guid", &a)}
	if f.GUIDs != nil {
		where = append(where, "s.guid = ANY("+a.add(pq.Array(f.GUIDs))+"::text[])")
	}
	if f.Names != nil {
		where = append(where, "lower(s.name) = ANY("+a.add(pq.Array(lowerAll(f.Names)))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "s.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("s.labels", &a))
	}
	where = appendTimeConditions(where, "s", f.CreatedAts, f.UpdatedAts, &a)

	from := ` FROM spaces s WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+spaceColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(spaceOrder, "s.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list spaces: %w", mapError(err))
	}
	defer rows.Close()

	spaces := []Space{}
	total := 0
	for rows.Next() {
		sp, err := scanSpace(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list spaces: %w", err)
		}
		spaces = append(spaces, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list spaces: %w", mapError(err))
	}
	if len(spaces) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list spaces: %w", err)
		}
	}
	return spaces, total, nil
}

// SpaceUsage returns the quota usage of the space guid: the instances and
// memory of its started processes.
func (s *Store) SpaceUsage(ctx context.Context, guid string) (Usage, error) {
	// TODO: count routes, service instances, reserved ports, the
	// organization's private domains, running tasks and service keys once
	// the tables that store them exist. Until then they are 0.
	u, err := processUsage(ctx, s.db, "a.space_guid = $1", guid)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of space %s: %w", guid, err)
	}
	return u, nil
}
