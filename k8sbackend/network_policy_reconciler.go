package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"

	"github.com/ferrycf/ferry/store"
)

// DesiredNetworkPolicies is the source of the network policies whose
// destination apps are in a space. *store.Store implements it.
type DesiredNetworkPolicies interface {
	// SpaceNetworkPolicies returns every policy whose destination app is
	// in the space spaceGUID, with the spaces of both apps.
	SpaceNetworkPolicies(ctx context.Context, spaceGUID string) ([]store.SpaceNetworkPolicy, error)
}

// NetworkPolicyReconcilerOptions configures NewNetworkPolicyReconciler.
type NetworkPolicyReconcilerOptions struct {
	// Client lists the space namespaces and writes the NetworkPolicies.
	Client       kubernetes.Interface
	Desired      DesiredNetworkPolicies
	Installation string
	Logger       *slog.Logger
}

// NetworkPolicyReconciler keeps one NetworkPolicy per destination app,
// named NetworkPolicyName, in every space namespace in line with the Cloud
// Foundry network policies. Its key is the space GUID of the destination
// apps, because their NetworkPolicies live in that space's namespace.
// A sync deletes this installation's NetworkPolicies that no destination
// app needs any more, and never changes or deletes other objects.
type NetworkPolicyReconciler struct {
	client       kubernetes.Interface
	desired      DesiredNetworkPolicies
	installation string
	logger       *slog.Logger
	queue        workqueue.TypedRateLimitingInterface[string]
}

// NewNetworkPolicyReconciler returns a reconciler. Run starts it.
func NewNetworkPolicyReconciler(o NetworkPolicyReconcilerOptions) *NetworkPolicyReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &NetworkPolicyReconciler{
		client: o.Client, desired: o.Desired, installation: o.Installation, logger: logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "network-policies"}),
	}
}

// Enqueue queues a sync of the NetworkPolicies in the space spaceGUID's
// namespace. An empty spaceGUID, which the routing channel sends for
// changes that affect every space, queues every space namespace, and
// Enqueue lists them before it returns.
func (r *NetworkPolicyReconciler) Enqueue(spaceGUID string) {
	if spaceGUID == "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.resync(ctx)
		return
	}
	r.queue.Add(spaceGUID)
}

// Run serves the queue with one worker, and queues every space namespace
// at start and every resync, until ctx ends.
func (r *NetworkPolicyReconciler) Run(ctx context.Context, resync time.Duration) error {
	defer r.queue.ShutDown()
	go wait.UntilWithContext(ctx, r.resync, resync)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.processNext(ctx) {
	}
	return nil
}

// resync queues every space namespace of this installation.
func (r *NetworkPolicyReconciler) resync(ctx context.Context) {
	selector := labels.SelectorFromSet(ownerLabels(r.installation, "")).String()
	list, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Warn("list space namespaces for the network policy resync failed", "error", err)
		}
		return
	}
	for _, ns := range list.Items {
		if guid := ns.Labels[LabelSpaceGUID]; guid != "" && ns.Name == SpaceNamespace(guid) {
			r.queue.Add(guid)
		}
	}
}

func (r *NetworkPolicyReconciler) processNext(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)

	err := r.Reconcile(ctx, key)
	switch {
	case err == nil:
		r.queue.Forget(key)
	case onlyNotOwned(err):
		r.logger.Warn("network policies are blocked by objects Ferry does not manage", "space", key, "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile network policies failed, retrying", "space", key, "error", err,
			"retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// Reconcile creates, updates and deletes the NetworkPolicies of the space
// spaceGUID's namespace so that each app in the space that is the
// destination of network policies has one NetworkPolicy admitting their
// sources. A space without a namespace runs no pods, so it is left alone.
func (r *NetworkPolicyReconciler) Reconcile(ctx context.Context, spaceGUID string) error {
	namespace := SpaceNamespace(spaceGUID)
	if _, err := r.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	policies, err := r.desired.SpaceNetworkPolicies(ctx, spaceGUID)
	if err != nil {
		return fmt.Errorf("read the network policies of space %s: %w", spaceGUID, err)
	}

	want, err := r.desiredObjects(spaceGUID, policies)
	if err != nil {
		return err
	}

	api := r.client.NetworkingV1().NetworkPolicies(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.installation, ComponentNetworkPolicy)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list NetworkPolicies in %s: %w", namespace, err)
	}
	current := map[string]*networkingv1.NetworkPolicy{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		errs = append(errs, r.ensure(ctx, current[name], want[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if _, needed := want[name]; !needed {
			errs = append(errs, r.delete(ctx, current[name]))
		}
	}
	return errors.Join(errs...)
}

// desiredObjects groups policies by destination app and returns the
// NetworkPolicy of each, by name.
func (r *NetworkPolicyReconciler) desiredObjects(spaceGUID string, policies []store.SpaceNetworkPolicy) (map[string]*networkingv1.NetworkPolicy, error) {
	specs := map[string]*AppNetworkPolicySpec{}
	for _, p := range policies {
		spec := specs[p.DestinationAppGUID]
		if spec == nil {
			spec = &AppNetworkPolicySpec{Installation: r.installation, AppGUID: p.DestinationAppGUID, SpaceGUID: spaceGUID}
			specs[p.DestinationAppGUID] = spec
		}
		spec.Rules = append(spec.Rules, NetworkPolicyRule{
			SourceAppGUID: p.SourceAppGUID, SourceSpaceGUID: p.SourceSpaceGUID, Protocol: p.Protocol,
			StartPort: int32(p.StartPort), EndPort: int32(p.EndPort),
		})
	}
	want := make(map[string]*networkingv1.NetworkPolicy, len(specs))
	for _, spec := range specs {
		np, err := MakeNetworkPolicy(*spec)
		if err != nil {
			return nil, err
		}
		want[np.Name] = np
	}
	return want, nil
}

// ensure creates want when current, the listed object, is nil, and
// otherwise updates current to match want. Ferry owns the whole spec, so
// changes made by others are replaced.
func (r *NetworkPolicyReconciler) ensure(ctx context.Context, current, want *networkingv1.NetworkPolicy) error {
	api := r.client.NetworkingV1().NetworkPolicies(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := api.Get(ctx, want.Name, metav1.GetOptions{})
			if getErr != nil {
				return fmt.Errorf("read NetworkPolicy %s/%s: %w", want.Namespace, want.Name, getErr)
			}
			if !ownedBy(existing.Labels, r.installation) || existing.Labels[LabelComponent] != ComponentNetworkPolicy {
				return &NotOwnedError{Kind: "NetworkPolicy", Namespace: want.Namespace, Name: want.Name}
			}
			current = existing
		} else if err != nil {
			return fmt.Errorf("create NetworkPolicy %s/%s: %w", want.Namespace, want.Name, err)
		} else {
			r.logger.Info("NetworkPolicy created", "namespace", want.Namespace, "name", want.Name,
				"app", want.Labels[LabelAppGUID], "sources", len(want.Spec.Ingress))
			return nil
		}
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && equality.Semantic.DeepEqual(current.Spec, want.Spec) {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec = want.Spec
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update NetworkPolicy %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("NetworkPolicy updated", "namespace", want.Namespace, "name", want.Name,
		"app", want.Labels[LabelAppGUID], "sources", len(want.Spec.Ingress))
	return nil
}

// delete deletes a stale NetworkPolicy, and not one that replaced it since
// it was listed.
func (r *NetworkPolicyReconciler) delete(ctx context.Context, np *networkingv1.NetworkPolicy) error {
	uid := np.UID
	err := r.client.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete NetworkPolicy %s/%s: %w", np.Namespace, np.Name, err)
	}
	r.logger.Info("NetworkPolicy deleted: its app is no longer the destination of a network policy",
		"namespace", np.Namespace, "name", np.Name)
	return nil
}
