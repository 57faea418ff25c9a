package k8sbackend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// fakeDeployments is the desired state plus a deployment recorder that
// applies transitions as the store does: a cancel or a failure gives the
// app its previous revision back, and a finalized deployment is no
// longer active.
type fakeDeployments struct {
	*fakeDesiredApps
	mu sync.Mutex
	// previous maps a deployment to the app revision before it.
	previous    map[string]string
	transitions []string
	failure     string
}

func (f *fakeDeployments) appOf(guid string) AppSpec {
	f.fakeDesiredApps.mu.Lock()
	defer f.fakeDesiredApps.mu.Unlock()
	for _, app := range f.apps {
		if app.Deployment != nil && app.Deployment.GUID == guid {
			return app
		}
	}
	return AppSpec{}
}

func (f *fakeDeployments) AdvanceDeployment(_ context.Context, guid, from, to string) error {
	app := f.appOf(guid)
	if app.Deployment == nil || app.Deployment.State != from {
		return fmt.Errorf("deployment %s is not %s: %w", guid, from, store.ErrDeploymentState)
	}
	f.mu.Lock()
	f.transitions = append(f.transitions, from+"->"+to)
	f.mu.Unlock()
	d := *app.Deployment
	if to == store.DeploymentStatePaused {
		d.State = to
		app.Deployment = &d
	} else {
		app.Deployment = nil
	}
	f.set(app)
	return nil
}

func (f *fakeDeployments) FailDeployment(_ context.Context, guid, reason string) error {
	app := f.appOf(guid)
	if app.Deployment == nil {
		return fmt.Errorf("deployment %s is not active: %w", guid, store.ErrDeploymentState)
	}
	f.mu.Lock()
	f.failure = reason
	previous := f.previous[guid]
	f.mu.Unlock()
	f.cancel(app, previous)
	return nil
}

// cancel does what store.CancelDeployment does to the app.
func (f *fakeDeployments) cancel(app AppSpec, previous string) {
	d := *app.Deployment
	d.State, d.TargetRevision = store.DeploymentStateCanceling, previous
	app.Deployment, app.Revision = &d, previous
	f.set(app)
}

func (f *fakeDeployments) recorded() ([]string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.transitions...), f.failure
}

// deploymentEnv is an appEnv whose desired state records deployments.
type deploymentEnv struct {
	*appEnv
	deployments *fakeDeployments
}

func newDeploymentEnv(t *testing.T, client kubernetes.Interface) *deploymentEnv {
	t.Helper()
	desired := &fakeDesiredApps{apps: map[string]AppSpec{}}
	fake := &fakeDeployments{fakeDesiredApps: desired, previous: map[string]string{}}
	e := &appEnv{t: t, ctx: t.Context(), client: client, desired: desired}
	e.r = NewAppReconciler(AppReconcilerOptions{
		Client:   client,
		Desired:  fake,
		Config:   testConfig(),
		Workload: runTestWorkload(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	e.startInformers()
	return &deploymentEnv{appEnv: e, deployments: fake}
}

// newWebApp returns a started app with one web process of instances.
func (e *deploymentEnv) newWebApp(instances int32) AppSpec {
	app := runTestApp()
	app.GUID, app.SpaceGUID, app.OrgGUID, app.Revision = uuid.NewString(), uuid.NewString(), uuid.NewString(), "1"
	web := runTestWeb()
	web.GUID, web.Instances = uuid.NewString(), instances
	app.Processes = []ProcessSpec{web}
	e.desired.set(app)
	return app
}

// deploy starts a deployment of app to revision.
func (e *deploymentEnv) deploy(app AppSpec, d DeploymentSpec, revision string) AppSpec {
	d.GUID, d.TargetRevision = uuid.NewString(), revision
	if d.State == "" {
		d.State = store.DeploymentStateDeploying
	}
	if d.MaxInFlight == 0 {
		d.MaxInFlight = 1
	}
	e.deployments.mu.Lock()
	e.deployments.previous[d.GUID] = app.Revision
	e.deployments.mu.Unlock()
	app.Revision, app.Deployment = revision, &d
	e.desired.set(app)
	return app
}

func (e *deploymentEnv) current(app AppSpec) AppSpec {
	e.t.Helper()
	got, err := e.desired.DesiredApp(e.ctx, app.GUID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// slotSet returns the StatefulSet of proc in slot, or nil.
func (e *deploymentEnv) slotSet(app AppSpec, proc ProcessSpec, slot string) *appsv1.StatefulSet {
	e.t.Helper()
	sts, err := e.client.AppsV1().StatefulSets(SpaceNamespace(app.SpaceGUID)).Get(e.ctx, SlotWorkloadName(proc.GUID, slot), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return sts
}

func (e *deploymentEnv) replicas(app AppSpec, proc ProcessSpec, slot string) int32 {
	e.t.Helper()
	sts := e.slotSet(app, proc, slot)
	if sts == nil {
		return -1
	}
	return ptr.Deref(sts.Spec.Replicas, 0)
}

// reconcileCached waits until the informers hold the StatefulSets and pods
// as the API server has them, then reconciles app.
func (e *deploymentEnv) reconcileCached(app AppSpec) {
	e.t.Helper()
	ns := SpaceNamespace(app.SpaceGUID)
	e.waitFor("the informer caches to catch up", func() bool {
		sets, err := e.client.AppsV1().StatefulSets(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, live := range sets.Items {
			cached, err := e.r.statefulSets.StatefulSets(ns).Get(live.Name)
			if err != nil || cached.ResourceVersion != live.ResourceVersion {
				return false
			}
		}
		cachedSets, _ := e.r.statefulSets.StatefulSets(ns).List(labels.Everything())
		pods, err := e.client.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, live := range pods.Items {
			cached, err := e.r.pods.Pods(ns).Get(live.Name)
			if err != nil || cached.ResourceVersion != live.ResourceVersion {
				return false
			}
		}
		cachedPods, _ := e.r.pods.Pods(ns).List(labels.Everything())
		return len(cachedSets) == len(sets.Items) && len(cachedPods) == len(pods.Items)
	})
	e.reconcile(app.GUID)
}

// addSlotPod creates instance index of proc's StatefulSet in slot as the
// StatefulSet controller would, ready or not as the kubelet would report
// it. No kubelet runs, so the test sets readiness by hand.
func (e *deploymentEnv) addSlotPod(app AppSpec, proc ProcessSpec, slot string, index int, ready bool) *corev1.Pod {
	e.t.Helper()
	ns := SpaceNamespace(app.SpaceGUID)
	_, err := e.client.CoreV1().ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
	sts := e.slotSet(app, proc, slot)
	if sts == nil {
		e.t.Fatalf("no StatefulSet in slot %s", slot)
	}
	podLabels := maps.Clone(sts.Spec.Template.Labels)
	podLabels[appsv1.PodIndexLabel] = strconv.Itoa(index)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: sts.Name + "-" + strconv.Itoa(index), Namespace: ns, Labels: podLabels,
			Annotations: sts.Spec.Template.Annotations},
		Spec: sts.Spec.Template.Spec,
	}
	created, err := e.client.CoreV1().Pods(ns).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod: %v", err)
	}
	return e.setReady(created, ready, corev1.ContainerStatus{Ready: ready, State: corev1.ContainerState{
		Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
}

// setReady writes a pod's readiness and app container status.
func (e *deploymentEnv) setReady(pod *corev1.Pod, ready bool, status corev1.ContainerStatus) *corev1.Pod {
	e.t.Helper()
	live, err := e.client.CoreV1().Pods(pod.Namespace).Get(e.ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	condition := corev1.ConditionFalse
	if ready {
		condition = corev1.ConditionTrue
	}
	status.Name, status.Image, status.ImageID = AppContainer, live.Spec.Containers[0].Image, live.Spec.Containers[0].Image
	live.Status.Phase = corev1.PodRunning
	live.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: condition}}
	live.Status.ContainerStatuses = []corev1.ContainerStatus{status}
	written, err := e.client.CoreV1().Pods(pod.Namespace).UpdateStatus(e.ctx, live, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("write pod status: %v", err)
	}
	return written
}

// deletePod removes a pod as the StatefulSet controller does when its
// StatefulSet shrinks.
func (e *deploymentEnv) deletePod(app AppSpec, name string) {
	e.t.Helper()
	err := e.client.CoreV1().Pods(SpaceNamespace(app.SpaceGUID)).Delete(e.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *deploymentEnv) expectReplicas(app AppSpec, proc ProcessSpec, primary, secondary int32) {
	e.t.Helper()
	if got := e.replicas(app, proc, SlotPrimary); got != primary {
		e.t.Errorf("primary StatefulSet replicas = %d, want %d (-1 is none)", got, primary)
	}
	if got := e.replicas(app, proc, SlotSecondary); got != secondary {
		e.t.Errorf("secondary StatefulSet replicas = %d, want %d (-1 is none)", got, secondary)
	}
}

func (e *deploymentEnv) expectTransitions(want ...string) {
	e.t.Helper()
	got, _ := e.deployments.recorded()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		e.t.Errorf("transitions = %v, want %v", got, want)
	}
}

// TestDeploymentsOnAPIServer runs deployments step by step against a real
// API server. No StatefulSet controller or kubelet runs, so each test
// creates, readies and deletes pods by hand where they would.
func TestDeploymentsOnAPIServer(t *testing.T) {
	client := startAPIServer(t)
	t.Run("rolling keeps a ready instance", func(t *testing.T) { testRollingDeployment(t, client) })
	t.Run("canary pauses until continued", func(t *testing.T) { testCanaryDeployment(t, client) })
	t.Run("cancel scales the old revision back", func(t *testing.T) { testCanceledDeployment(t, client) })
	t.Run("crashing instances cancel", func(t *testing.T) { testCrashingDeployment(t, client) })
	t.Run("restart supersedes a deployment", func(t *testing.T) { testSupersededDeployment(t, client) })
}

func testRollingDeployment(t *testing.T, client kubernetes.Interface) {
	e := newDeploymentEnv(t, client)
	app := e.newWebApp(1)
	web := app.Processes[0]
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotPrimary, 0, true)

	app = e.deploy(app, DeploymentSpec{Strategy: store.DeploymentStrategyRolling}, "2")
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 1)
	if got := e.slotSet(app, web, SlotSecondary).Spec.Template.Labels[LabelRevision]; got != "2" {
		t.Errorf("new StatefulSet revision = %q, want 2", got)
	}

	// The new instance starts but is not ready: the old one stays.
	newPod := e.addSlotPod(app, web, SlotSecondary, 0, false)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 1)
	e.expectTransitions()

	e.setReady(newPod, true, corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	e.reconcileCached(app)
	e.expectReplicas(app, web, 0, 1)
	e.expectTransitions()

	// The old StatefulSet goes once its pod is gone.
	e.deletePod(app, InstancePodName(web.GUID, 0))
	e.reconcileCached(app)
	e.expectReplicas(app, web, -1, 1)
	e.expectTransitions("DEPLOYING->DEPLOYED")

	// Without a deployment the process stays in its new slot.
	e.reconcileCached(e.current(app))
	e.expectReplicas(app, web, -1, 1)
}

func testCanaryDeployment(t *testing.T, client kubernetes.Interface) {
	e := newDeploymentEnv(t, client)
	app := e.newWebApp(2)
	web := app.Processes[0]
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotPrimary, 0, true)
	e.addSlotPod(app, web, SlotPrimary, 1, true)

	app = e.deploy(app, DeploymentSpec{Strategy: store.DeploymentStrategyCanary, CanarySteps: []int{0}, CanaryStep: 1}, "2")
	e.reconcileCached(app)
	e.expectReplicas(app, web, 2, 1)

	e.addSlotPod(app, web, SlotSecondary, 0, true)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 1)
	e.expectTransitions("DEPLOYING->PAUSED")
	e.deletePod(app, InstancePodName(web.GUID, 1))

	// Paused, the deployment stays at one new instance.
	app = e.current(app)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 1)

	// continue-deployment moves past the last step.
	d := *app.Deployment
	d.State, d.CanaryStep = store.DeploymentStateDeploying, 2
	app.Deployment = &d
	e.desired.set(app)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 2)

	e.addSlotPod(app, web, SlotSecondary, 1, true)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 0, 2)
	e.deletePod(app, InstancePodName(web.GUID, 0))
	e.reconcileCached(app)
	e.expectReplicas(app, web, -1, 2)
	e.expectTransitions("DEPLOYING->PAUSED", "DEPLOYING->DEPLOYED")
}

func testCanceledDeployment(t *testing.T, client kubernetes.Interface) {
	e := newDeploymentEnv(t, client)
	app := e.newWebApp(1)
	web := app.Processes[0]
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotPrimary, 0, true)

	app = e.deploy(app, DeploymentSpec{Strategy: store.DeploymentStrategyRolling}, "2")
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotSecondary, 0, false)

	e.deployments.cancel(app, "1")
	app = e.current(app)
	e.reconcileCached(app)
	// The old revision is the target now; the new StatefulSet shrinks.
	e.expectReplicas(app, web, 1, 0)
	if got := e.slotSet(app, web, SlotPrimary).Spec.Template.Labels[LabelRevision]; got != "1" {
		t.Errorf("primary StatefulSet revision = %q, want 1: a cancel must not roll the old instances", got)
	}
	e.deletePod(app, SlotWorkloadName(web.GUID, SlotSecondary)+"-0")
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, -1)
	e.expectTransitions("CANCELING->CANCELED")
}

func testCrashingDeployment(t *testing.T, client kubernetes.Interface) {
	e := newDeploymentEnv(t, client)
	app := e.newWebApp(1)
	web := app.Processes[0]
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotPrimary, 0, true)

	app = e.deploy(app, DeploymentSpec{Strategy: store.DeploymentStrategyRolling}, "2")
	e.reconcileCached(app)
	crashing := e.addSlotPod(app, web, SlotSecondary, 0, false)
	e.setReady(crashing, false, corev1.ContainerStatus{RestartCount: 3, State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff}}})
	e.reconcileCached(app)

	_, failure := e.deployments.recorded()
	if !strings.Contains(failure, "new instance 0 crashed 4 times") {
		t.Errorf("failure = %q, want the crashed instance", failure)
	}
	e.expectReplicas(app, web, 1, 1)

	// The canceled deployment returns to the old revision.
	app = e.current(app)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, 0)
	e.deletePod(app, crashing.Name)
	e.reconcileCached(app)
	e.expectReplicas(app, web, 1, -1)
	e.expectTransitions("CANCELING->CANCELED")
}

func testSupersededDeployment(t *testing.T, client kubernetes.Interface) {
	e := newDeploymentEnv(t, client)
	app := e.newWebApp(1)
	web := app.Processes[0]
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotPrimary, 0, true)
	app = e.deploy(app, DeploymentSpec{Strategy: store.DeploymentStrategyRolling}, "2")
	e.reconcileCached(app)
	e.addSlotPod(app, web, SlotSecondary, 0, false)

	// A restart without a strategy gives the app revision 3.
	app.Revision = "3"
	e.desired.set(app)
	e.reconcileCached(app)
	e.expectTransitions("DEPLOYING->SUPERSEDED")
	// The StatefulSet with the ready instance stays and is updated in place.
	e.expectReplicas(app, web, 1, -1)
	if got := e.slotSet(app, web, SlotPrimary).Spec.Template.Labels[LabelRevision]; got != "3" {
		t.Errorf("primary StatefulSet revision = %q, want 3", got)
	}
}
