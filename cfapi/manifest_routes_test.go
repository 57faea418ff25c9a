package cfapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// appRoutes returns the URL and destination protocols of each route of
// the app, keyed by URL.
func (f *routingFixture) appRoutes(appGUID string) map[string][]string {
	f.t.Helper()
	var list struct{ Resources []routeJSON }
	f.env.do(http.MethodGet, "/v3/apps/"+appGUID+"/routes?per_page=100", f.admin, nil).expect(http.StatusOK).decode(&list)
	out := map[string][]string{}
	for _, rt := range list.Resources {
		protocols := []string{}
		for _, d := range rt.Destinations {
			if d.App.GUID == appGUID {
				protocols = append(protocols, d.Protocol)
			}
		}
		out[rt.URL] = protocols
	}
	return out
}

// mustFail applies doc and returns the detail of the failed job.
func (f *routingFixture) mustFail(doc string) string {
	f.t.Helper()
	job := f.applyManifest(f.developer, doc)
	if job.State != store.JobFailed || len(job.Errors) != 1 {
		f.t.Fatalf("job = %s %+v, want FAILED with one error", job.State, job.Errors)
	}
	return job.Errors[0].Detail
}

func TestManifestRoutesCreateAndMap(t *testing.T) {
	f := newRoutingFixture(t)
	ctx := context.Background()
	if _, err := store.EnsureDomain(ctx, f.env.store.DB(), "example.com", false); err != nil {
		t.Fatal(err)
	}
	doc := `applications:
- name: shop
  default-route: true
  routes:
  - route: shop.apps.ferry.test/cart
  - route: shop.acme.example.com
    protocol: http2
  - route: api.example.com
  - route: "*.acme.example.com"
  - route: tcp.ferry.test:1025
`
	f.mustApply(doc)
	app := f.appNamed("shop")
	want := map[string][]string{
		"shop.apps.ferry.test/cart": {"http1"},
		"shop.acme.example.com":     {"http2"},
		"api.example.com":           {"http1"},
		"*.acme.example.com":        {"http1"},
		"tcp.ferry.test:1025":       {"tcp"},
	}
	if diff := cmp.Diff(want, f.appRoutes(app.GUID)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if n := f.count(`SELECT count(*) FROM routes WHERE host = 'shop' AND space_guid = $1 AND domain_guid = $2`, f.spaceGUID, f.privateDomain); n != 1 {
		t.Errorf("routes shop on the private domain = %d, want 1: the longest matching domain wins", n)
	}
	created := 0
	for _, ev := range f.events(app.GUID) {
		if ev.Type == "audit.app.map-route" {
			created++
		}
	}
	if created != len(want) {
		t.Errorf("map-route events = %d, want %d", created, len(want))
	}

	// Applying the same manifest again maps nothing new.
	f.mustApply(doc)
	if n := f.count(`SELECT count(*) FROM routes`); n != len(want) {
		t.Errorf("routes after a second apply = %d, want %d", n, len(want))
	}
	if n := f.count(`SELECT count(*) FROM route_destinations`); n != len(want) {
		t.Errorf("destinations after a second apply = %d, want %d", n, len(want))
	}

	// Listed routes are added and the routes not listed stay mapped. A new
	// protocol replaces the protocol of the app's destination.
	f.mustApply("applications:\n- name: shop\n  routes:\n  - route: more.apps.ferry.test\n  - route: api.example.com\n    protocol: http2\n")
	want["more.apps.ferry.test"] = []string{"http1"}
	want["api.example.com"] = []string{"http2"}
	if diff := cmp.Diff(want, f.appRoutes(app.GUID)); diff != "" {
		t.Errorf("routes after adding one (-want +got):\n%s", diff)
	}
}

func TestManifestRoutesFailures(t *testing.T) {
	f := newRoutingFixture(t)
	other := f.space(f.orgGUID, "other")
	otherSpaceRoute := f.createRoute(f.admin, routeBody(other, f.sharedDomain, "taken", ""))

	cases := []struct {
		name, doc, detail string
	}{
		{"no matching domain", "applications:\n- name: a\n  routes:\n  - route: a.nowhere.test\n",
			"For application 'a': The route 'a.nowhere.test' did not match any existing domains."},
		{"route of another space", "applications:\n- name: a\n  routes:\n  - route: taken.apps.ferry.test\n",
			"For application 'a': Routes cannot be mapped to destinations in different spaces."},
		{"host with a dot", "applications:\n- name: a\n  routes:\n  - route: a.b.apps.ferry.test\n",
			`For application 'a': For route 'a.b.apps.ferry.test': Host must be either "*" or contain only alphanumeric characters, "_", or "-"`},
		{"port on an HTTP domain", "applications:\n- name: a\n  routes:\n  - route: a.apps.ferry.test:8080\n",
			"For application 'a': For route 'a.apps.ferry.test:8080': Routes with protocol 'http' do not support ports."},
		{"port outside the router group", "applications:\n- name: a\n  routes:\n  - route: tcp.ferry.test:2000\n",
			"For application 'a': For route 'tcp.ferry.test:2000': Port '2000' is not available. Try a different port or use a different domain."},
		{"http2 on a TCP route", "applications:\n- name: a\n  routes:\n  - route: tcp.ferry.test:1025\n    protocol: http2\n",
			"For application 'a': For route 'tcp.ferry.test:1025': Destination protocol must be 'tcp' if the parent route's protocol is 'tcp'"},
		{"good route then bad route", "applications:\n- name: a\n  routes:\n  - route: good.apps.ferry.test\n  - route: bad.nowhere.test\n",
			"For application 'a': The route 'bad.nowhere.test' did not match any existing domains."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if detail := f.mustFail(c.doc); detail != c.detail {
				t.Errorf("detail = %q, want %q", detail, c.detail)
			}
			// The apply rolled back: no app, no route of its own.
			if n := f.count(`SELECT count(*) FROM apps`); n != 0 {
				t.Errorf("apps after a failed apply = %d, want 0", n)
			}
			if n := f.count(`SELECT count(*) FROM routes WHERE guid <> $1`, otherSpaceRoute.GUID); n != 0 {
				t.Errorf("routes after a failed apply = %d, want 0", n)
			}
		})
	}

	// Sharing the route with the space lets the manifest map it.
	f.enableFlag("route_sharing", true)
	f.env.do(http.MethodPost, "/v3/routes/"+otherSpaceRoute.GUID+"/relationships/shared_spaces", f.admin,
		map[string]any{"data": []any{map[string]any{"guid": f.spaceGUID}}}).expect(http.StatusOK)
	f.mustApply("applications:\n- name: a\n  routes:\n  - route: taken.apps.ferry.test\n")
	if diff := cmp.Diff(map[string][]string{"taken.apps.ferry.test": {"http1"}}, f.appRoutes(f.appNamed("a").GUID)); diff != "" {
		t.Errorf("routes after sharing (-want +got):\n%s", diff)
	}
}

func TestManifestUDPRoutes(t *testing.T) {
	f := newRoutingFixture(t)
	f.mustApply("applications:\n- name: dns\n  routes:\n  - route: tcp.ferry.test:1025\n    protocol: udp\n  - route: tcp.ferry.test:1025\n")
	app := f.appNamed("dns")
	var list struct{ Resources []routeJSON }
	f.env.do(http.MethodGet, "/v3/apps/"+app.GUID+"/routes", f.developer, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 2 {
		t.Fatalf("routes = %+v, want a UDP and a TCP route on port 1025", list.Resources)
	}
	udp, tcp := list.Resources[0], list.Resources[1]
	if udp.Protocol != "udp" {
		// One transaction created both, so created_at does not order them.
		udp, tcp = tcp, udp
	}
	if udp.Protocol != "udp" || udp.URL != "tcp.ferry.test:1025" || udp.Port == nil || *udp.Port != 1025 {
		t.Errorf("UDP route = %+v", udp)
	}
	if len(udp.Destinations) != 1 || udp.Destinations[0].Protocol != "udp" {
		t.Errorf("UDP route destinations = %+v, want one of protocol udp", udp.Destinations)
	}
	if tcp.Protocol != "tcp" || len(tcp.Destinations) != 1 || tcp.Destinations[0].Protocol != "tcp" {
		t.Errorf("TCP route = %+v", tcp)
	}

	// udp on an HTTP domain is rejected before the job starts.
	resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer,
		"applications:\n- name: dns\n  routes:\n  - route: dns.apps.ferry.test\n    protocol: udp\n")
	_, _, detail := resp.expect(http.StatusUnprocessableEntity).cfError()
	for _, part := range []string{"For application 'dns'", "'dns.apps.ferry.test'", "'udp'", "TCP domain"} {
		if !strings.Contains(detail, part) {
			t.Errorf("detail = %q, want it to contain %q", detail, part)
		}
	}

	// A TCP domain route without a port reuses the app's UDP route.
	f.mustApply("applications:\n- name: dns\n  routes:\n  - route: tcp.ferry.test\n    protocol: udp\n")
	if n := f.count(`SELECT count(*) FROM routes`); n != 2 {
		t.Errorf("routes after a route without a port = %d, want 2", n)
	}
}

func TestManifestGeneratedAndRemovedRoutes(t *testing.T) {
	f := newRoutingFixture(t)

	f.mustApply("applications:\n- name: Web_App\n  default-route: true\n")
	web := f.appNamed("Web_App")
	if diff := cmp.Diff(map[string][]string{"Web_App.apps.ferry.test": {"http1"}}, f.appRoutes(web.GUID)); diff != "" {
		t.Errorf("default route (-want +got):\n%s", diff)
	}

	f.mustApply("applications:\n- name: lucky\n  random-route: true\n")
	lucky := f.appNamed("lucky")
	routes := f.appRoutes(lucky.GUID)
	if len(routes) != 1 {
		t.Fatalf("random routes = %v, want one", routes)
	}
	for url := range routes {
		host, domain, _ := strings.Cut(url, ".")
		parts := strings.Split(host, "-")
		if domain != "apps.ferry.test" || len(parts) != 3 || parts[0] != "lucky" ||
			!slices.Contains(randomRouteAdjectives, parts[1]) || !slices.Contains(randomRouteNouns, parts[2]) {
			t.Errorf("random route = %q, want lucky-<adjective>-<noun>.apps.ferry.test", url)
		}
	}
	// An app with a route gets no second random or default route.
	f.mustApply("applications:\n- name: lucky\n  random-route: true\n")
	f.mustApply("applications:\n- name: lucky\n  default-route: true\n")
	if n := len(f.appRoutes(lucky.GUID)); n != 1 {
		t.Errorf("routes after pushing again = %d, want 1", n)
	}

	// default-route with an app name that is no host fails the job.
	if detail := f.mustFail("applications:\n- name: my app\n  default-route: true\n"); !strings.Contains(detail, "default route from the app name") {
		t.Errorf("detail = %q, want the default route's problem", detail)
	}

	// no-route removes the mappings and keeps the routes.
	f.mustApply("applications:\n- name: Web_App\n  no-route: true\n")
	if routes := f.appRoutes(web.GUID); len(routes) != 0 {
		t.Errorf("routes after no-route = %v, want none", routes)
	}
	if n := f.count(`SELECT count(*) FROM routes WHERE host = 'Web_App'`); n != 1 {
		t.Errorf("default routes after no-route = %d, want the route kept", n)
	}
	unmapped := 0
	for _, ev := range f.events(web.GUID) {
		if ev.Type == "audit.app.unmap-route" {
			unmapped++
		}
	}
	if unmapped != 1 {
		t.Errorf("unmap-route events = %d, want 1", unmapped)
	}
}

func TestManifestDiffRouteKeys(t *testing.T) {
	f := newRoutingFixture(t)
	doc := "applications:\n- name: dns\n  routes:\n  - route: tcp.ferry.test:1025\n    protocol: udp\n"
	f.mustApply(doc)
	path := "/v3/spaces/" + f.spaceGUID + "/manifest_diff"

	var body struct {
		Diff []map[string]any `json:"diff"`
	}
	f.env.postYAML(path, f.developer, doc).expect(http.StatusCreated).decode(&body)
	if len(body.Diff) != 0 {
		t.Errorf("diff of the applied manifest = %v, want none", body.Diff)
	}

	for _, doc := range []string{
		"applications:\n- name: dns\n  no-route: true\n",
		"applications:\n- name: dns\n  random-route: true\n",
		"applications:\n- name: dns\n  default-route: true\n  routes:\n  - route: tcp.ferry.test:1026\n    protocol: udp\n",
	} {
		f.env.postYAML(path, f.developer, doc).expect(http.StatusCreated).decode(&body)
		if len(body.Diff) == 0 {
			t.Errorf("diff of %q is empty, want the changed route keys", doc)
		}
	}
}

func TestAppManifestListsMappedRoutes(t *testing.T) {
	f := newRoutingFixture(t)
	f.mustApply("applications:\n- name: dns\n  routes:\n  - route: tcp.ferry.test:1025\n    protocol: udp\n  - route: dns.apps.ferry.test\n    protocol: http2\n")
	app := f.appNamed("dns")
	mapped := f.createRoute(f.developer, routeBody(f.spaceGUID, f.sharedDomain, "mapped", ""))
	f.env.do(http.MethodPost, "/v3/routes/"+mapped.GUID+"/destinations", f.developer,
		map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": app.GUID}}}}).expect(http.StatusOK)

	body := string(f.env.do(http.MethodGet, "/v3/apps/"+app.GUID+"/manifest", f.developer, nil).expect(http.StatusOK).Body)
	// Compare with the indentation collapsed to single spaces.
	flat := strings.Join(strings.Fields(body), " ")
	for _, want := range []string{
		"- route: tcp.ferry.test:1025 protocol: udp -",
		"- route: dns.apps.ferry.test protocol: http2 -",
		"- route: mapped.apps.ferry.test processes:",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("manifest does not contain %q:\n%s", want, body)
		}
	}

	f.mustApply("applications:\n- name: dns\n  no-route: true\n")
	body = string(f.env.do(http.MethodGet, "/v3/apps/"+app.GUID+"/manifest", f.developer, nil).expect(http.StatusOK).Body)
	if strings.Contains(body, "routes:") {
		t.Errorf("manifest after no-route lists routes:\n%s", body)
	}
}
