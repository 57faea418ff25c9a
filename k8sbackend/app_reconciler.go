package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/ferrycf/ferry/store"
)

// ErrAppNotFound marks an app that no longer exists. DesiredApps may wrap
// it; store.ErrNotFound means the same.
var ErrAppNotFound = errors.New("app not found")

// DesiredApps is the source of the apps' desired state, normally
// PostgreSQL.
type DesiredApps interface {
	// DesiredApp returns the desired state of an app, or an error that
	// wraps ErrAppNotFound or store.ErrNotFound when it no longer exists.
	DesiredApp(ctx context.Context, appGUID string) (AppSpec, error)
	// DesiredAppGUIDs returns the GUIDs of the apps that have a current
	// droplet. The periodic resync reconciles each of them.
	DesiredAppGUIDs(ctx context.Context) ([]string, error)
}

// AppReconcilerOptions configures NewAppReconciler.
type AppReconcilerOptions struct {
	Client  kubernetes.Interface
	Desired DesiredApps
	// Config supplies the registry credentials for the pull Secret.
	Config   Config
	Workload WorkloadConfig
	Logger   *slog.Logger
	// OnCrash records a crash, normally as an audit.app.process.crash
	// event (see Crash.AuditEvent). A failed call is retried, and a crash
	// is marked recorded only after a call succeeds. Nil ignores crashes.
	OnCrash func(context.Context, Crash) error
	// Deployments records deployment transitions. Nil uses Desired when
	// it implements DeploymentRecorder, and ignores deployments
	// otherwise.
	Deployments DeploymentRecorder
	// Spaces is the source of the spaces whose namespaces get quota
	// objects. Namespaces of spaces missing from it are deleted. Nil uses
	// Desired when it implements DesiredSpaces, and leaves space
	// namespaces alone otherwise.
	Spaces DesiredSpaces
	// StagingMemoryMB is the staging memory_mb setting, which the
	// namespaces' LimitRanges must allow. 0 means DefaultStagingMemoryMB.
	StagingMemoryMB int64
}

// AppReconciler runs apps. For every app with a current droplet it keeps
// the space's namespace, the app's env Secret, one StatefulSet per process
// and a Service per web process in line with the app's desired state. It
// scales them to zero while the app is stopped, and removes them when the
// app or its process goes. It is level-triggered: a resync and informer events on
// Ferry's objects feed one queue of app GUIDs, and each reconcile compares
// the whole desired state with the cluster. Given a source of spaces, it
// also keeps each space namespace's ResourceQuota and LimitRange in line
// with the space's quotas, and deletes the namespaces of deleted spaces.
type AppReconciler struct {
	client   kubernetes.Interface
	desired  DesiredApps
	cfg      Config
	workload WorkloadConfig
	logger   *slog.Logger
	onCrash  func(context.Context, Crash) error
	// deployments is nil when deployments are ignored.
	deployments DeploymentRecorder

	factory      informers.SharedInformerFactory
	nsFactory    informers.SharedInformerFactory
	statefulSets appslisters.StatefulSetLister
	services     corelisters.ServiceLister
	secrets      corelisters.SecretLister
	pods         corelisters.PodLister
	namespaces   corelisters.NamespaceLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]
	// spaces maintains the space namespaces; nil without a source of
	// spaces.
	spaces *spaceReconciler
}

// appObjectSelector selects every object that runs an app of installation;
// Ferry's informers see nothing else, so no lister returns a foreign object.
func appObjectSelector(installation string) labels.Selector {
	return labels.Set(ownerLabels(installation, ComponentApp)).AsSelector()
}

// NewAppReconciler returns a reconciler whose informers watch only the
// StatefulSets, pods, Services and Secrets that carry Ferry's app labels,
// and the namespaces Ferry made for spaces.
func NewAppReconciler(o AppReconcilerOptions) *AppReconciler {
	selector := appObjectSelector(o.Config.Installation).String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	nsSelector := labels.Set(ownerLabels(o.Config.Installation, ComponentSpace)).AsSelector().String()
	nsFactory := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = nsSelector }))

	r := &AppReconciler{
		client: o.Client, desired: o.Desired, cfg: o.Config, workload: o.Workload, logger: o.Logger, onCrash: o.OnCrash,
		factory: factory, nsFactory: nsFactory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "apps"}),
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.deployments = o.Deployments
	if r.deployments == nil {
		r.deployments, _ = o.Desired.(DeploymentRecorder)
	}

	stsInformer := factory.Apps().V1().StatefulSets()
	svcInformer := factory.Core().V1().Services()
	secretInformer := factory.Core().V1().Secrets()
	podInformer := factory.Core().V1().Pods()
	nsInformer := nsFactory.Core().V1().Namespaces()
	r.statefulSets, r.services, r.secrets = stsInformer.Lister(), svcInformer.Lister(), secretInformer.Lister()
	r.pods, r.namespaces = podInformer.Lister(), nsInformer.Lister()
	r.synced = []cache.InformerSynced{stsInformer.Informer().HasSynced, svcInformer.Informer().HasSynced,
		secretInformer.Informer().HasSynced, podInformer.Informer().HasSynced, nsInformer.Informer().HasSynced}
	spaces := o.Spaces
	if spaces == nil {
		spaces, _ = o.Desired.(DesiredSpaces)
	}
	if spaces != nil {
		var synced []cache.InformerSynced
		r.spaces, synced = newSpaceReconciler(o, spaces, nsFactory, r.statefulSets, r.logger)
		r.synced = append(r.synced, synced...)
	}

	enqueue := cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueueObject,
		UpdateFunc: func(_, obj any) { r.enqueueObject(obj) },
		DeleteFunc: r.enqueueObject,
	}
	// AddEventHandler fails only on a stopped informer (client-go v0.37),
	// and these have not started yet.
	_, _ = stsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueueObject,
		UpdateFunc: r.enqueueStatefulSetChange,
		DeleteFunc: r.enqueueObject,
	})
	_, _ = svcInformer.Informer().AddEventHandler(enqueue)
	_, _ = secretInformer.Informer().AddEventHandler(enqueue)
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: r.enqueuePodChange,
		DeleteFunc: r.enqueuePodDelete,
	})
	return r
}

// Enqueue adds app guid to the reconcile queue. Callers that change an
// app's desired state call it so the change does not wait for a resync.
func (r *AppReconciler) Enqueue(guid string) { r.queue.Add(guid) }

func (r *AppReconciler) enqueueObject(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if guid := meta.GetLabels()[LabelAppGUID]; guid != "" {
		r.queue.Add(guid)
	}
}

// enqueueStatefulSetChange skips updates of the status alone, which the
// StatefulSet controller writes whenever a pod changes.
func (r *AppReconciler) enqueueStatefulSetChange(oldObj, newObj any) {
	before, ok1 := oldObj.(*appsv1.StatefulSet)
	after, ok2 := newObj.(*appsv1.StatefulSet)
	if ok1 && ok2 && before.ResourceVersion != after.ResourceVersion && before.Generation == after.Generation &&
		maps.Equal(before.Labels, after.Labels) && maps.Equal(before.Annotations, after.Annotations) {
		return
	}
	r.enqueueObject(newObj)
}

// enqueueCrash enqueues a pod's app when its app container crashed again.
func (r *AppReconciler) enqueueCrash(oldObj, newObj any) {
	before, ok1 := oldObj.(*corev1.Pod)
	after, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 || observedCrashes(before) == observedCrashes(after) {
		return
	}
	r.enqueueObject(after)
}

// enqueuePodChange enqueues a pod's app when its app container crashed
// again or its readiness changed, because a deployment waits for new
// instances to become ready.
func (r *AppReconciler) enqueuePodChange(oldObj, newObj any) {
	before, ok1 := oldObj.(*corev1.Pod)
	after, ok2 := newObj.(*corev1.Pod)
	if ok1 && ok2 && podReady(before) != podReady(after) {
		r.enqueueObject(after)
		return
	}
	r.enqueueCrash(oldObj, newObj)
}

// enqueuePodDelete enqueues a deleted pod's app while it has a deployment
// waiting for the previous revision's pods to go. Apps without one
// ignore the event, because the StatefulSet controller replaces the pod.
func (r *AppReconciler) enqueuePodDelete(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok && r.deployments != nil {
		r.enqueueObject(pod)
	}
}

// start starts the informers and waits until their caches are filled.
func (r *AppReconciler) start(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	r.nsFactory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("app reconciler: informer caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// Run starts the informers, waits for their caches, and runs workers until
// ctx ends. Every resync period it enqueues every app with a droplet and
// every app that still has objects, so apps changed while no controller
// ran, apps whose events were missed, and objects edited or deleted by
// hand are reconciled.
func (r *AppReconciler) Run(ctx context.Context, workers int, resync time.Duration) error {
	defer r.queue.ShutDown()
	defer r.factory.Shutdown()
	defer r.nsFactory.Shutdown()
	if err := r.start(ctx); err != nil {
		return err
	}

	stopSpaces := r.spaces.startWorker(ctx)
	defer stopSpaces()
	workers = max(workers, 1)
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for r.processNext(ctx) {
			}
		}()
	}
	r.logger.Info("app reconciler started", "workers", workers, "resync", resync)

	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		r.resync(ctx)
		select {
		case <-ctx.Done():
			r.queue.ShutDown()
			for range workers {
				<-done
			}
			r.logger.Info("app reconciler stopped")
			return nil
		case <-ticker.C:
		}
	}
}

// resync enqueues every app with a droplet, every app with objects, and a
// sync of every space namespace.
func (r *AppReconciler) resync(ctx context.Context) {
	r.spaces.resync()
	guids, err := r.desired.DesiredAppGUIDs(ctx)
	if err != nil && ctx.Err() == nil {
		r.logger.Error("list apps to reconcile failed", "error", err)
	}
	for _, guid := range guids {
		r.queue.Add(guid)
	}
	for _, guid := range r.appGUIDsInCluster() {
		r.queue.Add(guid)
	}
}

// appGUIDsInCluster returns the apps that have StatefulSets, Services or
// env Secrets in the informer caches.
func (r *AppReconciler) appGUIDsInCluster() []string {
	seen := map[string]bool{}
	add := func(objectLabels map[string]string) {
		if guid := objectLabels[LabelAppGUID]; guid != "" {
			seen[guid] = true
		}
	}
	// Listers read the cache and fail only on an invalid selector.
	sets, _ := r.statefulSets.List(labels.Everything())
	for _, o := range sets {
		add(o.Labels)
	}
	services, _ := r.services.List(labels.Everything())
	for _, o := range services {
		add(o.Labels)
	}
	secrets, _ := r.secrets.List(labels.Everything())
	for _, o := range secrets {
		add(o.Labels)
	}
	guids := make([]string, 0, len(seen))
	for guid := range seen {
		guids = append(guids, guid)
	}
	return guids
}

// processNext reconciles one queued app and reports whether the queue is
// still open.
func (r *AppReconciler) processNext(ctx context.Context) bool {
	guid, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(guid)

	err := r.Reconcile(ctx, guid)
	switch {
	case err == nil:
		r.queue.Forget(guid)
	case onlyNotOwned(err):
		// A retry cannot fix this until someone removes the object; the
		// resync checks again.
		r.logger.Warn("app objects are blocked by objects Ferry does not manage", "app_guid", guid, "error", err)
		r.queue.Forget(guid)
	case apierrors.IsConflict(err):
		// The informer cache was behind the API server, which happens
		// whenever a controller wrote a status since the last event.
		r.logger.Debug("app objects changed during reconcile, retrying", "app_guid", guid, "error", err)
		r.queue.AddRateLimited(guid)
	default:
		r.logger.Warn("reconcile app failed, retrying", "app_guid", guid, "error", err,
			"retries", r.queue.NumRequeues(guid))
		r.queue.AddRateLimited(guid)
	}
	return true
}

// NotOwnedError is returned for an object that has the name Ferry needs
// but lacks Ferry's labels. Ferry never changes or deletes such objects.
type NotOwnedError struct {
	Kind      string
	Namespace string
	Name      string
}

func (e *NotOwnedError) Error() string {
	if e.Namespace == "" {
		return fmt.Sprintf("%s %s exists and is not managed by Ferry", e.Kind, e.Name)
	}
	return fmt.Sprintf("%s %s/%s exists and is not managed by Ferry", e.Kind, e.Namespace, e.Name)
}

// onlyNotOwned reports whether err, and every error joined in it, is a
// *NotOwnedError.
func onlyNotOwned(err error) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !onlyNotOwned(e) {
				return false
			}
		}
		return true
	}
	var notOwned *NotOwnedError
	return errors.As(err, &notOwned)
}

// Reconcile brings the cluster in line with the desired state of app
// guid. It returns errors a retry may fix, joined when several objects failed, and
// a *NotOwnedError for names taken by foreign objects.
func (r *AppReconciler) Reconcile(ctx context.Context, guid string) error {
	app, err := r.desired.DesiredApp(ctx, guid)
	if errors.Is(err, ErrAppNotFound) || errors.Is(err, store.ErrNotFound) {
		return r.removeApp(ctx, guid, "the app was deleted")
	}
	if err != nil {
		return fmt.Errorf("read the desired state of app %s: %w", guid, err)
	}
	if app.Droplet == nil {
		return r.removeApp(ctx, guid, "the app has no current droplet")
	}
	app.Installation = r.cfg.Installation

	if err := r.ensureNamespace(ctx, app); err != nil {
		return err
	}
	if err := r.ensureEnvSecret(ctx, app); err != nil {
		return err
	}
	deployment, err := r.activeDeployment(ctx, app)
	if err != nil {
		return err
	}
	var errs []error
	var progress []rolloutProgress
	keep := map[string]bool{}
	for _, proc := range app.Processes {
		keep[proc.GUID] = true
		if deployment != nil {
			p, err := r.rollProcess(ctx, app, proc, deployment)
			if err != nil {
				errs = append(errs, err)
			}
			progress = append(progress, p)
		} else if err := r.ensureProcessWorkload(ctx, app, proc); err != nil {
			errs = append(errs, err)
		}
		if proc.Type == ProcessTypeWeb {
			if err := r.ensureService(ctx, MakeService(app, proc)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := r.removeStaleProcesses(ctx, app, keep); err != nil {
		errs = append(errs, err)
	}
	if err := r.recordCrashes(ctx, app); err != nil {
		errs = append(errs, err)
	}
	if deployment != nil && len(errs) == 0 {
		if err := r.recordRollout(ctx, app, deployment, progress); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
