package store

import (
	"context"
	"fmt"
	"time"
)

// Names of the two environment variable groups, as Cloud Controller names
// them.
const (
	EnvironmentVariableGroupRunning = "running"
	EnvironmentVariableGroupStaging = "staging"
)

// EnvironmentVariableGroup is a platform-wide set of environment variables:
// the running group reaches every app instance and the staging group every
// staging container. An app's own variables override the group's.
type EnvironmentVariableGroup struct {
	Name string
	// Variables are secrets: never log them or copy them into audit events.
	Variables map[string]string
	UpdatedAt time.Time
}

func scanEnvironmentVariableGroup(row interface{ Scan(...any) error }) (EnvironmentVariableGroup, error) {
	var g EnvironmentVariableGroup
	var env []byte
	if err := row.Scan(&g.Name, &env, &g.UpdatedAt); err != nil {
		return EnvironmentVariableGroup{}, mapError(err)
	}
	var err error
	if g.Variables, err = envMap(env); err != nil {
		return EnvironmentVariableGroup{}, err
	}
	return g, nil
}

// EnvironmentVariableGroup returns the group name, EnvironmentVariableGroupRunning or
// EnvironmentVariableGroupStaging, and ErrNotFound for any other name.
func (s *Store) EnvironmentVariableGroup(ctx context.Context, name string) (EnvironmentVariableGroup, error) {
	row := s.db.QueryRowContext(ctx, `SELECT name, environment_variables, updated_at
		FROM environment_variable_groups WHERE name = $1`, name)
	g, err := scanEnvironmentVariableGroup(row)
	if err != nil {
		return EnvironmentVariableGroup{}, fmt.Errorf("environment variable group %s: %w", name, err)
	}
	return g, nil
}

// PatchEnvironmentVariableGroup merges patch into the group name through q
// in one statement and returns the group. A nil value removes its variable,
// and variables the patch does not name stay. It returns ErrNotFound for a
// name other than the two groups.
func PatchEnvironmentVariableGroup(ctx context.Context, q querier, name string, patch map[string]*string) (EnvironmentVariableGroup, error) {
	set, remove, err := splitPatch(patch)
	if err != nil {
		return EnvironmentVariableGroup{}, fmt.Errorf("patch environment variable group %s: encode variables", name)
	}
	row := q.QueryRowContext(ctx, `UPDATE environment_variable_groups
		SET environment_variables = (environment_variables || $2::jsonb) - $3::text[], updated_at = now()
		WHERE name = $1
		RETURNING name, environment_variables, updated_at`, name, set, remove)
	g, err := scanEnvironmentVariableGroup(row)
	if err != nil {
		return EnvironmentVariableGroup{}, fmt.Errorf("patch environment variable group %s: %w", name, err)
	}
	return g, nil
}
