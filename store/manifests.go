package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// ManifestRoute is one route of an app manifest's routes list.
type ManifestRoute struct {
	Route    string
	Protocol string
	Options  map[string]string
}

// manifestRouteJSON is a ManifestRoute in the routes column.
type manifestRouteJSON struct {
	Route    string            `json:"route"`
	Protocol string            `json:"protocol,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
}

// RouteIntent is the routing that manifests requested for an app. Routes
// contains the routes to map. NoRoute means the app has no routes.
// RandomRoute and DefaultRoute request a generated route when the app has
// none.
type RouteIntent struct {
	AppGUID      string
	Routes       []ManifestRoute
	NoRoute      bool
	RandomRoute  bool
	DefaultRoute bool
	UpdatedAt    time.Time
}

// SetRouteIntent stores intent for its app through q, replacing the one
// stored before.
func SetRouteIntent(ctx context.Context, q querier, intent RouteIntent) error {
	routes := make([]manifestRouteJSON, len(intent.Routes))
	for i, r := range intent.Routes {
		routes[i] = manifestRouteJSON(r)
	}
	raw, err := json.Marshal(routes)
	if err != nil {
		return fmt.Errorf("set route intent of app %s: %w", intent.AppGUID, err)
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO app_route_intents (app_guid, routes, no_route, random_route, default_route)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (app_guid) DO UPDATE SET routes = EXCLUDED.routes, no_route = EXCLUDED.no_route,
			random_route = EXCLUDED.random_route, default_route = EXCLUDED.default_route, updated_at = now()`,
		intent.AppGUID, raw, intent.NoRoute, intent.RandomRoute, intent.DefaultRoute)
	if err != nil {
		return fmt.Errorf("set route intent of app %s: %w", intent.AppGUID, mapError(err))
	}
	return nil
}

// AppRouteIntent returns the route intent of the app appGUID through q,
// or an empty intent when no manifest set one.
func AppRouteIntent(ctx context.Context, q querier, appGUID string) (RouteIntent, error) {
	intent := RouteIntent{AppGUID: appGUID, Routes: []ManifestRoute{}}
	var raw []byte
	err := q.QueryRowContext(ctx, `
		SELECT routes, no_route, random_route, default_route, updated_at FROM app_route_intents WHERE app_guid = $1`,
		appGUID).Scan(&raw, &intent.NoRoute, &intent.RandomRoute, &intent.DefaultRoute, &intent.UpdatedAt)
	if err = mapError(err); err == ErrNotFound {
		return intent, nil
	}
	if err != nil {
		return RouteIntent{}, fmt.Errorf("route intent of app %s: %w", appGUID, err)
	}
	if intent.Routes, err = decodeManifestRoutes(raw); err != nil {
		return RouteIntent{}, fmt.Errorf("route intent of app %s: %w", appGUID, err)
	}
	return intent, nil
}

// ManifestApply is the request of a space.apply_manifest job: the manifest
// to apply to a space and who sent it. Manifest holds environment variable
// values, which are secrets: never log it.
type ManifestApply struct {
	JobGUID   string
	SpaceGUID string
	ActorGUID string
	ActorName string
	Manifest  []byte
}

// CreateManifestApply stores m through q, normally the transaction that
// creates its job.
func CreateManifestApply(ctx context.Context, q querier, m ManifestApply) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO manifest_applies (job_guid, space_guid, actor_guid, actor_name, manifest)
		VALUES ($1, $2, $3, $4, $5)`,
		m.JobGUID, m.SpaceGUID, m.ActorGUID, m.ActorName, m.Manifest)
	if err != nil {
		return fmt.Errorf("store manifest of job %s: %w", m.JobGUID, mapError(err))
	}
	return nil
}

// ManifestApplyOfJob returns the manifest request of the job jobGUID, or
// ErrNotFound when it was deleted because the job finished.
func (s *Store) ManifestApplyOfJob(ctx context.Context, jobGUID string) (ManifestApply, error) {
	m := ManifestApply{JobGUID: jobGUID}
	err := s.db.QueryRowContext(ctx, `
		SELECT space_guid, actor_guid, actor_name, manifest FROM manifest_applies WHERE job_guid = $1`,
		jobGUID).Scan(&m.SpaceGUID, &m.ActorGUID, &m.ActorName, &m.Manifest)
	if err != nil {
		return ManifestApply{}, fmt.Errorf("manifest of job %s: %w", jobGUID, mapError(err))
	}
	return m, nil
}

// DeleteManifestApply deletes the manifest request of the job jobGUID.
// Deleting one that is gone succeeds.
func (s *Store) DeleteManifestApply(ctx context.Context, jobGUID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM manifest_applies WHERE job_guid = $1`, jobGUID); err != nil {
		return fmt.Errorf("delete manifest of job %s: %w", jobGUID, mapError(err))
	}
	return nil
}

// AppByName returns, through q, the app of the space spaceGUID named name
// without regard to case, and locks its row until q's transaction ends so
// concurrent manifests apply one after the other. It returns ErrNotFound
// when the space has no such app.
func AppByName(ctx context.Context, q querier, spaceGUID, name string) (App, error) {
	row := q.QueryRowContext(ctx, `SELECT `+appColumns+appFrom+`
		WHERE a.space_guid = $1 AND lower(a.name) = lower($2) FOR UPDATE OF a`, spaceGUID, name)
	app, err := scanApp(row)
	if err != nil {
		return App{}, fmt.Errorf("app %q of space %s: %w", name, spaceGUID, err)
	}
	return app, nil
}

// RouteIntents returns the route intents of the apps appGUIDs through q,
// keyed by app guid. Apps without one are missing from the map.
func RouteIntents(ctx context.Context, q querier, appGUIDs []string) (map[string]RouteIntent, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT app_guid, routes, no_route, random_route, default_route, updated_at FROM app_route_intents
		WHERE app_guid = ANY($1::text[])`, pq.Array(appGUIDs))
	if err != nil {
		return nil, fmt.Errorf("route intents: %w", mapError(err))
	}
	defer rows.Close()

	intents := map[string]RouteIntent{}
	for rows.Next() {
		var intent RouteIntent
		var raw []byte
		if err := rows.Scan(&intent.AppGUID, &raw, &intent.NoRoute, &intent.RandomRoute, &intent.DefaultRoute, &intent.UpdatedAt); err != nil {
			return nil, fmt.Errorf("route intents: %w", mapError(err))
		}
		if intent.Routes, err = decodeManifestRoutes(raw); err != nil {
			return nil, fmt.Errorf("route intent of app %s: %w", intent.AppGUID, err)
		}
		intents[intent.AppGUID] = intent
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("route intents: %w", mapError(err))
	}
	return intents, nil
}

// decodeManifestRoutes decodes the routes column.
func decodeManifestRoutes(raw []byte) ([]ManifestRoute, error) {
	var stored []manifestRouteJSON
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, fmt.Errorf("decode routes: %w", err)
	}
	routes := make([]ManifestRoute, 0, len(stored))
	for _, r := range stored {
		routes = append(routes, ManifestRoute(r))
	}
	return routes, nil
}
