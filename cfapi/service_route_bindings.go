package cfapi

import (
	"net/http"

	"github.com/ferrycf/ferry/apierr"
)

// Ferry has no service instances, so no route can be bound to one. The
// list endpoint exists because `cf routes` and `cf route` read it and fail
// on a 404; it validates its query like any list and returns no resources.
//
// TODO: serve real bindings once service instances exist.
func (a *API) serviceRouteBindingRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/service_route_bindings", handler: a.listServiceRouteBindings},
		{method: http.MethodGet, path: "/v3/service_route_bindings/{guid}", handler: a.getServiceRouteBinding},
	}
}

func (a *API) listServiceRouteBindings(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, listSpec{
		filters:  []string{"guids", "route_guids", "service_instance_guids", "service_instance_names", "label_selector"},
		orderBy:  []string{"created_at", "updated_at"},
		includes: []string{"route", "service_instance"},
	})
	if err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []struct{}{})), nil
}

func (a *API) getServiceRouteBinding(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	return nil, apierr.NotFound("Service route binding")
}
