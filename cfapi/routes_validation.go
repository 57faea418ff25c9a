package cfapi

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

// Limits Cloud Controller sets on routes.
const (
	maxHostLength = 63
	maxPathLength = 128
	maxFQDNLength = 253
)

// hostPattern is Cloud Controller's route host: word characters and
// hyphens, or a single "*" for a wildcard route.
var hostPattern = regexp.MustCompile(`^([A-Za-z0-9_-]+|\*)?$`)

// validateRouteCreate checks the fields of a route create request on their
// own, and returns every problem in Cloud Controller's words.
func validateRouteCreate(p *routeCreatePayload) error {
	var problems []string
	if p.Host != nil {
		if len(*p.Host) > maxHostLength {
			problems = append(problems, "Host is too long (maximum is 63 characters)")
		}
		if !hostPattern.MatchString(*p.Host) {
			problems = append(problems, `Host must be either "*" or contain only alphanumeric characters, "_", or "-"`)
		}
	}
	if p.Path != nil {
		path := *p.Path
		if len(path) > maxPathLength {
			problems = append(problems, "Path is too long (maximum is 128 characters)")
		}
		if path != "" && !strings.HasPrefix(path, "/") {
			problems = append(problems, "Path must begin with /")
		}
		if strings.Contains(path, "?") {
			problems = append(problems, "Path cannot contain ?")
		}
		if path == "/" {
			problems = append(problems, "Path cannot be exactly /")
		}
	}
	if p.Port != nil {
		if *p.Port < 0 {
			problems = append(problems, "Port must be greater than or equal to 0")
		}
		if *p.Port > 65535 {
			problems = append(problems, "Port must be less than or equal to 65535")
		}
	}
	switch {
	case p.Relationships == nil:
		problems = append(problems, "Relationships can't be blank")
	default:
		if !validToOne(p.Relationships.Space) {
			problems = append(problems, `Relationships Space must be structured like this: "space": {"data": {"guid": "valid-guid"}}`)
		}
		if !validToOne(p.Relationships.Domain) {
			problems = append(problems, `Relationships Domain must be structured like this: "domain": {"data": {"guid": "valid-guid"}}`)
		}
	}
	if len(problems) > 0 {
		return apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	if err := validateRouteOptions(p.Options); err != nil {
		return err
	}
	return validateMetadata(p.Metadata)
}

func validToOne(rel *spaceOrganizationPayload) bool {
	return rel != nil && rel.Data != nil && rel.Data.GUID != ""
}

// validateRouteOptions rejects route options. Cloud Controller's options
// choose a load-balancing algorithm per route.
//
// TODO: accept options.loadbalancing once the Gateway API translation can
// apply it. Until then a route with options would silently behave otherwise.
func validateRouteOptions(options map[string]any) error {
	if len(options) == 0 {
		return nil
	}
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return apierr.UnprocessableEntity("Options " + quoteList(keys) + " are not supported: Ferry routes take no options, so remove the options field")
}

// invalidPath reports whether path, which begins with "/", is not a plain
// URL path: it has a fragment, a ".." or "." segment, spaces, control
// characters or bad percent escapes. The gateway would rewrite or reject
// such a path, so the route would not match what the user asked for.
func invalidPath(path string) bool {
	if strings.ContainsAny(path, "# \t\r\n\\") {
		return true
	}
	for _, c := range path {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	for _, segment := range strings.Split(path, "/") {
		if segment == ".." || segment == "." {
			return true
		}
	}
	u, err := url.Parse("http://host" + path)
	return err != nil || u.Path == "" && path != ""
}

// checkRouteAgainstDomain applies Cloud Controller's rules that depend on
// the route's domain. TCP routes take a port and no host or path, and HTTP
// routes no port. Internal domains take no path or wildcard, shared
// domains need a host, and a host may not turn the route into another
// domain's name.
func (a *API) checkRouteAgainstDomain(ctx context.Context, actor *auth.Actor, rt *store.Route, port *int, domain store.Domain) error {
	if rt.Protocol == store.RouteProtocolTCP {
		switch {
		case rt.Host != "":
			return apierr.UnprocessableEntity("Hosts are not supported for TCP routes.")
		case rt.Path != "":
			return apierr.UnprocessableEntity("Paths are not supported for TCP routes.")
		}
		if port != nil {
			if err := a.checkRouterGroupPort(ctx, domain.RouterGroupGUID, *port); err != nil {
				return err
			}
			rt.Port = *port
		}
		return nil
	}

	switch {
	case port != nil:
		return apierr.UnprocessableEntity("Routes with protocol 'http' do not support ports.")
	case domain.Internal && rt.Path != "":
		return apierr.UnprocessableEntity("Paths are not supported for internal domains.")
	case domain.Internal && rt.Host == "*":
		return apierr.UnprocessableEntity("Wildcard hosts are not supported for internal domains.")
	case domain.Shared() && rt.Host == "":
		return apierr.UnprocessableEntity("Missing host. Routes in shared domains must have a host defined.")
	case domain.Shared() && rt.Host == "*" && !actor.IsAdmin():
		return apierr.UnprocessableEntity("You do not have sufficient permissions to create a route with a wildcard host on a domain not scoped to an organization.")
	case len(rt.Host)+1+len(domain.Name) > maxFQDNLength:
		return apierr.UnprocessableEntity("Host combined with domain name must be no more than 253 characters.")
	case rt.Path != "" && invalidPath(rt.Path):
		return apierr.UnprocessableEntity("Path is invalid.")
	}
	if rt.Host != "" && rt.Host != "*" {
		name := rt.Host + "." + domain.Name
		exists, err := store.DomainNameExists(ctx, a.store.DB(), name)
		if err != nil {
			return err
		}
		if exists {
			return apierr.UnprocessableEntity("Route conflicts with domain '" + name + "'.")
		}
	}
	return nil
}

// routerGroupRanges reads the reservable port ranges of the router group
// groupGUID.
func (a *API) routerGroupRanges(ctx context.Context, groupGUID string) ([]config.PortRange, error) {
	group, err := a.store.RouterGroup(ctx, groupGUID)
	if err != nil {
		return nil, err
	}
	ranges, err := config.ParsePortRanges(group.ReservablePorts)
	if err != nil {
		return nil, apierr.UnprocessableEntity("Route could not be created because the specified domain does not have a valid router group.")
	}
	return ranges, nil
}

// checkRouterGroupPort fails unless port is one of the router group's
// reservable ports.
func (a *API) checkRouterGroupPort(ctx context.Context, groupGUID string, port int) error {
	ranges, err := a.routerGroupRanges(ctx, groupGUID)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		if port >= r.First && port <= r.Last {
			return nil
		}
	}
	return errPortUnavailable(port)
}

// freeRouterGroupPort returns the lowest reservable port of the router
// group that no route uses.
func (a *API) freeRouterGroupPort(ctx context.Context, groupGUID string) (int, error) {
	ranges, err := a.routerGroupRanges(ctx, groupGUID)
	if err != nil {
		return 0, err
	}
	used, err := a.store.RouterGroupPorts(ctx, groupGUID)
	if err != nil {
		return 0, err
	}
	taken := make(map[int]bool, len(used))
	for _, p := range used {
		taken[p] = true
	}
	for _, r := range ranges {
		for p := r.First; p <= r.Last; p++ {
			if !taken[p] {
				return p, nil
			}
		}
	}
	return 0, apierr.UnprocessableEntity("There are no more ports available for this domain.")
}
