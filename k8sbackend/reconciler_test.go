package k8sbackend

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// reconcilerEnv is a build reconciler on a fresh database, a fake
// clientset and an in-process registry.
type reconcilerEnv struct {
	t       *testing.T
	ctx     context.Context
	store   *store.Store
	client  kubernetes.Interface
	cfg     Config
	images  *registry.Client
	catalog *Catalog
	r       *BuildReconciler
	org     string
	space   string
}

func newReconcilerEnv(t *testing.T) *reconcilerEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	server := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(server.Close)
	addr := strings.TrimPrefix(server.URL, "http://")

	cfg := testConfig()
	cfg.RegistryAddress = addr
	cfg.Builders = map[string]string{"ferry-test": "10.88.0.1:5000/ferry/builder:test"}
	images := registry.New(config.Registry{Address: addr, ClusterAddress: cfg.RegistryClusterAddress, Repository: "ferry"})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	e := &reconcilerEnv{t: t, ctx: ctx, store: pgtest.NewStore(t), client: fake.NewClientset(), cfg: cfg, images: images}
	e.catalog = NewCatalog(images, cfg, []string{"ferry-test"}, logger)
	e.r = NewBuildReconciler(e.store, e.client, images, e.catalog, cfg, logger)
	e.r.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), e.r.synced...) {
		t.Fatal("informer caches did not sync")
	}

	org, err := store.CreateOrganization(ctx, e.store.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	space, err := store.CreateSpace(ctx, e.store.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org.GUID})
	if err != nil {
		t.Fatal(err)
	}
	e.org, e.space = org.GUID, space.GUID
	e.pushImage("127.0.0.1:0/ferry/builder:test", map[string]string{
		builderMetadataLabel: testBuilderMetadata, buildpackOrderLabel: testBuilderOrder})
	return e
}

// pushImage pushes a random image with labels to ref, whose registry part
// is replaced by the test registry's address.
func (e *reconcilerEnv) pushImage(ref string, imageLabels map[string]string) string {
	e.t.Helper()
	_, rest, _ := strings.Cut(ref, "/")
	tag, err := name.NewTag(e.cfg.RegistryAddress + "/" + rest)
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		e.t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Labels = imageLabels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		e.t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		e.t.Fatal(err)
	}
	return digest.String()
}

// newBuild creates an app with env and a STAGING build of it.
func (e *reconcilerEnv) newBuild(buildpacks ...string) store.Build {
	e.t.Helper()
	app, err := store.CreateApp(e.ctx, e.store.DB(), store.App{GUID: uuid.NewString(), Name: "web-" + uuid.NewString()[:4],
		SpaceGUID: e.space, LifecycleType: store.LifecycleBuildpack, EnvironmentVariables: map[string]string{"SECRET": "v"}})
	if err != nil {
		e.t.Fatal(err)
	}
	pkg := uuid.NewString()
	b, err := store.CreateBuild(e.ctx, e.store.DB(), store.Build{GUID: uuid.NewString(), AppGUID: app.GUID,
		PackageGUID: pkg, PackageImage: e.cfg.RegistryAddress + "/ferry/packages/" + pkg + "@sha256:" + strings.Repeat("1", 64),
		State: store.BuildStateStaging, LifecycleType: store.LifecycleBuildpack, Buildpacks: buildpacks,
		StagingMemoryMB: 256, StagingDiskMB: 512, StagingLogRateLimit: -1, CreatedByGUID: "user-1", CreatedByName: "alice"})
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *reconcilerEnv) reconcile(guid string) time.Duration {
	e.t.Helper()
	after, err := e.r.Reconcile(e.ctx, guid)
	if err != nil {
		e.t.Fatalf("reconcile build %s: %v", guid, err)
	}
	return after
}

// waitFor polls cond until it holds, failing after a generous deadline.
func (e *reconcilerEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startJob reconciles a new build until its Job is in the informer cache.
func (e *reconcilerEnv) startJob(b store.Build) *batchv1.Job {
	e.t.Helper()
	e.reconcile(b.GUID)
	var job *batchv1.Job
	e.waitFor("the Job in the informer cache", func() bool {
		var err error
		job, err = e.r.jobs.Jobs(SpaceNamespace(e.space)).Get(BuildJobName(b.GUID))
		return err == nil
	})
	return job
}

// setJobStatus writes a Job status and waits for the informer to see it.
func (e *reconcilerEnv) setJobStatus(job *batchv1.Job, conditions ...batchv1.JobCondition) {
	e.t.Helper()
	updated := job.DeepCopy()
	updated.Status.Conditions = conditions
	if _, err := e.client.BatchV1().Jobs(job.Namespace).UpdateStatus(e.ctx, updated, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("the Job status in the informer cache", func() bool {
		got, err := e.r.jobs.Jobs(job.Namespace).Get(job.Name)
		return err == nil && len(got.Status.Conditions) == len(conditions)
	})
}

// addPod creates the Job's pod with status and waits for the informer.
func (e *reconcilerEnv) addPod(job *batchv1.Job, status corev1.PodStatus) {
	e.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: job.Namespace, Labels: job.Spec.Template.Labels},
		Spec:       job.Spec.Template.Spec,
		Status:     status,
	}
	if _, err := e.client.CoreV1().Pods(job.Namespace).Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("the pod in the informer cache", func() bool {
		_, err := e.r.pods.Pods(job.Namespace).Get(pod.Name)
		return err == nil
	})
}

func (e *reconcilerEnv) build(guid string) store.Build {
	e.t.Helper()
	b, err := e.store.StagingBuild(e.ctx, guid)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *reconcilerEnv) envSecretExists(b store.Build) bool {
	e.t.Helper()
	_, err := e.client.CoreV1().Secrets(SpaceNamespace(e.space)).Get(e.ctx, StagingEnvSecretName(b.GUID), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *reconcilerEnv) eventTypes(appGUID string) []string {
	e.t.Helper()
	rows, err := e.store.DB().QueryContext(e.ctx, `SELECT type FROM audit_events WHERE target_guid = $1 ORDER BY type`, appGUID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	types := []string{}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			e.t.Fatal(err)
		}
		types = append(types, typ)
	}
	return types
}

func TestReconcileStagesBuild(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()

	job := e.startJob(b)
	ns, err := e.client.CoreV1().Namespaces().Get(e.ctx, SpaceNamespace(e.space), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("space namespace: %v", err)
	}
	if ns.Labels[LabelSpaceGUID] != e.space || ns.Annotations[AnnotationSpaceName] != "dev" {
		t.Errorf("namespace metadata = %v %v", ns.Labels, ns.Annotations)
	}
	if !e.envSecretExists(b) {
		t.Error("the staging environment Secret was not created")
	}
	if got := job.Spec.Template.Spec.InitContainers[0].Args[2]; !strings.HasPrefix(got, "10.88.0.1:5000/ferry/packages/") {
		t.Errorf("package image in the Job = %q, want it on the cluster address", got)
	}

	// Reconciling a running Job changes nothing.
	if after := e.reconcile(b.GUID); after != 0 {
		t.Errorf("requeue after %s for a running Job", after)
	}
	if got := e.build(b.GUID); got.State != store.BuildStateStaging {
		t.Fatalf("build state while staging = %s", got.State)
	}

	digest := e.pushImage(e.cfg.DropletTag(b.AppGUID, b.GUID), map[string]string{BuildMetadataLabel: testBuildMetadata})
	e.setJobStatus(job, condition(batchv1.JobComplete, ""))
	e.reconcile(b.GUID)

	got := e.build(b.GUID)
	if got.State != store.BuildStateStaged || got.DropletGUID == "" {
		t.Fatalf("build = %s %q %q, want STAGED with a droplet", got.State, got.DropletGUID, got.Error)
	}
	droplet, err := e.store.Droplet(e.ctx, store.Visibility{All: true}, got.DropletGUID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.88.0.1:5000/ferry/droplets/" + b.AppGUID + "@" + digest; droplet.Image != want {
		t.Errorf("droplet image = %q, want %q", droplet.Image, want)
	}
	if droplet.ProcessTypes["web"] != "python3 app.py --port 8080" || droplet.PackageGUID != b.PackageGUID ||
		droplet.Stack != "ferry-test" || len(droplet.Buildpacks) != 2 {
		t.Errorf("droplet = %+v", droplet)
	}
	if e.envSecretExists(b) {
		t.Error("the staging environment Secret outlived the build")
	}
	if types := strings.Join(e.eventTypes(b.AppGUID), ","); types != "audit.app.build.staged,audit.app.droplet.create" {
		t.Errorf("audit events = %s", types)
	}

	// A later event for the finished build changes nothing.
	e.reconcile(b.GUID)
	if again := e.build(b.GUID); again.DropletGUID != got.DropletGUID {
		t.Errorf("droplet changed from %s to %s", got.DropletGUID, again.DropletGUID)
	}
}

func TestReconcileFailures(t *testing.T) {
	e := newReconcilerEnv(t)
	backoff := condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)

	for _, tc := range []struct {
		name      string
		status    corev1.PodStatus
		job       []batchv1.JobCondition
		want      string
		jobStays  bool
		buildpack []string
	}{
		{
			name:     "no app detected",
			job:      []batchv1.JobCondition{backoff},
			status:   corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 20, "Error", "")}},
			want:     errNoAppDetected,
			jobStays: true,
		},
		{
			name:     "deadline",
			job:      []batchv1.JobCondition{condition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)},
			want:     "StagingTimeExpired - Staging time expired: staging did not finish within 15m0s",
			jobStays: true,
		},
		{
			name:   "image pull",
			status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{waiting(BuildContainer, "ErrImagePull", "not found")}},
			want:   `StagingError - Staging error: cannot pull image 10.88.0.1:5000/ferry/builder:test for the staging container "build" (ErrImagePull): not found`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.newBuild()
			job := e.startJob(b)
			if tc.status.Phase != "" {
				e.addPod(job, tc.status)
			}
			if tc.job != nil {
				e.setJobStatus(job, tc.job...)
			}
			e.reconcile(b.GUID)

			got := e.build(b.GUID)
			if got.State != store.BuildStateFailed || got.Error != tc.want {
				t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, tc.want)
			}
			_, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{})
			if stays := err == nil; stays != tc.jobStays {
				t.Errorf("Job kept = %v, want %v (error %v)", stays, tc.jobStays, err)
			}
			if e.envSecretExists(b) {
				t.Error("the staging environment Secret outlived the build")
			}
			if types := strings.Join(e.eventTypes(b.AppGUID), ","); types != "audit.app.build.failed" {
				t.Errorf("audit events = %s", types)
			}
		})
	}
}

func TestReconcileFailsWithoutJob(t *testing.T) {
	e := newReconcilerEnv(t)

	t.Run("unknown buildpack", func(t *testing.T) {
		b := e.newBuild("go_buildpack")
		e.reconcile(b.GUID)
		got := e.build(b.GUID)
		want := `StagingError - Staging error: buildpack(s) 'go_buildpack' not found in the builder of stack "ferry-test"`
		if got.State != store.BuildStateFailed || got.Error != want {
			t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, want)
		}
	})

	t.Run("known buildpack", func(t *testing.T) {
		b := e.newBuild("ferry/python")
		job := e.startJob(b)
		args := strings.Join(job.Spec.Template.Spec.InitContainers[0].Args, " ")
		if !strings.Contains(args, "--buildpack ferry/python@0.1.0") {
			t.Errorf("stage-fetch arguments %q name no pinned buildpack", args)
		}
	})

	t.Run("foreign namespace", func(t *testing.T) {
		other, err := store.CreateSpace(e.ctx, e.store.DB(), store.Space{GUID: uuid.NewString(), Name: "taken", OrganizationGUID: e.org})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: SpaceNamespace(other.GUID)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		app, err := store.CreateApp(e.ctx, e.store.DB(), store.App{GUID: uuid.NewString(), Name: "x", SpaceGUID: other.GUID,
			LifecycleType: store.LifecycleBuildpack})
		if err != nil {
			t.Fatal(err)
		}
		b, err := store.CreateBuild(e.ctx, e.store.DB(), store.Build{GUID: uuid.NewString(), AppGUID: app.GUID,
			PackageGUID: "p", PackageImage: "127.0.0.1:5000/ferry/packages/p@sha256:" + strings.Repeat("2", 64),
			State: store.BuildStateStaging, LifecycleType: store.LifecycleBuildpack, StagingMemoryMB: 64, StagingDiskMB: 64})
		if err != nil {
			t.Fatal(err)
		}
		e.reconcile(b.GUID)
		got := e.build(b.GUID)
		want := "StagingError - Staging error: namespace " + SpaceNamespace(other.GUID) + " exists and is not managed by Ferry"
		if got.State != store.BuildStateFailed || got.Error != want {
			t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, want)
		}
		if _, err := e.client.BatchV1().Jobs(SpaceNamespace(other.GUID)).Get(e.ctx, BuildJobName(b.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a Job was created in the foreign namespace: %v", err)
		}
	})
}

func TestReconcileRefusesForeignEnvSecret(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	namespace := SpaceNamespace(e.space)
	_, err := e.client.CoreV1().Namespaces().Create(e.ctx, MakeSpaceNamespace(store.Space{GUID: e.space, Name: "dev",
		OrganizationGUID: e.org}, "acme", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: StagingEnvSecretName(b.GUID), Namespace: namespace},
		StringData: map[string]string{"env.json": `{"INJECTED":"x"}`}}
	if _, err := e.client.CoreV1().Secrets(namespace).Create(e.ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e.reconcile(b.GUID)
	want := "StagingError - Staging error: staging env Secret " + namespace + "/" + foreign.Name + " exists and is not managed by Ferry"
	if got := e.build(b.GUID); got.State != store.BuildStateFailed || got.Error != want {
		t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, want)
	}
	if _, err := e.client.BatchV1().Jobs(namespace).Get(e.ctx, BuildJobName(b.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Job that would mount the foreign Secret still exists: %v", err)
	}
	if _, err := e.client.CoreV1().Secrets(namespace).Get(e.ctx, foreign.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign Secret was deleted: %v", err)
	}
}

func TestReconcileUnschedulableRechecks(t *testing.T) {
	e := newReconcilerEnv(t)
	e.r.now = func() time.Time { return outcomeNow }
	b := e.newBuild()
	job := e.startJob(b)
	e.addPod(job, corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		LastTransitionTime: metav1.NewTime(outcomeNow.Add(-4 * time.Minute))}}})

	if after := e.reconcile(b.GUID); after != time.Minute {
		t.Errorf("recheck after %s, want 1m0s", after)
	}
	e.r.now = func() time.Time { return outcomeNow.Add(time.Minute) }
	e.reconcile(b.GUID)
	if got := e.build(b.GUID); got.State != store.BuildStateFailed || !strings.Contains(got.Error, "could not be scheduled within 5m0s") {
		t.Errorf("build = %s %q, want FAILED for scheduling", got.State, got.Error)
	}
}

func TestReconcileRecreatesMissingEnvSecret(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	job := e.startJob(b)
	err := e.client.CoreV1().Secrets(job.Namespace).Delete(e.ctx, StagingEnvSecretName(b.GUID), metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.reconcile(b.GUID)
	secret, err := e.client.CoreV1().Secrets(job.Namespace).Get(e.ctx, StagingEnvSecretName(b.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret was not recreated: %v", err)
	}
	if !strings.Contains(string(secret.Data["env.json"]), `"SECRET":"v"`) {
		t.Error("the recreated Secret lacks the app's variables")
	}
}

func TestReconcileStopsJobOfDeletedBuild(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	job := e.startJob(b)
	if err := store.DeleteApp(e.ctx, e.store.DB(), b.AppGUID); err != nil {
		t.Fatal(err)
	}
	e.reconcile(b.GUID)
	if _, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Job of a deleted build still exists: %v", err)
	}
}

func TestReconcileRefusesForeignJob(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	e.startJob(b)

	job, err := e.client.BatchV1().Jobs(SpaceNamespace(e.space)).Get(e.ctx, BuildJobName(b.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(job.Labels, LabelManagedBy)
	job.Labels["someone"] = "else"
	if _, err := e.client.BatchV1().Jobs(job.Namespace).Update(e.ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A real API server's watch drops the relabelled Job from the filtered
	// informer, and the reconciler meets it when creating the Job again.
	// The fake clientset's watch keeps it with its new labels. Either way
	// the build must fail without touching the Job.
	e.waitFor("the informer to see the relabelled Job", func() bool {
		cached, err := e.r.jobs.Jobs(job.Namespace).Get(job.Name)
		return apierrors.IsNotFound(err) || (err == nil && cached.Labels["someone"] == "else")
	})

	e.reconcile(b.GUID)
	got, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["someone"] != "else" {
		t.Errorf("the foreign Job was changed: %v", got.Labels)
	}
	want := "StagingError - Staging error: the Job " + job.Namespace + "/" + job.Name + " exists and is not managed by Ferry"
	if got := e.build(b.GUID); got.State != store.BuildStateFailed || got.Error != want {
		t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, want)
	}
}

func TestRunControllerStagesQueuedBuild(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunController(ctx, ControllerOptions{Store: e.store, Client: e.client, Images: e.images, Catalog: e.catalog,
			Config: e.cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Identity: "test", Resync: time.Second})
	}()

	e.waitFor("the controller to create the Job", func() bool {
		_, err := e.client.BatchV1().Jobs(SpaceNamespace(e.space)).Get(e.ctx, BuildJobName(b.GUID), metav1.GetOptions{})
		return err == nil
	})
	lease, err := e.client.CoordinationV1().Leases(DefaultLeaseNamespace).Get(e.ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("leader Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "test" {
		t.Errorf("Lease holder = %v, want test", lease.Spec.HolderIdentity)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunController: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunController did not return after its context ended")
	}
}

func TestCatalogCachesBuilder(t *testing.T) {
	e := newReconcilerEnv(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.catalog.now = func() time.Time { return now }

	first, err := e.catalog.Builder(e.ctx, "ferry-test")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Default || first.RunImage != "10.88.0.1:5000/ferry/run:test" || len(first.Buildpacks) != 4 {
		t.Errorf("builder = %+v", first)
	}

	// A new builder image is seen only after the cache expires.
	e.pushImage("x/ferry/builder:test", map[string]string{builderMetadataLabel: `{"description":"v2"}`})
	if b, _ := e.catalog.Builder(e.ctx, "ferry-test"); b.Description != "test builder" {
		t.Errorf("description before expiry = %q", b.Description)
	}
	now = now.Add(catalogTTL)
	if b, _ := e.catalog.Builder(e.ctx, "ferry-test"); b.Description != "v2" {
		t.Errorf("description after expiry = %q", b.Description)
	}

	if _, err := e.catalog.Builder(e.ctx, "cflinuxfs4"); err == nil {
		t.Error("an unknown stack has a builder")
	}
	builders, err := e.catalog.Builders(e.ctx)
	if err != nil || len(builders) != 1 {
		t.Errorf("Builders = %v, %v", builders, err)
	}
}
