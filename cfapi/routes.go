package cfapi

import (
	"net/http"
)

// Ferry does not create routes yet, so every route list is empty. The
// endpoints exist because cf push, cf app and cf apps read them after
// staging and fail on a 404; they check visibility and validate their
// query like any list.
//
// TODO: serve stored routes once domains and routes exist; until then a
// manifest's routes are kept as intents on the app.
func (a *API) routeRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/routes", handler: a.listRoutes},
		{method: http.MethodGet, path: "/v3/apps/{guid}/routes", handler: a.listAppRoutes},
	}
}

var routeListSpec = listSpec{
	filters: []string{"app_guids", "domain_guids", "hosts", "labels", "label_selector", "organization_guids",
		"paths", "ports", "space_guids", "service_instance_guids", "guids"},
	orderBy:  []string{"created_at", "updated_at"},
	includes: []string{"domain", "space", "space.organization"},
}

func (a *API) listRoutes(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, routeListSpec)
	if err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []struct{}{})), nil
}

func (a *API) listAppRoutes(r *http.Request) (*response, error) {
	if _, err := a.appForRead(r, pathParam(r, "guid")); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, routeListSpec)
	if err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []struct{}{})), nil
}
