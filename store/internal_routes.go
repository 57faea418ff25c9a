package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// InternalRoute is a route of an internal domain, such as apps.internal,
// with the spaces its traffic goes to.
type InternalRoute struct {
	Route
	// DestinationSpaceGUIDs are the spaces of the route's destination
	// apps, sorted and without duplicates. A shared route's destinations
	// may be in other spaces than the route.
	DestinationSpaceGUIDs []string
}

// InternalRoutes returns every route of an internal domain with all of
// its destinations, oldest route first. It applies no visibility: the
// controller calls it to write the Services of internal routes.
func (s *Store) InternalRoutes(ctx context.Context) ([]InternalRoute, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+routeColumns+`,
			ARRAY(SELECT DISTINCT ap.space_guid FROM route_destinations rd JOIN apps ap ON ap.guid = rd.app_guid
				WHERE rd.route_guid = r.guid ORDER BY 1)`+routeFrom+`
		WHERE d.internal
		ORDER BY r.created_at, r.guid`)
	if err != nil {
		return nil, fmt.Errorf("internal routes: %w", mapError(err))
	}
	defer rows.Close()

	var internal []InternalRoute
	for rows.Next() {
		var spaces []string
		r, err := scanRoute(rows, pq.Array(&spaces))
		if err != nil {
			return nil, fmt.Errorf("internal routes: %w", err)
		}
		if spaces == nil {
			spaces = []string{}
		}
		internal = append(internal, InternalRoute{Route: r, DestinationSpaceGUIDs: spaces})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("internal routes: %w", mapError(err))
	}

	routes := make([]Route, len(internal))
	for i := range internal {
		routes[i] = internal[i].Route
	}
	if err := attachDestinations(ctx, s.db, routes); err != nil {
		return nil, err
	}
	for i := range internal {
		internal[i].Destinations = routes[i].Destinations
	}
	return internal, nil
}
