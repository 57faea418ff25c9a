package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// maxTenancyNameLength is the longest organization or space name Cloud
// Controller accepts, in characters.
const maxTenancyNameLength = 255

// Async operations of organizations.
const opOrganizationDelete = "organization.delete"

func (a *API) organizationRoutes() []route {
	const base = "/v3/organizations"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listOrganizations},
		{method: http.MethodPost, path: base, handler: a.createOrganization},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getOrganization},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateOrganization},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteOrganization},
		{method: http.MethodGet, path: base + "/{guid}/usage_summary", handler: a.organizationUsageSummary},
		{method: http.MethodGet, path: base + "/{guid}/domains", handler: a.organizationDomains},
		{method: http.MethodGet, path: base + "/{guid}/domains/default", handler: a.organizationDefaultDomain},
		{method: http.MethodGet, path: base + "/{guid}/relationships/default_isolation_segment", handler: a.organizationIsolationSegment},
		{method: http.MethodPatch, path: base + "/{guid}/relationships/default_isolation_segment", handler: a.updateOrganizationIsolationSegment},
		{method: http.MethodGet, path: base + "/{guid}/routing", handler: a.organizationRouting},
		{method: http.MethodPatch, path: base + "/{guid}/routing", handler: a.updateOrganizationRouting},
	}
}

func (a *API) organizationJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opOrganizationDelete: a.runOrganizationDelete}
}

// organizationCreatePayload is the body of POST /v3/organizations.
type organizationCreatePayload struct {
	Name      *string          `json:"name"`
	Suspended *bool            `json:"suspended"`
	Metadata  *metadataPayload `json:"metadata"`
}

// organizationUpdatePayload is the body of PATCH /v3/organizations/:guid.
type organizationUpdatePayload struct {
	Name      *string          `json:"name"`
	Suspended *bool            `json:"suspended"`
	Metadata  *metadataPayload `json:"metadata"`
}

type organizationJSON struct {
	GUID          string                    `json:"guid"`
	CreatedAt     string                    `json:"created_at"`
	UpdatedAt     string                    `json:"updated_at"`
	Name          string                    `json:"name"`
	Suspended     bool                      `json:"suspended"`
	Relationships organizationRelationships `json:"relationships"`
	Metadata      metadataJSON              `json:"metadata"`
	Links         organizationLinks         `json:"links"`
}

type organizationRelationships struct {
	Quota toOne `json:"quota"`
}

type organizationLinks struct {
	Self          link `json:"self"`
	Domains       link `json:"domains"`
	DefaultDomain link `json:"default_domain"`
	Quota         link `json:"quota"`
}

func (a *API) presentOrganization(o store.Organization) organizationJSON {
	self := a.url("/v3/organizations/", o.GUID)
	return organizationJSON{
		GUID:          o.GUID,
		CreatedAt:     timestamp(o.CreatedAt),
		UpdatedAt:     timestamp(o.UpdatedAt),
		Name:          o.Name,
		Suspended:     o.Suspended,
		Relationships: organizationRelationships{Quota: relTo(o.QuotaGUID)},
		Metadata:      presentMetadata(o.Labels, o.Annotations),
		Links: organizationLinks{
			Self:          link{Href: self},
			Domains:       link{Href: self + "/domains"},
			DefaultDomain: link{Href: self + "/domains/default"},
			Quota:         link{Href: a.url("/v3/organization_quotas/", o.QuotaGUID)},
		},
	}
}

var organizationListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "name"},
})

func (a *API) listOrganizations(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, organizationListSpec)
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}

	filter := store.OrganizationFilter{Names: q.filter("names"), GUIDs: common.GUIDs, LabelSelector: selector,
		CreatedAts: common.CreatedAts, UpdatedAts: common.UpdatedAts}
	orgs, total, err := a.store.Organizations(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}

	resources := make([]organizationJSON, len(orgs))
	for i, o := range orgs {
		resources[i] = a.presentOrganization(o)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func (a *API) getOrganization(r *http.Request) (*response, error) {
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentOrganization(org)), nil
}

// visibleOrganization reads the organization of the path for a request that
// takes no query parameters. An invisible organization is a 404.
func (a *API) visibleOrganization(r *http.Request) (store.Organization, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Organization{}, err
	}
	if err := noQuery(r); err != nil {
		return store.Organization{}, err
	}
	org, err := a.store.Organization(r.Context(), pathParam(r, "guid"), visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Organization{}, apierr.NotFound("Organization")
	}
	return org, err
}

// createOrganization serves POST /v3/organizations. Admins may always create
// organizations. Other users with cloud_controller.write may create them
// while the user_org_creation feature flag is enabled, and they become the
// new organization's user and manager in the same transaction.
func (a *API) createOrganization(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.mayCreateOrganization(ctx, actor); err != nil {
		return nil, err
	}

	var p organizationCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateTenancyName(p.Name, true); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if p.Suspended != nil && *p.Suspended && !actor.IsAdmin() {
		return nil, apierr.NotAuthorized()
	}

	labels, annotations := metadataValues(p.Metadata)
	org := store.Organization{GUID: uuid.NewString(), Name: *p.Name, Suspended: p.Suspended != nil && *p.Suspended,
		Labels: labels, Annotations: annotations}
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if org, err = store.CreateOrganization(ctx, tx, org); err != nil {
			return err
		}
		if !actor.IsAdmin() {
			if err := a.addOrganizationCreator(ctx, tx, actor, org); err != nil {
				return err
			}
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.organization.create", "organization",
			org.GUID, org.Name, org.GUID, "", organizationRequest(p.Name, p.Suspended, p.Metadata)))
	})
	if store.IsUnique(err, store.ConstraintOrganizationName) {
		return nil, apierr.UnprocessableEntity("Organization '" + *p.Name + "' already exists.")
	}
	if err != nil {
		return nil, err
	}
	return created(a.presentOrganization(org)), nil
}

func (a *API) mayCreateOrganization(ctx context.Context, actor *auth.Actor) error {
	if actor.IsAdmin() {
		return nil
	}
	if err := requireWrite(actor); err != nil {
		return err
	}
	enabled, _, err := a.featureEnabled(ctx, flagUserOrgCreation)
	if err != nil {
		return err
	}
	if !enabled {
		return apierr.NotAuthorized()
	}
	return nil
}

// addOrganizationCreator makes a non-admin creator the organization's user
// and manager, with the audit events Cloud Controller records for them.
func (a *API) addOrganizationCreator(ctx context.Context, tx *sql.Tx, actor *auth.Actor, org store.Organization) error {
	userRole, managerRole, err := store.AddOrganizationCreator(ctx, tx, org.GUID, actor.UserGUID)
	if err != nil {
		return err
	}
	for _, role := range []struct{ guid, kind string }{{userRole, roleOrgUser}, {managerRole, roleOrgManager}} {
		request := map[string]any{
			"type": role.kind,
			"relationships": map[string]any{
				"organization": map[string]any{"data": map[string]any{"guid": org.GUID}},
				"user":         map[string]any{"data": map[string]any{"guid": actor.UserGUID}},
			},
		}
		ev := tenancyEvent(actor, "audit.user."+role.kind+"_add", "user", actor.UserGUID, actor.DisplayName(), org.GUID, "", request)
		if err := store.RecordAuditEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// updateOrganization serves PATCH /v3/organizations/:guid for admins and the
// organization's managers. Only admins may suspend an organization or change
// one that is suspended.
func (a *API) updateOrganization(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeInOrg(ctx, actor, org.GUID, "", true, apierr.NotFound("Organization"), roleOrgManager); err != nil {
		return nil, err
	}
	if org.Suspended && !actor.IsAdmin() {
		return nil, errOrgSuspended()
	}

	var p organizationUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateTenancyName(p.Name, false); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if p.Suspended != nil && *p.Suspended && !actor.IsAdmin() {
		return nil, apierr.NotAuthorized()
	}

	update := store.OrganizationUpdate{Name: p.Name, Suspended: p.Suspended, Metadata: metadataPatch(p.Metadata)}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if org, err = store.UpdateOrganization(ctx, tx, org.GUID, update); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.organization.update", "organization",
			org.GUID, org.Name, org.GUID, "", organizationRequest(p.Name, p.Suspended, p.Metadata)))
	})
	switch {
	case store.IsUnique(err, store.ConstraintOrganizationName):
		return nil, apierr.UnprocessableEntity("Organization '" + *p.Name + "' already exists.")
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.NotFound("Organization")
	case err != nil:
		return nil, err
	}
	return ok(a.presentOrganization(org)), nil
}

// deleteOrganization serves DELETE /v3/organizations/:guid for admins. It
// records the request and starts an organization.delete job in one
// transaction, and the job removes the organization with everything in it.
func (a *API) deleteOrganization(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}

	job := newJob(actor, opOrganizationDelete, "organization", org.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.organization.delete-request", "organization",
			org.GUID, org.Name, org.GUID, "", map[string]any{"recursive": true}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runOrganizationDelete is the organization.delete job. Foreign-key
// cascades remove the spaces, space quotas and roles with the organization.
// Running it again after the organization is gone succeeds.
func (a *API) runOrganizationDelete(ctx context.Context, job store.Job) error {
	return store.DeleteOrganization(ctx, a.store.DB(), job.ResourceGUID)
}

type usageSummaryJSON struct {
	StartedInstances int `json:"started_instances"`
	MemoryInMB       int `json:"memory_in_mb"`
	Routes           int `json:"routes"`
	ServiceInstances int `json:"service_instances"`
	ReservedPorts    int `json:"reserved_ports"`
	Domains          int `json:"domains"`
	PerAppTasks      int `json:"per_app_tasks"`
	ServiceKeys      int `json:"service_keys"`
}

func presentUsage(u store.Usage) usageSummaryJSON {
	return usageSummaryJSON{
		StartedInstances: u.StartedInstances,
		MemoryInMB:       u.MemoryInMB,
		Routes:           u.Routes,
		ServiceInstances: u.ServiceInstances,
		ReservedPorts:    u.ReservedPorts,
		Domains:          u.Domains,
		PerAppTasks:      u.PerAppTasks,
		ServiceKeys:      u.ServiceKeys,
	}
}

func (a *API) organizationUsageSummary(r *http.Request) (*response, error) {
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	usage, err := a.store.OrganizationUsage(r.Context(), org.GUID)
	if err != nil {
		return nil, err
	}
	self := a.url("/v3/organizations/", org.GUID)
	return ok(map[string]any{
		"usage_summary": presentUsage(usage),
		"links": map[string]link{
			"self":         {Href: self + "/usage_summary"},
			"organization": {Href: self},
		},
	}), nil
}

// organizationDomainsSpec is domainListSpec: the organization's domains
// take the filters of the domain list.
var organizationDomainsSpec = domainListSpec

// organizationDomains serves GET /v3/organizations/:guid/domains: the
// shared domains, the organization's private domains and the private
// domains shared with it, as far as the actor may see them.
func (a *API) organizationDomains(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, organizationDomainsSpec)
	if err != nil {
		return nil, err
	}
	org, err := a.store.Organization(r.Context(), pathParam(r, "guid"), visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Organization")
	}
	if err != nil {
		return nil, err
	}
	return a.organizationDomainList(r, q, org.GUID)
}

// organizationDefaultDomain serves GET /v3/organizations/:guid/domains/default.
func (a *API) organizationDefaultDomain(r *http.Request) (*response, error) {
	if _, err := a.visibleOrganization(r); err != nil {
		return nil, err
	}
	return a.organizationDefaultDomainOf(r)
}

type isolationSegmentRelationshipJSON struct {
	Data  *guidRef        `json:"data"`
	Links map[string]link `json:"links"`
}

// isolationSegmentPayload is the body of PATCH
// /v3/organizations/:guid/relationships/default_isolation_segment.
type isolationSegmentPayload struct {
	Data *struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

// organizationIsolationSegment serves the default isolation segment
// relationship. Ferry runs every app in the shared segment, which Cloud
// Controller shows as data null.
func (a *API) organizationIsolationSegment(r *http.Request) (*response, error) {
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentIsolationSegmentRelationship(org.GUID)), nil
}

func (a *API) presentIsolationSegmentRelationship(orgGUID string) isolationSegmentRelationshipJSON {
	return isolationSegmentRelationshipJSON{Links: map[string]link{
		"self": {Href: a.url("/v3/organizations/", orgGUID, "/relationships/default_isolation_segment")},
	}}
}

// updateOrganizationIsolationSegment accepts only data null: no isolation
// segment can be entitled to an organization, so none can be its default.
func (a *API) updateOrganizationIsolationSegment(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeInOrg(ctx, actor, org.GUID, "", true, apierr.NotFound("Organization"), roleOrgManager); err != nil {
		return nil, err
	}
	if org.Suspended && !actor.IsAdmin() {
		return nil, errOrgSuspended()
	}

	var p isolationSegmentPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Data != nil {
		return nil, apierr.UnprocessableEntity("Unable to assign isolation segment with guid '" + p.Data.GUID +
			"': it is not entitled to the organization. Send data null to use the shared isolation segment.")
	}
	return ok(a.presentIsolationSegmentRelationship(org.GUID)), nil
}

// validateTenancyName checks an organization or space name. A nil name is
// an error only when required.
func validateTenancyName(name *string, required bool) error {
	switch {
	case name == nil && required:
		return apierr.UnprocessableEntity("Name is required: send a name of 1 to 255 characters")
	case name == nil:
		return nil
	case strings.TrimSpace(*name) == "":
		return apierr.UnprocessableEntity("Name must not be blank")
	case utf8.RuneCountInString(*name) > maxTenancyNameLength:
		return apierr.UnprocessableEntity("Name is too long: the maximum is 255 characters")
	case strings.ContainsFunc(*name, unicode.IsControl):
		return apierr.UnprocessableEntity("Name must not contain control characters such as tabs or newlines")
	}
	return nil
}

// organizationRequest is the data.request of an organization's audit
// events: the fields the client sent.
func organizationRequest(name *string, suspended *bool, metadata *metadataPayload) map[string]any {
	request := map[string]any{}
	if name != nil {
		request["name"] = *name
	}
	if suspended != nil {
		request["suspended"] = *suspended
	}
	if metadata != nil {
		request["metadata"] = metadataRequest(metadata)
	}
	return request
}

// tenancyEvent builds an audit event of actor on a target in an
// organization and, when spaceGUID is set, a space. request becomes
// data.request, as in Cloud Controller's events.
func tenancyEvent(actor *auth.Actor, eventType, targetType, targetGUID, targetName, orgGUID, spaceGUID string, request map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:             eventType,
		ActorGUID:        actor.UserGUID,
		ActorType:        "user",
		ActorName:        actor.DisplayName(),
		TargetGUID:       targetGUID,
		TargetType:       targetType,
		TargetName:       targetName,
		OrganizationGUID: orgGUID,
		SpaceGUID:        spaceGUID,
		Data:             map[string]any{"request": request},
	}
}

// errOrgSuspended is Cloud Controller's CF-OrgSuspended: only admins may
// change anything in a suspended organization.
func errOrgSuspended() *apierr.Error {
	return &apierr.Error{Status: http.StatusForbidden, Code: 10017, Title: "CF-OrgSuspended", Detail: "The organization is suspended"}
}

// errSpaceSuspended is Cloud Controller's CF-SpaceSuspended: only admins and
// org managers may change anything in a suspended space.
func errSpaceSuspended() *apierr.Error {
	return &apierr.Error{Status: http.StatusForbidden, Code: 10019, Title: "CF-SpaceSuspended", Detail: "The space is suspended"}
}
