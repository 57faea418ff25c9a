package k8sbackend

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func wantIngressRule(host, path string, port int32) networkingv1.IngressRule {
	return networkingv1.IngressRule{
		Host: host,
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
			Path:     path,
			PathType: ptr.To(networkingv1.PathTypePrefix),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: ProcessServiceName(routeProcess),
				Port: networkingv1.ServiceBackendPort{Number: port},
			}},
		}}}},
	}
}

func TestMakeIngress(t *testing.T) {
	got, err := MakeIngress(testHTTPRoute(), IngressConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &networkingv1.Ingress{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "route-" + routeGUID,
			Namespace:   "cf-space-" + routeSpace,
			Labels:      wantRouteLabels(),
			Annotations: map[string]string{AnnotationRouteURL: "shop.apps.example.com"},
		},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{wantIngressRule("shop.apps.example.com", "/", AppPort)}},
	}
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeIngress (-want +got):\n%s", diff)
	}
	if got.Annotations[AnnotationSpecHash] == "" {
		t.Error("Ingress has no spec hash annotation")
	}
}

func TestMakeIngressVariants(t *testing.T) {
	secretInSpace := &DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: SpaceNamespace(routeSpace)}
	tests := []struct {
		name   string
		change func(*RouteSpec)
		cfg    IngressConfig
		tls    *DomainTLS
		want   networkingv1.IngressSpec
	}{{
		name:   "wildcard host and path",
		change: func(r *RouteSpec) { r.Host, r.Path = WildcardHost, "/api" },
		want:   networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{wantIngressRule("*.apps.example.com", "/api", AppPort)}},
	}, {
		name:   "class and port",
		change: func(r *RouteSpec) { r.Destinations[0].Port = 9000 },
		cfg:    IngressConfig{ClassName: "nginx"},
		want: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules:            []networkingv1.IngressRule{wantIngressRule("shop.apps.example.com", "/", 9000)},
		},
	}, {
		name:   "tls",
		change: func(r *RouteSpec) { r.Host = "Shop" },
		tls:    secretInSpace,
		want: networkingv1.IngressSpec{
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"shop.apps.example.com"}, SecretName: "cert-apps"}},
			Rules: []networkingv1.IngressRule{wantIngressRule("shop.apps.example.com", "/", AppPort)},
		},
	}, {
		name:   "tls secret namespace unset",
		change: func(*RouteSpec) {},
		tls:    &DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps"},
		want: networkingv1.IngressSpec{
			TLS:   []networkingv1.IngressTLS{{Hosts: []string{"shop.apps.example.com"}, SecretName: "cert-apps"}},
			Rules: []networkingv1.IngressRule{wantIngressRule("shop.apps.example.com", "/", AppPort)},
		},
	}, {
		name:   "no destinations",
		change: func(r *RouteSpec) { r.Destinations = nil },
		want:   networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "shop.apps.example.com"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := testHTTPRoute()
			tt.change(&route)
			got, err := MakeIngress(route, tt.cfg, tt.tls)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Spec); diff != "" {
				t.Errorf("Ingress spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeIngressRejects(t *testing.T) {
	twoDestinations := testHTTPRoute()
	twoDestinations.Destinations = append(twoDestinations.Destinations, RouteDestination{
		AppGUID: otherApp, ProcessGUID: otherProcess, ServiceName: ProcessServiceName(otherProcess),
	})
	internal := testHTTPRoute()
	internal.Internal = true
	tests := []struct {
		name  string
		route RouteSpec
		tls   *DomainTLS
	}{
		{name: "two destinations", route: twoDestinations},
		{name: "tcp route", route: testTCPRoute(RouteProtocolTCP)},
		{name: "internal route", route: internal},
		{name: "secret in another namespace", route: testHTTPRoute(), tls: &DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: "ferry-system"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := MakeIngress(tt.route, IngressConfig{}, tt.tls); !errors.Is(err, ErrUnsupportedRoute) {
				t.Errorf("MakeIngress error = %v, want ErrUnsupportedRoute", err)
			}
		})
	}
}
