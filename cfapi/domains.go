package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Async operations of domains.
const opDomainDelete = "domain.delete"

func (a *API) domainRoutes() []route {
	const base = "/v3/domains"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listDomains},
		{method: http.MethodPost, path: base, handler: a.createDomain},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getDomain},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateDomain},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteDomain},
		{method: http.MethodPost, path: base + "/{guid}/relationships/shared_organizations", handler: a.shareDomain},
		{method: http.MethodDelete, path: base + "/{guid}/relationships/shared_organizations/{org_guid}", handler: a.unshareDomain},
		{method: http.MethodGet, path: base + "/{guid}/route_reservations", handler: a.domainRouteReservations},
	}
}

func (a *API) domainJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opDomainDelete: a.runDomainDelete}
}

// domainCreatePayload is the body of POST /v3/domains.
type domainCreatePayload struct {
	Name          *string                     `json:"name"`
	Internal      *bool                       `json:"internal"`
	RouterGroup   *guidRef                    `json:"router_group"`
	Relationships *domainRelationshipsPayload `json:"relationships"`
	Metadata      *metadataPayload            `json:"metadata"`
}

type domainRelationshipsPayload struct {
	Organization        *spaceOrganizationPayload `json:"organization"`
	SharedOrganizations *toMany                   `json:"shared_organizations"`
}

// domainUpdatePayload is the body of PATCH /v3/domains/:guid.
type domainUpdatePayload struct {
	Metadata *metadataPayload `json:"metadata"`
}

type domainJSON struct {
	GUID               string              `json:"guid"`
	CreatedAt          string              `json:"created_at"`
	UpdatedAt          string              `json:"updated_at"`
	Name               string              `json:"name"`
	Internal           bool                `json:"internal"`
	RouterGroup        *guidRef            `json:"router_group"`
	SupportedProtocols []string            `json:"supported_protocols"`
	Metadata           metadataJSON        `json:"metadata"`
	Relationships      domainRelationships `json:"relationships"`
	Links              map[string]link     `json:"links"`
}

type domainRelationships struct {
	Organization        toOne  `json:"organization"`
	SharedOrganizations toMany `json:"shared_organizations"`
}

func (a *API) presentDomain(d store.Domain) domainJSON {
	self := a.url("/v3/domains/", d.GUID)
	shared := make([]guidRef, len(d.SharedOrganizationGUIDs))
	for i, g := range d.SharedOrganizationGUIDs {
		shared[i] = guidRef{GUID: g}
	}
	body := domainJSON{
		GUID:               d.GUID,
		CreatedAt:          timestamp(d.CreatedAt),
		UpdatedAt:          timestamp(d.UpdatedAt),
		Name:               d.Name,
		Internal:           d.Internal,
		SupportedProtocols: d.Protocols(),
		Metadata:           presentMetadata(d.Labels, d.Annotations),
		Relationships: domainRelationships{
			Organization:        relTo(d.OrganizationGUID),
			SharedOrganizations: toMany{Data: shared},
		},
		Links: map[string]link{
			"self":               {Href: self},
			"route_reservations": {Href: self + "/route_reservations"},
		},
	}
	if d.RouterGroupGUID != "" {
		body.RouterGroup = &guidRef{GUID: d.RouterGroupGUID}
		body.Links["router_group"] = link{Href: a.url("/routing/v1/router_groups/", d.RouterGroupGUID)}
	}
	if !d.Shared() {
		body.Links["organization"] = link{Href: a.url("/v3/organizations/", d.OrganizationGUID)}
		body.Links["shared_organizations"] = link{Href: self + "/relationships/shared_organizations"}
	}
	return body
}

var domainListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "name"},
})

// domainFilterOf reads the filters of a domain list.
func domainFilterOf(q *listQuery) (store.DomainFilter, error) {
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.DomainFilter{}, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return store.DomainFilter{}, err
	}
	return store.DomainFilter{
		CommonFilter:      common,
		Names:             q.filter("names"),
		OrganizationGUIDs: q.filter("organization_guids"),
		LabelSelector:     selector,
	}, nil
}

func (a *API) listDomains(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, domainListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := domainFilterOf(q)
	if err != nil {
		return nil, err
	}
	return a.domainList(r, q, filter)
}

func (a *API) domainList(r *http.Request, q *listQuery, filter store.DomainFilter) (*response, error) {
	domains, total, err := a.store.Domains(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]domainJSON, len(domains))
	for i, d := range domains {
		resources[i] = a.presentDomain(d)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// visibleDomain reads the domain guid. An invisible domain is a 404.
func (a *API) visibleDomain(r *http.Request, guid string) (store.Domain, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Domain{}, err
	}
	d, err := a.store.Domain(r.Context(), guid, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Domain{}, apierr.NotFound("Domain")
	}
	return d, err
}

func (a *API) getDomain(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.visibleDomain(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	return ok(a.presentDomain(d)), nil
}

// domainLabel is one DNS label of at most 63 characters: letters, digits
// and inner hyphens.
const domainLabel = `[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?`

var domainNamePattern = regexp.MustCompile(`(?i)^(?:` + domainLabel + `\.)*` + domainLabel + `$`)

// domainNameProblems returns Cloud Controller's messages for an invalid
// domain name, joined, or "" for a valid one.
func domainNameProblems(name string) string {
	var problems []string
	switch {
	case name == "":
		return "Name can't be blank"
	case len(name) < 3:
		problems = append(problems, "Name is too short (minimum is 3 characters)")
	case len(name) > 253:
		problems = append(problems, "Name is too long (maximum is 253 characters)")
	}
	if !domainNamePattern.MatchString(name) {
		problems = append(problems, "Name does not comply with RFC 1035 standards")
	}
	if !strings.Contains(name, ".") {
		problems = append(problems, `Name must contain at least one "."`)
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) > 63 {
			problems = append(problems, "Name subdomains must each be at most 63 characters")
			break
		}
	}
	if strings.IndexFunc(name, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.')
	}) >= 0 {
		problems = append(problems, "Name must consist of alphanumeric characters and hyphens")
	}
	return strings.Join(problems, ", ")
}

// errInvalidOrganization is Cloud Controller's 422 for an organization
// named in a body that does not exist or that the actor cannot see.
func errInvalidOrganization(guid string) error {
	return apierr.UnprocessableEntity("Organization with guid '" + guid + "' does not exist or you do not have access to it.")
}

// validateDomainCreate checks the shape of a domain create request.
func validateDomainCreate(p *domainCreatePayload) error {
	if p.Name == nil {
		return apierr.UnprocessableEntity("Name can't be blank")
	}
	if problems := domainNameProblems(*p.Name); problems != "" {
		return apierr.UnprocessableEntity(problems)
	}
	internal := p.Internal != nil && *p.Internal
	hasOrg := p.Relationships != nil && p.Relationships.Organization != nil
	hasShared := p.Relationships != nil && p.Relationships.SharedOrganizations != nil
	switch {
	case internal && p.Relationships != nil:
		return apierr.UnprocessableEntity("Cannot associate an internal domain with an organization")
	case internal && p.RouterGroup != nil:
		return apierr.UnprocessableEntity("Internal domains cannot be associated to a router group.")
	case p.Relationships != nil && p.RouterGroup != nil:
		return apierr.UnprocessableEntity("Domains scoped to an organization cannot be associated to a router group.")
	case hasShared && !hasOrg:
		return apierr.UnprocessableEntity("Relationships cannot contain shared_organizations without an owning organization.")
	case hasOrg && (p.Relationships.Organization.Data == nil || p.Relationships.Organization.Data.GUID == ""):
		return apierr.UnprocessableEntity("Relationships Organization must be structured like this: \"organization\": {\"data\": {\"guid\": \"valid-guid\"}}")
	case p.RouterGroup != nil && p.RouterGroup.GUID == "":
		return apierr.UnprocessableEntity("Router group must be structured like this: \"router_group\": {\"guid\": \"valid-guid\"}")
	}
	if hasShared {
		for _, ref := range p.Relationships.SharedOrganizations.Data {
			if ref.GUID == "" {
				return apierr.UnprocessableEntity("Relationships Shared organizations must be structured like this: \"shared_organizations\": {\"data\": [{\"guid\": \"valid-guid\"}]}")
			}
		}
	}
	return validateMetadata(p.Metadata)
}

// createDomain serves POST /v3/domains. Admins create shared domains;
// admins and managers of the owning organization create private ones, and
// may share them with organizations they also manage.
func (a *API) createDomain(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var p domainCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateDomainCreate(&p); err != nil {
		return nil, err
	}

	labels, annotations := metadataValues(p.Metadata)
	d := store.Domain{GUID: uuid.NewString(), Name: strings.ToLower(*p.Name), Internal: p.Internal != nil && *p.Internal,
		Labels: labels, Annotations: annotations}
	if p.Relationships != nil && p.Relationships.Organization != nil {
		d.OrganizationGUID = p.Relationships.Organization.Data.GUID
		if p.Relationships.SharedOrganizations != nil {
			for _, ref := range p.Relationships.SharedOrganizations.Data {
				d.SharedOrganizationGUIDs = append(d.SharedOrganizationGUIDs, ref.GUID)
			}
		}
	}
	if err := a.authorizeDomainCreate(ctx, actor, r, &d); err != nil {
		return nil, err
	}
	for _, orgGUID := range d.SharedOrganizationGUIDs {
		if orgGUID == d.OrganizationGUID {
			return nil, errSharedWithOwner()
		}
	}
	if p.RouterGroup != nil {
		group, err := a.store.RouterGroup(ctx, p.RouterGroup.GUID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.UnprocessableEntity("Router group with guid '" + p.RouterGroup.GUID + "' not found.")
		}
		if err != nil {
			return nil, err
		}
		d.RouterGroupGUID = group.GUID
	}

	stored := d
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if stored, err = store.CreateDomain(ctx, tx, d); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, domainEvent(actor, "audit.domain.create", stored, map[string]any{"request": domainRequest(&p)}))
	})
	var fkErr *store.ForeignKeyError
	var reservedErr *store.DomainReservedError
	switch {
	case store.IsUnique(err, store.ConstraintDomainName):
		return nil, apierr.UnprocessableEntity(`The domain name "` + d.Name + `" is already in use`)
	case errors.As(err, &reservedErr):
		reserver := "another domain"
		if reservedErr.ByRoute {
			reserver = "a route"
		}
		return nil, apierr.UnprocessableEntity(`The domain name "` + d.Name + `" cannot be created because "` +
			reservedErr.ReservedBy + `" is already reserved by ` + reserver)
	case errors.As(err, &fkErr):
		// An organization was deleted after it was read.
		return nil, errInvalidOrganization(d.OrganizationGUID)
	case err != nil:
		return nil, err
	}
	return created(a.presentDomain(stored)), nil
}

// errSharedWithOwner returns Cloud Controller's 422 error for a request that
// shares a private domain with the organization that owns it.
func errSharedWithOwner() error {
	return apierr.UnprocessableEntity("Domain cannot be shared with owning organization.")
}

// authorizeDomainCreate checks that actor may create d: admins may create
// any domain, managers of the owning organization private domains shared
// only with organizations they also manage.
func (a *API) authorizeDomainCreate(ctx context.Context, actor *auth.Actor, r *http.Request, d *store.Domain) error {
	if d.OrganizationGUID == "" {
		return requireAdmin(actor)
	}
	for _, orgGUID := range append([]string{d.OrganizationGUID}, d.SharedOrganizationGUIDs...) {
		org, err := a.store.Organization(ctx, orgGUID, visibility(r))
		if errors.Is(err, store.ErrNotFound) {
			return errInvalidOrganization(orgGUID)
		}
		if err != nil {
			return err
		}
		if err := a.authorizeInOrg(ctx, actor, org.GUID, "", true, nil, roleOrgManager); err != nil {
			return err
		}
		if org.Suspended && !actor.IsAdmin() {
			return errOrgSuspended()
		}
	}
	return nil
}

// domainForWrite reads the domain of the path for a change by the actor:
// admins may change any domain, managers of the owning organization a
// private one. Others who can see it get a 403.
func (a *API) domainForWrite(r *http.Request) (store.Domain, error) {
	actor := actorOf(r)
	d, err := a.visibleDomain(r, pathParam(r, "guid"))
	if err != nil {
		return store.Domain{}, err
	}
	if d.Shared() {
		return d, requireAdmin(actor)
	}
	if err := a.authorizeInOrg(r.Context(), actor, d.OrganizationGUID, "", true, nil, roleOrgManager); err != nil {
		return store.Domain{}, err
	}
	return d, nil
}

func (a *API) updateDomain(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.domainForWrite(r)
	if err != nil {
		return nil, err
	}
	var p domainUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if d, err = store.UpdateDomainMetadata(ctx, tx, d.GUID, metadataPatch(p.Metadata)); err != nil {
			return err
		}
		request := map[string]any{}
		if p.Metadata != nil {
			request["metadata"] = metadataRequest(p.Metadata)
		}
		return store.RecordAuditEvent(ctx, tx, domainEvent(actor, "audit.domain.update", d, map[string]any{"request": request}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Domain")
	}
	if err != nil {
		return nil, err
	}
	// Show only the shared organizations the actor may see.
	return a.getDomainAfterWrite(r, d.GUID)
}

func (a *API) getDomainAfterWrite(r *http.Request, guid string) (*response, error) {
	d, err := a.visibleDomain(r, guid)
	if err != nil {
		return nil, err
	}
	return ok(a.presentDomain(d)), nil
}

// deleteDomain serves DELETE /v3/domains/:guid: it records the request and
// starts a domain.delete job, which deletes the domain's routes with it. A
// private domain shared with other organizations must be unshared first.
func (a *API) deleteDomain(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.domainForWrite(r)
	if err != nil {
		return nil, err
	}
	all, err := a.store.Domain(ctx, d.GUID, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	if len(all.SharedOrganizationGUIDs) > 0 {
		return nil, apierr.UnprocessableEntity("This domain is shared with other organizations. Unshare before deleting.")
	}

	job := newJob(actor, opDomainDelete, "domain", d.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, domainEvent(actor, "audit.domain.delete-request", d, nil))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runDomainDelete is the domain.delete job. It deletes the domain's
// certificate with it, recorded as a certificate delete by the user who
// requested the job, so the gateway drops the TLS Secret and HTTPS
// listeners at its next sync. Running it again after the domain is gone
// succeeds.
func (a *API) runDomainDelete(ctx context.Context, job store.Job) error {
	actorName, err := a.jobActorName(ctx, job.UserGUID)
	if err != nil {
		return err
	}
	certEvent := store.AuditEvent{Type: "audit.certificate.delete", ActorGUID: job.UserGUID, ActorType: "user", ActorName: actorName}
	return a.store.InTx(ctx, func(tx *sql.Tx) error {
		return store.DeleteDomain(ctx, tx, job.ResourceGUID, certEvent)
	})
}

// shareDomain serves POST /v3/domains/:guid/relationships/shared_organizations
// for admins and managers of the owning organization who also manage every
// organization they share it with.
func (a *API) shareDomain(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.visibleDomain(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	var p toMany
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if len(p.Data) == 0 {
		return nil, apierr.UnprocessableEntity("Data must have the structure \"data\": [{\"guid\": \"valid-guid\"}]")
	}
	if d.Shared() {
		return nil, apierr.UnprocessableEntity("Domains cannot be shared with other organizations unless they are scoped to an organization.")
	}
	if err := a.authorizeInOrg(ctx, actor, d.OrganizationGUID, "", true, nil, roleOrgManager); err != nil {
		return nil, err
	}
	targets := make([]string, 0, len(p.Data))
	for _, ref := range p.Data {
		if ref.GUID == d.OrganizationGUID {
			return nil, errSharedWithOwner()
		}
		org, err := a.store.Organization(ctx, ref.GUID, visibility(r))
		if errors.Is(err, store.ErrNotFound) {
			return nil, errInvalidOrganization(ref.GUID)
		}
		if err != nil {
			return nil, err
		}
		if err := a.authorizeInOrg(ctx, actor, org.GUID, "", true, nil, roleOrgManager); err != nil {
			return nil, err
		}
		targets = append(targets, org.GUID)
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.ShareDomain(ctx, tx, d.GUID, targets); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, domainEvent(actor, "audit.domain.share", d,
			map[string]any{"request": map[string]any{"shared_organization_guids": targets}}))
	})
	var fkErr *store.ForeignKeyError
	switch {
	case errors.As(err, &fkErr):
		return nil, errInvalidOrganization(strings.Join(targets, ", "))
	case err != nil:
		return nil, err
	}

	d, err = a.visibleDomain(r, d.GUID)
	if err != nil {
		return nil, err
	}
	shared := make([]guidRef, len(d.SharedOrganizationGUIDs))
	for i, g := range d.SharedOrganizationGUIDs {
		shared[i] = guidRef{GUID: g}
	}
	return ok(toMany{Data: shared}), nil
}

// unshareDomain serves DELETE
// /v3/domains/:guid/relationships/shared_organizations/:org_guid for admins
// and managers of either organization. An organization that still has
// routes on the domain keeps it.
func (a *API) unshareDomain(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.visibleDomain(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	orgGUID := pathParam(r, "org_guid")
	org, err := a.store.Organization(ctx, orgGUID, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidOrganization(orgGUID)
	}
	if err != nil {
		return nil, err
	}
	if !actor.IsAdmin() {
		ownerErr := a.authorizeInOrg(ctx, actor, d.OrganizationGUID, "", true, nil, roleOrgManager)
		if targetErr := a.authorizeInOrg(ctx, actor, org.GUID, "", true, nil, roleOrgManager); ownerErr != nil && targetErr != nil {
			return nil, ownerErr
		}
	}
	notShared := apierr.UnprocessableEntity("Unable to unshare domain from organization with name '" + org.Name +
		"'. Ensure the domain is shared to this organization.")
	if d.Shared() || d.OrganizationGUID == org.GUID {
		return nil, notShared
	}
	hasRoutes, err := store.DomainHasRoutesIn(ctx, a.store.DB(), d.GUID, org.GUID)
	if err != nil {
		return nil, err
	}
	if hasRoutes {
		return nil, apierr.UnprocessableEntity("This domain has associated routes in organization '" + org.Name +
			"'. Delete the routes before unsharing.")
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.UnshareDomain(ctx, tx, d.GUID, org.GUID); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, domainEvent(actor, "audit.domain.unshare", d,
			map[string]any{"request": map[string]any{"unshared_organization_guid": org.GUID}}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notShared
	}
	if err != nil {
		return nil, err
	}
	return noContent(), nil
}

// domainRouteReservations serves GET /v3/domains/:guid/route_reservations,
// which cf check-route calls: matching_route is true when a route with the
// host, path and port exists on the domain, in any space.
func (a *API) domainRouteReservations(r *http.Request) (*response, error) {
	if err := rejectUnknownParams(r.URL.Query(), []string{"host", "path", "port"}); err != nil {
		return nil, err
	}
	d, err := a.visibleDomain(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	query := r.URL.Query()
	filter := store.RouteFilter{DomainGUIDs: []string{d.GUID}, Hosts: []string{query.Get("host")}, Paths: []string{query.Get("path")}}
	if query.Has("port") {
		port, err := parsePort(query.Get("port"))
		if err != nil {
			return nil, apierr.BadQueryParameter("Port must be an integer between 0 and 65535")
		}
		filter = store.RouteFilter{DomainGUIDs: []string{d.GUID}, Ports: []int{port}}
	}
	_, total, err := a.store.Routes(r.Context(), filter, store.Page{Number: 1, PerPage: 1}, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	return ok(map[string]bool{"matching_route": total > 0}), nil
}

// organizationDomainList lists the domains that routes in the organization
// may use, for GET /v3/organizations/:guid/domains.
func (a *API) organizationDomainList(r *http.Request, q *listQuery, orgGUID string) (*response, error) {
	filter, err := domainFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.UsableBy = orgGUID
	return a.domainList(r, q, filter)
}

// organizationDefaultDomainOf returns the default domain every organization
// reports: the oldest shared HTTP domain that is not internal.
func (a *API) organizationDefaultDomainOf(r *http.Request) (*response, error) {
	d, err := a.store.DefaultDomain(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Domain")
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentDomain(d)), nil
}

// domainEvent builds an audit event of actor on the domain d. Shared
// domains have no organization.
func domainEvent(actor *auth.Actor, eventType string, d store.Domain, data map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:             eventType,
		ActorGUID:        actor.UserGUID,
		ActorType:        "user",
		ActorName:        actor.DisplayName(),
		TargetGUID:       d.GUID,
		TargetType:       "domain",
		TargetName:       d.Name,
		OrganizationGUID: d.OrganizationGUID,
		Data:             data,
	}
}

// domainRequest is the data.request of a domain's create event: the
// fields the client sent.
func domainRequest(p *domainCreatePayload) map[string]any {
	request := map[string]any{"name": *p.Name}
	if p.Internal != nil {
		request["internal"] = *p.Internal
	}
	if p.RouterGroup != nil {
		request["router_group"] = map[string]any{"guid": p.RouterGroup.GUID}
	}
	if p.Relationships != nil && p.Relationships.Organization != nil {
		request["relationships"] = map[string]any{"organization": map[string]any{"data": map[string]any{
			"guid": p.Relationships.Organization.Data.GUID}}}
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}
