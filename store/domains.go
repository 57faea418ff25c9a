package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintDomainName is the unique index on a domain's name without
	// regard to case.
	ConstraintDomainName = "domains_name_key"
	// ConstraintDomainOrganization is the foreign key from a private domain
	// to its owning organization.
	ConstraintDomainOrganization = "domains_organization_guid_fkey"
	// ConstraintDomainRouterGroup is the foreign key from a TCP domain to
	// its router group.
	ConstraintDomainRouterGroup = "domains_router_group_guid_fkey"
	// ConstraintDomainSharedOrganization is the foreign key from a domain
	// share to the organization it is shared with.
	ConstraintDomainSharedOrganization = "domain_shared_organizations_organization_guid_fkey"
)

// Domain is a Cloud Controller domain.
type Domain struct {
	GUID     string
	Name     string
	Internal bool
	// RouterGroupGUID is the router group of a TCP domain, or "".
	RouterGroupGUID string
	// OrganizationGUID owns a private domain. It is "" for shared domains.
	OrganizationGUID string
	// SharedOrganizationGUIDs are the organizations a private domain is
	// shared with, besides its owner. Reads return only the ones the reader
	// may see, sorted.
	SharedOrganizationGUIDs []string
	Labels                  map[string]string
	Annotations             map[string]string
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// Shared reports whether the domain is available to every organization.
func (d Domain) Shared() bool { return d.OrganizationGUID == "" }

// Protocols returns the route protocols the domain supports: "tcp" for a
// domain with a router group, "http" otherwise.
func (d Domain) Protocols() []string {
	if d.RouterGroupGUID != "" {
		return []string{"tcp"}
	}
	return []string{"http"}
}

// DomainFilter selects domains. A nil slice does not filter.
type DomainFilter struct {
	CommonFilter
	// Names match without regard to case.
	Names []string
	// OrganizationGUIDs match the owning organization of private domains.
	OrganizationGUIDs []string
	// UsableBy, when set, keeps the domains that routes in that organization
	// may use: shared domains, its private domains and the private domains
	// shared with it.
	UsableBy      string
	LabelSelector LabelSelector
}

// RouterGroup is a routing API router group.
type RouterGroup struct {
	GUID string
	Name string
	// Type is "tcp" or "http".
	Type string
	// ReservablePorts lists ports and ranges, e.g. "1024-1033,2000".
	ReservablePorts string
}

var domainOrder = map[string]string{
	"created_at": "d.created_at",
	"updated_at": "d.updated_at",
	"name":       "lower(d.name)",
}

// domainColumns is the column list of a domain. sharedOrgs is the SQL
// expression of its visible shared organizations.
func domainColumns(sharedOrgs string) string {
	return `d.guid, d.name, d.internal, COALESCE(d.router_group_guid, ''), COALESCE(d.organization_guid, ''), ` +
		sharedOrgs + `, d.labels, d.annotations, d.created_at, d.updated_at`
}

// sharedOrganizations is the expression of the shared organizations of
// domain d that vis may see.
func (v Visibility) sharedOrganizations(a *args) string {
	return `ARRAY(SELECT dso.organization_guid FROM domain_shared_organizations dso
		WHERE dso.domain_guid = d.guid AND ` + v.orgCondition("dso.organization_guid", a) + ` ORDER BY dso.organization_guid)`
}

// domainCondition restricts domains d to the ones vis may see: every shared
// domain, and private domains whose owner or one of whose shared
// organizations vis may see.
func (v Visibility) domainCondition(a *args) string {
	if v.All {
		return "TRUE"
	}
	return `(d.organization_guid IS NULL OR ` + v.orgCondition("d.organization_guid", a) + `
		OR EXISTS (SELECT 1 FROM domain_shared_organizations dso WHERE dso.domain_guid = d.guid
			AND ` + v.orgCondition("dso.organization_guid", a) + `))`
}

func scanDomain(row interface{ Scan(...any) error }, extra ...any) (Domain, error) {
	var d Domain
	var shared pq.StringArray
	var labels, annotations []byte
	dest := append([]any{&d.GUID, &d.Name, &d.Internal, &d.RouterGroupGUID, &d.OrganizationGUID, &shared,
		&labels, &annotations, &d.CreatedAt, &d.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Domain{}, mapError(err)
	}
	d.SharedOrganizationGUIDs = []string(shared)
	if d.SharedOrganizationGUIDs == nil {
		d.SharedOrganizationGUIDs = []string{}
	}
	var err error
	if d.Labels, err = jsonMap(labels); err != nil {
		return Domain{}, err
	}
	if d.Annotations, err = jsonMap(annotations); err != nil {
		return Domain{}, err
	}
	return d, nil
}

// DomainReservedError is CreateDomain's error for a name that another
// organization's private domain or an existing route reserves.
type DomainReservedError struct {
	// Name is the requested domain name.
	Name string
	// ReservedBy is the private domain that the name falls under, or the
	// host name of the route that equals the name.
	ReservedBy string
	// ByRoute is true when ReservedBy is a route's host name.
	ByRoute bool
}

func (e *DomainReservedError) Error() string {
	kind := "another domain"
	if e.ByRoute {
		kind = "a route"
	}
	return fmt.Sprintf("domain name %s is reserved by %s %s", e.Name, kind, e.ReservedBy)
}

// domainNamesLockID is the transaction-level advisory lock that serialises
// domain creation, so two concurrent requests cannot both pass the
// reservation checks of CreateDomain.
const domainNamesLockID = 7310_2027

// CreateDomain inserts d and its shared organizations through q, which
// must be a transaction, and returns the domain as stored. A name taken by
// another domain, ignoring case, is a *UniqueError on ConstraintDomainName.
// A name under a private domain of another organization, or equal to the
// host name of a route, is a *DomainReservedError. An organization that
// does not exist is a *ForeignKeyError.
func CreateDomain(ctx context.Context, q querier, d Domain) (Domain, error) {
	if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, domainNamesLockID); err != nil {
		return Domain{}, fmt.Errorf("create domain %s: lock domain names: %w", d.Name, mapError(err))
	}
	if err := checkDomainReservations(ctx, q, d); err != nil {
		return Domain{}, err
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO domains (guid, name, internal, router_group_guid, organization_guid, labels, annotations)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7)`,
		d.GUID, d.Name, d.Internal, d.RouterGroupGUID, d.OrganizationGUID, metadataJSON(d.Labels), metadataJSON(d.Annotations))
	if err != nil {
		return Domain{}, fmt.Errorf("create domain %s: %w", d.GUID, mapError(err))
	}
	if err := ShareDomain(ctx, q, d.GUID, d.SharedOrganizationGUIDs); err != nil {
		return Domain{}, err
	}
	return domainThrough(ctx, q, d.GUID)
}

// checkDomainReservations returns a *DomainReservedError when a private
// domain of an organization other than d's owner has one of d's parent
// names, or when a route's host and domain make up d's name. Cloud
// Controller's domain model (app/models/runtime/domain.rb) applies the
// same two rules. Shared domains reserve nothing, so anyone who may create
// a domain may create one under a shared domain, and only the route whose
// host is the first label counts. A name equal to an existing domain is
// left to the unique index, which reports it as in use.
//
// NOTE: route creation does not take domainNamesLockID, so a route created
// while a domain of the same name commits can still slip past both checks.
func checkDomainReservations(ctx context.Context, q querier, d Domain) error {
	name := strings.ToLower(d.Name)
	labels := strings.Split(name, ".")
	parents := make([]string, 0, len(labels))
	for i := 1; i < len(labels); i++ {
		parents = append(parents, strings.Join(labels[i:], "."))
	}

	var reservedBy string
	err := q.QueryRowContext(ctx, `SELECT name FROM domains
		WHERE lower(name) = ANY($1::text[]) AND organization_guid IS NOT NULL
			AND organization_guid IS DISTINCT FROM NULLIF($2, '')
		ORDER BY length(name) LIMIT 1`, pq.Array(parents), d.OrganizationGUID).Scan(&reservedBy)
	switch {
	case err == nil:
		return &DomainReservedError{Name: d.Name, ReservedBy: strings.ToLower(reservedBy)}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("create domain %s: check parent domains: %w", d.Name, mapError(err))
	}

	if len(labels) < 2 {
		return nil
	}
	var exists bool
	err = q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM routes r JOIN domains rd ON rd.guid = r.domain_guid
		WHERE lower(r.host) = $1 AND lower(rd.name) = $2)`, labels[0], strings.Join(labels[1:], ".")).Scan(&exists)
	if err != nil {
		return fmt.Errorf("create domain %s: check routes: %w", d.Name, mapError(err))
	}
	if exists {
		return &DomainReservedError{Name: d.Name, ReservedBy: name, ByRoute: true}
	}
	return nil
}

// domainThrough reads the domain guid through q with every shared
// organization.
func domainThrough(ctx context.Context, q querier, guid string) (Domain, error) {
	a := args{guid}
	all := Visibility{All: true}
	row := q.QueryRowContext(ctx, `SELECT `+domainColumns(all.sharedOrganizations(&a))+` FROM domains d WHERE d.guid = $1`, a...)
	d, err := scanDomain(row)
	if err != nil {
		return Domain{}, fmt.Errorf("domain %s: %w", guid, err)
	}
	return d, nil
}

// ShareDomain shares the private domain guid with orgGUIDs through q.
// Sharing with an organization again is not an error.
func ShareDomain(ctx context.Context, q querier, guid string, orgGUIDs []string) error {
	if len(orgGUIDs) == 0 {
		return nil
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO domain_shared_organizations (domain_guid, organization_guid)
		SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, guid, pq.Array(orgGUIDs))
	if err != nil {
		return fmt.Errorf("share domain %s: %w", guid, mapError(err))
	}
	return nil
}

// UnshareDomain stops sharing the domain guid with orgGUID through q. It
// returns ErrNotFound when the domain was not shared with it.
func UnshareDomain(ctx context.Context, q querier, guid, orgGUID string) error {
	res, err := q.ExecContext(ctx, `DELETE FROM domain_shared_organizations WHERE domain_guid = $1 AND organization_guid = $2`, guid, orgGUID)
	if err != nil {
		return fmt.Errorf("unshare domain %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("unshare domain %s from %s: %w", guid, orgGUID, ErrNotFound)
	}
	return nil
}

// UpdateDomainMetadata applies patch to the domain guid through q and
// returns the domain with every shared organization. It returns
// ErrNotFound when there is no such domain.
func UpdateDomainMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Domain, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Domain{}, fmt.Errorf("update domain %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE domains SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err != nil {
		return Domain{}, fmt.Errorf("update domain %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return Domain{}, fmt.Errorf("update domain %s: %w", guid, ErrNotFound)
	}
	return domainThrough(ctx, q, guid)
}

// DeleteDomain deletes the domain guid through q, which must be a
// transaction, and with it, by foreign-key cascades, its routes and their
// destinations. It also deletes the domain's certificate and records
// certEvent for it, so a domain created later with the same name starts
// without one. certEvent carries the type and actor, and the store fills
// its target. Deleting a domain that is already gone succeeds, so a
// retried delete job finishes.
func DeleteDomain(ctx context.Context, q querier, guid string, certEvent AuditEvent) error {
	if err := deleteDomainCertificates(ctx, q, `d.guid = $1`, guid, certEvent); err != nil {
		return fmt.Errorf("delete domain %s: %w", guid, err)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM domains WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete domain %s: %w", guid, mapError(err))
	}
	return nil
}

// EnsureDomain creates a shared domain named name unless a domain of that
// name exists, and returns the stored domain of that name. Startup calls
// it for the configured default domains, so it never changes an existing
// domain.
func EnsureDomain(ctx context.Context, q querier, name string, internal bool) (Domain, error) {
	_, err := q.ExecContext(ctx, `
		INSERT INTO domains (guid, name, internal) VALUES ($1, $2, $3)
		ON CONFLICT ((lower(name))) DO NOTHING`, uuid.NewString(), name, internal)
	if err != nil {
		return Domain{}, fmt.Errorf("ensure domain %s: %w", name, mapError(err))
	}
	var guid string
	if err := q.QueryRowContext(ctx, `SELECT guid FROM domains WHERE lower(name) = lower($1)`, name).Scan(&guid); err != nil {
		return Domain{}, fmt.Errorf("ensure domain %s: %w", name, mapError(err))
	}
	return domainThrough(ctx, q, guid)
}

// DomainNameExists reports whether a domain named name exists, ignoring
// case. Route creation uses it to reject a host that turns the route into
// another domain's name.
func DomainNameExists(ctx context.Context, q querier, name string) (bool, error) {
	var exists bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM domains WHERE lower(name) = lower($1))`, name).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("domain named %s: %w", name, mapError(err))
	}
	return exists, nil
}

// Domain returns the domain guid if vis may see it, with the shared
// organizations vis may see, and ErrNotFound otherwise.
func (s *Store) Domain(ctx context.Context, guid string, vis Visibility) (Domain, error) {
	a := args{guid}
	columns := domainColumns(vis.sharedOrganizations(&a))
	row := s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM domains d WHERE d.guid = $1 AND `+vis.domainCondition(&a), a...)
	d, err := scanDomain(row)
	if err != nil {
		return Domain{}, fmt.Errorf("domain %s: %w", guid, err)
	}
	return d, nil
}

// Domains returns one page of the domains vis may see that match f, and
// the total number of matches across all pages.
func (s *Store) Domains(ctx context.Context, f DomainFilter, page Page, vis Visibility) ([]Domain, int, error) {
	var a args
	columns := domainColumns(vis.sharedOrganizations(&a))
	where := []string{vis.domainCondition(&a)}
	where = f.CommonFilter.conditions("d", &a, where)
	if f.Names != nil {
		where = append(where, "lower(d.name) = ANY("+a.add(pq.Array(lowerAll(f.Names)))+"::text[])")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "d.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.UsableBy != "" {
		org := a.add(f.UsableBy)
		where = append(where, `(d.organization_guid IS NULL OR d.organization_guid = `+org+`
			OR EXISTS (SELECT 1 FROM domain_shared_organizations u WHERE u.domain_guid = d.guid AND u.organization_guid = `+org+`))`)
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("d.labels", &a))
	}

	from := ` FROM domains d WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, `+listTotal(vis, from)+from+
		page.orderBy(domainOrder, "d.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list domains: %w", mapError(err))
	}
	defer rows.Close()

	domains := []Domain{}
	total := 0
	for rows.Next() {
		d, err := scanDomain(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list domains: %w", err)
		}
		domains = append(domains, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list domains: %w", mapError(err))
	}
	if len(domains) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list domains: %w", err)
		}
	}
	return domains, total, nil
}

// DefaultDomain returns the oldest shared domain that is not internal,
// which Cloud Controller reports as every organization's default domain.
func (s *Store) DefaultDomain(ctx context.Context) (Domain, error) {
	var a args
	all := Visibility{All: true}
	row := s.db.QueryRowContext(ctx, `SELECT `+domainColumns(all.sharedOrganizations(&a))+` FROM domains d
		WHERE d.organization_guid IS NULL AND NOT d.internal AND d.router_group_guid IS NULL
		ORDER BY d.created_at, d.guid LIMIT 1`, a...)
	d, err := scanDomain(row)
	if err != nil {
		return Domain{}, fmt.Errorf("default domain: %w", err)
	}
	return d, nil
}

// DomainHasRoutesIn reports whether the private domain guid has routes
// in spaces of organization orgGUID. Unsharing a domain from an
// organization that still has routes on it is refused.
func DomainHasRoutesIn(ctx context.Context, q querier, guid, orgGUID string) (bool, error) {
	var exists bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM routes r JOIN spaces s ON s.guid = r.space_guid
		WHERE r.domain_guid = $1 AND s.organization_guid = $2)`, guid, orgGUID).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("routes of domain %s in organization %s: %w", guid, orgGUID, mapError(err))
	}
	return exists, nil
}

// EnsureRouterGroup creates the router group name of type typ, or updates
// its reservable ports to ports when it exists, and returns it.
func EnsureRouterGroup(ctx context.Context, q querier, name, typ, ports string) (RouterGroup, error) {
	var g RouterGroup
	err := q.QueryRowContext(ctx, `
		INSERT INTO router_groups (guid, name, type, reservable_ports) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET reservable_ports = EXCLUDED.reservable_ports, updated_at = now()
		RETURNING guid, name, type, reservable_ports`,
		uuid.NewString(), name, typ, ports).Scan(&g.GUID, &g.Name, &g.Type, &g.ReservablePorts)
	if err != nil {
		return RouterGroup{}, fmt.Errorf("ensure router group %s: %w", name, mapError(err))
	}
	return g, nil
}

// RouterGroups returns the router groups, sorted by name, keeping only the
// one named name when name is not empty.
func (s *Store) RouterGroups(ctx context.Context, name string) ([]RouterGroup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT guid, name, type, reservable_ports FROM router_groups
		WHERE $1 = '' OR name = $1 ORDER BY name`, name)
	if err != nil {
		return nil, fmt.Errorf("list router groups: %w", mapError(err))
	}
	defer rows.Close()
	groups := []RouterGroup{}
	for rows.Next() {
		var g RouterGroup
		if err := rows.Scan(&g.GUID, &g.Name, &g.Type, &g.ReservablePorts); err != nil {
			return nil, fmt.Errorf("list router groups: %w", err)
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list router groups: %w", mapError(err))
	}
	return groups, nil
}

// RouterGroup returns the router group guid, or ErrNotFound.
func (s *Store) RouterGroup(ctx context.Context, guid string) (RouterGroup, error) {
	var g RouterGroup
	err := s.db.QueryRowContext(ctx, `SELECT guid, name, type, reservable_ports FROM router_groups WHERE guid = $1`, guid).
		Scan(&g.GUID, &g.Name, &g.Type, &g.ReservablePorts)
	if err != nil {
		return RouterGroup{}, fmt.Errorf("router group %s: %w", guid, mapError(err))
	}
	return g, nil
}

// DefaultTCPRouterGroup is the name of the router group Ferry creates on
// start for TCP domains.
const DefaultTCPRouterGroup = "default-tcp"

// EnsureDefaultRouting creates the shared domain defaultDomain, the
// internal domain internalDomain and the default-tcp router group when
// they are missing, and sets that group's reservable ports to tcpPorts.
// Ferry calls it on every start. Existing domains are kept as they are.
func (s *Store) EnsureDefaultRouting(ctx context.Context, defaultDomain, internalDomain, tcpPorts string) error {
	return s.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := EnsureRouterGroup(ctx, tx, DefaultTCPRouterGroup, "tcp", tcpPorts); err != nil {
			return err
		}
		if _, err := EnsureDomain(ctx, tx, defaultDomain, false); err != nil {
			return err
		}
		_, err := EnsureDomain(ctx, tx, internalDomain, true)
		return err
	})
}
