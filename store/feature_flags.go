package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"
)

// FeatureFlagDefault is a Cloud Controller feature flag and its value until
// an admin changes it.
type FeatureFlagDefault struct {
	Name    string
	Enabled bool
}

// FeatureFlagDefaults are Cloud Controller's feature flags and their default
// values, as in its FeatureFlag model (cloud_controller_ng, 2026), sorted by
// name. The feature_flags table holds only the flags an admin changed.
var FeatureFlagDefaults = []FeatureFlagDefault{
	{"app_bits_upload", true},
	{"app_scaling", true},
	{"diego_cnb", false},
	{"diego_docker", false},
	{"env_var_visibility", true},
	{"hash_based_routing", false},
	{"hide_marketplace_from_unauthenticated_users", false},
	{"private_domain_creation", true},
	{"resource_matching", true},
	{"route_creation", true},
	{"route_sharing", false},
	{"service_instance_creation", true},
	{"service_instance_sharing", false},
	{"set_roles_by_username", true},
	{"space_developer_env_var_visibility", true},
	{"space_scoped_private_broker_creation", true},
	{"task_creation", true},
	{"unset_roles_by_username", true},
	{"user_org_creation", false},
}

// FeatureFlag is a feature flag's current value.
type FeatureFlag struct {
	Name    string
	Enabled bool
	// CustomErrorMessage replaces the default "Feature Disabled" detail. The
	// empty string means none.
	CustomErrorMessage string
	// UpdatedAt is zero for a flag no admin has changed.
	UpdatedAt time.Time
}

// FeatureFlagUpdate changes a flag. A nil Enabled keeps the current value.
// SetMessage replaces the custom error message with Message, and a nil
// Message clears it.
type FeatureFlagUpdate struct {
	Enabled    *bool
	SetMessage bool
	Message    *string
}

// featureFlagDefault returns the default of the flag name.
func featureFlagDefault(name string) (FeatureFlagDefault, bool) {
	i := slices.IndexFunc(FeatureFlagDefaults, func(d FeatureFlagDefault) bool { return d.Name == name })
	if i < 0 {
		return FeatureFlagDefault{}, false
	}
	return FeatureFlagDefaults[i], true
}

// featureFlagSource is the known flags joined with the admin's changes, as
// a FROM clause whose parameters $1 and $2 are the default names and values.
const featureFlagSource = ` FROM unnest($1::text[], $2::boolean[]) AS d (name, enabled)
	LEFT JOIN feature_flags f ON f.name = d.name`

const featureFlagColumns = `d.name, COALESCE(f.enabled, d.enabled), COALESCE(f.custom_error_message, ''), f.updated_at`

// featureFlagOrder maps created_at, the fallback of Page.orderBy, to the
// name too: flags are listed by name only.
var featureFlagOrder = map[string]string{"name": "d.name", "created_at": "d.name"}

func featureFlagArgs() args {
	names := make([]string, len(FeatureFlagDefaults))
	values := make([]bool, len(FeatureFlagDefaults))
	for i, d := range FeatureFlagDefaults {
		names[i], values[i] = d.Name, d.Enabled
	}
	return args{pq.Array(names), pq.Array(values)}
}

func scanFeatureFlag(row interface{ Scan(...any) error }, extra ...any) (FeatureFlag, error) {
	var f FeatureFlag
	var updated sql.NullTime
	if err := row.Scan(append([]any{&f.Name, &f.Enabled, &f.CustomErrorMessage, &updated}, extra...)...); err != nil {
		return FeatureFlag{}, mapError(err)
	}
	if updated.Valid {
		f.UpdatedAt = updated.Time
	}
	return f, nil
}

// FeatureFlag returns the current value of the flag name, and ErrNotFound
// for a name Cloud Controller does not define.
func (s *Store) FeatureFlag(ctx context.Context, name string) (FeatureFlag, error) {
	if _, ok := featureFlagDefault(name); !ok {
		return FeatureFlag{}, fmt.Errorf("feature flag %s: %w", name, ErrNotFound)
	}
	a := featureFlagArgs()
	row := s.db.QueryRowContext(ctx, `SELECT `+featureFlagColumns+featureFlagSource+` WHERE d.name = `+a.add(name), a...)
	f, err := scanFeatureFlag(row)
	if err != nil {
		return FeatureFlag{}, fmt.Errorf("feature flag %s: %w", name, err)
	}
	return f, nil
}

// FeatureFlags returns one page of the known flags, ordered by name, and
// their total number.
func (s *Store) FeatureFlags(ctx context.Context, page Page) ([]FeatureFlag, int, error) {
	a := featureFlagArgs()
	rows, err := s.db.QueryContext(ctx, `SELECT `+featureFlagColumns+`, COUNT(*) OVER ()`+featureFlagSource+
		page.orderBy(featureFlagOrder, "d.name")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list feature flags: %w", mapError(err))
	}
	defer rows.Close()

	flags := []FeatureFlag{}
	total := 0
	for rows.Next() {
		f, err := scanFeatureFlag(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list feature flags: %w", err)
		}
		flags = append(flags, f)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list feature flags: %w", mapError(err))
	}
	if len(flags) == 0 {
		total = len(FeatureFlagDefaults)
	}
	return flags, total, nil
}

// UpdateFeatureFlag applies u to the flag name through q and returns the
// result. It returns ErrNotFound for a name Cloud Controller does not define.
func UpdateFeatureFlag(ctx context.Context, q querier, name string, u FeatureFlagUpdate) (FeatureFlag, error) {
	def, ok := featureFlagDefault(name)
	if !ok {
		return FeatureFlag{}, fmt.Errorf("update feature flag %s: %w", name, ErrNotFound)
	}
	var message sql.NullString
	if u.Message != nil {
		message = sql.NullString{String: *u.Message, Valid: true}
	}
	var enabled sql.NullBool
	if u.Enabled != nil {
		enabled = sql.NullBool{Bool: *u.Enabled, Valid: true}
	}

	row := q.QueryRowContext(ctx, `
		INSERT INTO feature_flags AS f (name, enabled, custom_error_message, updated_at)
		VALUES ($1, COALESCE($2::boolean, $3::boolean), CASE WHEN $4::boolean THEN $5::text END, now())
		ON CONFLICT (name) DO UPDATE SET
			enabled = COALESCE($2::boolean, f.enabled),
			custom_error_message = CASE WHEN $4::boolean THEN $5::text ELSE f.custom_error_message END,
			updated_at = now()
		RETURNING f.name, f.enabled, COALESCE(f.custom_error_message, ''), f.updated_at`,
		name, enabled, def.Enabled, u.SetMessage, message)
	f, err := scanFeatureFlag(row)
	if err != nil {
		return FeatureFlag{}, fmt.Errorf("update feature flag %s: %w", name, err)
	}
	return f, nil
}
