package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

// Queue keys of the route reconciler besides space GUIDs.
const (
	// allSpacesKey queues a sync of every space namespace.
	allSpacesKey = ""
	// appKeyPrefix starts the key of an app whose space needs a sync.
	appKeyPrefix = "app/"
)

// RouteReconcilerOptions configures NewRouteReconciler.
type RouteReconcilerOptions struct {
	// Client lists the space namespaces and writes Ingresses and their
	// TLS Secrets.
	Client kubernetes.Interface
	// Gateways writes HTTPRoutes, TCPRoutes and UDPRoutes. Ingress mode
	// does not use it.
	Gateways gatewayclient.Interface
	Desired  DesiredRoutes
	// Apps finds the space of an app named by EnqueueApp. Without it,
	// EnqueueApp does nothing.
	Apps AppSpaces
	// Certificates supplies the domains' certificates, which ingress mode
	// copies into space namespaces. Without it, Ingresses have no TLS.
	Certificates DesiredCertificates
	// Gateway is the main Gateway. Organizations' dedicated Gateways are
	// in its namespace.
	Gateway GatewayRef
	// Routing supplies Mode, IngressClass and UDPGateway.
	Routing      RoutingConfig
	Installation string
	Logger       *slog.Logger
}

// RouteReconciler keeps the routing objects of every space namespace in
// line with the routes that send traffic to the space's apps: HTTPRoutes,
// TCPRoutes and UDPRoutes in gateway mode, and Ingresses with their TLS
// Secrets in ingress mode. Internal routes belong to the internal route
// reconciler.
//
// Its key is the space GUID, because a space's objects live in its
// namespace and one store query returns all of them. A sync that has
// every expected object of the namespace deletes the stale ones by
// listing, so it needs no record of where a deleted route's objects were.
// A route with destinations in several spaces has one object in each of
// their namespaces, so every backend is in the object's own namespace and
// needs no ReferenceGrant.
//
// NOTE: Gateway API gives equal matches of several HTTPRoutes to the
// oldest one, so a route with destinations in two spaces sends its
// traffic to one space only, ignoring the weights across spaces.
type RouteReconciler struct {
	client       kubernetes.Interface
	gateways     gatewayclient.Interface
	desired      DesiredRoutes
	apps         AppSpaces
	certificates DesiredCertificates
	gateway      GatewayRef
	routing      RoutingConfig
	installation string
	logger       *slog.Logger
	queue        workqueue.TypedRateLimitingInterface[string]

	// skipped maps each skipped route's GUID to the reason it was last
	// logged with, so a route that stays unsupported is logged once.
	skippedMu sync.Mutex
	skipped   map[string]string
}

// NewRouteReconciler returns a reconciler; Run starts it.
func NewRouteReconciler(o RouteReconcilerOptions) *RouteReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &RouteReconciler{
		client: o.Client, gateways: o.Gateways, desired: o.Desired, apps: o.Apps, certificates: o.Certificates,
		gateway: o.Gateway, routing: o.Routing, installation: o.Installation, logger: logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "routes"}),
		skipped: map[string]string{},
	}
}

// Enqueue queues a sync of the space spaceGUID's routing objects, or of
// every space namespace when spaceGUID is "". It takes the payloads of
// store.RoutesChannel as they are.
func (r *RouteReconciler) Enqueue(spaceGUID string) { r.queue.Add(spaceGUID) }

// RoutesChanged implements RoutingReconciler with Enqueue.
func (r *RouteReconciler) RoutesChanged(spaceGUID string) { r.Enqueue(spaceGUID) }

// EnqueueApp queues a sync of the space of app appGUID, whose web process
// or Service may have appeared or gone. It takes the payloads of
// store.AppsChannel.
func (r *RouteReconciler) EnqueueApp(appGUID string) {
	if r.apps != nil && appGUID != "" {
		r.queue.Add(appKeyPrefix + appGUID)
	}
}

// ingressMode reports whether HTTP routes become Ingresses.
func (r *RouteReconciler) ingressMode() bool { return r.routing.Mode == config.RoutingModeIngress }

// Run serves the queue with one worker, and queues every space namespace
// at start and every resync, until ctx ends.
func (r *RouteReconciler) Run(ctx context.Context, resync time.Duration) error {
	defer r.queue.ShutDown()
	go wait.UntilWithContext(ctx, func(context.Context) { r.queue.Add(allSpacesKey) }, resync)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.processNext(ctx) {
	}
	return nil
}

// resync queues every space namespace of this installation.
func (r *RouteReconciler) resync(ctx context.Context) error {
	selector := labels.SelectorFromSet(ownerLabels(r.installation, "")).String()
	list, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list space namespaces: %w", err)
	}
	for _, ns := range list.Items {
		if guid := ns.Labels[LabelSpaceGUID]; guid != "" && ns.Name == SpaceNamespace(guid) {
			r.queue.Add(guid)
		}
	}
	return nil
}

// reconcileKey serves one queue key.
func (r *RouteReconciler) reconcileKey(ctx context.Context, key string) error {
	if key == allSpacesKey {
		return r.resync(ctx)
	}
	app, isApp := strings.CutPrefix(key, appKeyPrefix)
	if !isApp {
		return r.Reconcile(ctx, key)
	}
	space, err := r.apps.AppSpaceGUID(ctx, app)
	if errors.Is(err, store.ErrNotFound) {
		// A deleted app's space hears of it on store.RoutesChannel.
		return nil
	}
	if err != nil {
		return err
	}
	return r.Reconcile(ctx, space)
}

func (r *RouteReconciler) processNext(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)

	err := r.reconcileKey(ctx, key)
	switch {
	case err == nil:
		r.queue.Forget(key)
	case onlyNotOwned(err):
		r.logger.Warn("routes are blocked by objects Ferry does not manage", "key", key, "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile routes failed, retrying", "key", key, "error", err,
			"retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// Reconcile creates, updates and deletes the routing objects of the space
// spaceGUID's namespace so they match its routes. A space without a
// namespace has no running apps and no Services to route to, so it is
// left alone. Objects without this installation's ownership mark are never
// changed or deleted. Each mode manages only its own kinds, so switching
// modes leaves the other mode's objects in place.
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
	objects, err := r.desiredObjects(ctx, namespace, routes)
	if err != nil {
		return err
	}

	if r.ingressMode() {
		return errors.Join(
			syncObjects(ctx, r, tlsSecretKind(r.client), namespace, objects.secrets),
			syncObjects(ctx, r, ingressKind(r.client), namespace, objects.ingresses),
		)
	}
	return errors.Join(
		syncObjects(ctx, r, httpRouteKind(r.gateways), namespace, objects.httpRoutes),
		syncObjects(ctx, r, tcpRouteKind(r.gateways), namespace, objects.tcpRoutes),
		syncObjects(ctx, r, udpRouteKind(r.gateways), namespace, objects.udpRoutes),
	)
}
