package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/manifest"
	"github.com/ferrycf/ferry/store"
)

// manifestRoute is a route of a manifest's routes list, resolved against
// the domains the space's organization may use.
type manifestRoute struct {
	// Text is the route as the manifest writes it, for messages.
	Text   string
	Domain store.Domain
	Host   string
	Path   string
	// Port is the port the route names, or nil when it names none.
	Port *int
	// Protocol is the route's protocol: http, tcp or udp.
	Protocol string
	// DestinationProtocol is the protocol the manifest names for the app's
	// destination, or "" for the route's default.
	DestinationProtocol string
}

// splitManifestRoute splits a manifest route such as "host.domain/path",
// "tcp.domain:1025" or "https://host.domain" into its host name, port and
// path. The manifest package has checked that it parses.
func splitManifestRoute(text string) (hostname string, port *int, path string, err error) {
	s := text
	if !strings.Contains(s, "://") {
		s = "unspecified://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "", nil, "", apierr.UnprocessableEntity("The route '" + text + "' is not a properly formed URL")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", nil, "", apierr.UnprocessableEntity("The route '" + text + "' is not a properly formed URL")
		}
		port = &n
	}
	return u.Hostname(), port, u.EscapedPath(), nil
}

// manifestDomain returns the longest domain that the organization orgGUID
// may use and that hostname ends with, and the host in front of it. A
// hostname starting with "*." names a wildcard host on the rest. A
// hostname that matches no domain is Cloud Controller's 422 for text.
func (a *API) manifestDomain(ctx context.Context, orgGUID, text, hostname string) (store.Domain, string, error) {
	labels := strings.Split(hostname, ".")
	var names []string
	if labels[0] == "*" {
		names = []string{strings.Join(labels[1:], ".")}
	} else {
		for i := range labels {
			names = append(names, strings.Join(labels[i:], "."))
		}
	}
	domains, _, err := a.store.Domains(ctx, store.DomainFilter{Names: names, UsableBy: orgGUID},
		store.Page{Number: 1, PerPage: len(names)}, store.Visibility{All: true})
	if err != nil {
		return store.Domain{}, "", err
	}
	if len(domains) == 0 {
		return store.Domain{}, "", apierr.UnprocessableEntity("The route '" + text + "' did not match any existing domains.")
	}
	longest := slices.MaxFunc(domains, func(x, y store.Domain) int { return len(x.Name) - len(y.Name) })
	host := ""
	if len(hostname) > len(longest.Name) {
		host = hostname[:len(hostname)-len(longest.Name)-1]
	}
	return longest, host, nil
}

// checkManifestRouteProtocol rejects protocol udp on a route of an HTTP
// domain. UDP routes are a Ferry extension that needs a TCP domain.
func checkManifestRouteProtocol(text, protocol string, domain store.Domain) error {
	if protocol != store.DestinationProtocolUDP || domain.RouterGroupGUID != "" {
		return nil
	}
	return apierr.UnprocessableEntity("Route '" + text + "' has protocol 'udp', but '" + domain.Name +
		"' is an HTTP domain: UDP routes need a TCP domain and a port, such as 'tcp.example.com:1025'. Use a TCP domain or remove the protocol.")
}

// resolveManifestRoute finds the domain, host, path, port and protocols of
// a manifest route for a space of the organization orgGUID.
func (a *API) resolveManifestRoute(ctx context.Context, orgGUID string, r manifest.Route) (manifestRoute, error) {
	hostname, port, path, err := splitManifestRoute(r.Route)
	if err != nil {
		return manifestRoute{}, err
	}
	domain, host, err := a.manifestDomain(ctx, orgGUID, r.Route, hostname)
	if err != nil {
		return manifestRoute{}, err
	}
	if err := checkManifestRouteProtocol(r.Route, r.Protocol, domain); err != nil {
		return manifestRoute{}, err
	}

	// NOTE: route options such as loadbalancing are kept in the app's route
	// intent but not applied, because Ferry routes take no options yet.
	target := manifestRoute{Text: r.Route, Domain: domain, Host: host, Path: path, Port: port, DestinationProtocol: r.Protocol}
	requested := ""
	if r.Protocol == store.DestinationProtocolUDP {
		requested = store.RouteProtocolUDP
	}
	if target.Protocol, err = routeProtocolFor(domain, requested); err != nil {
		return manifestRoute{}, err
	}
	if problems := routeAddressProblems(&target.Host, &target.Path, target.Port); len(problems) > 0 {
		return manifestRoute{}, forRoute(r.Route, apierr.UnprocessableEntity(strings.Join(problems, ", ")))
	}
	return target, nil
}

// forRoute names the manifest route text in an API error's detail, as
// Cloud Controller does for errors of a route it creates or maps.
func forRoute(text string, err error) error {
	var apiErr *apierr.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	prefixed := *apiErr
	prefixed.Detail = "For route '" + text + "': " + apiErr.Detail
	return &prefixed
}

// checkManifestRoutes lists the problems of the application's routes that
// apply_manifest reports at once, before the job starts: protocol udp on
// an HTTP domain. Routes that match no domain fail the job, as in Cloud
// Controller.
func (a *API) checkManifestRoutes(ctx context.Context, orgGUID string, app manifest.Application) ([]error, error) {
	if app.Routes == nil || (app.Routes.NoRoute != nil && *app.Routes.NoRoute) {
		return nil, nil
	}
	var problems []error
	for _, r := range app.Routes.Routes {
		if r.Protocol != store.DestinationProtocolUDP {
			continue
		}
		hostname, _, _, err := splitManifestRoute(r.Route)
		if err != nil {
			continue
		}
		domain, _, err := a.manifestDomain(ctx, orgGUID, r.Route, hostname)
		var apiErr *apierr.Error
		if errors.As(err, &apiErr) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := checkManifestRouteProtocol(r.Route, r.Protocol, domain); err != nil {
			problems = append(problems, err)
		}
	}
	return problems, nil
}

// applyManifestRoutes maps the routes the manifest requests for app
// through tx, as Cloud Controller does. no-route removes every route
// mapping of the app and keeps the routes. A routes list maps each listed
// route, creating it in the app's space when it is missing, and leaves the
// app's other routes mapped. Without a routes list, random-route and
// default-route map a generated route while the app has none. The cf CLI
// sends default-route: true with every push, so a routes list overrides
// it.
func (a *API) applyManifestRoutes(ctx context.Context, tx *sql.Tx, actor *auth.Actor, space store.Space, app store.App, routes *manifest.Routes) error {
	if routes == nil {
		return nil
	}
	if err := recordManifestRouteIntent(ctx, tx, app.GUID, routes); err != nil {
		return err
	}

	if routes.NoRoute != nil && *routes.NoRoute {
		return a.unmapAppRoutes(ctx, tx, actor, app)
	}
	if routes.RoutesSet {
		for _, r := range routes.Routes {
			if err := a.mapManifestRoute(ctx, tx, actor, space, app, r); err != nil {
				return err
			}
		}
		return nil
	}

	random := routes.RandomRoute != nil && *routes.RandomRoute
	byDefault := routes.DefaultRoute != nil && *routes.DefaultRoute
	if !random && !byDefault {
		return nil
	}
	mapped, err := store.AppHasDestinations(ctx, tx, app.GUID)
	if err != nil || mapped {
		return err
	}
	domain, err := a.store.DefaultDomain(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.UnprocessableEntity("No default domains available: an admin must create a shared domain before apps get a default or random route")
	}
	if err != nil {
		return err
	}
	host := app.Name
	if random {
		host = randomRouteHost(app.Name)
	} else if problems := routeAddressProblems(&host, nil, nil); len(problems) > 0 {
		return apierr.UnprocessableEntity("Failed to create the default route from the app name: " + strings.Join(problems, ", ") +
			". Rename the app, or list its routes in the manifest.")
	}
	return a.mapManifestRoute(ctx, tx, actor, space, app, manifest.Route{Route: host + "." + domain.Name})
}

// Words of random route hosts, as in "myapp-brave-otter".
var (
	randomRouteAdjectives = []string{"amber", "bold", "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly",
		"keen", "lively", "lucky", "mellow", "nimble", "proud", "quiet", "rapid", "shiny", "sunny", "swift", "tidy", "wise", "zesty"}
	randomRouteNouns = []string{"badger", "beaver", "crane", "dolphin", "eagle", "falcon", "fox", "gecko", "heron", "ibex", "koala",
		"lynx", "marmot", "newt", "otter", "panda", "puffin", "quail", "raven", "seal", "tiger", "walrus", "wombat", "yak"}
)

// randomRouteHost returns the app name followed by two random words, the
// host of a random-route.
func randomRouteHost(appName string) string {
	return appName + "-" + randomRouteAdjectives[rand.IntN(len(randomRouteAdjectives))] + "-" +
		randomRouteNouns[rand.IntN(len(randomRouteNouns))]
}

// mapManifestRoute maps the app's web process to the manifest route r
// through tx, creating the route in the app's space when it does not exist.
// Mapping a route that is mapped already changes nothing unless r names
// another protocol.
func (a *API) mapManifestRoute(ctx context.Context, tx *sql.Tx, actor *auth.Actor, space store.Space, app store.App, r manifest.Route) error {
	target, err := a.resolveManifestRoute(ctx, space.OrganizationGUID, r)
	if err != nil {
		return err
	}
	rt, err := a.findOrCreateManifestRoute(ctx, tx, actor, space, app, target)
	if err != nil {
		return err
	}

	if err := store.LockRoute(ctx, tx, rt.GUID); err != nil {
		return err
	}
	before, err := store.RouteDestinationsThrough(ctx, tx, rt.GUID)
	if err != nil {
		return err
	}
	protocol := target.DestinationProtocol
	if protocol == "" {
		protocol = defaultDestinationProtocol(rt)
	}
	if err := checkDestinationProtocol(rt, protocol); err != nil {
		return forRoute(target.Text, err)
	}
	if err := mapWebProcess(ctx, tx, rt.GUID, app.GUID, before, protocol, target.DestinationProtocol != ""); err != nil {
		return forRoute(target.Text, err)
	}

	after, err := store.RouteDestinationsThrough(ctx, tx, rt.GUID)
	if err != nil {
		return err
	}
	if len(after) > maxDestinations {
		return forRoute(target.Text, apierr.UnprocessableEntity("Routes can be mapped to at most 100 destinations."))
	}
	return a.recordDestinationEvents(ctx, tx, actor, rt, map[string]store.App{app.GUID: app}, before, after)
}

// mapWebProcess adds a destination of the app's web process with protocol
// to the route routeGUID, whose destinations are before. Destinations of
// the web process that exist already stay, unless protocolSet and none of
// them has protocol. Then one destination with the new protocol replaces
// them, as Cloud Controller does when a manifest changes a protocol.
func mapWebProcess(ctx context.Context, tx *sql.Tx, routeGUID, appGUID string, before []store.Destination, protocol string, protocolSet bool) error {
	var current []store.Destination
	for _, d := range before {
		if d.AppGUID == appGUID && d.ProcessType == "web" {
			current = append(current, d)
		}
	}
	destination := store.Destination{GUID: uuid.NewString(), AppGUID: appGUID, ProcessType: "web", Port: defaultAppPort, Protocol: protocol}
	if len(current) == 0 {
		return addDestinationsChecked(ctx, tx, routeGUID, before, []store.Destination{destination})
	}
	if !protocolSet || slices.ContainsFunc(current, func(d store.Destination) bool { return d.Protocol == protocol }) {
		return nil
	}
	for _, d := range current {
		if d.Weight > 0 {
			return apierr.UnprocessableEntity("Weighted destinations cannot be deleted individually.")
		}
		if _, err := store.DeleteDestination(ctx, tx, routeGUID, d.GUID); err != nil {
			return err
		}
	}
	destination.Port = current[0].Port
	return store.AddDestinations(ctx, tx, routeGUID, []store.Destination{destination})
}

// findOrCreateManifestRoute returns the route at target, which must belong
// to the app's space or be shared with it, or creates it in that space.
// A TCP or UDP route without a port reuses the app's route of that
// protocol on the domain, or gets a free port of the router group.
func (a *API) findOrCreateManifestRoute(ctx context.Context, tx *sql.Tx, actor *auth.Actor, space store.Space, app store.App,
	target manifestRoute) (store.Route, error) {
	addr := store.RouteAddress{DomainGUID: target.Domain.GUID, Host: target.Host, Path: target.Path, Protocol: target.Protocol}
	if target.Port != nil {
		addr.Port = *target.Port
	}
	var rt store.Route
	var err error
	if target.Protocol != store.RouteProtocolHTTP && target.Port == nil {
		rt, err = a.appRouteOnDomain(ctx, tx, app.GUID, target.Domain.GUID, target.Protocol)
	} else {
		rt, err = store.RouteAt(ctx, tx, addr)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return a.createManifestRoute(ctx, tx, actor, space, target)
	case err != nil:
		return store.Route{}, err
	case rt.SpaceGUID == space.GUID:
		return rt, nil
	}
	shared, err := store.RouteSharedWith(ctx, tx, rt.GUID, space.GUID)
	if err != nil {
		return store.Route{}, err
	}
	if !shared {
		return store.Route{}, apierr.UnprocessableEntity("Routes cannot be mapped to destinations in different spaces.")
	}
	return rt, nil
}

// appRouteOnDomain returns the oldest route of the protocol on the domain
// domainGUID that has a destination of the app appGUID, through tx, or
// ErrNotFound.
func (a *API) appRouteOnDomain(ctx context.Context, tx *sql.Tx, appGUID, domainGUID, protocol string) (store.Route, error) {
	routes, err := store.AppRoutesThrough(ctx, tx, appGUID)
	if err != nil {
		return store.Route{}, err
	}
	for _, rt := range routes {
		if rt.DomainGUID == domainGUID && rt.Protocol == protocol {
			return rt, nil
		}
	}
	return store.Route{}, store.ErrNotFound
}

// createManifestRoute creates the route target in space through tx, with
// the checks and audit event of POST /v3/routes.
func (a *API) createManifestRoute(ctx context.Context, tx *sql.Tx, actor *auth.Actor, space store.Space, target manifestRoute) (store.Route, error) {
	rt := store.Route{GUID: uuid.NewString(), Host: target.Host, Path: target.Path, Protocol: target.Protocol,
		DomainGUID: target.Domain.GUID, DomainName: target.Domain.Name, RouterGroupGUID: target.Domain.RouterGroupGUID,
		SpaceGUID: space.GUID}
	// NOTE: the job's actor carries no scopes, so a manifest route with a
	// wildcard host on a shared domain is rejected even when an admin
	// pushed it. Create such a route with POST /v3/routes first.
	if err := a.checkRouteAgainstDomain(ctx, actor, &rt, target.Port, target.Domain); err != nil {
		return store.Route{}, forRoute(target.Text, err)
	}
	if rt.HasPort() && target.Port == nil {
		port, err := a.freeRouterGroupPort(ctx, rt.RouterGroupGUID, rt.Protocol)
		if err != nil {
			return store.Route{}, forRoute(target.Text, err)
		}
		rt.Port = port
	}

	created, err := store.CreateRoute(ctx, tx, rt)
	if err != nil {
		return store.Route{}, forRoute(target.Text, routeCreateError(err, rt))
	}
	request := map[string]any{
		"host": created.Host, "path": created.Path,
		"relationships": map[string]any{
			"space":  map[string]any{"data": map[string]any{"guid": space.GUID}},
			"domain": map[string]any{"data": map[string]any{"guid": created.DomainGUID}},
		},
	}
	if created.HasPort() {
		request["port"] = created.Port
		request["protocol"] = created.Protocol
	}
	event := routeEvent(actor, "audit.route.create", created, map[string]any{"request": request, "manifest_triggered": true})
	if err := store.RecordAuditEvent(ctx, tx, event); err != nil {
		return store.Route{}, err
	}
	return created, nil
}

// unmapAppRoutes removes every route mapping of app through tx, recording
// an audit.app.unmap-route for each. The routes stay.
func (a *API) unmapAppRoutes(ctx context.Context, tx *sql.Tx, actor *auth.Actor, app store.App) error {
	removed, err := store.DeleteAppDestinations(ctx, tx, app.GUID)
	if err != nil {
		return err
	}
	apps := map[string]store.App{app.GUID: app}
	for _, d := range removed {
		if err := a.recordDestinationEvent(ctx, tx, actor, "audit.app.unmap-route", store.Route{GUID: d.RouteGUID}, apps, d); err != nil {
			return err
		}
	}
	return nil
}

// recordManifestRouteIntent stores what the manifest requests for the
// app's routes, which GET /v3/apps/:guid/manifest renders. Listed routes
// are added to the ones stored, never removed, and no-route clears them.
func recordManifestRouteIntent(ctx context.Context, tx *sql.Tx, appGUID string, routes *manifest.Routes) error {
	intent, err := store.AppRouteIntent(ctx, tx, appGUID)
	if err != nil {
		return err
	}
	if routes.NoRoute != nil && *routes.NoRoute {
		return store.SetRouteIntent(ctx, tx, store.RouteIntent{AppGUID: appGUID, NoRoute: true})
	}
	intent.NoRoute = false
	for _, r := range routes.Routes {
		listed := store.ManifestRoute{Route: r.Route, Protocol: r.Protocol, Options: r.Options}
		i := slices.IndexFunc(intent.Routes, func(have store.ManifestRoute) bool { return strings.EqualFold(have.Route, r.Route) })
		if i >= 0 {
			intent.Routes[i] = listed
			continue
		}
		intent.Routes = append(intent.Routes, listed)
	}
	if routes.RandomRoute != nil {
		intent.RandomRoute = *routes.RandomRoute
	}
	if routes.DefaultRoute != nil {
		intent.DefaultRoute = *routes.DefaultRoute
	}
	return store.SetRouteIntent(ctx, tx, intent)
}
