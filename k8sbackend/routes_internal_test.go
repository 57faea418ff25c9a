package k8sbackend

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func testInternalRoute() RouteSpec {
	route := testHTTPRoute()
	route.Host = "backend"
	route.Domain = "apps.internal"
	route.Internal = true
	return route
}

func TestInternalRouteServiceName(t *testing.T) {
	domainHash := shortHash("apps.internal")
	tests := []struct {
		host    string
		want    string
		wantErr bool
	}{
		{host: "backend", want: "i-backend-" + domainHash},
		{host: "Backend", want: "i-backend-" + domainHash},
		{host: "9lives", want: "i-9lives-" + domainHash},
		{host: strings.Repeat("a", 52), want: "i-" + strings.Repeat("a", 52) + "-" + domainHash},
		{host: strings.Repeat("a", 53), wantErr: true},
		{host: "back_end", wantErr: true},
		{host: "-backend", wantErr: true},
		{host: "", wantErr: true},
		{host: WildcardHost, wantErr: true},
	}
	for _, tt := range tests {
		got, err := InternalRouteServiceName(tt.host, "apps.internal")
		if tt.wantErr {
			if !errors.Is(err, ErrUnsupportedRoute) {
				t.Errorf("InternalRouteServiceName(%q) = %q, %v; want ErrUnsupportedRoute", tt.host, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("InternalRouteServiceName(%q) = %q, %v; want %q", tt.host, got, err, tt.want)
		}
	}

	a, _ := InternalRouteServiceName("backend", "apps.internal")
	b, _ := InternalRouteServiceName("backend", "other.internal")
	if a == b {
		t.Errorf("one host on two internal domains shares Service name %q", a)
	}
}

func TestMakeInternalRouteService(t *testing.T) {
	got, err := MakeInternalRouteService(testInternalRoute(), InternalRouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "i-backend-" + shortHash("apps.internal"),
			Namespace:   DefaultInternalRouteNamespace,
			Labels:      wantRouteLabels(),
			Annotations: map[string]string{AnnotationRouteURL: "backend.apps.internal"},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeInternalRouteService (-want +got):\n%s", diff)
	}

	inNamespace, err := MakeInternalRouteService(testInternalRoute(), InternalRouteConfig{Namespace: "internal"})
	if err != nil || inNamespace.Namespace != "internal" {
		t.Errorf("Service with configured namespace = %v, %v; want namespace internal", inNamespace, err)
	}
}

func TestMakeInternalRouteServiceRejects(t *testing.T) {
	tests := map[string]func(*RouteSpec){
		"external route": func(r *RouteSpec) { r.Internal = false },
		"tcp route":      func(r *RouteSpec) { r.Protocol = RouteProtocolTCP },
		"path":           func(r *RouteSpec) { r.Path = "/api" },
		"wildcard host":  func(r *RouteSpec) { r.Host = WildcardHost },
		"no host":        func(r *RouteSpec) { r.Host = "" },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			route := testInternalRoute()
			change(&route)
			if _, err := MakeInternalRouteService(route, InternalRouteConfig{}); !errors.Is(err, ErrUnsupportedRoute) {
				t.Errorf("MakeInternalRouteService error = %v, want ErrUnsupportedRoute", err)
			}
		})
	}
}

func TestMakeInternalRouteEndpointSlice(t *testing.T) {
	route := testInternalRoute()
	destination := route.Destinations[0]
	pod := func(name string) *corev1.ObjectReference {
		return &corev1.ObjectReference{Kind: "Pod", Namespace: SpaceNamespace(routeSpace), Name: name}
	}
	source := []discoveryv1.EndpointSlice{{
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.88.0.12"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, TargetRef: pod("proc-1"), NodeName: ptr.To("node")},
			{Addresses: []string{"10.88.0.11"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}, TargetRef: pod("proc-0")},
		},
	}, {
		AddressType: discoveryv1.AddressTypeIPv6,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}},
	}}

	got, err := MakeInternalRouteEndpointSlice(route, InternalRouteConfig{}, destination, source)
	if err != nil {
		t.Fatal(err)
	}
	serviceName := "i-backend-" + shortHash("apps.internal")
	labels := wantRouteLabels()
	labels[LabelAppGUID] = routeApp
	labels[LabelProcessGUID] = routeProcess
	labels["kubernetes.io/service-name"] = serviceName
	labels["endpointslice.kubernetes.io/managed-by"] = "ferry.cloudfoundry.org"
	want := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        serviceName + "-" + shortHash(routeProcess),
			Namespace:   DefaultInternalRouteNamespace,
			Labels:      labels,
			Annotations: map[string]string{AnnotationRouteURL: "backend.apps.internal"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.88.0.11"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}, TargetRef: pod("proc-0")},
			{Addresses: []string{"10.88.0.12"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, TargetRef: pod("proc-1"), NodeName: ptr.To("node")},
		},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeInternalRouteEndpointSlice (-want +got):\n%s", diff)
	}

	empty, err := MakeInternalRouteEndpointSlice(route, InternalRouteConfig{}, destination, nil)
	if err != nil {
		t.Fatal(err)
	}
	if empty.Endpoints == nil || len(empty.Endpoints) != 0 {
		t.Errorf("slice without source endpoints has endpoints %#v, want an empty list", empty.Endpoints)
	}
	if empty.Annotations[AnnotationSpecHash] == got.Annotations[AnnotationSpecHash] {
		t.Error("spec hash did not change with the endpoints")
	}

	stranger := RouteDestination{AppGUID: otherApp, ProcessGUID: otherProcess, ServiceName: ProcessServiceName(otherProcess)}
	if _, err := MakeInternalRouteEndpointSlice(route, InternalRouteConfig{}, stranger, source); !errors.Is(err, ErrUnsupportedRoute) {
		t.Errorf("slice for a process outside the route error = %v, want ErrUnsupportedRoute", err)
	}
}

func TestRenderCoreDNSRewrites(t *testing.T) {
	got, err := RenderCoreDNSRewrites([]string{"apps.internal", "Apps.Internal.", "svc.example.internal"}, InternalRouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := `rewrite stop name regex ^([a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?)\.apps\.internal\.$ i-{1}-` + shortHash("apps.internal") +
		`.ferry-internal-routes.svc.cluster.local. answer auto
rewrite stop name regex ^([a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?)\.svc\.example\.internal\.$ i-{1}-` + shortHash("svc.example.internal") +
		`.ferry-internal-routes.svc.cluster.local. answer auto
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RenderCoreDNSRewrites (-want +got):\n%s", diff)
	}

	if _, err := RenderCoreDNSRewrites([]string{"apps internal"}, InternalRouteConfig{}); err == nil {
		t.Error("RenderCoreDNSRewrites accepted the domain \"apps internal\"")
	}
}

// TestCoreDNSRewriteFindsService applies the rendered rule as CoreDNS's
// regex rewrite does (Go regexp, {1} replaced by the first group) and
// checks that it yields the Service name InternalRouteServiceName derives.
func TestCoreDNSRewriteFindsService(t *testing.T) {
	cfg := InternalRouteConfig{Namespace: "internal", ClusterDomain: "cluster.example."}
	rules, err := RenderCoreDNSRewrites([]string{"apps.internal"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(rules)
	if len(fields) != 8 {
		t.Fatalf("rule %q has %d fields, want 8", rules, len(fields))
	}
	pattern := regexp.MustCompile(fields[4])
	rewrite := func(query string) (string, bool) {
		m := pattern.FindStringSubmatch(query)
		if m == nil {
			return "", false
		}
		return strings.ReplaceAll(fields[5], "{1}", m[1]), true
	}

	for _, host := range []string{"backend", "9lives", "a", strings.Repeat("b", 52)} {
		name, err := InternalRouteServiceName(host, "apps.internal")
		if err != nil {
			t.Fatal(err)
		}
		got, ok := rewrite(host + ".apps.internal.")
		if want := name + ".internal.svc.cluster.example."; !ok || got != want {
			t.Errorf("rewrite of %s.apps.internal. = %q, %t; want %q", host, got, ok, want)
		}
	}
	for _, query := range []string{
		"apps.internal.",
		"a.b.apps.internal.",
		strings.Repeat("b", 53) + ".apps.internal.",
		"backend.apps.internal.example.",
		"backend-.apps.internal.",
	} {
		if got, ok := rewrite(query); ok {
			t.Errorf("query %s rewritten to %q, want no match", query, got)
		}
	}
}
