package k8sbackend

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// IngressConfig holds the settings of the ingress routing mode, which
// serves HTTP routes through networking.k8s.io/v1 Ingress objects on
// clusters without Gateway API.
type IngressConfig struct {
	// ClassName is the IngressClass of every Ingress; "" leaves it to the
	// cluster's default class.
	ClassName string
}

// MakeIngress returns the Ingress of an HTTP route, in the route's space
// namespace. It matches the route's hostname and, as MakeHTTPRoute does,
// the route's path and every path below it. tls, when not nil, is the
// certificate of the route's domain. An Ingress reads only Secrets of its
// own namespace, so the Secret must be in the route's space namespace.
//
// An Ingress sends a path to one Service, so a route with several
// destinations fails: weighted and shared routes need Gateway API. A
// route without destinations gets a rule without paths, for which ingress
// controllers return 404.
func MakeIngress(route RouteSpec, cfg IngressConfig, tls *DomainTLS) (*networkingv1.Ingress, error) {
	if route.Protocol != RouteProtocolHTTP || route.Internal {
		return nil, fmt.Errorf("%w: Ingress for %s route %s (internal %t)", ErrUnsupportedRoute, route.Protocol, route.GUID, route.Internal)
	}
	if len(route.Destinations) > 1 {
		return nil, fmt.Errorf("%w: route %s has %d destinations, and an Ingress sends a path to one Service; use Gateway API routing", ErrUnsupportedRoute, route.GUID, len(route.Destinations))
	}
	namespace := SpaceNamespace(route.SpaceGUID)
	if tls != nil && tls.SecretNamespace != "" && tls.SecretNamespace != namespace {
		return nil, fmt.Errorf("%w: TLS Secret %s/%s of route %s is outside the route's namespace %s", ErrUnsupportedRoute, tls.SecretNamespace, tls.SecretName, route.GUID, namespace)
	}

	hostname := dnsName(route.Hostname())
	rule := networkingv1.IngressRule{Host: hostname}
	if len(route.Destinations) == 1 {
		rule.HTTP = &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{ingressPath(route.Path, route.Destinations[0])}}
	}
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: networkingv1.SchemeGroupVersion.String(), Kind: "Ingress"},
		ObjectMeta: routeObjectMeta(route),
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule}},
	}
	if cfg.ClassName != "" {
		ing.Spec.IngressClassName = ptr.To(cfg.ClassName)
	}
	if tls != nil {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{hostname}, SecretName: tls.SecretName}}
	}
	ing.Annotations[AnnotationSpecHash] = specHash(ing.Labels, ing.Annotations, ing.Spec)
	return ing, nil
}

func ingressPath(path string, d RouteDestination) networkingv1.HTTPIngressPath {
	if path == "" {
		path = "/"
	}
	return networkingv1.HTTPIngressPath{
		Path:     path,
		PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: d.ServiceName,
			Port: networkingv1.ServiceBackendPort{Number: destinationPort(d)},
		}},
	}
}
