package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// DesiredSpaces is the source of spaces and their quotas, normally
// PostgreSQL.
type DesiredSpaces interface {
	// DesiredSpaces returns the spaces among guids that exist, keyed by
	// GUID. A GUID without an entry is a space that no longer exists, so an
	// error must be returned whenever existence is unknown.
	DesiredSpaces(ctx context.Context, guids []string) (map[string]SpaceSpec, error)
}

// allSpaces is the space queue's key for a sync of every space namespace,
// which is also the only sync that deletes namespaces.
const allSpaces = "*"

// spaceReconciler keeps every space namespace of the installation in line
// with its space: it maintains the namespace's ResourceQuota and
// LimitRange, and deletes the namespace once the space is gone. One worker
// serves its queue, so syncs never run concurrently. The app reconciler
// runs it and shares its namespace and StatefulSet caches.
type spaceReconciler struct {
	client       kubernetes.Interface
	desired      DesiredSpaces
	installation string
	// stagingMemoryMB is the memory staging containers get at least.
	stagingMemoryMB int64
	logger          *slog.Logger

	namespaces   corelisters.NamespaceLister
	statefulSets appslisters.StatefulSetLister
	quotas       corelisters.ResourceQuotaLister
	limitRanges  corelisters.LimitRangeLister
	queue        workqueue.TypedRateLimitingInterface[string]
	// keptAll records that the last sync of all spaces kept every
	// namespace because the database had none of their spaces, so the
	// warning is logged once until that changes.
	keptAll bool
}

// newSpaceReconciler adds the ResourceQuota and LimitRange informers to
// nsFactory, whose selector matches Ferry's space objects, and returns
// the reconciler with the cache-sync checks of its new informers.
func newSpaceReconciler(o AppReconcilerOptions, spaces DesiredSpaces, nsFactory informers.SharedInformerFactory,
	statefulSets appslisters.StatefulSetLister, logger *slog.Logger) (*spaceReconciler, []cache.InformerSynced) {
	s := &spaceReconciler{
		client: o.Client, desired: spaces, installation: o.Config.Installation, logger: logger,
		stagingMemoryMB: o.StagingMemoryMB, statefulSets: statefulSets,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "spaces"}),
	}
	if s.stagingMemoryMB <= 0 {
		s.stagingMemoryMB = DefaultStagingMemoryMB
	}

	nsInformer := nsFactory.Core().V1().Namespaces()
	quotaInformer := nsFactory.Core().V1().ResourceQuotas()
	limitInformer := nsFactory.Core().V1().LimitRanges()
	s.namespaces, s.quotas, s.limitRanges = nsInformer.Lister(), quotaInformer.Lister(), limitInformer.Lister()

	// A namespace created after the caches filled gets its quota objects
	// at once. The ones listed at start wait for the first resync, which
	// reads all spaces in a few queries.
	_, _ = nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			if !isInInitialList {
				s.enqueue(obj)
			}
		},
	})
	changed := cache.ResourceEventHandlerFuncs{
		UpdateFunc: s.enqueueSpecChange,
		DeleteFunc: s.enqueue,
	}
	_, _ = quotaInformer.Informer().AddEventHandler(changed)
	_, _ = limitInformer.Informer().AddEventHandler(changed)
	return s, []cache.InformerSynced{quotaInformer.Informer().HasSynced, limitInformer.Informer().HasSynced}
}

func (s *spaceReconciler) enqueue(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if meta, ok := obj.(metav1.Object); ok {
		if guid := meta.GetLabels()[LabelSpaceGUID]; guid != "" {
			s.queue.Add(guid)
		}
	}
}

// enqueueSpecChange skips updates that leave an object's spec and
// metadata as they were, such as the quota controller's writes of the
// used amounts. A resync picks those up.
func (s *spaceReconciler) enqueueSpecChange(oldObj, newObj any) {
	before, ok1 := oldObj.(metav1.Object)
	after, ok2 := newObj.(metav1.Object)
	if ok1 && ok2 && maps.Equal(before.GetLabels(), after.GetLabels()) &&
		maps.Equal(before.GetAnnotations(), after.GetAnnotations()) && sameSpec(oldObj, newObj) {
		return
	}
	s.enqueue(newObj)
}

func sameSpec(a, b any) bool {
	switch before := a.(type) {
	case *corev1.ResourceQuota:
		after, ok := b.(*corev1.ResourceQuota)
		return ok && equality.Semantic.DeepEqual(before.Spec, after.Spec)
	case *corev1.LimitRange:
		after, ok := b.(*corev1.LimitRange)
		return ok && equality.Semantic.DeepEqual(before.Spec, after.Spec)
	}
	return false
}

// startWorker starts the worker that serves the queue and returns a
// function that shuts the queue down and waits for the worker. On a nil
// reconciler, which has no source of spaces, both do nothing.
func (s *spaceReconciler) startWorker(ctx context.Context) (stop func()) {
	if s == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s.processNext(ctx) {
		}
	}()
	return func() {
		s.queue.ShutDown()
		<-done
	}
}

// resync queues a sync of every space namespace.
func (s *spaceReconciler) resync() {
	if s != nil {
		s.queue.Add(allSpaces)
	}
}

func (s *spaceReconciler) processNext(ctx context.Context) bool {
	key, shutdown := s.queue.Get()
	if shutdown {
		return false
	}
	defer s.queue.Done(key)

	var err error
	if key == allSpaces {
		err = s.syncAll(ctx)
	} else {
		err = s.syncSpace(ctx, key)
	}
	switch {
	case err == nil:
		s.queue.Forget(key)
	case onlyNotOwned(err):
		s.logger.Warn("space quota objects are blocked by objects Ferry does not manage", "space", key, "error", err)
		s.queue.Forget(key)
	default:
		s.logger.Warn("reconcile space namespaces failed, retrying", "space", key, "error", err,
			"retries", s.queue.NumRequeues(key))
		s.queue.AddRateLimited(key)
	}
	return true
}

// spaceNamespaces returns the cached namespaces of this installation's
// spaces that are not being deleted, keyed by space GUID. A namespace
// whose name is not the one its space label derives is left out, so
// labels copied onto another namespace never get it deleted.
func (s *spaceReconciler) spaceNamespaces() map[string]*corev1.Namespace {
	// Listers read the cache and fail only on an invalid selector.
	all, _ := s.namespaces.List(labels.Everything())
	byGUID := make(map[string]*corev1.Namespace, len(all))
	for _, ns := range all {
		guid := ns.Labels[LabelSpaceGUID]
		if guid == "" || ns.Name != SpaceNamespace(guid) || ns.DeletionTimestamp != nil ||
			!ownedBy(ns.Labels, s.installation) {
			continue
		}
		byGUID[guid] = ns
	}
	return byGUID
}

// syncAll deletes the namespaces whose space no longer exists and brings
// the quota objects of the others in line with their spaces' quotas.
func (s *spaceReconciler) syncAll(ctx context.Context) error {
	namespaces := s.spaceNamespaces()
	if len(namespaces) == 0 {
		return nil
	}
	specs, err := s.desired.DesiredSpaces(ctx, slices.Sorted(maps.Keys(namespaces)))
	if err != nil {
		return fmt.Errorf("read the spaces of %d namespaces: %w", len(namespaces), err)
	}

	var errs []error
	if len(specs) == 0 {
		// A database without any of the spaces is far more often the
		// wrong database, or one restored empty, than an installation
		// whose every space was deleted, and deleting a namespace stops
		// every app in it.
		if !s.keptAll {
			s.logger.Warn("none of the spaces of this installation's namespaces exist in the database; "+
				"keeping the namespaces: check database_url, or delete them by hand", "namespaces", len(namespaces))
		}
		s.keptAll = true
	} else {
		s.keptAll = false
		for guid, ns := range namespaces {
			if _, exists := specs[guid]; !exists {
				errs = append(errs, s.deleteNamespace(ctx, ns))
			}
		}
	}
	for _, guid := range slices.Sorted(maps.Keys(specs)) {
		errs = append(errs, s.ensureQuotaObjects(ctx, specs[guid]))
	}
	return errors.Join(errs...)
}

// syncSpace brings the quota objects of one space's namespace in line.
// A namespace whose space is gone waits for syncAll, which alone deletes.
func (s *spaceReconciler) syncSpace(ctx context.Context, guid string) error {
	if _, found := s.spaceNamespaces()[guid]; !found {
		return nil
	}
	specs, err := s.desired.DesiredSpaces(ctx, []string{guid})
	if err != nil {
		return fmt.Errorf("read space %s: %w", guid, err)
	}
	spec, exists := specs[guid]
	if !exists {
		return nil
	}
	return s.ensureQuotaObjects(ctx, spec)
}

// deleteNamespace deletes the namespace of a deleted space, and not a
// namespace that replaced it since the informer saw it.
func (s *spaceReconciler) deleteNamespace(ctx context.Context, ns *corev1.Namespace) error {
	uid := ns.UID
	err := s.client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
	}
	s.logger.Info("space namespace deleted: its space no longer exists", "namespace", ns.Name,
		"space_guid", ns.Labels[LabelSpaceGUID])
	return nil
}

// ensureQuotaObjects creates or updates the ResourceQuota and LimitRange
// of a space's namespace.
func (s *spaceReconciler) ensureQuotaObjects(ctx context.Context, space SpaceSpec) error {
	namespace := SpaceNamespace(space.GUID)
	// Listers read the cache and fail only on an invalid selector.
	sets, _ := s.statefulSets.StatefulSets(namespace).List(labels.Everything())
	current, err := s.quotas.ResourceQuotas(namespace).Get(SpaceResourceQuotaName)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var used corev1.ResourceList
	if current != nil {
		used = current.Status.Used
	}
	running := usageOf(sets, used)

	return errors.Join(
		s.ensureResourceQuota(ctx, current, MakeSpaceResourceQuota(space, running, s.installation)),
		s.ensureLimitRange(ctx, MakeSpaceLimitRange(space, running, s.installation, s.stagingMemoryMB)),
	)
}

// ensureResourceQuota creates want, or updates current, the cached quota
// or nil, to match it. Ferry owns the whole spec, so any other value is
// replaced.
func (s *spaceReconciler) ensureResourceQuota(ctx context.Context, current, want *corev1.ResourceQuota) error {
	quotas := s.client.CoreV1().ResourceQuotas(want.Namespace)
	if current == nil {
		_, err := quotas.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := quotas.Get(ctx, want.Name, metav1.GetOptions{})
			return s.existingError("ResourceQuota", want.ObjectMeta, existing, getErr)
		}
		if err != nil {
			return fmt.Errorf("create ResourceQuota %s/%s: %w", want.Namespace, want.Name, err)
		}
		s.logger.Info("space quota created", "namespace", want.Namespace, "hard", want.Spec.Hard)
		return nil
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && equality.Semantic.DeepEqual(current.Spec, want.Spec) {
		return nil
	}

	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec = want.Spec
	if _, err := quotas.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update ResourceQuota %s/%s: %w", want.Namespace, want.Name, err)
	}
	s.logger.Info("space quota updated", "namespace", want.Namespace, "hard", want.Spec.Hard)
	return nil
}

// ensureLimitRange creates or updates a namespace's LimitRange to match
// want. Ferry owns its whole spec.
func (s *spaceReconciler) ensureLimitRange(ctx context.Context, want *corev1.LimitRange) error {
	ranges := s.client.CoreV1().LimitRanges(want.Namespace)
	current, err := s.limitRanges.LimitRanges(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		_, err = ranges.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := ranges.Get(ctx, want.Name, metav1.GetOptions{})
			return s.existingError("LimitRange", want.ObjectMeta, existing, getErr)
		}
		if err != nil {
			return fmt.Errorf("create LimitRange %s/%s: %w", want.Namespace, want.Name, err)
		}
		s.logger.Info("space limits created", "namespace", want.Namespace)
		return nil
	}
	if err != nil {
		return err
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && equality.Semantic.DeepEqual(current.Spec, want.Spec) {
		return nil
	}

	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec = want.Spec
	if _, err := ranges.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update LimitRange %s/%s: %w", want.Namespace, want.Name, err)
	}
	s.logger.Info("space limits updated", "namespace", want.Namespace)
	return nil
}

// existingError handles a create that failed because the name is taken
// by an object missing from the cache. Either the cache lags behind
// Ferry's own create, and a later sync finds the object. Or the object
// lacks Ferry's labels, which the informers filter out.
func (s *spaceReconciler) existingError(kind string, want metav1.ObjectMeta, existing metav1.Object, getErr error) error {
	if apierrors.IsNotFound(getErr) {
		return fmt.Errorf("%s %s/%s was deleted while being created", kind, want.Namespace, want.Name)
	}
	if getErr != nil {
		return fmt.Errorf("read %s %s/%s: %w", kind, want.Namespace, want.Name, getErr)
	}
	if !ownedBy(existing.GetLabels(), s.installation) || existing.GetLabels()[LabelComponent] != ComponentSpace {
		return &NotOwnedError{Kind: kind, Namespace: want.Namespace, Name: want.Name}
	}
	return nil
}
