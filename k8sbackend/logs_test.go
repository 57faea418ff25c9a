package k8sbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestLogCollectorFollowsAppPod(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key, e.line(0, "starting"), e.line(10, "listening on 8080"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-1", 0)}
	e.createPod(pod)

	e.waitForLines(logTestApp, 3)
	e.kubelet.write(key, e.line(20, "GET / 200"))
	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"APP/PROC/WEB/0 starting",
		"APP/PROC/WEB/0 listening on 8080",
		"APP/PROC/WEB/0 GET / 200",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}

	for _, env := range e.sink.all() {
		if env.Stream != logcache.StreamOut {
			t.Errorf("stream of %q = %q, want OUT", env.Payload, env.Stream)
		}
	}
	last := e.sink.all()[3]
	if got := time.Unix(0, last.Timestamp); !got.Equal(e.at(20)) {
		t.Errorf("timestamp = %s, want the kubelet's %s", got, e.at(20))
	}
	reqs := e.kubelet.requestsFor(key)
	if len(reqs) != 1 || !reqs[0].opts.Follow || !reqs[0].opts.Timestamps || reqs[0].opts.SinceTime != nil {
		t.Errorf("requests = %+v, want one follow request with timestamps from the beginning", reqs)
	}
}

func TestLogCollectorFollowsStagingPod(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	fetch := logKey(logTestNamespace, "build-1", FetchContainer)
	build := logKey(logTestNamespace, "build-1", BuildContainer)
	e.kubelet.write(fetch, e.line(0, "fetching package"))
	e.kubelet.exit(fetch)
	e.kubelet.write(build, e.line(100, "===> DETECTING"))
	pod := stagingPod("build-1")
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{exitedContainer(FetchContainer, "f-1", 0, e.at(50))}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(BuildContainer, "b-1", 0)}
	pod = e.createPod(pod)

	e.waitForLines(logTestApp, 4)
	e.kubelet.write(build, e.line(200, "===> BUILDING"))
	e.waitForLines(logTestApp, 5)
	e.setStatus(pod, pod.Status.InitContainerStatuses, exitedContainer(BuildContainer, "b-1", 51, e.at(300)))
	e.kubelet.exit(build)

	got := e.waitForLines(logTestApp, 6)
	if got[0] != "STG/0 Cell node-1 creating container for instance uid-build-1" {
		t.Errorf("first line = %q, want the cell line", got[0])
	}
	// The two containers are read at once, so only the order within each
	// is fixed.
	var fetchLines, buildLines []string
	for _, line := range got[1:] {
		if strings.Contains(line, "fetch") || strings.HasSuffix(line, "Exit status 0") {
			fetchLines = append(fetchLines, line)
		} else {
			buildLines = append(buildLines, line)
		}
	}
	if diff := cmp.Diff([]string{"STG/0 fetching package", "STG/0 Exit status 0"}, fetchLines); diff != "" {
		t.Errorf("fetch container lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"STG/0 ===> DETECTING", "STG/0 ===> BUILDING", "STG/0 Exit status 51"}, buildLines); diff != "" {
		t.Errorf("build container lines (-want +got):\n%s", diff)
	}
}

func TestLogCollectorRestartedContainer(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key, e.line(0, "first run"), e.line(10, "crashing"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-1", 0)}
	pod = e.createPod(pod)
	e.waitForLines(logTestApp, 3)

	// The status reports the exit before the stream ends, so the follower
	// needs no further request to learn that the instance's log is complete.
	pod = e.setStatus(pod, nil, exitedContainer(AppContainer, "c-1", 1, e.at(20)))
	e.kubelet.restart(key)
	e.waitForLines(logTestApp, 4)

	// The new instance logs within the same second as the old one, which
	// the second-precision SinceTime cannot tell apart.
	e.kubelet.write(key, e.line(500, "second run"))
	restarted := runningContainer(AppContainer, "c-2", 1)
	restarted.LastTerminationState = corev1.ContainerState{Terminated: exitedContainer(AppContainer, "c-1", 1, e.at(20)).State.Terminated}
	e.setStatus(pod, nil, restarted)
	e.waitForLines(logTestApp, 5)
	e.kubelet.write(key, e.line(600, "serving"))

	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"APP/PROC/WEB/0 first run",
		"APP/PROC/WEB/0 crashing",
		"APP/PROC/WEB/0 Exit status 1",
		"APP/PROC/WEB/0 second run",
		"APP/PROC/WEB/0 serving",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	// One request per container instance.
	reqs := e.kubelet.requestsFor(key)
	if len(reqs) != 2 {
		t.Fatalf("%d log requests, want 2: %+v", len(reqs), reqs)
	}
	if since := reqs[1].opts.SinceTime; since == nil || !since.Time.Equal(e.at(10)) {
		t.Errorf("second request SinceTime = %v, want the last line's time %s", since, e.at(10))
	}
}

func TestLogCollectorReconnectsBrokenStream(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key, e.line(100, "one"), e.line(200, "two"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-1", 0)}
	e.createPod(pod)
	e.waitForLines(logTestApp, 3)

	e.kubelet.breakStreams(key)
	e.waitFor("a reconnect", func() bool { return len(e.kubelet.requestsFor(key)) == 2 })
	e.kubelet.write(key, e.line(300, "three"))
	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"APP/PROC/WEB/0 one", "APP/PROC/WEB/0 two", "APP/PROC/WEB/0 three",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	reqs := e.kubelet.requestsFor(key)
	if since := reqs[1].opts.SinceTime; since == nil || !since.Time.Equal(e.at(200)) {
		t.Errorf("reconnect SinceTime = %v, want the last line's time %s", since, e.at(200))
	}
}

func TestLogCollectorEndsWithDeletedPod(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key, e.line(0, "last words"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-1", 0)}
	e.createPod(pod)
	e.waitForLines(logTestApp, 2)

	e.kubelet.exit(key)
	if err := e.client.CoreV1().Pods(logTestNamespace).Delete(e.ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the follower to stop", func() bool {
		open, _ := e.kubelet.openStreams()
		return open == 0 && e.c.podCount() == 0
	})
	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"APP/PROC/WEB/0 last words",
		"CELL/0 Cell node-1 stopping instance uid-web-0",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestLogCollectorBoundsStreams(t *testing.T) {
	e := newLogEnv(t)
	e.start(func(o *LogCollectorOptions) { o.MaxStreams = 1 })
	first := logKey(logTestNamespace, "web-0", AppContainer)
	second := logKey(logTestNamespace, "web-1", AppContainer)
	e.kubelet.write(first, e.line(0, "from 0"))
	e.kubelet.write(second, e.line(0, "from 1"))
	for i := range 2 {
		pod := appPod(fmt.Sprintf("web-%d", i), i)
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, fmt.Sprintf("c-%d", i), 0)}
		e.createPod(pod)
	}

	// One instance's stream holds the only slot until its container exits.
	e.waitForLines(logTestApp, 3)
	keys := e.kubelet.requestKeys()
	if len(keys) != 1 {
		t.Fatalf("log requests for %v, want one container at a time", keys)
	}
	e.kubelet.exit(keys[0])
	e.waitForLines(logTestApp, 4)
	if _, maxOpen := e.kubelet.openStreams(); maxOpen != 1 {
		t.Errorf("%d streams were open at once, want at most 1", maxOpen)
	}
}

func TestLogCollectorIgnoresForeignPods(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	foreign := appPod("other-0", 0)
	foreign.Labels[LabelInstallation] = "other"
	noComponent := appPod("plain-0", 0)
	delete(noComponent.Labels, LabelComponent)
	own := appPod("web-0", 0)
	for _, pod := range []*corev1.Pod{foreign, noComponent, own} {
		e.kubelet.write(logKey(logTestNamespace, pod.Name, AppContainer), e.line(0, "hello"))
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-"+pod.Name, 0)}
		e.createPod(pod)
	}

	// The informer delivers events in order, so once the last pod's line is
	// in, the other pods were seen and skipped.
	e.waitForLines(logTestApp, 2)
	if diff := cmp.Diff([]string{logKey(logTestNamespace, "web-0", AppContainer)}, e.kubelet.requestKeys()); diff != "" {
		t.Errorf("containers read (-want +got):\n%s", diff)
	}
}

func TestLogCollectorLifecycleLines(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	pod := appPod("web-0", 0)
	pod.Spec.NodeName = ""
	pod = e.createPod(pod)

	scheduled := pod.DeepCopy()
	scheduled.Spec.NodeName = logTestNode
	pod = e.update(scheduled)
	e.waitForLines(logTestApp, 1)

	ready := pod.DeepCopy()
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	pod = e.update(ready)
	e.waitForLines(logTestApp, 2)

	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(30 * time.Second)}
	e.update(deleting)
	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"CELL/0 Container became healthy",
		"CELL/0 Cell node-1 stopping instance uid-web-0",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestLogCollectorTaskLifecycleLines(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	pod := appPod("task-0", 0)
	pod.Labels[LabelComponent] = ComponentTask
	pod.Annotations[AnnotationTaskName] = "greet"
	pod.Spec.NodeName = ""
	pod = e.createPod(pod)

	scheduled := pod.DeepCopy()
	scheduled.Spec.NodeName = logTestNode
	pod = e.update(scheduled)
	e.waitForLines(logTestApp, 1)

	// Diego runs a task without a health check, so its cells never report
	// a task container healthy, even though the task pod turns ready.
	ready := pod.DeepCopy()
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	pod = e.update(ready)

	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now().Add(30 * time.Second)}
	e.update(deleting)
	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-task-0",
		"CELL/0 Cell node-1 stopping instance uid-task-0",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// update writes a whole pod, status included.
func (e *logEnv) update(pod *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	updated, err := e.client.CoreV1().Pods(pod.Namespace).Update(e.ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return updated
}

func TestLogCollectorEnforcesLogRateLimit(t *testing.T) {
	e := newLogEnv(t)
	e.start(nil)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key,
		e.line(0, "0123456789"),
		e.line(10, "dropped"),
		e.line(20, "dropped too"),
		e.line(1500, "abc"),
	)
	pod := appPod("web-0", 0)
	pod.Annotations[AnnotationLogRateLimit] = "10"
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-1", 0)}
	e.createPod(pod)

	want := []string{
		"CELL/0 Cell node-1 creating container for instance uid-web-0",
		"APP/PROC/WEB/0 0123456789",
		"APP/PROC/WEB/0 app instance exceeded log rate limit (10 bytes/sec)",
		"APP/PROC/WEB/0 abc",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestLogCollectorBackfillsExistingPods(t *testing.T) {
	e := newLogEnv(t)
	// Two instances of the app wrote interleaved lines before the collector
	// started, and a staging pod finished.
	web0 := logKey(logTestNamespace, "web-0", AppContainer)
	web1 := logKey(logTestNamespace, "web-1", AppContainer)
	build := logKey(logTestNamespace, "build-1", BuildContainer)
	e.kubelet.write(web0, e.line(0, "too old"), e.line(100, "a"), e.line(300, "c"))
	e.kubelet.write(web1, e.line(200, "b"), e.line(400, "d"))
	e.kubelet.write(build, e.line(50, "built"))
	e.kubelet.exit(build)
	for i := range 2 {
		pod := appPod(fmt.Sprintf("web-%d", i), i)
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, fmt.Sprintf("c-%d", i), 0)}
		e.createPod(pod)
	}
	staging := stagingPod("build-1")
	staging.Status.ContainerStatuses = []corev1.ContainerStatus{exitedContainer(BuildContainer, "b-1", 0, e.at(60))}
	e.createPod(staging)

	e.start(func(o *LogCollectorOptions) { o.BackfillLines = 2 })
	e.kubelet.write(web1, e.line(500, "e"))
	want := []string{
		"STG/0 built",
		"APP/PROC/WEB/0 a",
		"APP/PROC/WEB/1 b",
		"APP/PROC/WEB/0 c",
		"APP/PROC/WEB/1 d",
		"APP/PROC/WEB/1 e",
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	// The finished staging container is read once, by the backfill.
	if reqs := e.kubelet.requestsFor(build); len(reqs) != 1 {
		t.Errorf("%d requests for the finished staging container, want 1", len(reqs))
	}
}

func TestLogCollectorBackfillWithoutWindow(t *testing.T) {
	e := newLogEnv(t)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.kubelet.write(key, e.line(0, "before the start"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-0", 0)}
	e.createPod(pod)

	e.start(func(o *LogCollectorOptions) { o.BackfillWindow = -1 })
	e.kubelet.write(key, fakeLogLine{at: time.Now().Add(time.Second), text: "after the start"})
	if diff := cmp.Diff([]string{"APP/PROC/WEB/0 after the start"}, e.waitForLines(logTestApp, 1)); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestScanLogLines(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)
	stamp := at.Format(time.RFC3339Nano)
	long := strings.Repeat("x", maxLogLineBytes+10)

	type piece struct {
		At      time.Time
		Payload string
		First   bool
	}
	for _, tc := range []struct {
		name  string
		input string
		want  []piece
	}{
		{name: "lines", input: stamp + " one\n" + stamp + " two\n",
			want: []piece{{at, "one", true}, {at, "two", true}}},
		{name: "no final newline", input: stamp + " partial",
			want: []piece{{at, "partial", true}}},
		{name: "empty line", input: stamp + " \n",
			want: []piece{{at, "", true}}},
		{name: "no timestamp", input: stamp + " one\nplain line\n",
			want: []piece{{at, "one", true}, {at, "plain line", true}}},
		{name: "long line", input: stamp + " " + long + "\n" + stamp + " next\n",
			want: []piece{
				{at, long[:maxLogLineBytes-len(stamp)-1], true},
				{at, long[maxLogLineBytes-len(stamp)-1:], false},
				{at, "next", true},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []piece
			err := scanLogLines(strings.NewReader(tc.input), func(at time.Time, payload []byte, first bool) {
				got = append(got, piece{at, string(payload), first})
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogRateLimiter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := &logRateLimiter{limit: 100}
	for _, tc := range []struct {
		offset time.Duration
		bytes  int
		want   bool
	}{
		{0, 60, true},
		{0, 60, false},
		{100 * time.Millisecond, 50, true},
		{200 * time.Millisecond, 20, false},
		{2 * time.Second, 100, true},
		{10 * time.Second, 101, false},
	} {
		if got := l.allow(start.Add(tc.offset), tc.bytes); got != tc.want {
			t.Errorf("allow(+%s, %d) = %v, want %v", tc.offset, tc.bytes, got, tc.want)
		}
	}
}

func TestPodLogSource(t *testing.T) {
	app := appPod("web-3", 3)
	app.Annotations[AnnotationProcessType] = "worker"
	app.Annotations[AnnotationLogRateLimit] = "-1"
	foreign := appPod("web-0", 0)
	foreign.Labels[LabelInstallation] = "other"
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want logSource
		ok   bool
	}{
		{name: "app", pod: app, ok: true,
			want: logSource{SourceID: logTestApp, InstanceID: "3", SourceType: "APP/PROC/WORKER", RateLimit: -1}},
		{name: "staging", pod: stagingPod("build-1"), ok: true,
			want: logSource{SourceID: logTestApp, InstanceID: "0", SourceType: "STG", Staging: true, RateLimit: -1}},
		{name: "other installation", pod: foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := podLogSourceOf(tc.pod, "")
			if ok != tc.ok || got != tc.want {
				t.Errorf("podLogSourceOf = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestPutCrashLogLine(t *testing.T) {
	sink := &lineRecorder{}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	putCrashLogLine(sink, Crash{AppGUID: logTestApp, ProcessType: "web", Index: 2, ExitStatus: 137, Reason: "OOMKilled", At: at})
	putCrashLogLine(nil, Crash{})

	want := []logcache.Envelope{{Timestamp: at.UnixNano(), SourceID: logTestApp, InstanceID: "2", SourceType: "CELL",
		Stream: "OUT", Payload: []byte("APP/PROC/WEB: Exited with status 137 (out of memory)")}}
	if diff := cmp.Diff(want, sink.all()); diff != "" {
		t.Errorf("envelopes (-want +got):\n%s", diff)
	}
}

func TestClientLogStreamerUsesPodsLog(t *testing.T) {
	// client-go's fake clientset returns "fake logs" for every log request,
	// which is enough to see the request reach the pods/log subresource.
	e := newLogEnv(t)
	stream, err := ClientLogStreamer{Client: e.client}.StreamLogs(context.Background(), logTestNamespace, "web-0",
		&corev1.PodLogOptions{Container: AppContainer})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	body, err := io.ReadAll(stream)
	if err != nil || string(body) != "fake logs" {
		t.Errorf("body = %q, %v", body, err)
	}
}

// recordAppEvent records an audit event of the test app created at at.
func recordAppEvent(t *testing.T, st *store.Store, eventType string, at time.Time, data map[string]any) {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.DB().ExecContext(context.Background(), `
		INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, target_type,
			target_name, data, created_at, updated_at)
		VALUES ($1, $2, 'user-1', 'user', 'alice', $3, 'app', 'web', $4, $5, $5)`,
		uuid.NewString(), eventType, logTestApp, raw, at)
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogCollectorPutsAPILines(t *testing.T) {
	e := newLogEnv(t)
	st := pgtest.NewStore(t)
	e.start(func(o *LogCollectorOptions) { o.Store = st })

	now := time.Now()
	recordAppEvent(t, st, "audit.app.update", now, map[string]any{"request": map[string]any{
		"name": "web", "environment_variables": map[string]any{"SECRET": "s3cret"}}})
	recordAppEvent(t, st, "audit.app.process.scale", now.Add(time.Millisecond), map[string]any{
		"process_guid": "p1", "process_type": "web", "request": map[string]any{"instances": 2}})
	recordAppEvent(t, st, "audit.app.environment.show", now.Add(2*time.Millisecond), nil)
	recordAppEvent(t, st, "audit.app.start", now.Add(3*time.Millisecond), nil)

	want := []string{
		`API/0 Updated app with guid ` + logTestApp + ` ({"environment_variables":"PRIVATE DATA HIDDEN","name":"web"})`,
		`API/0 Scaling process: "web"`,
		`API/0 Starting app with guid ` + logTestApp,
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestLogCollectorBackfillMergesAuditEvents(t *testing.T) {
	e := newLogEnv(t)
	st := pgtest.NewStore(t)
	key := logKey(logTestNamespace, "web-0", AppContainer)
	e.base = time.Now().Add(-time.Minute)
	e.kubelet.write(key, e.line(0, "before the restart"), e.line(200, "after the restart"))
	pod := appPod("web-0", 0)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{runningContainer(AppContainer, "c-0", 0)}
	e.createPod(pod)
	recordAppEvent(t, st, "audit.app.restart", e.at(100), nil)
	recordAppEvent(t, st, "audit.app.create", e.base.Add(-2*time.Hour), nil)

	e.start(func(o *LogCollectorOptions) { o.Store = st })
	recordAppEvent(t, st, "audit.app.stop", time.Now(), nil)
	want := []string{
		"APP/PROC/WEB/0 before the restart",
		"API/0 Restarted app with guid " + logTestApp,
		"APP/PROC/WEB/0 after the restart",
		"API/0 Stopping app with guid " + logTestApp,
	}
	if diff := cmp.Diff(want, e.waitForLines(logTestApp, len(want))); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestAuditLogText(t *testing.T) {
	const app = "a1"
	for _, tc := range []struct {
		eventType string
		data      map[string]any
		actor     string
		want      string
	}{
		{eventType: "audit.app.create", want: "Created app with guid a1"},
		{eventType: "audit.app.update", want: "Updated app with guid a1"},
		{eventType: "audit.app.update",
			data: map[string]any{"request": map[string]any{"lifecycle": map[string]any{"data": map[string]any{
				"buildpacks": []any{"go"}}}, "command": "./run --token=x"}},
			want: `Updated app with guid a1 ({"command":"PRIVATE DATA HIDDEN","lifecycle":{"data":{"buildpacks":["go"]}}})`},
		{eventType: "audit.app.droplet.mapped", data: map[string]any{"request": map[string]any{"droplet_guid": "d1"}},
			want: `Updated app with guid a1 ({"droplet_guid":"d1"})`},
		{eventType: "audit.app.start", want: "Starting app with guid a1"},
		{eventType: "audit.app.stop", want: "Stopping app with guid a1"},
		{eventType: "audit.app.restart", want: "Restarted app with guid a1"},
		{eventType: "audit.app.restage", want: "Restaging app with guid a1"},
		{eventType: "audit.app.delete-request", want: "Deleted app with guid a1"},
		{eventType: "audit.app.apply_manifest", data: map[string]any{"request": map[string]any{"manifest": "env: {A: b}"}},
			want: "Applied manifest to app with guid a1"},
		{eventType: "audit.app.build.create", want: "Creating build for app with guid a1"},
		{eventType: "audit.app.droplet.create", want: "Creating droplet for app with guid a1"},
		{eventType: "audit.app.droplet.delete", want: "Deleting droplet for app with guid a1"},
		{eventType: "audit.app.process.create", data: map[string]any{"process_type": "worker"}, want: `Added process: "worker"`},
		{eventType: "audit.app.process.update", data: map[string]any{"process_type": "web"}, want: `Updating process: "web"`},
		{eventType: "audit.app.process.scale", data: map[string]any{"process_type": "web"}, want: `Scaling process: "web"`},
		{eventType: "audit.app.process.delete", data: map[string]any{"process_type": "web"}, want: `Deleting process: "web"`},
		{eventType: "audit.app.process.terminate_instance", data: map[string]any{"process_type": "web", "process_index": 2},
			want: `Terminating process: "web", index: "2"`},
		{eventType: "audit.app.process.crash", actor: "web", want: `Process has crashed with type: "web"`},
		{eventType: "audit.app.environment.show"},
		{eventType: "audit.app.ssh-authorized"},
	} {
		t.Run(tc.eventType, func(t *testing.T) {
			ev := store.AuditEvent{Type: tc.eventType, TargetGUID: app, TargetType: "app", ActorName: tc.actor, Data: tc.data}
			if got := auditLogText(ev); got != tc.want {
				t.Errorf("auditLogText = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAuditRequestTextIsBounded(t *testing.T) {
	got := auditRequestText(map[string]any{"name": strings.Repeat("é", maxAuditRequestBytes)})
	if len(got) > maxAuditRequestBytes+3 || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Errorf("request text of %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
}
