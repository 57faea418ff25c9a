package k8sbackend

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// routeFixture is a space with two apps, each with a web and a worker
// process, and a second space, in PostgreSQL.
type routeFixture struct {
	st           *store.Store
	org          string
	space, other string
	domain       store.Domain
	// webs maps each app GUID to its web process GUID.
	webs       map[string]string
	app1, app2 string
}

func newRouteFixture(t *testing.T) routeFixture {
	t.Helper()
	return newRouteFixtureOn(t, pgtest.NewStore(t))
}

// newRouteFixtureOn creates the fixture in the database of st.
func newRouteFixtureOn(t *testing.T, st *store.Store) routeFixture {
	t.Helper()
	ctx := t.Context()
	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	f := routeFixture{st: st, org: org.GUID, webs: map[string]string{}}
	for _, name := range []string{"dev", "prod"} {
		sp, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: name, OrganizationGUID: org.GUID})
		if err != nil {
			t.Fatal(err)
		}
		if name == "dev" {
			f.space = sp.GUID
		} else {
			f.other = sp.GUID
		}
	}
	newApp := func(name, space string) string {
		app, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: name, SpaceGUID: space,
			LifecycleType: store.LifecycleBuildpack})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.EnsureProcessTypes(ctx, st.DB(), app.GUID, []string{"web", "worker"}); err != nil {
			t.Fatal(err)
		}
		processes, err := store.AppProcesses(ctx, st.DB(), app.GUID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range processes {
			if p.Type == ProcessTypeWeb {
				f.webs[app.GUID] = p.GUID
			}
		}
		return app.GUID
	}
	f.app1, f.app2 = newApp("shop", f.space), newApp("cart", f.space)
	if f.domain, err = store.EnsureDomain(ctx, st.DB(), "apps.example.com", false); err != nil {
		t.Fatal(err)
	}
	return f
}

// route creates an HTTP route of the fixture's domain in space with a web
// destination for each of apps.
func (f routeFixture) route(t *testing.T, space, host, path string, apps ...string) string {
	t.Helper()
	r, err := store.CreateRoute(t.Context(), f.st.DB(), store.Route{GUID: uuid.NewString(), Host: host, Path: path,
		Protocol: store.RouteProtocolHTTP, DomainGUID: f.domain.GUID, SpaceGUID: space})
	if err != nil {
		t.Fatal(err)
	}
	f.addDestinations(t, r.GUID, ProcessTypeWeb, apps...)
	return r.GUID
}

func (f routeFixture) addDestinations(t *testing.T, route, processType string, apps ...string) {
	t.Helper()
	var dests []store.Destination
	for _, app := range apps {
		dests = append(dests, store.Destination{GUID: uuid.NewString(), AppGUID: app, ProcessType: processType,
			Port: 8080, Protocol: store.DestinationProtocolHTTP1})
	}
	if err := store.AddDestinations(t.Context(), f.st.DB(), route, dests); err != nil {
		t.Fatal(err)
	}
}

// backendServices returns the Service names an HTTPRoute sends traffic to.
func backendServices(hr *gatewayv1.HTTPRoute) []string {
	var names []string
	for _, rule := range hr.Spec.Rules {
		for _, b := range rule.BackendRefs {
			names = append(names, string(b.Name))
		}
	}
	slices.Sort(names)
	return names
}

func sortedServices(processes ...string) []string {
	var names []string
	for _, p := range processes {
		names = append(names, ProcessServiceName(p))
	}
	slices.Sort(names)
	return names
}

// TestRouteReconcilerOnAPIServer reconciles routes from PostgreSQL into
// HTTPRoutes on a real API server with the Gateway API CRDs, through the
// changes a space's routes go through.
func TestRouteReconcilerOnAPIServer(t *testing.T) {
	client, gateways := startGatewayAPIServer(t)
	f := newRouteFixture(t)
	ctx := t.Context()
	namespace := SpaceNamespace(f.space)
	createNamespaces(t, client, namespace)

	gw := GatewayRef{Namespace: "ferry-system", Name: "ferry"}
	rec := NewRouteReconciler(RouteReconcilerOptions{
		Client: client, Gateways: gateways, Gateway: gw, Installation: "",
		Desired: StoreDesiredRoutes{Store: f.st},
	})
	reconcile := func(t *testing.T) {
		t.Helper()
		if err := rec.Reconcile(ctx, f.space); err != nil {
			t.Fatalf("Reconcile(%s) = %v", f.space, err)
		}
	}
	httpRoutes := gateways.GatewayV1().HTTPRoutes(namespace)
	get := func(t *testing.T, route string) *gatewayv1.HTTPRoute {
		t.Helper()
		hr, err := httpRoutes.Get(ctx, RouteObjectName(route), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get HTTPRoute of route %s: %v", route, err)
		}
		return hr
	}

	// Objects Ferry does not own: one without labels, and one of another
	// installation, each with the name of a route Ferry deletes below.
	shop := f.route(t, f.space, "shop", "", f.app1, f.app2)
	cart := f.route(t, f.space, "shop", "/cart", f.app2)
	foreignNoLabels := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "someone-elses", Namespace: namespace},
		Spec:       gatewayv1.HTTPRouteSpec{Hostnames: []gatewayv1.Hostname{"other.example.com"}},
	}
	foreignInstallation := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "other-installation", Namespace: namespace,
			Labels: ownerLabels("other", ComponentRouting)},
		Spec: gatewayv1.HTTPRouteSpec{Hostnames: []gatewayv1.Hostname{"other.example.com"}},
	}
	for _, hr := range []*gatewayv1.HTTPRoute{foreignNoLabels, foreignInstallation} {
		if _, err := httpRoutes.Create(ctx, hr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("routes in the database get HTTPRoutes", func(t *testing.T) {
		// A worker destination has no Service and is left out; a route of
		// another space without destinations gets no object here.
		f.addDestinations(t, shop, "worker", f.app1)
		elsewhere := f.route(t, f.other, "prod", "")
		reconcile(t)
		hr := get(t, shop)
		if got, want := backendServices(hr), sortedServices(f.webs[f.app1], f.webs[f.app2]); !slices.Equal(got, want) {
			t.Errorf("backends of %s = %v, want %v", shop, got, want)
		}
		if got := hr.Spec.Hostnames; len(got) != 1 || got[0] != "shop.apps.example.com" {
			t.Errorf("hostnames = %v, want shop.apps.example.com", got)
		}
		if !ownedBy(hr.Labels, "") || hr.Labels[LabelRouteGUID] != shop || hr.Labels[LabelSpaceGUID] != f.space ||
			hr.Annotations[AnnotationSpecHash] == "" {
			t.Errorf("labels %v annotations %v, want Ferry's ownership, route, space and spec hash", hr.Labels, hr.Annotations)
		}
		if got := hr.Spec.ParentRefs; len(got) != 1 || got[0].Name != "ferry" || got[0].Namespace == nil ||
			*got[0].Namespace != "ferry-system" {
			t.Errorf("parentRefs = %+v, want the Gateway ferry-system/ferry", got)
		}
		if got, want := backendServices(get(t, cart)), sortedServices(f.webs[f.app2]); !slices.Equal(got, want) {
			t.Errorf("backends of %s = %v, want %v", cart, got, want)
		}
		if _, err := httpRoutes.Get(ctx, RouteObjectName(elsewhere), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("HTTPRoute of a route without destinations in the space: err = %v, want not found", err)
		}
	})

	t.Run("a removed destination leaves the backends", func(t *testing.T) {
		dests, err := store.RouteDestinationsThrough(ctx, f.st.DB(), shop)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dests {
			if d.AppGUID == f.app2 {
				if _, err := store.DeleteDestination(ctx, f.st.DB(), shop, d.GUID); err != nil {
					t.Fatal(err)
				}
			}
		}
		reconcile(t)
		if got, want := backendServices(get(t, shop)), sortedServices(f.webs[f.app1]); !slices.Equal(got, want) {
			t.Errorf("backends = %v, want %v", got, want)
		}
	})

	t.Run("tampering is repaired", func(t *testing.T) {
		hr := get(t, shop)
		before := hr.Spec.DeepCopy()
		hr.Spec.Hostnames = []gatewayv1.Hostname{"stolen.example.com"}
		hr.Spec.Rules[0].BackendRefs = nil
		delete(hr.Labels, LabelRouteGUID)
		if _, err := httpRoutes.Update(ctx, hr, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		hr = get(t, shop)
		if got := hr.Spec.Hostnames; !slices.Equal(got, before.Hostnames) {
			t.Errorf("hostnames = %v, want %v", got, before.Hostnames)
		}
		if got, want := backendServices(hr), sortedServices(f.webs[f.app1]); !slices.Equal(got, want) {
			t.Errorf("backends = %v, want %v", got, want)
		}
		if hr.Labels[LabelRouteGUID] != shop {
			t.Errorf("route label = %q, want %q", hr.Labels[LabelRouteGUID], shop)
		}
		// A sync with nothing to change writes nothing.
		version := hr.ResourceVersion
		reconcile(t)
		if got := get(t, shop).ResourceVersion; got != version {
			t.Errorf("resourceVersion after a sync without changes = %s, want %s", got, version)
		}
	})

	t.Run("a deleted route loses its HTTPRoute", func(t *testing.T) {
		if err := store.DeleteRoute(ctx, f.st.DB(), cart); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		if _, err := httpRoutes.Get(ctx, RouteObjectName(cart), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("HTTPRoute of the deleted route: err = %v, want not found", err)
		}
		get(t, shop)
	})

	t.Run("foreign HTTPRoutes are untouched", func(t *testing.T) {
		for _, want := range []*gatewayv1.HTTPRoute{foreignNoLabels, foreignInstallation} {
			got, err := httpRoutes.Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("foreign HTTPRoute %s: %v", want.Name, err)
			}
			if !slices.Equal(got.Spec.Hostnames, want.Spec.Hostnames) || got.Generation != 1 {
				t.Errorf("foreign HTTPRoute %s changed: hostnames %v generation %d", want.Name, got.Spec.Hostnames, got.Generation)
			}
		}
	})

	t.Run("a foreign object with a route's name blocks only that route", func(t *testing.T) {
		blocked := f.route(t, f.space, "blocked", "", f.app1)
		squatter := &gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Name: RouteObjectName(blocked), Namespace: namespace},
			Spec:       gatewayv1.HTTPRouteSpec{Hostnames: []gatewayv1.Hostname{"squatter.example.com"}},
		}
		if _, err := httpRoutes.Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := rec.Reconcile(ctx, f.space)
		if err == nil || !onlyNotOwned(err) {
			t.Fatalf("Reconcile() = %v, want only a NotOwnedError", err)
		}
		if got := get(t, blocked).Spec.Hostnames; len(got) != 1 || got[0] != "squatter.example.com" {
			t.Errorf("squatter's hostnames = %v, want them unchanged", got)
		}
		get(t, shop)
	})
}

// TestRouteReconcilerRunResyncs checks that Run finds the space
// namespaces by listing them and creates their HTTPRoutes.
func TestRouteReconcilerRunResyncs(t *testing.T) {
	client, gateways := startGatewayAPIServer(t)
	f := newRouteFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	namespace := SpaceNamespace(f.space)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelSpaceGUID: f.space}}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	route := f.route(t, f.space, "shop", "", f.app1)

	rec := NewRouteReconciler(RouteReconcilerOptions{
		Client: client, Gateways: gateways, Gateway: GatewayRef{Namespace: "ferry-system", Name: "ferry"},
		Desired: StoreDesiredRoutes{Store: f.st},
	})
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx, DefaultResync) }()
	defer func() {
		cancel()
		<-done
	}()
	waitForHTTPRoute(t, gateways, namespace, RouteObjectName(route))
}

// waitForHTTPRoute polls until the HTTPRoute exists. The deadline is
// generous: it bounds a wait for the reconciler, not its speed.
func waitForHTTPRoute(t *testing.T, gateways gatewayclient.Interface, namespace, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := gateways.GatewayV1().HTTPRoutes(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("HTTPRoute %s/%s never appeared: %v", namespace, name, err)
	}
}
