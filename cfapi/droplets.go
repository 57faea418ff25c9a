package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Async operations of droplets.
const opDropletDelete = "droplet.delete"

func (a *API) dropletRoutes() []route {
	const base = "/v3/droplets"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listDroplets},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getDroplet},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateDroplet},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteDroplet},
		{method: http.MethodGet, path: "/v3/apps/{guid}/droplets", handler: a.listAppDroplets},
		{method: http.MethodGet, path: "/v3/apps/{guid}/droplets/current", handler: a.getCurrentDroplet},
		{method: http.MethodGet, path: "/v3/apps/{guid}/relationships/current_droplet", handler: a.getCurrentDropletRelationship},
		{method: http.MethodPatch, path: "/v3/apps/{guid}/relationships/current_droplet", handler: a.setCurrentDroplet},
		{method: http.MethodGet, path: "/v3/packages/{guid}/droplets", handler: a.listPackageDroplets},
	}
}

func (a *API) dropletJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opDropletDelete: a.runDropletDelete}
}

// errDropletNotFound is the 404 the cf CLI expects, with the detail
// "Droplet not found", for an app without a current droplet.
func errDropletNotFound() error { return apierr.NotFound("Droplet") }

// errUnassignableDroplet is Cloud Controller's 422 for a droplet that does
// not exist or belongs to another app.
func errUnassignableDroplet() error {
	return apierr.UnprocessableEntity("Unable to assign current droplet. Ensure the droplet exists and belongs to this app.")
}

func errDropletInUse(appGUID string) error {
	return apierr.UnprocessableEntity("The droplet is currently used by app with guid \"" + appGUID + "\".")
}

// dropletUpdatePayload is the body of PATCH /v3/droplets/:guid.
type dropletUpdatePayload struct {
	Metadata *metadataPayload `json:"metadata"`
}

// currentDropletPayload is the body of PATCH
// /v3/apps/:guid/relationships/current_droplet. A missing or null data is a
// request to remove the droplet, which Cloud Controller rejects.
type currentDropletPayload struct {
	Data *struct {
		GUID *string `json:"guid"`
	} `json:"data"`
}

type dropletJSON struct {
	GUID              string                 `json:"guid"`
	CreatedAt         string                 `json:"created_at"`
	UpdatedAt         string                 `json:"updated_at"`
	State             string                 `json:"state"`
	Error             *string                `json:"error"`
	Lifecycle         appLifecycleJSON       `json:"lifecycle"`
	Checksum          *dropletChecksumJSON   `json:"checksum"`
	Buildpacks        []dropletBuildpackJSON `json:"buildpacks"`
	Stack             *string                `json:"stack"`
	Image             *string                `json:"image"`
	ExecutionMetadata string                 `json:"execution_metadata"`
	// ProcessTypes is a map of type to command, or {"redacted_message": …}
	// for actors who may not read the app's secrets.
	ProcessTypes  map[string]string    `json:"process_types"`
	Relationships dropletRelationships `json:"relationships"`
	Metadata      metadataJSON         `json:"metadata"`
	Links         dropletLinks         `json:"links"`
}

type dropletChecksumJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type dropletBuildpackJSON struct {
	Name          string  `json:"name"`
	BuildpackName string  `json:"buildpack_name"`
	DetectOutput  *string `json:"detect_output"`
	Version       *string `json:"version"`
}

type dropletRelationships struct {
	App toOne `json:"app"`
}

type dropletLinks struct {
	Self                 link  `json:"self"`
	App                  link  `json:"app"`
	AssignCurrentDroplet link  `json:"assign_current_droplet"`
	Package              *link `json:"package,omitempty"`
}

// presentDroplet renders a droplet as Cloud Controller does. A buildpack
// droplet's image is Ferry's own and not shown, because Cloud Controller
// clients take a non-null image for a docker droplet. showSecrets false
// hides the process types and execution metadata.
func (a *API) presentDroplet(d store.Droplet, showSecrets bool) dropletJSON {
	body := dropletJSON{
		GUID:              d.GUID,
		CreatedAt:         timestamp(d.CreatedAt),
		UpdatedAt:         timestamp(d.UpdatedAt),
		State:             d.State,
		Error:             nullable(d.Error),
		Lifecycle:         appLifecycleJSON{Type: d.LifecycleType, Data: struct{}{}},
		ExecutionMetadata: d.ExecutionMetadata,
		ProcessTypes:      d.ProcessTypes,
		Relationships:     dropletRelationships{App: relTo(d.AppGUID)},
		Metadata:          presentMetadata(d.Labels, d.Annotations),
		Links: dropletLinks{
			Self:                 link{Href: a.url("/v3/droplets/", d.GUID)},
			App:                  link{Href: a.url("/v3/apps/", d.AppGUID)},
			AssignCurrentDroplet: link{Href: a.url("/v3/apps/", d.AppGUID, "/relationships/current_droplet"), Method: http.MethodPatch},
		},
	}
	if body.ProcessTypes == nil {
		body.ProcessTypes = map[string]string{}
	}
	if d.PackageGUID != "" {
		body.Links.Package = &link{Href: a.url("/v3/packages/", d.PackageGUID)}
	}
	if d.LifecycleType == store.LifecycleDocker {
		body.Image = nullable(d.Image)
	} else {
		body.Stack = nullable(d.Stack)
		body.Buildpacks = make([]dropletBuildpackJSON, len(d.Buildpacks))
		for i, bp := range d.Buildpacks {
			body.Buildpacks[i] = dropletBuildpackJSON{Name: bp.Name, BuildpackName: bp.BuildpackName,
				DetectOutput: nullable(bp.DetectOutput), Version: nullable(bp.Version)}
		}
	}
	if !showSecrets {
		body.ProcessTypes = map[string]string{"redacted_message": privateDataHidden}
		body.ExecutionMetadata = privateDataHidden
	}
	return body
}

var dropletListSpec = withCommonFilters(listSpec{
	filters: []string{"states", "app_guids", "space_guids", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

var appDropletListSpec = withCommonFilters(listSpec{
	filters: []string{"states", "current", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

var packageDropletListSpec = withCommonFilters(listSpec{
	filters: []string{"states", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

func dropletFilterOf(q *listQuery) (store.DropletFilter, error) {
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.DropletFilter{}, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return store.DropletFilter{}, err
	}
	f := store.DropletFilter{
		CommonFilter:      common,
		States:            q.filter("states"),
		AppGUIDs:          q.filter("app_guids"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
		LabelSelector:     selector,
	}
	if q.has("current") {
		if q.values.Get("current") != "true" {
			return store.DropletFilter{}, apierr.BadQueryParameter("Current only accepts the value 'true'")
		}
		f.Current = true
	}
	return f, nil
}

func (a *API) listDroplets(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, dropletListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := dropletFilterOf(q)
	if err != nil {
		return nil, err
	}
	return a.dropletList(r, q, filter)
}

// listAppDroplets serves GET /v3/apps/:guid/droplets.
func (a *API) listAppDroplets(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appDropletListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := dropletFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.dropletList(r, q, filter)
}

// listPackageDroplets serves GET /v3/packages/:guid/droplets, which cf
// start and cf restart call with states=STAGED&per_page=1 to find out
// whether the newest package still needs staging.
func (a *API) listPackageDroplets(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, packageDropletListSpec)
	if err != nil {
		return nil, err
	}
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	pkg, err := a.store.Package(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPackageNotFound()
	}
	if err != nil {
		return nil, err
	}
	filter, err := dropletFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.PackageGUIDs = []string{pkg.GUID}
	return a.dropletList(r, q, filter)
}

func (a *API) dropletList(r *http.Request, q *listQuery, filter store.DropletFilter) (*response, error) {
	droplets, total, err := a.store.Droplets(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]dropletJSON, len(droplets))
	for i, d := range droplets {
		resources[i] = a.presentDroplet(d, true)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// visibleDroplet reads the droplet of the path. An invisible droplet is a
// 404.
func (a *API) visibleDroplet(r *http.Request) (store.Droplet, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Droplet{}, err
	}
	d, err := a.store.Droplet(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Droplet{}, errDropletNotFound()
	}
	return d, err
}

// getDroplet serves GET /v3/droplets/:guid. As in Cloud Controller, only
// admins, read-only admins and space developers see the process types and
// execution metadata.
func (a *API) getDroplet(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.visibleDroplet(r)
	if err != nil {
		return nil, err
	}
	show, err := a.canReadAppSecrets(r.Context(), actorOf(r), store.App{OrgGUID: d.OrgGUID, SpaceGUID: d.SpaceGUID})
	if err != nil {
		return nil, err
	}
	return ok(a.presentDroplet(d, show)), nil
}

// updateDroplet serves PATCH /v3/droplets/:guid, which changes metadata.
func (a *API) updateDroplet(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return nil, err
	}
	d, err := a.visibleDroplet(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actorOf(r), d.OrgGUID, d.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	var p dropletUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	updated, err := store.UpdateDropletMetadata(ctx, a.store.DB(), d.GUID, metadataPatch(p.Metadata))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errDropletNotFound()
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentDroplet(updated, true)), nil
}

// deleteDroplet serves DELETE /v3/droplets/:guid for admins and space
// developers: it records the event and starts a droplet.delete job in one
// transaction. An app's current droplet cannot be deleted.
func (a *API) deleteDroplet(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	d, err := a.visibleDroplet(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, d.OrgGUID, d.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	app, err := a.store.App(ctx, store.Visibility{All: true}, d.AppGUID)
	if err != nil {
		return nil, err
	}
	if app.DropletGUID == d.GUID {
		return nil, errDropletInUse(app.GUID)
	}

	job := newJob(actor, opDropletDelete, "droplet", d.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.droplet.delete", app,
			map[string]any{"droplet_guid": d.GUID}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runDropletDelete is the droplet.delete job. It deletes the row first,
// which fails while the droplet is current, then the droplet image when it
// is Ferry's and no other droplet uses it. If the image delete fails, the
// image is left behind and logged; a droplet that is already gone is done.
func (a *API) runDropletDelete(ctx context.Context, job store.Job) error {
	var deleted store.Droplet
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		deleted, err = store.DeleteDroplet(ctx, tx, job.ResourceGUID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case errors.Is(err, store.ErrDropletInUse):
		d, readErr := a.store.Droplet(ctx, store.Visibility{All: true}, job.ResourceGUID)
		if readErr != nil {
			return errDropletInUse("")
		}
		return errDropletInUse(d.AppGUID)
	case err != nil:
		return err
	}
	if deleted.LifecycleType != store.LifecycleBuildpack || deleted.Image == "" || a.registry == nil {
		return nil
	}
	used, err := store.DropletImageInUse(ctx, a.store.DB(), deleted.Image, deleted.GUID)
	if err != nil || used {
		return err
	}
	if err := a.registry.Delete(ctx, a.registryHostReference(deleted.Image)); err != nil {
		loggerFrom(ctx, a.logger).Warn("droplet image left in the registry", "droplet_guid", deleted.GUID,
			"image", deleted.Image, "error", err)
	}
	return nil
}

// registryHostReference rewrites a reference on the registry's cluster
// address, as droplets store them, to the address Ferry reaches.
func (a *API) registryHostReference(ref string) string {
	host := a.registry.Repository()
	cluster := a.registry.ClusterReference(host)
	if rest, ok := strings.CutPrefix(ref, cluster+"/"); ok && cluster != host {
		return host + "/" + rest
	}
	return ref
}

// getCurrentDroplet serves GET /v3/apps/:guid/droplets/current. An app
// without a droplet is the 404 "Droplet not found", which cf app and the
// push summary expect.
func (a *API) getCurrentDroplet(r *http.Request) (*response, error) {
	d, err := a.currentDroplet(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentDroplet(d, true)), nil
}

func (a *API) currentDroplet(r *http.Request) (store.Droplet, error) {
	if err := noQuery(r); err != nil {
		return store.Droplet{}, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return store.Droplet{}, err
	}
	d, err := a.store.CurrentDroplet(r.Context(), visibility(r), app.GUID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Droplet{}, errDropletNotFound()
	}
	return d, err
}

// currentDropletJSON is the current_droplet relationship of an app.
type currentDropletJSON struct {
	Data  *guidRef            `json:"data"`
	Links currentDropletLinks `json:"links"`
}

type currentDropletLinks struct {
	Self    link `json:"self"`
	Related link `json:"related"`
}

func (a *API) presentCurrentDroplet(appGUID, dropletGUID string) currentDropletJSON {
	self := a.url("/v3/apps/", appGUID)
	return currentDropletJSON{
		Data: &guidRef{GUID: dropletGUID},
		Links: currentDropletLinks{
			Self:    link{Href: self + "/relationships/current_droplet"},
			Related: link{Href: self + "/droplets/current"},
		},
	}
}

// getCurrentDropletRelationship serves GET
// /v3/apps/:guid/relationships/current_droplet.
func (a *API) getCurrentDropletRelationship(r *http.Request) (*response, error) {
	d, err := a.currentDroplet(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentCurrentDroplet(d.AppGUID, d.GUID)), nil
}

// setCurrentDroplet serves PATCH /v3/apps/:guid/relationships/current_droplet
// for admins and space developers and supporters. The droplet must be a
// STAGED droplet of the app; cf push sends this after staging and reads
// the relationship back.
func (a *API) setCurrentDroplet(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	var p currentDropletPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Data == nil || p.Data.GUID == nil {
		return nil, apierr.UnprocessableEntity("Current droplet cannot be removed. Replace it with a preferred droplet.")
	}
	app, err := a.appForManage(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	d, err := a.store.Droplet(ctx, store.Visibility{All: true}, *p.Data.GUID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (d.AppGUID != app.GUID || d.State != store.DropletStateStaged)) {
		return nil, errUnassignableDroplet()
	}
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.SetAppCurrentDroplet(ctx, tx, app.GUID, d.GUID); err != nil {
			return err
		}
		// Every process type of the droplet gets a process, as in Cloud
		// Controller, so cf scale can address it.
		if _, err := store.EnsureProcessTypes(ctx, tx, app.GUID, slices.Sorted(maps.Keys(d.ProcessTypes))); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.droplet.mapped", app,
			map[string]any{"request": map[string]any{"droplet_guid": d.GUID}}))
	})
	var fkErr *store.ForeignKeyError
	switch {
	case errors.As(err, &fkErr):
		// The droplet was deleted after it was read.
		return nil, errUnassignableDroplet()
	case errors.Is(err, store.ErrNotFound):
		return nil, errAppNotFound()
	case err != nil:
		return nil, err
	}
	return ok(a.presentCurrentDroplet(app.GUID, d.GUID)), nil
}
