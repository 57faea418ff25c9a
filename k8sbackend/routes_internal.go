package k8sbackend

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Internal routes (host.apps.internal) reach every instance of their
// destinations from inside the cluster, on any port the apps listen on,
// as Cloud Foundry's container-to-container networking does. Each route
// gets a headless Service without a selector in one namespace for all
// internal routes, named from its host and domain. Ferry copies the
// addresses of the destinations' pods into EndpointSlices of that
// Service, because a Service selects pods only in its own namespace and
// only by one label set. A CoreDNS rewrite per internal domain maps
// host.domain to the Service's cluster name, whose A records are the pod
// addresses. CoreDNS v1.15.0 answers with ready addresses only, so an
// instance resolves once its readiness check passes. Network policies
// still decide which apps may connect.

// DefaultInternalRouteNamespace is the namespace of internal route
// Services when InternalRouteConfig sets none.
const DefaultInternalRouteNamespace = "ferry-internal-routes"

// DefaultClusterDomain is the cluster's DNS domain when
// InternalRouteConfig sets none.
const DefaultClusterDomain = "cluster.local"

// EndpointSliceManager is the endpointslice.kubernetes.io/managed-by
// value of the EndpointSlices Ferry writes, so Kubernetes' EndpointSlice
// controllers leave them alone.
const EndpointSliceManager = "ferry.cloudfoundry.org"

// internalServicePrefix starts every internal route Service name, because
// a host may start with a digit and a Service name may not.
const internalServicePrefix = "i-"

// maxInternalHost is the longest host an internal route can have: its
// Service name, prefix + host + "-" + 8 hex characters, must fit in a
// 63-character DNS label.
const maxInternalHost = validation.DNS1035LabelMaxLength - len(internalServicePrefix) - 1 - 8

// InternalRouteConfig is the namespace of internal route Services and the
// cluster DNS domain their names end in.
type InternalRouteConfig struct {
	// Namespace holds every internal route Service; "" means
	// DefaultInternalRouteNamespace.
	Namespace string
	// ClusterDomain is the cluster's DNS domain; "" means
	// DefaultClusterDomain.
	ClusterDomain string
}

func (c InternalRouteConfig) namespace() string {
	if c.Namespace == "" {
		return DefaultInternalRouteNamespace
	}
	return c.Namespace
}

func (c InternalRouteConfig) clusterDomain() string {
	if c.ClusterDomain == "" {
		return DefaultClusterDomain
	}
	return strings.TrimSuffix(c.ClusterDomain, ".")
}

// InternalRouteServiceName returns the name of the Service of the
// internal route host.domain. The name is "i-", the host, "-" and a hash
// of the domain, so the CoreDNS rewrite from RenderCoreDNSRewrites can
// derive it from a query name alone, which CoreDNS folds to lower case.
// It fails for hosts that are not a DNS label of at most 52
// characters, and for empty and wildcard hosts.
func InternalRouteServiceName(host, domain string) (string, error) {
	host = dnsName(host)
	if host == "" || host == WildcardHost {
		return "", fmt.Errorf("%w: internal routes need a host, got %q", ErrUnsupportedRoute, host)
	}
	if errs := validation.IsDNS1123Label(host); len(errs) > 0 {
		return "", fmt.Errorf("%w: internal route host %q is not a DNS label: %s", ErrUnsupportedRoute, host, strings.Join(errs, "; "))
	}
	if len(host) > maxInternalHost {
		return "", fmt.Errorf("%w: internal route host %q has %d characters, at most %d fit in a Service name", ErrUnsupportedRoute, host, len(host), maxInternalHost)
	}
	return internalServicePrefix + host + "-" + shortHash(dnsName(domain)), nil
}

// MakeInternalRouteService returns the headless Service without a
// selector that makes an internal route resolve in cluster DNS. It has
// no ports, so clients connect to the instances on any port, and its
// addresses come from MakeInternalRouteEndpointSlice. Internal routes
// have no path.
func MakeInternalRouteService(route RouteSpec, cfg InternalRouteConfig) (*corev1.Service, error) {
	if !route.Internal || route.Protocol != RouteProtocolHTTP {
		return nil, fmt.Errorf("%w: internal route Service for %s route %s (internal %t)", ErrUnsupportedRoute, route.Protocol, route.GUID, route.Internal)
	}
	if route.Path != "" {
		return nil, fmt.Errorf("%w: internal route %s has path %q, and internal routes have none", ErrUnsupportedRoute, route.GUID, route.Path)
	}
	name, err := InternalRouteServiceName(route.Host, route.Domain)
	if err != nil {
		return nil, err
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   cfg.namespace(),
			Labels:      routeLabels(route),
			Annotations: routeAnnotations(route),
		},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeClusterIP,
			ClusterIP: corev1.ClusterIPNone,
		},
	}
	svc.Annotations[AnnotationSpecHash] = specHash(svc.Labels, svc.Annotations, svc.Spec)
	return svc, nil
}

// MakeInternalRouteEndpointSlice returns the EndpointSlice that gives an
// internal route's Service the addresses of one destination. source are
// the IPv4 EndpointSlices of the destination's Service in the route's
// space namespace. Their endpoints are copied, so the reconciler makes a
// new slice whenever they change. It fails for a destination that is not
// one of the route's.
func MakeInternalRouteEndpointSlice(route RouteSpec, cfg InternalRouteConfig, destination RouteDestination, source []discoveryv1.EndpointSlice) (*discoveryv1.EndpointSlice, error) {
	if !slices.Contains(route.Destinations, destination) {
		return nil, fmt.Errorf("%w: process %s is not a destination of route %s", ErrUnsupportedRoute, destination.ProcessGUID, route.GUID)
	}
	serviceName, err := InternalRouteServiceName(route.Host, route.Domain)
	if err != nil {
		return nil, err
	}

	// NOTE: only IPv4 endpoints are copied; an IPv6 cluster needs a
	// second slice per destination.
	endpoints := []discoveryv1.Endpoint{}
	for _, slice := range source {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for i := range slice.Endpoints {
			// A copy, because source may come from an informer's cache.
			e := slice.Endpoints[i].DeepCopy()
			endpoints = append(endpoints, discoveryv1.Endpoint{
				Addresses:  e.Addresses,
				Conditions: e.Conditions,
				TargetRef:  e.TargetRef,
				NodeName:   e.NodeName,
				Zone:       e.Zone,
			})
		}
	}
	slices.SortFunc(endpoints, func(a, b discoveryv1.Endpoint) int {
		return strings.Compare(strings.Join(a.Addresses, ","), strings.Join(b.Addresses, ","))
	})

	labels := routeLabels(route)
	labels[LabelAppGUID] = destination.AppGUID
	labels[LabelProcessGUID] = destination.ProcessGUID
	labels[discoveryv1.LabelServiceName] = serviceName
	labels[discoveryv1.LabelManagedBy] = EndpointSliceManager
	slice := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: discoveryv1.SchemeGroupVersion.String(), Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        InternalRouteEndpointSliceName(serviceName, destination.ProcessGUID),
			Namespace:   cfg.namespace(),
			Labels:      labels,
			Annotations: routeAnnotations(route),
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints,
	}
	slice.Annotations[AnnotationSpecHash] = specHash(slice.Labels, slice.Annotations, slice.AddressType, slice.Endpoints)
	return slice, nil
}

// InternalRouteEndpointSliceName is the name of the EndpointSlice with one
// destination process's addresses for the internal route Service
// serviceName.
func InternalRouteEndpointSliceName(serviceName, processGUID string) string {
	return serviceName + "-" + shortHash(processGUID)
}

// RenderCoreDNSRewrites returns the CoreDNS rewrite rules, one line per
// internal domain, that make host.domain resolve to the internal route
// Service of that host and domain. Operators add them to the server block
// with the kubernetes plugin, which must serve the internal domains too
// (a ".:53" block does). The "answer auto" option restores the query
// name in responses, so clients accept them. Domains are lower-cased and duplicates
// are dropped; it fails for a domain that is not a DNS name.
func RenderCoreDNSRewrites(domains []string, cfg InternalRouteConfig) (string, error) {
	var sorted []string
	for _, d := range domains {
		d = strings.TrimSuffix(dnsName(d), ".")
		if errs := validation.IsDNS1123Subdomain(d); len(errs) > 0 {
			return "", fmt.Errorf("internal domain %q is not a DNS name: %s", d, strings.Join(errs, "; "))
		}
		sorted = append(sorted, d)
	}
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)

	var b strings.Builder
	for _, d := range sorted {
		// The host group is one DNS label no longer than maxInternalHost,
		// so deeper names and longer hosts are not rewritten.
		fmt.Fprintf(&b, "rewrite stop name regex ^([a-z0-9]([-a-z0-9]{0,%d}[a-z0-9])?)\\.%s\\.$ %s{1}-%s.%s.svc.%s. answer auto\n",
			maxInternalHost-2, regexp.QuoteMeta(d), internalServicePrefix, shortHash(d), cfg.namespace(), cfg.clusterDomain())
	}
	return b.String(), nil
}
