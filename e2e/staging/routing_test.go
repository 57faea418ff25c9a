//go:build e2e

package staging

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// unmapTimeout bounds the wait for the gateway to respond 404 after cf
// unmap-route. The measured time is logged for docs/benchmarks.md and
// never asserted.
const unmapTimeout = 30 * time.Second

// weightedRequests is the number of requests that measure a weighted
// split, and weightTolerance the allowed distance of each destination's
// share from its weight, in percentage points.
const (
	weightedRequests = 1000
	weightTolerance  = 10
)

// routingTest is the state TestRouting's subtests share: one org and
// space, the apps pushed once, and the TCP domain once a subtest made it.
type routingTest struct {
	env    *envtest.Environment
	f      *ferry
	token  string
	org    string
	space  string
	domain string
	http   *gatewayClient
	apps   routingApps

	// tcpDomain and tcpDomainGUID are set by the first subtest that needs
	// the TCP domain.
	tcpDomain, tcpDomainGUID string
	// domains are the GUIDs of the domains the test created.
	domains []string
}

// routingApps are the apps TestRouting pushes. An app is zero until it
// runs, so a subtest can tell a failed push from its own failure.
type routingApps struct {
	// v1 and v2 are the go-binary sample with APP_VERSION set to
	// versions[0] and versions[1], which it puts in its responses.
	v1, v2   cfApp
	versions [2]string
	tcpEcho  cfApp
	udpEcho  cfApp
	// manifestRoutes was pushed with a routes: entry and default-route,
	// and defaultRoute with default-route only. Their APP_VERSION is
	// manifestVersion.
	manifestRoutes  cfApp
	defaultRoute    cfApp
	manifestVersion string
}

// TestRouting pushes sample apps once and reaches them through the local
// environment's gateways on routes made with the cf CLI's request
// sequences. A mapped route responds with the app, and path routes reach
// the right app. Weighted destinations split traffic by their weights, and
// an unmapped route gets 404. An uploaded certificate serves HTTPS, TCP and
// UDP routes echo, an internal route reaches another app, and manifest
// routes are served. Deleting the routes removes what the controller wrote
// for them. Run it with:
// FERRY_E2E_NO_UP=1 go test -tags e2e ./e2e/staging/ -run TestRouting -count=1 -v
func TestRouting(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)
	rt := &routingTest{
		env:    env,
		f:      f,
		token:  strings.TrimPrefix(f.installation, "e2e-"),
		domain: f.routing.defaultDomain,
		http:   newGatewayClient(env.GatewayHTTP),
	}
	rt.org = f.create(t, "/v3/organizations", map[string]any{"name": "e2e-routing-" + rt.token})
	rt.space = f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": rt.org}}}})

	// Cleanups run last-registered first: delete what the test created
	// through Ferry, so its controller removes the listeners and Services
	// outside the space's namespace, then the namespace.
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(rt.space)) })
	t.Cleanup(func() { rt.deleteRouting(t) })
	t.Logf("default domain %s, installation %s", rt.domain, f.installation)

	t.Run("push apps", rt.pushApps)

	t.Run("map-route", rt.testMapRoute)
	t.Run("path routes", rt.testPathRoutes)
	t.Run("weighted destinations", rt.testWeights)
	t.Run("unmap-route", rt.testUnmapRoute)
	t.Run("TLS with an uploaded certificate", rt.testTLS)
	t.Run("TCP route", rt.testTCPRoute)
	t.Run("UDP route", rt.testUDPRoute)
	t.Run("internal route", rt.testInternalRoute)
	t.Run("manifest routes", rt.testManifestRoutes)
	t.Run("delete-route removes routing objects", rt.testDeleteRoutes)
}

// pushApps pushes every app of the test in parallel subtests and waits
// until each runs.
func (rt *routingTest) pushApps(t *testing.T) {
	goBinary := goBinaryApp(t)
	tcpEcho := buildGoFixture(t, "tcp-echo")
	udpEcho := buildGoFixture(t, "udp-echo")
	rt.apps.versions = [2]string{"v1-" + rt.token, "v2-" + rt.token}
	rt.apps.manifestVersion = "manifest-" + rt.token

	pushes := []struct {
		app      *cfApp
		name     string
		dir      string
		manifest func(name, dir string) string
	}{
		{&rt.apps.v1, "v1", goBinary, func(name, dir string) string {
			return appManifest(name, dir, "  no-route: true\n", rt.apps.versions[0])
		}},
		{&rt.apps.v2, "v2", goBinary, func(name, dir string) string {
			return appManifest(name, dir, "  no-route: true\n", rt.apps.versions[1])
		}},
		{&rt.apps.tcpEcho, "tcp-echo", tcpEcho, func(name, dir string) string {
			return appManifest(name, dir, "  no-route: true\n  health-check-type: process\n", "")
		}},
		{&rt.apps.udpEcho, "udp-echo", udpEcho, func(name, dir string) string {
			return appManifest(name, dir, "  no-route: true\n  health-check-type: process\n", "")
		}},
		// The cf CLI adds default-route: true to a manifest even when it
		// lists routes, and Cloud Controller then ignores it.
		{&rt.apps.manifestRoutes, "manifest-routes", goBinary, func(name, dir string) string {
			return appManifest(name, dir, "  default-route: true\n  routes:\n  - route: manifest."+rt.domain+"\n", rt.apps.manifestVersion)
		}},
		{&rt.apps.defaultRoute, "defaulted", goBinary, func(name, dir string) string {
			return appManifest(name, dir, "  default-route: true\n", rt.apps.manifestVersion)
		}},
	}
	for _, p := range pushes {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			app := rt.f.cfPush(t, rt.space, p.name, p.dir, p.manifest(p.name, p.dir), 0)
			rt.f.awaitStats(t, app, "every instance RUNNING", allRunning)
			*p.app = app
		})
	}
}

// appManifest returns the manifest cf push sends for one app with the
// given extra lines, and APP_VERSION set unless version is empty.
func appManifest(name, dir, lines, version string) string {
	manifest := fmt.Sprintf("applications:\n- name: %s\n  path: %s\n  memory: %dM\n%s", name, dir, appMemoryMB, lines)
	if version != "" {
		manifest += "  env:\n    APP_VERSION: " + version + "\n"
	}
	return manifest
}

// saveObjectsOnFailure saves the Gateways and the routes into the
// subtest's artifact directory when t fails, while the objects of its
// routes still exist.
func (rt *routingTest) saveObjectsOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			saveRoutingObjects(t, rt.env, []string{k8sbackend.SpaceNamespace(rt.space), rt.f.routing.internalRouteNamespace})
		}
	})
}

// requireApps skips t when one of the apps did not reach RUNNING, because
// the push apps subtest already failed for it.
func requireApps(t *testing.T, apps ...cfApp) {
	t.Helper()
	for _, app := range apps {
		if app.guid == "" {
			t.Skip("skipped: an app this subtest needs did not start; see the push apps subtest")
		}
	}
}

func (rt *routingTest) testMapRoute(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1)
	addr := routeAddress{domain: rt.domain, host: "h"}
	start := time.Now()
	route := rt.f.cfMapRoute(t, rt.apps.v1, addr)
	rt.http.awaitRouteBody(t, addr.host+"."+rt.domain, "/", rt.apps.versions[0])
	t.Logf("TIMING map-route to 200 through the gateway: %s", time.Since(start).Round(100*time.Millisecond))

	// A host on the domain that no route names is not found at the
	// gateway.
	rt.http.checkRouteStatus(t, "unmapped."+rt.domain, "/", http.StatusNotFound)

	// A second cf map-route finds the destination and adds none.
	rt.f.cfMapRoute(t, rt.apps.v1, addr)
	var got cfRoute
	rt.f.get(t, "/v3/routes/"+route.GUID, &got)
	if len(got.Destinations) != 1 {
		t.Errorf("route %s has %d destinations after a second cf map-route, want 1: %+v", addr, len(got.Destinations), got.Destinations)
	}
	if got.URL != addr.host+"."+rt.domain {
		t.Errorf("route url = %q, want %q", got.URL, addr.host+"."+rt.domain)
	}
}

func (rt *routingTest) testPathRoutes(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1, rt.apps.v2)
	host := "h2." + rt.domain
	// The gateway forwards the whole path, so the apps must serve /v1 and
	// /v2 themselves. A 404 from the app would look like the gateway's.
	for i, app := range []cfApp{rt.apps.v1, rt.apps.v2} {
		checkServesPath(t, rt.env, rt.f, app, []string{"/v1", "/v2"}[i])
	}
	rt.f.cfMapRoute(t, rt.apps.v1, routeAddress{domain: rt.domain, host: "h2", path: "/v1"})
	rt.f.cfMapRoute(t, rt.apps.v2, routeAddress{domain: rt.domain, host: "h2", path: "/v2"})
	rt.http.awaitRouteBody(t, host, "/v1", rt.apps.versions[0])
	rt.http.awaitRouteBody(t, host, "/v2", rt.apps.versions[1])

	// Every request of a path goes to that path's app.
	for i := 0; i < 10; i++ {
		for j, path := range []string{"/v1", "/v2"} {
			resp, err := rt.http.get(t.Context(), host, path)
			if err != nil {
				t.Fatalf("GET http://%s%s through the gateway: %v", host, path, err)
			}
			if resp.status != http.StatusOK || !strings.Contains(resp.body, rt.apps.versions[j]) {
				t.Fatalf("GET http://%s%s through the gateway: %s, want 200 from the app with APP_VERSION %s", host, path, resp, rt.apps.versions[j])
			}
		}
	}

	// Paths match whole segments, and the host has no route for /.
	rt.http.checkRouteStatus(t, host, "/v1x", http.StatusNotFound)
	rt.http.checkRouteStatus(t, host, "/v3", http.StatusNotFound)
	rt.http.checkRouteStatus(t, host, "/", http.StatusNotFound)
}

// checkServesPath fails t unless the app responds 200 to GET path at its
// web process's Service, without the gateway.
func checkServesPath(t *testing.T, env *envtest.Environment, f *ferry, app cfApp, path string) {
	t.Helper()
	target := serviceURL(t, env, app, f.webProcess(t, app.guid).GUID) + path
	resp, err := appClient.Get(target)
	if err != nil {
		t.Fatalf("GET %s (app %s, without the gateway): %v", target, app.name, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s (app %s, without the gateway): status %d, body %q; a path route forwards the whole path, "+
			"so the app must serve %s itself (the go-binary fixture must serve every path, not only /)",
			target, app.name, resp.StatusCode, excerpt(string(body)), path)
	}
}

func (rt *routingTest) testWeights(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1, rt.apps.v2)
	host := "h3." + rt.domain
	route := rt.f.cfCreateRoute(t, rt.space, routeAddress{domain: rt.domain, host: "h3"})
	weights := []int{25, 75}
	rt.f.replaceWeightedDestinations(t, route.GUID, []cfApp{rt.apps.v1, rt.apps.v2}, weights)

	// Both destinations respond before the count starts.
	awaitRoute(t, "both weighted destinations of "+host+" to respond through the gateway", func(ctx context.Context) (bool, string) {
		counts, other, err := rt.countVersions(ctx, host, 20)
		if err != nil {
			return false, err.Error()
		}
		return counts[0] > 0 && counts[1] > 0 && len(other) == 0, describeCounts(counts, other)
	})

	counts, other, err := rt.countVersions(t.Context(), host, weightedRequests)
	if err != nil {
		t.Fatalf("%d requests to %s through the gateway: %v", weightedRequests, host, err)
	}
	t.Logf("%d requests to %s: %s", weightedRequests, host, describeCounts(counts, other))
	if len(other) > 0 {
		t.Errorf("%d of %d responses came from neither destination: %v", countOther(other), weightedRequests, other)
	}
	for i, weight := range weights {
		share := float64(counts[i]) * 100 / weightedRequests
		if share < float64(weight-weightTolerance) || share > float64(weight+weightTolerance) {
			t.Errorf("destination %s with weight %d got %.1f%% of %d requests, want %d%% ± %d points",
				rt.apps.versions[i], weight, share, weightedRequests, weight, weightTolerance)
		}
	}
}

// countVersions sends n requests to host and counts the 200 responses of
// each app version. Other responses are counted by their description.
func (rt *routingTest) countVersions(ctx context.Context, host string, n int) ([2]int, map[string]int, error) {
	var counts [2]int
	other := map[string]int{}
	for i := 0; i < n; i++ {
		resp, err := rt.http.get(ctx, host, "/")
		if err != nil {
			return counts, other, err
		}
		switch {
		case resp.status == http.StatusOK && strings.Contains(resp.body, rt.apps.versions[0]):
			counts[0]++
		case resp.status == http.StatusOK && strings.Contains(resp.body, rt.apps.versions[1]):
			counts[1]++
		default:
			other[resp.String()]++
		}
	}
	return counts, other, nil
}

func describeCounts(counts [2]int, other map[string]int) string {
	return fmt.Sprintf("%d from v1, %d from v2, others %v", counts[0], counts[1], other)
}

func countOther(other map[string]int) int {
	n := 0
	for _, c := range other {
		n += c
	}
	return n
}

func (rt *routingTest) testUnmapRoute(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1)
	addr := routeAddress{domain: rt.domain, host: "u"}
	host := addr.host + "." + rt.domain
	route := rt.f.cfMapRoute(t, rt.apps.v1, addr)
	rt.http.awaitRouteBody(t, host, "/", rt.apps.versions[0])

	start := time.Now()
	rt.f.cfUnmapRoute(t, rt.apps.v1, addr)
	rt.http.awaitRouteStatus(t, unmapTimeout, host, "/", http.StatusNotFound)
	elapsed := time.Since(start)
	t.Logf("TIMING unmap-route to 404 through the gateway: %s (from the first request of cf unmap-route, polled every %s)",
		elapsed.Round(10*time.Millisecond), routePollInterval)

	// The route stays, without destinations.
	var got cfRoute
	rt.f.get(t, "/v3/routes/"+route.GUID, &got)
	if len(got.Destinations) != 0 {
		t.Errorf("route %s has destinations %+v after cf unmap-route, want none", addr, got.Destinations)
	}
}

func (rt *routingTest) testTLS(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1, rt.apps.v2)
	domain := "e2e-" + rt.token + "-tls.ferry.test"
	rt.domains = append(rt.domains, rt.f.cfCreatePrivateDomain(t, rt.org, domain))
	pair := newTestCertificate(t, domain)
	_, serial := rt.f.uploadCertificate(t, domain, pair)
	t.Logf("certificate for %s and *.%s with serial %s", domain, domain, serial)

	rt.f.cfMapRoute(t, rt.apps.v1, routeAddress{domain: domain, host: "secure"})
	rt.awaitHTTPS(t, "secure."+domain, pair, rt.apps.versions[0])

	// The bare domain has its own listener.
	rt.f.cfMapRoute(t, rt.apps.v2, routeAddress{domain: domain})
	rt.awaitHTTPS(t, domain, pair, rt.apps.versions[1])
}

// awaitHTTPS requests https://host/ at the gateway's HTTPS address until
// the certificate verifies against the test CA, is the uploaded leaf, and
// the app responds 200 with a body that contains want.
func (rt *routingTest) awaitHTTPS(t *testing.T, host string, pair testCertificate, want string) {
	t.Helper()
	what := fmt.Sprintf("GET https://%s/ at %s to verify against the test CA and respond 200 with %q", host, rt.env.GatewayHTTPS, want)
	awaitRoute(t, what, func(ctx context.Context) (bool, string) {
		resp, err := getHTTPS(ctx, rt.env.GatewayHTTPS, host, "/", pair.roots)
		if err != nil {
			return false, err.Error()
		}
		if resp.serial == nil || resp.serial.Cmp(pair.serial) != 0 {
			return false, fmt.Sprintf("certificate serial %X, want %X; %s", resp.serial, pair.serial, resp)
		}
		return resp.status == http.StatusOK && strings.Contains(resp.body, want), resp.String()
	})
}

// tcpDomainGUIDFor returns the TCP domain of the test, creating it as cf
// create-shared-domain --router-group default-tcp does on first use.
func (rt *routingTest) tcpDomainGUIDFor(t *testing.T) (string, string) {
	t.Helper()
	if rt.tcpDomainGUID == "" {
		name := "e2e-" + rt.token + "-tcp.ferry.test"
		rt.tcpDomainGUID = rt.f.cfCreateTCPDomain(t, name, "default-tcp")
		rt.tcpDomain = name
		rt.domains = append(rt.domains, rt.tcpDomainGUID)
	}
	return rt.tcpDomain, rt.tcpDomainGUID
}

func (rt *routingTest) testTCPRoute(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.tcpEcho)
	domain, _ := rt.tcpDomainGUIDFor(t)
	port := rt.f.routing.firstTCPPort
	route := rt.f.cfMapRoute(t, rt.apps.tcpEcho, routeAddress{domain: domain, port: port})
	if route.Protocol != "tcp" || route.Port == nil || *route.Port != port {
		t.Errorf("route %s has protocol %q and port %v, want tcp and %d", route.GUID, route.Protocol, route.Port, port)
	}

	line := "hello-" + rt.token
	want := "tcp-echo: " + line
	addr := loopbackAddress(port)
	awaitRoute(t, fmt.Sprintf("tcp-echo to reply %q on %s", want, addr), func(ctx context.Context) (bool, string) {
		reply, err := tcpEcho(ctx, addr, line)
		if err != nil {
			return false, err.Error()
		}
		return reply == want, fmt.Sprintf("reply %q", reply)
	})
}

func (rt *routingTest) testUDPRoute(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.udpEcho)
	domain, domainGUID := rt.tcpDomainGUIDFor(t)
	port := rt.f.routing.firstTCPPort + 1

	// The cf CLI cannot make a UDP route, so the route is created with
	// Ferry's protocol field; cf map-route then finds it by its port.
	created := rt.f.createRoute(t, rt.space, domainGUID, routeAddress{port: port}, "udp")
	if created.Protocol != "udp" || created.Port == nil || *created.Port != port {
		t.Errorf("route %s has protocol %q and port %v, want udp and %d", created.GUID, created.Protocol, created.Port, port)
	}
	rt.f.cfMapRoute(t, rt.apps.udpEcho, routeAddress{domain: domain, port: port})
	var mapped cfRoute
	rt.f.get(t, "/v3/routes/"+created.GUID, &mapped)
	if dest := webDestination(mapped, rt.apps.udpEcho.guid); dest == nil || dest.Protocol != "udp" {
		t.Errorf("UDP route %s has destinations %+v, want the web process of udp-echo with protocol udp", created.GUID, mapped.Destinations)
	}

	// Datagrams sent before the gateway listens are lost, so each check
	// sends a new one.
	payload := "ping-" + rt.token
	want := "udp-echo: " + payload
	addr := loopbackAddress(port)
	awaitRoute(t, fmt.Sprintf("udp-echo to reply %q on %s", want, addr), func(ctx context.Context) (bool, string) {
		reply, err := udpEcho(ctx, addr, payload)
		if err != nil {
			return false, err.Error()
		}
		return reply == want, fmt.Sprintf("reply %q", reply)
	})
}

func (rt *routingTest) testInternalRoute(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.v1, rt.apps.v2)
	internal := rt.f.routing.internalDomain
	host := "b-" + rt.token
	rt.f.cfMapRoute(t, rt.apps.v2, routeAddress{domain: internal, host: host})
	rt.f.cfMapRoute(t, rt.apps.v1, routeAddress{domain: rt.domain, host: "fetch"})

	// v1 fetches v2 at its internal route from inside the cluster, and
	// the gateway relays v1's response.
	target := fmt.Sprintf("http://%s.%s:%d/", host, internal, k8sbackend.AppPort)
	rt.http.awaitRouteBody(t, "fetch."+rt.domain, "/fetch?url="+url.QueryEscape(target), rt.apps.versions[1])

	// The gateway does not serve internal routes.
	rt.http.checkRouteStatus(t, host+"."+internal, "/", http.StatusNotFound)
}

func (rt *routingTest) testManifestRoutes(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	requireApps(t, rt.apps.manifestRoutes, rt.apps.defaultRoute)
	for _, c := range []struct {
		app cfApp
		url string
	}{
		{rt.apps.manifestRoutes, "manifest." + rt.domain},
		{rt.apps.defaultRoute, rt.apps.defaultRoute.name + "." + rt.domain},
	} {
		routes := rt.f.appRoutes(t, c.app.guid)
		var urls []string
		for _, r := range routes {
			urls = append(urls, r.URL)
		}
		if len(urls) != 1 || urls[0] != c.url {
			t.Errorf("app %s has routes %v after apply_manifest, want only %s", c.app.name, urls, c.url)
		}
		rt.http.awaitRouteBody(t, c.url, "/", rt.apps.manifestVersion)
	}
}

// testDeleteRoutes deletes every route of the space with cf
// delete-route, then the certificate and the domains the test made. The
// gateway must stop serving the routes, and the controller must remove the
// route objects, its listeners on the Gateways, the internal route's
// Service and the certificate's Secret.
func (rt *routingTest) testDeleteRoutes(t *testing.T) {
	rt.saveObjectsOnFailure(t)
	if len(rt.spaceRoutes(t)) == 0 {
		t.Skip("skipped: no routes to delete")
	}
	rt.deleteCreated(t, t.Errorf)
	if rt.apps.v1.guid != "" {
		rt.http.awaitRouteStatus(t, routeTimeout, "h."+rt.domain, "/", http.StatusNotFound)
	}

	awaitRoute(t, "the routing objects of the deleted routes to go", func(ctx context.Context) (bool, string) {
		left := rt.routingObjects(ctx)
		return len(left) == 0, strings.Join(left, ", ")
	})
}

// deleteCreated deletes the routes of the space, the certificates and the
// domains the test made, reporting failures with report.
func (rt *routingTest) deleteCreated(t *testing.T, report func(format string, args ...any)) {
	t.Helper()
	for _, route := range rt.spaceRoutes(t) {
		rt.f.deleteIfExists(t, "/v3/routes/"+route.GUID, report)
	}
	var certificates struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	rt.f.get(t, "/v3/certificates", &certificates)
	for _, c := range certificates.Resources {
		rt.f.deleteIfExists(t, "/v3/certificates/"+c.GUID, report)
	}
	for _, domain := range rt.domains {
		rt.f.deleteIfExists(t, "/v3/domains/"+domain, report)
	}
}

// spaceRoutes lists the routes of the test's space as cf routes does.
func (rt *routingTest) spaceRoutes(t *testing.T) []cfRoute {
	t.Helper()
	var list struct {
		Resources []cfRoute `json:"resources"`
	}
	rt.f.get(t, "/v3/routes?per_page=5000&space_guids="+rt.space, &list)
	return list.Resources
}

// routingObjects describes the objects the controller wrote for the
// test's routes that still exist: routes in the space's namespace, the
// installation's Services in the internal route namespace, and the
// listeners for the test's TCP and UDP ports on the Gateways.
func (rt *routingTest) routingObjects(ctx context.Context) []string {
	var left []string
	namespace := k8sbackend.SpaceNamespace(rt.space)
	selector := labels.Set{k8sbackend.LabelInstallation: rt.f.installation}.String()
	for _, gvr := range []schema.GroupVersionResource{httpRouteResource, tcpRouteResource, udpRouteResource} {
		list, err := rt.env.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			left = append(left, fmt.Sprintf("list %s: %v", gvr.Resource, err))
			continue
		}
		for _, o := range list.Items {
			left = append(left, o.GetKind()+" "+o.GetName())
		}
	}

	services, err := rt.env.Kube.CoreV1().Services(rt.f.routing.internalRouteNamespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		left = append(left, "list internal route Services: "+err.Error())
	} else {
		for _, s := range services.Items {
			left = append(left, "Service "+s.Namespace+"/"+s.Name)
		}
	}

	secrets, err := rt.env.Kube.CoreV1().Secrets(rt.f.routing.gatewayNamespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set{
		k8sbackend.LabelInstallation: rt.f.installation, k8sbackend.LabelComponent: k8sbackend.ComponentTLS}.String()})
	if err != nil {
		left = append(left, "list TLS Secrets: "+err.Error())
	} else {
		for _, s := range secrets.Items {
			left = append(left, "Secret "+s.Namespace+"/"+s.Name)
		}
	}

	listeners := map[string][]string{
		rt.f.routing.gatewayName: {
			k8sbackend.PortListenerName(k8sbackend.RouteProtocolTCP, int32(rt.f.routing.firstTCPPort)),
			k8sbackend.HTTPSListenerName("e2e-" + rt.token + "-tls.ferry.test"),
		},
		rt.f.routing.udpGatewayName: {
			k8sbackend.PortListenerName(k8sbackend.RouteProtocolUDP, int32(rt.f.routing.firstTCPPort+1)),
		},
	}
	for gateway, names := range listeners {
		gw, err := rt.env.Dynamic.Resource(gatewayResource).Namespace(rt.f.routing.gatewayNamespace).Get(ctx, gateway, metav1.GetOptions{})
		if err != nil {
			left = append(left, fmt.Sprintf("get Gateway %s: %v", gateway, err))
			continue
		}
		items, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
		for _, item := range items {
			listener, _ := item.(map[string]any)
			name, _ := listener["name"].(string)
			for _, want := range names {
				if name == want || name == want+"-apex" {
					left = append(left, "listener "+name+" of Gateway "+gateway)
				}
			}
		}
	}
	return left
}

// deleteRouting deletes the routes, certificates and domains the test
// made, so Ferry's controller removes their objects outside the space's
// namespace, and waits for that. It runs as a cleanup, so it only logs
// what it could not remove.
func (rt *routingTest) deleteRouting(t *testing.T) {
	if rt.f.cmd == nil {
		return
	}
	rt.deleteCreated(t, t.Logf)

	ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
	defer cancel()
	for {
		left := rt.routingObjects(ctx)
		if len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Logf("routing objects left after deleting the test's routes: %s", strings.Join(left, ", "))
			return
		case <-time.After(envtest.PollInterval):
		}
	}
}
