package k8sbackend

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// networkPolicyFixture is an organization with the spaces dev and prod in
// PostgreSQL: the app web in dev, and api and worker in prod.
type networkPolicyFixture struct {
	st               *store.Store
	dev, prod        store.Space
	web, api, worker string
}

func newNetworkPolicyFixture(t *testing.T) networkPolicyFixture {
	t.Helper()
	ctx := t.Context()
	st := pgtest.NewStore(t)
	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	f := networkPolicyFixture{st: st}
	for _, sp := range []*store.Space{&f.dev, &f.prod} {
		name := "dev"
		if sp == &f.prod {
			name = "prod"
		}
		if *sp, err = store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: name, OrganizationGUID: org.GUID}); err != nil {
			t.Fatal(err)
		}
	}
	newApp := func(name, space string) string {
		app, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: name, SpaceGUID: space,
			LifecycleType: store.LifecycleBuildpack})
		if err != nil {
			t.Fatal(err)
		}
		return app.GUID
	}
	f.web, f.api, f.worker = newApp("web", f.dev.GUID), newApp("api", f.prod.GUID), newApp("worker", f.prod.GUID)
	return f
}

func (f networkPolicyFixture) policy(t *testing.T, source, destination, protocol string, start, end int) store.NetworkPolicy {
	t.Helper()
	p := store.NetworkPolicy{SourceAppGUID: source, DestinationAppGUID: destination, Protocol: protocol, StartPort: start, EndPort: end}
	if err := store.CreateNetworkPolicies(t.Context(), f.st.DB(), []store.NetworkPolicy{p}); err != nil {
		t.Fatal(err)
	}
	return p
}

// createSpaceNamespaces creates the namespaces of spaces with the labels
// the space reconciler gives them.
func createSpaceNamespaces(t *testing.T, client kubernetes.Interface, spaces ...store.Space) {
	t.Helper()
	for _, sp := range spaces {
		if _, err := client.CoreV1().Namespaces().Create(t.Context(), MakeSpaceNamespace(sp, "acme", ""), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace of space %s: %v", sp.Name, err)
		}
	}
}

// ingressSources returns "namespace/app" for each app peer of np's
// ingress rules, with the ports of its rule as "protocol:start-end".
func ingressSources(np *networkingv1.NetworkPolicy) map[string][]string {
	out := map[string][]string{}
	for _, rule := range np.Spec.Ingress {
		for _, peer := range rule.From {
			if peer.PodSelector == nil {
				continue
			}
			key := peer.NamespaceSelector.MatchLabels[LabelNamespaceName] + "/" + peer.PodSelector.MatchLabels[LabelAppGUID]
			for _, p := range rule.Ports {
				end := p.Port.IntVal
				if p.EndPort != nil {
					end = *p.EndPort
				}
				out[key] = append(out[key], string(*p.Protocol)+":"+p.Port.String()+"-"+strconv.Itoa(int(end)))
			}
		}
	}
	return out
}

// TestNetworkPolicyReconcilerOnAPIServer reconciles network policies from
// PostgreSQL into NetworkPolicies on a real API server, which validates
// and defaults them as a cluster would, through the changes policies go
// through.
func TestNetworkPolicyReconcilerOnAPIServer(t *testing.T) {
	client := startAPIServer(t)
	f := newNetworkPolicyFixture(t)
	ctx := t.Context()
	createSpaceNamespaces(t, client, f.dev, f.prod)
	prodNamespace := SpaceNamespace(f.prod.GUID)
	devNamespace := SpaceNamespace(f.dev.GUID)

	rec := NewNetworkPolicyReconciler(NetworkPolicyReconcilerOptions{Client: client, Desired: f.st})
	reconcile := func(t *testing.T) {
		t.Helper()
		if err := rec.Reconcile(ctx, f.prod.GUID); err != nil {
			t.Fatalf("Reconcile(prod) = %v", err)
		}
	}
	policies := client.NetworkingV1().NetworkPolicies(prodNamespace)
	get := func(t *testing.T, app string) *networkingv1.NetworkPolicy {
		t.Helper()
		np, err := policies.Get(ctx, NetworkPolicyName(app), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get NetworkPolicy of app %s: %v", app, err)
		}
		return np
	}
	expectGone := func(t *testing.T, app string) {
		t.Helper()
		if _, err := policies.Get(ctx, NetworkPolicyName(app), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("NetworkPolicy of app %s: err = %v, want not found", app, err)
		}
	}

	// Objects Ferry does not own: one without labels, and one of another
	// installation with the name a destination app would get.
	foreignNoLabels := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: prodNamespace},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	foreignInstallation := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName(uuid.NewString()), Namespace: prodNamespace,
			Labels: ownerLabels("other", ComponentNetworkPolicy)},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	for _, np := range []*networkingv1.NetworkPolicy{foreignNoLabels, foreignInstallation} {
		if _, err := policies.Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	f.policy(t, f.web, f.api, "tcp", 8080, 8080)
	workerToAPI := f.policy(t, f.worker, f.api, "udp", 5000, 5010)
	apiToWorker := f.policy(t, f.api, f.worker, "tcp", 9000, 9000)

	t.Run("policies become one NetworkPolicy per destination", func(t *testing.T) {
		reconcile(t)
		api := get(t, f.api)
		want := map[string][]string{
			devNamespace + "/" + f.web:     {"TCP:8080-8080"},
			prodNamespace + "/" + f.worker: {"UDP:5000-5010"},
		}
		if diff := cmp.Diff(want, ingressSources(api)); diff != "" {
			t.Errorf("ingress of api (-want +got):\n%s", diff)
		}
		last := api.Spec.Ingress[len(api.Spec.Ingress)-1]
		if len(last.From) != 1 || last.From[0].PodSelector != nil || last.From[0].NamespaceSelector == nil ||
			len(last.From[0].NamespaceSelector.MatchExpressions) != 1 || len(last.Ports) != 0 {
			t.Errorf("last ingress rule = %+v, want every port from the namespaces outside the spaces", last)
		}
		if got := api.Spec.PodSelector.MatchLabels[LabelAppGUID]; got != f.api {
			t.Errorf("pod selector app = %q, want %q", got, f.api)
		}
		if !ownedBy(api.Labels, "") || api.Labels[LabelComponent] != ComponentNetworkPolicy || api.Labels[LabelSpaceGUID] != f.prod.GUID {
			t.Errorf("labels = %v, want Ferry's ownership, component and space", api.Labels)
		}
		worker := get(t, f.worker)
		if diff := cmp.Diff(map[string][]string{prodNamespace + "/" + f.api: {"TCP:9000-9000"}}, ingressSources(worker)); diff != "" {
			t.Errorf("ingress of worker (-want +got):\n%s", diff)
		}
		// The dev namespace has no destination app, so no object.
		list, err := client.NetworkingV1().NetworkPolicies(devNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 0 {
			t.Errorf("NetworkPolicies in dev = %d, want none", len(list.Items))
		}

		// A sync with nothing to change writes nothing, so the object the
		// API server defaulted still equals the desired one.
		version := api.ResourceVersion
		reconcile(t)
		if got := get(t, f.api).ResourceVersion; got != version {
			t.Errorf("resourceVersion after a sync without changes = %s, want %s", got, version)
		}
	})

	t.Run("tampering is repaired", func(t *testing.T) {
		np := get(t, f.api)
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		np.Spec.PodSelector = metav1.LabelSelector{}
		delete(np.Labels, LabelAppGUID)
		if _, err := policies.Update(ctx, np, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		np = get(t, f.api)
		if got := len(ingressSources(np)); got != 2 {
			t.Errorf("ingress sources after repair = %v, want web and worker", ingressSources(np))
		}
		if np.Spec.PodSelector.MatchLabels[LabelAppGUID] != f.api || np.Labels[LabelAppGUID] != f.api {
			t.Errorf("pod selector %v labels %v, want app %s", np.Spec.PodSelector, np.Labels, f.api)
		}
	})

	t.Run("a deleted policy leaves the ingress", func(t *testing.T) {
		if _, err := store.DeleteNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{workerToAPI}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		want := map[string][]string{devNamespace + "/" + f.web: {"TCP:8080-8080"}}
		if diff := cmp.Diff(want, ingressSources(get(t, f.api))); diff != "" {
			t.Errorf("ingress of api (-want +got):\n%s", diff)
		}
	})

	t.Run("an app without policies loses its NetworkPolicy", func(t *testing.T) {
		if _, err := store.DeleteNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{apiToWorker}); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		expectGone(t, f.worker)
		get(t, f.api)
	})

	t.Run("deleting the source app removes its policies", func(t *testing.T) {
		if err := store.DeleteApp(ctx, f.st.DB(), f.web); err != nil {
			t.Fatal(err)
		}
		reconcile(t)
		expectGone(t, f.api)
	})

	t.Run("foreign NetworkPolicies are untouched", func(t *testing.T) {
		for _, want := range []*networkingv1.NetworkPolicy{foreignNoLabels, foreignInstallation} {
			got, err := policies.Get(ctx, want.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("foreign NetworkPolicy %s: %v", want.Name, err)
			}
			if got.Generation != 1 || len(got.Spec.Ingress) != 0 {
				t.Errorf("foreign NetworkPolicy %s changed: generation %d ingress %v", want.Name, got.Generation, got.Spec.Ingress)
			}
		}
	})

	t.Run("a foreign object with an app's name blocks only that app", func(t *testing.T) {
		squatter := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName(f.worker), Namespace: prodNamespace},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		}
		if _, err := policies.Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.policy(t, f.api, f.worker, "tcp", 9000, 9000)
		f.policy(t, f.worker, f.api, "tcp", 7000, 7000)
		err := rec.Reconcile(ctx, f.prod.GUID)
		if err == nil || !onlyNotOwned(err) {
			t.Fatalf("Reconcile() = %v, want only a NotOwnedError", err)
		}
		if got := get(t, f.worker); len(got.Spec.Ingress) != 0 || got.Labels[LabelManagedBy] != "" {
			t.Errorf("squatter changed: labels %v ingress %v", got.Labels, got.Spec.Ingress)
		}
		want := map[string][]string{prodNamespace + "/" + f.worker: {"TCP:7000-7000"}}
		if diff := cmp.Diff(want, ingressSources(get(t, f.api))); diff != "" {
			t.Errorf("ingress of api (-want +got):\n%s", diff)
		}
	})
}

// TestNetworkPolicyReconcilerRun checks that Run finds the space
// namespaces by listing them, and that Enqueue syncs a space at once.
func TestNetworkPolicyReconcilerRun(t *testing.T) {
	client := startAPIServer(t)
	f := newNetworkPolicyFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	createSpaceNamespaces(t, client, f.dev, f.prod)
	f.policy(t, f.web, f.api, "tcp", 8080, 8080)

	rec := NewNetworkPolicyReconciler(NetworkPolicyReconcilerOptions{Client: client, Desired: f.st})
	done := make(chan error, 1)
	// The resync interval is longer than the test, so only the resync at
	// start and Enqueue can create the objects.
	go func() { done <- rec.Run(ctx, time.Hour) }()
	defer func() {
		cancel()
		<-done
	}()
	waitForNetworkPolicy(t, client, SpaceNamespace(f.prod.GUID), NetworkPolicyName(f.api))

	f.policy(t, f.web, f.worker, "udp", 53, 53)
	rec.Enqueue(f.prod.GUID)
	waitForNetworkPolicy(t, client, SpaceNamespace(f.prod.GUID), NetworkPolicyName(f.worker))
}

// waitForNetworkPolicy polls until the NetworkPolicy exists. The deadline
// is generous: it bounds a wait for the reconciler, not its speed.
func waitForNetworkPolicy(t *testing.T, client kubernetes.Interface, namespace, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.NetworkingV1().NetworkPolicies(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("NetworkPolicy %s/%s never appeared: %v", namespace, name, err)
	}
}
