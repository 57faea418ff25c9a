package k8sbackend

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const gatewayOrg = "0a0a0a0a-0000-4000-8000-0000000000f1"

func TestGatewayObjectNames(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"org gateway", OrgGatewayName(gatewayOrg), "ferry-org-" + gatewayOrg},
		{"default installation manager", ListenerFieldManager(""), "ferry-ferry"},
		{"named installation manager", ListenerFieldManager("e2e"), "ferry-e2e"},
		{"acme secret", ACMESecretName("shop.example.org"), "acme-" + shortHash("shop.example.org")},
		{"acme secret ignores case", ACMESecretName("Shop.Example.ORG"), ACMESecretName("shop.example.org")},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestMakeCertManagerCertificate(t *testing.T) {
	cert := MakeCertManagerCertificate("Shop.Example.org", "letsencrypt", "ferry-system", "e2e")

	if cert.GetAPIVersion() != "cert-manager.io/v1" || cert.GetKind() != "Certificate" {
		t.Errorf("type = %s %s, want cert-manager.io/v1 Certificate", cert.GetAPIVersion(), cert.GetKind())
	}
	if cert.GetName() != ACMESecretName("shop.example.org") || cert.GetNamespace() != "ferry-system" {
		t.Errorf("object = %s/%s, want ferry-system/%s", cert.GetNamespace(), cert.GetName(), ACMESecretName("shop.example.org"))
	}
	wantLabels := map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: "e2e", LabelComponent: ComponentGateway}
	if diff := cmp.Diff(wantLabels, cert.GetLabels()); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if cert.GetAnnotations()[AnnotationSpecHash] == "" {
		t.Error("spec hash annotation missing")
	}
	wantSpec := map[string]any{
		"secretName": ACMESecretName("shop.example.org"),
		"dnsNames":   []any{"shop.example.org", "*.shop.example.org"},
		"issuerRef":  map[string]any{"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
	}
	if diff := cmp.Diff(wantSpec, cert.Object["spec"]); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func listenerNames(listeners []gatewayv1.Listener) []string {
	var names []string
	for _, l := range listeners {
		names = append(names, string(l.Name))
	}
	return names
}

func portRoute(protocol string, port int32) RouteSpec {
	return RouteSpec{GUID: fmt.Sprintf("%s-%d", protocol, port), Domain: "tcp.example.com", Protocol: protocol, Port: port,
		SpaceGUID: routeSpace, OrgGUID: routeOrg}
}

func TestMakeManagedListeners(t *testing.T) {
	gw := GatewayRef{Namespace: "ferry-system", Name: "ferry", HTTPSPort: 8443}
	shop := DomainTLS{Domain: "shop.example.org", SecretName: TLSSecretName(testCertificateGUID)}

	for _, tc := range []struct {
		name      string
		tls       []DomainTLS
		routes    []RouteSpec
		want      []string
		wantError bool
	}{
		{name: "nothing", want: nil},
		{name: "certificate", tls: []DomainTLS{shop}, want: []string{"https-shop.example.org", "https-shop.example.org-apex"}},
		{
			name:   "ports sorted by name",
			tls:    []DomainTLS{shop},
			routes: []RouteSpec{portRoute(RouteProtocolUDP, 1024), portRoute(RouteProtocolTCP, 1025), portRoute(RouteProtocolTCP, 1024)},
			want:   []string{"https-shop.example.org", "https-shop.example.org-apex", "tcp-1024", "tcp-1025", "udp-1024"},
		},
		{
			name:   "routes sharing a port share a listener",
			routes: []RouteSpec{portRoute(RouteProtocolTCP, 1024), portRoute(RouteProtocolTCP, 1024)},
			want:   []string{"tcp-1024"},
		},
		{
			name:      "invalid port left out",
			routes:    []RouteSpec{portRoute(RouteProtocolTCP, 0), portRoute(RouteProtocolTCP, 1026)},
			want:      []string{"tcp-1026"},
			wantError: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MakeManagedListeners(tc.tls, tc.routes, gw, "e2e")
			if (err != nil) != tc.wantError {
				t.Errorf("error = %v, want error %t", err, tc.wantError)
			}
			if diff := cmp.Diff(tc.want, listenerNames(got)); diff != "" {
				t.Errorf("listener names (-want +got):\n%s", diff)
			}
			for _, l := range got {
				selector := l.AllowedRoutes.Namespaces.Selector.MatchLabels
				if selector[LabelInstallation] != "e2e" {
					t.Errorf("listener %s admits installation %q, want e2e", l.Name, selector[LabelInstallation])
				}
				if l.Protocol == gatewayv1.HTTPSProtocolType && l.Port != 8443 {
					t.Errorf("listener %s port = %d, want 8443", l.Name, l.Port)
				}
			}
		})
	}
}

func TestMakeManagedListenersLimit(t *testing.T) {
	var routes []RouteSpec
	for port := int32(1024); port < 1024+maxListeners+1; port++ {
		routes = append(routes, portRoute(RouteProtocolTCP, port))
	}
	got, err := MakeManagedListeners(nil, routes, testGateway(), "")
	if !errors.Is(err, ErrTooManyListeners) {
		t.Errorf("error = %v, want ErrTooManyListeners", err)
	}
	if got != nil {
		t.Errorf("listeners = %d, want none", len(got))
	}
}

func TestMakeListenerApply(t *testing.T) {
	gw := testGateway()
	listeners, err := MakeManagedListeners(nil, []RouteSpec{portRoute(RouteProtocolTCP, 1024)}, gw, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		listeners []gatewayv1.Listener
		wantSpec  bool
	}{
		{name: "listeners", listeners: listeners, wantSpec: true},
		{name: "none", wantSpec: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := MakeListenerApply(gw, tc.listeners)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Metadata   map[string]string `json:"metadata"`
				Spec       *struct {
					Listeners []gatewayv1.Listener `json:"listeners"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(patch, &got); err != nil {
				t.Fatal(err)
			}
			if got.APIVersion != "gateway.networking.k8s.io/v1" || got.Kind != "Gateway" {
				t.Errorf("type = %s %s, want gateway.networking.k8s.io/v1 Gateway", got.APIVersion, got.Kind)
			}
			if diff := cmp.Diff(map[string]string{"name": "ferry", "namespace": "ferry-system"}, got.Metadata); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if (got.Spec != nil) != tc.wantSpec {
				t.Fatalf("patch has spec %t, want %t", got.Spec != nil, tc.wantSpec)
			}
			if got.Spec != nil {
				if diff := cmp.Diff(tc.listeners, got.Spec.Listeners); diff != "" {
					t.Errorf("listeners (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// managedListeners returns a managed fields entry in which manager owns
// the listeners with the given names.
func managedListeners(manager string, operation metav1.ManagedFieldsOperationType, names ...string) metav1.ManagedFieldsEntry {
	var keys []string
	for _, name := range names {
		key, _ := json.Marshal(`k:{"name":"` + name + `"}`)
		keys = append(keys, string(key)+`:{".":{},"f:name":{},"f:port":{}}`)
	}
	raw := `{"f:spec":{"f:listeners":{` + strings.Join(keys, ",") + `}}}`
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: operation, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(raw)}
}

func TestFerryListenerNames(t *testing.T) {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		managedListeners("kubectl", metav1.ManagedFieldsOperationApply, "http", "https"),
		managedListeners("ferry-ferry", metav1.ManagedFieldsOperationApply, "tcp-1024", "https-shop.example.org"),
		managedListeners("ferry-e2e", metav1.ManagedFieldsOperationApply, "tcp-1034"),
		managedListeners("ferry-e2e", metav1.ManagedFieldsOperationUpdate, "status-only"),
		{Manager: "ferry-broken", Operation: metav1.ManagedFieldsOperationApply, FieldsV1: metav1.NewFieldsV1("{")},
	}}}
	want := map[string]bool{"tcp-1024": true, "https-shop.example.org": true, "tcp-1034": true}
	if diff := cmp.Diff(want, FerryListenerNames(gw)); diff != "" {
		t.Errorf("Ferry's listeners (-want +got):\n%s", diff)
	}
}

// testMainGateway is a main Gateway as read back: the operator's HTTP and
// HTTPS listeners, a TCP listener of the operator, and an HTTPS and a TCP
// listener that installation "ferry" applied.
func testMainGateway() *gatewayv1.Gateway {
	operatorTLS := &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModeTerminate),
		CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "wildcard"}}}
	sameNamespace := &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}
	ferryShop := MakeHTTPSListeners(DomainTLS{Domain: "shop.example.org", SecretName: "tls-x"}, testGateway(), "")
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "ferry", Namespace: "ferry-system", ManagedFields: []metav1.ManagedFieldsEntry{
			managedListeners("ferry-ferry", metav1.ManagedFieldsOperationApply,
				"https-shop.example.org", "https-shop.example.org-apex", "tcp-1024"),
		}},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: "traefik",
			Listeners: append([]gatewayv1.Listener{
				{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: sameNamespace},
				{Name: "https", Port: 8443, Protocol: gatewayv1.HTTPSProtocolType, Hostname: ptr.To[gatewayv1.Hostname]("*.apps.ferry.test"),
					TLS: operatorTLS, AllowedRoutes: sameNamespace},
				{Name: "postgres", Port: 5432, Protocol: gatewayv1.TCPProtocolType},
				{Name: "tcp-1024", Port: 1024, Protocol: gatewayv1.TCPProtocolType},
			}, ferryShop...),
		},
	}
}

func TestMakeOrgGateway(t *testing.T) {
	org := DomainTLS{Domain: "private.example.net", SecretName: "tls-private"}
	for _, tc := range []struct {
		name      string
		spec      OrgGatewaySpec
		wantClass string
		wantNames []string
	}{
		{
			name:      "copies only the operator's HTTP and HTTPS listeners",
			spec:      OrgGatewaySpec{OrgGUID: gatewayOrg, Main: testMainGateway()},
			wantClass: "traefik",
			wantNames: []string{"http", "https"},
		},
		{
			name:      "own class and private domain",
			spec:      OrgGatewaySpec{OrgGUID: gatewayOrg, Main: testMainGateway(), Class: "isolated", TLS: []DomainTLS{org}, HTTPSPort: 8443},
			wantClass: "isolated",
			wantNames: []string{"http", "https", "https-private.example.net", "https-private.example.net-apex"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, err := MakeOrgGateway(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if gw.Name != "ferry-org-"+gatewayOrg || gw.Namespace != "ferry-system" {
				t.Errorf("object = %s/%s, want ferry-system/ferry-org-%s", gw.Namespace, gw.Name, gatewayOrg)
			}
			if string(gw.Spec.GatewayClassName) != tc.wantClass {
				t.Errorf("class = %s, want %s", gw.Spec.GatewayClassName, tc.wantClass)
			}
			if diff := cmp.Diff(tc.wantNames, listenerNames(gw.Spec.Listeners)); diff != "" {
				t.Errorf("listener names (-want +got):\n%s", diff)
			}
			wantLabels := map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation,
				LabelComponent: ComponentGateway, LabelOrgGUID: gatewayOrg}
			if diff := cmp.Diff(wantLabels, gw.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if gw.Annotations[AnnotationSpecHash] == "" {
				t.Error("spec hash annotation missing")
			}

			wantSelector := map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation,
				LabelComponent: ComponentSpace, LabelOrgGUID: gatewayOrg}
			for _, l := range gw.Spec.Listeners {
				if diff := cmp.Diff(wantSelector, l.AllowedRoutes.Namespaces.Selector.MatchLabels); diff != "" {
					t.Errorf("listener %s namespace selector (-want +got):\n%s", l.Name, diff)
				}
			}
			https := gw.Spec.Listeners[1]
			if diff := cmp.Diff(tc.spec.Main.Spec.Listeners[1].TLS, https.TLS); diff != "" {
				t.Errorf("copied TLS (-want +got):\n%s", diff)
			}
			if *https.Hostname != "*.apps.ferry.test" || https.Port != 8443 {
				t.Errorf("copied listener = %s:%d, want *.apps.ferry.test:8443", *https.Hostname, https.Port)
			}
		})
	}
}

func TestMakeOrgGatewayKeepsCopyOnNameClash(t *testing.T) {
	main := testMainGateway()
	main.Spec.Listeners[0].Name = "https-private.example.net"
	gw, err := MakeOrgGateway(OrgGatewaySpec{OrgGUID: gatewayOrg, Main: main,
		TLS: []DomainTLS{{Domain: "private.example.net", SecretName: "tls-private"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https-private.example.net", "https", "https-private.example.net-apex"}
	if diff := cmp.Diff(want, listenerNames(gw.Spec.Listeners)); diff != "" {
		t.Errorf("listener names (-want +got):\n%s", diff)
	}
	if gw.Spec.Listeners[0].Protocol != gatewayv1.HTTPProtocolType {
		t.Errorf("clashing listener protocol = %s, want the copied HTTP", gw.Spec.Listeners[0].Protocol)
	}
}
