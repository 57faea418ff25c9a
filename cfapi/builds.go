package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// Minimum staging sizes in MB when the configuration sets none; they are
// config.Default's.
const (
	fallbackStagingMemoryMB = 1024
	fallbackStagingDiskMB   = 4096
)

func (a *API) buildRoutes() []route {
	const base = "/v3/builds"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listBuilds},
		{method: http.MethodPost, path: base, handler: a.createBuild},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getBuild},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateBuild},
		{method: http.MethodGet, path: "/v3/apps/{guid}/builds", handler: a.listAppBuilds},
	}
}

func errBuildNotFound() error { return apierr.NotFound("Build") }

// errUnusablePackage is Cloud Controller's 422 for a build whose package
// does not exist, is invisible, or whose app the actor may not manage.
func errUnusablePackage() error {
	return apierr.UnprocessableEntity("Unable to use package. Ensure that the package exists and you have access to it.")
}

// errPackageNotReady is Cloud Controller's CF-BadRequest for staging a
// package before its upload finished. The cf CLI matches this detail.
func errPackageNotReady() error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: 1004, Title: "CF-BadRequest",
		Detail: "Bad request: Cannot stage package whose state is not ready."}
}

// errStagingInProgress is Cloud Controller's CF-StagingInProgress.
func errStagingInProgress() error {
	return &apierr.Error{Status: http.StatusUnprocessableEntity, Code: 170017, Title: "CF-StagingInProgress",
		Detail: "Only one build can be STAGING at a time per application."}
}

// buildCreatePayload is the body of POST /v3/builds. cf push sends only
// the package; the lifecycle and sizes override the app's.
type buildCreatePayload struct {
	Package *struct {
		GUID *string `json:"guid"`
	} `json:"package"`
	Lifecycle           *lifecyclePayload `json:"lifecycle"`
	StagingMemoryInMB   *int64            `json:"staging_memory_in_mb"`
	StagingDiskInMB     *int64            `json:"staging_disk_in_mb"`
	StagingLogRateLimit *int64            `json:"staging_log_rate_limit_bytes_per_second"`
	Metadata            *metadataPayload  `json:"metadata"`
}

// buildUpdatePayload is the body of PATCH /v3/builds/:guid.
type buildUpdatePayload struct {
	Metadata *metadataPayload `json:"metadata"`
}

type buildJSON struct {
	GUID                string             `json:"guid"`
	CreatedAt           string             `json:"created_at"`
	UpdatedAt           string             `json:"updated_at"`
	State               string             `json:"state"`
	StagingMemoryInMB   int64              `json:"staging_memory_in_mb"`
	StagingDiskInMB     int64              `json:"staging_disk_in_mb"`
	StagingLogRateLimit int64              `json:"staging_log_rate_limit_bytes_per_second"`
	Error               *string            `json:"error"`
	Lifecycle           appLifecycleJSON   `json:"lifecycle"`
	Package             guidRef            `json:"package"`
	Droplet             *guidRef           `json:"droplet"`
	CreatedBy           buildCreatorJSON   `json:"created_by"`
	Relationships       buildRelationships `json:"relationships"`
	Metadata            metadataJSON       `json:"metadata"`
	Links               buildLinks         `json:"links"`
}

type buildCreatorJSON struct {
	GUID  string `json:"guid"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type buildRelationships struct {
	App toOne `json:"app"`
}

type buildLinks struct {
	Self    link  `json:"self"`
	App     link  `json:"app"`
	Droplet *link `json:"droplet,omitempty"`
}

// presentBuild renders a build as Cloud Controller does. The cf CLI polls
// it, reads error as a string or null, and takes the droplet from
// droplet.guid once the build is STAGED.
func (a *API) presentBuild(b store.Build) buildJSON {
	body := buildJSON{
		GUID:                b.GUID,
		CreatedAt:           timestamp(b.CreatedAt),
		UpdatedAt:           timestamp(b.UpdatedAt),
		State:               b.State,
		StagingMemoryInMB:   b.StagingMemoryMB,
		StagingDiskInMB:     b.StagingDiskMB,
		StagingLogRateLimit: b.StagingLogRateLimit,
		Error:               nullable(b.Error),
		Lifecycle:           appLifecycleJSON{Type: b.LifecycleType, Data: struct{}{}},
		Package:             guidRef{GUID: b.PackageGUID},
		CreatedBy:           buildCreatorJSON{GUID: b.CreatedByGUID, Name: b.CreatedByName, Email: b.CreatedByEmail},
		Relationships:       buildRelationships{App: relTo(b.AppGUID)},
		Metadata:            presentMetadata(b.Labels, b.Annotations),
		Links: buildLinks{
			Self: link{Href: a.url("/v3/builds/", b.GUID)},
			App:  link{Href: a.url("/v3/apps/", b.AppGUID)},
		},
	}
	if b.LifecycleType == store.LifecycleBuildpack {
		body.Lifecycle.Data = buildpackLifecycleDataJSON{Buildpacks: obfuscateBuildpacks(b.Buildpacks), Stack: nullable(b.Stack)}
	}
	if b.DropletGUID != "" && b.State == store.BuildStateStaged {
		body.Droplet = &guidRef{GUID: b.DropletGUID}
		body.Links.Droplet = &link{Href: a.url("/v3/droplets/", b.DropletGUID)}
	}
	return body
}

var buildListSpec = withCommonFilters(listSpec{
	filters: []string{"app_guids", "package_guids", "states", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

var appBuildListSpec = withCommonFilters(listSpec{
	filters: []string{"states", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

func (a *API) listBuilds(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, buildListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := buildFilterOf(q)
	if err != nil {
		return nil, err
	}
	return a.buildList(r, q, filter)
}

// listAppBuilds serves GET /v3/apps/:guid/builds.
func (a *API) listAppBuilds(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appBuildListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := buildFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.buildList(r, q, filter)
}

func buildFilterOf(q *listQuery) (store.BuildFilter, error) {
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.BuildFilter{}, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return store.BuildFilter{}, err
	}
	return store.BuildFilter{
		CommonFilter:  common,
		AppGUIDs:      q.filter("app_guids"),
		PackageGUIDs:  q.filter("package_guids"),
		States:        q.filter("states"),
		LabelSelector: selector,
	}, nil
}

func (a *API) buildList(r *http.Request, q *listQuery, filter store.BuildFilter) (*response, error) {
	builds, total, err := a.store.Builds(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]buildJSON, len(builds))
	for i, b := range builds {
		resources[i] = a.presentBuild(b)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// visibleBuild reads the build of the path. An invisible build is a 404.
func (a *API) visibleBuild(r *http.Request) (store.Build, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Build{}, err
	}
	b, err := a.store.Build(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Build{}, errBuildNotFound()
	}
	return b, err
}

func (a *API) getBuild(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	b, err := a.visibleBuild(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentBuild(b)), nil
}

// updateBuild serves PATCH /v3/builds/:guid, which changes metadata only.
// Cloud Controller's state updates from a staging backend have no
// counterpart: Ferry's controller writes build states itself.
func (a *API) updateBuild(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return nil, err
	}
	b, err := a.visibleBuild(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actorOf(r), b.OrgGUID, b.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	var p buildUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	updated, err := store.UpdateBuildMetadata(ctx, a.store.DB(), b.GUID, metadataPatch(p.Metadata))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBuildNotFound()
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentBuild(updated)), nil
}

// createBuild serves POST /v3/builds for admins and for space developers
// and supporters of the package's space. A bits package starts a STAGING
// build, which the controller stages. A docker package's build is STAGED
// at once, with the image pinned by digest as its droplet.
func (a *API) createBuild(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	var p buildCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateBuildPayload(p); err != nil {
		return nil, err
	}

	pkg, app, err := a.packageForBuild(r, *p.Package.GUID)
	if err != nil {
		return nil, err
	}
	if pkg.Type == store.PackageTypeDocker {
		if err := a.requireFlag(ctx, flagDiegoDocker); err != nil {
			return nil, err
		}
	}
	b, err := a.newBuild(p, pkg, app, actor)
	if err != nil {
		return nil, err
	}
	if b.StagingMemoryMB, b.StagingDiskMB, err = a.stagingSizes(ctx, p, app); err != nil {
		return nil, err
	}
	if pkg.State != store.PackageReady {
		return nil, errPackageNotReady()
	}

	var droplet *store.Droplet
	if pkg.Type == store.PackageTypeDocker {
		d, err := a.dockerDroplet(ctx, pkg, b)
		if err != nil {
			return nil, err
		}
		droplet = &d
	}

	event := appEvent(actor, "audit.app.build.create", app, map[string]any{"build_guid": b.GUID, "package_guid": pkg.GUID})
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := a.checkStagingQuotas(ctx, tx, b); err != nil {
			return err
		}
		var err error
		if droplet != nil {
			b, err = store.CreateStagedBuild(ctx, tx, b, *droplet)
		} else {
			b, err = store.CreateBuild(ctx, tx, b)
		}
		if err != nil {
			return err
		}
		if err := store.RecordAuditEvent(ctx, tx, event); err != nil {
			return err
		}
		if droplet != nil {
			return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.droplet.create", app,
				map[string]any{"droplet_guid": droplet.GUID, "package_guid": pkg.GUID}))
		}
		return store.NotifyBuild(ctx, tx, b.GUID)
	})
	var fkErr *store.ForeignKeyError
	switch {
	case store.IsUnique(err, store.ConstraintBuildStagingPerApp):
		return nil, errStagingInProgress()
	case errors.As(err, &fkErr):
		// The app was deleted after it was read.
		return nil, errUnusablePackage()
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("build created", "build_guid", b.GUID, "app_guid", app.GUID,
		"package_guid", pkg.GUID, "state", b.State)
	return created(a.presentBuild(b)), nil
}

// validateBuildPayload checks the body fields that need no lookup.
func validateBuildPayload(p buildCreatePayload) error {
	if p.Package == nil || p.Package.GUID == nil || *p.Package.GUID == "" {
		return apierr.UnprocessableEntity("Package guid can't be blank: send package.guid with the guid of a READY package")
	}
	if len(*p.Package.GUID) > 200 {
		return apierr.UnprocessableEntity("Package guid must be between 1 and 200 characters")
	}
	if p.StagingMemoryInMB != nil && *p.StagingMemoryInMB < 1 {
		return apierr.UnprocessableEntity("Staging memory in mb must be greater than 0")
	}
	if p.StagingDiskInMB != nil && *p.StagingDiskInMB < 1 {
		return apierr.UnprocessableEntity("Staging disk in mb must be greater than 0")
	}
	if p.StagingLogRateLimit != nil && *p.StagingLogRateLimit < -1 {
		return apierr.UnprocessableEntity("Staging log rate limit bytes per second must be greater than or equal to -1")
	}
	return validateMetadata(p.Metadata)
}

// packageForBuild reads the package a build stages and its app. A package
// that does not exist, is invisible, or whose app the actor may not manage
// is Cloud Controller's 422; a suspended organization or space is a 403.
func (a *API) packageForBuild(r *http.Request, guid string) (store.Package, store.App, error) {
	ctx := r.Context()
	pkg, err := a.store.Package(ctx, visibility(r), guid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, store.App{}, errUnusablePackage()
	}
	if err != nil {
		return store.Package{}, store.App{}, err
	}
	err = a.authorizeSpaceRole(ctx, actorOf(r), pkg.OrgGUID, pkg.SpaceGUID, roleSpaceDeveloper, roleSpaceSupporter)
	var apiErr *apierr.Error
	if errors.As(err, &apiErr) && apiErr.Code == apierr.NotAuthorized().Code {
		return store.Package{}, store.App{}, errUnusablePackage()
	}
	if err != nil {
		return store.Package{}, store.App{}, err
	}
	app, err := a.store.App(ctx, store.Visibility{All: true}, pkg.AppGUID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, store.App{}, errUnusablePackage()
	}
	return pkg, app, err
}

// newBuild validates the build's lifecycle against its package and app
// and returns the build to insert. The lifecycle type follows the package:
// bits stage with buildpacks, docker images need no staging.
func (a *API) newBuild(p buildCreatePayload, pkg store.Package, app store.App, actor *auth.Actor) (store.Build, error) {
	lifecycleType := store.LifecycleBuildpack
	if pkg.Type == store.PackageTypeDocker {
		lifecycleType = store.LifecycleDocker
	}
	lifecycle, err := a.parseLifecycle(p.Lifecycle, lifecycleType)
	if err != nil {
		return store.Build{}, err
	}
	if lifecycle.Type != lifecycleType {
		return store.Build{}, apierr.UnprocessableEntity(fmt.Sprintf(
			"Lifecycle type '%s' does not match the package: %s packages stage with the %s lifecycle",
			lifecycle.Type, pkg.Type, lifecycleType))
	}

	b := store.Build{
		GUID:                uuid.NewString(),
		AppGUID:             app.GUID,
		PackageGUID:         pkg.GUID,
		State:               store.BuildStateStaging,
		LifecycleType:       lifecycleType,
		Buildpacks:          []string{},
		StagingLogRateLimit: valueOr(p.StagingLogRateLimit, -1),
		CreatedByGUID:       actor.UserGUID,
		CreatedByName:       actor.DisplayName(),
	}
	b.Labels, b.Annotations = metadataValues(p.Metadata)
	if lifecycleType == store.LifecycleDocker {
		return b, nil
	}

	b.PackageImage = pkg.Image
	b.Buildpacks = slices.Clone(app.Buildpacks)
	if lifecycle.BuildpacksSet {
		b.Buildpacks = lifecycle.Buildpacks
	}
	b.Stack = app.Stack
	if lifecycle.StackSet {
		b.Stack = lifecycle.Stack
	}
	if b.Stack == "" {
		b.Stack = a.staging.DefaultStack
	}
	if !a.stackExists(b.Stack) {
		return store.Build{}, apierr.UnprocessableEntity("Stack '" + shorten(b.Stack) + "' has no builder: use one of " + quoteList(a.stackNames()))
	}
	return b, nil
}

// stagingSizes returns a build's staging memory and disk in MB as Cloud
// Controller computes them: the request's, else those of the app's web
// process, but never less than the configured staging sizes, which are
// minimums.
func (a *API) stagingSizes(ctx context.Context, p buildCreatePayload, app store.App) (memoryMB, diskMB int64, err error) {
	web, err := a.store.ProcessByType(ctx, store.Visibility{All: true}, app.GUID, store.ProcessTypeWeb)
	switch {
	case err == nil:
		memoryMB, diskMB = web.MemoryMB, web.DiskMB
	case !errors.Is(err, store.ErrNotFound):
		return 0, 0, err
	}
	memoryMB = valueOr(p.StagingMemoryInMB, memoryMB)
	diskMB = valueOr(p.StagingDiskInMB, diskMB)
	return max(memoryMB, positiveOr(a.staging.MemoryMB, fallbackStagingMemoryMB)),
		max(diskMB, positiveOr(a.staging.DiskMB, fallbackStagingDiskMB)), nil
}

func positiveOr(v, fallback int64) int64 {
	if v > 0 {
		return v
	}
	return fallback
}

func valueOr(v *int64, fallback int64) int64 {
	if v != nil {
		return *v
	}
	return fallback
}

// DockerStager makes the droplet of a docker build: the package's image
// pinned by digest, with its start command and ports from the image
// config.
type DockerStager interface {
	// DockerDroplet returns the droplet of build b of the docker package
	// pkg. Errors wrap registry.ErrNotFound when the image does not exist,
	// and are an *UnusableImageError when its config cannot run as an app.
	DockerDroplet(ctx context.Context, pkg store.Package, b store.Build) (store.Droplet, error)
}

// UnusableImageError reports a docker image whose config Ferry cannot run;
// Reason is shown to the user.
type UnusableImageError struct {
	Reason string
}

func (e *UnusableImageError) Error() string { return "unusable image: " + e.Reason }

// dockerDroplet makes the droplet of a docker build, turning image
// problems into a 422 the user can act on. Registry errors are logged.
func (a *API) dockerDroplet(ctx context.Context, pkg store.Package, b store.Build) (store.Droplet, error) {
	if a.docker == nil {
		return store.Droplet{}, errors.New("docker builds are not configured: cfapi.Config.Docker is nil")
	}
	droplet, err := a.docker.DockerDroplet(ctx, pkg, b)
	if err == nil {
		return droplet, nil
	}
	loggerFrom(ctx, a.logger).Warn("docker image unusable", "image", pkg.Image, "package_guid", pkg.GUID, "error", err)
	var unusable *UnusableImageError
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return store.Droplet{}, apierr.UnprocessableEntity("Docker image '" + shorten(pkg.Image) + "' was not found: check the image name and tag")
	case errors.As(err, &unusable):
		return store.Droplet{}, apierr.UnprocessableEntity("Docker image '" + shorten(pkg.Image) + "' cannot run as an app: " + unusable.Reason)
	case ctx.Err() != nil:
		return store.Droplet{}, err
	}
	return store.Droplet{}, apierr.UnprocessableEntity("Docker image '" + shorten(pkg.Image) +
		"' cannot be read from its registry: check the name, that the registry is reachable, and the credentials")
}
