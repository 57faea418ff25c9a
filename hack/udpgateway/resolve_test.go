package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
)

const testController = "ferry.cloudfoundry.org/udp-gateway"

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func objectMeta(namespace, name string, age int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))}
}

func udpListener(name string, port int32, from gatewayv1.FromNamespaces) gatewayv1.Listener {
	return gatewayv1.Listener{
		Name:          gatewayv1.SectionName(name),
		Port:          gatewayv1.PortNumber(port),
		Protocol:      gatewayv1.UDPProtocolType,
		AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &from}},
	}
}

func gateway(name, class string, age int, listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: objectMeta("ferry-system", name, age),
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: gatewayv1.ObjectName(class), Listeners: listeners},
	}
}

type parent struct {
	gateway, section string
	port             int32
}

func udpRoute(namespace, name string, parents []parent, backends ...gatewayv1.BackendRef) *gatewayv1alpha2.UDPRoute {
	r := &gatewayv1alpha2.UDPRoute{ObjectMeta: objectMeta(namespace, name, 0)}
	for _, p := range parents {
		ref := gatewayv1.ParentReference{Name: gatewayv1.ObjectName(p.gateway), Namespace: ptr(gatewayv1.Namespace("ferry-system"))}
		if p.section != "" {
			ref.SectionName = ptr(gatewayv1.SectionName(p.section))
		}
		if p.port != 0 {
			ref.Port = ptr(gatewayv1.PortNumber(p.port))
		}
		r.Spec.ParentRefs = append(r.Spec.ParentRefs, ref)
	}
	r.Spec.Rules = []gatewayv1alpha2.UDPRouteRule{{BackendRefs: backends}}
	return r
}

func backendRef(name string, port int32, weight *int32) gatewayv1.BackendRef {
	return gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr(gatewayv1.PortNumber(port))},
		Weight:                 weight,
	}
}

func udpService(namespace, name string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: objectMeta(namespace, name, 0),
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "udp", Port: port, Protocol: corev1.ProtocolUDP}}},
	}
}

// endpointSlice returns a slice of service with targetPort 9000 and one
// endpoint per address; addresses ending in "!" are not ready.
func endpointSlice(namespace, service string, addresses ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  objectMeta(namespace, service+"-abc", 0),
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("udp"), Port: ptr(int32(9000)), Protocol: ptr(corev1.ProtocolUDP)}},
	}
	es.Labels = map[string]string{discoveryv1.LabelServiceName: service}
	for _, a := range addresses {
		ready := true
		if a[len(a)-1] == '!' {
			ready, a = false, a[:len(a)-1]
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return es
}

func ep(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// compareAddrPort lets cmp compare netip.AddrPort, whose fields are
// unexported.
var compareAddrPort = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func baseWorld() World {
	return World{
		ControllerName: testController,
		Classes: []*gatewayv1.GatewayClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "ferry-udp"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: testController}},
			{ObjectMeta: metav1.ObjectMeta{Name: "traefik"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "traefik.io/gateway-controller"}},
		},
		NamespaceLabels: map[string]map[string]string{
			"space-a":      {"ferry.cloudfoundry.org/installation": "dev"},
			"space-b":      {},
			"ferry-system": {},
		},
		Services:       []*corev1.Service{udpService("space-a", "echo", 7001), udpService("space-b", "echo", 7001)},
		EndpointSlices: []*discoveryv1.EndpointSlice{endpointSlice("space-a", "echo", "10.88.0.20", "10.88.0.21!", "192.168.1.5"), endpointSlice("space-b", "echo", "10.88.0.30")},
		AllowedCIDR:    netip.MustParsePrefix("10.88.0.0/16"),
	}
}

func TestResolveBackends(t *testing.T) {
	w := baseWorld()
	w.Gateways = []*gatewayv1.Gateway{gateway("ferry-udp", "ferry-udp", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll))}
	w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute("space-a", "r1", []parent{{gateway: "ferry-udp", section: "udp-1040"}}, backendRef("echo", 7001, nil))}

	plan := resolve(w)

	want := map[int32]ListenerPlan{1040: {
		Gateway:  types.NamespacedName{Namespace: "ferry-system", Name: "ferry-udp"},
		Listener: "udp-1040",
		Port:     1040,
		// Not ready and outside 10.88.0.0/16 are both left out.
		Backends: []BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{ep("10.88.0.20:9000")}}},
	}}
	if diff := cmp.Diff(want, plan.Listeners, compareAddrPort); diff != "" {
		t.Errorf("listeners (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ferry-udp"}, plan.Classes); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	if got := plan.Gateways[0].Listeners[0].AttachedRoutes; got != 1 {
		t.Errorf("attached routes = %d, want 1", got)
	}
	wantParents := []ParentResult{{Ref: w.Routes[0].Spec.ParentRefs[0]}}
	if diff := cmp.Diff(wantParents, plan.Routes[0].Parents); diff != "" {
		t.Errorf("route parents (-want +got):\n%s", diff)
	}
}

func TestResolveParentRefs(t *testing.T) {
	tests := []struct {
		name         string
		from         gatewayv1.FromNamespaces
		selector     *metav1.LabelSelector
		routeNS      string
		parent       parent
		wantReason   gatewayv1.RouteConditionReason
		wantAttached int32
	}{
		{name: "section name", from: gatewayv1.NamespacesFromAll, routeNS: "space-a", parent: parent{gateway: "ferry-udp", section: "udp-1040"}, wantAttached: 1},
		{name: "port only", from: gatewayv1.NamespacesFromAll, routeNS: "space-a", parent: parent{gateway: "ferry-udp", port: 1040}, wantAttached: 1},
		{name: "whole gateway", from: gatewayv1.NamespacesFromAll, routeNS: "space-a", parent: parent{gateway: "ferry-udp"}, wantAttached: 1},
		{name: "unknown section", from: gatewayv1.NamespacesFromAll, routeNS: "space-a", parent: parent{gateway: "ferry-udp", section: "udp-9"}, wantReason: gatewayv1.RouteReasonNoMatchingParent},
		{name: "wrong port", from: gatewayv1.NamespacesFromAll, routeNS: "space-a", parent: parent{gateway: "ferry-udp", section: "udp-1040", port: 1041}, wantReason: gatewayv1.RouteReasonNoMatchingParent},
		{name: "same namespace rejects others", from: gatewayv1.NamespacesFromSame, routeNS: "space-a", parent: parent{gateway: "ferry-udp"}, wantReason: gatewayv1.RouteReasonNotAllowedByListeners},
		{
			name: "selector matches", from: gatewayv1.NamespacesFromSelector, routeNS: "space-a", parent: parent{gateway: "ferry-udp"}, wantAttached: 1,
			selector: &metav1.LabelSelector{MatchLabels: map[string]string{"ferry.cloudfoundry.org/installation": "dev"}},
		},
		{
			name: "selector does not match", from: gatewayv1.NamespacesFromSelector, routeNS: "space-b", parent: parent{gateway: "ferry-udp"},
			selector:   &metav1.LabelSelector{MatchLabels: map[string]string{"ferry.cloudfoundry.org/installation": "dev"}},
			wantReason: gatewayv1.RouteReasonNotAllowedByListeners,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := baseWorld()
			l := udpListener("udp-1040", 1040, tt.from)
			l.AllowedRoutes.Namespaces.Selector = tt.selector
			w.Gateways = []*gatewayv1.Gateway{gateway("ferry-udp", "ferry-udp", 0, l)}
			w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute(tt.routeNS, "r1", []parent{tt.parent}, backendRef("echo", 7001, nil))}

			plan := resolve(w)

			if len(plan.Routes) != 1 || len(plan.Routes[0].Parents) != 1 {
				t.Fatalf("route plans = %+v, want one route with one parent", plan.Routes)
			}
			if got := plan.Routes[0].Parents[0].AcceptedReason; got != tt.wantReason {
				t.Errorf("Accepted reason = %q, want %q", got, tt.wantReason)
			}
			if got := plan.Gateways[0].Listeners[0].AttachedRoutes; got != tt.wantAttached {
				t.Errorf("attached routes = %d, want %d", got, tt.wantAttached)
			}
			gotBackends := len(plan.Listeners[1040].Backends)
			if wantBackends := int(tt.wantAttached); gotBackends != wantBackends {
				t.Errorf("listener backend groups = %d, want %d", gotBackends, wantBackends)
			}
		})
	}
}

func TestResolveIgnoresOtherClasses(t *testing.T) {
	w := baseWorld()
	w.Gateways = []*gatewayv1.Gateway{gateway("ferry", "traefik", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll))}
	w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute("space-a", "r1", []parent{{gateway: "ferry"}}, backendRef("echo", 7001, nil))}

	plan := resolve(w)

	if len(plan.Listeners) != 0 || len(plan.Gateways) != 0 || len(plan.Routes) != 0 {
		t.Errorf("plan = %+v, want nothing for a Gateway of another class", plan)
	}
}

func TestResolveListenerProblems(t *testing.T) {
	w := baseWorld()
	tcp := udpListener("tcp-1041", 1041, gatewayv1.NamespacesFromAll)
	tcp.Protocol = gatewayv1.TCPProtocolType
	wrongKind := udpListener("udp-1042", 1042, gatewayv1.NamespacesFromAll)
	wrongKind.AllowedRoutes.Kinds = []gatewayv1.RouteGroupKind{{Kind: "TCPRoute"}}
	w.Gateways = []*gatewayv1.Gateway{
		gateway("older", "ferry-udp", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll)),
		gateway("newer", "ferry-udp", 5, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll), tcp, wrongKind),
	}

	plan := resolve(w)

	if len(plan.Gateways) != 2 || plan.Gateways[0].Gateway.Name != "older" {
		t.Fatalf("gateway plans = %+v, want older then newer", plan.Gateways)
	}
	if got := plan.Gateways[0].Listeners[0].Reason; got != "" {
		t.Errorf("older gateway's listener reason = %q, want accepted", got)
	}
	wantReasons := []gatewayv1.ListenerConditionReason{
		gatewayv1.ListenerReasonProtocolConflict,
		gatewayv1.ListenerReasonUnsupportedProtocol,
		gatewayv1.ListenerReasonInvalidRouteKinds,
	}
	for i, want := range wantReasons {
		if got := plan.Gateways[1].Listeners[i].Reason; got != want {
			t.Errorf("newer gateway's listener %d reason = %q, want %q", i, got, want)
		}
	}
	if got := plan.Listeners[1040].Gateway.Name; got != "older" {
		t.Errorf("port 1040 belongs to %q, want older", got)
	}
	if len(plan.Listeners) != 1 {
		t.Errorf("listeners = %v, want only port 1040", plan.Listeners)
	}
}

func TestResolveBackendRefProblems(t *testing.T) {
	otherNS := backendRef("echo", 7001, nil)
	otherNS.Namespace = ptr(gatewayv1.Namespace("space-b"))
	wrongKind := backendRef("echo", 7001, nil)
	wrongKind.Kind = ptr(gatewayv1.Kind("ConfigMap"))
	noPort := backendRef("echo", 7001, nil)
	noPort.Port = nil

	tests := []struct {
		name string
		ref  gatewayv1.BackendRef
		want gatewayv1.RouteConditionReason
	}{
		{"missing service", backendRef("nope", 7001, nil), gatewayv1.RouteReasonBackendNotFound},
		{"missing port", backendRef("echo", 7002, nil), gatewayv1.RouteReasonBackendNotFound},
		{"other namespace", otherNS, gatewayv1.RouteReasonRefNotPermitted},
		{"wrong kind", wrongKind, gatewayv1.RouteReasonInvalidKind},
		{"no port", noPort, gatewayv1.RouteReasonUnsupportedValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := baseWorld()
			w.Gateways = []*gatewayv1.Gateway{gateway("ferry-udp", "ferry-udp", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll))}
			w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute("space-a", "r1", []parent{{gateway: "ferry-udp"}}, tt.ref)}

			plan := resolve(w)

			p := plan.Routes[0].Parents[0]
			if p.ResolvedRefsReason != tt.want {
				t.Errorf("ResolvedRefs reason = %q, want %q", p.ResolvedRefsReason, tt.want)
			}
			if p.AcceptedReason != "" {
				t.Errorf("Accepted reason = %q, want accepted", p.AcceptedReason)
			}
			if got := plan.Listeners[1040].Backends; len(got) != 0 {
				t.Errorf("backends = %v, want none", got)
			}
		})
	}
}

func TestResolveWeights(t *testing.T) {
	w := baseWorld()
	w.Services = append(w.Services, udpService("space-a", "canary", 7001))
	w.EndpointSlices = append(w.EndpointSlices, endpointSlice("space-a", "canary", "10.88.0.40"))
	w.Gateways = []*gatewayv1.Gateway{gateway("ferry-udp", "ferry-udp", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll))}
	w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute("space-a", "r1", []parent{{gateway: "ferry-udp"}},
		backendRef("echo", 7001, ptr(int32(3))), backendRef("canary", 7001, ptr(int32(1))), backendRef("echo", 7001, ptr(int32(0))))}

	plan := resolve(w)

	want := []BackendGroup{
		{Weight: 3, Endpoints: []netip.AddrPort{ep("10.88.0.20:9000")}},
		{Weight: 1, Endpoints: []netip.AddrPort{ep("10.88.0.40:9000")}},
	}
	if diff := cmp.Diff(want, plan.Listeners[1040].Backends, compareAddrPort); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
}
