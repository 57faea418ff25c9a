package store

import (
	"context"
	"fmt"
)

// OrganizationDedicatedGateway reports whether the organization guid has
// its own Gateway, a Ferry extension that only admins set. It returns
// ErrNotFound when there is no such organization.
func (s *Store) OrganizationDedicatedGateway(ctx context.Context, guid string) (bool, error) {
	var dedicated bool
	err := s.db.QueryRowContext(ctx, `SELECT dedicated_gateway FROM organizations WHERE guid = $1`, guid).Scan(&dedicated)
	if err != nil {
		return false, fmt.Errorf("dedicated gateway of organization %s: %w", guid, mapError(err))
	}
	return dedicated, nil
}

// SetOrganizationDedicatedGateway sets whether the organization guid has
// its own Gateway, through q. It returns ErrNotFound when there is no such
// organization.
func SetOrganizationDedicatedGateway(ctx context.Context, q querier, guid string, dedicated bool) error {
	res, err := q.ExecContext(ctx, `UPDATE organizations SET dedicated_gateway = $2,
		updated_at = CASE WHEN dedicated_gateway = $2 THEN updated_at ELSE now() END WHERE guid = $1`, guid, dedicated)
	if err != nil {
		return fmt.Errorf("set dedicated gateway of organization %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("set dedicated gateway of organization %s: %w", guid, ErrNotFound)
	}
	return nil
}

// DedicatedGatewayOrgs returns the guids of the organizations that have
// their own Gateway, sorted. It applies no visibility, because the
// controller calls it to decide which Gateways to keep.
func (s *Store) DedicatedGatewayOrgs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT guid FROM organizations WHERE dedicated_gateway ORDER BY guid`)
	if err != nil {
		return nil, fmt.Errorf("organizations with a dedicated gateway: %w", mapError(err))
	}
	defer rows.Close()
	guids := []string{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("organizations with a dedicated gateway: %w", err)
		}
		guids = append(guids, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("organizations with a dedicated gateway: %w", mapError(err))
	}
	return guids, nil
}
