package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Constraint names a caller translates into Cloud Controller messages.
const (
	// ConstraintRouteHostDomainPath is the unique index on an HTTP route's
	// domain, host without regard to case, and path.
	ConstraintRouteHostDomainPath = "routes_host_domain_path_key"
	// ConstraintRouteDomainPort is the unique index on a TCP route's domain
	// and port.
	ConstraintRouteDomainPort = "routes_domain_port_key"
	// ConstraintRouteRouterGroupPort is the unique index on a TCP route's
	// router group and port.
	ConstraintRouteRouterGroupPort = "routes_router_group_port_key"
	// ConstraintRouteSpace is the foreign key from a route to its space.
	ConstraintRouteSpace = "routes_space_guid_fkey"
	// ConstraintRouteDomain is the foreign key from a route to its domain.
	ConstraintRouteDomain = "routes_domain_guid_fkey"
	// ConstraintDestination is the unique index on a destination's route,
	// app, process type, port and protocol.
	ConstraintDestination = "route_destinations_key"
	// ConstraintDestinationApp is the foreign key from a destination to its
	// app.
	ConstraintDestinationApp = "route_destinations_app_guid_fkey"
)

// Route protocols. UDP routes are a Ferry extension. Like TCP routes, they
// belong to a TCP domain and carry a port.
const (
	RouteProtocolHTTP = "http"
	RouteProtocolTCP  = "tcp"
	RouteProtocolUDP  = "udp"
)

// Destination protocols. DestinationProtocolUDP is the only protocol of a
// UDP route's destinations.
const (
	DestinationProtocolHTTP1 = "http1"
	DestinationProtocolHTTP2 = "http2"
	DestinationProtocolTCP   = "tcp"
	DestinationProtocolUDP   = "udp"
)

// Route is a Cloud Controller route.
type Route struct {
	GUID string
	// Host is "" for a route on the domain itself and "*" for a wildcard.
	Host string
	// Path is "" or starts with "/".
	Path string
	// Port is the port of a TCP or UDP route and 0 for HTTP routes.
	Port int
	// Protocol is RouteProtocolHTTP, RouteProtocolTCP or RouteProtocolUDP.
	Protocol   string
	DomainGUID string
	// DomainName and DomainInternal describe the domain. They are read with
	// the route and ignored on writes.
	DomainName     string
	DomainInternal bool
	// RouterGroupGUID is the router group of a TCP route's domain, or "".
	RouterGroupGUID string
	SpaceGUID       string
	// OrgGUID is the organization of the route's space. It is read with the
	// route and ignored on writes.
	OrgGUID      string
	Labels       map[string]string
	Annotations  map[string]string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Destinations []Destination
}

// HasPort reports whether the route is addressed by a port, as TCP and UDP
// routes are.
func (r Route) HasPort() bool {
	return r.Protocol == RouteProtocolTCP || r.Protocol == RouteProtocolUDP
}

// URL returns the route as Cloud Controller shows it: host.domain/path for
// HTTP routes and domain:port for TCP and UDP routes.
func (r Route) URL() string {
	if r.HasPort() {
		return fmt.Sprintf("%s:%d", r.DomainName, r.Port)
	}
	name := r.DomainName
	if r.Host != "" {
		name = r.Host + "." + name
	}
	return name + r.Path
}

// Destination maps a route to a process type of an app.
type Destination struct {
	GUID        string
	RouteGUID   string
	AppGUID     string
	ProcessType string
	// Port is the port of the app's containers that receives the traffic.
	Port int
	// Weight is the share of the route's traffic in percent, or 0 when the
	// route's destinations are not weighted.
	Weight int
	// Protocol is DestinationProtocolHTTP1, DestinationProtocolHTTP2,
	// DestinationProtocolTCP or DestinationProtocolUDP.
	Protocol string
}

// RouteFilter selects routes. A nil slice does not filter, and a slice
// containing "" matches routes whose host or path is empty.
type RouteFilter struct {
	CommonFilter
	// Hosts match without regard to case.
	Hosts []string
	Paths []string
	Ports []int
	// PortsIncludeNone extends Ports to routes without a port, for the
	// empty value of the ports filter.
	PortsIncludeNone  bool
	DomainGUIDs       []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
	// AppGUIDs keeps routes with a destination of one of these apps.
	AppGUIDs      []string
	LabelSelector LabelSelector
	// MatchNothing makes the filter match no route, for filters on
	// resources Ferry does not have, such as service instances.
	MatchNothing bool
}

const routeColumns = `r.guid, r.host, r.path, COALESCE(r.port, 0), r.protocol, r.domain_guid, d.name, d.internal,
	COALESCE(r.router_group_guid, ''), r.space_guid, s.organization_guid, r.labels, r.annotations, r.created_at, r.updated_at`

const routeFrom = ` FROM routes r JOIN domains d ON d.guid = r.domain_guid JOIN spaces s ON s.guid = r.space_guid`

var routeOrder = map[string]string{
	"created_at": "r.created_at",
	"updated_at": "r.updated_at",
}

// routeCondition restricts routes r to the ones whose space, or one of
// whose shared spaces, vis may see.
func (v Visibility) routeCondition(a *args) string {
	if v.All {
		return "TRUE"
	}
	return `(` + v.spaceCondition("r.space_guid", a) + ` OR EXISTS (SELECT 1 FROM route_shares rs
		WHERE rs.route_guid = r.guid AND ` + v.spaceCondition("rs.space_guid", a) + `))`
}

func scanRoute(row interface{ Scan(...any) error }, extra ...any) (Route, error) {
	var r Route
	var labels, annotations []byte
	dest := append([]any{&r.GUID, &r.Host, &r.Path, &r.Port, &r.Protocol, &r.DomainGUID, &r.DomainName, &r.DomainInternal,
		&r.RouterGroupGUID, &r.SpaceGUID, &r.OrgGUID, &labels, &annotations, &r.CreatedAt, &r.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Route{}, mapError(err)
	}
	var err error
	if r.Labels, err = jsonMap(labels); err != nil {
		return Route{}, err
	}
	if r.Annotations, err = jsonMap(annotations); err != nil {
		return Route{}, err
	}
	r.Destinations = []Destination{}
	return r, nil
}

// CreateRoute inserts r through q and returns it as stored. A route that
// exists is a *UniqueError on ConstraintRouteHostDomainPath,
// ConstraintRouteDomainPort or ConstraintRouteRouterGroupPort. A space or
// domain that no longer exists is a *ForeignKeyError.
func CreateRoute(ctx context.Context, q querier, r Route) (Route, error) {
	var port any
	if r.HasPort() {
		port = r.Port
	}
	_, err := q.ExecContext(ctx, `
		INSERT INTO routes (guid, host, path, port, protocol, domain_guid, router_group_guid, space_guid, labels, annotations)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9, $10)`,
		r.GUID, r.Host, r.Path, port, r.Protocol, r.DomainGUID, r.RouterGroupGUID, r.SpaceGUID,
		metadataJSON(r.Labels), metadataJSON(r.Annotations))
	if err != nil {
		return Route{}, fmt.Errorf("create route %s: %w", r.GUID, mapError(err))
	}
	return routeThrough(ctx, q, r.GUID)
}

// routeThrough reads the route guid and its destinations through q.
func routeThrough(ctx context.Context, q querier, guid string) (Route, error) {
	r, err := scanRoute(q.QueryRowContext(ctx, `SELECT `+routeColumns+routeFrom+` WHERE r.guid = $1`, guid))
	if err != nil {
		return Route{}, fmt.Errorf("route %s: %w", guid, err)
	}
	routes := []Route{r}
	if err := attachDestinations(ctx, q, routes); err != nil {
		return Route{}, err
	}
	return routes[0], nil
}

// RouteAddress identifies a route: an HTTP route by domain, host and path,
// a TCP or UDP route by domain, port and protocol.
type RouteAddress struct {
	DomainGUID string
	Host       string
	Path       string
	Port       int
	Protocol   string
}

// RouteAt returns the route at addr, with its destinations, through q. The
// host matches without regard to case. It returns ErrNotFound when no route
// has that address.
func RouteAt(ctx context.Context, q querier, addr RouteAddress) (Route, error) {
	var row interface{ Scan(...any) error }
	if addr.Protocol == RouteProtocolHTTP {
		row = q.QueryRowContext(ctx, `SELECT `+routeColumns+routeFrom+`
			WHERE r.domain_guid = $1 AND lower(r.host) = lower($2) AND r.path = $3 AND r.port IS NULL`,
			addr.DomainGUID, addr.Host, addr.Path)
	} else {
		row = q.QueryRowContext(ctx, `SELECT `+routeColumns+routeFrom+`
			WHERE r.domain_guid = $1 AND r.port = $2 AND r.protocol = $3`,
			addr.DomainGUID, addr.Port, addr.Protocol)
	}
	r, err := scanRoute(row)
	if err != nil {
		return Route{}, fmt.Errorf("route on domain %s: %w", addr.DomainGUID, err)
	}
	routes := []Route{r}
	if err := attachDestinations(ctx, q, routes); err != nil {
		return Route{}, err
	}
	return routes[0], nil
}

// RouteSharedWith reports, through q, whether the route guid is shared
// with the space spaceGUID.
func RouteSharedWith(ctx context.Context, q querier, guid, spaceGUID string) (bool, error) {
	var shared bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM route_shares WHERE route_guid = $1 AND space_guid = $2)`,
		guid, spaceGUID).Scan(&shared)
	if err != nil {
		return false, fmt.Errorf("shares of route %s: %w", guid, mapError(err))
	}
	return shared, nil
}

// UpdateRouteMetadata applies patch to the route guid through q and returns
// the route. It returns ErrNotFound when there is no such route.
func UpdateRouteMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Route, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Route{}, fmt.Errorf("update route %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE routes SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err != nil {
		return Route{}, fmt.Errorf("update route %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return Route{}, fmt.Errorf("update route %s: %w", guid, ErrNotFound)
	}
	return routeThrough(ctx, q, guid)
}

// DeleteRoute deletes the route guid through q, with its destinations and
// shares. Deleting a route that is already gone succeeds, so a retried
// delete job finishes.
func DeleteRoute(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM routes WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete route %s: %w", guid, mapError(err))
	}
	return nil
}

// DeleteUnmappedRoutes deletes the routes owned by the space spaceGUID
// that have no destination, through q, and returns them.
func DeleteUnmappedRoutes(ctx context.Context, q querier, spaceGUID string) ([]Route, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+routeColumns+routeFrom+`
		WHERE r.space_guid = $1 AND NOT EXISTS (SELECT 1 FROM route_destinations rd WHERE rd.route_guid = r.guid)
		ORDER BY r.created_at, r.guid FOR UPDATE OF r`, spaceGUID)
	if err != nil {
		return nil, fmt.Errorf("unmapped routes of space %s: %w", spaceGUID, mapError(err))
	}
	routes, err := collectRoutes(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("unmapped routes of space %s: %w", spaceGUID, err)
	}
	for _, r := range routes {
		if err := DeleteRoute(ctx, q, r.GUID); err != nil {
			return nil, err
		}
	}
	return routes, nil
}

// TransferRoute makes spaceGUID the owner of the route guid through q. The
// new owner no longer appears among the route's shared spaces.
func TransferRoute(ctx context.Context, q querier, guid, spaceGUID string) error {
	res, err := q.ExecContext(ctx, `UPDATE routes SET space_guid = $2, updated_at = now() WHERE guid = $1`, guid, spaceGUID)
	if err != nil {
		return fmt.Errorf("transfer route %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("transfer route %s: %w", guid, ErrNotFound)
	}
	if _, err := q.ExecContext(ctx, `DELETE FROM route_shares WHERE route_guid = $1 AND space_guid = $2`, guid, spaceGUID); err != nil {
		return fmt.Errorf("transfer route %s: %w", guid, mapError(err))
	}
	return nil
}

// ShareRoute shares the route guid with spaceGUIDs through q. Sharing with
// a space again is not an error.
func ShareRoute(ctx context.Context, q querier, guid string, spaceGUIDs []string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO route_shares (route_guid, space_guid)
		SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, guid, pq.Array(spaceGUIDs))
	if err != nil {
		return fmt.Errorf("share route %s: %w", guid, mapError(err))
	}
	return nil
}

// UnshareRoute stops sharing the route guid with spaceGUID through q.
// Unsharing a space the route is not shared with is not an error.
func UnshareRoute(ctx context.Context, q querier, guid, spaceGUID string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM route_shares WHERE route_guid = $1 AND space_guid = $2`, guid, spaceGUID); err != nil {
		return fmt.Errorf("unshare route %s: %w", guid, mapError(err))
	}
	return nil
}

// RouteSharedSpaces returns the spaces the route guid is shared with that
// vis may see, sorted.
func (s *Store) RouteSharedSpaces(ctx context.Context, guid string, vis Visibility) ([]string, error) {
	a := args{guid}
	rows, err := s.db.QueryContext(ctx, `SELECT rs.space_guid FROM route_shares rs WHERE rs.route_guid = $1 AND `+
		vis.spaceCondition("rs.space_guid", &a)+` ORDER BY rs.space_guid`, a...)
	if err != nil {
		return nil, fmt.Errorf("shared spaces of route %s: %w", guid, mapError(err))
	}
	defer rows.Close()
	spaces := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("shared spaces of route %s: %w", guid, err)
		}
		spaces = append(spaces, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("shared spaces of route %s: %w", guid, mapError(err))
	}
	return spaces, nil
}

// Route returns the route guid with its destinations if vis may see its
// space or a space it is shared with, and ErrNotFound otherwise.
func (s *Store) Route(ctx context.Context, guid string, vis Visibility) (Route, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+routeColumns+routeFrom+` WHERE r.guid = $1 AND `+vis.routeCondition(&a), a...)
	r, err := scanRoute(row)
	if err != nil {
		return Route{}, fmt.Errorf("route %s: %w", guid, err)
	}
	routes := []Route{r}
	if err := attachDestinations(ctx, s.db, routes); err != nil {
		return Route{}, err
	}
	return routes[0], nil
}

// Routes returns one page of the routes vis may see that match f, with
// their destinations, and the total number of matches across all pages.
func (s *Store) Routes(ctx context.Context, f RouteFilter, page Page, vis Visibility) ([]Route, int, error) {
	var a args
	where := []string{vis.routeCondition(&a)}
	where = f.CommonFilter.conditions("r", &a, where)
	if f.MatchNothing {
		where = append(where, "FALSE")
	}
	if f.Hosts != nil {
		where = append(where, "lower(r.host) = ANY("+a.add(pq.Array(lowerAll(f.Hosts)))+"::text[])")
	}
	if f.Paths != nil {
		where = append(where, "r.path = ANY("+a.add(pq.Array(f.Paths))+"::text[])")
	}
	if f.Ports != nil {
		cond := "r.port = ANY(" + a.add(pq.Array(f.Ports)) + "::integer[])"
		if f.PortsIncludeNone {
			cond = "(" + cond + " OR r.port IS NULL)"
		}
		where = append(where, cond)
	}
	if f.DomainGUIDs != nil {
		where = append(where, "r.domain_guid = ANY("+a.add(pq.Array(f.DomainGUIDs))+"::text[])")
	}
	if f.SpaceGUIDs != nil {
		// A route matches the spaces it belongs to and the spaces it is
		// shared into, as in Cloud Controller.
		spaces := a.add(pq.Array(f.SpaceGUIDs))
		where = append(where, "(r.space_guid = ANY("+spaces+"::text[]) OR EXISTS (SELECT 1 FROM route_shares rs"+
			" WHERE rs.route_guid = r.guid AND rs.space_guid = ANY("+spaces+"::text[])))")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "s.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+"::text[])")
	}
	if f.AppGUIDs != nil {
		where = append(where, "EXISTS (SELECT 1 FROM route_destinations rd WHERE rd.route_guid = r.guid AND rd.app_guid = ANY("+
			a.add(pq.Array(f.AppGUIDs))+"::text[]))")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("r.labels", &a))
	}

	from := routeFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+routeColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(routeOrder, "r.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list routes: %w", mapError(err))
	}
	total := 0
	routes, err := collectRoutes(rows, &total)
	if err != nil {
		return nil, 0, fmt.Errorf("list routes: %w", err)
	}
	if len(routes) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list routes: %w", err)
		}
	}
	if err := attachDestinations(ctx, s.db, routes); err != nil {
		return nil, 0, err
	}
	return routes, total, nil
}

// collectRoutes scans and closes rows of routeColumns, each followed by the
// total when total is not nil.
func collectRoutes(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}, total *int) ([]Route, error) {
	defer rows.Close()
	routes := []Route{}
	for rows.Next() {
		var extra []any
		if total != nil {
			extra = append(extra, total)
		}
		r, err := scanRoute(rows, extra...)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return routes, nil
}

// RoutesOfApp returns every route with a destination of the app appGUID,
// with all of each route's destinations, oldest first. It applies no
// visibility: the controller calls it.
func (s *Store) RoutesOfApp(ctx context.Context, appGUID string) ([]Route, error) {
	return AppRoutesThrough(ctx, s.db, appGUID)
}

// AppRoutesThrough is RoutesOfApp through q.
func AppRoutesThrough(ctx context.Context, q querier, appGUID string) ([]Route, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+routeColumns+routeFrom+`
		WHERE EXISTS (SELECT 1 FROM route_destinations rd WHERE rd.route_guid = r.guid AND rd.app_guid = $1)
		ORDER BY r.created_at, r.guid`, appGUID)
	if err != nil {
		return nil, fmt.Errorf("routes of app %s: %w", appGUID, mapError(err))
	}
	routes, err := collectRoutes(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("routes of app %s: %w", appGUID, err)
	}
	if err := attachDestinations(ctx, q, routes); err != nil {
		return nil, err
	}
	return routes, nil
}

// DestinationsForSpace returns the routes that send traffic to apps in the
// space spaceGUID, each with only the destinations of those apps, oldest
// route first. The routes may belong to other spaces that shared them. It
// applies no visibility: the controller calls it to build one namespace's
// routing objects.
func (s *Store) DestinationsForSpace(ctx context.Context, spaceGUID string) ([]Route, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+routeColumns+routeFrom+`
		WHERE EXISTS (SELECT 1 FROM route_destinations rd JOIN apps ap ON ap.guid = rd.app_guid
			WHERE rd.route_guid = r.guid AND ap.space_guid = $1)
		ORDER BY r.created_at, r.guid`, spaceGUID)
	if err != nil {
		return nil, fmt.Errorf("routes of space %s: %w", spaceGUID, mapError(err))
	}
	routes, err := collectRoutes(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("routes of space %s: %w", spaceGUID, err)
	}
	if err := attachDestinations(ctx, s.db, routes); err != nil {
		return nil, err
	}

	appSpaces, err := s.appSpacesOfDestinations(ctx, routes)
	if err != nil {
		return nil, err
	}
	for i := range routes {
		kept := []Destination{}
		for _, d := range routes[i].Destinations {
			if appSpaces[d.AppGUID] == spaceGUID {
				kept = append(kept, d)
			}
		}
		routes[i].Destinations = kept
	}
	return routes, nil
}

// appSpacesOfDestinations maps each destination app of routes to its space.
func (s *Store) appSpacesOfDestinations(ctx context.Context, routes []Route) (map[string]string, error) {
	var apps []string
	for _, r := range routes {
		for _, d := range r.Destinations {
			apps = append(apps, d.AppGUID)
		}
	}
	spaces := map[string]string{}
	if len(apps) == 0 {
		return spaces, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT guid, space_guid FROM apps WHERE guid = ANY($1::text[])`, pq.Array(apps))
	if err != nil {
		return nil, fmt.Errorf("spaces of destination apps: %w", mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var app, space string
		if err := rows.Scan(&app, &space); err != nil {
			return nil, fmt.Errorf("spaces of destination apps: %w", err)
		}
		spaces[app] = space
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("spaces of destination apps: %w", mapError(err))
	}
	return spaces, nil
}

// RouterGroupPorts returns the ports that routes of the router group
// groupGUID with the given protocol use, ascending. A TCP and a UDP route
// may share a port, so each protocol has its own set.
func (s *Store) RouterGroupPorts(ctx context.Context, groupGUID, protocol string) ([]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT port FROM routes WHERE router_group_guid = $1 AND protocol = $2 ORDER BY port`,
		groupGUID, protocol)
	if err != nil {
		return nil, fmt.Errorf("ports of router group %s: %w", groupGUID, mapError(err))
	}
	defer rows.Close()
	ports := []int{}
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("ports of router group %s: %w", groupGUID, err)
		}
		ports = append(ports, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ports of router group %s: %w", groupGUID, mapError(err))
	}
	return ports, nil
}
