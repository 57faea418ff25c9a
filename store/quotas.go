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

// Unique constraints whose violations mean a duplicate quota name.
const (
	// OrganizationQuotaNameConstraint compares names case-insensitively.
	OrganizationQuotaNameConstraint = "organization_quotas_name_key"
	// SpaceQuotaNameConstraint makes names unique within one organization.
	SpaceQuotaNameConstraint = "space_quotas_org_name_key"
)

var (
	// ErrQuotaInUse is returned when deleting a quota that organizations or
	// spaces still use.
	ErrQuotaInUse = errors.New("quota is applied")
	// ErrDefaultOrganizationQuota is returned when deleting the quota named
	// DefaultOrganizationQuota, which new organizations get.
	ErrDefaultOrganizationQuota = errors.New("the default organization quota cannot be deleted")
)

// UnknownGUIDsError reports relationship guids of a request that match no
// row the caller may use. GUIDs keeps the order of the request.
type UnknownGUIDsError struct {
	GUIDs []string
}

func (e *UnknownGUIDsError) Error() string { return "unknown guids: " + strings.Join(e.GUIDs, ", ") }

// QuotaLimits are the limits of an organization or space quota. A nil limit
// is unlimited. CheckAppQuotas and CheckStagingQuotas enforce the memory,
// instance and log rate limits.
//
// TODO: enforce the task, route, service instance, service key, reserved
// port and private domain limits once those resources exist. The write
// that creates one must check the organization quota and the space quota
// in its own transaction, as CheckAppQuotas does.
type QuotaLimits struct {
	TotalMemoryInMB              *int64
	PerProcessMemoryInMB         *int64
	TotalInstances               *int64
	PerAppTasks                  *int64
	LogRateLimitInBytesPerSecond *int64
	PaidServicesAllowed          bool
	TotalServiceInstances        *int64
	TotalServiceKeys             *int64
	TotalRoutes                  *int64
	TotalReservedPorts           *int64
	// TotalDomains limits private domains. Only organization quotas have
	// it; space quotas ignore it.
	TotalDomains *int64
}

// DefaultQuotaLimits returns the limits of a quota created without any:
// everything unlimited and paid service plans allowed, as in Cloud Controller.
func DefaultQuotaLimits() QuotaLimits { return QuotaLimits{PaidServicesAllowed: true} }

// OrganizationQuota is a named set of limits applied to organizations.
type OrganizationQuota struct {
	GUID   string
	Name   string
	Limits QuotaLimits
	// OrganizationGUIDs are the organizations using the quota that the
	// reader may see, oldest first.
	OrganizationGUIDs []string
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// OrganizationQuotaFilter selects organization quotas. A nil slice does not
// filter.
type OrganizationQuotaFilter struct {
	CommonFilter
	// Names match case-insensitively.
	Names []string
	// OrganizationGUIDs match quotas applied to those organizations, among
	// the organizations the reader may see.
	OrganizationGUIDs []string
}

// quotaLimitColumns are the limit columns both quota tables share, in the
// order limitsDest scans them.
const quotaLimitColumns = `q.total_memory_in_mb, q.per_process_memory_in_mb, q.total_instances, q.per_app_tasks,
	q.log_rate_limit_in_bytes_per_second, q.paid_services_allowed, q.total_service_instances, q.total_service_keys,
	q.total_routes, q.total_reserved_ports`

func limitsDest(l *QuotaLimits) []any {
	return []any{&l.TotalMemoryInMB, &l.PerProcessMemoryInMB, &l.TotalInstances, &l.PerAppTasks,
		&l.LogRateLimitInBytesPerSecond, &l.PaidServicesAllowed, &l.TotalServiceInstances, &l.TotalServiceKeys,
		&l.TotalRoutes, &l.TotalReservedPorts}
}

func limitsArgs(l QuotaLimits) []any {
	return []any{l.TotalMemoryInMB, l.PerProcessMemoryInMB, l.TotalInstances, l.PerAppTasks,
		l.LogRateLimitInBytesPerSecond, l.PaidServicesAllowed, l.TotalServiceInstances, l.TotalServiceKeys,
		l.TotalRoutes, l.TotalReservedPorts}
}

const organizationQuotaColumns = `q.guid, q.name, ` + quotaLimitColumns + `, q.total_private_domains, q.created_at, q.updated_at`

var organizationQuotaOrder = map[string]string{
	"created_at": "q.created_at",
	"updated_at": "q.updated_at",
}

func scanOrganizationQuota(row interface{ Scan(...any) error }, extra ...any) (OrganizationQuota, error) {
	var q OrganizationQuota
	dest := []any{&q.GUID, &q.Name}
	dest = append(dest, limitsDest(&q.Limits)...)
	dest = append(dest, &q.Limits.TotalDomains, &q.CreatedAt, &q.UpdatedAt, pq.Array(&q.OrganizationGUIDs))
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return OrganizationQuota{}, mapError(err)
	}
	if q.OrganizationGUIDs == nil {
		q.OrganizationGUIDs = []string{}
	}
	return q, nil
}

// quotaOrganizationsColumn selects the guids of the organizations vis may
// see that use quota q, the column scanOrganizationQuota reads last.
func quotaOrganizationsColumn(vis Visibility, a *args) string {
	return `ARRAY(SELECT o.guid FROM organizations o WHERE o.quota_guid = q.guid AND ` +
		vis.orgCondition("o.guid", a) + ` ORDER BY o.created_at, o.guid)`
}

// organizationQuotaCondition restricts quota q to those vis may see: every
// quota for readers of everything, otherwise the quotas of the organizations
// the actor can see. Cloud Controller shows every quota to every user; Ferry
// hides other tenants' quotas, whose names can identify those tenants.
func organizationQuotaCondition(vis Visibility, a *args) string {
	if vis.All {
		return "TRUE"
	}
	return `q.guid IN (SELECT o.quota_guid FROM organizations o WHERE ` + vis.orgCondition("o.guid", a) + `)`
}

// OrganizationQuota returns the organization quota guid if vis may see it,
// and ErrNotFound otherwise.
func (s *Store) OrganizationQuota(ctx context.Context, guid string, vis Visibility) (OrganizationQuota, error) {
	q, err := organizationQuota(ctx, s.db, guid, vis, "")
	if err != nil {
		return OrganizationQuota{}, fmt.Errorf("organization quota %s: %w", guid, err)
	}
	return q, nil
}

// organizationQuota reads one quota through q; lock is "" or a locking
// clause such as "FOR UPDATE OF q".
func organizationQuota(ctx context.Context, db querier, guid string, vis Visibility, lock string) (OrganizationQuota, error) {
	a := args{guid}
	query := `SELECT ` + organizationQuotaColumns + `, ` + quotaOrganizationsColumn(vis, &a) + `
		FROM organization_quotas q WHERE q.guid = $1 AND ` + organizationQuotaCondition(vis, &a) + ` ` + lock
	return scanOrganizationQuota(db.QueryRowContext(ctx, query, a...))
}

// OrganizationQuotas returns one page of the organization quotas vis may see
// that match f, and the number of matches across all pages.
func (s *Store) OrganizationQuotas(ctx context.Context, f OrganizationQuotaFilter, page Page, vis Visibility) ([]OrganizationQuota, int, error) {
	var a args
	columns := organizationQuotaColumns + `, ` + quotaOrganizationsColumn(vis, &a)

	where := f.conditions("q", &a, []string{organizationQuotaCondition(vis, &a)})
	if f.Names != nil {
		where = append(where, "lower(q.name) = ANY("+a.add(pq.Array(lowerAll(f.Names)))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, `q.guid IN (SELECT o.quota_guid FROM organizations o WHERE o.guid = ANY(`+
			a.add(pq.Array(f.OrganizationGUIDs))+`::text[]) AND `+vis.orgCondition("o.guid", &a)+`)`)
	}

	from := ` FROM organization_quotas q WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, COUNT(*) OVER ()`+from+
		page.orderBy(organizationQuotaOrder, "q.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list organization quotas: %w", mapError(err))
	}
	defer rows.Close()

	quotas := []OrganizationQuota{}
	total := 0
	for rows.Next() {
		q, err := scanOrganizationQuota(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list organization quotas: %w", err)
		}
		quotas = append(quotas, q)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list organization quotas: %w", mapError(err))
	}
	if len(quotas) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list organization quotas: %w", err)
		}
	}
	return quotas, total, nil
}

// CreateOrganizationQuota inserts q, applies it to orgGUIDs and records ev,
// all in one transaction, and returns the stored quota. ev carries the type,
// actor and data; the store fills its target. A duplicate name is a
// *UniqueError on OrganizationQuotaNameConstraint; organizations that do not
// exist are an *UnknownGUIDsError.
func (s *Store) CreateOrganizationQuota(ctx context.Context, q OrganizationQuota, orgGUIDs []string, ev AuditEvent) (OrganizationQuota, error) {
	var created OrganizationQuota
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		values := append([]any{q.GUID, q.Name}, limitsArgs(q.Limits)...)
		values = append(values, q.Limits.TotalDomains)
		_, err := tx.ExecContext(ctx, `
			INSERT INTO organization_quotas (guid, name, total_memory_in_mb, per_process_memory_in_mb, total_instances,
				per_app_tasks, log_rate_limit_in_bytes_per_second, paid_services_allowed, total_service_instances,
				total_service_keys, total_routes, total_reserved_ports, total_private_domains)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, values...)
		if err != nil {
			return fmt.Errorf("create organization quota %s: %w", q.Name, mapError(err))
		}

		if _, err := setOrganizationsQuota(ctx, tx, q.GUID, orgGUIDs); err != nil {
			return fmt.Errorf("create organization quota %s: %w", q.Name, err)
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = q.GUID, "organization_quota", q.Name
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}

		created, err = organizationQuota(ctx, tx, q.GUID, Visibility{All: true}, "")
		if err != nil {
			return fmt.Errorf("read created organization quota %s: %w", q.GUID, err)
		}
		return nil
	})
	return created, err
}

// UpdateOrganizationQuota locks the quota guid, lets change modify it, stores
// the result and records ev, in one transaction. An error from change is
// returned as is and nothing is written. ev carries the type, actor and
// data; the store fills its target with the updated name.
func (s *Store) UpdateOrganizationQuota(ctx context.Context, guid string, change func(*OrganizationQuota) error, ev AuditEvent) (OrganizationQuota, error) {
	var updated OrganizationQuota
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		q, err := organizationQuota(ctx, tx, guid, Visibility{All: true}, "FOR UPDATE OF q")
		if err != nil {
			return fmt.Errorf("update organization quota %s: %w", guid, err)
		}
		if err := change(&q); err != nil {
			return err
		}

		values := append([]any{guid, q.Name}, limitsArgs(q.Limits)...)
		values = append(values, q.Limits.TotalDomains)
		_, err = tx.ExecContext(ctx, `
			UPDATE organization_quotas SET name = $2, total_memory_in_mb = $3, per_process_memory_in_mb = $4,
				total_instances = $5, per_app_tasks = $6, log_rate_limit_in_bytes_per_second = $7,
				paid_services_allowed = $8, total_service_instances = $9, total_service_keys = $10,
				total_routes = $11, total_reserved_ports = $12, total_private_domains = $13, updated_at = now()
			WHERE guid = $1`, values...)
		if err != nil {
			return fmt.Errorf("update organization quota %s: %w", guid, mapError(err))
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "organization_quota", q.Name
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}

		updated, err = organizationQuota(ctx, tx, guid, Visibility{All: true}, "")
		if err != nil {
			return fmt.Errorf("read updated organization quota %s: %w", guid, err)
		}
		return nil
	})
	return updated, err
}

// DeleteOrganizationQuota deletes the quota guid, records ev and inserts job
// as already complete, in one transaction. Clients poll the job as they do
// for Cloud Controller's asynchronous delete, but there is nothing left to
// do once the row is gone. It returns ErrNotFound for an unknown guid,
// ErrQuotaInUse while organizations use the quota and
// ErrDefaultOrganizationQuota for the default quota.
func (s *Store) DeleteOrganizationQuota(ctx context.Context, guid string, job Job, ev AuditEvent) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, `DELETE FROM organization_quotas WHERE guid = $1 RETURNING name`, guid).Scan(&name)
		var fkErr *ForeignKeyError
		err = mapError(err)
		switch {
		case errors.As(err, &fkErr):
			return fmt.Errorf("delete organization quota %s: %w", guid, ErrQuotaInUse)
		case err != nil:
			return fmt.Errorf("delete organization quota %s: %w", guid, err)
		case name == DefaultOrganizationQuota:
			return fmt.Errorf("delete organization quota %s: %w", guid, ErrDefaultOrganizationQuota)
		}

		ev.TargetGUID, ev.TargetType, ev.TargetName = guid, "organization_quota", name
		if err := RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}
		return createCompletedJob(ctx, tx, job)
	})
}

// ApplyOrganizationQuota applies the quota guid to orgGUIDs in one
// transaction, recording one copy of ev per organization, and returns the
// guids of every organization now using the quota. ev carries the type and
// actor; the store fills its target, organization and data. It returns
// ErrNotFound for an unknown quota and *UnknownGUIDsError for organizations
// that do not exist.
//
// TODO: once processes exist, reject a quota with a log rate limit for
// organizations running processes without one, as Cloud Controller does.
func (s *Store) ApplyOrganizationQuota(ctx context.Context, guid string, orgGUIDs []string, ev AuditEvent) ([]string, error) {
	var all []string
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, `SELECT name FROM organization_quotas WHERE guid = $1`, guid).Scan(&name)
		if err != nil {
			return fmt.Errorf("apply organization quota %s: %w", guid, mapError(err))
		}

		applied, err := setOrganizationsQuota(ctx, tx, guid, orgGUIDs)
		if err != nil {
			return fmt.Errorf("apply organization quota %s: %w", guid, err)
		}
		for _, org := range applied {
			e := ev
			e.TargetGUID, e.TargetType, e.TargetName = guid, "organization_quota", name
			e.OrganizationGUID = org.guid
			e.Data = map[string]any{"organization_guid": org.guid, "organization_name": org.name}
			if err := RecordAuditEvent(ctx, tx, e); err != nil {
				return err
			}
		}

		all, err = guidsWhere(ctx, tx, `SELECT guid FROM organizations WHERE quota_guid = $1 ORDER BY created_at, guid`, guid)
		if err != nil {
			return fmt.Errorf("apply organization quota %s: %w", guid, err)
		}
		return nil
	})
	return all, err
}

// namedRow is the guid and name of a row a quota was applied to.
type namedRow struct {
	guid string
	name string
}

// setOrganizationsQuota points orgGUIDs at the quota and returns them. Any
// guid that matches no organization is an *UnknownGUIDsError, and the caller
// rolls back.
func setOrganizationsQuota(ctx context.Context, tx *sql.Tx, quotaGUID string, orgGUIDs []string) ([]namedRow, error) {
	if len(orgGUIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `
		UPDATE organizations SET quota_guid = $1, updated_at = now()
		WHERE guid = ANY($2::text[]) RETURNING guid, name`, quotaGUID, pq.Array(orgGUIDs))
	if err != nil {
		return nil, mapError(err)
	}
	return collectApplied(rows, orgGUIDs)
}

// collectApplied reads the guid, name rows an UPDATE … RETURNING produced
// and reports the requested guids it did not touch.
func collectApplied(rows *sql.Rows, requested []string) ([]namedRow, error) {
	defer rows.Close()
	var applied []namedRow
	found := map[string]bool{}
	for rows.Next() {
		var r namedRow
		if err := rows.Scan(&r.guid, &r.name); err != nil {
			return nil, mapError(err)
		}
		applied = append(applied, r)
		found[r.guid] = true
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	if missing := missingGUIDs(requested, found); len(missing) > 0 {
		return nil, &UnknownGUIDsError{GUIDs: missing}
	}
	return applied, nil
}

// missingGUIDs returns the distinct guids of requested that are not in found,
// in request order.
func missingGUIDs(requested []string, found map[string]bool) []string {
	var missing []string
	seen := map[string]bool{}
	for _, g := range requested {
		if !found[g] && !seen[g] {
			missing = append(missing, g)
		}
		seen[g] = true
	}
	return missing
}

// guidsWhere runs a query selecting one text column and returns its values.
func guidsWhere(ctx context.Context, db querier, query string, queryArgs ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, queryArgs...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	guids := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, mapError(err)
		}
		guids = append(guids, g)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return guids, nil
}

// createCompletedJob inserts j in state COMPLETE through q. It serves
// operations that finish inside the request but respond 202 with a job to
// poll, as Cloud Controller's asynchronous versions of them do.
func createCompletedJob(ctx context.Context, q querier, j Job) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO jobs (guid, operation, state, resource_type, resource_guid, user_guid)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''))`,
		j.GUID, j.Operation, JobComplete, j.ResourceType, j.ResourceGUID, j.UserGUID)
	if err != nil {
		return fmt.Errorf("create job: %w", mapError(err))
	}
	return nil
}
