package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// TaskReconcilerOptions configures NewTaskReconciler.
type TaskReconcilerOptions struct {
	Store  *store.Store
	Client kubernetes.Interface
	// Desired supplies the task's app: its names, env and processes. Nil
	// reads them from Store.
	Desired      DesiredApps
	Installation string
	Workload     WorkloadConfig
	Logger       *slog.Logger
}

// TaskReconciler runs tasks. For every PENDING task it creates the Job
// "task-<guid>", and it moves each task to RUNNING, SUCCEEDED or FAILED as
// its Job and pod show. A CANCELING task's Job is deleted with its pod and
// the task becomes FAILED. A task created with a Job name (a scheduled
// run) is only followed. It is level-triggered: task notifications, a
// resync of the unfinished tasks and Job and pod events feed one queue of
// task GUIDs, and the Job name derives from the GUID, so a restart finds
// the Jobs it created.
type TaskReconciler struct {
	store        *store.Store
	client       kubernetes.Interface
	desired      DesiredApps
	installation string
	workload     WorkloadConfig
	logger       *slog.Logger

	factory informers.SharedInformerFactory
	jobs    batchlisters.JobLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// NewTaskReconciler returns a reconciler whose informers watch only the
// Jobs and pods that carry Ferry's task labels.
func NewTaskReconciler(o TaskReconcilerOptions) *TaskReconciler {
	selector := labels.Set(ownerLabels(o.Installation, ComponentTask)).AsSelector().String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	desired := o.Desired
	if desired == nil {
		desired = StoreDesiredApps{Store: o.Store}
	}
	r := &TaskReconciler{
		store: o.Store, client: o.Client, desired: desired, installation: o.Installation, workload: o.Workload,
		logger: o.Logger, factory: factory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "tasks"}),
	}

	jobInformer := factory.Batch().V1().Jobs()
	podInformer := factory.Core().V1().Pods()
	r.jobs, r.pods = jobInformer.Lister(), podInformer.Lister()
	r.synced = []cache.InformerSynced{jobInformer.Informer().HasSynced, podInformer.Informer().HasSynced}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueueObject,
		UpdateFunc: func(_, obj any) { r.enqueueObject(obj) },
		DeleteFunc: r.enqueueObject,
	}
	// AddEventHandler returns an error only for a stopped informer, and
	// these have not started.
	_, _ = jobInformer.Informer().AddEventHandler(handler)
	_, _ = podInformer.Informer().AddEventHandler(handler)
	return r
}

// Enqueue queues the task guid for a reconcile.
func (r *TaskReconciler) Enqueue(guid string) { r.queue.Add(guid) }

func (r *TaskReconciler) enqueueObject(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if guid := meta.GetLabels()[LabelTaskGUID]; guid != "" {
		r.queue.Add(guid)
		return
	}
	// A Job that a CronJob started carries no task GUID label: the task
	// that follows it has the Job's UID as its GUID. A GUID that names no
	// task costs one database read.
	if _, isJob := obj.(*batchv1.Job); isJob {
		r.queue.Add(string(meta.GetUID()))
		return
	}
	if owner := metav1.GetControllerOf(meta); owner != nil && owner.Kind == "Job" {
		r.queue.Add(string(owner.UID))
	}
}

// Run starts the informers, waits for their caches, and runs workers until
// ctx ends. Every resync period it enqueues every unfinished task.
func (r *TaskReconciler) Run(ctx context.Context, workers int, resync time.Duration) error {
	defer r.queue.ShutDown()
	r.factory.Start(ctx.Done())
	defer r.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("task reconciler: informer caches did not sync: %w", context.Cause(ctx))
	}

	done := make(chan struct{})
	for range max(workers, 1) {
		go func() {
			defer func() { done <- struct{}{} }()
			for r.processNext(ctx) {
			}
		}()
	}
	r.logger.Info("task reconciler started", "workers", max(workers, 1), "resync", resync)

	ticker := time.NewTicker(resync)
	defer ticker.Stop()
	for {
		r.resync(ctx)
		select {
		case <-ctx.Done():
			r.queue.ShutDown()
			for range max(workers, 1) {
				<-done
			}
			r.logger.Info("task reconciler stopped")
			return nil
		case <-ticker.C:
		}
	}
}

// resync enqueues every unfinished task from the database.
func (r *TaskReconciler) resync(ctx context.Context) {
	guids, err := r.store.ActiveTaskGUIDs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("list unfinished tasks failed", "error", err)
		}
		return
	}
	for _, guid := range guids {
		r.queue.Add(guid)
	}
}

func (r *TaskReconciler) processNext(ctx context.Context) bool {
	guid, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(guid)

	if err := r.Reconcile(ctx, guid); err != nil {
		r.logger.Warn("reconcile task failed, retrying", "task_guid", guid, "error", err,
			"retries", r.queue.NumRequeues(guid))
		r.queue.AddRateLimited(guid)
		return true
	}
	r.queue.Forget(guid)
	return true
}

// Reconcile brings the task guid one step closer to a finished state. Its
// errors are those a retry may fix; a task that cannot run is FAILED
// instead.
func (r *TaskReconciler) Reconcile(ctx context.Context, guid string) error {
	task, err := r.store.ControllerTask(ctx, guid)
	if errors.Is(err, store.ErrNotFound) {
		// The task went with its app: stop its Job.
		return r.deleteOrphanJobs(ctx, guid)
	}
	if err != nil {
		return err
	}

	switch task.State {
	case store.TaskStateSucceeded, store.TaskStateFailed:
		// The finished Job stays until its TTL, so its pod's logs and
		// exit status remain readable.
		return nil
	case store.TaskStateCanceling:
		return r.cancel(ctx, task)
	}

	job, err := r.jobs.Jobs(SpaceNamespace(task.SpaceGUID)).Get(taskJobName(task))
	if apierrors.IsNotFound(err) {
		return r.jobMissing(ctx, task)
	}
	if err != nil {
		return err
	}
	if !ownedBy(job.Labels, r.installation) || job.Labels[LabelAppGUID] != task.AppGUID {
		return r.fail(ctx, task, fmt.Sprintf("the Job %s/%s exists and is not managed by Ferry for this app",
			job.Namespace, job.Name))
	}

	pods, err := r.pods.Pods(job.Namespace).List(labels.Set{batchv1.JobNameLabel: job.Name}.AsSelector())
	if err != nil {
		return err
	}
	outcome := TaskOutcomeOf(job, pods)
	if outcome.State == task.State || outcome.State == store.TaskStatePending {
		return nil
	}
	return r.setState(ctx, task, outcome.State, outcome.FailureReason)
}

// taskJobName is the Job that runs task: the one recorded for it, or the
// one the reconciler creates.
func taskJobName(task store.Task) string {
	if task.JobName != "" {
		return task.JobName
	}
	return TaskJobName(task.GUID)
}

// jobMissing handles a PENDING or RUNNING task whose Job is not in the
// informer cache.
func (r *TaskReconciler) jobMissing(ctx context.Context, task store.Task) error {
	name := taskJobName(task)
	ours := name == TaskJobName(task.GUID)
	if task.State == store.TaskStatePending && ours {
		return r.start(ctx, task)
	}
	// The cache may lag behind the Job's creation, so ask the API server
	// before declaring the Job lost.
	_, err := r.client.BatchV1().Jobs(SpaceNamespace(task.SpaceGUID)).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read Job %s: %w", name, err)
	}
	if !ours && task.State == store.TaskStatePending {
		// A Job that a CronJob creates may not exist yet.
		return nil
	}
	return r.fail(ctx, task, "the task's Job "+name+" was deleted")
}

// start creates the Job of a PENDING task and records its name.
func (r *TaskReconciler) start(ctx context.Context, task store.Task) error {
	app, err := r.desired.DesiredApp(ctx, task.AppGUID)
	if errors.Is(err, ErrAppNotFound) || errors.Is(err, store.ErrNotFound) {
		return r.deleteOrphanJobs(ctx, task.GUID)
	}
	if err != nil {
		return fmt.Errorf("read the app of task %s: %w", task.GUID, err)
	}
	app.Installation = r.installation

	droplet, err := r.store.Droplet(ctx, store.Visibility{All: true}, task.DropletGUID)
	if errors.Is(err, store.ErrNotFound) {
		return r.fail(ctx, task, "the task's droplet was deleted")
	}
	if err != nil {
		return fmt.Errorf("read the droplet of task %s: %w", task.GUID, err)
	}
	spec, err := DropletSpecFrom(droplet)
	if err != nil {
		return r.fail(ctx, task, describeTaskStartError(err.Error()))
	}
	app.Droplet = &spec

	job, startErr := MakeTaskJob(app, TaskSpec{GUID: task.GUID, Name: task.Name, Command: task.Command,
		MemoryMB: task.MemoryMB, DiskMB: task.DiskMB, LogRateLimit: task.LogRateLimit}, r.workload)
	if startErr != "" {
		return r.fail(ctx, task, describeTaskStartError(startErr))
	}
	// NOTE: the pod reads the app's env Secret, which the app reconciler
	// writes for every app with a current droplet. Until it exists, the
	// pod waits in CreateContainerConfigError and the task stays PENDING.
	created, err := r.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err):
		owned, err := r.existingJobOwned(ctx, task, job)
		if err != nil {
			return err
		}
		if !owned {
			return r.fail(ctx, task, "the Job "+job.Namespace+"/"+job.Name+" exists and is not managed by Ferry")
		}
	case err != nil:
		return fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
	default:
		r.logger.Info("task started", "task_guid", task.GUID, "app_guid", task.AppGUID, "job", created.Name,
			"namespace", created.Namespace)
	}
	// Recording the name wakes the reconciler again through the task
	// notification, which then follows the Job.
	return r.store.SetTaskJobName(ctx, task.GUID, job.Name)
}

// existingJobOwned reports whether a Job that exists but is not in the
// informer cache is the task's own: the cache may lag behind the
// reconciler's create. A Job without Ferry's labels, which the informers
// filter out, is not.
func (r *TaskReconciler) existingJobOwned(ctx context.Context, task store.Task, want *batchv1.Job) (bool, error) {
	existing, err := r.client.BatchV1().Jobs(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, fmt.Errorf("task Job %s/%s was deleted while being created", want.Namespace, want.Name)
	}
	if err != nil {
		return false, fmt.Errorf("read Job %s/%s: %w", want.Namespace, want.Name, err)
	}
	return ownedBy(existing.Labels, r.installation) && existing.Labels[LabelTaskGUID] == task.GUID, nil
}

// cancel deletes a CANCELING task's Job, whose pod goes with it, and marks
// the task FAILED.
func (r *TaskReconciler) cancel(ctx context.Context, task store.Task) error {
	namespace, name := SpaceNamespace(task.SpaceGUID), taskJobName(task)
	job, err := r.client.BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("read Job %s/%s: %w", namespace, name, err)
	case ownedBy(job.Labels, r.installation) && job.Labels[LabelAppGUID] == task.AppGUID:
		err := r.client.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{
			PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
			Preconditions:     &metav1.Preconditions{UID: &job.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Job %s/%s: %w", namespace, name, err)
		}
		r.logger.Info("task canceled", "task_guid", task.GUID, "app_guid", task.AppGUID, "job", name,
			"namespace", namespace)
	}
	return r.setState(ctx, task, store.TaskStateFailed, TaskFailureCanceled)
}

// fail marks the task FAILED with reason.
func (r *TaskReconciler) fail(ctx context.Context, task store.Task, reason string) error {
	r.logger.Warn("task failed", "task_guid", task.GUID, "app_guid", task.AppGUID, "reason", reason)
	return r.setState(ctx, task, store.TaskStateFailed, reason)
}

// setState moves the task to state. A task another writer moved first,
// such as one canceled meanwhile, is left to the next reconcile.
func (r *TaskReconciler) setState(ctx context.Context, task store.Task, state, reason string) error {
	_, err := r.store.SetTaskState(ctx, task.GUID, state, reason)
	var conflict *store.TaskStateError
	if errors.As(err, &conflict) || errors.Is(err, store.ErrNotFound) {
		r.queue.Add(task.GUID)
		return nil
	}
	return err
}

// deleteOrphanJobs deletes the Jobs of a task that no longer exists.
func (r *TaskReconciler) deleteOrphanJobs(ctx context.Context, guid string) error {
	jobs, err := r.jobs.List(labels.Set{LabelTaskGUID: guid}.AsSelector())
	if err != nil {
		return err
	}
	var errs []error
	for _, job := range jobs {
		if !ownedBy(job.Labels, r.installation) {
			continue
		}
		err := r.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
			PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
			Preconditions:     &metav1.Preconditions{UID: &job.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete Job %s/%s: %w", job.Namespace, job.Name, err))
		}
	}
	return errors.Join(errs...)
}
