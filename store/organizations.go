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

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintOrganizationName is the case-insensitive unique index on
	// organization names.
	ConstraintOrganizationName = "organizations_name_key"
)

// DefaultOrganizationQuota is the quota a new organization gets when none is
// named, as Cloud Controller's default_quota_definition.
const DefaultOrganizationQuota = "default"

// Organization is a Cloud Controller organization.
type Organization struct {
	GUID        string
	Name        string
	Suspended   bool
	QuotaGUID   string
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// OrganizationFilter selects organizations. A nil slice does not filter.
type OrganizationFilter struct {
	GUIDs []string
	// Names match without regard to case.
	Names         []string
	LabelSelector LabelSelector
	CreatedAts    TimeFilter
	UpdatedAts    TimeFilter
}

// OrganizationUpdate is a partial update of an organization. Nil fields
// stay as they are.
type OrganizationUpdate struct {
	Name      *string
	Suspended *bool
	Metadata  MetadataPatch
}

const organizationColumns = `o.guid, o.name, o.suspended, o.quota_guid, o.labels, o.annotations, o.created_at, o.updated_at`

var organizationOrder = map[string]string{
	"created_at": "o.created_at",
	"updated_at": "o.updated_at",
	"name":       "lower(o.name)",
}

// scanOrganization scans organizationColumns followed by extra destinations.
func scanOrganization(row interface{ Scan(...any) error }, extra ...any) (Organization, error) {
	var o Organization
	var labels, annotations []byte
	dest := append([]any{&o.GUID, &o.Name, &o.Suspended, &o.QuotaGUID, &labels, &annotations, &o.CreatedAt, &o.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Organization{}, mapError(err)
	}
	var err error
	if o.Labels, err = jsonMap(labels); err != nil {
		return Organization{}, err
	}
	if o.Annotations, err = jsonMap(annotations); err != nil {
		return Organization{}, err
	}
	return o, nil
}

// CreateOrganization inserts org through q and returns it as stored. An
// empty QuotaGUID applies the default quota. A name that collides with
// another organization's, ignoring case, is a *UniqueError on
// ConstraintOrganizationName.
func CreateOrganization(ctx context.Context, q querier, org Organization) (Organization, error) {
	row := q.QueryRowContext(ctx, `
		INSERT INTO organizations AS o (guid, name, suspended, quota_guid, labels, annotations)
		VALUES ($1, $2, $3, COALESCE(NULLIF($4, ''), (SELECT guid FROM organization_quotas WHERE name = $5)), $6, $7)
		RETURNING `+organizationColumns,
		org.GUID, org.Name, org.Suspended, org.QuotaGUID, DefaultOrganizationQuota,
		metadataJSON(org.Labels), metadataJSON(org.Annotations))
	created, err := scanOrganization(row)
	if err != nil {
		return Organization{}, fmt.Errorf("create organization %s: %w", org.GUID, err)
	}
	return created, nil
}

// AddOrganizationCreator gives userGUID the organization_user and
// organization_manager roles in a new organization, as Cloud Controller does
// for a non-admin who creates one. It creates the Cloud Controller user
// record if there is none yet. It returns the guids of the two roles.
func AddOrganizationCreator(ctx context.Context, q querier, orgGUID, userGUID string) (userRole, managerRole string, err error) {
	if _, err := q.ExecContext(ctx, `INSERT INTO users (guid) VALUES ($1) ON CONFLICT (guid) DO NOTHING`, userGUID); err != nil {
		return "", "", fmt.Errorf("add creator of organization %s: %w", orgGUID, mapError(err))
	}
	userRole, managerRole = uuid.NewString(), uuid.NewString()
	_, err = q.ExecContext(ctx, `
		INSERT INTO roles (guid, type, user_guid, organization_guid)
		VALUES ($1, 'organization_user', $3, $4), ($2, 'organization_manager', $3, $4)
		ON CONFLICT DO NOTHING`,
		userRole, managerRole, userGUID, orgGUID)
	if err != nil {
		return "", "", fmt.Errorf("add creator of organization %s: %w", orgGUID, mapError(err))
	}
	return userRole, managerRole, nil
}

// UpdateOrganization applies u to the organization guid through q and
// returns the result. It returns ErrNotFound when there is no such
// organization.
func UpdateOrganization(ctx context.Context, q querier, guid string, u OrganizationUpdate) (Organization, error) {
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
		return Organization{}, fmt.Errorf("update organization %s: %w", guid, err)
	}
	set += meta

	row := q.QueryRowContext(ctx, `UPDATE organizations AS o SET `+set+` WHERE o.guid = $1 RETURNING `+organizationColumns, a...)
	org, err := scanOrganization(row)
	if err != nil {
		return Organization{}, fmt.Errorf("update organization %s: %w", guid, err)
	}
	return org, nil
}

// DeleteOrganization deletes the organization guid through q, and with it,
// by foreign-key cascades, its spaces, space quotas, private domains and
// every role in the organization and its spaces. It deletes the
// certificates of its private domains in the same transaction and records
// an audit.certificate.delete event for each. When q is a *sql.DB it runs
// in a transaction of its own. Deleting an organization that is already
// gone succeeds, so a retried delete job finishes.
//
// TODO: take the job's user as the actor of the certificate events once
// the organization delete job passes it; they name the system until then.
func DeleteOrganization(ctx context.Context, q querier, guid string) error {
	certEvent := AuditEvent{Type: "audit.certificate.delete", ActorType: "system", ActorName: "organization delete"}
	return inTransaction(ctx, q, func(tx querier) error {
		if err := deleteDomainCertificates(ctx, tx, `d.organization_guid = $1`, guid, certEvent); err != nil {
			return fmt.Errorf("delete organization %s: %w", guid, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM organizations WHERE guid = $1`, guid); err != nil {
			return fmt.Errorf("delete organization %s: %w", guid, mapError(err))
		}
		return nil
	})
}

// inTransaction runs fn in a new transaction when q is a *sql.DB, and in
// q itself otherwise, which then should be a transaction.
func inTransaction(ctx context.Context, q querier, fn func(tx querier) error) error {
	db, ok := q.(*sql.DB)
	if !ok {
		return fn(q)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", mapError(err))
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// Organization returns the organization guid if vis may see it, and
// ErrNotFound otherwise.
func (s *Store) Organization(ctx context.Context, guid string, vis Visibility) (Organization, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+organizationColumns+` FROM organizations o
		WHERE o.guid = $1 AND `+vis.orgCondition("o.guid", &a), a...)
	org, err := scanOrganization(row)
	if err != nil {
		return Organization{}, fmt.Errorf("organization %s: %w", guid, err)
	}
	return org, nil
}

// Organizations returns one page of the organizations vis may see that match
// f, and the total number of matches across all pages. It runs one query,
// and a second only for a page past the last one.
func (s *Store) Organizations(ctx context.Context, f OrganizationFilter, page Page, vis Visibility) ([]Organization, int, error) {
	var a args
	where := []string{vis.orgCondition("o.guid", &a)}
	if f.GUIDs != nil {
		where = append(where, "o.guid = ANY("+a.add(pq.Array(f.GUIDs))+"::text[])")
	}
	if f.Names != nil {
		where = append(where, "lower(o.name) = ANY("+a.add(pq.Array(lowerAll(f.Names)))+"::text[])")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("o.labels", &a))
	}
	where = appendTimeConditions(where, "o", f.CreatedAts, f.UpdatedAts, &a)

	from := ` FROM organizations o WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+organizationColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(organizationOrder, "o.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list organizations: %w", mapError(err))
	}
	defer rows.Close()

	orgs := []Organization{}
	total := 0
	for rows.Next() {
		org, err := scanOrganization(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list organizations: %w", err)
		}
		orgs = append(orgs, org)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list organizations: %w", mapError(err))
	}
	if len(orgs) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list organizations: %w", err)
		}
	}
	return orgs, total, nil
}

// Usage is the quota consumption of an organization or space.
type Usage struct {
	StartedInstances int
	MemoryInMB       int
	Routes           int
	ServiceInstances int
	ReservedPorts    int
	Domains          int
	PerAppTasks      int
	ServiceKeys      int
}

// OrganizationUsage returns the quota usage of the organization guid: the
// instances and memory of the started processes in its spaces.
func (s *Store) OrganizationUsage(ctx context.Context, guid string) (Usage, error) {
	// TODO: count routes, service instances, reserved ports, private
	// domains, tasks and service keys once the tables that store them
	// exist. Until then they are 0.
	u, err := processUsage(ctx, s.db, "s.organization_guid = $1", guid)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of organization %s: %w", guid, err)
	}
	return u, nil
}

func lowerAll(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.ToLower(v)
	}
	return out
}

// appendTimeConditions adds the created_ats and updated_ats filters on the
// table aliased as alias.
func appendTimeConditions(where []string, alias string, createdAts, updatedAts TimeFilter, a *args) []string {
	if c := createdAts.condition(alias+".created_at", a); c != "" {
		where = append(where, c)
	}
	if c := updatedAts.condition(alias+".updated_at", a); c != "" {
		where = append(where, c)
	}
	return where
}

// listTotal is the select expression of a list query's total_results,
// given the query's FROM and WHERE clauses. For actors who see every row, a
// scalar count lets PostgreSQL read the page from an index, where a window
// function would first materialise every matching row: docs/benchmarks.md
// compares the two. For other actors the visible rows are few, and the
// window function evaluates the visibility condition once instead of twice.
func listTotal(vis Visibility, from string) string {
	if vis.All {
		return "(SELECT count(*)" + from + ")"
	}
	return "COUNT(*) OVER ()"
}

// countFrom counts the rows of a list query's FROM and WHERE clauses. List
// methods call it only for a page past the last one, which has no row to
// carry the total column.
func countFrom(ctx context.Context, q querier, from string, a args) (int, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*)`+from, a...).Scan(&n); err != nil {
		return 0, mapError(err)
	}
	return n, nil
}
