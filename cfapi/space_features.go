package cfapi

import (
	"database/sql"
	"errors"
	"net/http"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// spaceFeatureSSH is the only space feature Cloud Controller has. It
// permits SSH into the space's apps, but Ferry offers no SSH access to app
// instances, so every app reports SSH as disabled globally whatever the
// space allows.
const spaceFeatureSSH = "ssh"

func (a *API) spaceFeatureRoutes() []route {
	const base = "/v3/spaces/{guid}/features"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listSpaceFeatures},
		{method: http.MethodGet, path: base + "/{name}", handler: a.getSpaceFeature},
		{method: http.MethodPatch, path: base + "/{name}", handler: a.updateSpaceFeature},
	}
}

type spaceFeatureJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

func sshFeature(enabled bool) spaceFeatureJSON {
	return spaceFeatureJSON{Name: spaceFeatureSSH, Description: "Enable SSHing into apps in the space.", Enabled: enabled}
}

// spaceSSHFeature reads the ssh feature of the space of the path, which
// must be visible to the actor of r.
func (a *API) spaceSSHFeature(r *http.Request) (store.Space, spaceFeatureJSON, error) {
	space, err := a.visibleSpace(r)
	if err != nil {
		return store.Space{}, spaceFeatureJSON{}, err
	}
	allowed, err := store.SpaceAllowsSSH(r.Context(), a.store.DB(), space.GUID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Space{}, spaceFeatureJSON{}, apierr.NotFound("Space")
	}
	if err != nil {
		return store.Space{}, spaceFeatureJSON{}, err
	}
	return space, sshFeature(allowed), nil
}

// listSpaceFeatures serves GET /v3/spaces/:guid/features. Cloud Controller
// sends the one feature without a pagination object.
func (a *API) listSpaceFeatures(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	_, feature, err := a.spaceSSHFeature(r)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"resources": []spaceFeatureJSON{feature}}), nil
}

// getSpaceFeature serves GET /v3/spaces/:guid/features/:name, which cf
// space-ssh-allowed reads.
func (a *API) getSpaceFeature(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	_, feature, err := a.spaceSSHFeature(r)
	if err != nil {
		return nil, err
	}
	if pathParam(r, "name") != spaceFeatureSSH {
		return nil, apierr.NotFound("Feature")
	}
	return ok(feature), nil
}

// spaceFeaturePayload is the body of PATCH /v3/spaces/:guid/features/:name.
type spaceFeaturePayload struct {
	Enabled *bool `json:"enabled"`
}

// updateSpaceFeature serves PATCH /v3/spaces/:guid/features/:name (cf
// allow-space-ssh and cf disallow-space-ssh) for admins, org managers and
// space managers. As in Cloud Controller, the body is validated before the
// space is looked up. The change is recorded as audit.space.update with
// allow_ssh, the event Cloud Controller records when its v2 API changes
// the same setting.
func (a *API) updateSpaceFeature(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	var p spaceFeaturePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Enabled == nil {
		return nil, apierr.UnprocessableEntity("Enabled must be a boolean")
	}

	space, err := a.visibleSpace(r)
	if err != nil {
		return nil, err
	}
	if pathParam(r, "name") != spaceFeatureSSH {
		return nil, apierr.NotFound("Feature")
	}
	if _, err := a.authorizeSpaceWrite(ctx, actor, space, true); err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.SetSpaceAllowSSH(ctx, tx, space.GUID, *p.Enabled); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.space.update", "space",
			space.GUID, space.Name, space.OrganizationGUID, space.GUID, map[string]any{"allow_ssh": *p.Enabled}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Space")
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("space ssh feature changed", "space_guid", space.GUID, "enabled", *p.Enabled)
	return ok(sshFeature(*p.Enabled)), nil
}
