package cfapi

import (
	"errors"
	"net/http"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// spaceQuotaCreateRequest is the body of POST /v3/space_quotas.
type spaceQuotaCreateRequest struct {
	quotaRequest
	Relationships *struct {
		Organization *quotaToOneRequest  `json:"organization"`
		Spaces       *quotaToManyRequest `json:"spaces"`
	} `json:"relationships"`
}

type spaceQuotaJSON struct {
	GUID          string            `json:"guid"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	Name          string            `json:"name"`
	Apps          quotaAppsJSON     `json:"apps"`
	Services      quotaServicesJSON `json:"services"`
	Routes        quotaRoutesJSON   `json:"routes"`
	Relationships struct {
		Organization toOne  `json:"organization"`
		Spaces       toMany `json:"spaces"`
	} `json:"relationships"`
	Links struct {
		Self         link `json:"self"`
		Organization link `json:"organization"`
	} `json:"links"`
}

func (a *API) presentSpaceQuota(q store.SpaceQuota) spaceQuotaJSON {
	out := spaceQuotaJSON{
		GUID:      q.GUID,
		CreatedAt: timestamp(q.CreatedAt),
		UpdatedAt: timestamp(q.UpdatedAt),
		Name:      q.Name,
		Apps:      presentQuotaApps(q.Limits),
		Services:  presentQuotaServices(q.Limits),
		Routes:    presentQuotaRoutes(q.Limits),
	}
	out.Relationships.Organization = relTo(q.OrganizationGUID)
	out.Relationships.Spaces = toMany{Data: guidRefs(q.SpaceGUIDs)}
	out.Links.Self = link{Href: a.url("/v3/space_quotas/", q.GUID)}
	out.Links.Organization = link{Href: a.url("/v3/organizations/", q.OrganizationGUID)}
	return out
}

var spaceQuotaListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "organization_guids", "space_guids"},
	orderBy: []string{"created_at", "updated_at"},
})

// listSpaceQuotas serves GET /v3/space_quotas. Admins and global readers
// see every quota. Other users see the quotas of organizations they manage
// and the quotas applied to spaces where they have a role. Each quota lists
// only the spaces the user can see.
func (a *API) listSpaceQuotas(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, spaceQuotaListSpec)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}

	f := store.SpaceQuotaFilter{CommonFilter: common, Names: q.filter("names"),
		OrganizationGUIDs: q.filter("organization_guids"), SpaceGUIDs: q.filter("space_guids")}
	quotas, total, err := a.store.SpaceQuotas(r.Context(), f, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]spaceQuotaJSON, len(quotas))
	for i, quota := range quotas {
		resources[i] = a.presentSpaceQuota(quota)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// getSpaceQuota serves GET /v3/space_quotas/:guid.
func (a *API) getSpaceQuota(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, err := a.store.SpaceQuota(r.Context(), pathParam(r, "guid"), visibility(r))
	if err != nil {
		return nil, notFoundAs(err, "Space quota")
	}
	return ok(a.presentSpaceQuota(quota)), nil
}

// authorizeSpaceQuotaWrite lets admins and the managers of owner change its
// space quotas; managers only while the organization is not suspended.
// Callers have established that the actor can see what is being changed.
func (a *API) authorizeSpaceQuotaWrite(r *http.Request, actor *auth.Actor, owner store.SpaceQuotaOwner) error {
	if actor.IsAdmin() {
		return nil
	}
	if err := a.authorizeInOrg(r.Context(), actor, owner.GUID, "", true, nil, roleOrgManager); err != nil {
		return err
	}
	if owner.Suspended {
		return errOrgSuspended()
	}
	return nil
}

// spaceQuotaForWrite returns the quota in r's path and its organization once
// the actor may change the quota: 404 when the actor cannot see it, 403
// when the actor can but is neither admin nor manager of its organization.
func (a *API) spaceQuotaForWrite(r *http.Request) (store.SpaceQuota, store.SpaceQuotaOwner, error) {
	actor := actorOf(r)
	vis := visibility(r)
	quota, err := a.store.SpaceQuota(r.Context(), pathParam(r, "guid"), vis)
	if err != nil {
		return store.SpaceQuota{}, store.SpaceQuotaOwner{}, notFoundAs(err, "Space quota")
	}
	owner, err := a.store.SpaceQuotaOwner(r.Context(), quota.OrganizationGUID, vis)
	if err != nil {
		return store.SpaceQuota{}, store.SpaceQuotaOwner{}, notFoundAs(err, "Space quota")
	}
	if err := a.authorizeSpaceQuotaWrite(r, actor, owner); err != nil {
		return store.SpaceQuota{}, store.SpaceQuotaOwner{}, err
	}
	return quota, owner, nil
}

// createSpaceQuota serves POST /v3/space_quotas for admins and the managers
// of the organization in relationships.organization. Limits left out are
// unlimited. The spaces in relationships.spaces must belong to that
// organization, and they get the quota in the same transaction.
func (a *API) createSpaceQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}

	var body spaceQuotaCreateRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	changes := parseQuotaRequest(body.quotaRequest, nil, true)
	if err := changes.err(); err != nil {
		return nil, err
	}
	orgGUID, spaceGUIDs, err := spaceQuotaRelationships(&body, changes)
	if err != nil {
		return nil, err
	}

	errNoOrg := apierr.UnprocessableEntity("Organization with guid '" + orgGUID + "' does not exist, or you do not have access to it.")
	owner, err := a.store.SpaceQuotaOwner(r.Context(), orgGUID, visibility(r))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoOrg
	case err != nil:
		return nil, err
	case !owner.Visible:
		return nil, errNoOrg
	}
	if err := a.authorizeSpaceQuotaWrite(r, actor, owner); err != nil {
		return nil, err
	}

	quota := store.SpaceQuota{GUID: uuid.NewString(), Name: *changes.name, OrganizationGUID: orgGUID, Limits: store.DefaultQuotaLimits()}
	changes.applyLimits(&quota.Limits)
	if err := checkReservedPorts(quota.Limits, owner.TotalReservedPorts); err != nil {
		return nil, err
	}

	stored, err := a.store.CreateSpaceQuota(r.Context(), quota, spaceGUIDs, quotaEvent(actor, "audit.space_quota.create", changes.request))
	var unknown *store.UnknownGUIDsError
	var fkErr *store.ForeignKeyError
	switch {
	case store.IsUnique(err, store.SpaceQuotaNameConstraint):
		return nil, errSpaceQuotaExists(quota.Name)
	case errors.As(err, &unknown):
		return nil, apierr.UnprocessableEntity("Spaces with guids " + guidList(unknown.GUIDs) +
			" do not exist within the organization specified, or you do not have access to them.")
	case errors.As(err, &fkErr):
		// The organization was deleted after it was read.
		return nil, errNoOrg
	case err != nil:
		return nil, err
	}
	return created(a.presentSpaceQuota(stored)), nil
}

// spaceQuotaRelationships validates the relationships of a space quota
// create request and adds them to the audit request.
func spaceQuotaRelationships(body *spaceQuotaCreateRequest, changes *quotaChanges) (string, []string, error) {
	const shape = `Relationships.organization must be structured like this: {"data": {"guid": "valid-guid"}}`
	rels := body.Relationships
	if rels == nil || rels.Organization == nil || rels.Organization.Data == nil || rels.Organization.Data.GUID == "" {
		return "", nil, apierr.UnprocessableEntity(shape)
	}
	orgGUID := rels.Organization.Data.GUID
	request := map[string]any{"organization": map[string]any{"data": guidRef{GUID: orgGUID}}}

	var spaceGUIDs []string
	if rels.Spaces != nil {
		var err error
		spaceGUIDs, err = relationshipGUIDs("Relationships.spaces.data", rels.Spaces.Data, false)
		if err != nil {
			return "", nil, err
		}
		request["spaces"] = map[string]any{"data": guidRefs(spaceGUIDs)}
	}
	changes.request["relationships"] = request
	return orgGUID, spaceGUIDs, nil
}

// errSpaceQuotaExists is Cloud Controller's duplicate-name message, which
// the cf CLI matches to make create-space-quota idempotent.
func errSpaceQuotaExists(name string) error {
	return apierr.UnprocessableEntity("Space Quota '" + name + "' already exists.")
}

// updateSpaceQuota serves PATCH /v3/space_quotas/:guid for admins and the
// managers of the quota's organization. Only the fields sent change; null
// makes a limit unlimited.
func (a *API) updateSpaceQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, owner, err := a.spaceQuotaForWrite(r)
	if err != nil {
		return nil, err
	}

	var body quotaRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	changes := parseQuotaRequest(body, nil, false)
	if err := changes.err(); err != nil {
		return nil, err
	}

	change := func(q *store.SpaceQuota) error {
		if changes.name != nil {
			q.Name = *changes.name
		}
		changes.applyLimits(&q.Limits)
		return checkReservedPorts(q.Limits, owner.TotalReservedPorts)
	}
	updated, err := a.store.UpdateSpaceQuota(r.Context(), quota.GUID, change, quotaEvent(actor, "audit.space_quota.update", changes.request))
	switch {
	case store.IsUnique(err, store.SpaceQuotaNameConstraint):
		return nil, errSpaceQuotaExists(*changes.name)
	case err != nil:
		return nil, notFoundAs(err, "Space quota")
	}
	return ok(a.presentSpaceQuota(updated)), nil
}

// deleteSpaceQuota serves DELETE /v3/space_quotas/:guid for admins and the
// managers of the quota's organization. The quota is gone when the 202 is
// sent; its job is already COMPLETE for the cf CLI to poll.
func (a *API) deleteSpaceQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, _, err := a.spaceQuotaForWrite(r)
	if err != nil {
		return nil, err
	}

	job := newJob(actor, opSpaceQuotaDelete, "space_quota", quota.GUID)
	err = a.store.DeleteSpaceQuota(r.Context(), quota.GUID, job, quotaEvent(actor, "audit.space_quota.delete", nil))
	switch {
	case errors.Is(err, store.ErrQuotaInUse):
		return nil, apierr.UnprocessableEntity("This quota is applied to one or more spaces. Remove this quota from all spaces before deleting.")
	case err != nil:
		return nil, notFoundAs(err, "Space quota")
	}
	return accepted(a.jobURL(job.GUID), nil), nil
}

// applySpaceQuota serves POST /v3/space_quotas/:guid/relationships/spaces
// for admins and the managers of the quota's organization, and returns every
// space now using the quota.
func (a *API) applySpaceQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, _, err := a.spaceQuotaForWrite(r)
	if err != nil {
		return nil, err
	}

	var body quotaToManyRequest
	if err := decodeBody(r, &body); err != nil {
		return nil, err
	}
	spaceGUIDs, err := relationshipGUIDs("Data", body.Data, true)
	if err != nil {
		return nil, err
	}

	all, err := a.store.ApplySpaceQuota(r.Context(), quota.GUID, spaceGUIDs, visibility(r), quotaEvent(actor, "audit.space_quota.apply", nil))
	var unknown *store.UnknownGUIDsError
	switch {
	case errors.As(err, &unknown):
		return nil, apierr.UnprocessableEntity("Spaces with guids " + guidList(unknown.GUIDs) +
			" do not exist, or you do not have access to them.")
	case errors.Is(err, store.ErrQuotaOutsideOrganization):
		return nil, apierr.UnprocessableEntity("Space quotas cannot be applied outside of their owning organization.")
	case err != nil:
		return nil, notFoundAs(err, "Space quota")
	}
	return ok(a.presentQuotaRelationship("/v3/space_quotas/"+quota.GUID+"/relationships/spaces", all)), nil
}

// removeSpaceQuota serves DELETE
// /v3/space_quotas/:guid/relationships/spaces/:space_guid for admins and the
// managers of the quota's organization.
func (a *API) removeSpaceQuota(r *http.Request) (*response, error) {
	actor := actorOf(r)
	spaceGUID := pathParam(r, "space_guid")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	quota, _, err := a.spaceQuotaForWrite(r)
	if err != nil {
		return nil, err
	}

	err = a.store.RemoveSpaceQuota(r.Context(), quota.GUID, spaceGUID, quotaEvent(actor, "audit.space_quota.remove", nil))
	switch {
	case errors.Is(err, store.ErrQuotaNotApplied):
		return nil, apierr.UnprocessableEntity("Unable to remove quota from space with guid '" + spaceGUID +
			"'. Ensure the space quota is applied to this space.")
	case err != nil:
		return nil, notFoundAs(err, "Space quota")
	}
	return noContent(), nil
}
