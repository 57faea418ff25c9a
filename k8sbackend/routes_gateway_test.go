package k8sbackend

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

const (
	routeGUID    = "4f0a2c0e-6b1d-4a7e-9a51-0c7d2f3e8b11"
	routeSpace   = "7d5e1b32-0a8c-4f5e-b1c2-3d4e5f6a7b8c"
	routeOrg     = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	routeApp     = "c0ffee00-1111-4222-8333-444455556666"
	routeProcess = "d00dfeed-7777-4888-9999-aaaabbbbcccc"
	otherApp     = "beef0000-1111-4222-8333-444455556666"
	otherProcess = "f00d0000-7777-4888-9999-aaaabbbbcccc"
)

func testHTTPRoute() RouteSpec {
	return RouteSpec{
		GUID:      routeGUID,
		Host:      "shop",
		Domain:    "apps.example.com",
		Protocol:  RouteProtocolHTTP,
		SpaceGUID: routeSpace,
		OrgGUID:   routeOrg,
		Destinations: []RouteDestination{{
			AppGUID:     routeApp,
			ProcessGUID: routeProcess,
			ServiceName: ProcessServiceName(routeProcess),
		}},
	}
}

func testGateway() GatewayRef {
	return GatewayRef{Namespace: "ferry-system", Name: "ferry"}
}

func wantRouteLabels() map[string]string {
	return map[string]string{
		LabelManagedBy:    ManagedByFerry,
		LabelInstallation: DefaultInstallation,
		LabelComponent:    ComponentRouting,
		LabelRouteGUID:    routeGUID,
		LabelSpaceGUID:    routeSpace,
		LabelOrgGUID:      routeOrg,
	}
}

func wantGatewayParent(listener string) gatewayv1.ParentReference {
	ref := gatewayv1.ParentReference{
		Group:     ptr.To[gatewayv1.Group]("gateway.networking.k8s.io"),
		Kind:      ptr.To[gatewayv1.Kind]("Gateway"),
		Namespace: ptr.To[gatewayv1.Namespace]("ferry-system"),
		Name:      "ferry",
	}
	if listener != "" {
		ref.SectionName = ptr.To(gatewayv1.SectionName(listener))
	}
	return ref
}

func wantServiceBackend(process string, port, weight int32) gatewayv1.BackendRef {
	return gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To[gatewayv1.Group](""),
			Kind:  ptr.To[gatewayv1.Kind]("Service"),
			Name:  gatewayv1.ObjectName(ProcessServiceName(process)),
			Port:  ptr.To(gatewayv1.PortNumber(port)),
		},
		Weight: ptr.To(weight),
	}
}

func TestMakeHTTPRoute(t *testing.T) {
	got, err := MakeHTTPRoute(testHTTPRoute(), testGateway())
	if err != nil {
		t.Fatal(err)
	}
	want := &gatewayv1.HTTPRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "route-" + routeGUID,
			Namespace:   "cf-space-" + routeSpace,
			Labels:      wantRouteLabels(),
			Annotations: map[string]string{AnnotationRouteURL: "shop.apps.example.com"},
		},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{wantGatewayParent("")}},
			Hostnames:       []gatewayv1.Hostname{"shop.apps.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
					Type:  ptr.To(gatewayv1.PathMatchPathPrefix),
					Value: ptr.To("/"),
				}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: wantServiceBackend(routeProcess, AppPort, 1)}},
			}},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeHTTPRoute (-want +got):\n%s", diff)
	}
	if got.Annotations[AnnotationSpecHash] == "" {
		t.Error("HTTPRoute has no spec hash annotation")
	}
}

func TestMakeHTTPRouteVariants(t *testing.T) {
	tests := []struct {
		name          string
		change        func(*RouteSpec, *GatewayRef)
		wantHostname  gatewayv1.Hostname
		wantPath      string
		wantParents   []gatewayv1.ParentReference
		wantBackends  []gatewayv1.BackendRef
		wantRouteURL  string
		wantNamespace string
	}{{
		name:         "domain without host",
		change:       func(r *RouteSpec, _ *GatewayRef) { r.Host = "" },
		wantHostname: "apps.example.com",
		wantPath:     "/",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
		wantRouteURL: "apps.example.com",
	}, {
		name:         "wildcard host",
		change:       func(r *RouteSpec, _ *GatewayRef) { r.Host = WildcardHost },
		wantHostname: "*.apps.example.com",
		wantPath:     "/",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
		wantRouteURL: "*.apps.example.com",
	}, {
		name:         "path matches its prefix",
		change:       func(r *RouteSpec, _ *GatewayRef) { r.Path = "/cart" },
		wantHostname: "shop.apps.example.com",
		wantPath:     "/cart",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
		wantRouteURL: "shop.apps.example.com/cart",
	}, {
		name: "upper-case host lowered",
		change: func(r *RouteSpec, _ *GatewayRef) {
			r.Host = "Shop"
			r.Domain = "Apps.Example.com"
		},
		wantHostname: "shop.apps.example.com",
		wantPath:     "/",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
		wantRouteURL: "Shop.Apps.Example.com",
	}, {
		name: "weighted destinations and ports",
		change: func(r *RouteSpec, _ *GatewayRef) {
			r.Destinations[0].Weight = 3
			r.Destinations = append(r.Destinations, RouteDestination{
				AppGUID: otherApp, ProcessGUID: otherProcess, ServiceName: ProcessServiceName(otherProcess), Port: 9000, Weight: 1,
			})
		},
		wantHostname: "shop.apps.example.com",
		wantPath:     "/",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: []gatewayv1.BackendRef{
			wantServiceBackend(routeProcess, AppPort, 3),
			wantServiceBackend(otherProcess, 9000, 1),
		},
		wantRouteURL: "shop.apps.example.com",
	}, {
		name:         "no destinations",
		change:       func(r *RouteSpec, _ *GatewayRef) { r.Destinations = nil },
		wantHostname: "shop.apps.example.com",
		wantPath:     "/",
		wantParents:  []gatewayv1.ParentReference{wantGatewayParent("")},
		wantBackends: nil,
		wantRouteURL: "shop.apps.example.com",
	}, {
		name: "named listeners",
		change: func(_ *RouteSpec, g *GatewayRef) {
			g.HTTPListeners = []string{"http", HTTPSListenerName("apps.example.com")}
		},
		wantHostname: "shop.apps.example.com",
		wantPath:     "/",
		wantParents: []gatewayv1.ParentReference{
			wantGatewayParent("http"),
			wantGatewayParent("https-apps.example.com"),
		},
		wantBackends: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
		wantRouteURL: "shop.apps.example.com",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, gw := testHTTPRoute(), testGateway()
			tt.change(&route, &gw)
			got, err := MakeHTTPRoute(route, gw)
			if err != nil {
				t.Fatal(err)
			}

			if diff := cmp.Diff([]gatewayv1.Hostname{tt.wantHostname}, got.Spec.Hostnames); diff != "" {
				t.Errorf("hostnames (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantParents, got.Spec.ParentRefs); diff != "" {
				t.Errorf("parentRefs (-want +got):\n%s", diff)
			}
			if got.Annotations[AnnotationRouteURL] != tt.wantRouteURL {
				t.Errorf("route URL annotation = %q, want %q", got.Annotations[AnnotationRouteURL], tt.wantRouteURL)
			}
			if len(got.Spec.Rules) != 1 {
				t.Fatalf("got %d rules, want 1", len(got.Spec.Rules))
			}
			rule := got.Spec.Rules[0]
			wantMatches := []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
				Type:  ptr.To(gatewayv1.PathMatchPathPrefix),
				Value: ptr.To(tt.wantPath),
			}}}
			if diff := cmp.Diff(wantMatches, rule.Matches); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
			var backends []gatewayv1.BackendRef
			for _, b := range rule.BackendRefs {
				backends = append(backends, b.BackendRef)
			}
			if diff := cmp.Diff(tt.wantBackends, backends); diff != "" {
				t.Errorf("backendRefs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeHTTPRouteRejectsOtherRoutes(t *testing.T) {
	tests := map[string]func(*RouteSpec){
		"tcp":      func(r *RouteSpec) { r.Protocol = RouteProtocolTCP },
		"udp":      func(r *RouteSpec) { r.Protocol = RouteProtocolUDP },
		"internal": func(r *RouteSpec) { r.Internal = true },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			route := testHTTPRoute()
			change(&route)
			if _, err := MakeHTTPRoute(route, testGateway()); !errors.Is(err, ErrUnsupportedRoute) {
				t.Errorf("MakeHTTPRoute error = %v, want ErrUnsupportedRoute", err)
			}
		})
	}
}

func TestRouteSpecHashFollowsSpec(t *testing.T) {
	route, gw := testHTTPRoute(), testGateway()
	base, _ := MakeHTTPRoute(route, gw)
	again, _ := MakeHTTPRoute(route, gw)
	if again.Annotations[AnnotationSpecHash] != base.Annotations[AnnotationSpecHash] {
		t.Errorf("spec hash changed between equal inputs")
	}
	weighted := testHTTPRoute()
	weighted.Destinations[0].Weight = 5
	moved := testHTTPRoute()
	moved.Path = "/new"
	for name, route := range map[string]RouteSpec{"weight": weighted, "path": moved} {
		got, _ := MakeHTTPRoute(route, gw)
		if got.Annotations[AnnotationSpecHash] == base.Annotations[AnnotationSpecHash] {
			t.Errorf("spec hash did not change with the %s", name)
		}
	}
}

func testTCPRoute(protocol string) RouteSpec {
	route := testHTTPRoute()
	route.Host = ""
	route.Domain = "tcp.example.com"
	route.Protocol = protocol
	route.Port = 1024
	return route
}

func TestMakeTCPRoute(t *testing.T) {
	got, err := MakeTCPRoute(testTCPRoute(RouteProtocolTCP), testGateway())
	if err != nil {
		t.Fatal(err)
	}
	want := &gatewayv1alpha2.TCPRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1alpha2", Kind: "TCPRoute"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "route-" + routeGUID,
			Namespace:   "cf-space-" + routeSpace,
			Labels:      wantRouteLabels(),
			Annotations: map[string]string{AnnotationRouteURL: "tcp.example.com:1024"},
		},
		Spec: gatewayv1alpha2.TCPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{wantGatewayParent("tcp-1024")}},
			Rules: []gatewayv1alpha2.TCPRouteRule{{
				BackendRefs: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
			}},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeTCPRoute (-want +got):\n%s", diff)
	}
	if _, err := MakeTCPRoute(testHTTPRoute(), testGateway()); !errors.Is(err, ErrUnsupportedRoute) {
		t.Errorf("MakeTCPRoute of an HTTP route error = %v, want ErrUnsupportedRoute", err)
	}
}

func TestMakeUDPRoute(t *testing.T) {
	got, err := MakeUDPRoute(testTCPRoute(RouteProtocolUDP), testGateway())
	if err != nil {
		t.Fatal(err)
	}
	want := &gatewayv1alpha2.UDPRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1alpha2", Kind: "UDPRoute"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "route-" + routeGUID,
			Namespace:   "cf-space-" + routeSpace,
			Labels:      wantRouteLabels(),
			Annotations: map[string]string{AnnotationRouteURL: "tcp.example.com:1024"},
		},
		Spec: gatewayv1alpha2.UDPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{wantGatewayParent("udp-1024")}},
			Rules: []gatewayv1alpha2.UDPRouteRule{{
				BackendRefs: []gatewayv1.BackendRef{wantServiceBackend(routeProcess, AppPort, 1)},
			}},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeUDPRoute (-want +got):\n%s", diff)
	}
	if _, err := MakeUDPRoute(testTCPRoute(RouteProtocolTCP), testGateway()); !errors.Is(err, ErrUnsupportedRoute) {
		t.Errorf("MakeUDPRoute of a TCP route error = %v, want ErrUnsupportedRoute", err)
	}
}

func wantSpaceRoutes(kind gatewayv1.Kind) *gatewayv1.AllowedRoutes {
	return &gatewayv1.AllowedRoutes{
		Namespaces: &gatewayv1.RouteNamespaces{
			From: ptr.To(gatewayv1.NamespacesFromSelector),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
				LabelManagedBy:    ManagedByFerry,
				LabelInstallation: DefaultInstallation,
				LabelComponent:    ComponentSpace,
			}},
		},
		Kinds: []gatewayv1.RouteGroupKind{{Group: ptr.To[gatewayv1.Group]("gateway.networking.k8s.io"), Kind: kind}},
	}
}

func TestMakePortListener(t *testing.T) {
	tests := []struct {
		protocol string
		want     gatewayv1.Listener
	}{{
		protocol: RouteProtocolTCP,
		want:     gatewayv1.Listener{Name: "tcp-1024", Port: 1024, Protocol: gatewayv1.TCPProtocolType, AllowedRoutes: wantSpaceRoutes("TCPRoute")},
	}, {
		protocol: RouteProtocolUDP,
		want:     gatewayv1.Listener{Name: "udp-1024", Port: 1024, Protocol: gatewayv1.UDPProtocolType, AllowedRoutes: wantSpaceRoutes("UDPRoute")},
	}}
	for _, tt := range tests {
		t.Run(tt.protocol, func(t *testing.T) {
			got, err := MakePortListener(testTCPRoute(tt.protocol))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MakePortListener (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakePortListenerRejects(t *testing.T) {
	outOfRange := testTCPRoute(RouteProtocolTCP)
	outOfRange.Port = 70000
	noPort := testTCPRoute(RouteProtocolUDP)
	noPort.Port = 0
	for name, route := range map[string]RouteSpec{"http route": testHTTPRoute(), "port 70000": outOfRange, "port 0": noPort} {
		if _, err := MakePortListener(route); !errors.Is(err, ErrUnsupportedRoute) {
			t.Errorf("MakePortListener of %s error = %v, want ErrUnsupportedRoute", name, err)
		}
	}
}

func wantSecretRef(namespace string) gatewayv1.SecretObjectReference {
	ref := gatewayv1.SecretObjectReference{
		Group: ptr.To[gatewayv1.Group](""),
		Kind:  ptr.To[gatewayv1.Kind]("Secret"),
		Name:  "cert-apps",
	}
	if namespace != "" {
		ref.Namespace = ptr.To(gatewayv1.Namespace(namespace))
	}
	return ref
}

func TestMakeHTTPSListeners(t *testing.T) {
	tests := []struct {
		name    string
		tls     DomainTLS
		gw      GatewayRef
		wantRef gatewayv1.SecretObjectReference
		port    gatewayv1.PortNumber
	}{{
		name:    "secret beside gateway",
		tls:     DomainTLS{Domain: "Apps.Example.com", SecretName: "cert-apps", SecretNamespace: "ferry-system"},
		gw:      testGateway(),
		wantRef: wantSecretRef(""),
		port:    443,
	}, {
		name:    "secret namespace unset",
		tls:     DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps"},
		gw:      GatewayRef{Namespace: "ferry-system", Name: "ferry", HTTPSPort: 8443},
		wantRef: wantSecretRef(""),
		port:    8443,
	}, {
		name:    "secret elsewhere",
		tls:     DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: "ferry-certificates"},
		gw:      testGateway(),
		wantRef: wantSecretRef("ferry-certificates"),
		port:    443,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listener := func(name, hostname string) gatewayv1.Listener {
				return gatewayv1.Listener{
					Name:     gatewayv1.SectionName(name),
					Hostname: ptr.To(gatewayv1.Hostname(hostname)),
					Port:     tt.port,
					Protocol: gatewayv1.HTTPSProtocolType,
					TLS: &gatewayv1.ListenerTLSConfig{
						Mode:            ptr.To(gatewayv1.TLSModeTerminate),
						CertificateRefs: []gatewayv1.SecretObjectReference{tt.wantRef},
					},
					AllowedRoutes: wantSpaceRoutes("HTTPRoute"),
				}
			}
			want := []gatewayv1.Listener{
				listener("https-apps.example.com", "*.apps.example.com"),
				listener("https-apps.example.com-apex", "apps.example.com"),
			}
			got := MakeHTTPSListeners(tt.tls, tt.gw, "")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("MakeHTTPSListeners (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPSListenerNameOfLongDomain(t *testing.T) {
	long := ""
	for len(long) < 250 {
		long += "abcdefghi."
	}
	long += "com"
	name := HTTPSListenerName(long)
	if len(name+"-apex") > maxSectionName {
		t.Errorf("listener name %q has %d characters with -apex, want at most %d", name, len(name+"-apex"), maxSectionName)
	}
	if name == HTTPSListenerName("x"+long) {
		t.Errorf("two long domains share listener name %q", name)
	}
}

func TestMakeReferenceGrant(t *testing.T) {
	gw := testGateway()
	for _, ns := range []string{"", "ferry-system"} {
		if got := MakeReferenceGrant(DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: ns}, gw, ""); got != nil {
			t.Errorf("grant for a Secret in namespace %q = %v, want nil", ns, got)
		}
	}

	got := MakeReferenceGrant(DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: "ferry-certificates"}, gw, "blue")
	want := &gatewayv1beta1.ReferenceGrant{
		TypeMeta: metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1beta1", Kind: "ReferenceGrant"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      ReferenceGrantName(gw, "cert-apps"),
			Namespace: "ferry-certificates",
			Labels: map[string]string{
				LabelManagedBy:    ManagedByFerry,
				LabelInstallation: "blue",
				LabelComponent:    ComponentRouting,
			},
			Annotations: map[string]string{},
		},
		Spec: gatewayv1beta1.ReferenceGrantSpec{
			From: []gatewayv1beta1.ReferenceGrantFrom{{Group: "gateway.networking.k8s.io", Kind: "Gateway", Namespace: "ferry-system"}},
			To:   []gatewayv1beta1.ReferenceGrantTo{{Group: "", Kind: "Secret", Name: ptr.To[gatewayv1.ObjectName]("cert-apps")}},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeReferenceGrant (-want +got):\n%s", diff)
	}
	if other := ReferenceGrantName(GatewayRef{Namespace: "org-a", Name: "ferry"}, "cert-apps"); other == got.Name {
		t.Errorf("grants of two Gateways share name %q", other)
	}
}
