package k8sbackend

import (
	"context"

	"github.com/ferrycf/ferry/store"
)

// DesiredRoutes is the source of the routes that send traffic into a
// space, normally PostgreSQL.
type DesiredRoutes interface {
	// SpaceRoutes returns the routes whose objects belong in the space
	// spaceGUID's namespace: every route with a destination app in the
	// space, carrying only those destinations. SpaceGUID of each is
	// spaceGUID, even for a route that another space shared.
	SpaceRoutes(ctx context.Context, spaceGUID string) ([]RouteSpec, error)
}

// AppSpaces finds the space of an app, so that a change to the app's
// processes can start a sync of its space's routing objects.
type AppSpaces interface {
	// AppSpaceGUID returns the app's space GUID, or an error wrapping
	// store.ErrNotFound for an app that no longer exists.
	AppSpaceGUID(ctx context.Context, appGUID string) (string, error)
}

// StoreDesiredRoutes reads the routes of a space from the store.
type StoreDesiredRoutes struct {
	Store *store.Store
	// Installation is RouteSpec.Installation of every route.
	Installation string
}

// SpaceRoutes implements DesiredRoutes. A destination goes to the Service
// of its app's web process. The app reconciler makes Services only for web
// processes, so destinations of other process types, and of apps without a
// web process yet, are left out. Every web Service forwards AppPort, over
// TCP and UDP, to the app's one port, so a destination's own port is not
// carried over.
func (s StoreDesiredRoutes) SpaceRoutes(ctx context.Context, spaceGUID string) ([]RouteSpec, error) {
	routes, err := s.Store.DestinationsForSpace(ctx, spaceGUID)
	if err != nil {
		return nil, err
	}
	webProcesses, err := s.webProcesses(ctx, routes)
	if err != nil {
		return nil, err
	}
	domains := make([]string, 0, len(routes))
	for _, r := range routes {
		domains = append(domains, r.DomainGUID)
	}
	dedicated, err := s.Store.DedicatedGatewayDomains(ctx, domains)
	if err != nil {
		return nil, err
	}

	specs := make([]RouteSpec, 0, len(routes))
	for _, r := range routes {
		spec := RouteSpec{
			Installation:        s.Installation,
			GUID:                r.GUID,
			Host:                r.Host,
			Domain:              r.DomainName,
			Path:                r.Path,
			Port:                int32(r.Port),
			Protocol:            r.Protocol,
			Internal:            r.DomainInternal,
			SpaceGUID:           spaceGUID,
			DedicatedGatewayOrg: dedicated[r.DomainGUID],
		}
		// The organization label names the namespace's organization,
		// which a route shared from another organization's space lacks.
		if r.SpaceGUID == spaceGUID {
			spec.OrgGUID = r.OrgGUID
		}
		for _, d := range r.Destinations {
			process := webProcesses[d.AppGUID]
			if d.ProcessType != ProcessTypeWeb || process == "" {
				continue
			}
			spec.Destinations = append(spec.Destinations, RouteDestination{
				AppGUID: d.AppGUID, ProcessGUID: process, ServiceName: ProcessServiceName(process),
				Weight: int32(d.Weight),
			})
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// webProcesses maps each app with a web destination in routes to the
// GUID of its web process, or "" when it has none yet.
func (s StoreDesiredRoutes) webProcesses(ctx context.Context, routes []store.Route) (map[string]string, error) {
	webProcesses := map[string]string{}
	for _, r := range routes {
		for _, d := range r.Destinations {
			if _, read := webProcesses[d.AppGUID]; read || d.ProcessType != ProcessTypeWeb {
				continue
			}
			processes, err := store.AppProcesses(ctx, s.Store.DB(), d.AppGUID)
			if err != nil {
				return nil, err
			}
			webProcesses[d.AppGUID] = ""
			for _, p := range processes {
				if p.Type == ProcessTypeWeb {
					webProcesses[d.AppGUID] = p.GUID
				}
			}
		}
	}
	return webProcesses, nil
}
