package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Async operations of routes.
const (
	opRouteDelete         = "route.delete"
	opSpaceUnmappedRoutes = "space.delete_unmapped_routes"
)

func (a *API) routeRoutes() []route {
	const base = "/v3/routes"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listRoutes},
		{method: http.MethodPost, path: base, handler: a.createRoute},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getRoute},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateRoute},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteRoute},
		{method: http.MethodGet, path: base + "/{guid}/destinations", handler: a.listDestinations},
		{method: http.MethodPost, path: base + "/{guid}/destinations", handler: a.addDestinations},
		{method: http.MethodPatch, path: base + "/{guid}/destinations", handler: a.replaceDestinations},
		{method: http.MethodDelete, path: base + "/{guid}/destinations/{destination_guid}", handler: a.removeDestination},
		{method: http.MethodGet, path: base + "/{guid}/relationships/shared_spaces", handler: a.routeSharedSpaces},
		{method: http.MethodPost, path: base + "/{guid}/relationships/shared_spaces", handler: a.shareRoute},
		{method: http.MethodDelete, path: base + "/{guid}/relationships/shared_spaces/{space_guid}", handler: a.unshareRoute},
		{method: http.MethodPatch, path: base + "/{guid}/relationships/space", handler: a.transferRoute},
		{method: http.MethodGet, path: "/v3/apps/{guid}/routes", handler: a.listAppRoutes},
		{method: http.MethodDelete, path: "/v3/spaces/{guid}/routes", handler: a.deleteUnmappedRoutes},
	}
}

func (a *API) routeJobs() map[string]jobs.Func {
	return map[string]jobs.Func{
		opRouteDelete:         a.runRouteDelete,
		opSpaceUnmappedRoutes: a.runDeleteUnmappedRoutes,
	}
}

// routeCreatePayload is the body of POST /v3/routes. Protocol is a Ferry
// extension: "udp" on a TCP domain makes a UDP route.
type routeCreatePayload struct {
	Host          *string                    `json:"host"`
	Path          *string                    `json:"path"`
	Port          *int                       `json:"port"`
	Protocol      *string                    `json:"protocol"`
	Relationships *routeRelationshipsPayload `json:"relationships"`
	Options       map[string]any             `json:"options"`
	Metadata      *metadataPayload           `json:"metadata"`
}

type routeRelationshipsPayload struct {
	Space  *spaceOrganizationPayload `json:"space"`
	Domain *spaceOrganizationPayload `json:"domain"`
}

// routeUpdatePayload is the body of PATCH /v3/routes/:guid.
type routeUpdatePayload struct {
	Options  map[string]any   `json:"options"`
	Metadata *metadataPayload `json:"metadata"`
}

type routeJSON struct {
	GUID          string             `json:"guid"`
	CreatedAt     string             `json:"created_at"`
	UpdatedAt     string             `json:"updated_at"`
	Protocol      string             `json:"protocol"`
	Host          string             `json:"host"`
	Path          string             `json:"path"`
	Port          *int               `json:"port"`
	URL           string             `json:"url"`
	Destinations  []destinationJSON  `json:"destinations"`
	Options       map[string]any     `json:"options"`
	Metadata      metadataJSON       `json:"metadata"`
	Relationships routeRelationships `json:"relationships"`
	Links         map[string]link    `json:"links"`
}

type routeRelationships struct {
	Space  toOne `json:"space"`
	Domain toOne `json:"domain"`
}

func (a *API) presentRoute(rt store.Route) routeJSON {
	self := a.url("/v3/routes/", rt.GUID)
	body := routeJSON{
		GUID:         rt.GUID,
		CreatedAt:    timestamp(rt.CreatedAt),
		UpdatedAt:    timestamp(rt.UpdatedAt),
		Protocol:     rt.Protocol,
		Host:         rt.Host,
		Path:         rt.Path,
		URL:          rt.URL(),
		Destinations: presentDestinations(rt.Destinations),
		Options:      map[string]any{},
		Metadata:     presentMetadata(rt.Labels, rt.Annotations),
		Relationships: routeRelationships{
			Space:  relTo(rt.SpaceGUID),
			Domain: relTo(rt.DomainGUID),
		},
		Links: map[string]link{
			"self":         {Href: self},
			"space":        {Href: a.url("/v3/spaces/", rt.SpaceGUID)},
			"domain":       {Href: a.url("/v3/domains/", rt.DomainGUID)},
			"destinations": {Href: self + "/destinations"},
		},
	}
	if rt.HasPort() {
		port := rt.Port
		body.Port = &port
	}
	return body
}

var routeListSpec = withCommonFilters(listSpec{
	filters: []string{"app_guids", "domain_guids", "hosts", "labels", "label_selector", "organization_guids",
		"paths", "ports", "space_guids", "service_instance_guids"},
	orderBy:  []string{"created_at", "updated_at"},
	includes: []string{"domain", "space", "space.organization"},
})

// routeFilterOf reads the filters of a route list. hosts=, paths= and
// ports= with an empty value match routes without a host, path or port,
// as the cf CLI expects when it looks a route up.
func routeFilterOf(q *listQuery) (store.RouteFilter, error) {
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.RouteFilter{}, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return store.RouteFilter{}, err
	}
	f := store.RouteFilter{
		CommonFilter:      common,
		Hosts:             q.filter("hosts"),
		Paths:             q.filter("paths"),
		DomainGUIDs:       q.filter("domain_guids"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
		AppGUIDs:          q.filter("app_guids"),
		LabelSelector:     selector,
		// Ferry has no service instances, so no route is bound to one.
		MatchNothing: q.has("service_instance_guids"),
	}
	if ports := q.filter("ports"); ports != nil {
		f.Ports = []int{}
		for _, p := range ports {
			if p == "" {
				f.PortsIncludeNone = true
				continue
			}
			n, err := parsePort(p)
			if err != nil {
				return store.RouteFilter{}, apierr.BadQueryParameter("Ports must be a list of integers between 0 and 65535")
			}
			f.Ports = append(f.Ports, n)
		}
	}
	return f, nil
}

// parsePort parses a port number from 0 to 65535.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, errors.New("invalid port")
	}
	return n, nil
}

func (a *API) listRoutes(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, routeListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := routeFilterOf(q)
	if err != nil {
		return nil, err
	}
	return a.routeList(r, q, filter)
}

func (a *API) listAppRoutes(r *http.Request) (*response, error) {
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, routeListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := routeFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.routeList(r, q, filter)
}

func (a *API) routeList(r *http.Request, q *listQuery, filter store.RouteFilter) (*response, error) {
	ctx := r.Context()
	routes, total, err := a.store.Routes(ctx, filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]routeJSON, len(routes))
	for i, rt := range routes {
		resources[i] = a.presentRoute(rt)
	}
	body := a.list(r, q.page, total, resources)
	included, err := a.routeIncludes(ctx, r, q, routes)
	if err != nil {
		return nil, err
	}
	if len(included) > 0 {
		body.Included = included
	}
	return ok(body), nil
}

// routeIncludes reads the resources that include= requests, each kind in
// one query.
func (a *API) routeIncludes(ctx context.Context, r *http.Request, q *listQuery, routes []store.Route) (map[string]any, error) {
	included := map[string]any{}
	if q.includes("domain") {
		guids := make([]string, 0, len(routes))
		for _, rt := range routes {
			guids = append(guids, rt.DomainGUID)
		}
		domains := []domainJSON{}
		if len(guids) > 0 {
			found, _, err := a.store.Domains(ctx, store.DomainFilter{CommonFilter: store.CommonFilter{GUIDs: guids}},
				store.Page{Number: 1, PerPage: len(guids)}, visibility(r))
			if err != nil {
				return nil, err
			}
			for _, d := range found {
				domains = append(domains, a.presentDomain(d))
			}
		}
		included["domains"] = domains
	}
	if q.includes("space") || q.includes("space.organization") {
		guids := make([]string, 0, len(routes))
		for _, rt := range routes {
			guids = append(guids, rt.SpaceGUID)
		}
		spaces := []spaceJSON{}
		orgGUIDs := []string{}
		if len(guids) > 0 {
			found, _, err := a.store.Spaces(ctx, store.SpaceFilter{GUIDs: guids}, store.Page{Number: 1, PerPage: len(guids)}, visibility(r))
			if err != nil {
				return nil, err
			}
			for _, s := range found {
				spaces = append(spaces, a.presentSpace(s))
				orgGUIDs = append(orgGUIDs, s.OrganizationGUID)
			}
		}
		if q.includes("space") {
			included["spaces"] = spaces
		}
		if q.includes("space.organization") {
			orgs, err := a.spaceOrganizations(ctx, r, orgGUIDs)
			if err != nil {
				return nil, err
			}
			included["organizations"] = orgs
		}
	}
	return included, nil
}

// visibleRoute reads the route guid. A route the actor cannot see is a 404.
func (a *API) visibleRoute(r *http.Request, guid string) (store.Route, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Route{}, err
	}
	rt, err := a.store.Route(r.Context(), guid, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Route{}, apierr.NotFound("Route")
	}
	return rt, err
}

// routeForWrite reads the route of the path for a change by a space
// developer of the space that owns it, or an admin.
func (a *API) routeForWrite(r *http.Request) (store.Route, error) {
	rt, err := a.visibleRoute(r, pathParam(r, "guid"))
	if err != nil {
		return store.Route{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), rt.OrgGUID, rt.SpaceGUID, roleSpaceDeveloper); err != nil {
		return store.Route{}, err
	}
	return rt, nil
}

var routeGetSpec = listSpec{includes: []string{"domain", "space", "space.organization"}}

func (a *API) getRoute(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, routeGetSpec)
	if err != nil {
		return nil, err
	}
	if err := rejectUnknownParams(r.URL.Query(), []string{"include"}); err != nil {
		return nil, err
	}
	rt, err := a.visibleRoute(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	body := struct {
		routeJSON
		Included map[string]any `json:"included,omitempty"`
	}{routeJSON: a.presentRoute(rt)}
	included, err := a.routeIncludes(r.Context(), r, q, []store.Route{rt})
	if err != nil {
		return nil, err
	}
	if len(included) > 0 {
		body.Included = included
	}
	return ok(body), nil
}

// createRoute serves POST /v3/routes for admins and space developers of
// the route's space.
func (a *API) createRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var p routeCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateRouteCreate(&p); err != nil {
		return nil, err
	}

	space, domain, err := a.routeTargets(r, &p)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, space.OrganizationGUID, space.GUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}

	labels, annotations := metadataValues(p.Metadata)
	rt := store.Route{GUID: uuid.NewString(), Host: stringOr(p.Host, ""), Path: stringOr(p.Path, ""),
		DomainGUID: domain.GUID, DomainName: domain.Name, SpaceGUID: space.GUID, RouterGroupGUID: domain.RouterGroupGUID,
		Labels: labels, Annotations: annotations}
	if rt.Protocol, err = routeProtocolFor(domain, stringOr(p.Protocol, "")); err != nil {
		return nil, err
	}
	if err := a.checkRouteAgainstDomain(ctx, actor, &rt, p.Port, domain); err != nil {
		return nil, err
	}

	rt, err = a.insertRoute(ctx, actor, rt, p.Port == nil, routeRequest(&p))
	if err != nil {
		return nil, err
	}
	return created(a.presentRoute(rt)), nil
}

// insertRoute stores rt with its audit event. For a TCP or UDP route
// without a requested port it picks a free port of the router group, and
// picks again when another request took the same port first.
func (a *API) insertRoute(ctx context.Context, actor *auth.Actor, rt store.Route, pickPort bool, request map[string]any) (store.Route, error) {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if pickPort && rt.HasPort() {
			port, err := a.freeRouterGroupPort(ctx, rt.RouterGroupGUID, rt.Protocol)
			if err != nil {
				return store.Route{}, err
			}
			rt.Port = port
		}
		stored := rt
		err := a.store.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			if stored, err = store.CreateRoute(ctx, tx, rt); err != nil {
				return err
			}
			return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.create", stored, map[string]any{"request": request}))
		})
		if pickPort && attempt < attempts && store.IsUnique(err, store.ConstraintRouteRouterGroupPort) {
			continue
		}
		if err != nil {
			return store.Route{}, routeCreateError(err, rt)
		}
		return stored, nil
	}
}

// routeCreateError translates the store's errors on creating rt into Cloud
// Controller's messages.
func routeCreateError(err error, rt store.Route) error {
	var fkErr *store.ForeignKeyError
	switch {
	case store.IsUnique(err, store.ConstraintRouteHostDomainPath):
		switch {
		case rt.Path == "" && rt.Host == "":
			return apierr.UnprocessableEntity("Route already exists for domain '" + rt.DomainName + "'.")
		case rt.Path == "":
			return apierr.UnprocessableEntity("Route already exists with host '" + rt.Host + "' for domain '" + rt.DomainName + "'.")
		case rt.Host == "":
			return apierr.UnprocessableEntity("Route already exists with path '" + rt.Path + "' for domain '" + rt.DomainName + "'.")
		default:
			return apierr.UnprocessableEntity("Route already exists with host '" + rt.Host + "' and path '" + rt.Path +
				"' for domain '" + rt.DomainName + "'.")
		}
	case store.IsUnique(err, store.ConstraintRouteDomainPort):
		return apierr.UnprocessableEntity("Route already exists with port '" + strconv.Itoa(rt.Port) + "' for domain '" + rt.DomainName + "'.")
	case store.IsUnique(err, store.ConstraintRouteRouterGroupPort):
		return errPortUnavailable(rt.Port)
	case errors.As(err, &fkErr) && fkErr.Constraint == store.ConstraintRouteDomain:
		return errInvalidRouteDomain()
	case errors.As(err, &fkErr):
		return errInvalidRouteSpace()
	}
	return err
}

func errInvalidRouteSpace() error {
	return apierr.UnprocessableEntity("Invalid space. Ensure that the space exists and you have access to it.")
}

func errInvalidRouteDomain() error {
	return apierr.UnprocessableEntity("Invalid domain. Ensure that the domain exists and you have access to it.")
}

func errPortUnavailable(port int) error {
	return apierr.UnprocessableEntity("Port '" + strconv.Itoa(port) + "' is not available. Try a different port or use a different domain.")
}

// routeTargets reads the space and domain a route create request names. A
// space or domain the actor cannot see is a 422, as in Cloud Controller,
// because they are named in the body.
func (a *API) routeTargets(r *http.Request, p *routeCreatePayload) (store.Space, store.Domain, error) {
	ctx := r.Context()
	space, err := a.store.Space(ctx, p.Relationships.Space.Data.GUID, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, store.Domain{}, errInvalidRouteSpace()
	}
	if err != nil {
		return store.Space{}, store.Domain{}, err
	}
	domain, err := a.store.Domain(ctx, p.Relationships.Domain.Data.GUID, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, store.Domain{}, errInvalidRouteDomain()
	}
	if err != nil {
		return store.Space{}, store.Domain{}, err
	}
	if !domain.Shared() && domain.OrganizationGUID != space.OrganizationGUID {
		all, err := a.store.Domain(ctx, domain.GUID, store.Visibility{All: true})
		if err != nil {
			return store.Space{}, store.Domain{}, err
		}
		if !slices.Contains(all.SharedOrganizationGUIDs, space.OrganizationGUID) {
			org, err := a.store.Organization(ctx, space.OrganizationGUID, store.Visibility{All: true})
			if err != nil {
				return store.Space{}, store.Domain{}, err
			}
			return store.Space{}, store.Domain{}, apierr.UnprocessableEntity("Invalid domain. Domain '" + domain.Name +
				"' is not available in organization '" + org.Name + "'.")
		}
	}
	return space, domain, nil
}

// stringOr returns *s, or fallback when s is nil.
func stringOr(s *string, fallback string) string {
	if s == nil {
		return fallback
	}
	return *s
}

// updateRoute serves PATCH /v3/routes/:guid, which changes metadata. Ferry
// supports no route options, so options must be empty.
func (a *API) updateRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	rt, err := a.routeForWrite(r)
	if err != nil {
		return nil, err
	}
	var p routeUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateRouteOptions(p.Options); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if rt, err = store.UpdateRouteMetadata(ctx, tx, rt.GUID, metadataPatch(p.Metadata)); err != nil {
			return err
		}
		request := map[string]any{}
		if p.Metadata != nil {
			request["metadata"] = metadataRequest(p.Metadata)
		}
		return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.update", rt, map[string]any{"request": request}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Route")
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentRoute(rt)), nil
}

// deleteRoute serves DELETE /v3/routes/:guid: it records the request and
// starts a route.delete job.
func (a *API) deleteRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	rt, err := a.routeForWrite(r)
	if err != nil {
		return nil, err
	}
	job := newJob(actor, opRouteDelete, "route", rt.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.delete-request", rt,
			map[string]any{"request": map[string]any{"recursive": true}}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runRouteDelete is the route.delete job. Its destinations go with the
// route. Running it again after the route is gone succeeds.
func (a *API) runRouteDelete(ctx context.Context, job store.Job) error {
	return store.DeleteRoute(ctx, a.store.DB(), job.ResourceGUID)
}

// deleteUnmappedRoutes serves DELETE /v3/spaces/:guid/routes?unmapped=true,
// which cf delete-orphaned-routes calls, for admins and space developers.
// Cloud Controller requires unmapped=true.
func (a *API) deleteUnmappedRoutes(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := rejectUnknownParams(r.URL.Query(), []string{"unmapped"}); err != nil {
		return nil, err
	}
	if r.URL.Query().Get("unmapped") != "true" {
		return nil, apierr.BadQueryParameter("Mass delete not supported for routes. Use 'unmapped=true' parameter to delete all unmapped routes.")
	}
	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, space.OrganizationGUID, space.GUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	job := newJob(actor, opSpaceUnmappedRoutes, "space", space.GUID)
	if err := a.startJob(ctx, job); err != nil {
		return nil, err
	}
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runDeleteUnmappedRoutes is the space.delete_unmapped_routes job. It
// records an audit.route.delete-request event for each route it deletes,
// as the job's user.
func (a *API) runDeleteUnmappedRoutes(ctx context.Context, job store.Job) error {
	actor := &auth.Actor{UserGUID: job.UserGUID}
	if user, err := a.store.User(ctx, store.Visibility{All: true}, job.UserGUID); err == nil {
		actor.UserName = user.Username
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return a.store.InTx(ctx, func(tx *sql.Tx) error {
		routes, err := store.DeleteUnmappedRoutes(ctx, tx, job.ResourceGUID)
		if err != nil {
			return err
		}
		for _, rt := range routes {
			ev := routeEvent(actor, "audit.route.delete-request", rt, map[string]any{"request": map[string]any{"recursive": true}})
			if err := store.RecordAuditEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// routeEvent builds an audit event of actor on the route rt.
func routeEvent(actor *auth.Actor, eventType string, rt store.Route, data map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:             eventType,
		ActorGUID:        actor.UserGUID,
		ActorType:        "user",
		ActorName:        actor.DisplayName(),
		TargetGUID:       rt.GUID,
		TargetType:       "route",
		TargetName:       rt.Host,
		OrganizationGUID: rt.OrgGUID,
		SpaceGUID:        rt.SpaceGUID,
		Data:             data,
	}
}

// routeRequest is the data.request of a route's create event.
func routeRequest(p *routeCreatePayload) map[string]any {
	request := map[string]any{
		"relationships": map[string]any{
			"space":  map[string]any{"data": map[string]any{"guid": p.Relationships.Space.Data.GUID}},
			"domain": map[string]any{"data": map[string]any{"guid": p.Relationships.Domain.Data.GUID}},
		},
	}
	if p.Host != nil {
		request["host"] = *p.Host
	}
	if p.Path != nil {
		request["path"] = *p.Path
	}
	if p.Port != nil {
		request["port"] = *p.Port
	}
	if p.Protocol != nil {
		request["protocol"] = *p.Protocol
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}
