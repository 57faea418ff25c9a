package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/lib/pq"
)

const destinationColumns = `rd.guid, rd.route_guid, rd.app_guid, rd.process_type, rd.app_port, COALESCE(rd.weight, 0), rd.protocol`

func scanDestination(row interface{ Scan(...any) error }) (Destination, error) {
	var d Destination
	if err := row.Scan(&d.GUID, &d.RouteGUID, &d.AppGUID, &d.ProcessType, &d.Port, &d.Weight, &d.Protocol); err != nil {
		return Destination{}, mapError(err)
	}
	return d, nil
}

// attachDestinations reads the destinations of routes through q in one
// query and sets each route's Destinations, oldest first.
func attachDestinations(ctx context.Context, q querier, routes []Route) error {
	if len(routes) == 0 {
		return nil
	}
	index := make(map[string]int, len(routes))
	guids := make([]string, len(routes))
	for i, r := range routes {
		index[r.GUID] = i
		guids[i] = r.GUID
		routes[i].Destinations = []Destination{}
	}
	rows, err := q.QueryContext(ctx, `SELECT `+destinationColumns+` FROM route_destinations rd
		WHERE rd.route_guid = ANY($1::text[]) ORDER BY rd.id`, pq.Array(guids))
	if err != nil {
		return fmt.Errorf("route destinations: %w", mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return fmt.Errorf("route destinations: %w", err)
		}
		i := index[d.RouteGUID]
		routes[i].Destinations = append(routes[i].Destinations, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("route destinations: %w", mapError(err))
	}
	return nil
}

// LockRoute takes a row lock on the route guid for the rest of the
// transaction tx, so concurrent destination changes of one route run one
// after another. It returns ErrNotFound when the route is gone.
func LockRoute(ctx context.Context, tx *sql.Tx, guid string) error {
	var g string
	if err := tx.QueryRowContext(ctx, `SELECT guid FROM routes WHERE guid = $1 FOR UPDATE`, guid).Scan(&g); err != nil {
		return fmt.Errorf("lock route %s: %w", guid, mapError(err))
	}
	return nil
}

// RouteDestinationsThrough returns the destinations of the route guid
// through q, oldest first.
func RouteDestinationsThrough(ctx context.Context, q querier, guid string) ([]Destination, error) {
	routes := []Route{{GUID: guid}}
	if err := attachDestinations(ctx, q, routes); err != nil {
		return nil, err
	}
	return routes[0].Destinations, nil
}

// AddDestinations inserts destinations of the route routeGUID through q.
// A destination equal to an existing one, in app, process type, port and
// protocol, is skipped, as Cloud Controller does when a destination is
// added twice. An app that no longer exists is a *ForeignKeyError on
// ConstraintDestinationApp.
func AddDestinations(ctx context.Context, q querier, routeGUID string, destinations []Destination) error {
	for _, d := range destinations {
		var weight any
		if d.Weight > 0 {
			weight = d.Weight
		}
		_, err := q.ExecContext(ctx, `
			INSERT INTO route_destinations (guid, route_guid, app_guid, process_type, app_port, weight, protocol)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (route_guid, app_guid, process_type, app_port, protocol) DO NOTHING`,
			d.GUID, routeGUID, d.AppGUID, d.ProcessType, d.Port, weight, d.Protocol)
		if err != nil {
			return fmt.Errorf("add destination to route %s: %w", routeGUID, mapError(err))
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE routes SET updated_at = now() WHERE guid = $1`, routeGUID); err != nil {
		return fmt.Errorf("add destination to route %s: %w", routeGUID, mapError(err))
	}
	return nil
}

// ReplaceDestinations replaces every destination of the route routeGUID
// with destinations through q. A destination equal to an existing one
// keeps its guid and takes the new weight.
func ReplaceDestinations(ctx context.Context, q querier, routeGUID string, destinations []Destination) error {
	keys := make([]string, 0, len(destinations))
	for _, d := range destinations {
		keys = append(keys, destinationKey(d))
	}
	_, err := q.ExecContext(ctx, `DELETE FROM route_destinations WHERE route_guid = $1
		AND NOT (app_guid || '/' || process_type || '/' || app_port || '/' || protocol) = ANY($2::text[])`,
		routeGUID, pq.Array(keys))
	if err != nil {
		return fmt.Errorf("replace destinations of route %s: %w", routeGUID, mapError(err))
	}
	for _, d := range destinations {
		var weight any
		if d.Weight > 0 {
			weight = d.Weight
		}
		_, err := q.ExecContext(ctx, `
			INSERT INTO route_destinations (guid, route_guid, app_guid, process_type, app_port, weight, protocol)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (route_guid, app_guid, process_type, app_port, protocol)
			DO UPDATE SET weight = EXCLUDED.weight, updated_at = now()`,
			d.GUID, routeGUID, d.AppGUID, d.ProcessType, d.Port, weight, d.Protocol)
		if err != nil {
			return fmt.Errorf("replace destinations of route %s: %w", routeGUID, mapError(err))
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE routes SET updated_at = now() WHERE guid = $1`, routeGUID); err != nil {
		return fmt.Errorf("replace destinations of route %s: %w", routeGUID, mapError(err))
	}
	return nil
}

// destinationKey renders the identity of a destination as the SQL in
// ReplaceDestinations does.
func destinationKey(d Destination) string {
	return fmt.Sprintf("%s/%s/%d/%s", d.AppGUID, d.ProcessType, d.Port, d.Protocol)
}

// DeleteDestination deletes the destination guid of the route routeGUID
// through q and returns it. It returns ErrNotFound when the route has no
// such destination.
func DeleteDestination(ctx context.Context, q querier, routeGUID, guid string) (Destination, error) {
	row := q.QueryRowContext(ctx, `DELETE FROM route_destinations rd WHERE rd.route_guid = $1 AND rd.guid = $2
		RETURNING `+destinationColumns, routeGUID, guid)
	d, err := scanDestination(row)
	if err != nil {
		return Destination{}, fmt.Errorf("delete destination %s of route %s: %w", guid, routeGUID, err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE routes SET updated_at = now() WHERE guid = $1`, routeGUID); err != nil {
		return Destination{}, fmt.Errorf("delete destination %s of route %s: %w", guid, routeGUID, mapError(err))
	}
	return d, nil
}

// DeleteAppDestinations deletes every destination of the app appGUID
// through q and returns them, oldest first. The routes stay.
func DeleteAppDestinations(ctx context.Context, q querier, appGUID string) ([]Destination, error) {
	rows, err := q.QueryContext(ctx, `DELETE FROM route_destinations rd WHERE rd.app_guid = $1
		RETURNING rd.id, `+destinationColumns, appGUID)
	if err != nil {
		return nil, fmt.Errorf("delete destinations of app %s: %w", appGUID, mapError(err))
	}
	defer rows.Close()
	type numbered struct {
		id int64
		d  Destination
	}
	var deleted []numbered
	for rows.Next() {
		var n numbered
		if err := rows.Scan(&n.id, &n.d.GUID, &n.d.RouteGUID, &n.d.AppGUID, &n.d.ProcessType, &n.d.Port, &n.d.Weight, &n.d.Protocol); err != nil {
			return nil, fmt.Errorf("delete destinations of app %s: %w", appGUID, mapError(err))
		}
		deleted = append(deleted, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delete destinations of app %s: %w", appGUID, mapError(err))
	}
	slices.SortFunc(deleted, func(x, y numbered) int { return cmp.Compare(x.id, y.id) })

	out := make([]Destination, len(deleted))
	routes := []string{}
	for i, n := range deleted {
		out[i] = n.d
		if !slices.Contains(routes, n.d.RouteGUID) {
			routes = append(routes, n.d.RouteGUID)
		}
	}
	if len(routes) > 0 {
		if _, err := q.ExecContext(ctx, `UPDATE routes SET updated_at = now() WHERE guid = ANY($1::text[])`, pq.Array(routes)); err != nil {
			return nil, fmt.Errorf("delete destinations of app %s: %w", appGUID, mapError(err))
		}
	}
	return out, nil
}

// AppHasDestinations reports, through q, whether any route sends traffic
// to the app appGUID.
func AppHasDestinations(ctx context.Context, q querier, appGUID string) (bool, error) {
	var mapped bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM route_destinations WHERE app_guid = $1)`, appGUID).Scan(&mapped)
	if err != nil {
		return false, fmt.Errorf("destinations of app %s: %w", appGUID, mapError(err))
	}
	return mapped, nil
}
