package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// DesiredInternalRoutes is the source of the internal routes of an
// installation, normally PostgreSQL.
type DesiredInternalRoutes interface {
	// InternalRoutes returns every route of an internal domain, with its
	// destinations in every space.
	InternalRoutes(ctx context.Context) ([]InternalRouteSpec, error)
}

// InternalRouteSpec is the desired state of one internal route.
type InternalRouteSpec struct {
	// Route has the route's own space and organization, and the
	// destinations in every space.
	Route RouteSpec
	// DestinationSpaces maps the process GUID of each destination to the
	// space of its app, whose namespace has the process's Service.
	DestinationSpaces map[string]string
}

// InternalRoutes implements DesiredInternalRoutes. It maps destinations to
// web process Services by calling SpaceRoutes for each space with a
// destination app, so the rules of SpaceRoutes apply: destinations of
// other process types, and of apps without a web process yet, are left
// out.
func (s StoreDesiredRoutes) InternalRoutes(ctx context.Context) ([]InternalRouteSpec, error) {
	routes, err := s.Store.InternalRoutes(ctx)
	if err != nil {
		return nil, err
	}
	specs := make([]InternalRouteSpec, len(routes))
	index := make(map[string]int, len(routes))
	spaces := map[string]bool{}
	for i, r := range routes {
		index[r.GUID] = i
		specs[i] = InternalRouteSpec{
			Route: RouteSpec{
				Installation: s.Installation,
				GUID:         r.GUID,
				Host:         r.Host,
				Domain:       r.DomainName,
				Path:         r.Path,
				Protocol:     r.Protocol,
				Internal:     true,
				SpaceGUID:    r.SpaceGUID,
				OrgGUID:      r.OrgGUID,
			},
			DestinationSpaces: map[string]string{},
		}
		for _, space := range r.DestinationSpaceGUIDs {
			spaces[space] = true
		}
	}

	for _, space := range slices.Sorted(maps.Keys(spaces)) {
		spaceRoutes, err := s.SpaceRoutes(ctx, space)
		if err != nil {
			return nil, err
		}
		for _, sr := range spaceRoutes {
			i, internal := index[sr.GUID]
			if !internal {
				continue
			}
			for _, d := range sr.Destinations {
				specs[i].Route.Destinations = append(specs[i].Route.Destinations, d)
				specs[i].DestinationSpaces[d.ProcessGUID] = space
			}
		}
	}
	return specs, nil
}

// InternalRouteReconcilerOptions configures NewInternalRouteReconciler.
type InternalRouteReconcilerOptions struct {
	// Client writes the namespace, Services and EndpointSlices of internal
	// routes, and watches the EndpointSlices of app Services.
	Client  kubernetes.Interface
	Desired DesiredInternalRoutes
	// Config places the internal route Services, normally
	// Config.Routing.Internal.
	Config       InternalRouteConfig
	Installation string
	Logger       *slog.Logger
}

// syncAllInternalRoutesKey is the queue key of a sync of every internal
// route. Other keys are route GUIDs, which are never empty.
const syncAllInternalRoutesKey = ""

// InternalRouteReconciler keeps one headless Service per internal route,
// and one EndpointSlice per destination process, in the internal route
// namespace. Each EndpointSlice copies the endpoints of the EndpointSlices
// that Kubernetes keeps for the process's web Service in its space
// namespace, so the route's DNS name resolves to the ready instances.
//
// A full sync reads the routes from the store, writes every object and
// deletes stale ones. An informer on the EndpointSlices with this
// installation's ownership labels receives both the app Services' slices,
// because Kubernetes' EndpointSlice controller copies a Service's labels
// onto its slices (checked with Kubernetes v1.37.2), and the slices this
// reconciler writes. A change of either queues the routes it affects, and
// those routes' slices are rewritten from the routes the last full sync
// read, without a store query. So a change in the store, such as a new
// destination, takes effect at the next full sync, which Enqueue starts.
type InternalRouteReconciler struct {
	client       kubernetes.Interface
	desired      DesiredInternalRoutes
	cfg          InternalRouteConfig
	installation string
	logger       *slog.Logger

	factory informers.SharedInformerFactory
	slices  discoverylisters.EndpointSliceLister
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// routes are the internal routes of the last full sync, by route GUID,
	// without those whose Service name an object Ferry does not own takes.
	routes map[string]InternalRouteSpec
	// routesBySource maps "namespace/name" of each destination Service to
	// the GUIDs of the routes whose addresses it provides.
	routesBySource map[string][]string
	// rejected are the routes the translation rejected in the last full
	// sync, so each is logged once. Only the worker uses it.
	rejected map[string]bool
}

// NewInternalRouteReconciler returns a reconciler whose informer watches
// only EndpointSlices with this installation's ownership labels. Run
// starts it.
func NewInternalRouteReconciler(o InternalRouteReconcilerOptions) *InternalRouteReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	selector := labels.SelectorFromSet(ownerLabels(o.Installation, "")).String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	informer := factory.Discovery().V1().EndpointSlices()

	r := &InternalRouteReconciler{
		client: o.Client, desired: o.Desired, cfg: o.Config, installation: o.Installation, logger: logger,
		factory: factory, slices: informer.Lister(), synced: informer.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "internal-routes"}),
		routes:         map[string]InternalRouteSpec{},
		routesBySource: map[string][]string{},
	}
	// AddEventHandler returns an error only for a stopped informer
	// (client-go v0.37), and this one has not started.
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: r.enqueueSlice,
		UpdateFunc: func(oldObj, newObj any) {
			before, ok1 := oldObj.(*discoveryv1.EndpointSlice)
			after, ok2 := newObj.(*discoveryv1.EndpointSlice)
			// The informer's periodic resync repeats unchanged objects,
			// which the reconciler's own resync already covers.
			if ok1 && ok2 && before.ResourceVersion == after.ResourceVersion {
				return
			}
			r.enqueueSlice(newObj)
		},
		DeleteFunc: r.enqueueSlice,
	})
	return r
}

// Enqueue queues a sync of every internal route, which reads them from
// the store.
func (r *InternalRouteReconciler) Enqueue() { r.queue.Add(syncAllInternalRoutesKey) }

// Run starts the EndpointSlice informer, waits for its cache, and then
// serves the queue with one worker until ctx ends. It queues a full sync
// at start and every resync.
func (r *InternalRouteReconciler) Run(ctx context.Context, resync time.Duration) error {
	defer r.queue.ShutDown()
	defer r.factory.Shutdown()
	r.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.synced) {
		return fmt.Errorf("internal route reconciler: EndpointSlice cache did not sync: %w", context.Cause(ctx))
	}

	go wait.UntilWithContext(ctx, func(context.Context) { r.Enqueue() }, resync)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	r.logger.Info("internal route reconciler started", "namespace", r.cfg.namespace(), "resync", resync)
	for r.processNext(ctx) {
	}
	r.logger.Info("internal route reconciler stopped")
	return nil
}

func (r *InternalRouteReconciler) processNext(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)

	var err error
	if key == syncAllInternalRoutesKey {
		err = r.SyncAll(ctx)
	} else {
		err = r.SyncRoute(ctx, key)
	}
	switch {
	case err == nil:
		r.queue.Forget(key)
	case onlyNotOwned(err):
		r.logger.Warn("internal routes are blocked by objects Ferry does not manage", "route", key, "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile internal routes failed, retrying", "route", key, "error", err,
			"retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// enqueueSlice queues the routes whose objects depend on an EndpointSlice:
// the route of a slice this reconciler wrote, so changes made by others
// are undone, or the routes with the slice's Service as a destination.
func (r *InternalRouteReconciler) enqueueSlice(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	slice, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if slice.Namespace == r.cfg.namespace() && slice.Labels[LabelComponent] == ComponentRouting {
		if guid := slice.Labels[LabelRouteGUID]; guid != "" {
			r.queue.Add(guid)
		}
		return
	}
	service := slice.Labels[discoveryv1.LabelServiceName]
	if service == "" {
		return
	}
	r.mu.Lock()
	guids := r.routesBySource[slice.Namespace+"/"+service]
	r.mu.Unlock()
	for _, guid := range guids {
		r.queue.Add(guid)
	}
}

// SyncAll brings the internal route namespace in line with the store. It
// creates the namespace when it is missing, and writes the Service and
// EndpointSlices of every internal route. Then it deletes the Services
// and EndpointSlices of this installation that no route needs. Objects
// without this installation's ownership mark are never changed or
// deleted, and a route whose Service name is taken by one gets no
// EndpointSlices.
func (r *InternalRouteReconciler) SyncAll(ctx context.Context) error {
	namespace := r.cfg.namespace()
	if err := r.ensureNamespace(ctx); err != nil {
		return err
	}
	routes, err := r.desired.InternalRoutes(ctx)
	if err != nil {
		return fmt.Errorf("read the internal routes: %w", err)
	}

	selector := labels.SelectorFromSet(ownerLabels(r.installation, ComponentRouting)).String()
	services, err := r.client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list internal route Services in %s: %w", namespace, err)
	}
	currentServices := map[string]*corev1.Service{}
	for i := range services.Items {
		currentServices[services.Items[i].Name] = &services.Items[i]
	}

	var errs []error
	wantServices := map[string]bool{}
	owned := map[string]InternalRouteSpec{}
	rejected := map[string]bool{}
	for _, route := range routes {
		svc, err := MakeInternalRouteService(route.Route, r.cfg)
		if err != nil {
			// A retry cannot fix a route the translation rejects, so it is
			// logged once and skipped.
			rejected[route.Route.GUID] = true
			if !r.rejected[route.Route.GUID] {
				r.logger.Warn("internal route skipped", "route", route.Route.GUID, "error", err)
			}
			continue
		}
		wantServices[svc.Name] = true
		err = r.ensureService(ctx, currentServices[svc.Name], svc)
		errs = append(errs, err)
		// A route keeps its slices through other errors, so a failed
		// write does not take its addresses away.
		var notOwned *NotOwnedError
		if !errors.As(err, &notOwned) {
			owned[route.Route.GUID] = route
		}
	}
	r.rejected = rejected
	r.setRoutes(owned)

	wantSlices := map[string]bool{}
	for _, guid := range slices.Sorted(maps.Keys(owned)) {
		errs = append(errs, r.syncSlices(ctx, owned[guid]))
		for _, name := range internalRouteSliceNames(owned[guid]) {
			wantSlices[name] = true
		}
	}
	errs = append(errs, r.deleteStaleSlices(ctx, selector, wantSlices))
	for _, name := range slices.Sorted(maps.Keys(currentServices)) {
		if !wantServices[name] {
			errs = append(errs, r.deleteService(ctx, currentServices[name]))
		}
	}
	return errors.Join(errs...)
}

// SyncRoute rewrites the EndpointSlices of the internal route guid from
// the state of the last full sync and the current EndpointSlices of its
// destination Services. A route that the last full sync did not see is
// left to the next one.
func (r *InternalRouteReconciler) SyncRoute(ctx context.Context, guid string) error {
	r.mu.Lock()
	route, known := r.routes[guid]
	r.mu.Unlock()
	if !known {
		return nil
	}
	return r.syncSlices(ctx, route)
}

// setRoutes replaces the routes of the last full sync and the index from
// destination Services to routes.
func (r *InternalRouteReconciler) setRoutes(routes map[string]InternalRouteSpec) {
	bySource := map[string][]string{}
	for _, guid := range slices.Sorted(maps.Keys(routes)) {
		route := routes[guid]
		for _, d := range route.Route.Destinations {
			key := SpaceNamespace(route.DestinationSpaces[d.ProcessGUID]) + "/" + d.ServiceName
			if !slices.Contains(bySource[key], guid) {
				bySource[key] = append(bySource[key], guid)
			}
		}
	}
	r.mu.Lock()
	r.routes, r.routesBySource = routes, bySource
	r.mu.Unlock()
}

// syncSlices writes the EndpointSlices of route and deletes the other
// slices this installation labelled with the route.
func (r *InternalRouteReconciler) syncSlices(ctx context.Context, route InternalRouteSpec) error {
	want, err := makeInternalRouteSlices(route, r.cfg, r.sourceSlices)
	if err != nil {
		return err
	}
	namespace := r.cfg.namespace()
	set := ownerLabels(r.installation, ComponentRouting)
	set[LabelRouteGUID] = route.Route.GUID
	list, err := r.client.DiscoveryV1().EndpointSlices(namespace).List(ctx,
		metav1.ListOptions{LabelSelector: labels.SelectorFromSet(set).String()})
	if err != nil {
		return fmt.Errorf("list the EndpointSlices of internal route %s: %w", route.Route.GUID, err)
	}
	current := map[string]*discoveryv1.EndpointSlice{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}

	var errs []error
	names := make([]string, 0, len(want))
	for _, slice := range want {
		names = append(names, slice.Name)
		errs = append(errs, r.ensureSlice(ctx, current[slice.Name], slice))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if !slices.Contains(names, name) {
			errs = append(errs, r.deleteSlice(ctx, current[name]))
		}
	}
	return errors.Join(errs...)
}

// sourceSlices returns the cached EndpointSlices of the Service
// namespace/service. The informer sees only slices with this
// installation's ownership labels, which Kubernetes copies from the
// Service.
func (r *InternalRouteReconciler) sourceSlices(namespace, service string) []discoveryv1.EndpointSlice {
	selector := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	// Listers read the cache and fail only on an invalid selector.
	cached, _ := r.slices.EndpointSlices(namespace).List(selector)
	out := make([]discoveryv1.EndpointSlice, 0, len(cached))
	for _, s := range cached {
		// A shallow copy: MakeInternalRouteEndpointSlice copies the
		// endpoints before it uses them.
		out = append(out, *s)
	}
	return out
}

// makeInternalRouteSlices returns one EndpointSlice per destination
// process of route, with the endpoints that sources returns for the
// process's Service in the namespace of the process's space. Several
// destinations of one process, with different ports, share one slice.
func makeInternalRouteSlices(route InternalRouteSpec, cfg InternalRouteConfig,
	sources func(namespace, service string) []discoveryv1.EndpointSlice) ([]*discoveryv1.EndpointSlice, error) {
	var out []*discoveryv1.EndpointSlice
	seen := map[string]bool{}
	for _, d := range route.Route.Destinations {
		if seen[d.ProcessGUID] {
			continue
		}
		seen[d.ProcessGUID] = true
		space, found := route.DestinationSpaces[d.ProcessGUID]
		if !found {
			return nil, fmt.Errorf("internal route %s: the space of destination process %s is missing",
				route.Route.GUID, d.ProcessGUID)
		}
		slice, err := MakeInternalRouteEndpointSlice(route.Route, cfg, d, sources(SpaceNamespace(space), d.ServiceName))
		if err != nil {
			return nil, err
		}
		out = append(out, slice)
	}
	return out, nil
}

// ensureNamespace creates the internal route namespace with this
// installation's ownership labels when it is missing. A namespace that an
// operator created is used as it is.
func (r *InternalRouteReconciler) ensureNamespace(ctx context.Context) error {
	name := r.cfg.namespace()
	_, err := r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ownerLabels(r.installation, ComponentRouting)}}
	_, err = r.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create namespace %s for internal routes: %w", name, err)
	}
	r.logger.Info("namespace for internal routes created", "namespace", name)
	return nil
}
