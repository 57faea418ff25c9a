package k8sbackend

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// portRoute creates a TCP or UDP route of a TCP domain in space with a web
// destination for each of apps.
func (f routeFixture) portRoute(t *testing.T, domain store.Domain, protocol string, port int, apps ...string) string {
	t.Helper()
	r, err := store.CreateRoute(t.Context(), f.st.DB(), store.Route{GUID: uuid.NewString(), Port: port, Protocol: protocol,
		DomainGUID: domain.GUID, RouterGroupGUID: domain.RouterGroupGUID, SpaceGUID: f.space})
	if err != nil {
		t.Fatal(err)
	}
	var dests []store.Destination
	for _, app := range apps {
		// The destination protocol of a route equals the route's protocol
		// for TCP and UDP routes.
		dests = append(dests, store.Destination{GUID: uuid.NewString(), AppGUID: app, ProcessType: ProcessTypeWeb,
			Port: 8080, Protocol: protocol})
	}
	if err := store.AddDestinations(t.Context(), f.st.DB(), r.GUID, dests); err != nil {
		t.Fatal(err)
	}
	return r.GUID
}

func (f routeFixture) tcpDomain(t *testing.T) store.Domain {
	t.Helper()
	group, err := store.EnsureRouterGroup(t.Context(), f.st.DB(), "default-tcp", "tcp", "1024-1033")
	if err != nil {
		t.Fatal(err)
	}
	d, err := store.CreateDomain(t.Context(), f.st.DB(), store.Domain{GUID: uuid.NewString(), Name: "tcp.example.com",
		RouterGroupGUID: group.GUID})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func backendNames(refs []gatewayv1.BackendRef) []string {
	var names []string
	for _, b := range refs {
		names = append(names, string(b.Name))
	}
	slices.Sort(names)
	return names
}

// parentOf returns namespace/name#section of an object's only parent
// reference, and fails the test when there is not exactly one.
func parentOf(t *testing.T, refs []gatewayv1.ParentReference) string {
	t.Helper()
	if len(refs) != 1 {
		t.Fatalf("parentRefs = %+v, want one", refs)
	}
	ref := refs[0]
	out := string(ref.Name)
	if ref.Namespace != nil {
		out = string(*ref.Namespace) + "/" + out
	}
	if ref.SectionName != nil {
		out += "#" + string(*ref.SectionName)
	}
	return out
}

// TestRouteReconcilerPortRoutes reconciles TCP and UDP routes, and an HTTP
// route of an organization with a dedicated Gateway, from PostgreSQL on a
// real API server with the Gateway API CRDs.
func TestRouteReconcilerPortRoutes(t *testing.T) {
	client, gateways := startGatewayAPIServer(t)
	f := newRouteFixture(t)
	ctx := t.Context()
	namespace := SpaceNamespace(f.space)
	createNamespaces(t, client, namespace)
	tcpDomain := f.tcpDomain(t)

	rec := NewRouteReconciler(RouteReconcilerOptions{
		Client: client, Gateways: gateways, Desired: StoreDesiredRoutes{Store: f.st},
		Gateway: GatewayRef{Namespace: "ferry-system", Name: "ferry"},
		Routing: RoutingConfig{Mode: config.RoutingModeGateway,
			UDPGateway: GatewayRef{Namespace: "ferry-system", Name: "ferry-udp"}},
	})
	reconcile := func(t *testing.T) {
		t.Helper()
		if err := rec.Reconcile(ctx, f.space); err != nil {
			t.Fatalf("Reconcile(%s) = %v", f.space, err)
		}
	}
	tcpRoutes := gateways.GatewayV1alpha2().TCPRoutes(namespace)
	udpRoutes := gateways.GatewayV1alpha2().UDPRoutes(namespace)
	getTCP := func(t *testing.T, route string) *gatewayv1alpha2.TCPRoute {
		t.Helper()
		tr, err := tcpRoutes.Get(ctx, RouteObjectName(route), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get TCPRoute of route %s: %v", route, err)
		}
		return tr
	}
	getUDP := func(t *testing.T, route string) *gatewayv1alpha2.UDPRoute {
		t.Helper()
		ur, err := udpRoutes.Get(ctx, RouteObjectName(route), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get UDPRoute of route %s: %v", route, err)
		}
		return ur
	}

	foreignTCP := &gatewayv1alpha2.TCPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: namespace},
		Spec: gatewayv1alpha2.TCPRouteSpec{Rules: []gatewayv1alpha2.TCPRouteRule{{
			BackendRefs: []gatewayv1.BackendRef{{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "theirs",
				Port: ptr.To(gatewayv1.PortNumber(9000))}}},
		}}},
	}
	if _, err := tcpRoutes.Create(ctx, foreignTCP, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tcp := f.portRoute(t, tcpDomain, RouteProtocolTCP, 1024, f.app1)
	udp := f.portRoute(t, tcpDomain, RouteProtocolUDP, 1024, f.app1)

	t.Run("TCP and UDP routes get objects", func(t *testing.T) {
		reconcile(t)
		tr := getTCP(t, tcp)
		if got, want := parentOf(t, tr.Spec.ParentRefs), "ferry-system/ferry#tcp-1024"; got != want {
			t.Errorf("TCPRoute parent = %s, want %s", got, want)
		}
		if got, want := backendNames(tr.Spec.Rules[0].BackendRefs), sortedServices(f.webs[f.app1]); !slices.Equal(got, want) {
			t.Errorf("TCPRoute backends = %v, want %v", got, want)
		}
		ur := getUDP(t, udp)
		if got, want := parentOf(t, ur.Spec.ParentRefs), "ferry-system/ferry-udp#udp-1024"; got != want {
			t.Errorf("UDPRoute parent = %s, want %s", got, want)
		}
		if got := ur.Annotations[AnnotationRouteURL]; got != "tcp.example.com:1024" {
			t.Errorf("UDPRoute route URL = %q, want tcp.example.com:1024", got)
		}
	})

	t.Run("a new destination updates the TCPRoute", func(t *testing.T) {
		f.addDestinations(t, tcp, ProcessTypeWeb, f.app2)
		reconcile(t)
		want := sortedServices(f.webs[f.app1], f.webs[f.app2])
		if got := backendNames(getTCP(t, tcp).Spec.Rules[0].BackendRefs); !slices.Equal(got, want) {
			t.Errorf("TCPRoute backends = %v, want %v", got, want)
		}
	})

	t.Run("tampering with a UDPRoute is repaired", func(t *testing.T) {
		ur := getUDP(t, udp)
		ur.Spec.ParentRefs[0].Name = "stolen"
		ur.Spec.Rules[0].BackendRefs[0].Name = "stolen"
		if _, err := udpRoutes.Update(ctx, ur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		ur = getUDP(t, udp)
		if got, want := parentOf(t, ur.Spec.ParentRefs), "ferry-system/ferry-udp#udp-1024"; got != want {
			t.Errorf("UDPRoute parent = %s, want %s", got, want)
		}
		if got, want := backendNames(ur.Spec.Rules[0].BackendRefs), sortedServices(f.webs[f.app1]); !slices.Equal(got, want) {
			t.Errorf("UDPRoute backends = %v, want %v", got, want)
		}
		version := ur.ResourceVersion
		reconcile(t)
		if got := getUDP(t, udp).ResourceVersion; got != version {
			t.Errorf("resourceVersion after a sync without changes = %s, want %s", got, version)
		}
	})

	t.Run("a deleted TCP route loses its TCPRoute", func(t *testing.T) {
		if err := store.DeleteRoute(ctx, f.st.DB(), tcp); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		if _, err := tcpRoutes.Get(ctx, RouteObjectName(tcp), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("TCPRoute of the deleted route: err = %v, want not found", err)
		}
		getUDP(t, udp)
	})

	t.Run("foreign TCPRoutes are untouched", func(t *testing.T) {
		got, err := tcpRoutes.Get(ctx, foreignTCP.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("foreign TCPRoute: %v", err)
		}
		if got.Generation != 1 || backendNames(got.Spec.Rules[0].BackendRefs)[0] != "theirs" {
			t.Errorf("foreign TCPRoute changed: generation %d spec %+v", got.Generation, got.Spec)
		}
	})

	t.Run("a dedicated organization gateway is the parent", func(t *testing.T) {
		private, err := store.CreateDomain(ctx, f.st.DB(), store.Domain{GUID: uuid.NewString(), Name: "acme.example.com",
			OrganizationGUID: f.org})
		if err != nil {
			t.Fatal(err)
		}
		r, err := store.CreateRoute(ctx, f.st.DB(), store.Route{GUID: uuid.NewString(), Host: "shop",
			Protocol: store.RouteProtocolHTTP, DomainGUID: private.GUID, SpaceGUID: f.space})
		if err != nil {
			t.Fatal(err)
		}
		f.addDestinations(t, r.GUID, ProcessTypeWeb, f.app1)
		shared := f.route(t, f.space, "shared", "", f.app1)
		if err := store.SetOrganizationDedicatedGateway(ctx, f.st.DB(), f.org, true); err != nil {
			t.Fatal(err)
		}
		reconcile(t)

		httpRoutes := gateways.GatewayV1().HTTPRoutes(namespace)
		hr, err := httpRoutes.Get(ctx, RouteObjectName(r.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := parentOf(t, hr.Spec.ParentRefs), "ferry-system/"+OrgGatewayName(f.org); got != want {
			t.Errorf("parent of the private domain's route = %s, want %s", got, want)
		}
		hr, err = httpRoutes.Get(ctx, RouteObjectName(shared), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := parentOf(t, hr.Spec.ParentRefs), "ferry-system/ferry"; got != want {
			t.Errorf("parent of the shared domain's route = %s, want %s", got, want)
		}

		// Without the flag the route moves back to the main Gateway.
		if err := store.SetOrganizationDedicatedGateway(ctx, f.st.DB(), f.org, false); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		hr, err = httpRoutes.Get(ctx, RouteObjectName(r.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := parentOf(t, hr.Spec.ParentRefs), "ferry-system/ferry"; got != want {
			t.Errorf("parent after the flag is cleared = %s, want %s", got, want)
		}
	})
}

// staticCertificates is a DesiredCertificates that returns its own list.
type staticCertificates struct{ certs []TLSCertificateSpec }

func (s *staticCertificates) Certificates(context.Context) ([]TLSCertificateSpec, error) {
	return slices.Clone(s.certs), nil
}

// TestRouteReconcilerIngressMode reconciles HTTP routes into Ingresses and
// copies the domain's certificate into the space namespace, on a real API
// server.
func TestRouteReconcilerIngressMode(t *testing.T) {
	client, _ := startGatewayAPIServer(t)
	f := newRouteFixture(t)
	ctx := t.Context()
	namespace := SpaceNamespace(f.space)
	createNamespaces(t, client, namespace)

	cert := TLSCertificateSpec{GUID: uuid.NewString(), Domain: "Apps.Example.com", ChainPEM: []byte("chain v1"),
		PrivateKeyPEM: []byte("key v1")}
	certs := &staticCertificates{certs: []TLSCertificateSpec{cert}}
	rec := NewRouteReconciler(RouteReconcilerOptions{
		Client: client, Desired: StoreDesiredRoutes{Store: f.st}, Certificates: certs,
		Routing: RoutingConfig{Mode: config.RoutingModeIngress, IngressClass: "traefik"},
	})
	reconcile := func(t *testing.T) {
		t.Helper()
		if err := rec.Reconcile(ctx, f.space); err != nil {
			t.Fatalf("Reconcile(%s) = %v", f.space, err)
		}
	}
	ingresses := client.NetworkingV1().Ingresses(namespace)
	secrets := client.CoreV1().Secrets(namespace)
	getIngress := func(t *testing.T, route string) *networkingv1.Ingress {
		t.Helper()
		ing, err := ingresses.Get(ctx, RouteObjectName(route), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get Ingress of route %s: %v", route, err)
		}
		return ing
	}
	getSecret := func(t *testing.T) *corev1.Secret {
		t.Helper()
		s, err := secrets.Get(ctx, TLSSecretName(cert.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get TLS Secret: %v", err)
		}
		return s
	}

	foreign := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: namespace},
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "other.example.com"}}},
	}
	if _, err := ingresses.Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	shop := f.route(t, f.space, "shop", "/cart", f.app1)
	split := f.route(t, f.space, "split", "", f.app1, f.app2)

	t.Run("an HTTP route gets an Ingress with TLS", func(t *testing.T) {
		reconcile(t)
		ing := getIngress(t, shop)
		if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "traefik" {
			t.Errorf("ingressClassName = %v, want traefik", ing.Spec.IngressClassName)
		}
		rule := ing.Spec.Rules[0]
		if rule.Host != "shop.apps.example.com" || rule.HTTP == nil || rule.HTTP.Paths[0].Path != "/cart" ||
			rule.HTTP.Paths[0].Backend.Service.Name != ProcessServiceName(f.webs[f.app1]) {
			t.Errorf("rule = %+v, want shop.apps.example.com/cart to the web Service of app 1", rule)
		}
		if got := ing.Spec.TLS; len(got) != 1 || got[0].SecretName != TLSSecretName(cert.GUID) {
			t.Errorf("TLS = %+v, want the domain's Secret", got)
		}
		secret := getSecret(t)
		if secret.Type != corev1.SecretTypeTLS || string(secret.Data[corev1.TLSCertKey]) != "chain v1" ||
			string(secret.Data[corev1.TLSPrivateKeyKey]) != "key v1" {
			t.Errorf("Secret type %s with keys %v, want the certificate", secret.Type, slices.Sorted(maps.Keys(secret.Data)))
		}
	})

	t.Run("a route with several destinations is skipped", func(t *testing.T) {
		if _, err := ingresses.Get(ctx, RouteObjectName(split), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Ingress of a route with two destinations: err = %v, want not found", err)
		}
	})

	t.Run("a rotated certificate updates the Secret", func(t *testing.T) {
		certs.certs[0].ChainPEM, certs.certs[0].PrivateKeyPEM = []byte("chain v2"), []byte("key v2")
		reconcile(t)
		if got := string(getSecret(t).Data[corev1.TLSCertKey]); got != "chain v2" {
			t.Errorf("tls.crt = %q, want chain v2", got)
		}
	})

	t.Run("a key that cannot be opened keeps the Secret", func(t *testing.T) {
		certs.certs[0].ChainPEM, certs.certs[0].PrivateKeyPEM = []byte("chain v3"), nil
		reconcile(t)
		if got := string(getSecret(t).Data[corev1.TLSCertKey]); got != "chain v2" {
			t.Errorf("tls.crt = %q, want chain v2 kept", got)
		}
		certs.certs[0].ChainPEM, certs.certs[0].PrivateKeyPEM = []byte("chain v2"), []byte("key v2")
	})

	t.Run("tampering with an Ingress is repaired", func(t *testing.T) {
		ing := getIngress(t, shop)
		ing.Spec.Rules[0].Host = "stolen.example.com"
		ing.Spec.TLS = nil
		if _, err := ingresses.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		ing = getIngress(t, shop)
		if got := ing.Spec.Rules[0].Host; got != "shop.apps.example.com" {
			t.Errorf("host = %s, want shop.apps.example.com", got)
		}
		if len(ing.Spec.TLS) != 1 {
			t.Errorf("TLS = %+v, want it restored", ing.Spec.TLS)
		}
	})

	t.Run("a deleted route loses its Ingress and Secret", func(t *testing.T) {
		if err := store.DeleteRoute(ctx, f.st.DB(), shop); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		if _, err := ingresses.Get(ctx, RouteObjectName(shop), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Ingress of the deleted route: err = %v, want not found", err)
		}
		if _, err := secrets.Get(ctx, TLSSecretName(cert.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("TLS Secret without routes on its domain: err = %v, want not found", err)
		}
	})

	t.Run("foreign Ingresses are untouched", func(t *testing.T) {
		got, err := ingresses.Get(ctx, foreign.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("foreign Ingress: %v", err)
		}
		if got.Generation != 1 || got.Spec.Rules[0].Host != "other.example.com" {
			t.Errorf("foreign Ingress changed: generation %d rules %+v", got.Generation, got.Spec.Rules)
		}
	})
}

// TestRunControllerRoutingNotify checks that a destination removed in
// PostgreSQL reaches the cluster through the ferry_routes notification,
// with a resync too long to do it.
func TestRunControllerRoutingNotify(t *testing.T) {
	url := pgtest.NewURL(t)
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newRouteFixtureOn(t, st)
	route := f.route(t, f.space, "shop", "", f.app1)
	client, gateways := fake.NewClientset(), gatewayfake.NewSimpleClientset()
	namespace := SpaceNamespace(f.space)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelSpaceGUID: f.space}}}
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.RoutingEnabled = true
	cfg.Gateway = GatewayRef{Namespace: "ferry-system", Name: "ferry"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunController(ctx, ControllerOptions{Store: st, Client: client, Gateways: gateways, DatabaseURL: url,
			Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Identity: "test", Resync: time.Hour})
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitForHTTPRoute(t, gateways, namespace, RouteObjectName(route))
	waitForRoutesListener(t, st)

	dests, err := store.RouteDestinationsThrough(t.Context(), st.DB(), route)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteDestination(t.Context(), st.DB(), route, dests[0].GUID); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := gateways.GatewayV1().HTTPRoutes(namespace).Get(ctx, RouteObjectName(route), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("the HTTPRoute of the unmapped route stayed: %v", err)
	}
}

// waitForRoutesListener polls until a session of the test's database
// listens on store.RoutesChannel, because a notification sent before that
// is lost. The deadline is generous: it bounds a wait, not a speed.
func waitForRoutesListener(t *testing.T, st *store.Store) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var listening bool
		err := st.DB().QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN "' || $1 || '"')`, store.RoutesChannel).Scan(&listening)
		return listening, err
	})
	if err != nil {
		t.Fatalf("no session listens on %s: %v", store.RoutesChannel, err)
	}
}
