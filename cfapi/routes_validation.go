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
	problems := routeAddressProblems(p.Host, p.Path, p.Port)
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

// routeAddressProblems checks a route's host, path and port on their own,
// in Cloud Controller's words. A nil value is not checked.
func routeAddressProblems(host, path *string, port *int) []string {
	var problems []string
	if host != nil {
		if len(*host) > maxHostLength {
			problems = append(problems, "Host is too long (maximum is 63 characters)")
		}
		if !hostPattern.MatchString(*host) {
			problems = append(problems, `Host must be either "*" or contain only alphanumeric characters, "_", or "-"`)
		}
	}
	if path != nil {
		value := *path
		if len(value) > maxPathLength {
			problems = append(problems, "Path is too long (maximum is 128 characters)")
		}
		if value != "" && !strings.HasPrefix(value, "/") {
			problems = append(problems, "Path must begin with /")
		}
		if strings.Contains(value, "?") {
			problems = append(problems, "Path cannot contain ?")
		}
		if value == "/" {
			problems = append(problems, "Path cannot be exactly /")
		}
	}
	if port != nil {
		if *port < 0 {
			problems = append(problems, "Port must be greater than or equal to 0")
		}
		if *port > 65535 {
			problems = append(problems, "Port must be less than or equal to 65535")
		}
	}
	return problems
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

// routeProtocolFor returns the protocol of a route on domain. requested is
// the protocol the request names, or "" for the domain's default, which is
// "tcp" on a domain with a router group and "http" otherwise. A TCP domain
// also takes "udp", a Ferry extension.
func routeProtocolFor(domain store.Domain, requested string) (string, error) {
	if domain.RouterGroupGUID == "" {
		if requested != "" && requested != store.RouteProtocolHTTP {
			return "", apierr.UnprocessableEntity("Protocol '" + shorten(requested) + "' is not supported on domain '" + domain.Name +
				"': routes of HTTP domains use protocol 'http'. Leave protocol out, or use a TCP domain for 'tcp' and 'udp' routes.")
		}
		return store.RouteProtocolHTTP, nil
	}
	switch requested {
	case "", store.RouteProtocolTCP:
		return store.RouteProtocolTCP, nil
	case store.RouteProtocolUDP:
		return store.RouteProtocolUDP, nil
	}
	return "", apierr.UnprocessableEntity("Protocol '" + shorten(requested) + "' is not supported on domain '" + domain.Name +
		"': routes of TCP domains use protocol 'tcp' or 'udp'.")
}

// checkRouteAgainstDomain applies Cloud Controller's rules that depend on
// the route's domain. TCP and UDP routes take a port and no host or path,
// and HTTP routes no port. Internal domains take no path or wildcard, shared
// domains need a host, and a host may not turn the route into another
// domain's name.
func (a *API) checkRouteAgainstDomain(ctx context.Context, actor *auth.Actor, rt *store.Route, port *int, domain store.Domain) error {
	if rt.HasPort() {
		kind := strings.ToUpper(rt.Protocol)
		switch {
		case rt.Host != "":
			return apierr.UnprocessableEntity("Hosts are not supported for " + kind + " routes.")
		case rt.Path != "":
			return apierr.UnprocessableEntity("Paths are not supported for " + kind + " routes.")
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
// group that no route of the protocol uses.
func (a *API) freeRouterGroupPort(ctx context.Context, groupGUID, protocol string) (int, error) {
	ranges, err := a.routerGroupRanges(ctx, groupGUID)
	if err != nil {
		return 0, err
	}
	used, err := a.store.RouterGroupPorts(ctx, groupGUID, protocol)
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
