//go:build e2e

package staging

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
)

// cfRoute is the part of the route JSON the cf CLI reads.
type cfRoute struct {
	GUID         string          `json:"guid"`
	Protocol     string          `json:"protocol"`
	Host         string          `json:"host"`
	Path         string          `json:"path"`
	Port         *int            `json:"port"`
	URL          string          `json:"url"`
	Destinations []cfDestination `json:"destinations"`
}

// cfDestination is one destination of a route.
type cfDestination struct {
	GUID string `json:"guid"`
	App  struct {
		GUID    string `json:"guid"`
		Process struct {
			Type string `json:"type"`
		} `json:"process"`
	} `json:"app"`
	Weight   *int   `json:"weight"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// routeAddress is what cf map-route, unmap-route and create-route name a
// route by: the domain and a host and path (HTTP domains) or a port (TCP
// domains).
type routeAddress struct {
	domain string
	host   string
	path   string
	port   int
}

func (a routeAddress) String() string {
	name := a.domain
	if a.host != "" {
		name = a.host + "." + name
	}
	if a.port != 0 {
		name += ":" + strconv.Itoa(a.port)
	}
	return name + a.path
}

// domainGUID looks a domain up by name as every cf route command does
// first, and fails t unless it exists.
func (f *ferry) domainGUID(t *testing.T, name string) string {
	t.Helper()
	var list struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.get(t, "/v3/domains?names="+url.QueryEscape(name)+"&page=1&per_page=1", &list)
	if len(list.Resources) != 1 {
		t.Fatalf("GET /v3/domains?names=%s: %d domains, want 1", name, len(list.Resources))
	}
	return list.Resources[0].GUID
}

// findRoute sends the route lookup of cf map-route and unmap-route: host
// and path filters are always sent, empty meaning "no host" and "no path",
// and the port filter only for a port. It returns nil when no route
// matches.
func (f *ferry) findRoute(t *testing.T, domainGUID string, addr routeAddress) *cfRoute {
	t.Helper()
	query := url.Values{
		"domain_guids": {domainGUID},
		"hosts":        {addr.host},
		"paths":        {addr.path},
		"page":         {"1"},
		"per_page":     {"1"},
	}
	if addr.port != 0 {
		query.Set("ports", strconv.Itoa(addr.port))
	}
	var list struct {
		Resources []cfRoute `json:"resources"`
	}
	f.get(t, "/v3/routes?"+query.Encode(), &list)
	if len(list.Resources) == 0 {
		return nil
	}
	return &list.Resources[0]
}

// createRoute posts a route as cf create-route does, with the fields of
// addr that are set. protocol is empty, as the cf CLI sends it, or "udp",
// Ferry's extension for UDP routes on TCP domains.
func (f *ferry) createRoute(t *testing.T, space, domainGUID string, addr routeAddress, protocol string) cfRoute {
	t.Helper()
	body := map[string]any{"relationships": map[string]any{
		"space":  map[string]any{"data": map[string]any{"guid": space}},
		"domain": map[string]any{"data": map[string]any{"guid": domainGUID}},
	}}
	if addr.host != "" {
		body["host"] = addr.host
	}
	if addr.path != "" {
		body["path"] = addr.path
	}
	if addr.port != 0 {
		body["port"] = addr.port
	}
	if protocol != "" {
		body["protocol"] = protocol
	}
	var route cfRoute
	f.do(t, http.MethodPost, "/v3/routes", body, http.StatusCreated, &route)
	return route
}

// cfCreateRoute sends cf create-route's requests: the domain lookup, then
// the route.
func (f *ferry) cfCreateRoute(t *testing.T, space string, addr routeAddress) cfRoute {
	t.Helper()
	return f.createRoute(t, space, f.domainGUID(t, addr.domain), addr, "")
}

// cfMapRoute sends cf map-route's requests: look the domain, the app and
// the route up, create the route when it does not exist, and add the app's
// web process as a destination unless it is one already. It returns the
// route as the lookup or the creation returned it.
func (f *ferry) cfMapRoute(t *testing.T, app cfApp, addr routeAddress) cfRoute {
	t.Helper()
	domain := f.domainGUID(t, addr.domain)
	f.appByName(t, app.space, app.name)
	route := f.findRoute(t, domain, addr)
	if route == nil {
		created := f.createRoute(t, app.space, domain, addr, "")
		route = &created
	}
	if webDestination(*route, app.guid) == nil {
		f.do(t, http.MethodPost, "/v3/routes/"+route.GUID+"/destinations",
			map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": app.guid}}}}, http.StatusOK, nil)
	}
	return *route
}

// cfUnmapRoute sends cf unmap-route's requests: the domain, app and route
// lookups, then the removal of the app's web destination, which gets 204
// as on Cloud Controller.
func (f *ferry) cfUnmapRoute(t *testing.T, app cfApp, addr routeAddress) {
	t.Helper()
	domain := f.domainGUID(t, addr.domain)
	f.appByName(t, app.space, app.name)
	route := f.findRoute(t, domain, addr)
	if route == nil {
		t.Fatalf("cf unmap-route %s %s: no route %s", app.name, addr.domain, addr)
	}
	dest := webDestination(*route, app.guid)
	if dest == nil {
		t.Fatalf("cf unmap-route %s %s: route %s has no web destination of the app: %+v", app.name, addr.domain, addr, route.Destinations)
	}
	f.exchange(t, http.MethodDelete, "/v3/routes/"+route.GUID+"/destinations/"+dest.GUID, "", nil, http.StatusNoContent)
}

// webDestination returns the destination of a route that is the web
// process of app, as the cf CLI recognises an existing mapping, or nil.
func webDestination(route cfRoute, app string) *cfDestination {
	for i, d := range route.Destinations {
		if d.App.GUID == app && d.App.Process.Type == "web" {
			return &route.Destinations[i]
		}
	}
	return nil
}

// replaceWeightedDestinations replaces a route's destinations with the web
// processes of apps, weighted by weights, which must sum to 100 as Cloud
// Controller requires.
func (f *ferry) replaceWeightedDestinations(t *testing.T, route string, apps []cfApp, weights []int) {
	t.Helper()
	var destinations []any
	for i, app := range apps {
		destinations = append(destinations, map[string]any{
			"app":    map[string]any{"guid": app.guid, "process": map[string]any{"type": "web"}},
			"weight": weights[i],
		})
	}
	var replaced struct {
		Destinations []cfDestination `json:"destinations"`
	}
	f.do(t, http.MethodPatch, "/v3/routes/"+route+"/destinations", map[string]any{"destinations": destinations}, http.StatusOK, &replaced)
	if len(replaced.Destinations) != len(apps) {
		t.Fatalf("PATCH /v3/routes/%s/destinations returned %d destinations, want %d: %+v", route, len(replaced.Destinations), len(apps), replaced.Destinations)
	}
}

// cfDeleteRoute sends cf delete-route's request for a route and polls the
// job until it is COMPLETE.
func (f *ferry) cfDeleteRoute(t *testing.T, route string) {
	t.Helper()
	header, _ := f.exchange(t, http.MethodDelete, "/v3/routes/"+route, "", nil, http.StatusAccepted)
	f.awaitJob(t, header.Get("Location"))
}

// appRoutes returns the routes of an app, as cf app and cf delete -r read
// them.
func (f *ferry) appRoutes(t *testing.T, app string) []cfRoute {
	t.Helper()
	var list struct {
		Resources []cfRoute `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app+"/routes", &list)
	return list.Resources
}

// cfCreatePrivateDomain sends cf create-private-domain's request.
func (f *ferry) cfCreatePrivateDomain(t *testing.T, org, name string) string {
	t.Helper()
	return f.create(t, "/v3/domains", map[string]any{"name": name,
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
}

// cfCreateTCPDomain sends cf create-shared-domain --router-group's
// requests: the router group lookup in the routing API, then the domain.
func (f *ferry) cfCreateTCPDomain(t *testing.T, name, routerGroup string) string {
	t.Helper()
	var groups []struct {
		GUID            string `json:"guid"`
		Name            string `json:"name"`
		Type            string `json:"type"`
		ReservablePorts string `json:"reservable_ports"`
	}
	f.get(t, "/routing/v1/router_groups?name="+url.QueryEscape(routerGroup), &groups)
	if len(groups) != 1 || groups[0].Type != "tcp" {
		t.Fatalf("GET /routing/v1/router_groups?name=%s = %+v, want one tcp group", routerGroup, groups)
	}
	t.Logf("router group %s has reservable ports %s", routerGroup, groups[0].ReservablePorts)
	return f.create(t, "/v3/domains", map[string]any{"name": name, "internal": false,
		"router_group": map[string]any{"guid": groups[0].GUID}})
}

// uploadCertificate uploads a PEM certificate chain, its key and the CA
// that signed it for a domain, and returns the certificate's GUID and
// serial number as the API renders them.
func (f *ferry) uploadCertificate(t *testing.T, domain string, pair testCertificate) (guid, serial string) {
	t.Helper()
	var created struct {
		GUID         string   `json:"guid"`
		SerialNumber string   `json:"serial_number"`
		Serves       []string `json:"serves"`
	}
	f.do(t, http.MethodPost, "/v3/certificates", map[string]any{
		"domain":         domain,
		"certificate":    string(pair.certPEM),
		"private_key":    string(pair.keyPEM),
		"ca_certificate": string(pair.caPEM),
	}, http.StatusCreated, &created)
	want := fmt.Sprintf("%X", pair.serial)
	if created.SerialNumber != want {
		t.Errorf("uploaded certificate has serial_number %q, want %q", created.SerialNumber, want)
	}
	return created.GUID, created.SerialNumber
}

// deleteIfExists sends a DELETE that may get 202 with a job, 204, or 404
// when the resource is already gone, and waits for a job. It reports other
// statuses with report, which is t.Errorf in a test and t.Logf in a
// cleanup.
func (f *ferry) deleteIfExists(t *testing.T, path string, report func(format string, args ...any)) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, f.url+path, nil)
	if err != nil {
		report("DELETE %s: %v", path, err)
		return
	}
	req.Header.Set("Authorization", "bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		report("DELETE %s: %v", path, err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		f.awaitJob(t, resp.Header.Get("Location"))
	case http.StatusNoContent, http.StatusNotFound:
	default:
		report("DELETE %s: status %d: %s", path, resp.StatusCode, body)
	}
}
