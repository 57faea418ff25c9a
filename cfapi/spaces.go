package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Async operations of spaces.
const opSpaceDelete = "space.delete"

func (a *API) spaceRoutes() []route {
	const base = "/v3/spaces"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listSpaces},
		{method: http.MethodPost, path: base, handler: a.createSpace},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getSpace},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateSpace},
		{method: http.MethodDelete, path: base + "/{guid}", handler: a.deleteSpace},
		{method: http.MethodGet, path: base + "/{guid}/usage_summary", handler: a.spaceUsageSummary},
	}
}

func (a *API) spaceJobs() map[string]jobs.Func {
	return map[string]jobs.Func{opSpaceDelete: a.runSpaceDelete}
}

// errInvalidSpaceOrganization is the 422 for a space whose organization does
// not exist or is invisible to the actor.
func errInvalidSpaceOrganization() error {
	return apierr.UnprocessableEntity("Invalid organization. Ensure the organization exists and you have access to it.")
}

// spaceCreatePayload is the body of POST /v3/spaces.
type spaceCreatePayload struct {
	Name          *string                    `json:"name"`
	Suspended     *bool                      `json:"suspended"`
	Relationships *spaceRelationshipsPayload `json:"relationships"`
	Metadata      *metadataPayload           `json:"metadata"`
}

type spaceRelationshipsPayload struct {
	Organization *spaceOrganizationPayload `json:"organization"`
}

type spaceOrganizationPayload struct {
	Data *struct {
		GUID string `json:"guid"`
	} `json:"data"`
}

// organizationGUID returns the organization the payload names, or "".
func (p *spaceCreatePayload) organizationGUID() string {
	if p.Relationships == nil || p.Relationships.Organization == nil || p.Relationships.Organization.Data == nil {
		return ""
	}
	return p.Relationships.Organization.Data.GUID
}

// spaceUpdatePayload is the body of PATCH /v3/spaces/:guid.
type spaceUpdatePayload struct {
	Name      *string          `json:"name"`
	Suspended *bool            `json:"suspended"`
	Metadata  *metadataPayload `json:"metadata"`
}

type spaceJSON struct {
	GUID          string             `json:"guid"`
	CreatedAt     string             `json:"created_at"`
	UpdatedAt     string             `json:"updated_at"`
	Name          string             `json:"name"`
	Suspended     bool               `json:"suspended"`
	Relationships spaceRelationships `json:"relationships"`
	Metadata      metadataJSON       `json:"metadata"`
	Links         spaceLinks         `json:"links"`
	Included      map[string]any     `json:"included,omitempty"`
}

type spaceRelationships struct {
	Organization toOne `json:"organization"`
	Quota        toOne `json:"quota"`
}

type spaceLinks struct {
	Self          link `json:"self"`
	Features      link `json:"features"`
	Organization  link `json:"organization"`
	ApplyManifest link `json:"apply_manifest"`
}

func (a *API) presentSpace(s store.Space) spaceJSON {
	self := a.url("/v3/spaces/", s.GUID)
	return spaceJSON{
		GUID:      s.GUID,
		CreatedAt: timestamp(s.CreatedAt),
		UpdatedAt: timestamp(s.UpdatedAt),
		Name:      s.Name,
		Suspended: s.Suspended,
		Relationships: spaceRelationships{
			Organization: relTo(s.OrganizationGUID),
			Quota:        relTo(s.QuotaGUID),
		},
		Metadata: presentMetadata(s.Labels, s.Annotations),
		Links: spaceLinks{
			Self:          link{Href: self},
			Features:      link{Href: self + "/features"},
			Organization:  link{Href: a.url("/v3/organizations/", s.OrganizationGUID)},
			ApplyManifest: link{Href: self + "/actions/apply_manifest", Method: http.MethodPost},
		},
	}
}

var spaceListSpec = withCommonFilters(listSpec{
	filters:  []string{"names", "organization_guids", "label_selector"},
	orderBy:  []string{"created_at", "updated_at", "name"},
	includes: []string{"organization"},
})

func (a *API) listSpaces(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, spaceListSpec)
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

	filter := store.SpaceFilter{
		Names:             q.filter("names"),
		GUIDs:             common.GUIDs,
		OrganizationGUIDs: q.filter("organization_guids"),
		LabelSelector:     selector,
		CreatedAts:        common.CreatedAts,
		UpdatedAts:        common.UpdatedAts,
	}
	spaces, total, err := a.store.Spaces(ctx, filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}

	resources := make([]spaceJSON, len(spaces))
	orgGUIDs := make([]string, 0, len(spaces))
	for i, s := range spaces {
		resources[i] = a.presentSpace(s)
		orgGUIDs = append(orgGUIDs, s.OrganizationGUID)
	}
	body := a.list(r, q.page, total, resources)
	if q.includes("organization") {
		orgs, err := a.spaceOrganizations(ctx, r, orgGUIDs)
		if err != nil {
			return nil, err
		}
		body.Included = map[string]any{"organizations": orgs}
	}
	return ok(body), nil
}

// spaceOrganizations fetches the distinct organizations of guids in one
// query for include=organization.
func (a *API) spaceOrganizations(ctx context.Context, r *http.Request, guids []string) ([]organizationJSON, error) {
	slices.Sort(guids)
	guids = slices.Compact(guids)
	out := []organizationJSON{}
	if len(guids) == 0 {
		return out, nil
	}
	page := store.Page{Number: 1, PerPage: len(guids), OrderBy: "name"}
	orgs, _, err := a.store.Organizations(ctx, store.OrganizationFilter{GUIDs: guids}, page, visibility(r))
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		out = append(out, a.presentOrganization(o))
	}
	return out, nil
}

// visibleSpace reads the space of the path. An invisible space is a 404.
func (a *API) visibleSpace(r *http.Request) (store.Space, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Space{}, err
	}
	space, err := a.store.Space(r.Context(), pathParam(r, "guid"), visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, apierr.NotFound("Space")
	}
	return space, err
}

var spaceGetSpec = listSpec{includes: []string{"organization"}}

func (a *API) getSpace(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := rejectUnknownParams(r.URL.Query(), []string{"include"}); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, spaceGetSpec)
	if err != nil {
		return nil, err
	}
	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}

	body := a.presentSpace(space)
	if q.includes("organization") {
		orgs, err := a.spaceOrganizations(ctx, r, []string{space.OrganizationGUID})
		if err != nil {
			return nil, err
		}
		body.Included = map[string]any{"organizations": orgs}
	}
	return ok(body), nil
}

// createSpace serves POST /v3/spaces for admins and managers of the
// organization. An organization the actor cannot see is a 422, as in Cloud
// Controller, because it is named in the body, not the path.
func (a *API) createSpace(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var p spaceCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateTenancyName(p.Name, true); err != nil {
		return nil, err
	}
	orgGUID := p.organizationGUID()
	if orgGUID == "" {
		return nil, apierr.UnprocessableEntity("Relationships.organization is required: send relationships.organization.data.guid with the guid of the space's organization")
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}

	org, err := a.store.Organization(ctx, orgGUID, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidSpaceOrganization()
	}
	if err != nil {
		return nil, err
	}
	if err := a.authorizeInOrg(ctx, actor, org.GUID, "", true, errInvalidSpaceOrganization(), roleOrgManager); err != nil {
		return nil, err
	}
	if org.Suspended && !actor.IsAdmin() {
		return nil, errOrgSuspended()
	}

	labels, annotations := metadataValues(p.Metadata)
	space := store.Space{GUID: uuid.NewString(), Name: *p.Name, OrganizationGUID: org.GUID,
		Suspended: p.Suspended != nil && *p.Suspended, Labels: labels, Annotations: annotations}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if space, err = store.CreateSpace(ctx, tx, space); err != nil {
			return err
		}
		request := spaceRequest(p.Name, p.Suspended, p.Metadata)
		request["relationships"] = map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org.GUID}}}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.space.create", "space",
			space.GUID, space.Name, org.GUID, space.GUID, request))
	})
	var fkErr *store.ForeignKeyError
	switch {
	case store.IsUnique(err, store.ConstraintSpaceName):
		return nil, apierr.UnprocessableEntity("Name must be unique per organization")
	case errors.As(err, &fkErr):
		// The organization was deleted after it was read.
		return nil, errInvalidSpaceOrganization()
	case err != nil:
		return nil, err
	}
	return created(a.presentSpace(space)), nil
}

// authorizeSpaceWrite checks that actor may change space. Admins always
// may. Otherwise org managers may, and space managers too when
// spaceManagers is set.
// Non-admins may not change anything in a suspended organization, and only
// org managers may change a suspended space. It reports whether the actor
// manages the space's organization.
func (a *API) authorizeSpaceWrite(ctx context.Context, actor *auth.Actor, space store.Space, spaceManagers bool) (bool, error) {
	if actor.IsAdmin() {
		return true, nil
	}
	if err := requireWrite(actor); err != nil {
		return false, err
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, space.OrganizationGUID, space.GUID)
	if err != nil {
		return false, err
	}
	orgManager := slices.Contains(roles.Org, roleOrgManager)
	if !orgManager && !(spaceManagers && slices.Contains(roles.Space, roleSpaceManager)) {
		return false, apierr.NotAuthorized()
	}

	org, err := a.store.Organization(ctx, space.OrganizationGUID, store.Visibility{All: true})
	if err != nil {
		return false, err
	}
	if org.Suspended {
		return false, errOrgSuspended()
	}
	if space.Suspended && !orgManager {
		return false, errSpaceSuspended()
	}
	return orgManager, nil
}

// updateSpace serves PATCH /v3/spaces/:guid for admins, org managers and
// space managers. Only admins and org managers may change suspended.
func (a *API) updateSpace(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}
	managesOrg, err := a.authorizeSpaceWrite(ctx, actor, space, true)
	if err != nil {
		return nil, err
	}

	var p spaceUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateTenancyName(p.Name, false); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	if p.Suspended != nil && !managesOrg {
		return nil, apierr.NotAuthorized()
	}

	update := store.SpaceUpdate{Name: p.Name, Suspended: p.Suspended, Metadata: metadataPatch(p.Metadata)}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if space, err = store.UpdateSpace(ctx, tx, space.GUID, update); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.space.update", "space",
			space.GUID, space.Name, space.OrganizationGUID, space.GUID, spaceRequest(p.Name, p.Suspended, p.Metadata)))
	})
	switch {
	case store.IsUnique(err, store.ConstraintSpaceName):
		return nil, apierr.UnprocessableEntity("Name must be unique per organization")
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.NotFound("Space")
	case err != nil:
		return nil, err
	}
	return ok(a.presentSpace(space)), nil
}

// deleteSpace serves DELETE /v3/spaces/:guid for admins and org managers:
// it records the request and starts a space.delete job in one transaction.
func (a *API) deleteSpace(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeInOrg(ctx, actor, space.OrganizationGUID, "", true, apierr.NotFound("Space"), roleOrgManager); err != nil {
		return nil, err
	}

	job := newJob(actor, opSpaceDelete, "space", space.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.space.delete-request", "space",
			space.GUID, space.Name, space.OrganizationGUID, space.GUID, map[string]any{"recursive": true}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runSpaceDelete is the space.delete job. The space's roles go with it by
// foreign-key cascade. Running it again after the space is gone succeeds.
func (a *API) runSpaceDelete(ctx context.Context, job store.Job) error {
	return store.DeleteSpace(ctx, a.store.DB(), job.ResourceGUID)
}

func (a *API) spaceUsageSummary(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}
	usage, err := a.store.SpaceUsage(r.Context(), space.GUID)
	if err != nil {
		return nil, err
	}
	self := a.url("/v3/spaces/", space.GUID)
	return ok(map[string]any{
		"usage_summary": presentUsage(usage),
		"links": map[string]link{
			"self":  {Href: self + "/usage_summary"},
			"space": {Href: self},
		},
	}), nil
}

// spaceRequest is the data.request of a space's audit events: the fields
// the client sent.
func spaceRequest(name *string, suspended *bool, metadata *metadataPayload) map[string]any {
	return organizationRequest(name, suspended, metadata)
}
