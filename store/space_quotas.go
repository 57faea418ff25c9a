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

var (
	// ErrQuotaOutsideOrganization is returned when applying a space quota to
	// a space of another organization.
	ErrQuotaOutsideOrganization = errors.New("space quota applied outside its organization")
	// ErrQuotaNotApplied is returned when removing a space quota from a
	// space that does not use it.
	ErrQuotaNotApplied = errors.New("space quota is not applied to the space")
)

// SpaceQuota is a named set of limits that belongs to one organization and
// applies to some of its spaces. Its Limits.TotalDomains is always nil.
type SpaceQuota struct {
	GUID             string
	Name             string
	OrganizationGUID string
	Limits           QuotaLimits
	// SpaceGUIDs are the spaces using the quota that the reader may see,
	// oldest first.
	SpaceGUIDs []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SpaceQuotaFilter selects space quotas. A nil slice does not filter.
type SpaceQuotaFilter struct {
	CommonFilter
	// Names match case-sensitively, as Cloud Controller matches them.
	Names             []string
	OrganizationGUIDs []string
	// SpaceGUIDs match quotas applied to those spaces, among the spaces the
	// reader may see.
	SpaceGUIDs []string
}

// SpaceQuotaOwner is the organization that owns a space quota, with the
// facts space quota writes check.
type SpaceQuotaOwner struct {
	GUID      string
	Suspended bool
	// Visible reports whether the reader may see the organization.
	Visible bool
	// TotalReservedPorts is the reserved-ports limit of the organization's
	// quota; nil is unlimited.
	TotalReservedPorts *int64
}

const spaceQuotaColumns = `q.guid, q.name, q.organization_guid, ` + quotaLimitColumns + `, q.created_at, q.updated_at`

var spaceQuotaOrder = map[string]string{
	"created_at": "q.created_at",
	"updated_at": "q.updated_at",
}

func scanSpaceQuota(row interface{ Scan(...any) error }, extra ...any) (SpaceQuota, error) {
	var q SpaceQuota
	dest := []any{&q.GUID, &q.Name, &q.OrganizationGUID}
	dest = append(dest, limitsDest(&q.Limits)...)
	dest = append(dest, &q.CreatedAt, &q.UpdatedAt, pq.Array(&q.SpaceGUIDs))
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return SpaceQuota{}, mapError(err)
	}
	if q.SpaceGUIDs == nil {
		q.SpaceGUIDs = []string{}
	}
	return q, nil
}

// quotaSpacesColumn selects the guids of the spaces vis may see that use
// quota q, the column scanSpaceQuota reads last.
func quotaSpacesColumn(vis Visibility, a *args) string {
	return `ARRAY(SELECT s.guid FROM spaces s WHERE s.quota_guid = q.guid AND ` +
		vis.spaceCondition("s.guid", a) + ` ORDER BY s.created_at, s.guid)`
}

// spaceQuotaCondition restricts space quota q to those vis may see, as
// Cloud Controller does: the quotas of organizations the actor manages and
// the quotas applied to spaces where the actor has a role.
func spaceQuotaCondition(vis Visibility, a *args) string {
	if vis.All {
		return "TRUE"
	}
	u := a.add(vis.UserGUID)
	return `(q.organization_guid IN (SELECT organization_guid FROM roles WHERE user_guid = ` + u + ` AND type = 'organization_manager')
		OR q.guid IN (SELECT s.quota_guid FROM spaces s JOIN roles r ON r.space_guid = s.guid WHERE r.user_guid = ` + u + `))`
}

// SpaceQuota returns the space quota guid if vis may see it, and ErrNotFound
// otherwise.
func (s *Store) SpaceQuota(ctx context.Context, guid string, vis Visibility) (SpaceQuota, error) {
	q, err := spaceQuota(ctx, s.db, guid, vis, "")
	if err != nil {
		return SpaceQuota{}, fmt.Errorf("space quota %s: %w", guid, err)
	}
	return q, nil
}

// spaceQuota reads one quota through db; lock is "" or a locking clause
// such as "FOR UPDATE OF q".
func spaceQuota(ctx context.Context, db querier, guid string, vis Visibility, lock string) (SpaceQuota, error) {
	a := args{guid}
	query := `SELECT ` + spaceQuotaColumns + `, ` + quotaSpacesColumn(vis, &a) + `
		FROM space_quotas q WHERE q.guid = $1 AND ` + spaceQuotaCondition(vis, &a) + ` ` + lock
	return scanSpaceQuota(db.QueryRowContext(ctx, query, a...))
}

// SpaceQuotas returns one page of the space quotas vis may see that match f,
// and the number of matches across all pages.
func (s *Store) SpaceQuotas(ctx context.Context, f SpaceQuotaFilter, page Page, vis Visibility) ([]SpaceQuota, int, error) {
	var a args
	columns := spaceQuotaColumns + `, ` + quotaSpacesColumn(vis, &a)

	where := f.conditions("q", &a, []string{spaceQuotaCondition(vis, &a)})
	if f.Names != nil {
		where = append(where, "q.name = ANY("+a.add(pq.Array(f.Names))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "q.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.SpaceGUIDs != nil {
		where = append(where, `q.guid IN (SELECT s.quota_guid FROM spaces s WHERE s.guid = ANY(`+
			a.add(pq.Array(f.SpaceGUIDs))+`::text[]) AND `+vis.spaceCondition("s.guid", &a)+`)`)
	}

	from := ` FROM space_quotas q WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, COUNT(*) OVER ()`+from+
		page.orderBy(spaceQuotaOrder, "q.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list space quotas: %w", mapError(err))
	}
	defer rows.Close()

	quotas := []SpaceQuota{}
	total := 0
	for rows.Next() {
		q, err := scanSpaceQuota(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list space quotas: %w", err)
		}
		quotas = append(quotas, q)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list space quotas: %w", mapError(err))
	}
	if len(quotas) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list space quotas: %w", err)
		}
	}
	return quotas, total, nil
}

// SpaceQuotaOwner returns the organization orgGUID as space quota writes see
// it, whether or not vis may see it, and ErrNotFound if it does not exist.
func (s *Store) SpaceQuotaOwner(ctx context.Context, orgGUID string, vis Visibility) (SpaceQuotaOwner, error) {
	a := args{orgGUID}
	var o SpaceQuotaOwner
	err := s.db.QueryRowContext(ctx, `
		SELECT o.guid, o.suspended, oq.total_reserved_ports, `+vis.orgCondition("o.guid", &a)+`
		FROM organizations o JOIN organization_quotas oq ON oq.guid = o.quota_guid
		WHERE o.guid = $1`, a...).Scan(&o.GUID, &o.Suspended, &o.TotalReservedPorts, &o.Visible)
	if err != nil {
		return SpaceQuotaOwner{}, fmt.Errorf("organization %s: %w", orgGUID, mapError(err))
	}
	return o, nil
}

// CreateSpaceQuota inserts q, applies it to spaceGUIDs and records ev, all in
// one transaction, and returns the stored quota. ev carries the type, actor
// and data; the store fills its target and organization. A duplicate name in
// the organization is a *UniqueError on SpaceQuotaNameConstraint. A missing
// organization is a *ForeignKeyError. Spaces that do not exist in the
// organization are an *UnknownGUIDsError.
func (s *Store) CreateSpaceQuota(ctx context.Context, q SpaceQuota, spaceGUIDs []string, ev AuditEvent) (SpaceQuota, error) {
	var created SpaceQuota
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		values := append([]any{q.GUID, q.Name, q.OrganizationGUID}, limitsArgs(q.Limits)...)
		_, err := tx.ExecContext(ctx, `
			INSERT INTO space_quotas (guid, name, organization_guid, total_memory_in_mb, per_process_memory_in_mb,
				total_instances, per_app_tasks, log_rate_limit_in_bytes_per_second, paid_services_allowed,
				total_service_instances, total_service_keys, total_routes, total_reserved_ports)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, values...)
		if err != nil {
			return fmt.Errorf("create space quota %s: %w", q.Name, mapError(err))
		}

		if _, err := setSpacesQuota(ctx, tx, q.GUID, q.OrganizationGUID, spaceGUIDs); err != nil {
			return fmt.Errorf("create space quota %s: %w", q.Name, err)
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = q.GUID, "space_quota", q.Name
		ev.OrganizationGUID = q.OrganizationGUID
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}

		created, err = spaceQuota(ctx, tx, q.GUID, Visibility{All: true}, "")
		if err != nil {
			return fmt.Errorf("read created space quota %s: %w", q.GUID, err)
		}
		return nil
	})
	return created, err
}

// UpdateSpaceQuota locks the quota guid, lets change modify its name and
// limits, stores the result and records ev, in one transaction. An error
// from change is returned as is and nothing is written. ev carries the
// type, actor and data; the store fills its target and organization.
func (s *Store) UpdateSpaceQuota(ctx context.Context, guid string, change func(*SpaceQuota) error, ev AuditEvent) (SpaceQuota, error) {
	var updated SpaceQuota
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		q, err := spaceQuota(ctx, tx, guid, Visibility{All: true}, "FOR UPDATE OF q")
		if err != nil {
			return fmt.Errorf("update space quota %s: %w", guid, err)
		}
		if err := change(&q); err != nil {
			return err
		}

		values := append([]any{guid, q.Name}, limitsArgs(q.Limits)...)
		_, err = tx.ExecContext(ctx, `
			UPDATE space_quotas SET name = $2, total_memory_in_mb = $3, per_process_memory_in_mb = $4,
				total_instances = $5, per_app_tasks = $6, log_rate_limit_in_bytes_per_second = $7,
				paid_services_allowed = $8, total_service_instances = $9, total_service_keys = $10,
				total_routes = $11, total_reserved_ports = $12, updated_at = now()
			WHERE guid = $1`, values...)
		if err != nil {
			return fmt.Errorf("update space quota %s: %w", guid, mapError(err))
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "space_quota", q.Name
		ev.OrganizationGUID = q.OrganizationGUID
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}

		updated, err = spaceQuota(ctx, tx, guid, Visibility{All: true}, "")
		if err != nil {
			return fmt.Errorf("read updated space quota %s: %w", guid, err)
		}
		return nil
	})
	return updated, err
}

// DeleteSpaceQuota deletes the quota guid, records ev and inserts job as
// already complete, in one transaction. It returns ErrNotFound for an
// unknown guid and ErrQuotaInUse while spaces use the quota. The quota row
// stays locked until the end, so a concurrent apply waits and then fails.
func (s *Store) DeleteSpaceQuota(ctx context.Context, guid string, job Job, ev AuditEvent) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		var name, orgGUID string
		var inUse bool
		err := tx.QueryRowContext(ctx, `
			SELECT name, organization_guid, EXISTS (SELECT 1 FROM spaces WHERE quota_guid = $1)
			FROM space_quotas WHERE guid = $1 FOR UPDATE`, guid).Scan(&name, &orgGUID, &inUse)
		if err != nil {
			return fmt.Errorf("delete space quota %s: %w", guid, mapError(err))
		}
		if inUse {
			return fmt.Errorf("delete space quota %s: %w", guid, ErrQuotaInUse)
		}

		if _, err := tx.ExecContext(ctx, `DELETE FROM space_quotas WHERE guid = $1`, guid); err != nil {
			return fmt.Errorf("delete space quota %s: %w", guid, mapError(err))
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "space_quota", name
		ev.OrganizationGUID = orgGUID
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}
		return createCompletedJob(ctx, tx, job)
	})
}

// ApplySpaceQuota applies the quota guid to spaceGUIDs in one transaction,
// recording one copy of ev per space, and returns the guids of every space
// now using the quota. ev carries the type and actor; the store fills its
// target, space, organization and data. It returns ErrNotFound for an
// unknown quota, *UnknownGUIDsError for spaces that do not exist or that vis
// may not see, and ErrQuotaOutsideOrganization for spaces of another
// organization.
//
// TODO: once processes exist, reject a quota with a log rate limit for
// spaces running processes without one, as Cloud Controller does.
func (s *Store) ApplySpaceQuota(ctx context.Context, guid string, spaceGUIDs []string, vis Visibility, ev AuditEvent) ([]string, error) {
	var all []string
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var name, orgGUID string
		err := tx.QueryRowContext(ctx, `SELECT name, organization_guid FROM space_quotas WHERE guid = $1`, guid).Scan(&name, &orgGUID)
		if err != nil {
			return fmt.Errorf("apply space quota %s: %w", guid, mapError(err))
		}

		if err := checkSpacesForQuota(ctx, tx, orgGUID, spaceGUIDs, vis); err != nil {
			return fmt.Errorf("apply space quota %s: %w", guid, err)
		}
		applied, err := setSpacesQuota(ctx, tx, guid, orgGUID, spaceGUIDs)
		if err != nil {
			return fmt.Errorf("apply space quota %s: %w", guid, err)
		}
		for _, sp := range applied {
			e := ev
			e.TargetGUID, e.TargetType, e.TargetName = guid, "space_quota", name
			e.SpaceGUID, e.OrganizationGUID = sp.guid, orgGUID
			e.Data = map[string]any{"space_guid": sp.guid, "space_name": sp.name}
			if err := RecordAuditEvent(ctx, tx, e); err != nil {
				return err
			}
		}

		all, err = guidsWhere(ctx, tx, `SELECT guid FROM spaces WHERE quota_guid = $1 ORDER BY created_at, guid`, guid)
		if err != nil {
			return fmt.Errorf("apply space quota %s: %w", guid, err)
		}
		return nil
	})
	return all, err
}

// checkSpacesForQuota reports spaceGUIDs that do not exist or that vis may
// not see as an *UnknownGUIDsError, and then spaces outside orgGUID as
// ErrQuotaOutsideOrganization, the order in which Cloud Controller checks.
func checkSpacesForQuota(ctx context.Context, tx *sql.Tx, orgGUID string, spaceGUIDs []string, vis Visibility) error {
	a := args{pq.Array(spaceGUIDs)}
	rows, err := tx.QueryContext(ctx, `SELECT s.guid, s.organization_guid FROM spaces s
		WHERE s.guid = ANY($1::text[]) AND `+vis.spaceCondition("s.guid", &a), a...)
	if err != nil {
		return mapError(err)
	}
	defer rows.Close()

	found := map[string]bool{}
	outside := false
	for rows.Next() {
		var guid, spaceOrg string
		if err := rows.Scan(&guid, &spaceOrg); err != nil {
			return mapError(err)
		}
		found[guid] = true
		outside = outside || spaceOrg != orgGUID
	}
	if err := rows.Err(); err != nil {
		return mapError(err)
	}

	if missing := missingGUIDs(spaceGUIDs, found); len(missing) > 0 {
		return &UnknownGUIDsError{GUIDs: missing}
	}
	if outside {
		return ErrQuotaOutsideOrganization
	}
	return nil
}

// setSpacesQuota points spaceGUIDs, which must belong to orgGUID, at the
// quota and returns them. Any guid that matches no space of the organization
// is an *UnknownGUIDsError, and the caller rolls back.
func setSpacesQuota(ctx context.Context, tx *sql.Tx, quotaGUID, orgGUID string, spaceGUIDs []string) ([]namedRow, error) {
	if len(spaceGUIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `
		UPDATE spaces SET quota_guid = $1, updated_at = now()
		WHERE guid = ANY($2::text[]) AND organization_guid = $3 RETURNING guid, name`,
		quotaGUID, pq.Array(spaceGUIDs), orgGUID)
	if err != nil {
		return nil, mapError(err)
	}
	return collectApplied(rows, spaceGUIDs)
}

// RemoveSpaceQuota removes the quota guid from the space spaceGUID and
// records ev, in one transaction. ev carries the type and actor; the store
// fills its target, space, organization and data. It returns ErrNotFound
// for an unknown quota and ErrQuotaNotApplied when the space does not exist
// or does not use the quota.
func (s *Store) RemoveSpaceQuota(ctx context.Context, guid, spaceGUID string, ev AuditEvent) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		var name, orgGUID string
		err := tx.QueryRowContext(ctx, `SELECT name, organization_guid FROM space_quotas WHERE guid = $1`, guid).Scan(&name, &orgGUID)
		if err != nil {
			return fmt.Errorf("remove space quota %s: %w", guid, mapError(err))
		}

		var spaceName string
		err = tx.QueryRowContext(ctx, `
			UPDATE spaces SET quota_guid = NULL, updated_at = now()
			WHERE guid = $1 AND quota_guid = $2 RETURNING name`, spaceGUID, guid).Scan(&spaceName)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("remove space quota %s from space %s: %w", guid, spaceGUID, ErrQuotaNotApplied)
		}
		if err != nil {
			return fmt.Errorf("remove space quota %s from space %s: %w", guid, spaceGUID, mapError(err))
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "space_quota", name
		ev.SpaceGUID, ev.OrganizationGUID = spaceGUID, orgGUID
		ev.Data = map[string]any{"space_guid": spaceGUID, "space_name": spaceName}
		return RecordAuditEvent(ctx, tx, ev)
	})
}
