package k8sbackend

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Route protocols. HTTP routes belong to HTTP domains; TCP and UDP routes
// belong to TCP domains and carry a port instead of a host and path.
// UDP routes are a Ferry extension.
const (
	RouteProtocolHTTP = "http"
	RouteProtocolTCP  = "tcp"
	RouteProtocolUDP  = "udp"
)

// WildcardHost is the host of a route that matches every host of its
// domain.
const WildcardHost = "*"

// Labels and values on routing objects, in addition to the common ones.
const (
	LabelRouteGUID = "cloudfoundry.org/route_guid"
	// ComponentRouting is the LabelComponent value of the objects that
	// route traffic to apps: HTTPRoutes, TCPRoutes, UDPRoutes, Ingresses,
	// ReferenceGrants, internal route Services and their EndpointSlices.
	ComponentRouting = "routing"
	// AnnotationRouteURL is the route as Cloud Foundry shows it, for
	// example "shop.apps.example.com/cart" or "tcp.example.com:1024".
	AnnotationRouteURL = "cloudfoundry.org/route_url"
)

// RouteSpec is the desired state of one Cloud Foundry route, as the
// translation to Kubernetes objects needs it. It is independent of the
// store, so the reconciler fills it from whatever reads routes.
type RouteSpec struct {
	// Installation is the installation that owns the route's objects; ""
	// means DefaultInstallation.
	Installation string
	GUID         string
	// Host is the first label of an HTTP route's hostname: "" for the
	// domain itself, WildcardHost for every host of the domain.
	Host   string
	Domain string
	// Path is "" or a path of an HTTP route starting with "/". The route
	// matches the path and every path below it.
	Path string
	// Port is a TCP or UDP route's port on the Gateway.
	Port int32
	// Protocol is RouteProtocolHTTP, RouteProtocolTCP or RouteProtocolUDP.
	Protocol string
	// Internal is true for routes of an internal domain, such as
	// apps.internal, which only apps in the cluster can reach.
	Internal  bool
	SpaceGUID string
	OrgGUID   string
	// DedicatedGatewayOrg is the GUID of the organization whose dedicated
	// Gateway, OrgGatewayName(DedicatedGatewayOrg), the route attaches to
	// instead of the main one, because the route's domain is a private
	// domain of that organization. It is "" for routes of the main Gateway.
	DedicatedGatewayOrg string
	// Destinations receive the route's traffic. A route without any
	// still gets its objects, and the Gateway returns 404 for it.
	Destinations []RouteDestination
}

// RouteDestination is an app process that receives a route's traffic.
type RouteDestination struct {
	AppGUID     string
	ProcessGUID string
	// ServiceName is the Service in front of the process, in the route's
	// space namespace: ProcessServiceName(ProcessGUID) for web processes.
	ServiceName string
	// Port is the port of ServiceName that forwards to the destination's
	// app port; 0 means AppPort, the one port MakeService gives web
	// Services.
	Port int32
	// Weight is the destination's share of the traffic relative to the
	// other destinations; 0 means 1.
	Weight int32
}

// DomainTLS is the certificate a domain's HTTPS traffic is served with.
type DomainTLS struct {
	Domain string
	// SecretName names the kubernetes.io/tls Secret with the domain's
	// certificate chain and key.
	SecretName string
	// SecretNamespace is the Secret's namespace; "" means the Gateway's.
	SecretNamespace string
}

// GatewayRef is the Gateway that HTTP, TCP and UDP routes attach to.
type GatewayRef struct {
	Namespace string
	Name      string
	// HTTPListeners are the listeners HTTPRoutes attach to. None attaches
	// them to every listener whose protocol and hostname fit.
	HTTPListeners []string
	// HTTPSPort is the port of the HTTPS listeners Ferry adds to a
	// Gateway it owns; 0 means 443.
	HTTPSPort int32
}

// URL returns the route as Cloud Foundry shows it: host.domain/path for
// HTTP routes and domain:port for TCP and UDP routes.
func (r RouteSpec) URL() string {
	if r.Protocol == RouteProtocolTCP || r.Protocol == RouteProtocolUDP {
		return r.Domain + ":" + strconv.Itoa(int(r.Port))
	}
	return r.Hostname() + r.Path
}

// Hostname returns the hostname an HTTP route matches: the domain, the
// host and the domain, or "*." and the domain for a wildcard host.
func (r RouteSpec) Hostname() string {
	if r.Host == "" {
		return r.Domain
	}
	return r.Host + "." + r.Domain
}

// RouteObjectName is the name of the HTTPRoute, TCPRoute, UDPRoute or
// Ingress of a route, in the route's space namespace.
func RouteObjectName(routeGUID string) string { return "route-" + routeGUID }

// routeLabels are the labels of every object made for one route.
func routeLabels(route RouteSpec) map[string]string {
	labels := ownerLabels(route.Installation, ComponentRouting)
	labels[LabelRouteGUID] = route.GUID
	labels[LabelSpaceGUID] = route.SpaceGUID
	if route.OrgGUID != "" {
		labels[LabelOrgGUID] = route.OrgGUID
	}
	return labels
}

func routeAnnotations(route RouteSpec) map[string]string {
	return map[string]string{AnnotationRouteURL: route.URL()}
}

// destinationPort is the Service port a destination's traffic goes to.
func destinationPort(d RouteDestination) int32 {
	if d.Port == 0 {
		return AppPort
	}
	return d.Port
}

// destinationWeight is the destination's weight, 1 when unset. The API
// server defaults a missing weight to 1 as well, so the object Ferry
// writes equals the one it reads back.
func destinationWeight(d RouteDestination) *int32 {
	w := d.Weight
	if w <= 0 {
		w = 1
	}
	return &w
}

// shortHash is 8 hex characters of SHA-256 over s. It keeps derived names
// unique and within Kubernetes' length limits.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// dnsName lower-cases a DNS name, because Kubernetes names and Gateway API
// hostnames reject upper case while DNS ignores it.
func dnsName(name string) string { return strings.ToLower(name) }
