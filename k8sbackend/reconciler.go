package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
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

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// FieldManager is the field manager of every write Ferry makes.
const FieldManager = "ferry"

// informerResync makes the informers replay their caches, so a missed event
// is noticed within this period even without the database resync.
const informerResync = 10 * time.Minute

// BuildReconciler stages builds. For every STAGING build it makes sure the
// space's namespace, the staging Job and its Secrets exist, and turns a
// finished Job into a STAGED build with a droplet or a FAILED build with a
// Cloud Foundry error. It is level-triggered: all state is in PostgreSQL
// and the cluster, so a restart converges again.
type BuildReconciler struct {
	store   *store.Store
	client  kubernetes.Interface
	images  Images
	catalog *Catalog
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	// logs receives Ferry's own staging lines. Nil puts none.
	logs logcache.Sink

	factory informers.SharedInformerFactory
	jobs    batchlisters.JobLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// NewBuildReconciler returns a reconciler whose informers watch only the
// Jobs and pods that carry Ferry's staging labels.
func NewBuildReconciler(st *store.Store, client kubernetes.Interface, images Images, catalog *Catalog, cfg Config, logger *slog.Logger) *BuildReconciler {
	selector := labels.Set(ownerLabels(cfg.Installation, ComponentStaging)).AsSelector().String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, informerResync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	r := &BuildReconciler{
		store: st, client: client, images: images, catalog: catalog, cfg: cfg, logger: logger, now: time.Now,
		factory: factory,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "builds"}),
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
	// AddEventHandler fails only on an informer that has stopped, and these
	// have not started yet.
	_, _ = jobInformer.Informer().AddEventHandler(handler)
	_, _ = podInformer.Informer().AddEventHandler(handler)
	return r
}

// Enqueue queues the build guid for a reconcile.
func (r *BuildReconciler) Enqueue(guid string) { r.queue.Add(guid) }

func (r *BuildReconciler) enqueueObject(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	if guid := meta.GetLabels()[LabelBuildGUID]; guid != "" {
		r.queue.Add(guid)
	}
}

// Run starts the informers, waits for their caches, and runs workers until
// ctx ends. Every resync period it enqueues every STAGING build, so builds
// created while no controller ran, or whose events were missed, are staged.
func (r *BuildReconciler) Run(ctx context.Context, workers int, resync time.Duration) error {
	defer r.queue.ShutDown()
	r.factory.Start(ctx.Done())
	defer r.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return fmt.Errorf("build reconciler: informer caches did not sync: %w", context.Cause(ctx))
	}

	done := make(chan struct{})
	for range max(workers, 1) {
		go func() {
			defer func() { done <- struct{}{} }()
			for r.processNext(ctx) {
			}
		}()
	}
	r.logger.Info("build reconciler started", "workers", max(workers, 1), "resync", resync)

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
			r.logger.Info("build reconciler stopped")
			return nil
		case <-ticker.C:
		}
	}
}

// resync enqueues every STAGING build from the database.
func (r *BuildReconciler) resync(ctx context.Context) {
	guids, err := r.store.StagingBuildGUIDs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.logger.Error("list staging builds failed", "error", err)
		}
		return
	}
	for _, guid := range guids {
		r.queue.Add(guid)
	}
}

// processNext reconciles one queued build and reports whether the queue is
// still open.
func (r *BuildReconciler) processNext(ctx context.Context) bool {
	guid, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(guid)

	after, err := r.Reconcile(ctx, guid)
	switch {
	case err != nil:
		r.logger.Warn("reconcile build failed, retrying", "build_guid", guid, "error", err,
			"retries", r.queue.NumRequeues(guid))
		r.queue.AddRateLimited(guid)
	case after > 0:
		r.queue.Forget(guid)
		r.queue.AddAfter(guid, after)
	default:
		r.queue.Forget(guid)
	}
	return true
}

// Reconcile brings the build guid one step closer to a finished state. It
// returns how long to wait before the next check, 0 meaning until the next
// event. Its errors are those a retry may fix. Errors that a retry cannot
// fix fail the build instead.
func (r *BuildReconciler) Reconcile(ctx context.Context, guid string) (time.Duration, error) {
	build, err := r.store.StagingBuild(ctx, guid)
	if errors.Is(err, store.ErrNotFound) {
		// The build went with its app: stop staging it.
		return 0, r.deleteOrphanJob(ctx, guid)
	}
	if err != nil {
		return 0, err
	}
	if build.State != store.BuildStateStaging {
		return 0, r.deleteEnvSecret(ctx, build)
	}

	job, err := r.jobs.Jobs(SpaceNamespace(build.SpaceGUID)).Get(BuildJobName(build.GUID))
	if apierrors.IsNotFound(err) {
		return 0, r.startStaging(ctx, build)
	}
	if err != nil {
		return 0, err
	}
	if !ownedBy(job.Labels, r.cfg.Installation) || job.Labels[LabelBuildGUID] != build.GUID {
		return 0, r.fail(ctx, build, stagingError("the Job %s/%s exists and is not managed by Ferry", job.Namespace, job.Name), nil)
	}

	pods, err := r.pods.Pods(job.Namespace).List(labels.Set{LabelBuildGUID: build.GUID}.AsSelector())
	if err != nil {
		return 0, err
	}
	outcome := StagingOutcome(job, pods, r.now(), r.cfg)
	if wait := r.stagingLogsPending(job, outcome); wait > 0 {
		return wait, nil
	}
	switch outcome.Kind {
	case StagingSucceeded:
		return 0, r.complete(ctx, build)
	case StagingFailed:
		var stop *batchv1.Job
		if outcome.StopJob {
			stop = job
		}
		return 0, r.fail(ctx, build, outcome.Error, stop)
	default:
		if err := r.ensureEnvSecret(ctx, build, job); err != nil {
			return 0, err
		}
		return outcome.RecheckAfter, nil
	}
}

// startStaging creates what a build's staging Job needs, then the Job and
// its environment Secret.
func (r *BuildReconciler) startStaging(ctx context.Context, build store.Build) error {
	plan, err := r.plan(ctx, build)
	if err != nil {
		return r.failOnPlanError(ctx, build, err)
	}
	job, err := MakeBuildJob(plan, r.cfg)
	if err != nil {
		return r.failOnPlanError(ctx, build, err)
	}
	if err := r.ensureNamespace(ctx, plan); err != nil {
		return r.failOnPlanError(ctx, build, err)
	}
	if err := r.ensureRegistrySecret(ctx, job.Namespace); err != nil {
		return err
	}

	created, err := r.client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return r.checkExistingJob(ctx, build, job)
	}
	if err != nil {
		return fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.logger.Info("staging started", "build_guid", build.GUID, "app_guid", build.AppGUID, "job", created.Name,
		"namespace", created.Namespace)
	r.putStagingLine(build, "Staging started for build "+build.GUID)
	return r.createEnvSecretOrStop(ctx, build, plan, created)
}

// checkExistingJob handles a Job that exists but is not in the informer
// cache: either the cache lags behind Ferry's own create, and the next event
// brings it, or the Job lacks Ferry's labels, which the informers filter
// out, and the build cannot use its name.
func (r *BuildReconciler) checkExistingJob(ctx context.Context, build store.Build, want *batchv1.Job) error {
	existing, err := r.client.BatchV1().Jobs(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("staging Job %s/%s was deleted while being created", want.Namespace, want.Name)
	}
	if err != nil {
		return fmt.Errorf("read Job %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !ownedBy(existing.Labels, r.cfg.Installation) || existing.Labels[LabelBuildGUID] != build.GUID {
		return r.fail(ctx, build, stagingError("the Job %s/%s exists and is not managed by Ferry", want.Namespace, want.Name), nil)
	}
	return nil
}

// plan reads what a build's staging objects are made from.
func (r *BuildReconciler) plan(ctx context.Context, build store.Build) (BuildPlan, error) {
	all := store.Visibility{All: true}
	app, err := r.store.App(ctx, all, build.AppGUID)
	if err != nil {
		return BuildPlan{}, err
	}
	space, err := r.store.Space(ctx, build.SpaceGUID, all)
	if err != nil {
		return BuildPlan{}, err
	}
	org, err := r.store.Organization(ctx, build.OrgGUID, all)
	if err != nil {
		return BuildPlan{}, err
	}
	group, err := r.store.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupStaging)
	if err != nil {
		return BuildPlan{}, err
	}
	plan := BuildPlan{Build: build, App: app, SpaceName: space.Name, OrgName: org.Name, StagingGroup: group.Variables}
	if plan.PreviousImage, err = r.previousImage(ctx, app, build); err != nil {
		return BuildPlan{}, err
	}
	if len(build.Buildpacks) == 0 {
		return plan, nil
	}
	builder, err := r.catalog.Builder(ctx, r.cfg.Stack(build.Stack))
	if err != nil {
		return BuildPlan{}, err
	}
	if plan.Buildpacks, err = builder.ResolveBuildpacks(build.Buildpacks, r.cfg.BuildpackAliases); err != nil {
		return BuildPlan{}, err
	}
	return plan, nil
}

// previousImage returns the image of the app's current droplet when the
// build may reuse its layers, and "" when the app has no such droplet.
func (r *BuildReconciler) previousImage(ctx context.Context, app store.App, build store.Build) (string, error) {
	if app.DropletGUID == "" {
		return "", nil
	}
	droplet, err := r.store.CurrentDroplet(ctx, store.Visibility{All: true}, app.GUID)
	if errors.Is(err, store.ErrNotFound) {
		// The current droplet was unset or deleted after the app was read.
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return reusableDropletImage(droplet, r.cfg.Stack(build.Stack)), nil
}

// reusableDropletImage returns the image of a staged buildpack droplet of
// stack, and "" for any other droplet. A docker droplet's image is the
// user's own and has no buildpack layers, and layers built on another
// stack's images may not run on this stack's run image.
func reusableDropletImage(d store.Droplet, stack string) string {
	if d.LifecycleType != store.LifecycleBuildpack || d.State != store.DropletStateStaged || d.Stack != stack {
		return ""
	}
	return d.Image
}

// failOnPlanError fails the build when err is one a retry cannot fix, and
// returns err for a retry otherwise.
func (r *BuildReconciler) failOnPlanError(ctx context.Context, build store.Build, err error) error {
	var unknown *UnknownBuildpacksError
	switch {
	case errors.As(err, &unknown):
		return r.fail(ctx, build, stagingError("%s", err.Error()), nil)
	case errors.Is(err, ErrPlan), errors.Is(err, ErrUnknownStack), errors.Is(err, errNotOwned):
		return r.fail(ctx, build, stagingError("%s", err.Error()), nil)
	}
	return err
}

// errNotOwned marks an object that blocks a build because it has the name
// Ferry needs but lacks Ferry's labels.
var errNotOwned = errors.New("is not managed by Ferry")

// ensureNamespace creates the space's namespace when it is missing.
func (r *BuildReconciler) ensureNamespace(ctx context.Context, plan BuildPlan) error {
	space := store.Space{GUID: plan.Build.SpaceGUID, Name: plan.SpaceName, OrganizationGUID: plan.Build.OrgGUID}
	want := MakeSpaceNamespace(space, plan.OrgName, r.cfg.Installation)
	ns, err := r.client.CoreV1().Namespaces().Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = r.client.CoreV1().Namespaces().Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil || apierrors.IsAlreadyExists(err) {
			r.logger.Info("space namespace created", "namespace", want.Name, "space_guid", space.GUID)
			return nil
		}
		return fmt.Errorf("create namespace %s: %w", want.Name, err)
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", want.Name, err)
	}
	if !ownedBy(ns.Labels, r.cfg.Installation) || ns.Labels[LabelSpaceGUID] != space.GUID {
		return fmt.Errorf("namespace %s exists and %w", want.Name, errNotOwned)
	}
	return nil
}

// ensureRegistrySecret creates or updates the namespace's registry Secret
// when Ferry has registry credentials.
func (r *BuildReconciler) ensureRegistrySecret(ctx context.Context, namespace string) error {
	if !r.cfg.HasRegistryCredentials() {
		return nil
	}
	want, err := MakeRegistrySecret(namespace, r.cfg)
	if err != nil {
		return err
	}

	secrets := r.client.CoreV1().Secrets(namespace)
	current, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: %w", namespace, want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read Secret %s/%s: %w", namespace, want.Name, err)
	case !ownedBy(current.Labels, r.cfg.Installation):
		return fmt.Errorf("registry Secret %s/%s exists and is not managed by Ferry", namespace, want.Name)
	case current.Annotations[AnnotationSpecHash] == want.Annotations[AnnotationSpecHash]:
		return nil
	}

	updated := current.DeepCopy()
	updated.Data = want.Data
	updated.Type = want.Type
	if updated.Annotations == nil {
		updated.Annotations = map[string]string{}
	}
	updated.Annotations[AnnotationSpecHash] = want.Annotations[AnnotationSpecHash]
	if _, err := secrets.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", namespace, want.Name, err)
	}
	return nil
}

// createEnvSecret creates the staging environment Secret owned by job.
func (r *BuildReconciler) createEnvSecret(ctx context.Context, plan BuildPlan, job *batchv1.Job) error {
	secret, err := MakeStagingEnvSecret(plan, job, r.cfg)
	if err != nil {
		return err
	}
	secrets := r.client.CoreV1().Secrets(secret.Namespace)
	_, err = secrets.Create(ctx, secret, metav1.CreateOptions{FieldManager: FieldManager})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", secret.Namespace, secret.Name, err)
		}
		return nil
	}

	// The pod mounts whatever Secret has this name, so one Ferry did not
	// make for this build must not stand in for it.
	existing, err := secrets.Get(ctx, secret.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	if !ownedBy(existing.Labels, r.cfg.Installation) || existing.Labels[LabelBuildGUID] != plan.Build.GUID {
		return fmt.Errorf("staging env Secret %s/%s exists and %w", secret.Namespace, secret.Name, errNotOwned)
	}
	return nil
}

// ensureEnvSecret creates the staging environment Secret of a running Job
// when it is missing, which happens when Ferry stopped between creating
// the Job and the Secret. The pod waits for the Secret until then.
func (r *BuildReconciler) ensureEnvSecret(ctx context.Context, build store.Build, job *batchv1.Job) error {
	_, err := r.client.CoreV1().Secrets(job.Namespace).Get(ctx, StagingEnvSecretName(build.GUID), metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return err
	}
	plan, err := r.plan(ctx, build)
	if err != nil {
		return r.failOnPlanError(ctx, build, err)
	}
	return r.createEnvSecretOrStop(ctx, build, plan, job)
}

// createEnvSecretOrStop creates the environment Secret of job. When a
// foreign Secret has its name, the pod would mount that one, so the build
// fails and the Job is deleted.
func (r *BuildReconciler) createEnvSecretOrStop(ctx context.Context, build store.Build, plan BuildPlan, job *batchv1.Job) error {
	err := r.createEnvSecret(ctx, plan, job)
	if errors.Is(err, errNotOwned) {
		return r.fail(ctx, build, stagingError("%s", err.Error()), job)
	}
	return err
}

// deleteEnvSecret removes a finished build's environment Secret when it is
// Ferry's. The Job owns it too, so this only shortens how long the
// variables stay stored.
func (r *BuildReconciler) deleteEnvSecret(ctx context.Context, build store.Build) error {
	if build.LifecycleType != store.LifecycleBuildpack {
		return nil
	}
	secrets := r.client.CoreV1().Secrets(SpaceNamespace(build.SpaceGUID))
	secret, err := secrets.Get(ctx, StagingEnvSecretName(build.GUID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the staging Secret of build %s: %w", build.GUID, err)
	}
	if !ownedBy(secret.Labels, r.cfg.Installation) || secret.Labels[LabelBuildGUID] != build.GUID {
		return nil
	}

	err = secrets.Delete(ctx, secret.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &secret.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete the staging Secret of build %s: %w", build.GUID, err)
	}
	return nil
}

// deleteOrphanJob stops the staging Job of a build that no longer exists.
func (r *BuildReconciler) deleteOrphanJob(ctx context.Context, guid string) error {
	jobs, err := r.jobs.List(labels.Set{LabelBuildGUID: guid}.AsSelector())
	if err != nil {
		return err
	}
	for _, job := range jobs {
		if !ownedBy(job.Labels, r.cfg.Installation) || job.Status.CompletionTime != nil || jobCondition(job, batchv1.JobFailed) != nil {
			continue
		}
		if err := r.deleteJob(ctx, job); err != nil {
			return err
		}
		r.logger.Info("staging stopped: its build was deleted", "build_guid", guid, "job", job.Name)
	}
	return nil
}

// deleteJob deletes a Job the caller found to be Ferry's, and its pods.
// The UID precondition keeps a Job recreated under the same name safe.
func (r *BuildReconciler) deleteJob(ctx context.Context, job *batchv1.Job) error {
	err := r.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
		Preconditions:     &metav1.Preconditions{UID: &job.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

// complete records the droplet of a build whose Job succeeded.
func (r *BuildReconciler) complete(ctx context.Context, build store.Build) error {
	tag := r.cfg.HostRef(r.cfg.DropletTag(build.AppGUID, build.GUID))
	pinned, err := r.images.Resolve(ctx, tag)
	if err != nil {
		return fmt.Errorf("resolve the droplet image of build %s: %w", build.GUID, err)
	}
	config, err := r.images.ConfigFile(ctx, pinned)
	if err != nil {
		return fmt.Errorf("read the droplet image of build %s: %w", build.GUID, err)
	}
	droplet, err := BuildpackDroplet(uuid.NewString(), build, r.cfg.ClusterRef(pinned), config.Config.Labels, r.cfg)
	if err != nil {
		return r.fail(ctx, build, stagingError("%s", err.Error()), nil)
	}

	app, err := r.store.App(ctx, store.Visibility{All: true}, build.AppGUID)
	if err != nil {
		return err
	}
	buildpacks := make([]map[string]string, len(droplet.Buildpacks))
	for i, bp := range droplet.Buildpacks {
		buildpacks[i] = map[string]string{"name": bp.Name, "buildpack_name": bp.BuildpackName, "version": bp.Version}
	}
	staged := buildEvent(build, app, "audit.app.build.staged", map[string]any{
		"build_guid": build.GUID, "package_guid": build.PackageGUID, "droplet_guid": droplet.GUID, "buildpacks": buildpacks})
	dropletCreated := buildEvent(build, app, "audit.app.droplet.create", map[string]any{
		"droplet_guid": droplet.GUID, "package_guid": build.PackageGUID})
	err = r.store.CompleteBuild(ctx, build.GUID, droplet, staged, dropletCreated)
	if errors.Is(err, store.ErrBuildNotStaging) {
		return nil
	}
	if err != nil {
		return err
	}
	r.logger.Info("staging succeeded", "build_guid", build.GUID, "app_guid", build.AppGUID, "droplet_guid", droplet.GUID,
		"image", droplet.Image)
	r.putStagingLine(build, "Staging complete")
	return r.deleteEnvSecret(ctx, build)
}

// fail marks the build FAILED with errText. A non-nil stop is the build's
// running Job, which it deletes first.
func (r *BuildReconciler) fail(ctx context.Context, build store.Build, errText string, stop *batchv1.Job) error {
	if stop != nil {
		if err := r.deleteJob(ctx, stop); err != nil {
			return err
		}
	}
	app, err := r.store.App(ctx, store.Visibility{All: true}, build.AppGUID)
	if err != nil {
		return err
	}
	errorID, message, _ := strings.Cut(errText, " - ")
	event := buildEvent(build, app, "audit.app.build.failed", map[string]any{
		"build_guid": build.GUID, "package_guid": build.PackageGUID, "error_id": errorID, "error_message": message})
	err = r.store.FailBuild(ctx, build.GUID, errText, event)
	if errors.Is(err, store.ErrBuildNotStaging) {
		return nil
	}
	if err != nil {
		return err
	}
	r.logger.Info("staging failed", "build_guid", build.GUID, "app_guid", build.AppGUID, "error", errText)
	r.putStagingLine(build, "Staging failed: "+errText)
	return r.deleteEnvSecret(ctx, build)
}

// buildEvent is an audit event about a build's app. Its actor is the
// build's creator, as in Cloud Controller's staging events.
func buildEvent(build store.Build, app store.App, eventType string, data map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:             eventType,
		ActorGUID:        build.CreatedByGUID,
		ActorType:        "user",
		ActorName:        build.CreatedByName,
		TargetGUID:       app.GUID,
		TargetType:       "app",
		TargetName:       app.Name,
		SpaceGUID:        build.SpaceGUID,
		OrganizationGUID: build.OrgGUID,
		Data:             data,
	}
}
