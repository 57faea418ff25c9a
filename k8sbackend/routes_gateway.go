package k8sbackend

import (
	"errors"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// DefaultHTTPSPort is the port of the HTTPS listeners when GatewayRef sets
// none.
const DefaultHTTPSPort = 443

// maxSectionName is the length limit of Gateway API listener names.
const maxSectionName = 253

// ErrUnsupportedRoute reports a route that the called translation cannot
// express, such as a TCP route given to MakeHTTPRoute.
var ErrUnsupportedRoute = errors.New("unsupported route")

// MakeHTTPRoute returns the HTTPRoute of an HTTP route, in the route's
// space namespace and attached to gw. It matches the route's hostname
// (a "*." wildcard for WildcardHost) and, as on Cloud Foundry, the route's
// path and every path below it: "/shop" matches "/shop" and "/shop/cart"
// but not "/shopping". Traffic goes to the destinations' Services by
// weight. When the Gateway has several HTTPRoutes for one hostname, the
// longest matching path wins.
func MakeHTTPRoute(route RouteSpec, gw GatewayRef) (*gatewayv1.HTTPRoute, error) {
	if route.Protocol != RouteProtocolHTTP || route.Internal {
		return nil, fmt.Errorf("%w: HTTPRoute for %s route %s (internal %t)", ErrUnsupportedRoute, route.Protocol, route.GUID, route.Internal)
	}

	path := route.Path
	if path == "" {
		path = "/"
	}
	// The API server drops an empty backendRefs list, so a route without
	// destinations leaves the field unset.
	var backends []gatewayv1.HTTPBackendRef
	for _, d := range route.Destinations {
		backends = append(backends, gatewayv1.HTTPBackendRef{BackendRef: serviceBackendRef(d)})
	}

	hr := &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: routeObjectMeta(route),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: httpParentRefs(gw)},
			Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(dnsName(route.Hostname()))},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type:  ptr.To(gatewayv1.PathMatchPathPrefix),
					Value: ptr.To(path),
				}}},
				BackendRefs: backends,
			}},
		},
	}
	hr.Annotations[AnnotationSpecHash] = specHash(hr.Labels, hr.Annotations, hr.Spec)
	return hr, nil
}

// MakeTCPRoute returns the v1alpha2 TCPRoute of a TCP route, attached to
// the listener that MakePortListener makes for the route's port.
// Traefik v3.7.13 reads TCPRoutes only as v1alpha2.
func MakeTCPRoute(route RouteSpec, gw GatewayRef) (*gatewayv1alpha2.TCPRoute, error) {
	if route.Protocol != RouteProtocolTCP || route.Internal {
		return nil, fmt.Errorf("%w: TCPRoute for %s route %s (internal %t)", ErrUnsupportedRoute, route.Protocol, route.GUID, route.Internal)
	}
	tr := &gatewayv1alpha2.TCPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1alpha2.GroupVersion.String(), Kind: "TCPRoute"},
		ObjectMeta: routeObjectMeta(route),
		Spec: gatewayv1alpha2.TCPRouteSpec{
			CommonRouteSpec: portParentRefs(route, gw),
			Rules:           []gatewayv1alpha2.TCPRouteRule{{BackendRefs: serviceBackendRefs(route)}},
		},
	}
	tr.Annotations[AnnotationSpecHash] = specHash(tr.Labels, tr.Annotations, tr.Spec)
	return tr, nil
}

// MakeUDPRoute returns the v1alpha2 UDPRoute of a UDP route, attached to
// the listener that MakePortListener makes for the route's port.
// NOTE: Traefik v3.7.13, the local environment's gateway, does not serve
// UDPRoutes, so UDP routes need another Gateway API implementation.
func MakeUDPRoute(route RouteSpec, gw GatewayRef) (*gatewayv1alpha2.UDPRoute, error) {
	if route.Protocol != RouteProtocolUDP || route.Internal {
		return nil, fmt.Errorf("%w: UDPRoute for %s route %s (internal %t)", ErrUnsupportedRoute, route.Protocol, route.GUID, route.Internal)
	}
	ur := &gatewayv1alpha2.UDPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1alpha2.GroupVersion.String(), Kind: "UDPRoute"},
		ObjectMeta: routeObjectMeta(route),
		Spec: gatewayv1alpha2.UDPRouteSpec{
			CommonRouteSpec: portParentRefs(route, gw),
			Rules:           []gatewayv1alpha2.UDPRouteRule{{BackendRefs: serviceBackendRefs(route)}},
		},
	}
	ur.Annotations[AnnotationSpecHash] = specHash(ur.Labels, ur.Annotations, ur.Spec)
	return ur, nil
}

// PortListenerName is the name of the Gateway listener of TCP or UDP
// routes on port.
func PortListenerName(protocol string, port int32) string {
	return protocol + "-" + strconv.Itoa(int(port))
}

// MakePortListener returns the Gateway listener that a TCP or UDP route's
// TCPRoute or UDPRoute attaches to. Routes of all of the installation's
// spaces may attach to it. The Gateway implementation must be able to
// listen on the port; Traefik, for example, needs an entry point on it.
func MakePortListener(route RouteSpec) (gatewayv1.Listener, error) {
	var protocol gatewayv1.ProtocolType
	var kind gatewayv1.Kind
	switch route.Protocol {
	case RouteProtocolTCP:
		protocol, kind = gatewayv1.TCPProtocolType, "TCPRoute"
	case RouteProtocolUDP:
		protocol, kind = gatewayv1.UDPProtocolType, "UDPRoute"
	default:
		return gatewayv1.Listener{}, fmt.Errorf("%w: port listener for %s route %s", ErrUnsupportedRoute, route.Protocol, route.GUID)
	}
	if route.Port < 1 || route.Port > 65535 {
		return gatewayv1.Listener{}, fmt.Errorf("%w: route %s has port %d, want 1 to 65535", ErrUnsupportedRoute, route.GUID, route.Port)
	}
	return gatewayv1.Listener{
		Name:          gatewayv1.SectionName(PortListenerName(route.Protocol, route.Port)),
		Port:          gatewayv1.PortNumber(route.Port),
		Protocol:      protocol,
		AllowedRoutes: spaceRoutes(route.Installation, kind),
	}, nil
}

// HTTPSListenerName is the name of the HTTPS listener of a domain's
// subdomains; the listener of the domain itself has "-apex" appended.
// Names that would be too long end in a hash of the domain instead.
func HTTPSListenerName(domain string) string {
	name := "https-" + dnsName(domain)
	if len(name)+len("-apex") > maxSectionName {
		name = "https-" + shortHash(dnsName(domain))
	}
	return name
}

// MakeHTTPSListeners returns the two HTTPS listeners of a domain on a
// Gateway that Ferry owns: one for the domain's subdomains ("*.domain")
// and one for the domain itself, because a wildcard hostname does not
// match the bare domain. Both terminate TLS with the domain's certificate
// Secret; when that Secret is in another namespace than the Gateway, the
// Gateway also needs MakeReferenceGrant's grant.
func MakeHTTPSListeners(tls DomainTLS, gw GatewayRef, installation string) []gatewayv1.Listener {
	port := gw.HTTPSPort
	if port == 0 {
		port = DefaultHTTPSPort
	}
	ref := gatewayv1.SecretObjectReference{
		Group: ptr.To(gatewayv1.Group("")),
		Kind:  ptr.To(gatewayv1.Kind("Secret")),
		Name:  gatewayv1.ObjectName(tls.SecretName),
	}
	if tls.SecretNamespace != "" && tls.SecretNamespace != gw.Namespace {
		ref.Namespace = ptr.To(gatewayv1.Namespace(tls.SecretNamespace))
	}
	listener := func(name, hostname string) gatewayv1.Listener {
		return gatewayv1.Listener{
			Name:     gatewayv1.SectionName(name),
			Hostname: ptr.To(gatewayv1.Hostname(hostname)),
			Port:     gatewayv1.PortNumber(port),
			Protocol: gatewayv1.HTTPSProtocolType,
			TLS: &gatewayv1.ListenerTLSConfig{
				Mode:            ptr.To(gatewayv1.TLSModeTerminate),
				CertificateRefs: []gatewayv1.SecretObjectReference{ref},
			},
			AllowedRoutes: spaceRoutes(installation, "HTTPRoute"),
		}
	}
	domain := dnsName(tls.Domain)
	name := HTTPSListenerName(tls.Domain)
	return []gatewayv1.Listener{
		listener(name, "*."+domain),
		listener(name+"-apex", domain),
	}
}

// ReferenceGrantName is the name of the ReferenceGrant that lets gw read
// the TLS Secret secretName.
func ReferenceGrantName(gw GatewayRef, secretName string) string {
	name := "gateway-" + shortHash(gw.Namespace+"/"+gw.Name) + "-" + secretName
	if len(name) > validation.DNS1123SubdomainMaxLength {
		name = "gateway-" + shortHash(gw.Namespace+"/"+gw.Name) + "-" + shortHash(secretName)
	}
	return name
}

// MakeReferenceGrant returns the grant, in the Secret's namespace, that
// lets gw's listeners read a domain's certificate Secret, or nil when the
// Secret is in the Gateway's namespace and needs no grant. It is v1beta1,
// the version Traefik v3.7.13 reads; the CRDs of Gateway API v1.6.3 serve
// v1beta1 and v1 from the same storage.
func MakeReferenceGrant(tls DomainTLS, gw GatewayRef, installation string) *gatewayv1beta1.ReferenceGrant {
	if tls.SecretNamespace == "" || tls.SecretNamespace == gw.Namespace {
		return nil
	}
	grant := &gatewayv1beta1.ReferenceGrant{
		TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1beta1.GroupVersion.String(), Kind: "ReferenceGrant"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ReferenceGrantName(gw, tls.SecretName),
			Namespace:   tls.SecretNamespace,
			Labels:      ownerLabels(installation, ComponentRouting),
			Annotations: map[string]string{},
		},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{
				Group:     gatewayv1.GroupName,
				Kind:      "Gateway",
				Namespace: gatewayv1.Namespace(gw.Namespace),
			}},
			To: []gatewayv1beta1.ReferenceGrantTo{{
				Group: "",
				Kind:  "Secret",
				Name:  ptr.To(gatewayv1.ObjectName(tls.SecretName)),
			}},
		},
	}
	grant.Annotations[AnnotationSpecHash] = specHash(grant.Labels, grant.Annotations, grant.Spec)
	return grant
}

func routeObjectMeta(route RouteSpec) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        RouteObjectName(route.GUID),
		Namespace:   SpaceNamespace(route.SpaceGUID),
		Labels:      routeLabels(route),
		Annotations: routeAnnotations(route),
	}
}

// httpParentRefs attaches to each of gw's HTTP listeners, or to the whole
// Gateway when it names none.
func httpParentRefs(gw GatewayRef) []gatewayv1.ParentReference {
	if len(gw.HTTPListeners) == 0 {
		return []gatewayv1.ParentReference{gatewayParentRef(gw, "")}
	}
	refs := make([]gatewayv1.ParentReference, 0, len(gw.HTTPListeners))
	for _, listener := range gw.HTTPListeners {
		refs = append(refs, gatewayParentRef(gw, listener))
	}
	return refs
}

func portParentRefs(route RouteSpec, gw GatewayRef) gatewayv1.CommonRouteSpec {
	return gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{
		gatewayParentRef(gw, PortListenerName(route.Protocol, route.Port)),
	}}
}

func gatewayParentRef(gw GatewayRef, listener string) gatewayv1.ParentReference {
	ref := gatewayv1.ParentReference{
		Group:     ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace(gw.Namespace)),
		Name:      gatewayv1.ObjectName(gw.Name),
	}
	if listener != "" {
		ref.SectionName = ptr.To(gatewayv1.SectionName(listener))
	}
	return ref
}

func serviceBackendRefs(route RouteSpec) []gatewayv1.BackendRef {
	var refs []gatewayv1.BackendRef
	for _, d := range route.Destinations {
		refs = append(refs, serviceBackendRef(d))
	}
	return refs
}

func serviceBackendRef(d RouteDestination) gatewayv1.BackendRef {
	return gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")),
			Kind:  ptr.To(gatewayv1.Kind("Service")),
			Name:  gatewayv1.ObjectName(d.ServiceName),
			Port:  ptr.To(gatewayv1.PortNumber(destinationPort(d))),
		},
		Weight: destinationWeight(d),
	}
}

// spaceRoutes lets routes of kind from the installation's space
// namespaces attach to a listener, and no others.
func spaceRoutes(installation string, kind gatewayv1.Kind) *gatewayv1.AllowedRoutes {
	return &gatewayv1.AllowedRoutes{
		Namespaces: &gatewayv1.RouteNamespaces{
			From:     ptr.To(gatewayv1.NamespacesFromSelector),
			Selector: &metav1.LabelSelector{MatchLabels: ownerLabels(installation, ComponentSpace)},
		},
		Kinds: []gatewayv1.RouteGroupKind{{Group: ptr.To(gatewayv1.Group(gatewayv1.GroupName)), Kind: kind}},
	}
}
