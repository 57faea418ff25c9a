package k8sbackend

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// recordingSink keeps the lines put into it.
type recordingSink struct {
	mu    sync.Mutex
	lines []logcache.Envelope
}

func (s *recordingSink) Put(e logcache.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, e)
}

func (s *recordingSink) snapshot() []logcache.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// withPayload returns the lines whose payload contains text.
func (s *recordingSink) withPayload(text string) []logcache.Envelope {
	var out []logcache.Envelope
	for _, line := range s.snapshot() {
		if strings.Contains(string(line.Payload), text) {
			out = append(out, line)
		}
	}
	return out
}

// eventEnv is an event watcher on a real API server, with an app
// reconciler's caches, the caches of staging objects, PostgreSQL and a
// recording sink.
type eventEnv struct {
	*appEnv
	st      *store.Store
	sink    *recordingSink
	watcher *eventWatcher
}

func newEventEnv(t *testing.T, client kubernetes.Interface) *eventEnv {
	t.Helper()
	e := &eventEnv{appEnv: newAppEnv(t, client, runTestWorkload()), st: pgtest.NewStore(t), sink: &recordingSink{}}
	e.startInformers()

	selector := labels.Set(ownerLabels("", ComponentStaging)).AsSelector().String()
	staging := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	pods, jobs := staging.Core().V1().Pods(), staging.Batch().V1().Jobs()
	synced := []cache.InformerSynced{pods.Informer().HasSynced, jobs.Informer().HasSynced}
	staging.Start(e.ctx.Done())
	t.Cleanup(staging.Shutdown)

	e.watcher = newEventWatcher(eventWatcherOptions{
		Client: client, Store: e.st, Logs: e.sink, Logger: e.r.logger,
		AppPods: e.r.pods, StagingPods: pods.Lister(), StatefulSets: e.r.statefulSets, Jobs: jobs.Lister(),
		Synced: append(slices.Clone(e.r.synced), synced...),
	})
	return e
}

// run runs the watcher until the test ends.
func (e *eventEnv) run() {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.watcher.Run(ctx, 1)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// storeApp writes app, its space and its organization to PostgreSQL, so
// events about it can be stored.
func (e *eventEnv) storeApp(app AppSpec) {
	e.t.Helper()
	db := e.st.DB()
	if _, err := store.CreateOrganization(e.ctx, db, store.Organization{GUID: app.OrgGUID, Name: "org-" + app.OrgGUID}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := store.CreateSpace(e.ctx, db, store.Space{GUID: app.SpaceGUID, Name: "dev", OrganizationGUID: app.OrgGUID}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := store.CreateApp(e.ctx, db, store.App{GUID: app.GUID, Name: app.Name, SpaceGUID: app.SpaceGUID,
		LifecycleType: store.LifecycleBuildpack}); err != nil {
		e.t.Fatal(err)
	}
}

// createEvent writes a Warning event about an object as the kubelet or a
// controller would, last seen at, and returns it.
func (e *eventEnv) createEvent(ref corev1.ObjectReference, reason, message string, count int32, at time.Time) *corev1.Event {
	e.t.Helper()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: ref.Name + "." + uuid.NewString()[:8], Namespace: ref.Namespace},
		InvolvedObject: ref,
		Type:           corev1.EventTypeWarning, Reason: reason, Message: message, Count: count,
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at),
		Source: corev1.EventSource{Component: "kubelet"},
	}
	created, err := e.client.CoreV1().Events(ref.Namespace).Create(e.ctx, ev, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create event %s: %v", reason, err)
	}
	return created
}

// repeatEvent raises an event's count to count, last seen at.
func (e *eventEnv) repeatEvent(ev *corev1.Event, count int32, at time.Time) *corev1.Event {
	e.t.Helper()
	updated := ev.DeepCopy()
	updated.Count, updated.LastTimestamp = count, metav1.NewTime(at)
	written, err := e.client.CoreV1().Events(ev.Namespace).Update(e.ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("update event %s: %v", ev.Name, err)
	}
	return written
}

// storedEvent waits until PostgreSQL holds event uid of app with at least
// count occurrences and returns it.
func (e *eventEnv) storedEvent(app, uid string, count int) store.KubeEvent {
	e.t.Helper()
	var found store.KubeEvent
	e.waitFor("event "+uid+" stored", func() bool {
		events, err := e.st.KubeEvents(e.ctx, store.KubeEventFilter{AppGUID: app})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range events {
			if ev.UID == uid && ev.Count >= count {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

func podRef(pod *corev1.Pod) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: kindPod, APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		FieldPath: "spec.containers{app}"}
}

func TestEventWatcherOnAPIServer(t *testing.T) {
	client := startAPIServer(t)
	e := newEventEnv(t, client)
	app := e.newApp()
	web := app.Processes[0]
	e.storeApp(app)
	e.reconcile(app.GUID)
	e.waitCached(app)
	ns := SpaceNamespace(app.SpaceGUID)
	started := time.Now().Add(-time.Minute).Truncate(time.Second)
	pod := e.addPod(app, web, 0, corev1.ContainerStatus{Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}})

	// An event from before the watcher started is stored without a line,
	// and a stored event past the maximum age is pruned at the start.
	earlier := e.createEvent(podRef(pod), "FailedMount", "before the start", 1, time.Now().Add(-10*time.Minute))
	expired := store.KubeEvent{UID: uuid.NewString(), AppGUID: app.GUID, Type: "Warning", Reason: "BackOff", Message: "old",
		Count: 1, FirstSeen: time.Now().Add(-30 * 24 * time.Hour), LastSeen: time.Now().Add(-30 * 24 * time.Hour),
		Namespace: ns, InvolvedKind: kindPod, InvolvedName: pod.Name}
	if err := e.st.RecordKubeEvent(e.ctx, expired); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.storedEvent(app.GUID, string(earlier.UID), 1)
	e.waitFor("the expired event pruned", func() bool {
		events, err := e.st.KubeEvents(e.ctx, store.KubeEventFilter{AppGUID: app.GUID})
		return err == nil && !slices.ContainsFunc(events, func(ev store.KubeEvent) bool { return ev.UID == expired.UID })
	})

	t.Run("instance event is a CELL line and a row", func(t *testing.T) {
		backOff := e.createEvent(podRef(pod), "BackOff", "Back-off restarting failed container app", 1, time.Now())
		e.waitFor("the BackOff line", func() bool { return len(e.sink.withPayload("BackOff:")) == 1 })
		line := e.sink.withPayload("BackOff:")[0]
		if line.SourceID != app.GUID || line.SourceType != logcache.SourceTypeCell || line.InstanceID != "0" ||
			line.Stream != logcache.StreamErr || string(line.Payload) != "BackOff: Back-off restarting failed container app" {
			t.Errorf("line = %+v %q, want a CELL line on stderr of instance 0 of the app", line, line.Payload)
		}
		row := e.storedEvent(app.GUID, string(backOff.UID), 1)
		if row.ProcessGUID != web.GUID || row.InstanceIndex == nil || *row.InstanceIndex != 0 || row.InvolvedName != pod.Name ||
			row.Reason != "BackOff" || row.Type != corev1.EventTypeWarning {
			t.Errorf("stored event = %+v, want the BackOff of instance 0 of the web process", row)
		}

		// Each new occurrence is one more line and updates the row.
		e.repeatEvent(backOff, 3, time.Now().Add(time.Second))
		e.waitFor("a second BackOff line", func() bool { return len(e.sink.withPayload("BackOff:")) == 2 })
		if row := e.storedEvent(app.GUID, string(backOff.UID), 3); row.Count != 3 {
			t.Errorf("stored count = %d, want 3", row.Count)
		}
	})

	t.Run("failed pod creation explains a DOWN instance", func(t *testing.T) {
		sts := e.statefulSet(app, web)
		podName := InstancePodName(web.GUID, 1)
		message := "create Pod " + podName + " in StatefulSet " + sts.Name + ` failed error: pods "` + podName +
			`" is forbidden: exceeded quota: compute`
		e.createEvent(corev1.ObjectReference{Kind: kindStatefulSet, APIVersion: "apps/v1", Namespace: ns, Name: sts.Name,
			UID: sts.UID}, reasonFailedCreate, message, 1, time.Now())
		e.waitFor("the FailedCreate line", func() bool { return len(e.sink.withPayload("FailedCreate:")) == 1 })
		if line := e.sink.withPayload("FailedCreate:")[0]; line.InstanceID != "1" {
			t.Errorf("FailedCreate line has instance %q, want 1, the pod it names", line.InstanceID)
		}

		tracker := NewInstanceTracker(client, "")
		if err := tracker.Start(e.ctx); err != nil {
			t.Fatal(err)
		}
		q := InstanceQuery{SpaceGUID: app.SpaceGUID, ProcessGUID: web.GUID, Instances: 2}
		want := `instance could not be created: pods "` + podName + `" is forbidden: exceeded quota: compute`
		e.waitFor("the tracker to explain instance 1", func() bool {
			got, err := tracker.ProcessInstances(q)
			return err == nil && len(got) == 2 && got[1].State == InstanceDown && got[1].Details == want
		})
	})

	t.Run("staging event is an STG line", func(t *testing.T) {
		build := uuid.NewString()
		stagingPod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: BuildJobName(build) + "-x7k2p", Namespace: ns,
				Labels: stagingLabels(store.Build{GUID: build, AppGUID: app.GUID, SpaceGUID: app.SpaceGUID, OrgGUID: app.OrgGUID}, "")},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: BuildContainer, Image: runImage}}},
		}
		created, err := client.CoreV1().Pods(ns).Create(e.ctx, stagingPod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev := e.createEvent(podRef(created), "Failed", `Failed to pull image "builder": not found`, 1, time.Now())
		e.waitFor("the staging line", func() bool { return len(e.sink.withPayload("Failed to pull image")) == 1 })
		line := e.sink.withPayload("Failed to pull image")[0]
		if line.SourceType != logcache.SourceTypeStaging || line.InstanceID != "0" || line.SourceID != app.GUID {
			t.Errorf("staging line = %+v, want an STG line of the app with instance 0", line)
		}
		if row := e.storedEvent(app.GUID, string(ev.UID), 1); row.BuildGUID != build || row.ProcessGUID != "" {
			t.Errorf("stored staging event = %+v, want build %s and no process", row, build)
		}
	})

	t.Run("events about other objects are ignored", func(t *testing.T) {
		foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: runImage}}}}
		created, err := client.CoreV1().Pods(ns).Create(e.ctx, foreign, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.createEvent(podRef(created), "BackOff", "foreign pod", 1, time.Now())
		// Events are handled in order, so once a later event of the app
		// is logged the foreign one has been looked at at least once.
		e.createEvent(podRef(pod), "Unhealthy", "Readiness probe failed: marker", 1, time.Now())
		e.waitFor("the marker line", func() bool { return len(e.sink.withPayload("marker")) == 1 })
		if lines := e.sink.withPayload("foreign pod"); len(lines) != 0 {
			t.Errorf("lines about a pod Ferry does not own: %+v", lines)
		}
		if lines := e.sink.withPayload("before the start"); len(lines) != 0 {
			t.Errorf("lines of an event last seen before the watcher started: %+v", lines)
		}
	})

	t.Run("crash killed by a liveness probe", func(t *testing.T) {
		finished := time.Now().Truncate(time.Second)
		crashed := e.setPodStatus(pod, corev1.ContainerStatus{RestartCount: 1,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137,
				Reason: "Error", StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished)}}})
		probe := "Liveness probe failed: dial tcp 10.88.0.9:8080: connect: connection refused"
		e.createEvent(podRef(crashed), reasonUnhealthy, probe, 1, finished)
		e.waitFor("the Unhealthy line", func() bool { return len(e.sink.withPayload(probe)) == 1 })

		crash := Crash{AppGUID: app.GUID, SpaceGUID: app.SpaceGUID, ProcessGUID: web.GUID, ProcessType: "web", Index: 0,
			InstanceGUID: string(crashed.UID), ExitStatus: 137, Reason: "Error"}
		explained := e.watcher.explainCrash(crash)
		if want := "Instance became unhealthy: " + probe; explained.ExitDescription() != want {
			t.Errorf("exit description = %q, want %q", explained.ExitDescription(), want)
		}
		crash.InstanceGUID = "another-pod"
		if got := e.watcher.explainCrash(crash).HealthCheckFailure; got != "" {
			t.Errorf("health check failure of a crash of another pod = %q, want none", got)
		}
	})
}
