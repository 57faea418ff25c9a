package k8sbackend

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ferrycf/ferry/k8sbackend/k8stest"
	"github.com/ferrycf/ferry/store"
)

// startAPIServer starts a private kube-apiserver for one test. This
// package's TestMain belongs to pgtest, so the test manages the server
// itself instead of through k8stest.Main. Like k8stest.Shared, it skips
// only when the binaries are missing and FERRY_K8STEST_OPTIONAL=1.
func startAPIServer(t *testing.T) kubernetes.Interface {
	t.Helper()
	srv, err := k8stest.Start()
	if errors.Is(err, k8stest.ErrBinariesNotFound) && os.Getenv("FERRY_K8STEST_OPTIONAL") == "1" {
		t.Skipf("kube-apiserver not available and FERRY_K8STEST_OPTIONAL=1: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	t.Logf("kube-apiserver ready in %s", srv.StartupDuration().Round(time.Millisecond))
	return srv.Clientset()
}

// TestAPIServerAcceptsStagingObjects creates every object the staging
// translation produces on a real API server, which validates and defaults
// them as a cluster would.
func TestAPIServerAcceptsStagingObjects(t *testing.T) {
	client := startAPIServer(t)
	ctx := t.Context()
	opts := metav1.CreateOptions{FieldManager: FieldManager}

	ns := MakeSpaceNamespace(store.Space{GUID: testSpace, Name: "dev", OrganizationGUID: testOrg}, "acme", "")
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, opts); err != nil {
		t.Fatalf("namespace: %v", err)
	}

	for _, tc := range []struct {
		name   string
		build  string
		plan   func(*BuildPlan)
		config func(*Config)
	}{
		{name: "auto-detect", build: "b1b1b1b1-0000-4000-8000-00000000000d"},
		{name: "buildpacks and run image", build: "b2b2b2b2-0000-4000-8000-00000000000d", plan: func(p *BuildPlan) {
			p.Buildpacks = []BuildpackRef{{ID: "ferry/python", Version: "0.1.0"}}
			p.RunImage = "127.0.0.1:5000/ferry/run:test"
		}},
		{name: "credentials and insecure registry", build: "b3b3b3b3-0000-4000-8000-00000000000d", config: func(c *Config) {
			c.RegistryUsername, c.RegistryPassword, c.RegistryInsecure = "ferry", "s3cret", true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, cfg := testPlan(), testConfig()
			plan.Build.GUID = tc.build
			if tc.plan != nil {
				tc.plan(&plan)
			}
			if tc.config != nil {
				tc.config(&cfg)
			}

			if cfg.HasRegistryCredentials() {
				secret, err := MakeRegistrySecret(ns.Name, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := client.CoreV1().Secrets(ns.Name).Create(ctx, secret, opts); err != nil {
					t.Fatalf("registry Secret: %v", err)
				}
			}
			job, err := MakeBuildJob(plan, cfg)
			if err != nil {
				t.Fatal(err)
			}
			created, err := client.BatchV1().Jobs(ns.Name).Create(ctx, job, opts)
			if err != nil {
				t.Fatalf("Job rejected: %v", err)
			}
			if got := created.Spec.Template.Spec.Containers[0].Args; strings.Join(got, " ") != strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ") {
				t.Errorf("stored creator arguments = %q", got)
			}
			secret, err := MakeStagingEnvSecret(plan, created, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.CoreV1().Secrets(ns.Name).Create(ctx, secret, opts); err != nil {
				t.Fatalf("staging environment Secret rejected: %v", err)
			}
		})
	}

	// The environment Secret is immutable, so nothing can swap the
	// variables of a running build.
	name := StagingEnvSecretName("b1b1b1b1-0000-4000-8000-00000000000d")
	secret, err := client.CoreV1().Secrets(ns.Name).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret.Data["env.json"] = []byte("{}")
	if _, err := client.CoreV1().Secrets(ns.Name).Update(ctx, secret, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("updating the immutable Secret: %v, want Invalid", err)
	}
}

// TestAPIServerReconcile runs the build reconciler against a real API
// server: it creates the namespace, the Job and its Secret, and turns the
// Job's status, written as the Job controller would, into a FAILED build.
func TestAPIServerReconcile(t *testing.T) {
	client := startAPIServer(t)
	e := newReconcilerEnv(t)
	e.client = client
	e.r = NewBuildReconciler(e.store, client, e.images, e.catalog, e.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.r.factory.Start(e.ctx.Done())
	if !cache.WaitForCacheSync(e.ctx.Done(), e.r.synced...) {
		t.Fatal("informer caches did not sync")
	}

	b := e.newBuild("ferry/python")
	job := e.startJob(b)
	if owner := job.OwnerReferences; owner != nil {
		t.Errorf("the Job has owners %v; Ferry tracks it by labels", owner)
	}
	secret, err := client.CoreV1().Secrets(job.Namespace).Get(e.ctx, StagingEnvSecretName(b.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != job.UID {
		t.Errorf("Secret owners = %v, want the Job %s", secret.OwnerReferences, job.UID)
	}

	// The API server accepts a terminal Failed condition only after the
	// FailureTarget condition and with a start time, as the Job
	// controller writes them.
	now := metav1.Now()
	updated := job.DeepCopy()
	updated.Status.StartTime = &now
	updated.Status.Failed = 1
	updated.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded,
			Message: "Job was active longer than specified deadline", LastTransitionTime: now, LastProbeTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonDeadlineExceeded,
			Message: "Job was active longer than specified deadline", LastTransitionTime: now, LastProbeTime: now},
	}
	if _, err := client.BatchV1().Jobs(job.Namespace).UpdateStatus(e.ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("write the Job status: %v", err)
	}
	e.waitFor("the Job status in the informer cache", func() bool {
		got, err := e.r.jobs.Jobs(job.Namespace).Get(job.Name)
		return err == nil && jobCondition(got, batchv1.JobFailed) != nil
	})
	e.reconcile(b.GUID)

	got := e.build(b.GUID)
	if want := "StagingTimeExpired - Staging time expired: staging did not finish within 15m0s"; got.State != store.BuildStateFailed || got.Error != want {
		t.Errorf("build = %s %q, want FAILED %q", got.State, got.Error, want)
	}
	if _, err := client.CoreV1().Secrets(job.Namespace).Get(e.ctx, secret.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the staging environment Secret outlived the build: %v", err)
	}
}
