package k8sbackend

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrycf/ferry/store"
)

// pollInternalRoutes polls check until it returns true, and fails the
// test with what when the generous deadline passes: it bounds a wait for
// the reconciler, not its speed.
func pollInternalRoutes(t *testing.T, what string, check func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, check)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitForSliceAddresses waits until the EndpointSlice namespace/name has
// the addresses want, in sliceAddresses's form, with the deadline of
// pollInternalRoutes.
func waitForSliceAddresses(t *testing.T, client kubernetes.Interface, namespace, name string, want []string) {
	t.Helper()
	var got []string
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		slice, err := client.DiscoveryV1().EndpointSlices(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			got = []string{"(no EndpointSlice)"}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		got = sliceAddresses(slice)
		return cmp.Equal(want, got), nil
	})
	if err != nil {
		t.Fatalf("addresses of EndpointSlice %s/%s = %v, want %v: %v", namespace, name, got, want, err)
	}
}

// TestInternalRouteReconcilerOnAPIServer runs the reconciler against a
// real kube-apiserver and PostgreSQL. The test API server runs no
// EndpointSlice controller, so the test writes the web Services'
// EndpointSlices itself, labelled as that controller labels them.
func TestInternalRouteReconcilerOnAPIServer(t *testing.T) {
	client := startRoutingAPIServer(t).Clientset()
	f := newRouteFixture(t)
	ctx := t.Context()
	dev, prod := SpaceNamespace(f.space), SpaceNamespace(f.other)
	createNamespaces(t, client, dev, prod)

	internal, err := store.EnsureDomain(ctx, f.st.DB(), "apps.internal", true)
	if err != nil {
		t.Fatal(err)
	}
	prodApp, err := store.CreateApp(ctx, f.st.DB(), store.App{GUID: uuid.NewString(), Name: "api", SpaceGUID: f.other,
		LifecycleType: store.LifecycleBuildpack})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureProcessTypes(ctx, f.st.DB(), prodApp.GUID, []string{ProcessTypeWeb}); err != nil {
		t.Fatal(err)
	}
	prodProcesses, err := store.AppProcesses(ctx, f.st.DB(), prodApp.GUID)
	if err != nil || len(prodProcesses) != 1 {
		t.Fatalf("processes of app api = %+v, %v, want one web process", prodProcesses, err)
	}
	devWeb, prodWeb := f.webs[f.app1], prodProcesses[0].GUID

	// The web Services' EndpointSlices, and one of another installation
	// for the same Service, whose address must never be copied.
	devSource := webServiceSlice(dev, ProcessServiceName(devWeb), discoveryv1.AddressTypeIPv4,
		[]string{"10.88.1.1", "10.88.1.2"}, "10.88.1.2")
	prodSource := webServiceSlice(prod, ProcessServiceName(prodWeb), discoveryv1.AddressTypeIPv4, []string{"10.88.2.1"})
	otherInstallation := webServiceSlice(dev, ProcessServiceName(devWeb), discoveryv1.AddressTypeIPv4, []string{"10.88.9.9"})
	otherInstallation.Name = "other-installation"
	otherInstallation.Labels[LabelInstallation] = "other"
	for _, s := range []discoveryv1.EndpointSlice{devSource, prodSource, otherInstallation} {
		if _, err := client.DiscoveryV1().EndpointSlices(s.Namespace).Create(ctx, &s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create source EndpointSlice %s/%s: %v", s.Namespace, s.Name, err)
		}
	}

	cfg := InternalRouteConfig{Namespace: "ferry-internal-test"}
	rec := NewInternalRouteReconciler(InternalRouteReconcilerOptions{
		Client: client, Desired: StoreDesiredRoutes{Store: f.st}, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	// The resync is longer than the test, so every change below reaches
	// the reconciler through Enqueue or the EndpointSlice informer.
	go func() { done <- rec.Run(runCtx, time.Hour) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})

	pollInternalRoutes(t, "the internal route namespace", func(ctx context.Context) (bool, error) {
		ns, err := client.CoreV1().Namespaces().Get(ctx, cfg.Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !ownedBy(ns.Labels, "") || ns.Labels[LabelComponent] != ComponentRouting {
			t.Errorf("namespace labels = %v, want Ferry's ownership and component routing", ns.Labels)
		}
		return true, nil
	})

	// Objects Ferry does not own: a Service and EndpointSlice without
	// labels, and a Service of another installation. The unlabelled
	// Service has the name of the internal route taken.apps.internal.
	takenName, err := InternalRouteServiceName("taken", "apps.internal")
	if err != nil {
		t.Fatal(err)
	}
	foreignService := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: takenName, Namespace: cfg.Namespace},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
	}
	otherService := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "i-other", Namespace: cfg.Namespace, Labels: ownerLabels("other", ComponentRouting)},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone},
	}
	for _, svc := range []*corev1.Service{foreignService, otherService} {
		if _, err := client.CoreV1().Services(cfg.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	foreignSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "i-foreign", Namespace: cfg.Namespace, Labels: map[string]string{discoveryv1.LabelServiceName: "i-foreign"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.88.7.7"}}},
	}
	if _, err := client.DiscoveryV1().EndpointSlices(cfg.Namespace).Create(ctx, foreignSlice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	route, err := store.CreateRoute(ctx, f.st.DB(), store.Route{GUID: uuid.NewString(), Host: "api",
		Protocol: store.RouteProtocolHTTP, DomainGUID: internal.GUID, SpaceGUID: f.space})
	if err != nil {
		t.Fatal(err)
	}
	f.addDestinations(t, route.GUID, ProcessTypeWeb, f.app1, prodApp.GUID)
	takenRoute, err := store.CreateRoute(ctx, f.st.DB(), store.Route{GUID: uuid.NewString(), Host: "taken",
		Protocol: store.RouteProtocolHTTP, DomainGUID: internal.GUID, SpaceGUID: f.space})
	if err != nil {
		t.Fatal(err)
	}
	f.addDestinations(t, takenRoute.GUID, ProcessTypeWeb, f.app1)
	serviceName, err := InternalRouteServiceName("api", "apps.internal")
	if err != nil {
		t.Fatal(err)
	}
	devSlice := InternalRouteEndpointSliceName(serviceName, devWeb)
	prodSlice := InternalRouteEndpointSliceName(serviceName, prodWeb)
	services := client.CoreV1().Services(cfg.Namespace)
	endpointSlices := client.DiscoveryV1().EndpointSlices(cfg.Namespace)

	t.Run("two destinations get two slices", func(t *testing.T) {
		rec.Enqueue()
		waitForSliceAddresses(t, client, cfg.Namespace, devSlice, []string{"10.88.1.1", "10.88.1.2!"})
		waitForSliceAddresses(t, client, cfg.Namespace, prodSlice, []string{"10.88.2.1"})

		svc, err := services.Get(ctx, serviceName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get the route's Service: %v", err)
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Selector) != 0 || len(svc.Spec.Ports) != 0 {
			t.Errorf("Service spec = %+v, want headless without selector and ports", svc.Spec)
		}
		if !ownedBy(svc.Labels, "") || svc.Labels[LabelRouteGUID] != route.GUID {
			t.Errorf("Service labels = %v, want Ferry's ownership and route %s", svc.Labels, route.GUID)
		}
		slice, err := endpointSlices.Get(ctx, prodSlice, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := slice.Labels[discoveryv1.LabelServiceName]; got != serviceName {
			t.Errorf("slice label %s = %q, want %q", discoveryv1.LabelServiceName, got, serviceName)
		}
		if got := slice.Labels[discoveryv1.LabelManagedBy]; got != EndpointSliceManager {
			t.Errorf("slice label %s = %q, want %q", discoveryv1.LabelManagedBy, got, EndpointSliceManager)
		}
	})

	t.Run("unchanged sync writes nothing", func(t *testing.T) {
		before := internalRouteObjectVersions(t, client, cfg.Namespace)
		// The route taken.apps.internal is blocked by the foreign Service.
		var notOwned *NotOwnedError
		if err := rec.SyncAll(ctx); !onlyNotOwned(err) || !errors.As(err, &notOwned) || notOwned.Name != takenName {
			t.Fatalf("SyncAll = %v, want only the error that Service %s is not managed by Ferry", err, takenName)
		}
		if diff := cmp.Diff(before, internalRouteObjectVersions(t, client, cfg.Namespace)); diff != "" {
			t.Errorf("resource versions after a second sync (-before +after):\n%s", diff)
		}
	})

	t.Run("copy follows source slice", func(t *testing.T) {
		updated := webServiceSlice(dev, ProcessServiceName(devWeb), discoveryv1.AddressTypeIPv4,
			[]string{"10.88.1.1", "10.88.1.2", "10.88.1.3"}, "10.88.1.1")
		current, err := client.DiscoveryV1().EndpointSlices(dev).Get(ctx, devSource.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		current.Endpoints = updated.Endpoints
		if _, err := client.DiscoveryV1().EndpointSlices(dev).Update(ctx, current, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitForSliceAddresses(t, client, cfg.Namespace, devSlice, []string{"10.88.1.1!", "10.88.1.2", "10.88.1.3"})
	})

	t.Run("tampering is repaired", func(t *testing.T) {
		slice, err := endpointSlices.Get(ctx, prodSlice, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		slice.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"10.88.6.6"}}}
		if _, err := endpointSlices.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The informer receives the update of the reconciler's own slice,
		// so the repair needs no Enqueue.
		waitForSliceAddresses(t, client, cfg.Namespace, prodSlice, []string{"10.88.2.1"})

		svc, err := services.Get(ctx, serviceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A selector would be rejected: the API server gives a headless
		// Service without selector both IP families, which a single-stack
		// cluster allows only without a selector.
		svc.Spec.Ports = []corev1.ServicePort{{Name: "intruder", Port: 9999, Protocol: corev1.ProtocolTCP}}
		delete(svc.Labels, LabelRouteGUID)
		if _, err := services.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Services are not watched, so the repair waits for a full sync.
		rec.Enqueue()
		pollInternalRoutes(t, "the repaired Service", func(ctx context.Context) (bool, error) {
			svc, err := services.Get(ctx, serviceName, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(svc.Spec.Ports) == 0 && svc.Labels[LabelRouteGUID] == route.GUID, nil
		})
	})

	t.Run("deleted route loses objects", func(t *testing.T) {
		if err := store.DeleteRoute(ctx, f.st.DB(), route.GUID); err != nil {
			t.Fatal(err)
		}
		rec.Enqueue()
		pollInternalRoutes(t, "the deletion of the route's objects", func(ctx context.Context) (bool, error) {
			versions := internalRouteObjectVersions(t, client, cfg.Namespace)
			for _, name := range []string{"Service/" + serviceName, "EndpointSlice/" + devSlice, "EndpointSlice/" + prodSlice} {
				if _, exists := versions[name]; exists {
					return false, nil
				}
			}
			return true, nil
		})
	})

	t.Run("foreign objects untouched", func(t *testing.T) {
		versions := internalRouteObjectVersions(t, client, cfg.Namespace)
		for _, name := range []string{"Service/" + takenName, "Service/i-other", "EndpointSlice/i-foreign"} {
			if _, exists := versions[name]; !exists {
				t.Errorf("%s is gone, want it kept", name)
			}
		}
		got, err := endpointSlices.Get(ctx, foreignSlice.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if addresses := sliceAddresses(got); !cmp.Equal(addresses, []string{"10.88.7.7!"}) {
			t.Errorf("foreign slice addresses = %v, want [10.88.7.7!] as created", addresses)
		}
		if len(got.Labels) != 1 {
			t.Errorf("foreign slice labels = %v, want only the one it was created with", got.Labels)
		}
		svc, err := services.Get(ctx, takenName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Labels) != 0 {
			t.Errorf("labels of the foreign Service %s = %v, want none", takenName, svc.Labels)
		}
		// The route whose Service name is taken gets no EndpointSlice, so
		// its addresses never reach the foreign Service.
		if _, exists := versions["EndpointSlice/"+InternalRouteEndpointSliceName(takenName, devWeb)]; exists {
			t.Errorf("route taken.apps.internal has an EndpointSlice, want none while its Service name is taken")
		}
	})
}

// internalRouteObjectVersions returns the resource version of every Service and
// EndpointSlice in namespace, keyed by kind and name.
func internalRouteObjectVersions(t *testing.T, client kubernetes.Interface, namespace string) map[string]string {
	t.Helper()
	out := map[string]string{}
	services, err := client.CoreV1().Services(namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services.Items {
		out["Service/"+s.Name] = s.ResourceVersion
	}
	slices, err := client.DiscoveryV1().EndpointSlices(namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slices.Items {
		out["EndpointSlice/"+s.Name] = s.ResourceVersion
	}
	return out
}
