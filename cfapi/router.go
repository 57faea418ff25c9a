package cfapi

import (
	"net/http"

	"github.com/gorilla/mux"
)

// route is one endpoint. Routes are data: each resource file lists its own,
// and only this file turns them into a mux.
type route struct {
	method  string
	path    string
	handler handlerFunc
	// public routes need no token: the root documents and the login endpoints.
	public bool
}

// Handler returns the http.Handler serving every Ferry endpoint.
func (a *API) Handler() http.Handler {
	r := mux.NewRouter()
	r.StrictSlash(false)
	r.SkipClean(false)

	for _, group := range [][]route{
		a.rootRoutes(),
		a.uaaRoutes(),
		a.organizationRoutes(),
		a.spaceRoutes(),
		a.userRoutes(),
		a.roleRoutes(),
		a.quotaRoutes(),
		a.featureFlagRoutes(),
		a.jobRoutes(),
		a.auditEventRoutes(),
		a.isolationSegmentRoutes(),
		a.serviceRouteBindingRoutes(),
		a.domainRoutes(),
		a.routeRoutes(),
		a.routerGroupRoutes(),
		a.deploymentRoutes(),
		a.appRoutes(),
		a.packageRoutes(),
		a.processRoutes(),
		a.buildRoutes(),
		a.taskRoutes(),
		a.dropletRoutes(),
		a.stackRoutes(),
		a.buildpackRoutes(),
		a.environmentVariableGroupRoutes(),
		a.appUsageEventRoutes(),
		a.spaceFeatureRoutes(),
		a.certificateRoutes(),
		a.networkPolicyRoutes(),
		a.scheduledTaskRoutes(),
	} {
		for _, rt := range group {
			h := a.serve(rt.handler)
			if !rt.public {
				h = a.authenticate(h)
			}
			r.Handle(rt.path, withRouteName(rt.method+" "+rt.path, h)).Methods(rt.method)
		}
	}

	r.NotFoundHandler = a.serve(func(*http.Request) (*response, error) { return nil, errUnknownRequest })
	r.MethodNotAllowedHandler = a.serve(func(*http.Request) (*response, error) { return nil, errMethodNotAllowed })

	return a.recoverPanics(a.requestContext(r))
}

// pathParam returns a path variable of the matched route.
func pathParam(r *http.Request, name string) string {
	return mux.Vars(r)[name]
}
