package cfapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

func (a *API) environmentVariableGroupRoutes() []route {
	const path = "/v3/environment_variable_groups/{name}"
	return []route{
		{method: http.MethodGet, path: path, handler: a.getEnvironmentVariableGroup},
		{method: http.MethodPatch, path: path, handler: a.updateEnvironmentVariableGroup},
	}
}

func errEnvironmentVariableGroupNotFound() error {
	return apierr.NotFound("Environment variable group")
}

// environmentVariableGroupPayload is the body of PATCH
// /v3/environment_variable_groups/:name. An absent var changes nothing, as
// in Cloud Controller, which accepts an empty body.
type environmentVariableGroupPayload struct {
	Var json.RawMessage `json:"var"`
}

type environmentVariableGroupJSON struct {
	UpdatedAt string            `json:"updated_at"`
	Name      string            `json:"name"`
	Var       map[string]string `json:"var"`
	Links     struct {
		Self link `json:"self"`
	} `json:"links"`
}

func (a *API) presentEnvironmentVariableGroup(g store.EnvironmentVariableGroup) environmentVariableGroupJSON {
	out := environmentVariableGroupJSON{UpdatedAt: timestamp(g.UpdatedAt), Name: g.Name, Var: g.Variables}
	if out.Var == nil {
		out.Var = map[string]string{}
	}
	out.Links.Self = link{Href: a.url("/v3/environment_variable_groups/", g.Name)}
	return out
}

// getEnvironmentVariableGroup serves GET /v3/environment_variable_groups/:name
// (cf running-environment-variable-group and cf
// staging-environment-variable-group). Every user who may read Cloud
// Controller resources may read both groups, as in Cloud Controller.
func (a *API) getEnvironmentVariableGroup(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	g, err := a.store.EnvironmentVariableGroup(r.Context(), pathParam(r, "name"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errEnvironmentVariableGroupNotFound()
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentEnvironmentVariableGroup(g)), nil
}

// updateEnvironmentVariableGroup serves PATCH
// /v3/environment_variable_groups/:name for admins (cf
// set-running-environment-variable-group and its staging twin). The body's
// variables are merged into the group: a string sets a variable and null
// removes it. App instances read a change when they next start, and builds
// when they stage. As in Cloud Controller, the body is validated before the
// actor's permission, and no audit event is recorded.
func (a *API) updateEnvironmentVariableGroup(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	var p environmentVariableGroupPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	var patch map[string]*string
	if len(p.Var) > 0 {
		var err error
		if patch, err = parseEnvironmentVariables(p.Var, "Var", true); err != nil {
			return nil, err
		}
	}
	if err := requireAdmin(actorOf(r)); err != nil {
		return nil, err
	}

	name := pathParam(r, "name")
	g, err := store.PatchEnvironmentVariableGroup(ctx, a.store.DB(), name, patch)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errEnvironmentVariableGroupNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("environment variable group changed", "group", g.Name, "variables_changed", len(patch))
	return ok(a.presentEnvironmentVariableGroup(g)), nil
}
