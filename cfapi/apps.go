package cfapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Async operations of apps.
const opAppDelete = "app.delete"

// flagDiegoDocker gates docker apps, as in Cloud Controller, where it is
// off by default.
const flagDiegoDocker = "diego_docker"

// privateDataHidden is Cloud Controller's placeholder for secrets, such as
// environment variables, in audit events and redacted responses.
const privateDataHidden = "[PRIVATE DATA HIDDEN]"

func (a *API) appRoutes() []route {
	const base = "/v3/apps"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listApps},
		{method: http.MethodPost, path: base, handler: a.createApp},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getApp},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateApp},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteApp},
		{method: http.MethodPost, path: base + "/{guid}/actions/start", handler: a.startApp},
		{method: http.MethodPost, path: base + "/{guid}/actions/stop", handler: a.stopApp},
		{method: http.MethodPost, path: base + "/{guid}/actions/restart", handler: a.restartApp},
		{method: http.MethodGet, path: base + "/{guid}/permissions", handler: a.appPermissions},
		{method: http.MethodGet, path: base + "/{guid}/env", handler: a.getAppEnv},
		{method: http.MethodGet, path: base + "/{guid}/environment_variables", handler: a.getAppEnvironmentVariables},
		{method: http.MethodPatch, path: base + "/{guid}/environment_variables", handler: a.updateAppEnvironmentVariables},
		{method: http.MethodGet, path: base + "/{guid}/features", handler: a.listAppFeatures},
		{method: http.MethodGet, path: base + "/{guid}/features/{name}", handler: a.getAppFeature},
		{method: http.MethodPatch, path: base + "/{guid}/features/{name}", handler: a.updateAppFeature},
		{method: http.MethodGet, path: base + "/{guid}/ssh_enabled", handler: a.appSSHEnabled},
	}
}

func (a *API) appJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opAppDelete: a.runAppDelete}
}

// errAppNotFound is the 404 for an app that does not exist or that the
// actor cannot see. The cf CLI matches the detail "App not found".
func errAppNotFound() error { return apierr.NotFound("App") }

// errInvalidAppSpace is the 422 for an app whose space does not exist or
// is invisible to the actor.
func errInvalidAppSpace() error {
	return apierr.UnprocessableEntity("Invalid space. Ensure that the space exists and you have access to it.")
}

// errAppNameTaken is Cloud Controller's duplicate app name error. The cf
// CLI matches "App with the name '…' already exists." to tell a duplicate
// from other failures.
func errAppNameTaken(name string) error {
	return apierr.UniquenessError("App with the name '" + name + "' already exists.")
}

// appForRead returns the app guid if the actor of r may see it: admins,
// read-only admins, global auditors, members of the app's space and
// managers of its organization. Any other app is a 404 "App not found".
func (a *API) appForRead(r *http.Request, guid string) (store.App, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.App{}, err
	}
	app, err := a.store.App(r.Context(), visibility(r), guid)
	if errors.Is(err, store.ErrNotFound) {
		return store.App{}, errAppNotFound()
	}
	return app, err
}

// appForWrite returns the app guid if the actor of r may change it: admins
// and space developers of the app's space, as for Cloud Controller's app,
// package and build writes. An invisible app is a 404. A visible app that
// the actor may not change is a 403, and so is any change by a non-admin in
// a suspended organization or space.
func (a *API) appForWrite(r *http.Request, guid string) (store.App, error) {
	return a.appWithSpaceRole(r, guid, roleSpaceDeveloper)
}

// appForManage is appForWrite for the actions that Cloud Controller also
// allows space supporters: start, stop, restart and changing environment
// variables.
func (a *API) appForManage(r *http.Request, guid string) (store.App, error) {
	return a.appWithSpaceRole(r, guid, roleSpaceDeveloper, roleSpaceSupporter)
}

func (a *API) appWithSpaceRole(r *http.Request, guid string, spaceRoles ...string) (store.App, error) {
	app, err := a.appForRead(r, guid)
	if err != nil {
		return store.App{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), app.OrgGUID, app.SpaceGUID, spaceRoles...); err != nil {
		return store.App{}, err
	}
	return app, nil
}

// authorizeSpaceRole checks that actor may write in the space spaceGUID of
// the organization orgGUID with one of spaceRoles, which are space role
// types. Admins always may. Other actors need a write-capable token and one
// of the roles in the space itself, and neither the organization nor the
// space may be suspended. The caller has established that the space is
// visible, so a refusal is a 403.
func (a *API) authorizeSpaceRole(ctx context.Context, actor *auth.Actor, orgGUID, spaceGUID string, spaceRoles ...string) error {
	if actor.IsAdmin() {
		return nil
	}
	if err := requireWrite(actor); err != nil {
		return err
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, orgGUID, spaceGUID)
	if err != nil {
		return err
	}
	if !(store.RoleSet{Space: roles.Space}).Has(spaceRoles...) {
		return apierr.NotAuthorized()
	}

	org, err := a.store.Organization(ctx, orgGUID, store.Visibility{All: true})
	if err != nil {
		return err
	}
	if org.Suspended {
		return errOrgSuspended()
	}
	space, err := a.store.Space(ctx, spaceGUID, store.Visibility{All: true})
	if err != nil {
		return err
	}
	if space.Suspended {
		return errSpaceSuspended()
	}
	return nil
}

// canReadAppSecrets reports whether actor may read the secrets of app:
// admins, read-only admins and developers of the app's space may. Global
// auditors may not.
func (a *API) canReadAppSecrets(ctx context.Context, actor *auth.Actor, app store.App) (bool, error) {
	return a.hasGlobalSecretsOrSpaceRole(ctx, actor, app, roleSpaceDeveloper)
}

// hasGlobalSecretsOrSpaceRole reports whether actor is an admin or a
// read-only admin, or holds one of spaceRoles in the app's space.
func (a *API) hasGlobalSecretsOrSpaceRole(ctx context.Context, actor *auth.Actor, app store.App, spaceRoles ...string) (bool, error) {
	if actor.IsAdmin() || actor.HasScope(auth.ScopeAdminReadOnly) {
		return true, nil
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, app.OrgGUID, app.SpaceGUID)
	if err != nil {
		return false, err
	}
	return (store.RoleSet{Space: roles.Space}).Has(spaceRoles...), nil
}

// requireFlag fails with CF-FeatureDisabled unless the feature flag name is
// enabled.
func (a *API) requireFlag(ctx context.Context, name string) error {
	enabled, message, err := a.featureEnabled(ctx, name)
	if err != nil {
		return err
	}
	if !enabled {
		return apierr.FeatureDisabled(name, message)
	}
	return nil
}

var appListSpec = withCommonFilters(listSpec{
	filters:  []string{"names", "space_guids", "organization_guids", "stacks", "lifecycle_type", "label_selector"},
	orderBy:  []string{"created_at", "updated_at", "name", "state"},
	includes: []string{"space", "org", "space.organization"},
})

var appGetSpec = listSpec{includes: appListSpec.includes}

func (a *API) listApps(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, appListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := appFilterOf(q)
	if err != nil {
		return nil, err
	}

	// The app JSON has no environment variables.
	filter.OmitEnvironment = true
	apps, total, err := a.store.Apps(ctx, filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}

	resources := make([]appJSON, len(apps))
	for i, app := range apps {
		resources[i] = a.presentApp(app)
	}
	body := a.list(r, q.page, total, resources)
	if body.Included, err = a.appIncludes(ctx, r, q, apps); err != nil {
		return nil, err
	}
	return ok(body), nil
}

// appFilterOf turns the validated query of GET /v3/apps into a filter.
func appFilterOf(q *listQuery) (store.AppFilter, error) {
	common, err := commonFilter(q)
	if err != nil {
		return store.AppFilter{}, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.AppFilter{}, err
	}
	filter := store.AppFilter{
		CommonFilter:      common,
		Names:             q.filter("names"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
		Stacks:            q.filter("stacks"),
		LabelSelector:     selector,
	}
	if q.has("lifecycle_type") {
		filter.LifecycleType = q.values.Get("lifecycle_type")
		if !slices.Contains(appLifecycleTypes, filter.LifecycleType) {
			return store.AppFilter{}, apierr.BadQueryParameter("Lifecycle type must be one of " + quoteList(appLifecycleTypes))
		}
	}
	return filter, nil
}

// appIncludes fetches the resources that include= requests, with one query
// per included type: "space" adds the apps' spaces, "org" their organizations, and
// "space.organization" both. It returns nil when nothing is included.
func (a *API) appIncludes(ctx context.Context, r *http.Request, q *listQuery, apps []store.App) (map[string]any, error) {
	withSpaces := q.includes("space") || q.includes("space.organization")
	withOrgs := q.includes("org") || q.includes("space.organization")
	if !withSpaces && !withOrgs {
		return nil, nil
	}

	spaceGUIDs := make([]string, 0, len(apps))
	orgGUIDs := make([]string, 0, len(apps))
	for _, app := range apps {
		spaceGUIDs = append(spaceGUIDs, app.SpaceGUID)
		orgGUIDs = append(orgGUIDs, app.OrgGUID)
	}
	included := map[string]any{}
	if withSpaces {
		spaces, err := a.includedSpaces(ctx, r, spaceGUIDs)
		if err != nil {
			return nil, err
		}
		included["spaces"] = spaces
	}
	if withOrgs {
		orgs, err := a.spaceOrganizations(ctx, r, orgGUIDs)
		if err != nil {
			return nil, err
		}
		included["organizations"] = orgs
	}
	return included, nil
}

// includedSpaces fetches the distinct spaces of guids in one query.
func (a *API) includedSpaces(ctx context.Context, r *http.Request, guids []string) ([]spaceJSON, error) {
	slices.Sort(guids)
	guids = slices.Compact(guids)
	out := []spaceJSON{}
	if len(guids) == 0 {
		return out, nil
	}
	page := store.Page{Number: 1, PerPage: len(guids), OrderBy: "name"}
	spaces, _, err := a.store.Spaces(ctx, store.SpaceFilter{GUIDs: guids}, page, visibility(r))
	if err != nil {
		return nil, err
	}
	for _, s := range spaces {
		out = append(out, a.presentSpace(s))
	}
	return out, nil
}

func (a *API) getApp(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appGetSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}

	body := a.presentApp(app)
	if body.Included, err = a.appIncludes(r.Context(), r, q, []store.App{app}); err != nil {
		return nil, err
	}
	return ok(body), nil
}

// createApp serves POST /v3/apps for admins and developers of the app's
// space. A space the actor cannot see is a 422, as in Cloud Controller,
// because it is named in the body, not the path. Everything is validated
// before the one transaction that inserts the app and its audit event.
func (a *API) createApp(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var p appCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	app, request, err := a.appFromCreatePayload(p)
	if err != nil {
		return nil, err
	}

	space, err := a.store.Space(ctx, app.SpaceGUID, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidAppSpace()
	}
	if err != nil {
		return nil, err
	}
	app.OrgGUID = space.OrganizationGUID
	if err := a.authorizeSpaceRole(ctx, actor, space.OrganizationGUID, space.GUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	if app.LifecycleType == store.LifecycleDocker {
		if err := a.requireFlag(ctx, flagDiegoDocker); err != nil {
			return nil, err
		}
	}

	name := app.Name
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if app, err = store.CreateApp(ctx, tx, app); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.create", app, map[string]any{"request": request}))
	})
	var fkErr *store.ForeignKeyError
	switch {
	case store.IsUnique(err, store.ConstraintAppName):
		return nil, errAppNameTaken(name)
	case errors.As(err, &fkErr):
		// The space was deleted after it was read.
		return nil, errInvalidAppSpace()
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("app created", "app_guid", app.GUID, "space_guid", app.SpaceGUID)
	return created(a.presentApp(app)), nil
}

// appFromCreatePayload validates p and returns the app it describes, with
// a new guid, and the data.request of its audit event. It reads nothing
// from the database.
func (a *API) appFromCreatePayload(p appCreatePayload) (store.App, map[string]any, error) {
	if err := validateTenancyName(p.Name, true); err != nil {
		return store.App{}, nil, err
	}
	spaceGUID := p.spaceGUID()
	if spaceGUID == "" {
		return store.App{}, nil, apierr.UnprocessableEntity("Relationships.space is required: send relationships.space.data.guid with the guid of the app's space")
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return store.App{}, nil, err
	}
	env, err := parseEnvironmentVariables(p.EnvironmentVariables, "Environment variables", false)
	if err != nil {
		return store.App{}, nil, err
	}
	lifecycle, err := a.parseLifecycle(p.Lifecycle, "")
	if err != nil {
		return store.App{}, nil, err
	}

	labels, annotations := metadataValues(p.Metadata)
	app := store.App{
		GUID:                 uuid.NewString(),
		Name:                 *p.Name,
		SpaceGUID:            spaceGUID,
		State:                store.AppStateStopped,
		LifecycleType:        lifecycle.Type,
		Buildpacks:           lifecycle.Buildpacks,
		Stack:                lifecycle.Stack,
		EnvironmentVariables: map[string]string{},
		Labels:               labels,
		Annotations:          annotations,
	}
	for key, value := range env {
		if value != nil {
			app.EnvironmentVariables[key] = *value
		}
	}
	if lifecycle.Type == store.LifecycleBuildpack && app.Stack == "" {
		app.Stack = a.staging.DefaultStack
	}
	return app, p.auditRequest(lifecycle), nil
}

// updateApp serves PATCH /v3/apps/:guid for admins and space developers:
// name, lifecycle data and metadata. The lifecycle type cannot change.
func (a *API) updateApp(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForWrite(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}

	var p appUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	update, request, err := a.appUpdateFromPayload(p, app)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if app, err = store.UpdateApp(ctx, tx, app.GUID, update); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.update", app, map[string]any{"request": request}))
	})
	switch {
	case store.IsUnique(err, store.ConstraintAppName):
		return nil, errAppNameTaken(*p.Name)
	case errors.Is(err, store.ErrNotFound):
		return nil, errAppNotFound()
	case err != nil:
		return nil, err
	}
	return ok(a.presentApp(app)), nil
}

// appUpdateFromPayload validates p against the current app and returns the
// store update it requests and the data.request of its audit event.
func (a *API) appUpdateFromPayload(p appUpdatePayload, app store.App) (store.AppUpdate, map[string]any, error) {
	if err := validateTenancyName(p.Name, false); err != nil {
		return store.AppUpdate{}, nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return store.AppUpdate{}, nil, err
	}
	lifecycle, err := a.parseLifecycle(p.Lifecycle, app.LifecycleType)
	if err != nil {
		return store.AppUpdate{}, nil, err
	}
	if lifecycle.Type != app.LifecycleType {
		return store.AppUpdate{}, nil, apierr.UnprocessableEntity("Lifecycle type cannot be changed from " + app.LifecycleType + " to " + lifecycle.Type)
	}

	update := store.AppUpdate{Name: p.Name, Metadata: metadataPatch(p.Metadata)}
	if lifecycle.BuildpacksSet {
		update.Buildpacks = &lifecycle.Buildpacks
	}
	if lifecycle.StackSet {
		stack := lifecycle.Stack
		if stack == "" {
			stack = a.staging.DefaultStack
		}
		update.Stack = &stack
	}
	return update, p.auditRequest(lifecycle), nil
}

// deleteApp serves DELETE /v3/apps/:guid for admins and space developers:
// it records the request and starts an app.delete job in one transaction.
func (a *API) deleteApp(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForWrite(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}

	job := newJob(actor, opAppDelete, "app", app.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.delete-request", app, map[string]any{"request": map[string]any{"recursive": true}}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runAppDelete is the app.delete job. It deletes the app's images from
// the registry first, because the rows that name them go with the app's.
// An image it fails to delete is logged and left behind rather than
// failing the delete the user asked for. Rows that reference the app with
// ON DELETE CASCADE go with it, and a started app's processes record that
// they stop. The controller removes the app's Kubernetes objects once the
// row is gone. Running it again after the app is gone succeeds.
func (a *API) runAppDelete(ctx context.Context, job store.Job) error {
	if err := a.deleteAppImages(ctx, job.ResourceGUID); err != nil {
		loggerFrom(ctx, a.logger).Warn("app images left in the registry", "app_guid", job.ResourceGUID, "error", err)
	}
	return a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := recordAppDeleteUsage(ctx, tx, job.ResourceGUID); err != nil {
			return err
		}
		return store.DeleteApp(ctx, tx, job.ResourceGUID)
	})
}

// startApp serves POST /v3/apps/:guid/actions/start. It sets the desired
// state. The controller then runs the app's current droplet.
func (a *API) startApp(r *http.Request) (*response, error) {
	return a.changeAppState(r, store.AppStateStarted, "audit.app.start", false)
}

// stopApp serves POST /v3/apps/:guid/actions/stop.
func (a *API) stopApp(r *http.Request) (*response, error) {
	return a.changeAppState(r, store.AppStateStopped, "audit.app.stop", false)
}

// restartApp serves POST /v3/apps/:guid/actions/restart, which cf push
// sends after staging. As in Cloud Controller, a started app gets new
// instances and a stopped app is started.
func (a *API) restartApp(r *http.Request) (*response, error) {
	return a.changeAppState(r, store.AppStateStarted, "audit.app.restart", true)
}

// changeAppState sets the desired state of the app of the path for admins,
// space developers and space supporters, and records eventType. Starting
// needs a current droplet, and starting a docker app needs the
// diego_docker feature flag, as in Cloud Controller. With restart, the
// app's start count goes up even when it runs, so the controller replaces
// its instances.
func (a *API) changeAppState(r *http.Request, state, eventType string, restart bool) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForManage(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	if state == store.AppStateStarted {
		if app.DropletGUID == "" {
			return nil, apierr.UnprocessableEntity("Assign a droplet before starting this app.")
		}
		if app.LifecycleType == store.LifecycleDocker {
			if err := a.requireFlag(ctx, flagDiegoDocker); err != nil {
				return nil, err
			}
		}
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		previousState, err := store.LockAppState(ctx, tx, app.GUID)
		if err != nil {
			return err
		}
		before, err := store.ReadAppDemand(ctx, tx, app.GUID)
		if err != nil {
			return err
		}
		if restart {
			app, err = store.RestartApp(ctx, tx, app.GUID)
		} else {
			app, err = store.SetAppState(ctx, tx, app.GUID, state)
		}
		if err != nil {
			return err
		}
		if err := recordAppStateUsage(ctx, tx, app.GUID, previousState, state, restart); err != nil {
			return err
		}
		if err := checkAppQuotas(ctx, tx, before); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, eventType, app, nil))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errAppNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("app state changed", "app_guid", app.GUID, "state", state)
	return ok(a.presentApp(app)), nil
}

// appPermissions serves GET /v3/apps/:guid/permissions, which web consoles
// read to decide whether to show an app's secrets.
func (a *API) appPermissions(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	secrets, err := a.canReadAppSecrets(r.Context(), actorOf(r), app)
	if err != nil {
		return nil, err
	}
	return ok(map[string]bool{"read_basic_data": true, "read_sensitive_data": secrets}), nil
}

// appEvent builds an audit event of actor on app. data is the event's data,
// and nil means none. It must never contain environment variable values.
func appEvent(actor *auth.Actor, eventType string, app store.App, data map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:             eventType,
		ActorGUID:        actor.UserGUID,
		ActorType:        "user",
		ActorName:        actor.DisplayName(),
		TargetGUID:       app.GUID,
		TargetType:       "app",
		TargetName:       app.Name,
		OrganizationGUID: app.OrgGUID,
		SpaceGUID:        app.SpaceGUID,
		Data:             data,
	}
}

// appCreatePayload is the body of POST /v3/apps.
type appCreatePayload struct {
	Name          *string                  `json:"name"`
	Relationships *appRelationshipsPayload `json:"relationships"`
	Lifecycle     *lifecyclePayload        `json:"lifecycle"`
	// EnvironmentVariables is validated by parseEnvironmentVariables, which
	// reports non-string values the way Cloud Controller does.
	EnvironmentVariables json.RawMessage  `json:"environment_variables"`
	Metadata             *metadataPayload `json:"metadata"`
}

type appRelationshipsPayload struct {
	Space *appSpacePayload `json:"space"`
}

type appSpacePayload struct {
	Data *struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

// spaceGUID returns the space the payload names, or "".
func (p *appCreatePayload) spaceGUID() string {
	if p.Relationships == nil || p.Relationships.Space == nil || p.Relationships.Space.Data == nil {
		return ""
	}
	return p.Relationships.Space.Data.GUID
}

// auditRequest is the data.request of audit.app.create: the fields the
// client sent, with environment variables hidden and buildpack URL
// credentials masked.
func (p *appCreatePayload) auditRequest(lifecycle appLifecycle) map[string]any {
	request := map[string]any{}
	if p.Name != nil {
		request["name"] = *p.Name
	}
	if guid := p.spaceGUID(); guid != "" {
		request["relationships"] = map[string]any{"space": map[string]any{"data": map[string]any{"guid": guid}}}
	}
	if p.Lifecycle != nil {
		request["lifecycle"] = lifecycle.auditRequest()
	}
	if len(p.EnvironmentVariables) > 0 {
		request["environment_variables"] = privateDataHidden
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}

// appUpdatePayload is the body of PATCH /v3/apps/:guid.
type appUpdatePayload struct {
	Name      *string           `json:"name"`
	Lifecycle *lifecyclePayload `json:"lifecycle"`
	Metadata  *metadataPayload  `json:"metadata"`
}

// auditRequest is the data.request of audit.app.update.
func (p *appUpdatePayload) auditRequest(lifecycle appLifecycle) map[string]any {
	request := map[string]any{}
	if p.Name != nil {
		request["name"] = *p.Name
	}
	if p.Lifecycle != nil {
		request["lifecycle"] = lifecycle.auditRequest()
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}

// lifecyclePayload is an app's lifecycle in a create or update request.
// Data is decoded by parseLifecycle, because its fields depend on Type.
type lifecyclePayload struct {
	Type *string         `json:"type"`
	Data json.RawMessage `json:"data"`
}

// buildpackDataPayload is the lifecycle data of a buildpack app. Both
// fields are raw so that an absent field, which keeps the current value,
// differs from null, which resets it.
type buildpackDataPayload struct {
	Buildpacks json.RawMessage `json:"buildpacks"`
	Stack      json.RawMessage `json:"stack"`
}

// Limits on lifecycle data that Cloud Controller enforces.
const maxLifecycleValueLength = 4096

// appLifecycleTypes are the lifecycle types Ferry accepts. The first is the
// default.
var appLifecycleTypes = []string{store.LifecycleBuildpack, store.LifecycleDocker}

// appLifecycle is a validated lifecycle of a create or update request.
type appLifecycle struct {
	Type string
	// Buildpacks is the new buildpack list when BuildpacksSet is true.
	Buildpacks    []string
	BuildpacksSet bool
	// Stack is the new stack when StackSet is true. The empty string means
	// the default stack.
	Stack    string
	StackSet bool
}

// auditRequest renders the lifecycle for an audit event, masking
// credentials in buildpack URLs.
func (l appLifecycle) auditRequest() map[string]any {
	data := map[string]any{}
	if l.BuildpacksSet {
		data["buildpacks"] = obfuscateBuildpacks(l.Buildpacks)
	}
	if l.StackSet {
		data["stack"] = nullable(l.Stack)
	}
	return map[string]any{"type": l.Type, "data": data}
}

// parseLifecycle validates the lifecycle of a request. current is the
// app's lifecycle type on update and "" on create. A nil p, and a p
// without a type, keep the current type, or on create take the default.
func (a *API) parseLifecycle(p *lifecyclePayload, current string) (appLifecycle, error) {
	lifecycle := appLifecycle{Type: current, Buildpacks: []string{}}
	if lifecycle.Type == "" {
		lifecycle.Type = appLifecycleTypes[0]
	}
	if p == nil {
		return lifecycle, nil
	}
	if p.Type != nil && *p.Type != "" {
		lifecycle.Type = *p.Type
	}
	if !slices.Contains(appLifecycleTypes, lifecycle.Type) {
		return appLifecycle{}, apierr.UnprocessableEntity("Lifecycle type is not included in the list: " + strings.Join(appLifecycleTypes, ", "))
	}
	if len(p.Data) == 0 || isJSONNull(p.Data) {
		return appLifecycle{}, apierr.UnprocessableEntity("Lifecycle data must be an object: send {} for docker apps or {\"buildpacks\":[],\"stack\":\"NAME\"} for buildpack apps")
	}

	if lifecycle.Type == store.LifecycleDocker {
		if err := decodeLifecycleData(p.Data, &struct{}{}); err != nil {
			return appLifecycle{}, err
		}
		return lifecycle, nil
	}

	var data buildpackDataPayload
	if err := decodeLifecycleData(p.Data, &data); err != nil {
		return appLifecycle{}, err
	}
	if len(data.Buildpacks) > 0 {
		buildpacks, err := parseBuildpacks(data.Buildpacks)
		if err != nil {
			return appLifecycle{}, err
		}
		lifecycle.Buildpacks, lifecycle.BuildpacksSet = buildpacks, true
	}
	if len(data.Stack) > 0 {
		stack, err := a.parseStack(data.Stack)
		if err != nil {
			return appLifecycle{}, err
		}
		lifecycle.Stack, lifecycle.StackSet = stack, true
	}
	// NOTE: buildpack names are not checked here: the builders' buildpacks
	// are read from the registry at staging, and a build with an unknown
	// buildpack fails with an error that names it.
	return lifecycle, nil
}

// decodeLifecycleData strictly decodes lifecycle data into v.
func decodeLifecycleData(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	if field, found := strings.CutPrefix(err.Error(), "json: unknown field "); found {
		return apierr.UnprocessableEntity("Lifecycle Unknown field(s): '" + strings.Trim(field, `"`) + "'")
	}
	return apierr.UnprocessableEntity("Lifecycle data must be an object")
}

// parseBuildpacks validates lifecycle.data.buildpacks: null or an array of
// non-blank strings of at most maxLifecycleValueLength characters.
func parseBuildpacks(raw json.RawMessage) ([]string, error) {
	if isJSONNull(raw) {
		return []string{}, nil
	}
	var items []any
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, apierr.UnprocessableEntity("Lifecycle Buildpacks must be an array")
	}
	buildpacks := make([]string, 0, len(items))
	for _, item := range items {
		s, isString := item.(string)
		switch {
		case !isString:
			return nil, apierr.UnprocessableEntity("Lifecycle Buildpacks can only contain strings")
		case strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > maxLifecycleValueLength:
			return nil, apierr.UnprocessableEntity(fmt.Sprintf("Lifecycle Buildpacks entries must be between 1 and %d characters", maxLifecycleValueLength))
		}
		buildpacks = append(buildpacks, s)
	}
	return buildpacks, nil
}

// parseStack validates lifecycle.data.stack: null, which returns "" for
// the default stack, or the name of a stack one of the configured builders
// serves.
func (a *API) parseStack(raw json.RawMessage) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	var stack string
	if err := json.Unmarshal(raw, &stack); err != nil {
		return "", apierr.UnprocessableEntity("Lifecycle Stack must be a string")
	}
	if stack == "" || utf8.RuneCountInString(stack) > maxLifecycleValueLength {
		return "", apierr.UnprocessableEntity(fmt.Sprintf("Lifecycle Stack must be between 1 and %d characters", maxLifecycleValueLength))
	}
	if !a.stackExists(stack) {
		return "", apierr.UnprocessableEntity("Stack must be an existing stack: '" + shorten(stack) + "' is not one of " + quoteList(a.stackNames()))
	}
	return stack, nil
}

// stackNames returns the stacks of the configured builders.
func (a *API) stackNames() []string {
	names := make([]string, 0, len(a.staging.Builders))
	for _, b := range a.staging.Builders {
		names = append(names, b.Stack)
	}
	return names
}

func (a *API) stackExists(name string) bool { return slices.Contains(a.stackNames(), name) }

// isJSONNull reports whether raw, a present JSON value, is null.
func isJSONNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// nullable returns nil for "", so JSON renders null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// obfuscateBuildpacks masks the user information of buildpack URLs, as
// Cloud Controller does wherever it shows them, so a git token in a
// buildpack URL is never shown or recorded.
func obfuscateBuildpacks(buildpacks []string) []string {
	out := make([]string, len(buildpacks))
	for i, bp := range buildpacks {
		out[i] = bp
		u, err := url.Parse(bp)
		if err != nil || u.User == nil {
			continue
		}
		u.User = url.UserPassword("***", "***")
		out[i] = strings.Replace(u.String(), "%2A%2A%2A:%2A%2A%2A@", "***:***@", 1)
	}
	return out
}

type appJSON struct {
	GUID          string           `json:"guid"`
	CreatedAt     string           `json:"created_at"`
	UpdatedAt     string           `json:"updated_at"`
	Name          string           `json:"name"`
	State         string           `json:"state"`
	Lifecycle     appLifecycleJSON `json:"lifecycle"`
	Relationships appRelationships `json:"relationships"`
	Metadata      metadataJSON     `json:"metadata"`
	Links         appLinks         `json:"links"`
	Included      map[string]any   `json:"included,omitempty"`
}

type appLifecycleJSON struct {
	Type string `json:"type"`
	// Data is buildpackLifecycleDataJSON for buildpack apps and an empty
	// object for docker apps.
	Data any `json:"data"`
}

type buildpackLifecycleDataJSON struct {
	Buildpacks []string `json:"buildpacks"`
	Stack      *string  `json:"stack"`
}

type appRelationships struct {
	Space toOne `json:"space"`
	// CurrentDroplet is {"data":{"guid":null}} for an app without one, as
	// Cloud Controller renders it.
	CurrentDroplet currentDropletRelationship `json:"current_droplet"`
}

type currentDropletRelationship struct {
	Data struct {
		GUID *string `json:"guid"`
	} `json:"data"`
}

type appLinks struct {
	Self                 link `json:"self"`
	EnvironmentVariables link `json:"environment_variables"`
	Space                link `json:"space"`
	Processes            link `json:"processes"`
	Packages             link `json:"packages"`
	CurrentDroplet       link `json:"current_droplet"`
	Droplets             link `json:"droplets"`
	Tasks                link `json:"tasks"`
	Start                link `json:"start"`
	Stop                 link `json:"stop"`
	Revisions            link `json:"revisions"`
	DeployedRevisions    link `json:"deployed_revisions"`
	Features             link `json:"features"`
}

func (a *API) presentApp(app store.App) appJSON {
	self := a.url("/v3/apps/", app.GUID)
	body := appJSON{
		GUID:      app.GUID,
		CreatedAt: timestamp(app.CreatedAt),
		UpdatedAt: timestamp(app.UpdatedAt),
		Name:      app.Name,
		State:     app.State,
		Lifecycle: appLifecycleJSON{Type: app.LifecycleType, Data: struct{}{}},
		Relationships: appRelationships{
			Space: relTo(app.SpaceGUID),
		},
		Metadata: presentMetadata(app.Labels, app.Annotations),
		Links: appLinks{
			Self:                 link{Href: self},
			EnvironmentVariables: link{Href: self + "/environment_variables"},
			Space:                link{Href: a.url("/v3/spaces/", app.SpaceGUID)},
			Processes:            link{Href: self + "/processes"},
			Packages:             link{Href: self + "/packages"},
			CurrentDroplet:       link{Href: self + "/droplets/current"},
			Droplets:             link{Href: self + "/droplets"},
			Tasks:                link{Href: self + "/tasks"},
			Start:                link{Href: self + "/actions/start", Method: http.MethodPost},
			Stop:                 link{Href: self + "/actions/stop", Method: http.MethodPost},
			Revisions:            link{Href: self + "/revisions"},
			DeployedRevisions:    link{Href: self + "/revisions/deployed"},
			Features:             link{Href: self + "/features"},
		},
	}
	if app.LifecycleType == store.LifecycleBuildpack {
		body.Lifecycle.Data = buildpackLifecycleDataJSON{Buildpacks: obfuscateBuildpacks(app.Buildpacks), Stack: nullable(app.Stack)}
	}
	body.Relationships.CurrentDroplet.Data.GUID = nullable(app.DropletGUID)
	return body
}
