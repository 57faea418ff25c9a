package cfapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Revisions are the droplets an app ran, numbered per app; cf revisions
// lists them and cf rollback deploys one again.
func (a *API) revisionRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/apps/{guid}/revisions", handler: a.listAppRevisions},
		{method: http.MethodGet, path: "/v3/apps/{guid}/revisions/deployed", handler: a.listDeployedRevisions},
		{method: http.MethodGet, path: "/v3/revisions/{guid}", handler: a.getRevision},
		{method: http.MethodPatch, path: "/v3/revisions/{guid}", handler: a.updateRevision},
	}
}

type revisionJSON struct {
	GUID          string          `json:"guid"`
	Version       int             `json:"version"`
	Droplet       guidRef         `json:"droplet"`
	Processes     map[string]any  `json:"processes"`
	Sidecars      []any           `json:"sidecars"`
	Description   string          `json:"description"`
	Deployable    bool            `json:"deployable"`
	CreatedAt     string          `json:"created_at"`
	UpdatedAt     string          `json:"updated_at"`
	Metadata      metadataJSON    `json:"metadata"`
	Relationships revisionRelJSON `json:"relationships"`
	Links         map[string]link `json:"links"`
}

type revisionRelJSON struct {
	App toOne `json:"app"`
}

// presentRevision renders a revision as Cloud Controller does. Ferry's
// revisions record the droplet only, so processes and sidecars are empty.
func (a *API) presentRevision(rev store.Revision) revisionJSON {
	return revisionJSON{
		GUID:          rev.GUID,
		Version:       rev.Version,
		Droplet:       guidRef{GUID: rev.DropletGUID},
		Processes:     map[string]any{},
		Sidecars:      []any{},
		Description:   rev.Description,
		Deployable:    rev.Deployable(),
		CreatedAt:     timestamp(rev.CreatedAt),
		UpdatedAt:     timestamp(rev.UpdatedAt),
		Metadata:      presentMetadata(rev.Labels, rev.Annotations),
		Relationships: revisionRelJSON{App: relTo(rev.AppGUID)},
		Links: map[string]link{
			"self": {Href: a.url("/v3/revisions/", rev.GUID)},
			"app":  {Href: a.url("/v3/apps/", rev.AppGUID)},
		},
	}
}

var revisionListSpec = withCommonFilters(listSpec{
	filters: []string{"versions", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "version"},
})

var deployedRevisionListSpec = listSpec{orderBy: []string{"created_at", "updated_at"}}

// listAppRevisions serves GET /v3/apps/:guid/revisions. cf rollback
// filters it by versions, and cf revisions orders it by -created_at.
func (a *API) listAppRevisions(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, revisionListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}
	filter := store.RevisionFilter{CommonFilter: common, AppGUIDs: []string{app.GUID}, LabelSelector: selector}
	if values := q.filter("versions"); values != nil {
		filter.Versions = []int{}
		for _, v := range values {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, apierr.BadQueryParameter("Versions must be integers, got '" + v + "'")
			}
			filter.Versions = append(filter.Versions, n)
		}
	}
	return a.revisionList(r, q, filter)
}

// listDeployedRevisions serves GET /v3/apps/:guid/revisions/deployed: the
// revision a started app runs.
func (a *API) listDeployedRevisions(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, deployedRevisionListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	return a.revisionList(r, q, store.RevisionFilter{AppGUIDs: []string{app.GUID}, Deployed: true})
}

func (a *API) revisionList(r *http.Request, q *listQuery, filter store.RevisionFilter) (*response, error) {
	revisions, total, err := a.store.Revisions(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]revisionJSON, len(revisions))
	for i, rev := range revisions {
		resources[i] = a.presentRevision(rev)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func errRevisionNotFound() error { return apierr.NotFound("Revision") }

func (a *API) visibleRevision(r *http.Request) (store.Revision, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Revision{}, err
	}
	rev, err := a.store.Revision(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Revision{}, errRevisionNotFound()
	}
	return rev, err
}

// getRevision serves GET /v3/revisions/:guid.
func (a *API) getRevision(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	rev, err := a.visibleRevision(r)
	if err != nil {
		return nil, err
	}
	return ok(a.presentRevision(rev)), nil
}

// updateRevision serves PATCH /v3/revisions/:guid, which changes
// metadata, for admins and space developers.
func (a *API) updateRevision(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return nil, err
	}
	rev, err := a.visibleRevision(r)
	if err != nil {
		return nil, err
	}

	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), rev.OrgGUID, rev.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	var p struct {
		Metadata *metadataPayload `json:"metadata"`
	}
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}

	updated, err := store.UpdateRevisionMetadata(r.Context(), a.store.DB(), rev.GUID, metadataPatch(p.Metadata))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errRevisionNotFound()
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentRevision(updated)), nil
}
