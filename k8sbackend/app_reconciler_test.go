package k8sbackend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/k8sbackend/k8stest"
	"github.com/ferrycf/ferry/store"
)

// fakeDesiredApps is a desired state the tests change directly, so the
// reconciler runs without PostgreSQL.
type fakeDesiredApps struct {
	mu   sync.Mutex
	apps map[string]AppSpec
}

func (f *fakeDesiredApps) DesiredApp(_ context.Context, guid string) (AppSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	app, ok := f.apps[guid]
	if !ok {
		return AppSpec{}, ErrAppNotFound
	}
	return app, nil
}

func (f *fakeDesiredApps) DesiredAppGUIDs(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Keys(f.apps)), nil
}

func (f *fakeDesiredApps) set(app AppSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[app.GUID] = app
}

func (f *fakeDesiredApps) remove(guid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.apps, guid)
}

// appEnv is an app reconciler on a real API server with a fake desired
// state and a crash recorder.
type appEnv struct {
	t       *testing.T
	ctx     context.Context
	client  kubernetes.Interface
	desired *fakeDesiredApps
	r       *AppReconciler

	mu         sync.Mutex
	crashes    []Crash
	crashError error
}

func newAppEnv(t *testing.T, client kubernetes.Interface, workload WorkloadConfig) *appEnv {
	t.Helper()
	return newAppEnvFor(t, client, workload, testConfig())
}

// newAppEnvFor is newAppEnv with the reconciler's Config, which names its
// installation.
func newAppEnvFor(t *testing.T, client kubernetes.Interface, workload WorkloadConfig, cfg Config) *appEnv {
	t.Helper()
	e := &appEnv{t: t, ctx: t.Context(), client: client, desired: &fakeDesiredApps{apps: map[string]AppSpec{}}}
	e.r = NewAppReconciler(AppReconcilerOptions{
		Client:   client,
		Desired:  e.desired,
		Config:   cfg,
		Workload: workload,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnCrash: func(_ context.Context, c Crash) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.crashError != nil {
				return e.crashError
			}
			e.crashes = append(e.crashes, c)
			return nil
		},
	})
	return e
}

// startInformers starts the reconciler's informers for tests that call
// Reconcile directly.
func (e *appEnv) startInformers() {
	e.t.Helper()
	if err := e.r.start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// newApp returns a started buildpack app in a space of its own with a web
// process of two instances and a worker process of one.
func (e *appEnv) newApp() AppSpec {
	app := runTestApp()
	app.GUID, app.SpaceGUID, app.OrgGUID = uuid.NewString(), uuid.NewString(), uuid.NewString()
	web := runTestWeb()
	web.GUID = uuid.NewString()
	worker := ProcessSpec{GUID: uuid.NewString(), Type: "worker", Instances: 1, MemoryMB: 128, DiskMB: 256,
		LogRateLimit: -1, HealthCheck: HealthCheck{Type: HealthCheckProcess}}
	app.Processes = []ProcessSpec{web, worker}
	e.desired.set(app)
	return app
}

func (e *appEnv) reconcile(guid string) {
	e.t.Helper()
	if err := e.r.Reconcile(e.ctx, guid); err != nil {
		e.t.Fatalf("reconcile app %s: %v", guid, err)
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func (e *appEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCached waits until the informer caches hold every object of app as
// the API server has it, so a reconcile reads the current state.
func (e *appEnv) waitCached(app AppSpec) {
	e.t.Helper()
	ns := SpaceNamespace(app.SpaceGUID)
	e.waitFor("the informer caches to catch up", func() bool {
		for _, proc := range app.Processes {
			live, err := e.client.AppsV1().StatefulSets(ns).Get(e.ctx, ProcessWorkloadName(proc.GUID), metav1.GetOptions{})
			if err != nil {
				return false
			}
			cached, err := e.r.statefulSets.StatefulSets(ns).Get(live.Name)
			if err != nil || cached.ResourceVersion != live.ResourceVersion {
				return false
			}
		}
		live, err := e.client.CoreV1().Secrets(ns).Get(e.ctx, AppEnvSecretName(app.GUID), metav1.GetOptions{})
		if err != nil {
			return false
		}
		cached, err := e.r.secrets.Secrets(ns).Get(live.Name)
		if err != nil || cached.ResourceVersion != live.ResourceVersion {
			return false
		}
		_, err = e.r.namespaces.Get(ns)
		return err == nil
	})
}

func (e *appEnv) statefulSet(app AppSpec, proc ProcessSpec) *appsv1.StatefulSet {
	e.t.Helper()
	sts, err := e.client.AppsV1().StatefulSets(SpaceNamespace(app.SpaceGUID)).Get(e.ctx, ProcessWorkloadName(proc.GUID), metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("StatefulSet of process %s: %v", proc.Type, err)
	}
	return sts
}

func (e *appEnv) service(app AppSpec, proc ProcessSpec) (*corev1.Service, error) {
	return e.client.CoreV1().Services(SpaceNamespace(app.SpaceGUID)).Get(e.ctx, ProcessServiceName(proc.GUID), metav1.GetOptions{})
}

func (e *appEnv) envSecret(app AppSpec) *corev1.Secret {
	e.t.Helper()
	secret, err := e.client.CoreV1().Secrets(SpaceNamespace(app.SpaceGUID)).Get(e.ctx, AppEnvSecretName(app.GUID), metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("env Secret: %v", err)
	}
	return secret
}

// addPod creates the pod of one instance of proc as the StatefulSet
// controller would, and writes its container status as the kubelet would.
func (e *appEnv) addPod(app AppSpec, proc ProcessSpec, index int, status corev1.ContainerStatus) *corev1.Pod {
	e.t.Helper()
	ns := SpaceNamespace(app.SpaceGUID)
	// No controller manager runs, so the ServiceAccount admission plugin
	// finds no default ServiceAccount unless the test makes one.
	_, err := e.client.CoreV1().ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
	sts := e.statefulSet(app, proc)
	podLabels := maps.Clone(sts.Spec.Template.Labels)
	podLabels[appsv1.PodIndexLabel] = strconv.Itoa(index)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: InstancePodName(proc.GUID, index), Namespace: ns, Labels: podLabels,
			Annotations: sts.Spec.Template.Annotations},
		Spec: sts.Spec.Template.Spec,
	}
	created, err := e.client.CoreV1().Pods(ns).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod: %v", err)
	}
	return e.setPodStatus(created, status)
}

func (e *appEnv) setPodStatus(pod *corev1.Pod, status corev1.ContainerStatus) *corev1.Pod {
	e.t.Helper()
	status.Name, status.Image, status.ImageID = AppContainer, pod.Spec.Containers[0].Image, pod.Spec.Containers[0].Image
	updated := pod.DeepCopy()
	updated.Status.Phase = corev1.PodRunning
	updated.Status.ContainerStatuses = []corev1.ContainerStatus{status}
	written, err := e.client.CoreV1().Pods(pod.Namespace).UpdateStatus(e.ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("write pod status: %v", err)
	}
	e.waitFor("the pod in the informer cache", func() bool {
		cached, err := e.r.pods.Pods(pod.Namespace).Get(pod.Name)
		return err == nil && cached.ResourceVersion == written.ResourceVersion
	})
	return written
}

func (e *appEnv) recordedCrashes() []Crash {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.crashes)
}

func statefulSetMemory(sts *appsv1.StatefulSet) string {
	q := sts.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
	return q.String()
}

// TestAppReconcilerOnAPIServer runs the app reconciler, the instance
// tracker and every object the process translation makes against a real
// API server, which validates and defaults them as a cluster would. One
// server serves all subtests; each uses spaces of its own.
func TestAppReconcilerOnAPIServer(t *testing.T) {
	srv, err := k8stest.Start()
	if errors.Is(err, k8stest.ErrBinariesNotFound) && os.Getenv("FERRY_K8STEST_OPTIONAL") == "1" {
		t.Skipf("kube-apiserver not available and FERRY_K8STEST_OPTIONAL=1: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	client := srv.Clientset()

	t.Run("API server accepts every process object", func(t *testing.T) {
		testAPIServerAcceptsProcessObjects(t, client)
	})
	t.Run("creates objects and then leaves them alone", func(t *testing.T) {
		testReconcileCreates(t, srv)
	})
	t.Run("updates objects when the app changes", func(t *testing.T) {
		testReconcileUpdates(t, client)
	})
	t.Run("repairs edited and deleted objects", func(t *testing.T) {
		testReconcileRepairs(t, client)
	})
	t.Run("never touches objects without Ferry labels", func(t *testing.T) {
		testReconcileForeignObjects(t, client)
	})
	t.Run("leaves the objects of another installation alone", func(t *testing.T) {
		testReconcileOtherInstallation(t, client)
	})
	t.Run("scales to zero on stop", func(t *testing.T) {
		testReconcileStop(t, client)
	})
	t.Run("removes processes and apps", func(t *testing.T) {
		testReconcileRemoves(t, client)
	})
	t.Run("records each crash once", func(t *testing.T) {
		testReconcileCrashes(t, client)
	})
	t.Run("tracker reports and restarts instances", func(t *testing.T) {
		testInstanceTracker(t, client)
	})
}

func testAPIServerAcceptsProcessObjects(t *testing.T, client kubernetes.Interface) {
	ctx := t.Context()
	opts := metav1.CreateOptions{FieldManager: FieldManager}
	space := uuid.NewString()
	ns := MakeSpaceNamespace(store.Space{GUID: space, Name: "dev", OrganizationGUID: runOrg}, "acme", "")
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, opts); err != nil {
		t.Fatalf("namespace: %v", err)
	}
	docker := func(user string, ports ...int32) *DropletSpec {
		return &DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: "10.88.0.1:5000/library/nginx@sha256:" +
			"3333333333333333333333333333333333333333333333333333333333333333", ProcessTypes: map[string]string{"web": "nginx"},
			User: user, Ports: ports}
	}

	for _, tc := range []struct {
		name   string
		change func(*AppSpec, *ProcessSpec, *WorkloadConfig)
	}{
		{name: "buildpack web"},
		{name: "custom command", change: func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.Command = "echo $HOME && ./run" }},
		{name: "http checks", change: func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
			p.HealthCheck = HealthCheck{Type: HealthCheckHTTP, Endpoint: "/health", Timeout: 180, InvocationTimeout: 10, Interval: 60}
			p.Readiness = HealthCheck{Type: HealthCheckPort, Interval: 3}
		}},
		{name: "worker without probes", change: func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
			p.Type, p.HealthCheck = "worker", HealthCheck{Type: HealthCheckProcess}
		}},
		{name: "pull secret and explicit CPU", change: func(_ *AppSpec, p *ProcessSpec, c *WorkloadConfig) {
			c.RegistrySecretName, p.CPUMillicores = RegistrySecretName, 2500
		}},
		{name: "stopped", change: func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { a.Started = false }},
		{name: "docker numeric user", change: func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { a.Droplet = docker("101:101", 80, 443) }},
		{name: "docker named user", change: func(a *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
			a.Droplet, p.Command = docker("nginx"), "nginx -g 'daemon off;'"
		}},
		{name: "docker root refused", change: func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { a.Droplet = docker("", 80) }},
		{name: "docker root allowed", change: func(a *AppSpec, _ *ProcessSpec, c *WorkloadConfig) {
			a.Droplet, c.AllowRootImages = docker("0", 80), true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, proc, cfg := runTestApp(), runTestWeb(), runTestWorkload()
			app.GUID, app.SpaceGUID, proc.GUID = uuid.NewString(), space, uuid.NewString()
			app.Name = "app $(PORT) " + tc.name
			if tc.change != nil {
				tc.change(&app, &proc, &cfg)
			}

			sts := MakeStatefulSet(app, proc, cfg)
			created, err := client.AppsV1().StatefulSets(ns.Name).Create(ctx, sts, opts)
			if err != nil {
				t.Fatalf("StatefulSet rejected: %v", err)
			}
			if !covers(sts.Spec, created.Spec) {
				t.Errorf("the stored StatefulSet lost fields Ferry set:\n%+v", created.Spec.Template.Spec.Containers[0])
			}
			if _, err := client.CoreV1().Services(ns.Name).Create(ctx, MakeService(app, proc), opts); err != nil {
				t.Fatalf("Service rejected: %v", err)
			}
		})
	}

	app := runTestApp()
	app.GUID, app.SpaceGUID = uuid.NewString(), space
	app.Env = map[string]string{"GREETING": "hello", "db.url": "postgres://x", "lower_case": "1", "MY VAR": "skipped"}
	secret, _ := MakeEnvSecret(app)
	if _, err := client.CoreV1().Secrets(ns.Name).Create(ctx, secret, opts); err != nil {
		t.Fatalf("env Secret rejected: %v", err)
	}
}

// writeCounter counts the requests that may change objects.
type writeCounter struct {
	next   http.RoundTripper
	writes atomic.Int64
}

func (c *writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		c.writes.Add(1)
	}
	return c.next.RoundTrip(req)
}

func testReconcileCreates(t *testing.T, srv *k8stest.Server) {
	counter := &writeCounter{}
	config := rest.CopyConfig(srv.RESTConfig())
	config.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		counter.next = rt
		return counter
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	web, worker := app.Processes[0], app.Processes[1]

	e.reconcile(app.GUID)

	ns, err := client.CoreV1().Namespaces().Get(e.ctx, SpaceNamespace(app.SpaceGUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels[LabelSpaceGUID] != app.SpaceGUID || !ownedBy(ns.Labels, DefaultInstallation) {
		t.Errorf("namespace labels = %v", ns.Labels)
	}
	if got := string(e.envSecret(app).Data["GREETING"]); got != "hello" {
		t.Errorf("env Secret GREETING = %q, want %q", got, "hello")
	}
	webSet, workerSet := e.statefulSet(app, web), e.statefulSet(app, worker)
	if got := *webSet.Spec.Replicas; got != 2 {
		t.Errorf("web replicas = %d, want 2", got)
	}
	if got := *workerSet.Spec.Replicas; got != 1 {
		t.Errorf("worker replicas = %d, want 1", got)
	}
	if got := workerSet.Spec.Template.Spec.Containers[0].Command; !slices.Equal(got, []string{"/cnb/process/worker"}) {
		t.Errorf("worker command = %q", got)
	}
	if _, err := e.service(app, web); err != nil {
		t.Errorf("web Service: %v", err)
	}
	if _, err := e.service(app, worker); !apierrors.IsNotFound(err) {
		t.Errorf("worker Service: %v, want none", err)
	}
	for _, f := range webSet.ManagedFields {
		if f.Manager != FieldManager {
			t.Errorf("StatefulSet field manager %q, want %q", f.Manager, FieldManager)
		}
	}

	// A second reconcile over an up-to-date cache writes nothing: the
	// comparison accepts every default the API server filled in.
	e.waitCached(app)
	before := counter.writes.Load()
	e.reconcile(app.GUID)
	if writes := counter.writes.Load() - before; writes != 0 {
		t.Errorf("a reconcile without changes sent %d write requests, want none", writes)
	}
}

func testReconcileUpdates(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	e.reconcile(app.GUID)
	e.waitCached(app)
	podTemplate := e.statefulSet(app, app.Processes[0]).Spec.Template.Spec.Containers[0].Image

	app.Processes[0].Instances = 3
	app.Processes[0].MemoryMB = 512
	app.Env = map[string]string{"GREETING": "bonjour", "NEW": "1"}
	e.desired.set(app)
	e.reconcile(app.GUID)

	web := e.statefulSet(app, app.Processes[0])
	if got := *web.Spec.Replicas; got != 3 {
		t.Errorf("web replicas = %d, want 3", got)
	}
	if got := statefulSetMemory(web); got != "512Mi" {
		t.Errorf("web memory limit = %s, want 512Mi", got)
	}
	if got := web.Spec.Template.Spec.Containers[0].Image; got != podTemplate {
		t.Errorf("web image = %s, want %s", got, podTemplate)
	}
	secret := e.envSecret(app)
	if got, want := len(secret.Data), 2; got != want || string(secret.Data["GREETING"]) != "bonjour" || string(secret.Data["NEW"]) != "1" {
		t.Errorf("env Secret has %d keys, GREETING %q, NEW %q; want 2 keys, bonjour and 1", got, secret.Data["GREETING"], secret.Data["NEW"])
	}
	if got := *e.statefulSet(app, app.Processes[1]).Spec.Replicas; got != 1 {
		t.Errorf("worker replicas = %d, want 1 still", got)
	}
}

func testReconcileRepairs(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	app := e.newApp()
	web := app.Processes[0]
	// The reconciler runs its own loop here: informer events alone must
	// bring the repairs, long before the hour-long resync.
	done := make(chan error, 1)
	go func() { done <- e.r.Run(e.ctx, 2, time.Hour) }()
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ns := SpaceNamespace(app.SpaceGUID)
	e.waitFor("the app's objects", func() bool {
		_, err := e.service(app, web)
		return err == nil
	})
	e.waitCached(app)

	sts := e.statefulSet(app, web)
	sts.Spec.Replicas = ptr.To[int32](5)
	sts.Spec.Template.Spec.Containers[0].Image = "10.88.0.1:5000/evil@sha256:" + "4444444444444444444444444444444444444444444444444444444444444444"
	sts.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("4Gi")
	sts.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = resource.MustParse("4Gi")
	if _, err := client.AppsV1().StatefulSets(ns).Update(e.ctx, sts, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Services(ns).Delete(e.ctx, ProcessServiceName(web.GUID), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := e.envSecret(app)
	secret.Data["INJECTED"] = []byte("x")
	if _, err := client.CoreV1().Secrets(ns).Update(e.ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.AppsV1().StatefulSets(ns).Delete(e.ctx, ProcessWorkloadName(app.Processes[1].GUID), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	e.waitFor("the web StatefulSet to be restored", func() bool {
		got, err := client.AppsV1().StatefulSets(ns).Get(e.ctx, ProcessWorkloadName(web.GUID), metav1.GetOptions{})
		return err == nil && *got.Spec.Replicas == 2 && got.Spec.Template.Spec.Containers[0].Image == runImage &&
			statefulSetMemory(got) == "256Mi"
	})
	e.waitFor("the web Service to be recreated", func() bool {
		_, err := e.service(app, web)
		return err == nil
	})
	e.waitFor("the injected variable to be removed", func() bool {
		got, err := client.CoreV1().Secrets(ns).Get(e.ctx, AppEnvSecretName(app.GUID), metav1.GetOptions{})
		_, injected := got.Data["INJECTED"]
		return err == nil && !injected && string(got.Data["GREETING"]) == "hello"
	})
	e.waitFor("the worker StatefulSet to be recreated", func() bool {
		_, err := client.AppsV1().StatefulSets(ns).Get(e.ctx, ProcessWorkloadName(app.Processes[1].GUID), metav1.GetOptions{})
		return err == nil
	})
}

func testReconcileForeignObjects(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	web := app.Processes[0]
	ns := MakeSpaceNamespace(store.Space{GUID: app.SpaceGUID, Name: app.SpaceName, OrganizationGUID: app.OrgGUID}, app.OrgName, "")
	if _, err := client.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign := MakeStatefulSet(app, web, runTestWorkload())
	foreign.Labels = map[string]string{"team": "other"}
	foreign.Annotations = nil
	foreign.Spec.Selector.MatchLabels = map[string]string{"team": "other"}
	foreign.Spec.Template.Labels = map[string]string{"team": "other"}
	foreign, err := client.AppsV1().StatefulSets(ns.Name).Create(e.ctx, foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	err = e.r.Reconcile(e.ctx, app.GUID)
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) || notOwned.Kind != "StatefulSet" || notOwned.Name != foreign.Name {
		t.Fatalf("Reconcile() error = %v, want a NotOwnedError for the StatefulSet %s", err, foreign.Name)
	}
	if !onlyNotOwned(err) {
		t.Errorf("Reconcile() error = %v, want only NotOwnedErrors, which are not retried", err)
	}
	got, err := client.AppsV1().StatefulSets(ns.Name).Get(e.ctx, foreign.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the foreign StatefulSet was written: resource version %s, want %s", got.ResourceVersion, foreign.ResourceVersion)
	}
	if _, err := e.service(app, web); err != nil {
		t.Errorf("the web Service was not created next to the foreign StatefulSet: %v", err)
	}
	if _, err := client.AppsV1().StatefulSets(ns.Name).Get(e.ctx, ProcessWorkloadName(app.Processes[1].GUID), metav1.GetOptions{}); err != nil {
		t.Errorf("the worker StatefulSet was not created next to the foreign one: %v", err)
	}

	// Removing the app deletes Ferry's objects and leaves the foreign one.
	e.desired.remove(app.GUID)
	e.waitFor("the worker StatefulSet in the cache", func() bool {
		_, err := e.r.statefulSets.StatefulSets(ns.Name).Get(ProcessWorkloadName(app.Processes[1].GUID))
		return err == nil
	})
	e.reconcile(app.GUID)
	if _, err := client.AppsV1().StatefulSets(ns.Name).Get(e.ctx, foreign.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the foreign StatefulSet is gone after the app was removed: %v", err)
	}
}

// testReconcileOtherInstallation runs two installations on one cluster:
// the default one, whose database lacks the other's app, must neither see
// nor remove that app's objects.
func testReconcileOtherInstallation(t *testing.T, client kubernetes.Interface) {
	otherCfg := testConfig()
	otherCfg.Installation = "other"
	other := newAppEnvFor(t, client, runTestWorkload(), otherCfg)
	other.startInformers()
	app := other.newApp()
	other.reconcile(app.GUID)
	other.waitCached(app)
	sts := other.statefulSet(app, app.Processes[0])
	if got := sts.Labels[LabelInstallation]; got != "other" {
		t.Fatalf("StatefulSet installation label = %q, want %q", got, "other")
	}

	mine := newAppEnv(t, client, runTestWorkload())
	mine.startInformers()
	if slices.Contains(mine.r.appGUIDsInCluster(), app.GUID) {
		t.Errorf("the default installation lists the other installation's app %s as its own", app.GUID)
	}
	// To the default installation the app does not exist; reconciling it
	// removes nothing that belongs to the other one.
	mine.reconcile(app.GUID)
	for _, proc := range app.Processes {
		got := other.statefulSet(app, proc)
		if got.DeletionTimestamp != nil || got.ResourceVersion == "" {
			t.Errorf("%s StatefulSet of the other installation was deleted", proc.Type)
		}
	}
	if _, err := other.service(app, app.Processes[0]); err != nil {
		t.Errorf("web Service of the other installation: %v", err)
	}

	// The same space seen by the default installation is a foreign
	// namespace: it reports the conflict instead of adopting it.
	mine.desired.set(app)
	err := mine.r.Reconcile(mine.ctx, app.GUID)
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) || notOwned.Kind != "Namespace" {
		t.Errorf("Reconcile() by the default installation = %v, want a NotOwnedError for the namespace", err)
	}
}

func testReconcileStop(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	e.reconcile(app.GUID)
	e.waitCached(app)

	app.Started = false
	e.desired.set(app)
	e.reconcile(app.GUID)
	for _, proc := range app.Processes {
		if got := *e.statefulSet(app, proc).Spec.Replicas; got != 0 {
			t.Errorf("%s replicas = %d after stop, want 0", proc.Type, got)
		}
	}
	if _, err := e.service(app, app.Processes[0]); err != nil {
		t.Errorf("web Service after stop: %v, want it kept", err)
	}

	e.waitCached(app)
	app.Started = true
	app.Revision = "4"
	e.desired.set(app)
	e.reconcile(app.GUID)
	web := e.statefulSet(app, app.Processes[0])
	if got := *web.Spec.Replicas; got != 2 {
		t.Errorf("web replicas = %d after start, want 2", got)
	}
	if got := web.Spec.Template.Labels[LabelRevision]; got != "4" {
		t.Errorf("web pod revision = %q after start, want 4", got)
	}
}

func testReconcileRemoves(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	e.reconcile(app.GUID)
	e.waitCached(app)
	ns := SpaceNamespace(app.SpaceGUID)
	worker := app.Processes[1]

	app.Processes = app.Processes[:1]
	e.desired.set(app)
	e.reconcile(app.GUID)
	if _, err := client.AppsV1().StatefulSets(ns).Get(e.ctx, ProcessWorkloadName(worker.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("worker StatefulSet after the process was removed: %v, want not found", err)
	}

	e.waitCached(app)
	e.desired.remove(app.GUID)
	e.reconcile(app.GUID)
	web := app.Processes[0]
	if _, err := client.AppsV1().StatefulSets(ns).Get(e.ctx, ProcessWorkloadName(web.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web StatefulSet after the app was removed: %v, want not found", err)
	}
	if _, err := e.service(app, web); !apierrors.IsNotFound(err) {
		t.Errorf("web Service after the app was removed: %v, want not found", err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(e.ctx, AppEnvSecretName(app.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("env Secret after the app was removed: %v, want not found", err)
	}
	if _, err := client.CoreV1().Namespaces().Get(e.ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("namespace after the app was removed: %v, want it kept for the space", err)
	}

	// An app whose droplet went is removed the same way.
	other := e.newApp()
	e.reconcile(other.GUID)
	e.waitCached(other)
	other.Droplet = nil
	e.desired.set(other)
	e.reconcile(other.GUID)
	if _, err := client.AppsV1().StatefulSets(SpaceNamespace(other.SpaceGUID)).Get(e.ctx, ProcessWorkloadName(other.Processes[0].GUID),
		metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web StatefulSet of an app without droplet: %v, want not found", err)
	}
}

func testReconcileCrashes(t *testing.T, client kubernetes.Interface) {
	e := newAppEnv(t, client, runTestWorkload())
	e.startInformers()
	app := e.newApp()
	web := app.Processes[0]
	e.reconcile(app.GUID)
	e.waitCached(app)

	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	pod := e.addPod(app, web, 1, corev1.ContainerStatus{Ready: true, RestartCount: 0,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}})
	e.reconcile(app.GUID)
	if got := e.recordedCrashes(); len(got) != 0 {
		t.Fatalf("crashes of a healthy instance: %+v", got)
	}

	finished := metav1.NewTime(time.Now().Truncate(time.Second))
	pod = e.setPodStatus(pod, corev1.ContainerStatus{RestartCount: 0,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled", StartedAt: started, FinishedAt: finished}}})

	// A failed record is retried and leaves the crash unreported.
	e.mu.Lock()
	e.crashError = errors.New("database unavailable")
	e.mu.Unlock()
	if err := e.r.Reconcile(e.ctx, app.GUID); err == nil {
		t.Fatal("Reconcile() succeeded while recording the crash failed")
	}
	e.mu.Lock()
	e.crashError = nil
	e.mu.Unlock()

	e.reconcile(app.GUID)
	crashes := e.recordedCrashes()
	if len(crashes) != 1 {
		t.Fatalf("recorded %d crashes, want 1", len(crashes))
	}
	want := Crash{AppGUID: app.GUID, AppName: app.Name, SpaceGUID: app.SpaceGUID, OrgGUID: app.OrgGUID, ProcessGUID: web.GUID,
		ProcessType: "web", Index: 1, InstanceGUID: string(pod.UID), CrashCount: 1, ExitStatus: 137, Reason: "OOMKilled", At: finished.Time}
	if got := crashes[0]; got != want {
		t.Errorf("crash = %+v, want %+v", got, want)
	}
	e.waitFor("the reported crash count on the pod", func() bool {
		cached, err := e.r.pods.Pods(pod.Namespace).Get(pod.Name)
		return err == nil && cached.Annotations[AnnotationReportedCrashes] == "1"
	})

	// The same crash is not recorded again.
	e.reconcile(app.GUID)
	if got := len(e.recordedCrashes()); got != 1 {
		t.Errorf("recorded %d crashes after another reconcile, want still 1", got)
	}

	// The restart is not a crash; the next exit is.
	pod, err := client.CoreV1().Pods(pod.Namespace).Get(e.ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod = e.setPodStatus(pod, corev1.ContainerStatus{Ready: true, RestartCount: 1,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: finished}}})
	e.reconcile(app.GUID)
	if got := len(e.recordedCrashes()); got != 1 {
		t.Errorf("recorded %d crashes after the restart, want still 1", got)
	}
	e.setPodStatus(pod, corev1.ContainerStatus{RestartCount: 1,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: finished}}})
	e.reconcile(app.GUID)
	crashes = e.recordedCrashes()
	if len(crashes) != 2 || crashes[1].CrashCount != 2 || crashes[1].ExitStatus != 1 {
		t.Errorf("crashes = %+v, want a second one with count 2 and exit status 1", crashes)
	}
}

func testInstanceTracker(t *testing.T, client kubernetes.Interface) {
	workload := runTestWorkload()
	e := newAppEnv(t, client, workload)
	e.startInformers()
	app := e.newApp()
	web := app.Processes[0]
	e.reconcile(app.GUID)
	e.waitCached(app)

	tracker := NewInstanceTracker(client, "")
	if err := tracker.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	pod := e.addPod(app, web, 0, corev1.ContainerStatus{Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}})

	q := InstanceQuery{SpaceGUID: app.SpaceGUID, ProcessGUID: web.GUID, Instances: 2, MemoryMB: 1, DiskMB: 1}
	var got []InstanceStatus
	e.waitFor("the tracker to see the pod", func() bool {
		var err error
		got, err = tracker.ProcessInstances(q)
		return err == nil && len(got) == 2 && got[0].State == InstanceRunning
	})
	if got[0].InstanceGUID != string(pod.UID) || !got[0].Since.Equal(started.Time) || got[0].MemoryQuota != 256<<20 || got[0].DiskQuota != 1<<30 {
		t.Errorf("instance 0 = %+v, want the pod's UID, start time and the StatefulSet's quotas", got[0])
	}
	if got[1].State != InstanceDown {
		t.Errorf("instance 1 state = %s, want DOWN without a pod", got[1].State)
	}

	if err := tracker.RestartInstance(e.ctx, app.SpaceGUID, web.GUID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods(pod.Namespace).Get(e.ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after restart: %v, want deleted for its StatefulSet to replace", err)
	}
	if err := tracker.RestartInstance(e.ctx, app.SpaceGUID, web.GUID, 1); err != nil {
		t.Errorf("restart an instance without a pod: %v, want nothing to do", err)
	}

	// A process that cannot start reports why on every instance.
	root := e.newApp()
	root.Droplet = &DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: runImage,
		ProcessTypes: map[string]string{"web": "nginx"}}
	e.desired.set(root)
	e.reconcile(root.GUID)
	if got := *e.statefulSet(root, root.Processes[0]).Spec.Replicas; got != 0 {
		t.Errorf("replicas of a root image = %d, want 0", got)
	}
	rq := InstanceQuery{SpaceGUID: root.SpaceGUID, ProcessGUID: root.Processes[0].GUID, Instances: 2}
	e.waitFor("the tracker to see the start error", func() bool {
		got, err := tracker.ProcessInstances(rq)
		return err == nil && len(got) == 2 && got[0].State == InstanceCrashed && got[1].State == InstanceCrashed &&
			got[0].Details != ""
	})
}
