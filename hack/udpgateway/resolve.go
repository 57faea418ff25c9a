package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
)

// World is the cluster state that resolve reads, copied from the informer
// caches. Nothing in it is modified.
type World struct {
	ControllerName gatewayv1.GatewayController
	Classes        []*gatewayv1.GatewayClass
	Gateways       []*gatewayv1.Gateway
	Routes         []*gatewayv1alpha2.UDPRoute
	// NamespaceLabels maps each namespace name to its labels, for listeners
	// that admit routes from namespaces chosen by a label selector.
	NamespaceLabels map[string]map[string]string
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	// AllowedCIDR contains every backend address the gateway may forward
	// to. Endpoints outside it are skipped.
	AllowedCIDR netip.Prefix
}

// Plan is the outcome of resolve: the UDP sockets to open and the status
// each object should get.
type Plan struct {
	// Listeners maps each port to open on 127.0.0.1 to its backends.
	Listeners map[int32]ListenerPlan
	// Classes are the names of the GatewayClasses this controller serves.
	Classes []string
	// Gateways contains one entry per Gateway of those classes.
	Gateways []GatewayPlan
	// Routes contains one entry per UDPRoute with a parentRef to such a
	// Gateway.
	Routes []RoutePlan
}

// ListenerPlan is one UDP socket and the backends its sessions pick from.
type ListenerPlan struct {
	Gateway  types.NamespacedName
	Listener gatewayv1.SectionName
	Port     int32
	Backends []BackendGroup
}

// BackendGroup is one backendRef of a UDPRoute rule: a weight and the ready
// endpoints of the Service it names.
type BackendGroup struct {
	Weight    int32
	Endpoints []netip.AddrPort
}

// GatewayPlan is the status of one Gateway's listeners.
type GatewayPlan struct {
	Gateway    types.NamespacedName
	Generation int64
	Listeners  []ListenerResult
}

// ListenerResult is the outcome for one listener. Reason is empty for an
// accepted listener, otherwise a ListenerConditionReason with Message.
type ListenerResult struct {
	Name           gatewayv1.SectionName
	Port           int32
	Reason         gatewayv1.ListenerConditionReason
	Message        string
	AttachedRoutes int32
}

// RoutePlan is the status of one UDPRoute for each of its parentRefs that
// names a Gateway of this controller.
type RoutePlan struct {
	Route      types.NamespacedName
	Generation int64
	Parents    []ParentResult
}

// ParentResult holds the Accepted and ResolvedRefs conditions of one
// parentRef. An empty reason means the condition is True.
type ParentResult struct {
	Ref                 gatewayv1.ParentReference
	AcceptedReason      gatewayv1.RouteConditionReason
	AcceptedMessage     string
	ResolvedRefsReason  gatewayv1.RouteConditionReason
	ResolvedRefsMessage string
}

// listenerKey identifies one listener of one Gateway.
type listenerKey struct {
	gateway types.NamespacedName
	name    gatewayv1.SectionName
}

// resolve computes the listeners to open and every status from w. It is
// deterministic: objects are visited in order of creation, then name.
func resolve(w World) Plan {
	plan := Plan{Listeners: map[int32]ListenerPlan{}}

	classes := map[string]bool{}
	for _, c := range w.Classes {
		if c.Spec.ControllerName == w.ControllerName {
			classes[c.Name] = true
			plan.Classes = append(plan.Classes, c.Name)
		}
	}
	slices.Sort(plan.Classes)

	gateways := sortedByAge(w.Gateways, func(g *gatewayv1.Gateway) metav1.ObjectMeta { return g.ObjectMeta })
	accepted := map[listenerKey]gatewayv1.Listener{}
	portOwner := map[int32]listenerKey{}
	gatewayIndex := map[types.NamespacedName]int{}
	for _, g := range gateways {
		if !classes[string(g.Spec.GatewayClassName)] {
			continue
		}
		gp := GatewayPlan{Gateway: nameOf(g.ObjectMeta), Generation: g.Generation}
		for _, l := range g.Spec.Listeners {
			result := ListenerResult{Name: l.Name, Port: int32(l.Port)}
			key := listenerKey{gp.Gateway, l.Name}
			switch owner, taken := portOwner[int32(l.Port)]; {
			case l.Protocol != gatewayv1.UDPProtocolType:
				result.Reason = gatewayv1.ListenerReasonUnsupportedProtocol
				result.Message = fmt.Sprintf("protocol %s is not supported, only UDP", l.Protocol)
			case !kindsAllowUDPRoute(l.AllowedRoutes):
				result.Reason = gatewayv1.ListenerReasonInvalidRouteKinds
				result.Message = "allowedRoutes.kinds does not include UDPRoute, the only supported kind"
			case taken:
				result.Reason = gatewayv1.ListenerReasonProtocolConflict
				result.Message = fmt.Sprintf("port %d is already used by listener %s of Gateway %s", l.Port, owner.name, owner.gateway)
			default:
				accepted[key] = l
				portOwner[int32(l.Port)] = key
				plan.Listeners[int32(l.Port)] = ListenerPlan{Gateway: gp.Gateway, Listener: l.Name, Port: int32(l.Port)}
			}
			gp.Listeners = append(gp.Listeners, result)
		}
		gatewayIndex[gp.Gateway] = len(plan.Gateways)
		plan.Gateways = append(plan.Gateways, gp)
	}

	backends := newBackendIndex(w)
	routes := sortedByAge(w.Routes, func(r *gatewayv1alpha2.UDPRoute) metav1.ObjectMeta { return r.ObjectMeta })
	for _, r := range routes {
		rp := RoutePlan{Route: nameOf(r.ObjectMeta), Generation: r.Generation}
		groups, resolvedReason, resolvedMessage := backends.resolveRoute(r)
		for _, ref := range r.Spec.ParentRefs {
			gw, ok := parentGateway(r.Namespace, ref)
			if !ok {
				continue
			}
			gi, ours := gatewayIndex[gw]
			if !ours {
				continue
			}
			result := ParentResult{Ref: ref, ResolvedRefsReason: resolvedReason, ResolvedRefsMessage: resolvedMessage}
			matched, allowed := 0, 0
			for li := range plan.Gateways[gi].Listeners {
				lr := &plan.Gateways[gi].Listeners[li]
				l, ok := accepted[listenerKey{gw, lr.Name}]
				if !ok || !parentRefMatches(ref, l) {
					continue
				}
				matched++
				if !namespaceAllowed(l.AllowedRoutes, gw.Namespace, r.Namespace, w.NamespaceLabels[r.Namespace]) {
					continue
				}
				allowed++
				lr.AttachedRoutes++
				lp := plan.Listeners[lr.Port]
				lp.Backends = append(lp.Backends, groups...)
				plan.Listeners[lr.Port] = lp
			}
			switch {
			case matched == 0:
				result.AcceptedReason = gatewayv1.RouteReasonNoMatchingParent
				result.AcceptedMessage = fmt.Sprintf("Gateway %s has no accepted UDP listener matching sectionName and port", gw)
			case allowed == 0:
				result.AcceptedReason = gatewayv1.RouteReasonNotAllowedByListeners
				result.AcceptedMessage = fmt.Sprintf("no listener of Gateway %s admits routes from namespace %s", gw, r.Namespace)
			}
			rp.Parents = append(rp.Parents, result)
		}
		if len(rp.Parents) > 0 {
			plan.Routes = append(plan.Routes, rp)
		}
	}
	return plan
}

func nameOf(m metav1.ObjectMeta) types.NamespacedName {
	return types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
}

// sortedByAge returns a copy of objects ordered by creation time, then
// namespace and name, so that the oldest listener wins a port conflict.
func sortedByAge[T any](objects []T, meta func(T) metav1.ObjectMeta) []T {
	out := slices.Clone(objects)
	slices.SortStableFunc(out, func(a, b T) int {
		ma, mb := meta(a), meta(b)
		if c := ma.CreationTimestamp.Compare(mb.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(ma.Namespace, mb.Namespace), cmp.Compare(ma.Name, mb.Name))
	})
	return out
}

func kindsAllowUDPRoute(allowed *gatewayv1.AllowedRoutes) bool {
	if allowed == nil || len(allowed.Kinds) == 0 {
		return true
	}
	for _, k := range allowed.Kinds {
		group := gatewayv1.GroupName
		if k.Group != nil {
			group = string(*k.Group)
		}
		if group == gatewayv1.GroupName && k.Kind == "UDPRoute" {
			return true
		}
	}
	return false
}

// parentGateway returns the Gateway a parentRef names, and false for
// parents of other kinds.
func parentGateway(routeNamespace string, ref gatewayv1.ParentReference) (types.NamespacedName, bool) {
	if ref.Group != nil && string(*ref.Group) != gatewayv1.GroupName {
		return types.NamespacedName{}, false
	}
	if ref.Kind != nil && *ref.Kind != "Gateway" {
		return types.NamespacedName{}, false
	}
	ns := routeNamespace
	if ref.Namespace != nil {
		ns = string(*ref.Namespace)
	}
	return types.NamespacedName{Namespace: ns, Name: string(ref.Name)}, true
}

func parentRefMatches(ref gatewayv1.ParentReference, l gatewayv1.Listener) bool {
	if ref.SectionName != nil && *ref.SectionName != l.Name {
		return false
	}
	if ref.Port != nil && *ref.Port != l.Port {
		return false
	}
	return true
}

// namespaceAllowed applies a listener's allowedRoutes.namespaces, whose
// default is Same.
func namespaceAllowed(allowed *gatewayv1.AllowedRoutes, gatewayNamespace, routeNamespace string, namespaceLabels map[string]string) bool {
	from := gatewayv1.NamespacesFromSame
	var selector *metav1.LabelSelector
	if allowed != nil && allowed.Namespaces != nil {
		if allowed.Namespaces.From != nil {
			from = *allowed.Namespaces.From
		}
		selector = allowed.Namespaces.Selector
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return gatewayNamespace == routeNamespace
	case gatewayv1.NamespacesFromSelector:
		if selector == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			return false
		}
		return s.Matches(labels.Set(namespaceLabels))
	default:
		// None, and values this version does not know, admit nothing.
		return false
	}
}

// backendIndex finds Services and their EndpointSlices by name.
type backendIndex struct {
	services    map[types.NamespacedName]*corev1.Service
	slices      map[types.NamespacedName][]*discoveryv1.EndpointSlice
	allowedCIDR netip.Prefix
}

func newBackendIndex(w World) backendIndex {
	idx := backendIndex{
		services:    map[types.NamespacedName]*corev1.Service{},
		slices:      map[types.NamespacedName][]*discoveryv1.EndpointSlice{},
		allowedCIDR: w.AllowedCIDR,
	}
	for _, s := range w.Services {
		idx.services[nameOf(s.ObjectMeta)] = s
	}
	for _, es := range w.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := types.NamespacedName{Namespace: es.Namespace, Name: svc}
		idx.slices[key] = append(idx.slices[key], es)
	}
	for key := range idx.slices {
		slices.SortFunc(idx.slices[key], func(a, b *discoveryv1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	}
	return idx
}

// resolveRoute returns one group per backendRef of the route's rules that
// resolves, and the ResolvedRefs reason and message: empty when every
// reference resolved, otherwise those of the first that did not.
func (idx backendIndex) resolveRoute(r *gatewayv1alpha2.UDPRoute) ([]BackendGroup, gatewayv1.RouteConditionReason, string) {
	var groups []BackendGroup
	var reason gatewayv1.RouteConditionReason
	var message string
	for _, rule := range r.Spec.Rules {
		for _, ref := range rule.BackendRefs {
			group, why, msg := idx.resolveBackend(r.Namespace, ref)
			if why != "" {
				if reason == "" {
					reason, message = why, msg
				}
				continue
			}
			if group.Weight > 0 && len(group.Endpoints) > 0 {
				groups = append(groups, group)
			}
		}
	}
	return groups, reason, message
}

// resolveBackend resolves one backendRef to the ready endpoints of its
// Service port. Only Services in the route's own namespace resolve,
// because this gateway reads no ReferenceGrants.
func (idx backendIndex) resolveBackend(routeNamespace string, ref gatewayv1.BackendRef) (BackendGroup, gatewayv1.RouteConditionReason, string) {
	if ref.Group != nil && *ref.Group != "" {
		return BackendGroup{}, gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("backendRef %s has group %q, only core Services are supported", ref.Name, *ref.Group)
	}
	if ref.Kind != nil && *ref.Kind != "Service" {
		return BackendGroup{}, gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("backendRef %s has kind %q, only Service is supported", ref.Name, *ref.Kind)
	}
	if ref.Namespace != nil && string(*ref.Namespace) != routeNamespace {
		return BackendGroup{}, gatewayv1.RouteReasonRefNotPermitted, fmt.Sprintf("backendRef %s/%s is in another namespace; this gateway reads no ReferenceGrants", *ref.Namespace, ref.Name)
	}
	if ref.Port == nil {
		return BackendGroup{}, gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf("backendRef %s has no port", ref.Name)
	}
	key := types.NamespacedName{Namespace: routeNamespace, Name: string(ref.Name)}
	svc, ok := idx.services[key]
	if !ok {
		return BackendGroup{}, gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s not found", key)
	}
	var svcPort *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == int32(*ref.Port) && svc.Spec.Ports[i].Protocol == corev1.ProtocolUDP {
			svcPort = &svc.Spec.Ports[i]
			break
		}
	}
	if svcPort == nil {
		return BackendGroup{}, gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s has no UDP port %d", key, *ref.Port)
	}

	weight := int32(1)
	if ref.Weight != nil {
		weight = *ref.Weight
	}
	group := BackendGroup{Weight: weight}
	seen := map[netip.AddrPort]bool{}
	for _, es := range idx.slices[key] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(es, svcPort.Name)
		if !ok {
			continue
		}
		for _, e := range es.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil || !idx.allowedCIDR.Contains(addr) {
					continue
				}
				ap := netip.AddrPortFrom(addr, uint16(port))
				if !seen[ap] {
					seen[ap] = true
					group.Endpoints = append(group.Endpoints, ap)
				}
			}
		}
	}
	slices.SortFunc(group.Endpoints, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return group, "", ""
}

// slicePort returns the UDP port number of an EndpointSlice for the
// Service port with name name.
func slicePort(es *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range es.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		protocol := corev1.ProtocolTCP
		if p.Protocol != nil {
			protocol = *p.Protocol
		}
		if pname == name && protocol == corev1.ProtocolUDP && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}
