package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// Async operations of packages.
const opPackageDelete = "package.delete"

// redactedCredential is Cloud Controller's stand-in for a stored password.
const redactedCredential = "***"

// maxDockerPasswordLength is Cloud Controller's limit on docker passwords.
const maxDockerPasswordLength = 5000

var packageTypes = []string{store.PackageTypeBits, store.PackageTypeDocker}

func (a *API) packageRoutes() []route {
	const base = "/v3/packages"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listPackages},
		{method: http.MethodPost, path: base, handler: a.createPackage},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getPackage},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updatePackage},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deletePackage},
		{method: http.MethodPost, path: base + "/{guid}/upload", handler: a.uploadPackage},
		{method: http.MethodGet, path: base + "/{guid}/download", handler: a.downloadPackage},
		{method: http.MethodGet, path: "/v3/apps/{guid}/packages", handler: a.listAppPackages},
		{method: http.MethodPost, path: "/v3/resource_matches", handler: a.createResourceMatches},
	}
}

func (a *API) packageJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opPackageDelete: a.runPackageDelete}
}

func errPackageNotFound() error { return apierr.NotFound("Package") }

// errInvalidPackageApp is Cloud Controller's 422 for a package whose app
// does not exist or is invisible to the actor.
func errInvalidPackageApp() error {
	return apierr.UnprocessableEntity("App is invalid. Ensure it exists and you have access to it.")
}

// packageCreatePayload is the body of POST /v3/packages without
// source_guid.
type packageCreatePayload struct {
	Type          *string                      `json:"type"`
	Relationships *packageRelationshipsPayload `json:"relationships"`
	Data          *packageDataPayload          `json:"data"`
	Metadata      *metadataPayload             `json:"metadata"`
}

type packageRelationshipsPayload struct {
	App *struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	} `json:"app"`
}

// appGUID returns the app the relationships name, or "".
func (p *packageRelationshipsPayload) appGUID() string {
	if p == nil || p.App == nil || p.App.Data == nil {
		return ""
	}
	return p.App.Data.GUID
}

// packageDataPayload is the data of a docker package. Bits packages take
// none.
type packageDataPayload struct {
	Image    *string `json:"image"`
	Username *string `json:"username"`
	Password *string `json:"password"`
}

// packageCopyPayload is the body of POST /v3/packages?source_guid=….
type packageCopyPayload struct {
	Relationships *packageRelationshipsPayload `json:"relationships"`
}

// packageUpdatePayload is the body of PATCH /v3/packages/:guid.
type packageUpdatePayload struct {
	Username *string          `json:"username"`
	Password *string          `json:"password"`
	Metadata *metadataPayload `json:"metadata"`
}

type packageJSON struct {
	GUID          string               `json:"guid"`
	CreatedAt     string               `json:"created_at"`
	UpdatedAt     string               `json:"updated_at"`
	Type          string               `json:"type"`
	Data          any                  `json:"data"`
	State         string               `json:"state"`
	Relationships packageRelationships `json:"relationships"`
	Metadata      metadataJSON         `json:"metadata"`
	Links         packageLinks         `json:"links"`
}

type packageRelationships struct {
	App toOne `json:"app"`
}

// packageLinks has upload and download only for bits packages, as in
// Cloud Controller.
type packageLinks struct {
	Self     link  `json:"self"`
	Upload   *link `json:"upload,omitempty"`
	Download *link `json:"download,omitempty"`
	App      link  `json:"app"`
}

type bitsDataJSON struct {
	Error    *string      `json:"error"`
	Checksum checksumJSON `json:"checksum"`
}

type checksumJSON struct {
	Type  string  `json:"type"`
	Value *string `json:"value"`
}

// dockerDataJSON never carries the password: a package with credentials
// shows "***", one without shows null.
type dockerDataJSON struct {
	Image    string  `json:"image"`
	Username *string `json:"username"`
	Password *string `json:"password"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *API) presentPackage(p store.Package) packageJSON {
	self := a.url("/v3/packages/", p.GUID)
	body := packageJSON{
		GUID:          p.GUID,
		CreatedAt:     timestamp(p.CreatedAt),
		UpdatedAt:     timestamp(p.UpdatedAt),
		Type:          p.Type,
		State:         p.State,
		Relationships: packageRelationships{App: relTo(p.AppGUID)},
		Metadata:      presentMetadata(p.Labels, p.Annotations),
		Links:         packageLinks{Self: link{Href: self}, App: link{Href: a.url("/v3/apps/", p.AppGUID)}},
	}
	if p.Type == store.PackageTypeDocker {
		data := dockerDataJSON{Image: p.Image, Username: optional(p.DockerUsername)}
		if p.DockerUsername != "" {
			data.Password = optional(redactedCredential)
		}
		body.Data = data
		return body
	}
	body.Data = bitsDataJSON{Error: optional(p.Error), Checksum: checksumJSON{Type: "sha256", Value: optional(p.Checksum)}}
	body.Links.Upload = &link{Href: self + "/upload", Method: http.MethodPost}
	body.Links.Download = &link{Href: self + "/download"}
	return body
}

var packageListSpec = withCommonFilters(listSpec{
	filters: []string{"app_guids", "states", "types", "space_guids", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

// appPackageListSpec is the spec of GET /v3/apps/:guid/packages, which
// takes no app, space or organization filters.
var appPackageListSpec = withCommonFilters(listSpec{
	filters: []string{"states", "types", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

func (a *API) listPackages(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, packageListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := packageFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = q.filter("app_guids")
	filter.SpaceGUIDs = q.filter("space_guids")
	filter.OrganizationGUIDs = q.filter("organization_guids")
	return a.packageList(r, q, filter)
}

// listAppPackages serves GET /v3/apps/:guid/packages, which the cf CLI
// reads for cf push --droplet and cf stage.
func (a *API) listAppPackages(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appPackageListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := packageFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.packageList(r, q, filter)
}

// packageFilterOf parses the filters both package lists accept.
func packageFilterOf(q *listQuery) (store.PackageFilter, error) {
	common, err := commonFilter(q)
	if err != nil {
		return store.PackageFilter{}, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.PackageFilter{}, err
	}
	return store.PackageFilter{
		CommonFilter:  common,
		States:        q.filter("states"),
		Types:         q.filter("types"),
		LabelSelector: selector,
	}, nil
}

func (a *API) packageList(r *http.Request, q *listQuery, filter store.PackageFilter) (*response, error) {
	packages, total, err := a.store.Packages(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]packageJSON, len(packages))
	for i, p := range packages {
		resources[i] = a.presentPackage(p)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// visiblePackage reads the package of the path. An invisible package is a
// 404.
func (a *API) visiblePackage(r *http.Request) (store.Package, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Package{}, err
	}
	p, err := a.store.Package(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, errPackageNotFound()
	}
	return p, err
}

// writablePackage reads the package of the path and checks that the actor
// may change it: admins and space developers of its app's space.
func (a *API) writablePackage(r *http.Request) (store.Package, error) {
	p, err := a.visiblePackage(r)
	if err != nil {
		return store.Package{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), p.OrgGUID, p.SpaceGUID, roleSpaceDeveloper); err != nil {
		return store.Package{}, err
	}
	return p, nil
}

func (a *API) getPackage(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	p, err := a.visiblePackage(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentPackage(p)), nil
}

// createPackage serves POST /v3/packages. With source_guid it copies a
// package to another app. Without it, it creates a bits package awaiting
// its upload, or a docker package that is READY at once.
func (a *API) createPackage(r *http.Request) (*response, error) {
	if err := rejectUnknownParams(r.URL.Query(), []string{"source_guid"}); err != nil {
		return nil, err
	}
	if r.URL.Query().Has("source_guid") {
		return a.copyPackage(r)
	}
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var p packageCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	app, err := a.packageApp(r, p.Relationships.appGUID())
	if err != nil {
		return nil, err
	}
	switch {
	case *p.Type == store.PackageTypeBits && app.LifecycleType == store.LifecycleDocker:
		return nil, apierr.UnprocessableEntity("Cannot create bits package for a Docker app.")
	case *p.Type == store.PackageTypeDocker && app.LifecycleType != store.LifecycleDocker:
		return nil, apierr.UnprocessableEntity("Cannot create Docker package for a buildpack app.")
	}

	labels, annotations := metadataValues(p.Metadata)
	pkg := store.Package{GUID: uuid.NewString(), AppGUID: app.GUID, Type: *p.Type, State: store.PackageAwaitingUpload,
		Labels: labels, Annotations: annotations}
	if pkg.Type == store.PackageTypeDocker {
		pkg.State = store.PackageReady
		pkg.Image = *p.Data.Image
		pkg.DockerUsername = deref(p.Data.Username)
		pkg.DockerPassword = deref(p.Data.Password)
	}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if pkg, err = store.CreatePackage(ctx, tx, pkg); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, packageEvent(actor, "audit.app.package.create", pkg, p.auditRequest()))
	})
	var fkErr *store.ForeignKeyError
	if errors.As(err, &fkErr) {
		// The app was deleted after it was read.
		return nil, errInvalidPackageApp()
	}
	if err != nil {
		return nil, err
	}
	return created(a.presentPackage(pkg)), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validate checks a create payload completely before anything is read or
// written. Messages follow Cloud Controller's where the cf CLI shows them.
func (p *packageCreatePayload) validate() error {
	if p.Type == nil || (*p.Type != store.PackageTypeBits && *p.Type != store.PackageTypeDocker) {
		return apierr.UnprocessableEntity("Type must be one of " + quoteList(packageTypes))
	}
	if p.Relationships.appGUID() == "" {
		return apierr.UnprocessableEntity("Relationships.app is required: send relationships.app.data.guid with the guid of the package's app")
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return err
	}
	if *p.Type == store.PackageTypeBits {
		if p.Data != nil && (p.Data.Image != nil || p.Data.Username != nil || p.Data.Password != nil) {
			return apierr.UnprocessableEntity("Data must be empty if provided for bits packages")
		}
		return nil
	}

	if p.Data == nil || p.Data.Image == nil || *p.Data.Image == "" {
		return apierr.UnprocessableEntity("Data.image is required for docker packages: send data.image with an image reference such as 'nginx:1.25'")
	}
	if err := registry.ValidateReference(*p.Data.Image); err != nil {
		return apierr.UnprocessableEntity(fmt.Sprintf("Data.image '%s' is not a valid image reference: use a form such as 'nginx:1.25' or 'registry.example.com/team/app@sha256:…'", shorten(*p.Data.Image)))
	}
	return validateDockerCredentials(p.Data.Username, p.Data.Password, true)
}

// validateDockerCredentials checks docker credentials. On create they must
// be given together, but on update either may change alone.
func validateDockerCredentials(username, password *string, together bool) error {
	if together && (username == nil) != (password == nil) {
		return apierr.UnprocessableEntity("Data.username and data.password must be given together, for a private registry, or both omitted")
	}
	if password != nil && utf8.RuneCountInString(*password) > maxDockerPasswordLength {
		return apierr.UnprocessableEntity(fmt.Sprintf("Docker password can be up to %d characters", maxDockerPasswordLength))
	}
	return nil
}

// auditRequest is the data.request of audit.app.package.create: the fields
// the client sent, with the password replaced by "***".
func (p *packageCreatePayload) auditRequest() map[string]any {
	request := map[string]any{"type": *p.Type}
	if p.Data != nil && p.Data.Image != nil {
		data := map[string]any{"image": *p.Data.Image}
		if p.Data.Username != nil {
			data["username"] = *p.Data.Username
		}
		if p.Data.Password != nil {
			data["password"] = redactedCredential
		}
		request["data"] = data
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}

// packageApp reads the app a create or copy request names and checks that
// the actor may add packages to it. Cloud Controller rejects an app the
// actor cannot see with a 422, because it is named in the body.
func (a *API) packageApp(r *http.Request, guid string) (store.App, error) {
	app, err := a.appForRead(r, guid)
	if errors.Is(err, errAppNotFound()) {
		return store.App{}, errInvalidPackageApp()
	}
	if err != nil {
		return store.App{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), app.OrgGUID, app.SpaceGUID, roleSpaceDeveloper); err != nil {
		return store.App{}, err
	}
	return app, nil
}

// packageEvent builds an audit event of actor on the app of p, as Cloud
// Controller records package events against the app.
func packageEvent(actor *auth.Actor, eventType string, p store.Package, request map[string]any) store.AuditEvent {
	data := map[string]any{"package_guid": p.GUID}
	if request != nil {
		data["request"] = request
	}
	app := store.App{GUID: p.AppGUID, Name: p.AppName, SpaceGUID: p.SpaceGUID, OrgGUID: p.OrgGUID}
	return appEvent(actor, eventType, app, data)
}

// copyPackage serves POST /v3/packages?source_guid=…: the new package of
// the app in the body gets the source's image. A bits image is copied to
// the new package's own repository, so deleting either package leaves the
// other intact. Cloud Controller copies asynchronously through COPYING,
// but Ferry copies within the request and returns the package READY or
// FAILED.
func (a *API) copyPackage(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	var p packageCopyPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	appGUID := p.Relationships.appGUID()
	if appGUID == "" {
		return nil, apierr.UnprocessableEntity("Relationships.app is required: send relationships.app.data.guid with the guid of the app to copy the package to")
	}

	app, err := a.packageApp(r, appGUID)
	if err != nil {
		return nil, err
	}
	source, err := a.store.Package(ctx, visibility(r), r.URL.Query().Get("source_guid"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.UnprocessableEntity("Source package is invalid. Ensure it exists and you have access to it.")
	}
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, source.OrgGUID, source.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	if source.AppGUID == app.GUID {
		return nil, apierr.UnprocessableEntity("Source and destination app cannot be the same")
	}
	if source.Type == store.PackageTypeBits && source.State != store.PackageReady {
		return nil, apierr.UnprocessableEntity(fmt.Sprintf("Source package is in state %s: only READY packages can be copied", source.State))
	}

	pkg := store.Package{GUID: uuid.NewString(), AppGUID: app.GUID, Type: source.Type, State: store.PackageReady,
		Image: source.Image, DockerUsername: source.DockerUsername, DockerPassword: source.DockerPassword}
	if source.Type == store.PackageTypeBits {
		pkg.State, pkg.Image = store.PackageCopying, ""
	}
	request := map[string]any{"source_package_guid": source.GUID}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if pkg, err = store.CreatePackage(ctx, tx, pkg); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, packageEvent(actor, "audit.app.package.create", pkg, request))
	})
	if err != nil {
		return nil, err
	}
	if pkg.Type == store.PackageTypeBits {
		if pkg, err = a.copyPackageImage(ctx, source, pkg); err != nil {
			return nil, err
		}
	}
	return created(a.presentPackage(pkg)), nil
}

// copyPackageImage copies the bits image of source to pkg's repository and
// moves pkg from COPYING to READY, or to FAILED when the registry fails.
// The registry work outlives a client that hangs up, so the package never
// stays COPYING.
func (a *API) copyPackageImage(ctx context.Context, source, pkg store.Package) (store.Package, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryTimeout)
	defer cancel()
	logger := loggerFrom(ctx, a.logger).With("package_guid", pkg.GUID, "source_package_guid", source.GUID)

	result := store.PackageResult{State: store.PackageFailed, Error: "Copy failed: the package image could not be copied in the registry"}
	if a.registry == nil {
		logger.Error("package copy failed: no registry is configured")
	} else if ref, err := a.registry.Copy(ctx, source.Image, a.registry.PackageRepository(pkg.GUID)); err != nil {
		logger.Error("package copy failed", "error", err)
	} else {
		result = store.PackageResult{State: store.PackageReady, Image: ref, Checksum: source.Checksum}
	}
	return store.TransitionPackage(ctx, a.store.DB(), pkg.GUID, []string{store.PackageCopying}, result)
}

// updatePackage serves PATCH /v3/packages/:guid: metadata for any package,
// and the registry credentials of docker packages.
func (a *API) updatePackage(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	var p packageUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if err := validateDockerCredentials(p.Username, p.Password, false); err != nil {
		return nil, err
	}
	pkg, err := a.visiblePackage(r)
	if err != nil {
		return nil, err
	}
	if pkg.Type != store.PackageTypeDocker && (p.Username != nil || p.Password != nil) {
		return nil, apierr.UnprocessableEntity("Cannot update Docker credentials for a buildpack app.")
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), pkg.OrgGUID, pkg.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}

	update := store.PackageUpdate{DockerUsername: p.Username, DockerPassword: p.Password, Metadata: metadataPatch(p.Metadata)}
	pkg, err = store.UpdatePackage(r.Context(), a.store.DB(), pkg.GUID, update)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPackageNotFound()
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentPackage(pkg)), nil
}

// deletePackage serves DELETE /v3/packages/:guid: it records the event and
// starts a package.delete job in one transaction.
func (a *API) deletePackage(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	pkg, err := a.writablePackage(r)
	if err != nil {
		return nil, err
	}

	job := newJob(actor, opPackageDelete, "package", pkg.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, packageEvent(actor, "audit.app.package.delete", pkg, nil))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runPackageDelete is the package.delete job: it deletes the package's
// image from the registry, then the row. A retry after either step
// finishes the rest, and a package that is already gone is done.
func (a *API) runPackageDelete(ctx context.Context, job store.Job) error {
	pkg, err := a.store.Package(ctx, store.Visibility{All: true}, job.ResourceGUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := a.deletePackageImage(ctx, pkg.Type, pkg.Image); err != nil {
		return err
	}
	if _, err := store.DeletePackage(ctx, a.store.DB(), pkg.GUID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// deletePackageImage deletes a bits package's image from Ferry's registry.
// Docker packages and packages without bits have nothing to delete.
func (a *API) deletePackageImage(ctx context.Context, packageType, image string) error {
	if packageType != store.PackageTypeBits || image == "" {
		return nil
	}
	if a.registry == nil {
		return errors.New("delete package image: no registry is configured")
	}
	return a.registry.Delete(ctx, image)
}

// deleteAppPackageImages deletes the images of every bits package of the
// app from the registry. The app.delete job calls it before deleting the
// app's row, whose deletion takes the package rows with it.
func (a *API) deleteAppPackageImages(ctx context.Context, appGUID string) error {
	images, err := store.PackageImagesOfApp(ctx, a.store.DB(), appGUID)
	if err != nil {
		return err
	}
	for _, image := range images {
		if err := a.deletePackageImage(ctx, store.PackageTypeBits, image); err != nil {
			return err
		}
	}
	return nil
}
