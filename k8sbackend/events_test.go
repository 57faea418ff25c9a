package k8sbackend

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrycf/ferry/logcache"
)

var eventsEpoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// podEvent returns a kubelet event about the app container of pod, last
// seen at.
func podEvent(pod *corev1.Pod, eventType, reason, message string, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name + "." + reason, Namespace: pod.Namespace, UID: types.UID(reason + "-uid")},
		InvolvedObject: corev1.ObjectReference{Kind: kindPod, Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			FieldPath: "spec.containers{app}"},
		Type: eventType, Reason: reason, Message: message, Count: 1,
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at),
	}
}

// crashedPod returns instance 0 of runWeb, whose app container ran from
// started to finished and exited with exitCode and reason.
func crashedPod(exitCode int32, reason string, started, finished time.Time) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: InstancePodName(runWeb, 0), Namespace: SpaceNamespace(runSpace), UID: "pod-0",
			Labels: map[string]string{LabelAppGUID: runApp, LabelProcessGUID: runWeb}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: AppContainer,
			StartupProbe: &corev1.Probe{PeriodSeconds: 2, FailureThreshold: 30}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: AppContainer, RestartCount: 1,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonCrashLoopBackOff}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: reason, StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished)}},
		}}},
	}
	return pod
}

func TestEventSeen(t *testing.T) {
	first, last := eventsEpoch, eventsEpoch.Add(time.Minute)
	for _, tc := range []struct {
		name                string
		event               corev1.Event
		wantFirst, wantLast time.Time
		wantCount           int
	}{
		{
			name: "kubelet count and timestamps",
			event: corev1.Event{FirstTimestamp: metav1.NewTime(first), LastTimestamp: metav1.NewTime(last),
				Count: 4},
			wantFirst: first, wantLast: last, wantCount: 4,
		},
		{
			name:      "events API event time only",
			event:     corev1.Event{EventTime: metav1.NewMicroTime(first)},
			wantFirst: first, wantLast: first, wantCount: 1,
		},
		{
			name: "events API series",
			event: corev1.Event{EventTime: metav1.NewMicroTime(first),
				Series: &corev1.EventSeries{Count: 7, LastObservedTime: metav1.NewMicroTime(last)}},
			wantFirst: first, wantLast: last, wantCount: 7,
		},
		{
			name:      "creation time only",
			event:     corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(first)}},
			wantFirst: first, wantLast: first, wantCount: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotFirst, gotLast, gotCount := eventSeen(&tc.event)
			if !gotFirst.Equal(tc.wantFirst) || !gotLast.Equal(tc.wantLast) || gotCount != tc.wantCount {
				t.Errorf("eventSeen() = %s, %s, %d; want %s, %s, %d", gotFirst, gotLast, gotCount,
					tc.wantFirst, tc.wantLast, tc.wantCount)
			}
		})
	}
}

func TestSubjectOf(t *testing.T) {
	process := map[string]string{LabelAppGUID: runApp, LabelProcessGUID: runWeb}
	staging := map[string]string{LabelAppGUID: runApp, LabelBuildGUID: "build-1"}
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		podName string
		want    eventSubject
		wantOK  bool
	}{
		{"instance pod", process, InstancePodName(runWeb, 3), eventSubject{AppGUID: runApp, ProcessGUID: runWeb, Index: 3}, true},
		{"StatefulSet", process, "", eventSubject{AppGUID: runApp, ProcessGUID: runWeb, Index: -1}, true},
		{"pod of another process", process, InstancePodName(runWorker, 1), eventSubject{AppGUID: runApp, ProcessGUID: runWeb, Index: -1}, true},
		{"staging pod", staging, "build-build-1-x7k2p", eventSubject{AppGUID: runApp, BuildGUID: "build-1", Index: -1}, true},
		{"no app label", map[string]string{LabelProcessGUID: runWeb}, InstancePodName(runWeb, 0), eventSubject{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := subjectOf(tc.labels, tc.podName)
			if ok != tc.wantOK {
				t.Fatalf("subjectOf() ok = %t, want %t", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("subject (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodNamedIn(t *testing.T) {
	pod := InstancePodName(runWeb, 2)
	message := "create Pod " + pod + " in StatefulSet " + ProcessWorkloadName(runWeb) +
		` failed error: pods "` + pod + `" is forbidden: exceeded quota: ferry`
	if got := podNamedIn(message); got != pod {
		t.Errorf("podNamedIn(FailedCreate message) = %q, want %q", got, pod)
	}
	if got := podNamedIn("Failed to pull image"); got != "" {
		t.Errorf("podNamedIn(a message without a pod) = %q, want \"\"", got)
	}
}

func TestEventLine(t *testing.T) {
	pod := crashedPod(1, "Error", eventsEpoch, eventsEpoch)
	ev := podEvent(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container app", eventsEpoch)
	at := eventsEpoch.Add(time.Second)

	got := eventLine(ev, eventSubject{AppGUID: runApp, ProcessGUID: runWeb, Index: 0}, at)
	want := logcache.Envelope{Timestamp: at.UnixNano(), SourceID: runApp, InstanceID: "0", SourceType: logcache.SourceTypeCell,
		Stream: logcache.StreamErr, Payload: []byte("BackOff: Back-off restarting failed container app")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instance line (-want +got):\n%s", diff)
	}

	got = eventLine(ev, eventSubject{AppGUID: runApp, BuildGUID: "build-1", Index: -1}, at)
	if got.SourceType != logcache.SourceTypeStaging || got.InstanceID != "0" {
		t.Errorf("staging line = source type %q, instance %q; want STG and instance 0", got.SourceType, got.InstanceID)
	}
}

func TestProbeKill(t *testing.T) {
	started, finished := eventsEpoch, eventsEpoch.Add(70*time.Second)
	liveness := "Liveness probe failed: dial tcp 10.88.0.7:8080: connect: connection refused"
	startup := "Startup probe failed: dial tcp 10.88.0.7:8080: connect: connection refused"
	for _, tc := range []struct {
		name     string
		exitCode int32
		reason   string
		message  string
		seen     time.Time
		mutate   func(*corev1.Event)
		want     string
	}{
		{name: "liveness kill", exitCode: 137, reason: "Error", message: liveness, seen: finished.Add(-time.Second),
			want: "Instance became unhealthy: " + liveness},
		{name: "startup kill", exitCode: 143, reason: "Error", message: startup, seen: finished,
			want: "Instance never healthy after 1m0s: " + startup},
		{name: "timestamps truncated to the second", exitCode: 137, reason: "Error", message: liveness,
			seen: finished.Add(time.Second), want: "Instance became unhealthy: " + liveness},
		{name: "probe failed in an earlier run", exitCode: 137, reason: "Error", message: liveness,
			seen: started.Add(-time.Minute)},
		{name: "OOM kill", exitCode: 137, reason: reasonOOMKilled, message: liveness, seen: finished},
		{name: "exit of its own", exitCode: 1, reason: "Error", message: startup, seen: finished},
		{name: "readiness failure", exitCode: 137, reason: "Error", message: "Readiness probe failed: HTTP probe failed",
			seen: finished},
		{name: "another container", exitCode: 137, reason: "Error", message: liveness, seen: finished,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.FieldPath = "spec.containers{sidecar}" }},
		{name: "another pod with the name", exitCode: 137, reason: "Error", message: liveness, seen: finished,
			mutate: func(ev *corev1.Event) { ev.InvolvedObject.UID = "old-pod" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := crashedPod(tc.exitCode, tc.reason, started, finished)
			ev := podEvent(pod, corev1.EventTypeWarning, reasonUnhealthy, tc.message, tc.seen)
			if tc.mutate != nil {
				tc.mutate(ev)
			}
			got := probeKill(pod, pod.Status.ContainerStatuses[0].LastTerminationState.Terminated, []*corev1.Event{ev})
			if got != tc.want {
				t.Errorf("probeKill() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProbeKillPicksLatest(t *testing.T) {
	started, finished := eventsEpoch, eventsEpoch.Add(time.Minute)
	pod := crashedPod(137, "Error", started, finished)
	early := podEvent(pod, corev1.EventTypeWarning, reasonUnhealthy, "Startup probe failed: timeout", started.Add(10*time.Second))
	late := podEvent(pod, corev1.EventTypeWarning, reasonUnhealthy, "Liveness probe failed: refused", finished)
	got := probeKill(pod, pod.Status.ContainerStatuses[0].LastTerminationState.Terminated, []*corev1.Event{late, early})
	if want := "Instance became unhealthy: Liveness probe failed: refused"; got != want {
		t.Errorf("probeKill() = %q, want %q", got, want)
	}
}

// setEvent returns a FailedCreate event of runWeb's StatefulSet about
// the pod of index, last seen at.
func setEvent(index int, at time.Time) *corev1.Event {
	pod := InstancePodName(runWeb, index)
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "set." + pod, Namespace: SpaceNamespace(runSpace)},
		InvolvedObject: corev1.ObjectReference{Kind: kindStatefulSet, Namespace: SpaceNamespace(runSpace), Name: ProcessWorkloadName(runWeb)},
		Type:           corev1.EventTypeWarning, Reason: reasonFailedCreate,
		Message: "create Pod " + pod + " in StatefulSet " + ProcessWorkloadName(runWeb) +
			` failed error: pods "` + pod + `" is forbidden: exceeded quota: ferry-space`,
		FirstTimestamp: metav1.NewTime(at), LastTimestamp: metav1.NewTime(at), Count: 1,
	}
}

func TestFailedCreate(t *testing.T) {
	now := eventsEpoch
	want := `instance could not be created: pods "` + InstancePodName(runWeb, 1) + `" is forbidden: exceeded quota: ferry-space`
	for _, tc := range []struct {
		name   string
		events []*corev1.Event
		want   string
	}{
		{"recent failure", []*corev1.Event{setEvent(1, now.Add(-time.Minute))}, want},
		{"failure of another instance", []*corev1.Event{setEvent(0, now)}, ""},
		{"old failure", []*corev1.Event{setEvent(1, now.Add(-time.Hour))}, ""},
		{"no events", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failedCreate(InstancePodName(runWeb, 1), tc.events, now); got != tc.want {
				t.Errorf("failedCreate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExplainInstances(t *testing.T) {
	started, finished := eventsEpoch.Add(-time.Minute), eventsEpoch.Add(-10*time.Second)
	killed := crashedPod(137, "Error", started, finished)
	liveness := podEvent(killed, corev1.EventTypeWarning, reasonUnhealthy, "Liveness probe failed: refused", finished)
	q := InstanceQuery{SpaceGUID: runSpace, ProcessGUID: runWeb, Instances: 3}
	statuses := ProcessInstances(q, nil, []*corev1.Pod{killed})
	if statuses[0].Details != "exited with status 137" {
		t.Fatalf("details of the killed instance from its pod = %q, want the exit status", statuses[0].Details)
	}

	var lookups []string
	explainInstances(statuses, q, []*corev1.Pod{killed}, func(kind, name string) []*corev1.Event {
		lookups = append(lookups, kind+"/"+name)
		switch kind {
		case kindPod:
			return []*corev1.Event{liveness}
		case kindStatefulSet:
			return []*corev1.Event{setEvent(2, eventsEpoch)}
		}
		return nil
	}, eventsEpoch)

	want := []string{"Instance became unhealthy: Liveness probe failed: refused", "", ""}
	want[2] = `instance could not be created: pods "` + InstancePodName(runWeb, 2) + `" is forbidden: exceeded quota: ferry-space`
	var got []string
	for _, s := range statuses {
		got = append(got, s.Details)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("details (-want +got):\n%s", diff)
	}
	if n := strings.Count(strings.Join(lookups, " "), kindStatefulSet+"/"); n != 1 {
		t.Errorf("read the StatefulSet's events %d times for two DOWN instances, want once: %v", n, lookups)
	}
}
