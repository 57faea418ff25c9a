package k8sbackend

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// Defaults of EventRetention.
const (
	DefaultEventMaxAge        = 7 * 24 * time.Hour
	DefaultEventsPerApp       = 200
	DefaultEventPruneInterval = 10 * time.Minute
)

// EventRetention bounds the Kubernetes events kept in PostgreSQL. Zero
// fields take the defaults.
type EventRetention struct {
	// MaxAge is how long after it was last seen an event is kept.
	MaxAge time.Duration
	// MaxPerApp is how many of an app's most recently seen events are
	// kept.
	MaxPerApp int
	// PruneInterval is how often the leader deletes events beyond these
	// limits.
	PruneInterval time.Duration
}

func (r EventRetention) withDefaults() EventRetention {
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultEventMaxAge
	}
	if r.MaxPerApp <= 0 {
		r.MaxPerApp = DefaultEventsPerApp
	}
	if r.PruneInterval <= 0 {
		r.PruneInterval = DefaultEventPruneInterval
	}
	return r
}

// EventStore keeps Kubernetes events. *store.Store implements it.
type EventStore interface {
	RecordKubeEvent(ctx context.Context, ev store.KubeEvent) error
	PruneKubeEvents(ctx context.Context, olderThan time.Time, maxPerApp int) (int64, error)
}

// maxEventRetries is how often an event is retried when its object is not
// in the caches yet or storing it failed. The informer's resync delivers
// every event again later.
const maxEventRetries = 8

// errUnknownSubject marks an event whose object is not in the caches:
// either the informer has not seen the object yet, or the object is not
// Ferry's.
var errUnknownSubject = errors.New("the event's object is not a known Ferry object")

// eventWatcherOptions configures newEventWatcher. The listers are the
// reconcilers' caches of Ferry's objects, which tell Ferry's events from
// others. Synced reports when those caches are filled.
type eventWatcherOptions struct {
	Client kubernetes.Interface
	Store  EventStore
	// Logs receives a line per new occurrence of an event. Nil drops the
	// lines.
	Logs         logcache.Sink
	Logger       *slog.Logger
	Retention    EventRetention
	AppPods      corelisters.PodLister
	StagingPods  corelisters.PodLister
	StatefulSets appslisters.StatefulSetLister
	Jobs         batchlisters.JobLister
	Synced       []cache.InformerSynced
}

// eventWatcher follows the Kubernetes Warning events in the cluster's
// space namespaces. For each event about one of Ferry's pods, StatefulSets
// or staging Jobs, it stores the event in PostgreSQL and puts a log line
// into the app's log whenever the event occurs again. Normal events get
// neither: they describe progress that the log collector's lifecycle lines
// and the staging output already show. It runs on the leader only.
type eventWatcher struct {
	store     EventStore
	logs      logcache.Sink
	logger    *slog.Logger
	retention EventRetention
	now       func() time.Time

	factory      informers.SharedInformerFactory
	events       corelisters.EventLister
	indexer      cache.Indexer
	appPods      corelisters.PodLister
	stagingPods  corelisters.PodLister
	statefulSets appslisters.StatefulSetLister
	jobs         batchlisters.JobLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]

	// started is when Run began. Events last seen before it get no log
	// line: the log holds only lines since this leader started.
	started time.Time
	mu      sync.Mutex
	handled map[types.UID]*handledEvent
}

// handledEvent is how far one event has been logged and stored.
type handledEvent struct {
	logged, stored occurrence
}

// occurrence identifies one copy of an event by its count and last time
// seen. A later copy has a higher count or a later time.
type occurrence struct {
	count int
	last  time.Time
}

func (o occurrence) before(other occurrence) bool {
	return o.count < other.count || o.last.Before(other.last)
}

// newEventWatcher returns a watcher whose informer lists and watches
// Warning events in every namespace. Events carry no labels, so it filters
// by namespace name and by the object in the caches.
func newEventWatcher(o eventWatcherOptions) *eventWatcher {
	factory := newWarningEventFactory(o.Client)
	informer := factory.Core().V1().Events()
	w := &eventWatcher{
		store: o.Store, logs: o.Logs, logger: o.Logger, retention: o.Retention.withDefaults(), now: time.Now,
		factory: factory, events: informer.Lister(),
		appPods: o.AppPods, stagingPods: o.StagingPods, statefulSets: o.StatefulSets, jobs: o.Jobs,
		synced: append([]cache.InformerSynced{informer.Informer().HasSynced}, o.Synced...),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "events"}),
		handled: map[types.UID]*handledEvent{},
	}
	if w.logger == nil {
		w.logger = slog.Default()
	}
	// Both calls fail only on an informer that has started.
	_ = informer.Informer().AddIndexers(cache.Indexers{involvedObjectIndex: indexByInvolvedObject})
	w.indexer = informer.Informer().GetIndexer()
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.enqueue,
		UpdateFunc: func(_, obj any) { w.enqueue(obj) },
		DeleteFunc: w.forget,
	})
	return w
}

// newWarningEventFactory returns an informer factory for the Warning
// events of every namespace, with managed fields dropped from the cache.
func newWarningEventFactory(client kubernetes.Interface) informers.SharedInformerFactory {
	selector := fields.OneTermEqualSelector("type", corev1.EventTypeWarning).String()
	return informers.NewSharedInformerFactoryWithOptions(client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = selector }),
		informers.WithTransform(func(obj any) (any, error) {
			if ev, ok := obj.(*corev1.Event); ok {
				ev.ManagedFields = nil
			}
			return obj, nil
		}))
}

// concernsFerry reports whether an event may be about one of Ferry's
// objects: those live in space namespaces and are pods, StatefulSets or
// Jobs.
func concernsFerry(ev *corev1.Event) bool {
	if !strings.HasPrefix(ev.Namespace, SpaceNamespace("")) {
		return false
	}
	switch ev.InvolvedObject.Kind {
	case kindPod, kindStatefulSet, kindJob:
		return true
	}
	return false
}

func (w *eventWatcher) enqueue(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok || !concernsFerry(ev) {
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(ev); err == nil {
		w.queue.Add(key)
	}
}

// forget drops what the watcher remembers of a deleted event. The API
// server deletes events after its event TTL.
func (w *eventWatcher) forget(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if ev, ok := obj.(*corev1.Event); ok {
		w.mu.Lock()
		delete(w.handled, ev.UID)
		w.mu.Unlock()
	}
}

// Run starts the informer, waits until it and the reconcilers' caches are
// filled, and handles events until ctx ends. It prunes stored events when
// it starts and every retention prune interval.
func (w *eventWatcher) Run(ctx context.Context, workers int) {
	defer w.queue.ShutDown()
	w.started = w.now()
	w.factory.Start(ctx.Done())
	defer w.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return
	}

	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for w.processNext(ctx) {
			}
		})
	}
	w.logger.Info("Kubernetes event watcher started", "max_age", w.retention.MaxAge, "max_per_app", w.retention.MaxPerApp)

	ticker := time.NewTicker(w.retention.PruneInterval)
	defer ticker.Stop()
	for {
		w.prune(ctx)
		select {
		case <-ctx.Done():
			w.queue.ShutDown()
			wg.Wait()
			w.logger.Info("Kubernetes event watcher stopped")
			return
		case <-ticker.C:
		}
	}
}

func (w *eventWatcher) prune(ctx context.Context) {
	deleted, err := w.store.PruneKubeEvents(ctx, w.now().Add(-w.retention.MaxAge), w.retention.MaxPerApp)
	if err != nil {
		if ctx.Err() == nil {
			w.logger.Warn("prune stored Kubernetes events failed, retrying at the next interval", "error", err,
				"interval", w.retention.PruneInterval)
		}
		return
	}
	if deleted > 0 {
		w.logger.Debug("pruned stored Kubernetes events", "deleted", deleted)
	}
}

// processNext handles one queued event and reports whether the queue is
// still open.
func (w *eventWatcher) processNext(ctx context.Context) bool {
	key, shutdown := w.queue.Get()
	if shutdown {
		return false
	}
	defer w.queue.Done(key)

	err := w.handle(ctx, key)
	switch {
	case err == nil:
		w.queue.Forget(key)
	case w.queue.NumRequeues(key) >= maxEventRetries:
		// The informer's resync delivers the event again.
		if !errors.Is(err, errUnknownSubject) {
			w.logger.Warn("handle Kubernetes event failed, giving up until the next resync", "event", key, "error", err)
		}
		w.queue.Forget(key)
	default:
		w.queue.AddRateLimited(key)
	}
	return true
}

// handle logs and stores the occurrence of event key that is newer than
// what it handled before.
func (w *eventWatcher) handle(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ev, err := w.events.Events(namespace).Get(name)
	if err != nil { // The event was deleted.
		return nil
	}
	subject, ok := w.subject(ev)
	if !ok {
		return errUnknownSubject
	}
	_, last, count := eventSeen(ev)
	seen := occurrence{count: count, last: last}

	w.mu.Lock()
	state := w.handled[ev.UID]
	if state == nil {
		state = &handledEvent{}
		w.handled[ev.UID] = state
	}
	log := state.logged.before(seen)
	if log {
		state.logged = seen
	}
	record := state.stored.before(seen)
	w.mu.Unlock()

	if log && w.logs != nil && !last.Before(w.started.Add(-probeSlack)) {
		w.logs.Put(eventLine(ev, subject, w.now()))
	}
	if !record {
		return nil
	}
	if err := w.store.RecordKubeEvent(ctx, kubeEventRecord(ev, subject)); err != nil {
		return err
	}
	w.mu.Lock()
	state.stored = seen
	w.mu.Unlock()
	return nil
}

// subject returns the app, process, instance or build an event is about,
// from the object in the caches. A pod of a StatefulSet that was deleted
// and made again keeps its name and instance, so the object's UID need not
// match the event's.
func (w *eventWatcher) subject(ev *corev1.Event) (eventSubject, bool) {
	namespace, name := ev.Namespace, ev.InvolvedObject.Name
	var object metav1.Object
	podName := ""
	switch ev.InvolvedObject.Kind {
	case kindPod:
		pod, err := w.appPods.Pods(namespace).Get(name)
		if err != nil {
			pod, err = w.stagingPods.Pods(namespace).Get(name)
		}
		if err != nil {
			return eventSubject{}, false
		}
		object, podName = pod, pod.Name
	case kindStatefulSet:
		sts, err := w.statefulSets.StatefulSets(namespace).Get(name)
		if err != nil {
			return eventSubject{}, false
		}
		object, podName = sts, podNamedIn(ev.Message)
	case kindJob:
		job, err := w.jobs.Jobs(namespace).Get(name)
		if err != nil {
			return eventSubject{}, false
		}
		object = job
	default:
		return eventSubject{}, false
	}
	return subjectOf(object.GetLabels(), podName)
}

// explainCrash sets c.HealthCheckFailure when a failed startup or liveness
// probe made the kubelet kill the crashed instance, from its pod's events.
func (w *eventWatcher) explainCrash(c Crash) Crash {
	namespace := SpaceNamespace(c.SpaceGUID)
	pod, err := w.appPods.Pods(namespace).Get(InstancePodName(c.ProcessGUID, c.Index))
	if err != nil || string(pod.UID) != c.InstanceGUID {
		return c
	}
	cs := appContainerStatus(pod)
	if cs == nil {
		return c
	}
	c.HealthCheckFailure = probeKill(pod, lastTermination(cs), eventsAbout(w.indexer, namespace, kindPod, pod.Name))
	return c
}
