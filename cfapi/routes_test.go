package cfapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// routingFixture is an appFixture with the default domains and router
// group Ferry creates on start, and a private domain of its organization.
type routingFixture struct {
	*appFixture
	sharedDomain, internalDomain, privateDomain, tcpDomain string
	routerGroup                                            string
}

func newRoutingFixture(t *testing.T) *routingFixture {
	t.Helper()
	f := &routingFixture{appFixture: newAppFixture(t)}
	if err := f.env.store.EnsureDefaultRouting(context.Background(), "apps.ferry.test", "apps.internal", "1024-1026"); err != nil {
		t.Fatal(err)
	}
	var groups []routerGroupJSON
	f.env.do(http.MethodGet, "/routing/v1/router_groups", f.admin, nil).expect(http.StatusOK).decode(&groups)
	if len(groups) != 1 {
		t.Fatalf("router groups = %v, want default-tcp", groups)
	}
	f.routerGroup = groups[0].GUID

	f.sharedDomain = f.domainNamed("apps.ferry.test")
	f.internalDomain = f.domainNamed("apps.internal")
	f.privateDomain = f.createDomain(f.admin, map[string]any{"name": "acme.example.com",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": f.orgGUID}}}})
	f.tcpDomain = f.createDomain(f.admin, map[string]any{"name": "tcp.ferry.test", "router_group": map[string]any{"guid": f.routerGroup}})
	return f
}

func (f *routingFixture) domainNamed(name string) string {
	f.t.Helper()
	var list struct {
		Resources []domainJSON `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/domains?names="+name, f.admin, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 {
		f.t.Fatalf("domains named %s = %v", name, list.Resources)
	}
	return list.Resources[0].GUID
}

func (f *routingFixture) createDomain(token string, body map[string]any) string {
	f.t.Helper()
	var d domainJSON
	f.env.do(http.MethodPost, "/v3/domains", token, body).expect(http.StatusCreated).decode(&d)
	return d.GUID
}

// routeBody is a POST /v3/routes body. An empty host or path is left out.
func routeBody(spaceGUID, domainGUID, host, path string) map[string]any {
	body := map[string]any{"relationships": map[string]any{
		"space":  map[string]any{"data": map[string]any{"guid": spaceGUID}},
		"domain": map[string]any{"data": map[string]any{"guid": domainGUID}},
	}}
	if host != "" {
		body["host"] = host
	}
	if path != "" {
		body["path"] = path
	}
	return body
}

func (f *routingFixture) createRoute(token string, body map[string]any) routeJSON {
	f.t.Helper()
	var rt routeJSON
	f.env.do(http.MethodPost, "/v3/routes", token, body).expect(http.StatusCreated).decode(&rt)
	return rt
}

// runJobs runs every pending job and checks that the job at location
// completed.
func (f *routingFixture) runJobs(location string) {
	f.t.Helper()
	f.env.runner.RunPending(context.Background())
	job := f.env.do(http.MethodGet, strings.TrimPrefix(location, f.env.server.URL), f.admin, nil).expect(http.StatusOK).object()
	if job["state"] != "COMPLETE" {
		f.t.Fatalf("job %s: %v", location, job)
	}
}

func TestRouteCreateAndGet(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env

	body := routeBody(f.spaceGUID, f.sharedDomain, "shop", "/cart")
	body["metadata"] = map[string]any{"labels": map[string]any{"tier": "web"}}
	created := env.do(http.MethodPost, "/v3/routes", f.developer, body).expect(http.StatusCreated).object()
	guid := created["guid"].(string)
	self := env.server.URL + "/v3/routes/" + guid
	want := map[string]any{
		"guid": guid, "protocol": "http", "host": "shop", "path": "/cart", "port": nil,
		"url": "shop.apps.ferry.test/cart", "destinations": []any{}, "options": map[string]any{},
		"metadata": map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{}},
		"relationships": map[string]any{
			"space":  map[string]any{"data": map[string]any{"guid": f.spaceGUID}},
			"domain": map[string]any{"data": map[string]any{"guid": f.sharedDomain}},
		},
		"links": map[string]any{
			"self":         map[string]any{"href": self},
			"space":        map[string]any{"href": env.server.URL + "/v3/spaces/" + f.spaceGUID},
			"domain":       map[string]any{"href": env.server.URL + "/v3/domains/" + f.sharedDomain},
			"destinations": map[string]any{"href": self + "/destinations"},
		},
	}
	delete(created, "created_at")
	delete(created, "updated_at")
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created route (-want +got):\n%s", diff)
	}

	got := env.do(http.MethodGet, "/v3/routes/"+guid+"?include=domain,space.organization", f.auditor, nil).expect(http.StatusOK).object()
	included, _ := got["included"].(map[string]any)
	if domains, _ := included["domains"].([]any); len(domains) != 1 {
		t.Errorf("included domains = %v, want the route's domain", included["domains"])
	}
	if orgs, _ := included["organizations"].([]any); len(orgs) != 1 {
		t.Errorf("included organizations = %v, want the space's organization", included["organizations"])
	}
	_, _, detail := env.do(http.MethodGet, "/v3/routes/"+guid, f.stranger, nil).expect(http.StatusNotFound).cfError()
	if detail != "Route not found" {
		t.Errorf("route seen by a stranger: detail = %q, want Route not found", detail)
	}

	events := f.events(guid)
	if len(events) != 1 || events[0].Type != "audit.route.create" || events[0].SpaceGUID != f.spaceGUID {
		t.Errorf("events = %+v, want one audit.route.create in the space", events)
	}

	// A private domain takes routes without a host, and an admin may create
	// a wildcard route on a shared domain.
	bare := f.createRoute(f.developer, routeBody(f.spaceGUID, f.privateDomain, "", ""))
	if bare.URL != "acme.example.com" {
		t.Errorf("route on the private domain: url = %q, want acme.example.com", bare.URL)
	}
	wildcard := f.createRoute(f.admin, routeBody(f.spaceGUID, f.sharedDomain, "*", ""))
	if wildcard.URL != "*.apps.ferry.test" {
		t.Errorf("wildcard route: url = %q", wildcard.URL)
	}
}

func TestRouteCreateRejectsBadInput(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "taken", ""))
	f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "taken", "/p"))
	f.createRoute(f.developer, routeBody(f.spaceGUID, f.privateDomain, "", ""))
	tcp := routeBody(f.spaceGUID, f.tcpDomain, "", "")
	tcp["port"] = 1024
	f.createRoute(f.developer, tcp)
	f.createDomain(f.admin, map[string]any{"name": "shop.apps.ferry.test"})

	otherOrg := f.org("other")
	otherSpace := f.space(otherOrg, "elsewhere")

	withPort := func(body map[string]any, port any) map[string]any {
		body["port"] = port
		return body
	}
	cases := []struct {
		name   string
		token  string
		body   map[string]any
		detail string
	}{
		{"host characters", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "bad.host", ""),
			`Host must be either "*" or contain only alphanumeric characters, "_", or "-"`},
		{"host length", f.developer, routeBody(f.spaceGUID, f.sharedDomain, strings.Repeat("h", 64), ""),
			"Host is too long (maximum is 63 characters)"},
		{"path without slash", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "cart"), "Path must begin with /"},
		{"path with question mark", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "/cart?x=1"), "Path cannot contain ?"},
		{"path exactly slash", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "/"), "Path cannot be exactly /"},
		{"path with fragment", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "/cart#top"), "Path is invalid."},
		{"path with dot dot", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "/a/../b"), "Path is invalid."},
		{"path too long", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "a", "/"+strings.Repeat("p", 128)),
			"Path is too long (maximum is 128 characters)"},
		{"missing relationships", f.developer, map[string]any{"host": "a"}, "Relationships can't be blank"},
		{"missing host on shared domain", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "", ""),
			"Missing host. Routes in shared domains must have a host defined."},
		{"wildcard by developer", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "*", ""),
			"You do not have sufficient permissions to create a route with a wildcard host on a domain not scoped to an organization."},
		{"port on http route", f.developer, withPort(routeBody(f.spaceGUID, f.sharedDomain, "a", ""), 8080),
			"Routes with protocol 'http' do not support ports."},
		{"port out of range", f.developer, withPort(routeBody(f.spaceGUID, f.tcpDomain, "", ""), 70000),
			"Port must be less than or equal to 65535"},
		{"port outside router group", f.developer, withPort(routeBody(f.spaceGUID, f.tcpDomain, "", ""), 2000),
			"Port '2000' is not available. Try a different port or use a different domain."},
		{"host on tcp route", f.developer, withPort(routeBody(f.spaceGUID, f.tcpDomain, "a", ""), 1025),
			"Hosts are not supported for TCP routes."},
		{"path on tcp route", f.developer, withPort(routeBody(f.spaceGUID, f.tcpDomain, "", "/a"), 1025),
			"Paths are not supported for TCP routes."},
		{"path on internal domain", f.developer, routeBody(f.spaceGUID, f.internalDomain, "a", "/a"),
			"Paths are not supported for internal domains."},
		{"wildcard on internal domain", f.admin, routeBody(f.spaceGUID, f.internalDomain, "*", ""),
			"Wildcard hosts are not supported for internal domains."},
		{"duplicate host", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "TAKEN", ""),
			"Route already exists with host 'TAKEN' for domain 'apps.ferry.test'."},
		{"duplicate host and path", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "taken", "/p"),
			"Route already exists with host 'taken' and path '/p' for domain 'apps.ferry.test'."},
		{"duplicate bare domain", f.developer, routeBody(f.spaceGUID, f.privateDomain, "", ""),
			"Route already exists for domain 'acme.example.com'."},
		{"duplicate port", f.developer, withPort(routeBody(f.spaceGUID, f.tcpDomain, "", ""), 1024),
			"Route already exists with port '1024' for domain 'tcp.ferry.test'."},
		{"conflict with domain", f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""),
			"Route conflicts with domain 'shop.apps.ferry.test'."},
		{"unknown space", f.developer, routeBody("no-such-space", f.sharedDomain, "a", ""),
			"Invalid space. Ensure that the space exists and you have access to it."},
		{"unknown domain", f.developer, routeBody(f.spaceGUID, "no-such-domain", "a", ""),
			"Invalid domain. Ensure that the domain exists and you have access to it."},
		{"private domain of another org", f.admin, routeBody(otherSpace, f.privateDomain, "a", ""),
			"Invalid domain. Domain 'acme.example.com' is not available in organization 'other'."},
		{"options", f.developer, func() map[string]any {
			b := routeBody(f.spaceGUID, f.sharedDomain, "a", "")
			b["options"] = map[string]any{"loadbalancing": "round-robin"}
			return b
		}(), "Options 'loadbalancing' are not supported: Ferry routes take no options, so remove the options field"},
	}
	before := f.count(`SELECT count(*) FROM routes`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, detail := env.do(http.MethodPost, "/v3/routes", c.token, c.body).expect(http.StatusUnprocessableEntity).cfError()
			if code != 10008 {
				t.Errorf("code = %d, want 10008", code)
			}
			if detail != c.detail {
				t.Errorf("detail = %q, want %q", detail, c.detail)
			}
		})
	}
	if after := f.count(`SELECT count(*) FROM routes`); after != before {
		t.Errorf("routes after rejected creates = %d, want %d", after, before)
	}
}

func TestRouteCreatePermissions(t *testing.T) {
	f := newRoutingFixture(t)
	for _, c := range []struct {
		name   string
		token  string
		status int
	}{
		{"admin", f.admin, http.StatusCreated},
		{"space developer", f.developer, http.StatusCreated},
		{"space supporter", f.supporter, http.StatusForbidden},
		{"space auditor", f.auditor, http.StatusForbidden},
		{"space manager", f.spaceManager, http.StatusForbidden},
		{"org manager", f.orgManager, http.StatusForbidden},
		{"org user", f.orgUser, http.StatusUnprocessableEntity},
		{"global auditor", f.globalAuditor, http.StatusForbidden},
		{"read-only admin", f.readOnlyAdmin, http.StatusForbidden},
		{"stranger", f.stranger, http.StatusUnprocessableEntity},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := strings.ReplaceAll(c.name, " ", "-")
			f.env.do(http.MethodPost, "/v3/routes", c.token, routeBody(f.spaceGUID, f.sharedDomain, host, "")).expect(c.status)
		})
	}
}

func TestRouteListFilters(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	shop := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""))
	shopCart := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", "/cart"))
	bare := f.createRoute(f.developer, routeBody(f.spaceGUID, f.privateDomain, "", ""))
	tcpBody := routeBody(f.spaceGUID, f.tcpDomain, "", "")
	tcpBody["port"] = 1025
	tcp := f.createRoute(f.developer, tcpBody)

	guidsOf := func(path, token string) []string {
		t.Helper()
		var list struct {
			Resources []routeJSON `json:"resources"`
		}
		env.do(http.MethodGet, path, token, nil).expect(http.StatusOK).decode(&list)
		guids := []string{}
		for _, rt := range list.Resources {
			guids = append(guids, rt.GUID)
		}
		return guids
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{shop.GUID, shopCart.GUID, bare.GUID, tcp.GUID}},
		{"?hosts=shop&paths=", []string{shop.GUID}},
		{"?hosts=SHOP&paths=/cart", []string{shopCart.GUID}},
		{"?hosts=&paths=&domain_guids=" + f.privateDomain, []string{bare.GUID}},
		{"?ports=1025", []string{tcp.GUID}},
		{"?hosts=&paths=&ports=", []string{bare.GUID}},
		{"?ports=,1025&domain_guids=" + f.privateDomain + "," + f.tcpDomain, []string{bare.GUID, tcp.GUID}},
		{"?space_guids=" + f.spaceGUID + "&organization_guids=" + f.orgGUID + "&per_page=2", []string{shop.GUID, shopCart.GUID}},
		{"?service_instance_guids=x", []string{}},
		{"?order_by=-created_at&hosts=shop", []string{shopCart.GUID, shop.GUID}},
	} {
		if diff := cmp.Diff(c.want, guidsOf("/v3/routes"+c.query, f.admin)); diff != "" {
			t.Errorf("GET /v3/routes%s (-want +got):\n%s", c.query, diff)
		}
	}
	if got := guidsOf("/v3/routes", f.stranger); len(got) != 0 {
		t.Errorf("routes seen by a stranger = %v, want none", got)
	}
	if got := guidsOf("/v3/routes", f.auditor); len(got) != 4 {
		t.Errorf("routes seen by a space auditor = %v, want 4", got)
	}
	env.do(http.MethodGet, "/v3/routes?ports=http", f.admin, nil).expect(http.StatusBadRequest)
	env.do(http.MethodGet, "/v3/routes?colour=red", f.admin, nil).expect(http.StatusBadRequest)

	// The route reservation check of cf check-route.
	for _, c := range []struct {
		query string
		want  bool
	}{
		{"?host=shop", true},
		{"?host=shop&path=/cart", true},
		{"?host=shop&path=/other", false},
		{"?host=nope", false},
	} {
		var got struct {
			MatchingRoute bool `json:"matching_route"`
		}
		env.do(http.MethodGet, "/v3/domains/"+f.sharedDomain+"/route_reservations"+c.query, f.developer, nil).expect(http.StatusOK).decode(&got)
		if got.MatchingRoute != c.want {
			t.Errorf("route_reservations%s = %v, want %v", c.query, got.MatchingRoute, c.want)
		}
	}
}

func TestTCPRoutePorts(t *testing.T) {
	f := newRoutingFixture(t)
	first := f.createRoute(f.developer, routeBody(f.spaceGUID, f.tcpDomain, "", ""))
	if first.Port == nil || *first.Port != 1024 || first.Protocol != "tcp" || first.URL != "tcp.ferry.test:1024" {
		t.Fatalf("first TCP route = %+v, want port 1024", first)
	}
	// Another domain of the same router group shares its ports.
	other := f.createDomain(f.admin, map[string]any{"name": "tcp2.ferry.test", "router_group": map[string]any{"guid": f.routerGroup}})
	body := routeBody(f.spaceGUID, other, "", "")
	body["port"] = 1024
	_, _, detail := f.env.do(http.MethodPost, "/v3/routes", f.developer, body).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Port '1024' is not available. Try a different port or use a different domain." {
		t.Errorf("port taken in the router group: detail = %q", detail)
	}
	f.createRoute(f.developer, routeBody(f.spaceGUID, other, "", ""))
	f.createRoute(f.developer, routeBody(f.spaceGUID, f.tcpDomain, "", ""))
	_, _, detail = f.env.do(http.MethodPost, "/v3/routes", f.developer, routeBody(f.spaceGUID, f.tcpDomain, "", "")).
		expect(http.StatusUnprocessableEntity).cfError()
	if detail != "There are no more ports available for this domain." {
		t.Errorf("router group full: detail = %q", detail)
	}
}

func TestRouteDestinations(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	web := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	api := f.app(appBody("api", f.spaceGUID))["guid"].(string)
	rt := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""))
	base := "/v3/routes/" + rt.GUID + "/destinations"

	type destinationList struct {
		Destinations []destinationJSON `json:"destinations"`
	}
	var list destinationList
	env.do(http.MethodPost, base, f.developer, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}},
		map[string]any{"app": map[string]any{"guid": api, "process": map[string]any{"type": "api"}}, "port": 9000, "protocol": "http2"},
	}}).expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 2 {
		t.Fatalf("destinations = %+v, want 2", list.Destinations)
	}
	d0, d1 := list.Destinations[0], list.Destinations[1]
	if d0.App.GUID != web || d0.App.Process.Type != "web" || d0.Port != 8080 || d0.Protocol != "http1" || d0.Weight != nil {
		t.Errorf("first destination = %+v, want web on 8080 over http1", d0)
	}
	if d1.App.GUID != api || d1.App.Process.Type != "api" || d1.Port != 9000 || d1.Protocol != "http2" {
		t.Errorf("second destination = %+v, want api on 9000 over http2", d1)
	}

	// Adding an existing destination again keeps one.
	env.do(http.MethodPost, base, f.developer, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}}}}).expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 2 {
		t.Errorf("destinations after adding one again = %d, want 2", len(list.Destinations))
	}

	var appRoutes struct {
		Resources []routeJSON `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/apps/"+web+"/routes", f.auditor, nil).expect(http.StatusOK).decode(&appRoutes)
	if len(appRoutes.Resources) != 1 || appRoutes.Resources[0].GUID != rt.GUID {
		t.Errorf("routes of the app = %+v, want the shop route", appRoutes.Resources)
	}
	var mapEvents []recordedEvent
	for _, ev := range f.events(web) {
		if ev.Type == "audit.app.map-route" {
			mapEvents = append(mapEvents, ev)
		}
	}
	if len(mapEvents) != 1 || mapEvents[0].Data["route_guid"] != rt.GUID || mapEvents[0].ActorName != "developer" {
		t.Errorf("map-route events of the app = %+v, want one by developer for the route", mapEvents)
	}

	// Weighted destinations replace the list and cannot be removed singly.
	env.do(http.MethodPatch, base, f.developer, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}, "weight": 70},
		map[string]any{"app": map[string]any{"guid": api}, "weight": 30},
	}}).expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 2 || list.Destinations[0].Weight == nil || *list.Destinations[0].Weight != 70 {
		t.Fatalf("weighted destinations = %+v", list.Destinations)
	}
	_, _, detail := env.do(http.MethodDelete, base+"/"+list.Destinations[0].GUID, f.developer, nil).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Weighted destinations cannot be deleted individually." {
		t.Errorf("delete weighted destination: detail = %q", detail)
	}

	env.do(http.MethodPatch, base, f.developer, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}}}}).expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 1 || list.Destinations[0].Weight != nil {
		t.Fatalf("destinations after replace = %+v, want one unweighted", list.Destinations)
	}
	env.do(http.MethodDelete, base+"/"+list.Destinations[0].GUID, f.developer, nil).expect(http.StatusNoContent)
	_, _, detail = env.do(http.MethodDelete, base+"/"+list.Destinations[0].GUID, f.developer, nil).expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Unable to unmap route from destination. Ensure the route has a destination with this guid." {
		t.Errorf("delete a removed destination: detail = %q", detail)
	}
	env.do(http.MethodGet, base, f.auditor, nil).expect(http.StatusOK).decode(&list)
	if len(list.Destinations) != 0 {
		t.Errorf("destinations at the end = %+v, want none", list.Destinations)
	}
	env.do(http.MethodPost, base, f.auditor, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}}}}).expect(http.StatusForbidden)
}

func TestRouteDestinationsRejectBadInput(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	web := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	otherSpace := f.space(f.orgGUID, "other")
	elsewhere := f.app(appBody("elsewhere", otherSpace))["guid"].(string)
	rt := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""))
	tcp := f.createRoute(f.developer, routeBody(f.spaceGUID, f.tcpDomain, "", ""))
	dest := func(fields map[string]any) map[string]any {
		d := map[string]any{"app": map[string]any{"guid": web}}
		for k, v := range fields {
			d[k] = v
		}
		return d
	}

	cases := []struct {
		name, method, route string
		destinations        any
		detail              string
	}{
		{"empty add", http.MethodPost, rt.GUID, []any{}, "Destinations must be an array containing between 1 and 100 destination objects."},
		{"missing app", http.MethodPost, rt.GUID, []any{map[string]any{"port": 9000}},
			`Destinations[0]: app must have the structure {"guid": "app_guid"}`},
		{"weight on add", http.MethodPost, rt.GUID, []any{dest(map[string]any{"weight": 100})},
			"Destinations[0]: weighted destinations can only be used when replacing all destinations."},
		{"low port", http.MethodPost, rt.GUID, []any{dest(map[string]any{"port": 80})},
			"Destinations[0]: port must be a positive integer between 1024 and 65535 inclusive."},
		{"bad protocol", http.MethodPost, rt.GUID, []any{dest(map[string]any{"protocol": "quic"})},
			"Destinations[0]: protocol must be 'http1', 'http2', 'tcp' or 'udp'."},
		{"tcp on http route", http.MethodPost, rt.GUID, []any{dest(map[string]any{"protocol": "tcp"})},
			"Destination protocol must be 'http1' or 'http2' if the parent route's protocol is 'http'"},
		{"http on tcp route", http.MethodPost, tcp.GUID, []any{dest(map[string]any{"protocol": "http1"})},
			"Destination protocol must be 'tcp' if the parent route's protocol is 'tcp'"},
		{"weights not summing to 100", http.MethodPatch, rt.GUID, []any{dest(map[string]any{"weight": 50}),
			dest(map[string]any{"weight": 40, "port": 9000})}, "Destinations must have weights that sum to 100."},
		{"mixed weights", http.MethodPatch, rt.GUID, []any{dest(map[string]any{"weight": 100}), dest(map[string]any{"port": 9000})},
			"Destinations cannot contain both weighted and unweighted destinations."},
		{"duplicates", http.MethodPatch, rt.GUID, []any{dest(nil), dest(nil)}, "Destinations cannot contain duplicate entries"},
		{"unknown app", http.MethodPost, rt.GUID, []any{map[string]any{"app": map[string]any{"guid": "nope"}}},
			`App(s) with guid(s) "nope" do not exist or you do not have access.`},
		{"app in another space", http.MethodPost, rt.GUID, []any{map[string]any{"app": map[string]any{"guid": elsewhere}}},
			"Routes cannot be mapped to destinations in different spaces."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, detail := env.do(c.method, "/v3/routes/"+c.route+"/destinations", f.admin,
				map[string]any{"destinations": c.destinations}).expect(http.StatusUnprocessableEntity).cfError()
			if detail != c.detail {
				t.Errorf("detail = %q, want %q", detail, c.detail)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM route_destinations`); n != 0 {
		t.Errorf("destinations after rejected requests = %d, want 0", n)
	}
}

func TestRouteUpdateAndDelete(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	rt := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""))

	updated := env.do(http.MethodPatch, "/v3/routes/"+rt.GUID, f.developer, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"env": "prod"}, "annotations": map[string]any{"note": "x"}},
	}).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"labels": map[string]any{"env": "prod"}, "annotations": map[string]any{"note": "x"}},
		updated["metadata"]); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	env.do(http.MethodPatch, "/v3/routes/"+rt.GUID, f.auditor, map[string]any{"metadata": map[string]any{}}).expect(http.StatusForbidden)
	env.do(http.MethodDelete, "/v3/routes/"+rt.GUID, f.auditor, nil).expect(http.StatusForbidden)

	resp := env.do(http.MethodDelete, "/v3/routes/"+rt.GUID, f.developer, nil).expect(http.StatusAccepted)
	f.runJobs(resp.Header.Get("Location"))
	env.do(http.MethodGet, "/v3/routes/"+rt.GUID, f.admin, nil).expect(http.StatusNotFound)
	var types []string
	for _, ev := range f.events(rt.GUID) {
		types = append(types, ev.Type)
	}
	if diff := cmp.Diff([]string{"audit.route.create", "audit.route.update", "audit.route.delete-request"}, types); diff != "" {
		t.Errorf("route events (-want +got):\n%s", diff)
	}
}

func TestDeleteUnmappedRoutes(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	web := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	mapped := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "mapped", ""))
	unmapped := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "unmapped", ""))
	env.do(http.MethodPost, "/v3/routes/"+mapped.GUID+"/destinations", f.developer, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": web}}}}).expect(http.StatusOK)

	_, _, detail := env.do(http.MethodDelete, "/v3/spaces/"+f.spaceGUID+"/routes", f.developer, nil).expect(http.StatusBadRequest).cfError()
	if !strings.Contains(detail, "unmapped=true") {
		t.Errorf("mass delete without unmapped: detail = %q", detail)
	}
	env.do(http.MethodDelete, "/v3/spaces/"+f.spaceGUID+"/routes?unmapped=true", f.auditor, nil).expect(http.StatusForbidden)
	resp := env.do(http.MethodDelete, "/v3/spaces/"+f.spaceGUID+"/routes?unmapped=true", f.developer, nil).expect(http.StatusAccepted)
	f.runJobs(resp.Header.Get("Location"))

	env.do(http.MethodGet, "/v3/routes/"+mapped.GUID, f.admin, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/routes/"+unmapped.GUID, f.admin, nil).expect(http.StatusNotFound)
	events := f.events(unmapped.GUID)
	if len(events) != 2 || events[1].Type != "audit.route.delete-request" {
		t.Errorf("events of the unmapped route = %+v, want a delete request", events)
	}
}

func TestRouteSharingAndTransfer(t *testing.T) {
	f := newRoutingFixture(t)
	env := f.env
	rt := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "shop", ""))
	target := f.space(f.orgGUID, "target")
	base := "/v3/routes/" + rt.GUID + "/relationships/shared_spaces"
	share := map[string]any{"data": []any{map[string]any{"guid": target}}}

	_, title, _ := env.do(http.MethodPost, base, f.admin, share).expect(http.StatusForbidden).cfError()
	if title != "CF-FeatureDisabled" {
		t.Errorf("share with route_sharing off: title = %q, want CF-FeatureDisabled", title)
	}
	f.enableFlag("route_sharing", true)

	// The developer cannot write to the target space yet.
	_, _, detail := env.do(http.MethodPost, base, f.developer, share).expect(http.StatusUnprocessableEntity).cfError()
	if !strings.Contains(detail, "Ensure the spaces exist") {
		t.Errorf("share into an invisible space: detail = %q", detail)
	}
	_, _, detail = env.do(http.MethodPost, base, f.admin, map[string]any{"data": []any{map[string]any{"guid": f.spaceGUID}}}).
		expect(http.StatusUnprocessableEntity).cfError()
	if detail != "Unable to share route 'shop.apps.ferry.test' with space '"+f.spaceGUID+"'. Routes cannot be shared into the space where they were created." {
		t.Errorf("share into the owner: detail = %q", detail)
	}

	var shared struct {
		Data []guidRef `json:"data"`
	}
	env.do(http.MethodPost, base, f.admin, share).expect(http.StatusOK).decode(&shared)
	if len(shared.Data) != 1 || shared.Data[0].GUID != target {
		t.Errorf("shared spaces = %+v, want the target", shared.Data)
	}
	// cf routes lists the routes of the targeted space with space_guids, and
	// Cloud Controller includes the routes shared into that space.
	var inTarget struct {
		Resources []routeJSON `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/routes?space_guids="+target, f.admin, nil).expect(http.StatusOK).decode(&inTarget)
	if len(inTarget.Resources) != 1 || inTarget.Resources[0].GUID != rt.GUID {
		t.Errorf("routes of the target space = %+v, want the shared route", inTarget.Resources)
	}
	// An app in the shared space may be mapped to the route.
	app := f.app(appBody("guest", target))["guid"].(string)
	env.do(http.MethodPost, "/v3/routes/"+rt.GUID+"/destinations", f.admin, map[string]any{"destinations": []any{
		map[string]any{"app": map[string]any{"guid": app}}}}).expect(http.StatusOK)

	env.do(http.MethodPatch, "/v3/routes/"+rt.GUID+"/relationships/space", f.admin,
		map[string]any{"data": map[string]any{"guid": target}}).expect(http.StatusOK)
	var moved routeJSON
	env.do(http.MethodGet, "/v3/routes/"+rt.GUID, f.admin, nil).expect(http.StatusOK).decode(&moved)
	if moved.Relationships.Space.Data == nil || moved.Relationships.Space.Data.GUID != target {
		t.Errorf("space after transfer = %+v, want the target", moved.Relationships.Space)
	}
	env.do(http.MethodGet, base, f.admin, nil).expect(http.StatusOK).decode(&shared)
	if len(shared.Data) != 1 || shared.Data[0].GUID != f.spaceGUID {
		t.Errorf("shared spaces after transfer = %+v, want the former owner", shared.Data)
	}
	env.do(http.MethodDelete, base+"/"+f.spaceGUID, f.admin, nil).expect(http.StatusNoContent)
	env.do(http.MethodGet, base, f.admin, nil).expect(http.StatusOK).decode(&shared)
	if len(shared.Data) != 0 {
		t.Errorf("shared spaces after unshare = %+v, want none", shared.Data)
	}
}

func TestDeploymentListIsEmpty(t *testing.T) {
	env := newTestEnv(t)
	admin := env.adminToken()

	var body struct {
		Resources []any `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/deployments?app_guids=a&order_by=-created_at&page=1&per_page=1&status_values=ACTIVE", admin, nil).
		expect(http.StatusOK).decode(&body)
	if body.Resources == nil || len(body.Resources) != 0 {
		t.Errorf("deployments = %v, want an empty array", body.Resources)
	}
	_, _, detail := env.do(http.MethodGet, "/v3/deployments/x", admin, nil).expect(http.StatusNotFound).cfError()
	if detail != "Deployment not found" {
		t.Errorf("deployment: detail = %q, want Deployment not found", detail)
	}
	_, _, detail = env.do(http.MethodGet, "/v3/apps/no-such-app/routes", admin, nil).expect(http.StatusNotFound).cfError()
	if detail != "App not found" {
		t.Errorf("routes of a missing app: detail = %q, want App not found", detail)
	}
}

func TestRouteWritePermissions(t *testing.T) {
	f := newRoutingFixture(t)
	web := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	for _, c := range []struct {
		name   string
		token  string
		status int
	}{
		{"admin", f.admin, http.StatusOK},
		{"space developer", f.developer, http.StatusOK},
		{"space supporter", f.supporter, http.StatusForbidden},
		{"space auditor", f.auditor, http.StatusForbidden},
		{"space manager", f.spaceManager, http.StatusForbidden},
		{"org manager", f.orgManager, http.StatusForbidden},
		{"org user", f.orgUser, http.StatusNotFound},
		{"global auditor", f.globalAuditor, http.StatusForbidden},
		{"read-only admin", f.readOnlyAdmin, http.StatusForbidden},
		{"stranger", f.stranger, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt := f.createRoute(f.admin, routeBody(f.spaceGUID, f.sharedDomain, strings.ReplaceAll(c.name, " ", "-"), ""))
			path := "/v3/routes/" + rt.GUID
			f.env.do(http.MethodPatch, path, c.token, map[string]any{"metadata": map[string]any{}}).expect(c.status)
			f.env.do(http.MethodPost, path+"/destinations", c.token, map[string]any{"destinations": []any{
				map[string]any{"app": map[string]any{"guid": web}}}}).expect(c.status)

			deleteStatus := c.status
			if deleteStatus == http.StatusOK {
				deleteStatus = http.StatusAccepted
			}
			f.env.do(http.MethodDelete, path, c.token, nil).expect(deleteStatus)
		})
	}
}
