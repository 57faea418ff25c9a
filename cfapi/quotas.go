package cfapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// Upper bounds of quota limits. Cloud Controller stores most limits as
// 32-bit integers and the log rate limit as a 64-bit one.
const (
	quotaMaxLimit        = 1<<31 - 1
	quotaMaxLogRateLimit = 1<<63 - 1
	quotaMaxNameLength   = 250
)

// Job operations of quota deletes, named as Cloud Controller names them.
const (
	opOrganizationQuotaDelete = "organization_quota.delete"
	opSpaceQuotaDelete        = "space_quota.delete"
)

func (a *API) quotaRoutes() []route {
	const orgBase = "/v3/organization_quotas"
	const spaceBase = "/v3/space_quotas"
	return []route{
		{method: http.MethodGet, path: orgBase, handler: a.listOrganizationQuotas},
		{method: http.MethodPost, path: orgBase, handler: a.createOrganizationQuota},
		{method: http.MethodGet, path: orgBase + "/{guid}", handler: a.getOrganizationQuota},
		{method: http.MethodPatch, path: orgBase + "/{guid}", handler: a.updateOrganizationQuota},
		{method: http.MethodDelete, path: orgBase + "/{guid}", handler: a.deleteOrganizationQuota},
		{method: http.MethodPost, path: orgBase + "/{guid}/relationships/organizations", handler: a.applyOrganizationQuota},

		{method: http.MethodGet, path: spaceBase, handler: a.listSpaceQuotas},
		{method: http.MethodPost, path: spaceBase, handler: a.createSpaceQuota},
		{method: http.MethodGet, path: spaceBase + "/{guid}", handler: a.getSpaceQuota},
		{method: http.MethodPatch, path: spaceBase + "/{guid}", handler: a.updateSpaceQuota},
		{method: http.MethodDelete, path: spaceBase + "/{guid}", handler: a.deleteSpaceQuota},
		{method: http.MethodPost, path: spaceBase + "/{guid}/relationships/spaces", handler: a.applySpaceQuota},
		{method: http.MethodDelete, path: spaceBase + "/{guid}/relationships/spaces/{space_guid}", handler: a.removeSpaceQuota},
	}
}

// quotaValue is one JSON value of a quota request, kept raw so that a PATCH
// can tell an absent key (keep the current value) from null (unlimited).
type quotaValue struct {
	present bool
	raw     json.RawMessage
}

func (v *quotaValue) UnmarshalJSON(data []byte) error {
	v.present = true
	v.raw = append(json.RawMessage(nil), data...)
	return nil
}

func (v quotaValue) isNull() bool { return string(bytes.TrimSpace(v.raw)) == "null" }

// quotaAppsRequest is the "apps" object of a quota request.
type quotaAppsRequest struct {
	TotalMemoryInMB              quotaValue `json:"total_memory_in_mb"`
	PerProcessMemoryInMB         quotaValue `json:"per_process_memory_in_mb"`
	TotalInstances               quotaValue `json:"total_instances"`
	PerAppTasks                  quotaValue `json:"per_app_tasks"`
	LogRateLimitInBytesPerSecond quotaValue `json:"log_rate_limit_in_bytes_per_second"`
}

// quotaServicesRequest is the "services" object of a quota request.
type quotaServicesRequest struct {
	PaidServicesAllowed   quotaValue `json:"paid_services_allowed"`
	TotalServiceInstances quotaValue `json:"total_service_instances"`
	TotalServiceKeys      quotaValue `json:"total_service_keys"`
}

// quotaRoutesRequest is the "routes" object of a quota request.
type quotaRoutesRequest struct {
	TotalRoutes        quotaValue `json:"total_routes"`
	TotalReservedPorts quotaValue `json:"total_reserved_ports"`
}

// quotaDomainsRequest is the "domains" object of an organization quota
// request.
type quotaDomainsRequest struct {
	TotalDomains quotaValue `json:"total_domains"`
}

// quotaRequest is the part of a quota create or update body that both quota
// kinds accept; it is the whole body of PATCH /v3/space_quotas/:guid. A
// group sent as null changes nothing, like an absent one.
type quotaRequest struct {
	Name     quotaValue            `json:"name"`
	Apps     *quotaAppsRequest     `json:"apps"`
	Services *quotaServicesRequest `json:"services"`
	Routes   *quotaRoutesRequest   `json:"routes"`
}

// quotaRelationshipGUID is one {"guid": …} of a relationship in a request.
type quotaRelationshipGUID struct {
	GUID string `json:"guid"`
}

// quotaToManyRequest is a to-many relationship in a request, and the body of
// the endpoints that apply a quota.
type quotaToManyRequest struct {
	Data *[]quotaRelationshipGUID `json:"data"`
}

// quotaToOneRequest is a to-one relationship in a request.
type quotaToOneRequest struct {
	Data *quotaRelationshipGUID `json:"data"`
}

// orgQuotaUpdateRequest is the body of PATCH /v3/organization_quotas/:guid.
type orgQuotaUpdateRequest struct {
	quotaRequest
	Domains *quotaDomainsRequest `json:"domains"`
}

// orgQuotaCreateRequest is the body of POST /v3/organization_quotas.
type orgQuotaCreateRequest struct {
	orgQuotaUpdateRequest
	Relationships *struct {
		Organizations *quotaToManyRequest `json:"organizations"`
	} `json:"relationships"`
}

// quotaChanges is a validated quota request: the name and limits it sets,
// the normalised request for the audit event, and every problem found.
type quotaChanges struct {
	name    *string
	limits  []func(*store.QuotaLimits)
	request map[string]any
	errs    []string
}

// parseQuotaRequest validates req and, for organization quotas, domains.
// Problems are collected in the result's errs so that one 422 names every
// invalid field, as Cloud Controller's does.
func parseQuotaRequest(req quotaRequest, domains *quotaDomainsRequest, nameRequired bool) *quotaChanges {
	c := &quotaChanges{request: map[string]any{}}
	c.parseName(req.Name, nameRequired)

	if apps := req.Apps; apps != nil {
		group := c.group("apps")
		c.limit(group, "apps", "total_memory_in_mb", apps.TotalMemoryInMB, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalMemoryInMB = v })
		c.limit(group, "apps", "per_process_memory_in_mb", apps.PerProcessMemoryInMB, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.PerProcessMemoryInMB = v })
		c.limit(group, "apps", "total_instances", apps.TotalInstances, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalInstances = v })
		c.limit(group, "apps", "per_app_tasks", apps.PerAppTasks, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.PerAppTasks = v })
		c.limit(group, "apps", "log_rate_limit_in_bytes_per_second", apps.LogRateLimitInBytesPerSecond, quotaMaxLogRateLimit,
			func(l *store.QuotaLimits, v *int64) { l.LogRateLimitInBytesPerSecond = v })
	}

	if services := req.Services; services != nil {
		group := c.group("services")
		c.paidServices(group, services.PaidServicesAllowed)
		c.limit(group, "services", "total_service_instances", services.TotalServiceInstances, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalServiceInstances = v })
		c.limit(group, "services", "total_service_keys", services.TotalServiceKeys, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalServiceKeys = v })
	}

	if routes := req.Routes; routes != nil {
		group := c.group("routes")
		c.limit(group, "routes", "total_routes", routes.TotalRoutes, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalRoutes = v })
		c.limit(group, "routes", "total_reserved_ports", routes.TotalReservedPorts, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalReservedPorts = v })
	}

	if domains != nil {
		c.limit(c.group("domains"), "domains", "total_domains", domains.TotalDomains, quotaMaxLimit,
			func(l *store.QuotaLimits, v *int64) { l.TotalDomains = v })
	}
	return c
}

// parseName validates the name with Cloud Controller's messages.
func (c *quotaChanges) parseName(v quotaValue, required bool) {
	if !v.present || v.isNull() {
		if required {
			c.errs = append(c.errs, "Name can't be blank")
		} else if v.present {
			c.errs = append(c.errs, "Name must be a string")
		}
		return
	}

	var name string
	if err := json.Unmarshal(v.raw, &name); err != nil {
		c.errs = append(c.errs, "Name must be a string")
		return
	}
	switch {
	case strings.TrimSpace(name) == "":
		c.errs = append(c.errs, "Name can't be blank")
	case utf8.RuneCountInString(name) > quotaMaxNameLength:
		c.errs = append(c.errs, fmt.Sprintf("Name is too long (maximum is %d characters)", quotaMaxNameLength))
	default:
		c.name = &name
		c.request["name"] = name
	}
}

// group returns the audit request object of one limit group.
func (c *quotaChanges) group(name string) map[string]any {
	g := map[string]any{}
	c.request[name] = g
	return g
}

// limit validates one limit: null is unlimited, anything else must be a
// JSON integer from 0 to max.
func (c *quotaChanges) limit(group map[string]any, groupName, field string, v quotaValue, max int64, set func(*store.QuotaLimits, *int64)) {
	if !v.present {
		return
	}
	var value *int64
	if !v.isNull() {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v.raw)), 10, 64)
		if err != nil || n < 0 || n > max {
			c.errs = append(c.errs, fmt.Sprintf("%s must be an integer from 0 to %d, or null for unlimited",
				fieldLabel(groupName+"."+field), max))
			return
		}
		value = &n
	}
	group[field] = value
	c.limits = append(c.limits, func(l *store.QuotaLimits) { set(l, value) })
}

// paidServices validates services.paid_services_allowed; null restores the
// default, true, as in Cloud Controller.
func (c *quotaChanges) paidServices(group map[string]any, v quotaValue) {
	if !v.present {
		return
	}
	allowed := true
	if !v.isNull() {
		if err := json.Unmarshal(v.raw, &allowed); err != nil {
			c.errs = append(c.errs, "Services.paid_services_allowed must be a boolean")
			return
		}
	}
	group["paid_services_allowed"] = allowed
	c.limits = append(c.limits, func(l *store.QuotaLimits) { l.PaidServicesAllowed = allowed })
}

func (c *quotaChanges) applyLimits(l *store.QuotaLimits) {
	for _, set := range c.limits {
		set(l)
	}
}

// err returns the 422 for the problems found, or nil.
func (c *quotaChanges) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return apierr.UnprocessableEntity(strings.Join(c.errs, ", "))
}

// checkReservedPorts applies Cloud Controller's rule for reserved ports: a
// quota may not reserve more ports than it allows routes. A space quota may
// also not exceed orgPorts, the reserved ports of its organization's quota,
// which is nil for organization quotas and when unlimited.
func checkReservedPorts(l store.QuotaLimits, orgPorts *int64) error {
	ports := l.TotalReservedPorts
	if ports == nil {
		return nil
	}
	if l.TotalRoutes != nil && *ports > *l.TotalRoutes {
		return apierr.UnprocessableEntity(fmt.Sprintf(
			"Routes.total_reserved_ports must be less than or equal to routes.total_routes (%d)", *l.TotalRoutes))
	}
	if orgPorts != nil && *ports > *orgPorts {
		return apierr.UnprocessableEntity(fmt.Sprintf(
			"Routes.total_reserved_ports must be less than or equal to the organization quota's total_reserved_ports (%d)", *orgPorts))
	}
	return nil
}

// relationshipGUIDs returns the guids of to-many relationship data, which
// label names in messages. data is nil when the request sent no array. With
// required, the array must name at least one resource.
func relationshipGUIDs(label string, data *[]quotaRelationshipGUID, required bool) ([]string, error) {
	if data == nil {
		return nil, apierr.UnprocessableEntity(label + ` must be an array, as in [{"guid": "valid-guid"}]`)
	}
	if required && len(*data) == 0 {
		return nil, apierr.UnprocessableEntity(label + ` must name one or more resources, as in [{"guid": "valid-guid"}]`)
	}
	guids := make([]string, len(*data))
	for i, ref := range *data {
		if ref.GUID == "" {
			return nil, apierr.UnprocessableEntity(fmt.Sprintf("%s[%d].guid must be a non-empty string", label, i))
		}
		guids[i] = ref.GUID
	}
	return guids, nil
}

// guidList renders guids as Cloud Controller does in its messages, a Ruby
// array literal such as ["a", "b"].
func guidList(guids []string) string {
	quoted := make([]string, len(guids))
	for i, g := range guids {
		quoted[i] = strconv.Quote(g)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// quotaEvent is an audit event of actor on a quota; the store fills the
// target.
func quotaEvent(actor *auth.Actor, eventType string, request map[string]any) store.AuditEvent {
	ev := store.AuditEvent{Type: eventType, ActorGUID: actor.UserGUID, ActorType: "user", ActorName: actor.DisplayName()}
	if request != nil {
		ev.Data = map[string]any{"request": request}
	}
	return ev
}

// quotaAppsJSON and the types below are the limit groups of both quota
// kinds; null is unlimited.
type quotaAppsJSON struct {
	TotalMemoryInMB              *int64 `json:"total_memory_in_mb"`
	PerProcessMemoryInMB         *int64 `json:"per_process_memory_in_mb"`
	TotalInstances               *int64 `json:"total_instances"`
	PerAppTasks                  *int64 `json:"per_app_tasks"`
	LogRateLimitInBytesPerSecond *int64 `json:"log_rate_limit_in_bytes_per_second"`
}

type quotaServicesJSON struct {
	// PaidServicesAllowed is never null: the cf CLI dereferences it.
	PaidServicesAllowed   bool   `json:"paid_services_allowed"`
	TotalServiceInstances *int64 `json:"total_service_instances"`
	TotalServiceKeys      *int64 `json:"total_service_keys"`
}

type quotaRoutesJSON struct {
	TotalRoutes        *int64 `json:"total_routes"`
	TotalReservedPorts *int64 `json:"total_reserved_ports"`
}

type quotaDomainsJSON struct {
	TotalDomains *int64 `json:"total_domains"`
}

func presentQuotaApps(l store.QuotaLimits) quotaAppsJSON {
	return quotaAppsJSON{
		TotalMemoryInMB:              l.TotalMemoryInMB,
		PerProcessMemoryInMB:         l.PerProcessMemoryInMB,
		TotalInstances:               l.TotalInstances,
		PerAppTasks:                  l.PerAppTasks,
		LogRateLimitInBytesPerSecond: l.LogRateLimitInBytesPerSecond,
	}
}

func presentQuotaServices(l store.QuotaLimits) quotaServicesJSON {
	return quotaServicesJSON{
		PaidServicesAllowed:   l.PaidServicesAllowed,
		TotalServiceInstances: l.TotalServiceInstances,
		TotalServiceKeys:      l.TotalServiceKeys,
	}
}

func presentQuotaRoutes(l store.QuotaLimits) quotaRoutesJSON {
	return quotaRoutesJSON{TotalRoutes: l.TotalRoutes, TotalReservedPorts: l.TotalReservedPorts}
}

// guidRefs turns guids into relationship data, never null.
func guidRefs(guids []string) []guidRef {
	refs := make([]guidRef, len(guids))
	for i, g := range guids {
		refs[i] = guidRef{GUID: g}
	}
	return refs
}

// quotaRelationshipJSON is the response body of the endpoints that apply a
// quota. It lists every resource now using the quota.
type quotaRelationshipJSON struct {
	Data  []guidRef `json:"data"`
	Links struct {
		Self link `json:"self"`
	} `json:"links"`
}

func (a *API) presentQuotaRelationship(path string, guids []string) quotaRelationshipJSON {
	out := quotaRelationshipJSON{Data: guidRefs(guids)}
	out.Links.Self = link{Href: a.url(path)}
	return out
}

type orgQuotaJSON struct {
	GUID          string            `json:"guid"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	Name          string            `json:"name"`
	Apps          quotaAppsJSON     `json:"apps"`
	Services      quotaServicesJSON `json:"services"`
	Routes        quotaRoutesJSON   `json:"routes"`
	Domains       quotaDomainsJSON  `json:"domains"`
	Relationships struct {
		Organizations toMany `json:"organizations"`
	} `json:"relationships"`
	Links struct {
		Self link `json:"self"`
	} `json:"links"`
}

func (a *API) presentOrganizationQuota(q store.OrganizationQuota) orgQuotaJSON {
	out := orgQuotaJSON{
		GUID:      q.GUID,
		CreatedAt: timestamp(q.CreatedAt),
		UpdatedAt: timestamp(q.UpdatedAt),
		Name:      q.Name,
		Apps:      presentQuotaApps(q.Limits),
		Services:  presentQuotaServices(q.Limits),
		Routes:    presentQuotaRoutes(q.Limits),
		Domains:   quotaDomainsJSON{TotalDomains: q.Limits.TotalDomains},
	}
	out.Relationships.Organizations = toMany{Data: guidRefs(q.OrganizationGUIDs)}
	out.Links.Self = link{Href: a.url("/v3/organization_quotas/", q.GUID)}
	return out
}

var orgQuotaListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "organization_guids"},
	orderBy: []string{"created_at", "updated_at"},
})

// listOrganizationQuotas serves GET /v3/organization_quotas. Admins and
// global readers see every quota; other users see the quotas of the
// organizations they can see, each listing only those organizations.
func (a *API) listOrganizationQuotas(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, orgQuotaListSpec)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}

	f := store.OrganizationQuotaFilter{CommonFilter: common, Names: q.filter("names"), OrganizationGUIDs: q.filter("organization_guids")}
	quotas, total, err := a.store.OrganizationQuotas(r.Context(), f, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]orgQuotaJSON, len(quotas))
	for i, quota := range quotas {
		resources[i] = a.presentOrganizationQuota(quota)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// getOrganizationQuota serves GET /v3/organization_quotas/:guid.
func (a *API) getOrganizationQuota(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, err := a.store.OrganizationQuota(r.Context(), pathParam(r, "guid"), visibility(r))
	if err != nil {
		return nil, notFoundAs(err, "Organization quota")
	}
	return ok(a.presentOrganizationQuota(quota)), nil
}

// requireOrganizationQuotaAdmin lets admins through to change the quota in
// r's path. Anyone else gets 404 when they cannot see the quota and 403
// when they can.
func (a *API) requireOrganizationQuotaAdmin(r *http.Request) error {
	if actorOf(r).IsAdmin() {
		return nil
	}
	if _, err := a.store.OrganizationQuota(r.Context(), pathParam(r, "guid"), visibility(r)); err != nil {
		return notFoundAs(err, "Organization quota")
	}
	return apierr.NotAuthorized()
}

// createOrganizationQuota serves POST /v3/organization_quotas for admins.
// Limits left out are unlimited; organizations named in
// relationships.organizations get the quota in the same transaction.
func (a *API) createOrganizationQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}

	var body orgQuotaCreateRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	changes := parseQuotaRequest(body.quotaRequest, body.Domains, true)
	if err := changes.err(); err != nil {
		return nil, err
	}
	var orgGUIDs []string
	if body.Relationships != nil && body.Relationships.Organizations != nil {
		var err error
		orgGUIDs, err = relationshipGUIDs("Relationships.organizations.data", body.Relationships.Organizations.Data, false)
		if err != nil {
			return nil, err
		}
		changes.request["relationships"] = map[string]any{"organizations": map[string]any{"data": guidRefs(orgGUIDs)}}
	}

	quota := store.OrganizationQuota{GUID: uuid.NewString(), Name: *changes.name, Limits: store.DefaultQuotaLimits()}
	changes.applyLimits(&quota.Limits)
	if err := checkReservedPorts(quota.Limits, nil); err != nil {
		return nil, err
	}

	stored, err := a.store.CreateOrganizationQuota(r.Context(), quota, orgGUIDs,
		quotaEvent(actor, "audit.organization_quota.create", changes.request))
	var unknown *store.UnknownGUIDsError
	switch {
	case store.IsUnique(err, store.OrganizationQuotaNameConstraint):
		return nil, errOrganizationQuotaExists(quota.Name)
	case errors.As(err, &unknown):
		return nil, apierr.UnprocessableEntity("Organizations with guids " + guidList(unknown.GUIDs) +
			" do not exist, or you do not have access to them.")
	case err != nil:
		return nil, err
	}
	return created(a.presentOrganizationQuota(stored)), nil
}

// errOrganizationQuotaExists is Cloud Controller's duplicate-name message,
// which the cf CLI matches to make create-org-quota idempotent.
func errOrganizationQuotaExists(name string) error {
	return apierr.UnprocessableEntity("Organization Quota '" + name + "' already exists.")
}

// updateOrganizationQuota serves PATCH /v3/organization_quotas/:guid for
// admins. Only the fields sent change; null makes a limit unlimited.
func (a *API) updateOrganizationQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	guid := pathParam(r, "guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireOrganizationQuotaAdmin(r); err != nil {
		return nil, err
	}

	var body orgQuotaUpdateRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	changes := parseQuotaRequest(body.quotaRequest, body.Domains, false)
	if err := changes.err(); err != nil {
		return nil, err
	}

	change := func(q *store.OrganizationQuota) error {
		if changes.name != nil {
			if q.Name == store.DefaultOrganizationQuota && *changes.name != q.Name {
				return apierr.UnprocessableEntity("The default organization quota cannot be renamed: new organizations get the quota named '" +
					store.DefaultOrganizationQuota + "'")
			}
			q.Name = *changes.name
		}
		changes.applyLimits(&q.Limits)
		return checkReservedPorts(q.Limits, nil)
	}
	updated, err := a.store.UpdateOrganizationQuota(r.Context(), guid, change,
		quotaEvent(actor, "audit.organization_quota.update", changes.request))
	switch {
	case store.IsUnique(err, store.OrganizationQuotaNameConstraint):
		return nil, errOrganizationQuotaExists(*changes.name)
	case err != nil:
		return nil, notFoundAs(err, "Organization quota")
	}
	return ok(a.presentOrganizationQuota(updated)), nil
}

// deleteOrganizationQuota serves DELETE /v3/organization_quotas/:guid for
// admins. The quota is gone when the 202 is sent; its job is already
// COMPLETE for the cf CLI to poll.
func (a *API) deleteOrganizationQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	guid := pathParam(r, "guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireOrganizationQuotaAdmin(r); err != nil {
		return nil, err
	}

	job := newJob(actor, opOrganizationQuotaDelete, "organization_quota", guid)
	err := a.store.DeleteOrganizationQuota(r.Context(), guid, job, quotaEvent(actor, "audit.organization_quota.delete", nil))
	switch {
	case errors.Is(err, store.ErrQuotaInUse):
		return nil, apierr.UnprocessableEntity("This quota is applied to one or more organizations. " +
			"Apply different quotas to those organizations before deleting.")
	case errors.Is(err, store.ErrDefaultOrganizationQuota):
		return nil, apierr.UnprocessableEntity("The default organization quota cannot be deleted: new organizations get it")
	case err != nil:
		return nil, notFoundAs(err, "Organization quota")
	}
	return accepted(a.jobURL(job.GUID), nil), nil
}

// applyOrganizationQuota serves POST
// /v3/organization_quotas/:guid/relationships/organizations for admins and
// returns every organization now using the quota.
func (a *API) applyOrganizationQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	guid := pathParam(r, "guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireOrganizationQuotaAdmin(r); err != nil {
		return nil, err
	}

	var body quotaToManyRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	orgGUIDs, err := relationshipGUIDs("Data", body.Data, true)
	if err != nil {
		return nil, err
	}

	all, err := a.store.ApplyOrganizationQuota(r.Context(), guid, orgGUIDs, quotaEvent(actor, "audit.organization_quota.apply", nil))
	var unknown *store.UnknownGUIDsError
	switch {
	case errors.As(err, &unknown):
		return nil, apierr.UnprocessableEntity("Organizations with guids " + guidList(unknown.GUIDs) + " do not exist")
	case err != nil:
		return nil, notFoundAs(err, "Organization quota")
	}
	return ok(a.presentQuotaRelationship("/v3/organization_quotas/"+guid+"/relationships/organizations", all)), nil
}
