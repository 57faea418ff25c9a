package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// RoutesChannel carries the GUID of a space whose routing objects need a
// sync, or "" when every space and the Gateways need one. The triggers of
// migration 00017 send it when routes, destinations, route shares, domains,
// certificates or an organization's dedicated_gateway flag change, and
// when an app is deleted.
const RoutesChannel = "ferry_routes"

// ListenRoutes calls fn with the payload of every notification on
// RoutesChannel until ctx ends: a space GUID, or "" for every space. Like
// Listen, it also calls fn with "" after a reconnect.
func ListenRoutes(ctx context.Context, url string, fn func(spaceGUID string)) error {
	return Listen(ctx, url, RoutesChannel, fn)
}

// AppSpaceGUID returns the GUID of the space of app appGUID, or ErrNotFound
// when there is no such app. It applies no visibility: the controller calls
// it to find the namespace of an app's objects.
func (s *Store) AppSpaceGUID(ctx context.Context, appGUID string) (string, error) {
	var space string
	err := s.db.QueryRowContext(ctx, `SELECT space_guid FROM apps WHERE guid = $1`, appGUID).Scan(&space)
	if err != nil {
		return "", fmt.Errorf("space of app %s: %w", appGUID, mapError(err))
	}
	return space, nil
}

// DedicatedGatewayDomains maps each of domainGUIDs that is a private
// domain of an organization with a dedicated Gateway to that
// organization's GUID. Other domains, and GUIDs of no domain, are left
// out. It applies no visibility.
func (s *Store) DedicatedGatewayDomains(ctx context.Context, domainGUIDs []string) (map[string]string, error) {
	orgs := map[string]string{}
	if len(domainGUIDs) == 0 {
		return orgs, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT d.guid, o.guid FROM domains d
		JOIN organizations o ON o.guid = d.organization_guid
		WHERE o.dedicated_gateway AND d.guid = ANY($1::text[])`, pq.Array(domainGUIDs))
	if err != nil {
		return nil, fmt.Errorf("domains with a dedicated gateway: %w", mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var domain, org string
		if err := rows.Scan(&domain, &org); err != nil {
			return nil, fmt.Errorf("domains with a dedicated gateway: %w", mapError(err))
		}
		orgs[domain] = org
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("domains with a dedicated gateway: %w", mapError(err))
	}
	return orgs, nil
}
