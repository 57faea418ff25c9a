package k8sbackend

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
)

// spaceObjects are the routing objects that one space namespace should
// have, by kind.
type spaceObjects struct {
	httpRoutes objectSync[*gatewayv1.HTTPRoute]
	tcpRoutes  objectSync[*gatewayv1alpha2.TCPRoute]
	udpRoutes  objectSync[*gatewayv1alpha2.UDPRoute]
	ingresses  objectSync[*networkingv1.Ingress]
	secrets    objectSync[*corev1.Secret]
}

func newObjectSync[T metav1.Object]() objectSync[T] {
	return objectSync[T]{want: map[string]T{}, keep: map[string]bool{}}
}

// desiredObjects translates the routes of one space namespace into its
// objects. A route that the configured mode cannot serve is logged and
// left out, so it does not block the space's other routes.
func (r *RouteReconciler) desiredObjects(ctx context.Context, namespace string, routes []RouteSpec) (spaceObjects, error) {
	objects := spaceObjects{
		httpRoutes: newObjectSync[*gatewayv1.HTTPRoute](),
		tcpRoutes:  newObjectSync[*gatewayv1alpha2.TCPRoute](),
		udpRoutes:  newObjectSync[*gatewayv1alpha2.UDPRoute](),
		ingresses:  newObjectSync[*networkingv1.Ingress](),
		secrets:    newObjectSync[*corev1.Secret](),
	}
	var certificates map[string]TLSCertificateSpec
	for _, route := range routes {
		if route.Internal {
			continue
		}
		var err error
		switch {
		case r.ingressMode() && route.Protocol == RouteProtocolHTTP:
			if certificates == nil {
				if certificates, err = r.domainCertificates(ctx); err != nil {
					return objects, err
				}
			}
			err = addIngress(&objects, route, namespace, certificates[dnsName(route.Domain)], r.routing.IngressClass)
		case r.ingressMode():
			err = fmt.Errorf("%w: %s route %s needs Gateway API, and the ingress routing mode serves HTTP routes only",
				ErrUnsupportedRoute, route.Protocol, route.GUID)
		case route.Protocol == RouteProtocolHTTP:
			err = addObject(objects.httpRoutes, MakeHTTPRoute, route, r.gatewayOf(route))
		case route.Protocol == RouteProtocolTCP:
			err = addObject(objects.tcpRoutes, MakeTCPRoute, route, r.gatewayOf(route))
		case route.Protocol == RouteProtocolUDP:
			err = addObject(objects.udpRoutes, MakeUDPRoute, route, r.routing.UDPGateway)
		default:
			err = fmt.Errorf("%w: route %s has protocol %q", ErrUnsupportedRoute, route.GUID, route.Protocol)
		}
		if errors.Is(err, ErrUnsupportedRoute) {
			r.logSkipped(route, err)
			continue
		}
		if err != nil {
			return objects, err
		}
		r.clearSkipped(route.GUID)
	}
	return objects, nil
}

// gatewayOf returns the Gateway that a route of the main Gateway's kinds
// attaches to: its organization's dedicated Gateway, or the main one.
func (r *RouteReconciler) gatewayOf(route RouteSpec) GatewayRef {
	if route.DedicatedGatewayOrg == "" {
		return r.gateway
	}
	return GatewayRef{Namespace: r.gateway.Namespace, Name: OrgGatewayName(route.DedicatedGatewayOrg)}
}

// addObject adds the object that translate makes of route to objects.
func addObject[T metav1.Object](objects objectSync[T], translate func(RouteSpec, GatewayRef) (T, error),
	route RouteSpec, gw GatewayRef) error {
	obj, err := translate(route, gw)
	if err != nil {
		return err
	}
	objects.want[obj.GetName()] = obj
	return nil
}

// addIngress adds the Ingress of an HTTP route and, when its domain has a
// certificate, the copy of the certificate's Secret that the Ingress
// reads, because an Ingress reads Secrets only in its own namespace. A
// certificate whose key could not be opened keeps the Secret as it is.
func addIngress(objects *spaceObjects, route RouteSpec, namespace string, cert TLSCertificateSpec, class string) error {
	var tls *DomainTLS
	if cert.GUID != "" {
		tls = &DomainTLS{Domain: route.Domain, SecretName: TLSSecretName(cert.GUID), SecretNamespace: namespace}
	}
	ing, err := MakeIngress(route, IngressConfig{ClassName: class}, tls)
	if err != nil {
		return err
	}
	objects.ingresses.want[ing.Name] = ing
	switch {
	case tls == nil:
	case cert.PrivateKeyPEM == nil:
		objects.secrets.keep[tls.SecretName] = true
	default:
		objects.secrets.want[tls.SecretName] = MakeTLSSecret(cert, namespace)
	}
	return nil
}

// domainCertificates returns the uploaded certificates by lower-cased
// domain name. Without a certificate source it returns none.
//
// NOTE: each sync of a space with HTTP routes in ingress mode reads every
// certificate and opens its key, so the cost grows with spaces times
// certificates.
func (r *RouteReconciler) domainCertificates(ctx context.Context) (map[string]TLSCertificateSpec, error) {
	byDomain := map[string]TLSCertificateSpec{}
	if r.certificates == nil {
		return byDomain, nil
	}
	certs, err := r.certificates.Certificates(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the domain certificates: %w", err)
	}
	for _, c := range certs {
		if c.Installation == "" {
			c.Installation = r.installation
		}
		byDomain[dnsName(c.Domain)] = c
	}
	return byDomain, nil
}

// logSkipped logs a route the configured mode cannot serve, once until
// the reason changes.
func (r *RouteReconciler) logSkipped(route RouteSpec, err error) {
	r.skippedMu.Lock()
	defer r.skippedMu.Unlock()
	if r.skipped[route.GUID] == err.Error() {
		return
	}
	r.skipped[route.GUID] = err.Error()
	r.logger.Warn("route skipped: the routing mode cannot serve it", "route_guid", route.GUID, "route", route.URL(),
		"space", route.SpaceGUID, "mode", r.routing.Mode, "error", err)
}

func (r *RouteReconciler) clearSkipped(routeGUID string) {
	r.skippedMu.Lock()
	defer r.skippedMu.Unlock()
	delete(r.skipped, routeGUID)
}
