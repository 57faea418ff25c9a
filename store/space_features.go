package store

import (
	"context"
	"fmt"
)

// SpaceAllowsSSH reports whether the space guid permits SSH into its apps,
// the space's "ssh" feature. It returns ErrNotFound when there is no such
// space. Callers check beforehand that the actor may see the space.
func SpaceAllowsSSH(ctx context.Context, q querier, guid string) (bool, error) {
	var allowed bool
	err := q.QueryRowContext(ctx, `SELECT allow_ssh FROM spaces WHERE guid = $1`, guid).Scan(&allowed)
	if err != nil {
		return false, fmt.Errorf("ssh feature of space %s: %w", guid, mapError(err))
	}
	return allowed, nil
}

// SetSpaceAllowSSH sets the space's "ssh" feature through q. It returns
// ErrNotFound when there is no such space.
func SetSpaceAllowSSH(ctx context.Context, q querier, guid string, allowed bool) error {
	var stored bool
	err := q.QueryRowContext(ctx, `UPDATE spaces SET allow_ssh = $2, updated_at = now() WHERE guid = $1
		RETURNING allow_ssh`, guid, allowed).Scan(&stored)
	if err != nil {
		return fmt.Errorf("set ssh feature of space %s: %w", guid, mapError(err))
	}
	return nil
}
