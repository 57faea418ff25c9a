package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/k8sbackend/k8stest"
)

// startRoutingAPIServer starts a private kube-apiserver for one test. It
// skips like startAPIServer.
func startRoutingAPIServer(t *testing.T) *k8stest.Server {
	t.Helper()
	srv, err := k8stest.Start()
	if errors.Is(err, k8stest.ErrBinariesNotFound) && os.Getenv("FERRY_K8STEST_OPTIONAL") == "1" {
		t.Skipf("kube-apiserver not available and FERRY_K8STEST_OPTIONAL=1: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	t.Logf("kube-apiserver ready in %s", srv.StartupDuration().Round(time.Millisecond))
	return srv
}

// startGatewayAPIServer starts a private kube-apiserver with the Gateway
// API CRDs of the local environment installed, which
// hack/build/gateway-crds.sh collects from the sigs.k8s.io/gateway-api
// module.
func startGatewayAPIServer(t *testing.T) (kubernetes.Interface, gatewayclient.Interface) {
	t.Helper()
	srv := startRoutingAPIServer(t)
	if err := srv.InstallGatewayCRDs(); err != nil {
		t.Fatalf("install Gateway API CRDs: %v", err)
	}
	gateways, err := gatewayclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatalf("create Gateway API client: %v", err)
	}
	return srv.Clientset(), gateways
}

func createNamespaces(t *testing.T, client kubernetes.Interface, names ...string) {
	t.Helper()
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace %s: %v", name, err)
		}
	}
}

// routeVariants are routes that cover each shape the translation makes,
// each with its own GUID so their objects can live side by side.
func routeVariants() map[string]RouteSpec {
	variants := map[string]func(*RouteSpec){
		"host":            func(*RouteSpec) {},
		"domain only":     func(r *RouteSpec) { r.Host = "" },
		"wildcard host":   func(r *RouteSpec) { r.Host = WildcardHost },
		"path":            func(r *RouteSpec) { r.Path = "/cart/items" },
		"no destinations": func(r *RouteSpec) { r.Destinations = nil },
		"weighted destinations": func(r *RouteSpec) {
			r.Destinations[0].Weight = 9
			r.Destinations = append(r.Destinations, RouteDestination{
				AppGUID: otherApp, ProcessGUID: otherProcess, ServiceName: ProcessServiceName(otherProcess), Port: 9000, Weight: 1,
			})
		},
	}
	routes := map[string]RouteSpec{}
	i := 0
	for name, change := range variants {
		route := testHTTPRoute()
		route.GUID = fmt.Sprintf("4f0a2c0e-6b1d-4a7e-9a51-0c7d2f3e8b%02d", i)
		change(&route)
		routes[name] = route
		i++
	}
	return routes
}

// TestRoutingObjectsOnAPIServer creates every kind and variant of routing
// object on a real API server, so the CRDs' OpenAPI schemas and CEL rules
// and Kubernetes' own validation accept them. It also reads each back and
// compares its spec, because the reconciler compares the spec it writes
// with the spec it reads, and server-side defaults would make them differ.
func TestRoutingObjectsOnAPIServer(t *testing.T) {
	client, gateways := startGatewayAPIServer(t)
	ctx := context.Background()
	const certNamespace = "ferry-certificates"
	spaceNamespace := SpaceNamespace(routeSpace)
	createNamespaces(t, client, "ferry-system", certNamespace, spaceNamespace, DefaultInternalRouteNamespace)
	create := metav1.CreateOptions{FieldManager: "ferry-test"}

	gw := GatewayRef{Namespace: "ferry-system", Name: "ferry", HTTPListeners: []string{"http"}, HTTPSPort: 8443}
	t.Run("Gateway with Ferry's listeners", func(t *testing.T) {
		tcpListener, err := MakePortListener(testTCPRoute(RouteProtocolTCP))
		if err != nil {
			t.Fatal(err)
		}
		udpListener, err := MakePortListener(testTCPRoute(RouteProtocolUDP))
		if err != nil {
			t.Fatal(err)
		}
		listeners := []gatewayv1.Listener{{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType}}
		listeners = append(listeners, MakeHTTPSListeners(DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: certNamespace}, gw, "")...)
		listeners = append(listeners, MakeHTTPSListeners(DomainTLS{Domain: "shop.example.org", SecretName: "cert-shop"}, gw, "")...)
		listeners = append(listeners, tcpListener, udpListener)
		gateway := &gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: gw.Name, Namespace: gw.Namespace},
			Spec:       gatewayv1.GatewaySpec{GatewayClassName: "ferry", Listeners: listeners},
		}
		got, err := gateways.GatewayV1().Gateways(gw.Namespace).Create(ctx, gateway, create)
		if err != nil {
			t.Fatalf("create Gateway: %v", err)
		}
		if diff := cmp.Diff(listeners[1:], got.Spec.Listeners[1:]); diff != "" {
			t.Errorf("Ferry's listeners read back (-want +got):\n%s", diff)
		}
	})

	t.Run("ReferenceGrant", func(t *testing.T) {
		grant := MakeReferenceGrant(DomainTLS{Domain: "apps.example.com", SecretName: "cert-apps", SecretNamespace: certNamespace}, gw, "")
		got, err := gateways.GatewayV1beta1().ReferenceGrants(certNamespace).Create(ctx, grant, create)
		if err != nil {
			t.Fatalf("create ReferenceGrant: %v", err)
		}
		if diff := cmp.Diff(grant.Spec, got.Spec); diff != "" {
			t.Errorf("spec read back (-want +got):\n%s", diff)
		}
	})

	for name, route := range routeVariants() {
		t.Run("HTTPRoute "+name, func(t *testing.T) {
			hr, err := MakeHTTPRoute(route, gw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gateways.GatewayV1().HTTPRoutes(spaceNamespace).Create(ctx, hr, create)
			if err != nil {
				t.Fatalf("create HTTPRoute: %v", err)
			}
			if diff := cmp.Diff(hr.Spec, got.Spec); diff != "" {
				t.Errorf("spec read back (-want +got):\n%s", diff)
			}
		})
	}

	for name, route := range routeVariants() {
		if len(route.Destinations) > 1 {
			continue
		}
		t.Run("Ingress "+name, func(t *testing.T) {
			tls := &DomainTLS{Domain: route.Domain, SecretName: "cert-apps", SecretNamespace: spaceNamespace}
			ing, err := MakeIngress(route, IngressConfig{ClassName: "ferry"}, tls)
			if err != nil {
				t.Fatal(err)
			}
			got, err := client.NetworkingV1().Ingresses(spaceNamespace).Create(ctx, ing, create)
			if err != nil {
				t.Fatalf("create Ingress: %v", err)
			}
			if diff := cmp.Diff(ing.Spec, got.Spec); diff != "" {
				t.Errorf("spec read back (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("TCPRoute", func(t *testing.T) {
		route := testTCPRoute(RouteProtocolTCP)
		route.Destinations[0].Weight = 2
		tr, err := MakeTCPRoute(route, gw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gateways.GatewayV1alpha2().TCPRoutes(spaceNamespace).Create(ctx, tr, create)
		if err != nil {
			t.Fatalf("create TCPRoute: %v", err)
		}
		if diff := cmp.Diff(tr.Spec, got.Spec); diff != "" {
			t.Errorf("spec read back (-want +got):\n%s", diff)
		}
	})

	t.Run("UDPRoute", func(t *testing.T) {
		route := testTCPRoute(RouteProtocolUDP)
		route.GUID = "4f0a2c0e-6b1d-4a7e-9a51-0c7d2f3e8bff"
		ur, err := MakeUDPRoute(route, gw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := gateways.GatewayV1alpha2().UDPRoutes(spaceNamespace).Create(ctx, ur, create)
		if err != nil {
			t.Fatalf("create UDPRoute: %v", err)
		}
		if diff := cmp.Diff(ur.Spec, got.Spec); diff != "" {
			t.Errorf("spec read back (-want +got):\n%s", diff)
		}
	})

	t.Run("internal route Service and EndpointSlice", func(t *testing.T) {
		route := testInternalRoute()
		route.Host = "9-backend"
		svc, err := MakeInternalRouteService(route, InternalRouteConfig{})
		if err != nil {
			t.Fatal(err)
		}
		gotService, err := client.CoreV1().Services(DefaultInternalRouteNamespace).Create(ctx, svc, create)
		if err != nil {
			t.Fatalf("create Service: %v", err)
		}
		if gotService.Spec.ClusterIP != corev1.ClusterIPNone || len(gotService.Spec.Selector) != 0 {
			t.Errorf("Service has cluster IP %q and selector %v, want headless without selector", gotService.Spec.ClusterIP, gotService.Spec.Selector)
		}

		source := []discoveryv1.EndpointSlice{{
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{"10.88.0.20"},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: spaceNamespace, Name: InstancePodName(routeProcess, 0)},
				NodeName:   ptr.To("node"),
			}},
		}}
		slice, err := MakeInternalRouteEndpointSlice(route, InternalRouteConfig{}, route.Destinations[0], source)
		if err != nil {
			t.Fatal(err)
		}
		gotSlice, err := client.DiscoveryV1().EndpointSlices(DefaultInternalRouteNamespace).Create(ctx, slice, create)
		if err != nil {
			t.Fatalf("create EndpointSlice: %v", err)
		}
		if diff := cmp.Diff(slice.Endpoints, gotSlice.Endpoints); diff != "" {
			t.Errorf("endpoints read back (-want +got):\n%s", diff)
		}
	})
}
