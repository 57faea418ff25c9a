package cfapi

import (
	"net/http"

	"github.com/ferrycf/ferry/apierr"
)

// Ferry has no deployments yet: starts and restarts replace instances in
// place. cf app and cf push list the active deployments of an app and fail
// on a 404, so the list is served, and is empty because none exist.
//
// TODO: serve rolling and canary deployments once the controller drives
// two process revisions.
func (a *API) deploymentRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/deployments", handler: a.listDeployments},
		{method: http.MethodGet, path: "/v3/deployments/{guid}", handler: a.getDeployment},
	}
}

func (a *API) listDeployments(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, listSpec{
		filters: []string{"app_guids", "states", "status_reasons", "status_values", "guids", "label_selector"},
		orderBy: []string{"created_at", "updated_at"},
	})
	if err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []struct{}{})), nil
}

func (a *API) getDeployment(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	return nil, apierr.NotFound("Deployment")
}
