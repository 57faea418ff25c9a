package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/store"
)

// DesiredRoutes is the source of the routes that send traffic into a
// space, normally PostgreSQL.
type DesiredRoutes interface {
	// SpaceRoutes returns the routes whose objects belong in the space
	// spaceGUID's namespace: every route with a destination app in the
	// space, carrying only those destinations. SpaceGUID of each is
	// spaceGUID, even for a route that another space shared.
	SpaceRoutes(ctx context.Context, spaceGUID string) ([]RouteSpec, error)
}

// StoreDesiredRoutes reads the routes of a space from the store.
type StoreDesiredRoutes struct {
	Store *store.Store
	// Installation is RouteSpec.Installation of every route.
	Installation string
}

// SpaceRoutes implements DesiredRoutes. A destination goes to the Service
// of its app's web process. The app reconciler makes Services only for web
// processes, so destinations of other process types, and of apps without a
// web process yet, are left out. Every web Service forwards AppPort to the
// app's one port, so a destination's own port is not carried over.
func (s StoreDesiredRoutes) SpaceRoutes(ctx context.Context, spaceGUID string) ([]RouteSpec, error) {
	routes, err := s.Store.DestinationsForSpace(ctx, spaceGUID)
	if err != nil {
		return nil, err
	}
	webProcesses := map[string]string{}
	for _, r := range routes {
		for _, d := range r.Destinations {
			if _, read := webProcesses[d.AppGUID]; read || d.ProcessType != ProcessTypeWeb {
				continue
			}
			processes, err := store.AppProcesses(ctx, s.Store.DB(), d.AppGUID)
			if err != nil {
				return nil, err
			}
			webProcesses[d.AppGUID] = ""
			for _, p := range processes {
				if p.Type == ProcessTypeWeb {
					webProcesses[d.AppGUID] = p.GUID
				}
			}
		}
	}

	specs := make([]RouteSpec, 0, len(routes))
	for _, r := range routes {
		spec := RouteSpec{
			Installation: s.Installation,
			GUID:         r.GUID,
			Host:         r.Host,
			Domain:       r.DomainName,
			Path:         r.Path,
			Port:         int32(r.Port),
			Protocol:     r.Protocol,
			Internal:     r.DomainInternal,
			SpaceGUID:    spaceGUID,
		}
		// The organization label names the namespace's organization,
		// which a route shared from another organization's space lacks.
		if r.SpaceGUID == spaceGUID {
			spec.OrgGUID = r.OrgGUID
		}
		for _, d := range r.Destinations {
			process := webProcesses[d.AppGUID]
			if d.ProcessType != ProcessTypeWeb || process == "" {
				continue
			}
			spec.Destinations = append(spec.Destinations, RouteDestination{
				AppGUID: d.AppGUID, ProcessGUID: process, ServiceName: ProcessServiceName(process),
				Weight: int32(d.Weight),
			})
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// RouteReconcilerOptions configures NewRouteReconciler.
type RouteReconcilerOptions struct {
	// Client lists the space namespaces.
	Client kubernetes.Interface
	// Gateways writes the HTTPRoutes.
	Gateways     gatewayclient.Interface
	Desired      DesiredRoutes
	Gateway      GatewayRef
	Installation string
	Logger       *slog.Logger
}

// RouteReconciler keeps the HTTPRoutes of every space namespace in line
// with the routes that send traffic to the space's apps. Its key is the
// space GUID, because a space's objects live in its namespace and one
// store query returns all of them. A sync that has every expected
// object of the namespace deletes the stale ones by listing, so it needs
// no record of where a deleted route's objects were. A route with
// destinations in several spaces has one HTTPRoute in each of their
// namespaces, so every backend is in the HTTPRoute's own namespace and
// needs no ReferenceGrant.
//
// NOTE: Gateway API gives equal matches of several HTTPRoutes to the
// oldest one, so a route with destinations in two spaces sends its
// traffic to one space only, ignoring the weights across spaces.
//
// Only HTTP routes of external domains get objects so far. TCP and
// internal routes are skipped.
type RouteReconciler struct {
	client       kubernetes.Interface
	gateways     gatewayclient.Interface
	desired      DesiredRoutes
	gateway      GatewayRef
	installation string
	logger       *slog.Logger
	queue        workqueue.TypedRateLimitingInterface[string]
}

// NewRouteReconciler returns a reconciler; Run starts it.
func NewRouteReconciler(o RouteReconcilerOptions) *RouteReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RouteReconciler{
		client: o.Client, gateways: o.Gateways, desired: o.Desired, gateway: o.Gateway,
		installation: o.Installation, logger: logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "routes"}),
	}
}

// Enqueue queues a sync of the space spaceGUID's routing objects.
func (r *RouteReconciler) Enqueue(spaceGUID string) { r.queue.Add(spaceGUID) }

// Run serves the queue with one worker, and queues every space namespace
// at start and every resync, until ctx ends.
func (r *RouteReconciler) Run(ctx context.Context, resync time.Duration) error {
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
func (r *RouteReconciler) resync(ctx context.Context) {
	selector := labels.SelectorFromSet(ownerLabels(r.installation, "")).String()
	list, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Warn("list space namespaces for the route resync failed", "error", err)
		}
		return
	}
	for _, ns := range list.Items {
		if guid := ns.Labels[LabelSpaceGUID]; guid != "" && ns.Name == SpaceNamespace(guid) {
			r.queue.Add(guid)
		}
	}
}

func (r *RouteReconciler) processNext(ctx context.Context) bool {
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
		r.logger.Warn("routes are blocked by objects Ferry does not manage", "space", key, "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile routes failed, retrying", "space", key, "error", err,
			"retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// Reconcile creates, updates and deletes the HTTPRoutes of the space
// spaceGUID's namespace so they match its routes. A space without a
// namespace has no running apps and no Services to route to, so it is
// left alone. Objects without this installation's ownership mark are never
// changed or deleted.
func (r *RouteReconciler) Reconcile(ctx context.Context, spaceGUID string) error {
	namespace := SpaceNamespace(spaceGUID)
	if _, err := r.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	routes, err := r.desired.SpaceRoutes(ctx, spaceGUID)
	if err != nil {
		return fmt.Errorf("read the routes of space %s: %w", spaceGUID, err)
	}

	want := map[string]*gatewayv1.HTTPRoute{}
	for _, route := range routes {
		if route.Protocol != RouteProtocolHTTP || route.Internal {
			continue
		}
		hr, err := MakeHTTPRoute(route, r.gateway)
		if err != nil {
			return err
		}
		want[hr.Name] = hr
	}

	api := r.gateways.GatewayV1().HTTPRoutes(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.installation, ComponentRouting)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list HTTPRoutes in %s: %w", namespace, err)
	}
	current := map[string]*gatewayv1.HTTPRoute{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		errs = append(errs, r.ensureHTTPRoute(ctx, current[name], want[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if _, wanted := want[name]; !wanted {
			errs = append(errs, r.deleteHTTPRoute(ctx, current[name]))
		}
	}
	return errors.Join(errs...)
}

// ensureHTTPRoute creates want, or updates current, the listed HTTPRoute
// or nil, to match it. Ferry owns the whole spec, so changes made by
// others are replaced.
func (r *RouteReconciler) ensureHTTPRoute(ctx context.Context, current, want *gatewayv1.HTTPRoute) error {
	api := r.gateways.GatewayV1().HTTPRoutes(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := api.Get(ctx, want.Name, metav1.GetOptions{})
			if getErr != nil {
				return fmt.Errorf("read HTTPRoute %s/%s: %w", want.Namespace, want.Name, getErr)
			}
			if !ownedBy(existing.Labels, r.installation) || existing.Labels[LabelComponent] != ComponentRouting {
				return &NotOwnedError{Kind: "HTTPRoute", Namespace: want.Namespace, Name: want.Name}
			}
			current = existing
		} else if err != nil {
			return fmt.Errorf("create HTTPRoute %s/%s: %w", want.Namespace, want.Name, err)
		} else {
			r.logger.Info("HTTPRoute created", "namespace", want.Namespace, "name", want.Name,
				"route", want.Annotations[AnnotationRouteURL])
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
		return fmt.Errorf("update HTTPRoute %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("HTTPRoute updated", "namespace", want.Namespace, "name", want.Name,
		"route", want.Annotations[AnnotationRouteURL])
	return nil
}

// deleteHTTPRoute deletes a stale HTTPRoute, and not one that replaced it
// since it was listed.
func (r *RouteReconciler) deleteHTTPRoute(ctx context.Context, hr *gatewayv1.HTTPRoute) error {
	uid := hr.UID
	err := r.gateways.GatewayV1().HTTPRoutes(hr.Namespace).Delete(ctx, hr.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete HTTPRoute %s/%s: %w", hr.Namespace, hr.Name, err)
	}
	r.logger.Info("HTTPRoute deleted: its route is gone or has no destination here", "namespace", hr.Namespace,
		"name", hr.Name)
	return nil
}
