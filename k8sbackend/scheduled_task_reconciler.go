package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// DesiredScheduledTasks is the source of the scheduled tasks of a space
// and the sink of their runs. *store.Store implements it.
type DesiredScheduledTasks interface {
	// SpaceScheduledTasks returns every scheduled task of the space.
	SpaceScheduledTasks(ctx context.Context, spaceGUID string) ([]store.ScheduledTask, error)
	// RecordScheduledRun inserts the task of one run of t, and reports
	// false when that run was recorded before.
	RecordScheduledRun(ctx context.Context, t store.ScheduledTask, run store.ScheduledRun) (bool, error)
}

// DesiredApp is the source of one app's desired state. DesiredApps and
// StoreDesiredApps implement it.
type DesiredApp interface {
	DesiredApp(ctx context.Context, appGUID string) (AppSpec, error)
}

// ScheduledTaskReconcilerOptions configures NewScheduledTaskReconciler.
type ScheduledTaskReconcilerOptions struct {
	Client       kubernetes.Interface
	Desired      DesiredScheduledTasks
	Apps         DesiredApp
	Workload     WorkloadConfig
	Installation string
	Logger       *slog.Logger
}

// ScheduledTaskReconciler keeps one CronJob, named
// ScheduledTaskCronJobName, per scheduled task of an app with a current
// droplet, in the app's space namespace. It deletes this installation's
// CronJobs that no scheduled task needs, and never changes or deletes
// other objects. It also records every Job a CronJob starts as a task,
// whose state the task reconciler then follows.
//
// Its key is a space GUID. PostgreSQL notifications, a resync of every
// space namespace, and the creation of a Job that carries
// LabelScheduledTaskGUID queue a space.
type ScheduledTaskReconciler struct {
	client       kubernetes.Interface
	desired      DesiredScheduledTasks
	apps         DesiredApp
	workload     WorkloadConfig
	installation string
	logger       *slog.Logger

	factory informers.SharedInformerFactory
	synced  cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// NewScheduledTaskReconciler returns a reconciler. Run starts it.
func NewScheduledTaskReconciler(o ScheduledTaskReconcilerOptions) *ScheduledTaskReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	selector := scheduledRunSelector(o.Installation).String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	r := &ScheduledTaskReconciler{
		client: o.Client, desired: o.Desired, apps: o.Apps, workload: o.Workload, installation: o.Installation,
		logger: logger, factory: factory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduled-tasks"}),
	}
	jobs := factory.Batch().V1().Jobs().Informer()
	r.synced = jobs.HasSynced
	// AddEventHandler returns an error only for a stopped informer, and
	// this one has not started. A new Job is a new run to record.
	_, _ = jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: r.enqueueJob})
	return r
}

// scheduledRunSelector selects the Jobs of installation's CronJobs.
func scheduledRunSelector(installation string) labels.Selector {
	selector := labels.SelectorFromSet(ownerLabels(installation, ComponentTask))
	// NewRequirement rejects only invalid keys, and this key is a constant.
	exists, _ := labels.NewRequirement(LabelScheduledTaskGUID, selection.Exists, nil)
	return selector.Add(*exists)
}

func (r *ScheduledTaskReconciler) enqueueJob(obj any) {
	if job, ok := obj.(*batchv1.Job); ok {
		if space := job.Labels[LabelSpaceGUID]; space != "" {
			r.queue.Add(space)
		}
	}
}

// Enqueue queues a sync of the space spaceGUID's CronJobs. An empty
// spaceGUID, which a listener sends after a reconnect, queues every space
// namespace, and Enqueue lists them before it returns.
func (r *ScheduledTaskReconciler) Enqueue(spaceGUID string) {
	if spaceGUID == "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.resync(ctx)
		return
	}
	r.queue.Add(spaceGUID)
}

// Run starts the Job informer, serves the queue with one worker, and
// queues every space namespace at start and every resync, until ctx ends.
func (r *ScheduledTaskReconciler) Run(ctx context.Context, resync time.Duration) error {
	defer r.queue.ShutDown()
	r.factory.Start(ctx.Done())
	defer r.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced) {
		return fmt.Errorf("scheduled task reconciler: Job informer cache did not sync: %w", context.Cause(ctx))
	}
	go wait.UntilWithContext(ctx, r.resync, resync)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	r.logger.Info("scheduled task reconciler started", "resync", resync)
	for r.processNext(ctx) {
	}
	return nil
}

// resync queues every space namespace of this installation, so CronJobs
// of spaces without scheduled tasks are deleted too.
func (r *ScheduledTaskReconciler) resync(ctx context.Context) {
	selector := labels.SelectorFromSet(ownerLabels(r.installation, "")).String()
	list, err := r.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Warn("list space namespaces for the scheduled task resync failed", "error", err)
		}
		return
	}
	for _, ns := range list.Items {
		if guid := ns.Labels[LabelSpaceGUID]; guid != "" && ns.Name == SpaceNamespace(guid) {
			r.queue.Add(guid)
		}
	}
}

func (r *ScheduledTaskReconciler) processNext(ctx context.Context) bool {
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
		r.logger.Warn("scheduled tasks are blocked by objects Ferry does not manage", "space", key, "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile scheduled tasks failed, retrying", "space", key, "error", err,
			"retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// Reconcile creates, updates and deletes the CronJobs of the space
// spaceGUID's namespace so that each scheduled task of an app with a
// current droplet has one, and records the runs those CronJobs started. A
// space without a namespace runs nothing, so it is left alone.
func (r *ScheduledTaskReconciler) Reconcile(ctx context.Context, spaceGUID string) error {
	namespace := SpaceNamespace(spaceGUID)
	if _, err := r.client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	tasks, err := r.desired.SpaceScheduledTasks(ctx, spaceGUID)
	if err != nil {
		return fmt.Errorf("read the scheduled tasks of space %s: %w", spaceGUID, err)
	}

	want, err := r.desiredCronJobs(ctx, tasks)
	if err != nil {
		return err
	}
	api := r.client.BatchV1().CronJobs(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.installation, ComponentScheduledTask)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list CronJobs in %s: %w", namespace, err)
	}
	current := map[string]*batchv1.CronJob{}
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
	errs = append(errs, r.recordRuns(ctx, namespace, tasks))
	return errors.Join(errs...)
}

// desiredCronJobs returns the CronJob of each scheduled task whose app
// has a current droplet, by name. Scheduled tasks of apps without one get
// none until the app is staged.
func (r *ScheduledTaskReconciler) desiredCronJobs(ctx context.Context, tasks []store.ScheduledTask) (map[string]*batchv1.CronJob, error) {
	apps := map[string]*AppSpec{}
	want := map[string]*batchv1.CronJob{}
	for _, t := range tasks {
		app, read := apps[t.AppGUID]
		if !read {
			spec, err := r.apps.DesiredApp(ctx, t.AppGUID)
			switch {
			case errors.Is(err, ErrAppNotFound) || errors.Is(err, store.ErrNotFound):
				// The app was deleted, and its scheduled tasks with it.
			case err != nil:
				return nil, fmt.Errorf("read app %s of scheduled task %s: %w", t.AppGUID, t.GUID, err)
			default:
				spec.Installation = r.installation
				app = &spec
			}
			apps[t.AppGUID] = app
		}
		if app == nil || app.Droplet == nil {
			continue
		}
		cronJob := MakeScheduledTaskCronJob(*app, ScheduledTaskSpecFrom(t), r.workload)
		want[cronJob.Name] = cronJob
	}
	return want, nil
}

// ensure creates want when current, the listed object, is nil, and
// otherwise updates current when its spec hash differs from want's. Ferry
// owns the whole spec, so changes made by others are replaced.
func (r *ScheduledTaskReconciler) ensure(ctx context.Context, current, want *batchv1.CronJob) error {
	api := r.client.BatchV1().CronJobs(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		switch {
		case apierrors.IsAlreadyExists(err):
			existing, getErr := api.Get(ctx, want.Name, metav1.GetOptions{})
			if getErr != nil {
				return fmt.Errorf("read CronJob %s/%s: %w", want.Namespace, want.Name, getErr)
			}
			if !ownedBy(existing.Labels, r.installation) || existing.Labels[LabelComponent] != ComponentScheduledTask {
				return &NotOwnedError{Kind: "CronJob", Namespace: want.Namespace, Name: want.Name}
			}
			current = existing
		case err != nil:
			return fmt.Errorf("create CronJob %s/%s: %w", want.Namespace, want.Name, err)
		default:
			r.logCronJob("CronJob created", want)
			return nil
		}
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec = want.Spec
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update CronJob %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logCronJob("CronJob updated", want)
	return nil
}

func (r *ScheduledTaskReconciler) logCronJob(msg string, cronJob *batchv1.CronJob) {
	attrs := []any{"namespace", cronJob.Namespace, "name", cronJob.Name,
		"scheduled_task_guid", cronJob.Labels[LabelScheduledTaskGUID], "app_guid", cronJob.Labels[LabelAppGUID],
		"schedule", cronJob.Spec.Schedule, "suspended", *cronJob.Spec.Suspend}
	if startErr := cronJob.Annotations[AnnotationStartError]; startErr != "" {
		r.logger.Warn(msg+", suspended because the scheduled task cannot start", append(attrs, "reason", startErr)...)
		return
	}
	r.logger.Info(msg, attrs...)
}

// delete deletes a stale CronJob, and not one that replaced it since it
// was listed. Kubernetes then deletes its Jobs and their pods in the
// background, and the tasks recorded for them stay.
func (r *ScheduledTaskReconciler) delete(ctx context.Context, cronJob *batchv1.CronJob) error {
	uid := cronJob.UID
	err := r.client.BatchV1().CronJobs(cronJob.Namespace).Delete(ctx, cronJob.Name, metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete CronJob %s/%s: %w", cronJob.Namespace, cronJob.Name, err)
	}
	r.logger.Info("CronJob deleted: its scheduled task or its app's droplet is gone",
		"namespace", cronJob.Namespace, "name", cronJob.Name, "scheduled_task_guid", cronJob.Labels[LabelScheduledTaskGUID])
	return nil
}

// recordRuns records each Job of the namespace that a scheduled task's
// CronJob started as a task of that scheduled task. The task's GUID is the
// Job's UID, so a run is recorded once however often this runs. Jobs of
// deleted scheduled tasks are skipped: Kubernetes deletes them with their
// CronJob.
func (r *ScheduledTaskReconciler) recordRuns(ctx context.Context, namespace string, tasks []store.ScheduledTask) error {
	byGUID := map[string]store.ScheduledTask{}
	for _, t := range tasks {
		byGUID[t.GUID] = t
	}
	list, err := r.client.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: scheduledRunSelector(r.installation).String(),
	})
	if err != nil {
		return fmt.Errorf("list the Jobs of scheduled tasks in %s: %w", namespace, err)
	}

	var errs []error
	for i := range list.Items {
		job := &list.Items[i]
		t, known := byGUID[job.Labels[LabelScheduledTaskGUID]]
		if !known || job.Labels[LabelAppGUID] != t.AppGUID {
			continue
		}
		run := store.ScheduledRun{TaskGUID: string(job.UID), JobName: job.Name, DropletGUID: job.Labels[LabelDropletGUID]}
		created, err := r.desired.RecordScheduledRun(ctx, t, run)
		if err != nil {
			errs = append(errs, fmt.Errorf("record Job %s/%s as a task: %w", namespace, job.Name, err))
			continue
		}
		if created {
			r.logger.Info("scheduled run recorded as a task", "namespace", namespace, "job", job.Name,
				"scheduled_task_guid", t.GUID, "task_guid", run.TaskGUID, "app_guid", t.AppGUID)
		}
	}
	return errors.Join(errs...)
}

// RunScheduledTasks runs a ScheduledTaskReconciler for o until ctx ends.
// With o.DatabaseURL it also follows ScheduledTasksChannel, and the apps
// channel so a new droplet reaches the CronJobs of its app's space at once
// instead of at the next resync.
func RunScheduledTasks(ctx context.Context, o ControllerOptions) error {
	r := NewScheduledTaskReconciler(ScheduledTaskReconcilerOptions{
		Client: o.Client, Desired: o.Store, Apps: StoreDesiredApps{Store: o.Store}, Workload: WorkloadConfigFrom(o.Config),
		Installation: o.Config.Installation, Logger: o.Logger,
	})
	if o.DatabaseURL != "" {
		go o.listen(ctx, "scheduled task", store.ListenScheduledTasks, r.Enqueue, func() { r.Enqueue("") })
		go o.listen(ctx, "app (scheduled tasks)", store.ListenApps, func(appGUID string) {
			space, err := o.Store.AppSpaceGUID(ctx, appGUID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				// A deleted app's scheduled tasks are deleted with it, and
				// their own notifications queue the space.
			case err != nil:
				o.Logger.Warn("read the space of a changed app failed; its CronJobs wait for the resync",
					"app_guid", appGUID, "error", err)
			default:
				r.Enqueue(space)
			}
		}, func() { r.Enqueue("") })
	}
	return r.Run(ctx, o.Resync)
}
