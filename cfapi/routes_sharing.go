package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// featureRouteSharing is the feature flag that gates sharing routes with
// other spaces and transferring them. It is off by default, as in Cloud
// Controller.
const featureRouteSharing = "route_sharing"

// requireRouteSharing fails unless the route_sharing feature flag is on.
func (a *API) requireRouteSharing(ctx context.Context) error {
	enabled, message, err := a.featureEnabled(ctx, featureRouteSharing)
	if err != nil {
		return err
	}
	if !enabled {
		return apierr.FeatureDisabled(featureRouteSharing, message)
	}
	return nil
}

func (a *API) presentSharedSpaces(routeGUID string, spaces []string) map[string]any {
	data := make([]guidRef, len(spaces))
	for i, g := range spaces {
		data[i] = guidRef{GUID: g}
	}
	return map[string]any{
		"data":  data,
		"links": map[string]link{"self": {Href: a.url("/v3/routes/", routeGUID, "/relationships/shared_spaces")}},
	}
}

// routeSharedSpaces serves GET /v3/routes/:guid/relationships/shared_spaces.
func (a *API) routeSharedSpaces(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireRouteSharing(r.Context()); err != nil {
		return nil, err
	}
	rt, err := a.visibleRoute(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	spaces, err := a.store.RouteSharedSpaces(r.Context(), rt.GUID, visibility(r))
	if err != nil {
		return nil, err
	}
	return ok(a.presentSharedSpaces(rt.GUID, spaces)), nil
}

// targetSpaceProblem returns why the actor may not share or move a route
// into the space guid, in Cloud Controller's words, or "".
func (a *API) targetSpaceProblem(r *http.Request, guid string) (store.Space, string, error) {
	space, err := a.store.Space(r.Context(), guid, visibility(r))
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, "Ensure the space exists and that you have access to it.", nil
	}
	if err != nil {
		return store.Space{}, "", err
	}
	err = a.authorizeSpaceRole(r.Context(), actorOf(r), space.OrganizationGUID, space.GUID, roleSpaceDeveloper)
	var apiErr *apierr.Error
	switch {
	case errors.As(err, &apiErr) && (apiErr.Code == errOrgSuspended().Code || apiErr.Code == errSpaceSuspended().Code):
		return space, "The target organization or space is suspended.", nil
	case errors.As(err, &apiErr):
		return space, "You don't have write permission for the target space.", nil
	case err != nil:
		return store.Space{}, "", err
	}
	return space, "", nil
}

// domainUsableBy reports whether routes in the organization orgGUID may use
// the domain guid.
func (a *API) domainUsableBy(ctx context.Context, domainGUID, orgGUID string) (bool, error) {
	d, err := a.store.Domain(ctx, domainGUID, store.Visibility{All: true})
	if err != nil {
		return false, err
	}
	return d.Shared() || d.OrganizationGUID == orgGUID || slices.Contains(d.SharedOrganizationGUIDs, orgGUID), nil
}

// shareRoute serves POST /v3/routes/:guid/relationships/shared_spaces for
// admins and space developers of the route's space who may also write to
// every target space.
func (a *API) shareRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireRouteSharing(ctx); err != nil {
		return nil, err
	}
	rt, err := a.routeForWrite(r)
	if err != nil {
		return nil, err
	}
	var p toMany
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if len(p.Data) == 0 {
		return nil, apierr.UnprocessableEntity(`Data must have the structure "data": [{"guid": "valid-guid"}]`)
	}

	var unreadable, unwritable, targets []string
	for _, ref := range p.Data {
		if ref.GUID == rt.SpaceGUID {
			return nil, apierr.UnprocessableEntity("Unable to share route '" + rt.URL() + "' with space '" + ref.GUID +
				"'. Routes cannot be shared into the space where they were created.")
		}
		space, problem, err := a.targetSpaceProblem(r, ref.GUID)
		switch {
		case err != nil:
			return nil, err
		case problem == "Ensure the space exists and that you have access to it.":
			unreadable = append(unreadable, "'"+ref.GUID+"'")
		case problem != "":
			unwritable = append(unwritable, "'"+ref.GUID+"'")
		default:
			usable, err := a.domainUsableBy(ctx, rt.DomainGUID, space.OrganizationGUID)
			if err != nil {
				return nil, err
			}
			if !usable {
				return nil, apierr.UnprocessableEntity("Unable to share route '" + rt.URL() + "' with space '" + space.GUID +
					"'. Target space does not have access to route's domain")
			}
			targets = append(targets, space.GUID)
		}
	}
	var messages []string
	if len(unreadable) > 0 {
		messages = append(messages, "Unable to share route '"+rt.URL()+"' with spaces ["+strings.Join(unreadable, ", ")+
			"]. Ensure the spaces exist and that you have access to them.")
	}
	if len(unwritable) > 0 {
		messages = append(messages, "You don't have write permission for the target space(s): ["+strings.Join(unwritable, ", ")+"].")
	}
	if len(messages) > 0 {
		return nil, apierr.UnprocessableEntity(strings.Join(messages, "\n"))
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.ShareRoute(ctx, tx, rt.GUID, targets); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.share", rt,
			map[string]any{"target_space_guids": targets}))
	})
	if err != nil {
		return nil, err
	}
	spaces, err := a.store.RouteSharedSpaces(ctx, rt.GUID, visibility(r))
	if err != nil {
		return nil, err
	}
	return ok(a.presentSharedSpaces(rt.GUID, spaces)), nil
}

// unshareRoute serves DELETE
// /v3/routes/:guid/relationships/shared_spaces/:space_guid.
func (a *API) unshareRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireRouteSharing(ctx); err != nil {
		return nil, err
	}
	rt, err := a.routeForWrite(r)
	if err != nil {
		return nil, err
	}
	spaceGUID := pathParam(r, "space_guid")
	if _, problem, err := a.targetSpaceProblem(r, spaceGUID); err != nil {
		return nil, err
	} else if problem != "" {
		return nil, apierr.UnprocessableEntity("Unable to unshare route '" + rt.URL() + "' from space '" + spaceGUID + "'. " + problem)
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.UnshareRoute(ctx, tx, rt.GUID, spaceGUID); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.unshare", rt,
			map[string]any{"target_space_guid": spaceGUID}))
	})
	if err != nil {
		return nil, err
	}
	return noContent(), nil
}

// routeTransferPayload is the body of PATCH /v3/routes/:guid/relationships/space.
type routeTransferPayload struct {
	Data *guidRef `json:"data"`
}

// transferRoute serves PATCH /v3/routes/:guid/relationships/space: the
// target space becomes the route's owner.
func (a *API) transferRoute(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireRouteSharing(ctx); err != nil {
		return nil, err
	}
	var p routeTransferPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Data == nil || p.Data.GUID == "" {
		return nil, apierr.UnprocessableEntity(`Data must have the structure "data": {"guid": "valid-guid"}`)
	}
	rt, err := a.routeForWrite(r)
	if err != nil {
		return nil, err
	}
	prefix := "Unable to transfer owner of route '" + rt.URL() + "' to space '" + p.Data.GUID + "'. "
	space, problem, err := a.targetSpaceProblem(r, p.Data.GUID)
	if err != nil {
		return nil, err
	}
	if problem != "" {
		return nil, apierr.UnprocessableEntity(prefix + problem)
	}
	usable, err := a.domainUsableBy(ctx, rt.DomainGUID, space.OrganizationGUID)
	if err != nil {
		return nil, err
	}
	if !usable {
		return nil, apierr.UnprocessableEntity(prefix + "Target space does not have access to route's domain")
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.TransferRoute(ctx, tx, rt.GUID, space.GUID); err != nil {
			return err
		}
		// The former owner keeps access to the route as a shared space.
		if err := store.ShareRoute(ctx, tx, rt.GUID, []string{rt.SpaceGUID}); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, routeEvent(actor, "audit.route.transfer-owner", rt,
			map[string]any{"original_space_guid": rt.SpaceGUID, "target_space_guid": space.GUID}))
	})
	if err != nil {
		return nil, err
	}
	return ok(map[string]string{"status": "ok"}), nil
}
