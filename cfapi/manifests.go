package cfapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/manifest"
	"github.com/ferrycf/ferry/store"
)

// opApplyManifest is the async operation of apply_manifest, named as
// Cloud Controller names its job.
const opApplyManifest = "space.apply_manifest"

// yamlContentType is the type of manifests, both ways.
const yamlContentType = "application/x-yaml"

func (a *API) manifestRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/v3/spaces/{guid}/actions/apply_manifest", handler: a.applyManifest},
		{method: http.MethodPost, path: "/v3/spaces/{guid}/manifest_diff", handler: a.diffManifest},
		{method: http.MethodGet, path: "/v3/apps/{guid}/manifest", handler: a.getAppManifest},
	}
}

func (a *API) manifestJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opApplyManifest: a.runApplyManifest}
}

// errBadRequest is Cloud Controller's CF-BadRequest.
func errBadRequest(detail string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: 1004, Title: "CF-BadRequest", Detail: "Bad request: " + detail}
}

// readManifest checks that r carries a YAML manifest of at most
// manifest.MaxSize bytes and parses it. Problems in the manifest are one
// 422 listing them all.
func readManifest(r *http.Request) (*manifest.Manifest, []byte, error) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml":
	default:
		return nil, nil, errBadRequest("Content-Type must be yaml")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, manifest.MaxSize+1))
	if err != nil {
		return nil, nil, apierr.MessageParseError("the body could not be read")
	}
	if len(body) > manifest.MaxSize {
		return nil, nil, errBadRequest("Manifest size is too large. The maximum supported size is 1MB.")
	}

	m, err := manifest.Parse(body)
	var merr *manifest.Error
	if errors.As(err, &merr) {
		switch merr.Kind {
		case manifest.ErrorSyntax:
			return nil, nil, apierr.MessageParseError(merr.Messages[0])
		case manifest.ErrorAliases:
			return nil, nil, errBadRequest(merr.Messages[0])
		default:
			return nil, nil, manifestProblems(merr.Messages)
		}
	}
	return m, body, err
}

// manifestProblems is the 422 of an invalid manifest. Cloud Controller
// sends one error per problem; the v3 error catalogue carries one detail,
// so the problems are joined.
func manifestProblems(messages []string) error {
	return apierr.UnprocessableEntity(strings.Join(messages, "; "))
}

// spaceForManifest returns the space of the path if the actor may apply
// manifests to it: admins and the space's developers, as for Cloud
// Controller's space writes. An invisible space is a 404.
func (a *API) spaceForManifest(r *http.Request) (store.Space, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return store.Space{}, err
	}
	space, err := a.store.Space(ctx, pathParam(r, "guid"), visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, apierr.NotFound("Space")
	}
	if err != nil {
		return store.Space{}, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, space.OrganizationGUID, space.GUID, roleSpaceDeveloper); err != nil {
		return store.Space{}, err
	}
	return space, nil
}

// applyManifest serves POST /v3/spaces/:guid/actions/apply_manifest, which
// cf push sends first, with or without a manifest file. Every problem the
// manifest has on its own, or with the apps that exist, is a 422 at once.
// The changes then run in a space.apply_manifest job, one transaction per
// app, and the response is 202 with the job's Location and no body.
func (a *API) applyManifest(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	space, err := a.spaceForManifest(r)
	if err != nil {
		return nil, err
	}
	m, body, err := readManifest(r)
	if err != nil {
		return nil, err
	}
	if err := a.checkManifest(ctx, r, space, m); err != nil {
		return nil, err
	}

	job := newJob(actor, opApplyManifest, "space", space.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.CreateManifestApply(ctx, tx, store.ManifestApply{
			JobGUID: job.GUID, SpaceGUID: space.GUID, ActorGUID: actor.UserGUID, ActorName: actor.DisplayName(), Manifest: body,
		})
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	loggerFrom(ctx, a.logger).Info("manifest apply started", "space_guid", space.GUID, "job_guid", job.GUID, "apps", len(m.Applications))
	return accepted(a.jobURL(job.GUID), nil), nil
}

// checkManifest checks what the manifest package cannot: names, env keys,
// metadata, stacks, feature flags and features, route protocols against
// their domains, and that the manifest does not switch an existing app
// between docker and buildpacks.
func (a *API) checkManifest(ctx context.Context, r *http.Request, space store.Space, m *manifest.Manifest) error {
	var problems []string
	report := func(app manifest.Application, err error) {
		var apiErr *apierr.Error
		if errors.As(err, &apiErr) {
			problems = append(problems, "For application '"+app.Name+"': "+apiErr.Detail)
		}
	}

	existing, err := a.appsByName(ctx, r, space, m)
	if err != nil {
		return err
	}
	for _, app := range m.Applications {
		for _, err := range a.manifestAppProblems(ctx, app) {
			if _, isAPIError := err.(*apierr.Error); !isAPIError {
				return err
			}
			report(app, err)
		}
		if current, found := existing[strings.ToLower(app.Name)]; found {
			if err := lifecycleConflict(current, app); err != nil {
				report(app, err)
			}
		}
		routeProblems, err := a.checkManifestRoutes(ctx, space.OrganizationGUID, app)
		if err != nil {
			return err
		}
		for _, err := range routeProblems {
			report(app, err)
		}
	}
	if len(problems) > 0 {
		return manifestProblems(problems)
	}
	return nil
}

// manifestAppProblems lists what is wrong with one application. An error
// that is not an *apierr.Error is a failure to check, not a problem.
func (a *API) manifestAppProblems(ctx context.Context, app manifest.Application) []error {
	var errs []error
	name := app.Name
	if err := validateTenancyName(&name, true); err != nil {
		errs = append(errs, err)
	}
	if len(app.Env) > 0 {
		raw, err := json.Marshal(app.Env)
		if err != nil {
			return append(errs, err)
		}
		if _, err := parseEnvironmentVariables(raw, "Env", false); err != nil {
			errs = append(errs, err)
		}
	}
	if app.Metadata != nil {
		if err := validateMetadata(&metadataPayload{Labels: app.Metadata.Labels, Annotations: app.Metadata.Annotations}); err != nil {
			errs = append(errs, err)
		}
	}
	if app.Stack != nil && !a.stackExists(*app.Stack) {
		errs = append(errs, apierr.UnprocessableEntity("Stack must be an existing stack: '"+shorten(*app.Stack)+"' is not one of "+quoteList(a.stackNames())))
	}
	if app.Lifecycle == manifest.LifecycleDocker {
		if err := a.requireFlag(ctx, flagDiegoDocker); err != nil {
			errs = append(errs, err)
		}
	}
	for _, feature := range slices.Sorted(maps.Keys(app.Features)) {
		if err := manifestFeatureProblem(feature, app.Features[feature]); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// manifestFeatureProblem rejects turning on a feature Ferry does not
// offer, as PATCH /v3/apps/:guid/features/:name does.
func manifestFeatureProblem(name string, enabled bool) error {
	switch {
	case !enabled || name == appFeatureRevisions:
		return nil
	case name == appFeatureSSH:
		return apierr.UnprocessableEntity("SSH cannot be enabled: Ferry does not offer SSH access to app instances")
	default:
		return apierr.UnprocessableEntity("The '" + name + "' feature cannot be enabled: Ferry provides service credentials only in VCAP_SERVICES")
	}
}

// lifecycleConflict rejects a manifest that gives an existing app the
// other lifecycle, with Cloud Controller's messages.
func lifecycleConflict(current store.App, app manifest.Application) error {
	switch {
	case current.LifecycleType == store.LifecycleDocker && app.Buildpacks != nil:
		noun := "Buildpacks"
		if _, single := app.Raw["buildpack"]; single {
			noun = "Buildpack"
		}
		return apierr.UnprocessableEntity(noun + " cannot be configured for a docker lifecycle app.")
	case current.LifecycleType == store.LifecycleBuildpack && app.Lifecycle == manifest.LifecycleDocker:
		return apierr.UnprocessableEntity("Docker cannot be configured for a buildpack lifecycle app.")
	case current.LifecycleType == store.LifecycleDocker && app.Lifecycle == manifest.LifecycleBuildpack:
		return apierr.UnprocessableEntity("Lifecycle type cannot be changed from docker to buildpack")
	}
	return nil
}

// appsByName returns the apps of the space that the manifest names, keyed
// by lower-case name, in one query.
func (a *API) appsByName(ctx context.Context, r *http.Request, space store.Space, m *manifest.Manifest) (map[string]store.App, error) {
	names := make([]string, 0, len(m.Applications))
	for _, app := range m.Applications {
		names = append(names, app.Name)
	}
	apps, _, err := a.store.Apps(ctx, store.AppFilter{Names: names, SpaceGUIDs: []string{space.GUID}},
		store.Page{Number: 1, PerPage: len(names), OrderBy: "name"}, visibility(r))
	if err != nil {
		return nil, err
	}
	byName := make(map[string]store.App, len(apps))
	for _, app := range apps {
		byName[strings.ToLower(app.Name)] = app
	}
	return byName, nil
}

// runApplyManifest is the space.apply_manifest job. It applies the
// applications in manifest order, each in one transaction, and stops at
// the first that fails, so that one and those after it are unchanged. It
// deletes the stored manifest when it finishes. A job whose manifest is
// gone has finished before and succeeds.
func (a *API) runApplyManifest(ctx context.Context, job store.Job) error {
	request, err := a.store.ManifestApplyOfJob(ctx, job.GUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() {
		// A job cut short by shutdown runs again in the next process,
		// which needs the manifest.
		if ctx.Err() == nil {
			if err := a.store.DeleteManifestApply(ctx, job.GUID); err != nil {
				a.logger.Error("deleting an applied manifest failed", "job_guid", job.GUID, "error", err)
			}
		}
	}()

	m, err := manifest.Parse(request.Manifest)
	if err != nil {
		return manifestProblems([]string{err.Error()})
	}
	space, err := a.store.Space(ctx, request.SpaceGUID, store.Visibility{All: true})
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound("Space")
	}
	if err != nil {
		return err
	}
	actor := &auth.Actor{UserGUID: request.ActorGUID, UserName: request.ActorName}
	for _, app := range m.Applications {
		guid, err := a.applyManifestApp(ctx, actor, space, app)
		if err != nil {
			return prefixAppError(app.Name, err)
		}
		a.logger.Info("manifest applied to app", "job_guid", job.GUID, "space_guid", space.GUID, "app_guid", guid)
	}
	return nil
}

// prefixAppError names the application in an API error's detail, as Cloud
// Controller's failed apply_manifest jobs do. Other errors stay as they
// are and fail the job as CF-UnknownError.
func prefixAppError(name string, err error) error {
	var apiErr *apierr.Error
	if !errors.As(err, &apiErr) {
		return err
	}
	prefixed := *apiErr
	prefixed.Detail = "For application '" + name + "': " + apiErr.Detail
	return &prefixed
}

// applyManifestApp applies one application of a manifest in one
// transaction: it creates the app if the space has none of that name,
// then updates its lifecycle, metadata, environment, features, processes
// and routes, and records the audit events of every change. A failure
// rolls all of it back, including routes the manifest created. It returns the
// app's guid.
func (a *API) applyManifestApp(ctx context.Context, actor *auth.Actor, space store.Space, app manifest.Application) (string, error) {
	if len(app.Services) > 0 {
		// TODO: bind the services once service instances exist. Until
		// then no name can match one.
		return "", apierr.NotFound("Service instance '" + app.Services[0].Name + "'")
	}
	if errs := a.manifestAppProblems(ctx, app); len(errs) > 0 {
		return "", errs[0]
	}

	var guid string
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		current, err := a.findOrCreateManifestApp(ctx, tx, actor, space, app)
		if err != nil {
			return err
		}
		if err := lifecycleConflict(current, app); err != nil {
			return err
		}
		guid = current.GUID
		before, err := store.ReadAppDemand(ctx, tx, current.GUID)
		if err != nil {
			return err
		}
		if current, err = a.updateManifestApp(ctx, tx, actor, current, app); err != nil {
			return err
		}
		if err := a.applyManifestProcesses(ctx, tx, actor, current, app); err != nil {
			return err
		}
		if err := checkAppQuotas(ctx, tx, before); err != nil {
			return err
		}
		if err := a.applyManifestRoutes(ctx, tx, actor, space, current, app.Routes); err != nil {
			return err
		}
		if err := a.applyManifestScheduledTasks(ctx, tx, actor, current, app.ScheduledTasks); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.apply_manifest", current,
			map[string]any{"request": map[string]any{"manifest": app.AuditYAML(privateDataHidden)}}))
	})
	return guid, err
}

// findOrCreateManifestApp returns the app of the space with the
// application's name, locked, or creates it with its web process.
func (a *API) findOrCreateManifestApp(ctx context.Context, tx *sql.Tx, actor *auth.Actor, space store.Space, app manifest.Application) (store.App, error) {
	current, err := store.AppByName(ctx, tx, space.GUID, app.Name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return current, err
	}

	created := store.App{
		GUID:          uuid.NewString(),
		Name:          app.Name,
		SpaceGUID:     space.GUID,
		State:         store.AppStateStopped,
		LifecycleType: store.LifecycleBuildpack,
		Buildpacks:    []string{},
	}
	if app.Lifecycle == manifest.LifecycleDocker {
		created.LifecycleType = store.LifecycleDocker
	} else {
		created.Stack = a.staging.DefaultStack
		if app.Buildpacks != nil {
			created.Buildpacks = *app.Buildpacks
		}
		if app.Stack != nil {
			created.Stack = *app.Stack
		}
	}
	if created, err = store.CreateApp(ctx, tx, created); err != nil {
		if store.IsUnique(err, store.ConstraintAppName) {
			return store.App{}, errAppNameTaken(app.Name)
		}
		return store.App{}, err
	}

	lifecycle := map[string]any{"type": created.LifecycleType, "data": map[string]any{}}
	if created.LifecycleType == store.LifecycleBuildpack {
		lifecycle["data"] = map[string]any{"buildpacks": obfuscateBuildpacks(created.Buildpacks), "stack": created.Stack}
	}
	request := map[string]any{
		"name":          created.Name,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space.GUID}}},
		"lifecycle":     lifecycle,
	}
	if err := store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.create", created, map[string]any{"request": request})); err != nil {
		return store.App{}, err
	}
	return created, nil
}

// updateManifestApp applies the application's buildpacks, stack,
// metadata, environment and features to current, recording one
// audit.app.update for them.
func (a *API) updateManifestApp(ctx context.Context, tx *sql.Tx, actor *auth.Actor, current store.App, app manifest.Application) (store.App, error) {
	request := map[string]any{}
	update := store.AppUpdate{}
	if current.LifecycleType == store.LifecycleBuildpack && (app.Buildpacks != nil || app.Stack != nil) {
		data := map[string]any{}
		if app.Buildpacks != nil {
			update.Buildpacks = app.Buildpacks
			data["buildpacks"] = obfuscateBuildpacks(*app.Buildpacks)
		}
		if app.Stack != nil {
			update.Stack = app.Stack
			data["stack"] = *app.Stack
		}
		request["lifecycle"] = map[string]any{"type": store.LifecycleBuildpack, "data": data}
	}
	if app.Metadata != nil {
		update.Metadata = store.MetadataPatch{Labels: app.Metadata.Labels, Annotations: app.Metadata.Annotations}
		request["metadata"] = metadataRequest(&metadataPayload{Labels: app.Metadata.Labels, Annotations: app.Metadata.Annotations})
	}

	var err error
	if len(request) > 0 {
		if current, err = store.UpdateApp(ctx, tx, current.GUID, update); err != nil {
			return store.App{}, err
		}
	}
	if len(app.Env) > 0 {
		patch := make(map[string]*string, len(app.Env))
		for key, value := range app.Env {
			patch[key] = &value
		}
		if current, err = store.PatchAppEnvironment(ctx, tx, current.GUID, patch); err != nil {
			return store.App{}, err
		}
		request["environment_variables"] = privateDataHidden
	}
	if enabled, found := app.Features[appFeatureRevisions]; found {
		if current, err = store.SetAppRevisionsEnabled(ctx, tx, current.GUID, enabled); err != nil {
			return store.App{}, err
		}
		request["features"] = map[string]any{appFeatureRevisions: enabled}
	}
	if len(request) == 0 {
		return current, nil
	}
	data := map[string]any{"request": request, "manifest_triggered": true}
	return current, store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.update", current, data))
}

// applyManifestProcesses creates the process types the application names
// that the app lacks, and applies each process's command, health checks
// and scale.
func (a *API) applyManifestProcesses(ctx context.Context, tx *sql.Tx, actor *auth.Actor, app store.App, m manifest.Application) error {
	existing, err := store.AppProcesses(ctx, tx, app.GUID)
	if err != nil {
		return err
	}
	byType := make(map[string]store.Process, len(existing))
	for _, p := range existing {
		byType[p.Type] = p
	}

	for _, mp := range m.Processes {
		p, found := byType[mp.Type]
		if !found {
			p = store.NewProcess(app.GUID, mp.Type)
			if p, err = store.CreateProcess(ctx, tx, p); err != nil {
				return err
			}
			event := processEvent(actor, "audit.app.process.create", app, p, nil)
			event.Data["manifest_triggered"] = true
			if err := store.RecordAuditEvent(ctx, tx, event); err != nil {
				return err
			}
		}
		if !mp.HasUpdate() && !mp.HasScale() {
			continue
		}
		if p, err = store.LockProcess(ctx, tx, p.GUID); err != nil {
			return err
		}
		applyManifestProcess(&p, mp)
		if p, err = store.SaveProcess(ctx, tx, p, store.MetadataPatch{}); err != nil {
			return err
		}
		if err := recordManifestProcessEvents(ctx, tx, actor, app, p, mp); err != nil {
			return err
		}
	}
	return nil
}

// applyManifestProcess merges a manifest's process settings into p, with
// the rules of PATCH /v3/processes/:guid.
func applyManifestProcess(p *store.Process, mp manifest.Process) {
	change := processChange{
		CommandSet:  mp.Command.Set,
		HealthCheck: healthCheckChangeFromManifest(mp.HealthCheck),
		Readiness:   healthCheckChangeFromManifest(mp.Readiness),
	}
	if mp.Command.Set && !mp.Command.Reset {
		command := mp.Command.Value
		change.Command = &command
	}
	change.apply(p)

	scale := processScale{MemoryMB: mp.MemoryMB, DiskMB: mp.DiskMB, LogRateLimit: mp.LogRateLimit, CPUMillicores: mp.CPUMillicores}
	if mp.Instances != nil {
		instances := int64(*mp.Instances)
		scale.Instances = &instances
	}
	scale.apply(p)
}

func healthCheckChangeFromManifest(h manifest.HealthCheck) healthCheckChange {
	return healthCheckChange{
		Type:              h.Type,
		Endpoint:          h.Endpoint,
		Timeout:           h.Timeout,
		InvocationTimeout: h.InvocationTimeout,
		Interval:          h.Interval,
	}
}

// recordManifestProcessEvents records audit.app.process.update for a
// changed command or health check and audit.app.process.scale for a new
// scale, marked as triggered by a manifest, as Cloud Controller does.
func recordManifestProcessEvents(ctx context.Context, tx *sql.Tx, actor *auth.Actor, app store.App, p store.Process, mp manifest.Process) error {
	if mp.HasUpdate() {
		request := map[string]any{}
		if mp.Command.Set {
			request["command"] = privateDataHidden
		}
		for key, value := range map[string]any{
			"health_check_type": mp.HealthCheck.Type, "health_check_http_endpoint": mp.HealthCheck.Endpoint,
			"timeout": mp.HealthCheck.Timeout, "health_check_invocation_timeout": mp.HealthCheck.InvocationTimeout,
			"health_check_interval": mp.HealthCheck.Interval, "readiness_health_check_type": mp.Readiness.Type,
			"readiness_health_check_http_endpoint":      mp.Readiness.Endpoint,
			"readiness_health_check_invocation_timeout": mp.Readiness.InvocationTimeout,
			"readiness_health_check_interval":           mp.Readiness.Interval,
		} {
			if v := derefAny(value); v != nil {
				request[key] = v
			}
		}
		event := processEvent(actor, "audit.app.process.update", app, p, request)
		event.Data["manifest_triggered"] = true
		if err := store.RecordAuditEvent(ctx, tx, event); err != nil {
			return err
		}
	}
	if mp.HasScale() {
		request := map[string]any{}
		for key, value := range map[string]any{
			"instances": mp.Instances, "memory_in_mb": mp.MemoryMB, "disk_in_mb": mp.DiskMB,
			"log_rate_limit_in_bytes_per_second": mp.LogRateLimit, "cpu_in_millicores": mp.CPUMillicores,
		} {
			if v := derefAny(value); v != nil {
				request[key] = v
			}
		}
		event := processEvent(actor, "audit.app.process.scale", app, p, request)
		event.Data["manifest_triggered"] = true
		return store.RecordAuditEvent(ctx, tx, event)
	}
	return nil
}

// derefAny returns what a typed pointer points to, or nil for a nil one.
func derefAny(v any) any {
	switch t := v.(type) {
	case *string:
		if t != nil {
			return *t
		}
	case *int:
		if t != nil {
			return *t
		}
	case *int64:
		if t != nil {
			return *t
		}
	}
	return nil
}

// getAppManifest serves GET /v3/apps/:guid/manifest: the app's settings as
// a YAML manifest, which cf create-app-manifest saves. It holds the app's
// environment, so only those who may read the app's secrets get it.
func (a *API) getAppManifest(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	secrets, err := a.canReadAppSecrets(ctx, actorOf(r), app)
	if err != nil {
		return nil, err
	}
	if !secrets {
		return nil, apierr.NotAuthorized()
	}

	states, err := a.appStates(ctx, []store.App{app})
	if err != nil {
		return nil, err
	}
	body, err := manifest.Render(states[0])
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusOK, body: &streamBody{
		contentType: yamlContentType,
		write:       func(w io.Writer) error { _, err := w.Write(body); return err },
		logger:      loggerFrom(ctx, a.logger),
	}}, nil
}

// appStates returns the manifest state of each app, reading the processes,
// routes and route intents of all of them with one query each, and the
// docker image of each docker app.
func (a *API) appStates(ctx context.Context, apps []store.App) ([]manifest.AppState, error) {
	guids := make([]string, len(apps))
	for i, app := range apps {
		guids[i] = app.GUID
	}
	processes, _, err := a.store.Processes(ctx, store.ProcessFilter{AppGUIDs: guids},
		store.Page{Number: 1, PerPage: maxPerPage, OrderBy: "created_at"}, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	intents, err := store.RouteIntents(ctx, a.store.DB(), guids)
	if err != nil {
		return nil, err
	}
	routes, _, err := a.store.Routes(ctx, store.RouteFilter{AppGUIDs: guids},
		store.Page{Number: 1, PerPage: maxPerPage, OrderBy: "created_at"}, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}

	states := make([]manifest.AppState, len(apps))
	for i, app := range apps {
		state := manifest.AppState{
			Name:        app.Name,
			Env:         app.EnvironmentVariables,
			Lifecycle:   app.LifecycleType,
			Buildpacks:  app.Buildpacks,
			Stack:       app.Stack,
			Features:    map[string]bool{appFeatureRevisions: app.RevisionsEnabled},
			Labels:      app.Labels,
			Annotations: app.Annotations,
		}
		if app.LifecycleType == store.LifecycleDocker {
			if state.Docker, err = a.dockerImageOf(ctx, app); err != nil {
				return nil, err
			}
		}
		state.Routes = manifestRoutesOf(app.GUID, routes, intents[app.GUID])
		for _, p := range processes {
			if p.AppGUID == app.GUID {
				state.Processes = append(state.Processes, processState(p))
			}
		}
		slices.SortFunc(state.Processes, func(x, y manifest.ProcessState) int { return strings.Compare(x.Type, y.Type) })
		states[i] = state
	}
	return states, nil
}

// manifestRoutesOf returns the routes among routes that have a destination
// of the app appGUID, in the order given, as manifest entries. An entry
// names the protocol only where applying the URL alone would give another
// one, which is the case for http2 and udp. Options come from the route
// intent, because routes store none.
func manifestRoutesOf(appGUID string, routes []store.Route, intent store.RouteIntent) []manifest.Route {
	var out []manifest.Route
	for _, rt := range routes {
		i := slices.IndexFunc(rt.Destinations, func(d store.Destination) bool { return d.AppGUID == appGUID })
		if i < 0 {
			continue
		}
		entry := manifest.Route{Route: rt.URL()}
		if protocol := rt.Destinations[i].Protocol; protocol == store.DestinationProtocolHTTP2 || protocol == store.DestinationProtocolUDP {
			entry.Protocol = protocol
		}
		for _, r := range intent.Routes {
			if strings.EqualFold(r.Route, entry.Route) {
				entry.Options = r.Options
			}
		}
		out = append(out, entry)
	}
	return out
}

// dockerImageOf returns the image and username of the app's newest docker
// package, or nil when it has none.
func (a *API) dockerImageOf(ctx context.Context, app store.App) (*manifest.Docker, error) {
	packages, _, err := a.store.Packages(ctx, store.PackageFilter{AppGUIDs: []string{app.GUID}, Types: []string{store.PackageTypeDocker}},
		store.Page{Number: 1, PerPage: 1, OrderBy: "created_at", Descending: true}, store.Visibility{All: true})
	if err != nil || len(packages) == 0 {
		return nil, err
	}
	return &manifest.Docker{Image: packages[0].Image, Username: packages[0].DockerUsername}, nil
}

func processState(p store.Process) manifest.ProcessState {
	s := manifest.ProcessState{
		Type:          p.Type,
		Instances:     p.Instances,
		MemoryMB:      p.MemoryMB,
		DiskMB:        p.DiskMB,
		LogRateLimit:  p.LogRateLimit,
		CPUMillicores: int64(p.CPUMillicores),
		Command:       p.Command,
	}
	s.HealthCheck.Type = p.HealthCheck.Type
	s.HealthCheck.Endpoint = p.HealthCheck.Endpoint
	s.HealthCheck.Timeout = p.HealthCheck.Timeout
	s.HealthCheck.InvocationTimeout = p.HealthCheck.InvocationTimeout
	s.HealthCheck.Interval = p.HealthCheck.Interval
	s.Readiness.Type = p.Readiness.Type
	s.Readiness.Endpoint = p.Readiness.Endpoint
	s.Readiness.InvocationTimeout = p.Readiness.InvocationTimeout
	s.Readiness.Interval = p.Readiness.Interval
	return s
}
