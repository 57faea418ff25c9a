package cfapi

import (
	"errors"
	"net/http"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// App features as Cloud Controller names them.
const (
	appFeatureSSH                   = "ssh"
	appFeatureRevisions             = "revisions"
	appFeatureServiceBindingK8s     = "service-binding-k8s"
	appFeatureFileBasedVCAPServices = "file-based-vcap-services"
)

// appFeatureNames lists the features in Cloud Controller's order.
var appFeatureNames = []string{appFeatureSSH, appFeatureRevisions, appFeatureServiceBindingK8s, appFeatureFileBasedVCAPServices}

type appFeatureJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// appFeature presents the feature name of app, and reports false for a
// name Cloud Controller does not have. Ferry offers no SSH access to app
// instances and no alternative service binding layouts, so those features
// are always disabled.
func appFeature(app store.App, name string) (appFeatureJSON, bool) {
	switch name {
	case appFeatureSSH:
		return appFeatureJSON{Name: name, Description: "Enable SSHing into the app.", Enabled: false}, true
	case appFeatureRevisions:
		return appFeatureJSON{Name: name, Description: "Enable versioning of an application", Enabled: app.RevisionsEnabled}, true
	case appFeatureServiceBindingK8s:
		return appFeatureJSON{Name: name, Description: "Enable k8s service bindings for the app", Enabled: false}, true
	case appFeatureFileBasedVCAPServices:
		return appFeatureJSON{Name: name, Description: "Enable file-based VCAP service bindings for the app", Enabled: false}, true
	}
	return appFeatureJSON{}, false
}

// listAppFeatures serves GET /v3/apps/:guid/features: every feature on one
// page, with the pagination object Cloud Controller sends.
func (a *API) listAppFeatures(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}

	resources := make([]appFeatureJSON, 0, len(appFeatureNames))
	for _, name := range appFeatureNames {
		feature, _ := appFeature(app, name)
		resources = append(resources, feature)
	}
	self := link{Href: a.url("/v3/apps/", app.GUID, "/features")}
	return ok(map[string]any{
		"resources": resources,
		"pagination": paginationJSON{
			TotalResults: len(resources),
			TotalPages:   1,
			First:        self,
			Last:         self,
		},
	}), nil
}

func (a *API) getAppFeature(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	feature, found := appFeature(app, pathParam(r, "name"))
	if !found {
		return nil, apierr.NotFound("Feature")
	}
	return ok(feature), nil
}

// appFeaturePayload is the body of PATCH /v3/apps/:guid/features/:name.
type appFeaturePayload struct {
	Enabled *bool `json:"enabled"`
}

// updateAppFeature serves PATCH /v3/apps/:guid/features/:name. cf
// disable-ssh succeeds and cf enable-ssh is a 422, because Ferry has no SSH
// access to apps. Space developers and supporters may switch revisions,
// but only space developers may switch the other features, as in Cloud
// Controller.
func (a *API) updateAppFeature(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	name := pathParam(r, "name")
	if _, found := appFeature(app, name); !found {
		return nil, apierr.NotFound("Feature")
	}
	roles := []string{roleSpaceDeveloper}
	if name == appFeatureRevisions {
		roles = append(roles, roleSpaceSupporter)
	}
	if err := a.authorizeSpaceRole(ctx, actorOf(r), app.OrgGUID, app.SpaceGUID, roles...); err != nil {
		return nil, err
	}

	var p appFeaturePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Enabled == nil {
		return nil, apierr.UnprocessableEntity("Enabled must be a boolean")
	}

	switch {
	case name == appFeatureRevisions:
		app, err = store.SetAppRevisionsEnabled(ctx, a.store.DB(), app.GUID, *p.Enabled)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errAppNotFound()
		}
		if err != nil {
			return nil, err
		}
	case *p.Enabled && name == appFeatureSSH:
		return nil, apierr.UnprocessableEntity("SSH cannot be enabled: Ferry does not offer SSH access to app instances")
	case *p.Enabled:
		return nil, apierr.UnprocessableEntity("The '" + name + "' feature cannot be enabled: Ferry provides service credentials only in VCAP_SERVICES")
	}
	feature, _ := appFeature(app, name)
	return ok(feature), nil
}

// appSSHEnabled serves GET /v3/apps/:guid/ssh_enabled, which cf ssh and
// cf ssh-enabled read. SSH is disabled for every app because Ferry does not
// offer it.
func (a *API) appSSHEnabled(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if _, err := a.appForRead(r, pathParam(r, "guid")); err != nil {
		return nil, err
	}
	return ok(map[string]any{"enabled": false, "reason": "ssh is disabled globally"}), nil
}
