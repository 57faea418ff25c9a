package cfapi

import (
	"errors"
	"net/http"

	"github.com/ferrycf/ferry/store"
)

// routerGroupRoutes serve the read side of the routing API's router groups,
// which the cf CLI calls to create TCP domains and routes. Ferry keeps one
// TCP group, default-tcp, whose ports come from the configuration.
func (a *API) routerGroupRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/routing/v1/router_groups", handler: a.listRouterGroups},
		{method: http.MethodGet, path: "/routing/v1/router_groups/{guid}", handler: a.getRouterGroup},
	}
}

// routerGroupJSON is a router group as the routing API renders it.
type routerGroupJSON struct {
	GUID            string `json:"guid"`
	Name            string `json:"name"`
	Type            string `json:"type"`
	ReservablePorts string `json:"reservable_ports"`
}

func presentRouterGroup(g store.RouterGroup) routerGroupJSON {
	return routerGroupJSON{GUID: g.GUID, Name: g.Name, Type: g.Type, ReservablePorts: g.ReservablePorts}
}

// routingAPIError is the routing API's error body. Its errors are not in
// Cloud Controller's format.
func routingAPIError(status int, name, message string) *response {
	return &response{status: status, body: map[string]string{"name": name, "message": message}}
}

// listRouterGroups serves GET /routing/v1/router_groups, optionally
// filtered by ?name=. The routing API returns 404 for an unknown name,
// and the cf CLI relies on that.
func (a *API) listRouterGroups(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := rejectUnknownParams(r.URL.Query(), []string{"name"}); err != nil {
		return nil, err
	}
	name := r.URL.Query().Get("name")
	groups, err := a.store.RouterGroups(r.Context(), name)
	if err != nil {
		return nil, err
	}
	if name != "" && len(groups) == 0 {
		return routingAPIError(http.StatusNotFound, "ResourceNotFoundError", "Router Group '"+name+"' not found"), nil
	}
	out := make([]routerGroupJSON, len(groups))
	for i, g := range groups {
		out[i] = presentRouterGroup(g)
	}
	return ok(out), nil
}

func (a *API) getRouterGroup(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	g, err := a.store.RouterGroup(r.Context(), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return routingAPIError(http.StatusNotFound, "ResourceNotFoundError", "Router Group '"+pathParam(r, "guid")+"' not found"), nil
	}
	if err != nil {
		return nil, err
	}
	return ok(presentRouterGroup(g)), nil
}
