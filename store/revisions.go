package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Revision is a Cloud Controller revision: one droplet an app ran, with
// its per-app version number. The apps_revision trigger records one on
// every change of an app's current droplet while revisions are enabled.
type Revision struct {
	GUID      string
	AppGUID   string
	SpaceGUID string
	OrgGUID   string
	Version   int
	// DropletGUID is "" once the droplet was deleted.
	DropletGUID string
	Description string
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Deployable reports whether the revision can be deployed again: its
// droplet still exists.
func (r Revision) Deployable() bool { return r.DropletGUID != "" }

// RevisionFilter selects revisions. A nil slice does not filter.
type RevisionFilter struct {
	CommonFilter
	AppGUIDs      []string
	Versions      []int
	LabelSelector LabelSelector
	// Deployed keeps the revision each started app runs: the latest
	// revision with its current droplet.
	Deployed bool
}

const revisionColumns = `r.guid, r.app_guid, a.space_guid, s.organization_guid, r.version, COALESCE(r.droplet_guid, ''),
	r.description, r.labels, r.annotations, r.created_at, r.updated_at`

const revisionFrom = ` FROM revisions r JOIN apps a ON a.guid = r.app_guid JOIN spaces s ON s.guid = a.space_guid`

var revisionOrder = map[string]string{
	"created_at": "r.created_at",
	"updated_at": "r.updated_at",
	"version":    "r.version",
}

func scanRevision(row interface{ Scan(...any) error }, extra ...any) (Revision, error) {
	var r Revision
	var labels, annotations []byte
	dest := append([]any{&r.GUID, &r.AppGUID, &r.SpaceGUID, &r.OrgGUID, &r.Version, &r.DropletGUID, &r.Description,
		&labels, &annotations, &r.CreatedAt, &r.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Revision{}, mapError(err)
	}
	var err error
	if r.Labels, err = jsonMap(labels); err != nil {
		return Revision{}, err
	}
	if r.Annotations, err = jsonMap(annotations); err != nil {
		return Revision{}, err
	}
	return r, nil
}

// Revision returns the revision guid if vis may see its app's space, and
// ErrNotFound otherwise.
func (s *Store) Revision(ctx context.Context, vis Visibility, guid string) (Revision, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+revisionColumns+revisionFrom+`
		WHERE r.guid = $1 AND `+vis.spaceCondition("a.space_guid", &a), a...)
	r, err := scanRevision(row)
	if err != nil {
		return Revision{}, fmt.Errorf("revision %s: %w", guid, err)
	}
	return r, nil
}

// Revisions returns one page of the revisions vis may see that match f,
// and the total number of matches across all pages.
func (s *Store) Revisions(ctx context.Context, f RevisionFilter, page Page, vis Visibility) ([]Revision, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("r", &a, where)
	if f.AppGUIDs != nil {
		where = append(where, "r.app_guid = ANY("+a.add(pq.Array(f.AppGUIDs))+"::text[])")
	}
	if f.Versions != nil {
		where = append(where, "r.version = ANY("+a.add(pq.Array(f.Versions))+"::integer[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("r.labels", &a))
	}
	if f.Deployed {
		where = append(where, `a.state = '`+AppStateStarted+`' AND r.droplet_guid = a.current_droplet_guid
			AND r.version = (SELECT max(version) FROM revisions l WHERE l.app_guid = r.app_guid
				AND l.droplet_guid = a.current_droplet_guid)`)
	}

	from := revisionFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+revisionColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(revisionOrder, "r.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list revisions: %w", mapError(err))
	}
	defer rows.Close()

	revisions := []Revision{}
	total := 0
	for rows.Next() {
		r, err := scanRevision(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list revisions: %w", err)
		}
		revisions = append(revisions, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list revisions: %w", mapError(err))
	}
	if len(revisions) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list revisions: %w", err)
		}
	}
	return revisions, total, nil
}

// UpdateRevisionMetadata applies patch to the labels and annotations of
// the revision guid through q and returns it, or ErrNotFound.
func UpdateRevisionMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Revision, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Revision{}, fmt.Errorf("update revision %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE revisions SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err := affectedOne(res, err); err != nil {
		return Revision{}, fmt.Errorf("update revision %s: %w", guid, err)
	}
	r, err := scanRevision(q.QueryRowContext(ctx, `SELECT `+revisionColumns+revisionFrom+` WHERE r.guid = $1`, guid))
	if err != nil {
		return Revision{}, fmt.Errorf("update revision %s: %w", guid, err)
	}
	return r, nil
}
