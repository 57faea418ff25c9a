package k8sbackend

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

var instancesNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// instancePod is pod index of the web process with the app container in
// state.
func instancePod(index int, cs corev1.ContainerStatus) *corev1.Pod {
	cs.Name = AppContainer
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: InstancePodName(runWeb, index),
			UID:  types.UID("uid-" + strconv.Itoa(index)),
			Labels: map[string]string{LabelProcessGUID: runWeb, appsv1.PodIndexLabel: strconv.Itoa(index),
				LabelAppGUID: runApp},
			Annotations: map[string]string{AnnotationProcessType: "web"},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: "10.88.0.1", PodIP: "10.88.0.2" + strconv.Itoa(index),
			ContainerStatuses: []corev1.ContainerStatus{cs},
		},
	}
}

func runningStatus(ready bool, started time.Time, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}
}

func crashLoopStatus(restarts int32, exit int32, reason string, finished time.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{RestartCount: restarts,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exit, Reason: reason, FinishedAt: metav1.NewTime(finished)}},
	}
}

func TestPodState(t *testing.T) {
	started := instancesNow.Add(-90 * time.Second)
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		wantState   string
		wantSince   time.Time
		wantDetails string
	}{
		{name: "ready", pod: instancePod(0, runningStatus(true, started, 0)), wantState: InstanceRunning, wantSince: started},
		{name: "running, not ready", pod: instancePod(0, runningStatus(false, started, 0)), wantState: InstanceStarting, wantSince: started},
		{
			name: "creating",
			pod: instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}),
			wantState: InstanceStarting,
		},
		{
			name:      "out of memory, waiting to restart",
			pod:       instancePod(0, crashLoopStatus(2, 137, "OOMKilled", started)),
			wantState: InstanceCrashed, wantSince: started, wantDetails: "OOMKilled",
		},
		{
			name:      "failed, waiting to restart",
			pod:       instancePod(0, crashLoopStatus(1, 3, "Error", started)),
			wantState: InstanceCrashed, wantSince: started, wantDetails: "exited with status 3",
		},
		{
			name: "just exited",
			pod: instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", FinishedAt: metav1.NewTime(started)}}}),
			wantState: InstanceCrashed, wantSince: started, wantDetails: "exited with status 0",
		},
		{
			name: "image cannot be pulled",
			pod: instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "x"`}}}),
			wantState: InstanceCrashed, wantDetails: `ImagePullBackOff: Back-off pulling image "x"`,
		},
		{
			name: "kubelet refuses a root image",
			pod: instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerConfigError", Message: "container has runAsNonRoot and image will run as root"}}}),
			wantState: InstanceCrashed, wantDetails: "CreateContainerConfigError: container has runAsNonRoot and image will run as root",
		},
		{
			name: "unschedulable",
			pod: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: InstancePodName(runWeb, 0)},
				Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
					Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
					Message: "0/1 nodes are available: 1 Insufficient memory."}}},
			},
			wantState: InstanceDown, wantDetails: "insufficient resources: 0/1 nodes are available: 1 Insufficient memory.",
		},
		{
			name:      "pending without a container status",
			pod:       &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}},
			wantState: InstanceStarting,
		},
		{
			name: "being deleted",
			pod: func() *corev1.Pod {
				p := instancePod(0, runningStatus(true, started, 0))
				p.DeletionTimestamp = &metav1.Time{Time: instancesNow}
				return p
			}(),
			wantState: InstanceDown,
		},
		{
			name: "evicted",
			pod: func() *corev1.Pod {
				p := instancePod(0, runningStatus(false, started, 0))
				p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
				return p
			}(),
			wantState: InstanceCrashed, wantDetails: "Evicted: The node was low on resource: memory.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, since, details := podState(tc.pod)
			if state != tc.wantState {
				t.Errorf("state = %s, want %s", state, tc.wantState)
			}
			if !since.Equal(tc.wantSince) {
				t.Errorf("since = %v, want %v", since, tc.wantSince)
			}
			if details != tc.wantDetails {
				t.Errorf("details = %q, want %q", details, tc.wantDetails)
			}
		})
	}
}

func TestProcessInstances(t *testing.T) {
	started := instancesNow.Add(-time.Minute)
	q := InstanceQuery{SpaceGUID: runSpace, ProcessGUID: runWeb, Instances: 3, MemoryMB: 128, DiskMB: 512, LogRateLimit: 1024}
	sts := MakeStatefulSet(runTestApp(), runTestWeb(), runTestWorkload())
	quota := InstanceStatus{Ports: []int32{8080}, MemoryQuota: 256 << 20, DiskQuota: 1 << 30, LogRateLimit: -1}
	with := func(index int, state, details string) InstanceStatus {
		s := quota
		s.Index, s.State, s.Details = index, state, details
		return s
	}
	onPod := func(s InstanceStatus, since time.Time, index int, routable bool) InstanceStatus {
		s.Since, s.InstanceGUID, s.Host, s.InternalIP = since, "uid-"+strconv.Itoa(index), "10.88.0.1", "10.88.0.2"+strconv.Itoa(index)
		s.Routable = ptr.To(routable)
		return s
	}

	for _, tc := range []struct {
		name string
		sts  *appsv1.StatefulSet
		pods []*corev1.Pod
		want []InstanceStatus
	}{
		{
			name: "no StatefulSet yet",
			want: []InstanceStatus{
				{Index: 0, State: InstanceDown, Ports: []int32{8080}, MemoryQuota: 128 << 20, DiskQuota: 512 << 20, LogRateLimit: 1024},
				{Index: 1, State: InstanceDown, Ports: []int32{8080}, MemoryQuota: 128 << 20, DiskQuota: 512 << 20, LogRateLimit: 1024},
				{Index: 2, State: InstanceDown, Ports: []int32{8080}, MemoryQuota: 128 << 20, DiskQuota: 512 << 20, LogRateLimit: 1024},
			},
		},
		{
			name: "pods by index, quotas from the StatefulSet",
			sts:  sts,
			pods: []*corev1.Pod{
				instancePod(2, crashLoopStatus(4, 1, "Error", started)),
				instancePod(0, runningStatus(true, started, 0)),
				instancePod(5, runningStatus(true, started, 0)),
			},
			want: []InstanceStatus{
				onPod(with(0, InstanceRunning, ""), started, 0, true),
				with(1, InstanceDown, ""),
				onPod(with(2, InstanceCrashed, "exited with status 1"), started, 2, false),
			},
		},
		{
			name: "start error crashes every instance",
			sts: func() *appsv1.StatefulSet {
				s := sts.DeepCopy()
				s.Annotations[AnnotationStartError] = "the docker image runs as root"
				return s
			}(),
			want: []InstanceStatus{
				with(0, InstanceCrashed, "the docker image runs as root"),
				with(1, InstanceCrashed, "the docker image runs as root"),
				with(2, InstanceCrashed, "the docker image runs as root"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ProcessInstances(q, tc.sts, tc.pods)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ProcessInstances() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProcessInstancesDuringRestart checks that a pod of an earlier start
// does not count as a running instance of the app's latest start, so the
// cf CLI waits for the pods a restart creates.
func TestProcessInstancesDuringRestart(t *testing.T) {
	started := instancesNow.Add(-time.Minute)
	withRevision := func(pod *corev1.Pod, revision string) *corev1.Pod {
		pod.Labels[LabelRevision] = revision
		return pod
	}
	pods := []*corev1.Pod{
		withRevision(instancePod(0, runningStatus(true, started, 0)), "4"),
		withRevision(instancePod(1, runningStatus(true, started, 0)), "5"),
		instancePod(2, runningStatus(true, started, 0)),
	}
	q := InstanceQuery{SpaceGUID: runSpace, ProcessGUID: runWeb, Instances: 3}

	for _, tc := range []struct {
		revision string
		want     []string
	}{
		{revision: "5", want: []string{InstanceStarting, InstanceRunning, InstanceStarting}},
		{revision: "4", want: []string{InstanceRunning, InstanceStarting, InstanceStarting}},
		{revision: "", want: []string{InstanceRunning, InstanceRunning, InstanceRunning}},
	} {
		q.Revision = tc.revision
		var got []string
		for _, s := range ProcessInstances(q, nil, pods) {
			got = append(got, s.State)
			if s.State == InstanceStarting && s.InstanceGUID != "" {
				t.Errorf("revision %q: instance %d of an earlier start reports pod %s", tc.revision, s.Index, s.InstanceGUID)
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("revision %q: states mismatch (-want +got):\n%s", tc.revision, diff)
		}
	}
}

func TestProcessInstancesWithoutInstances(t *testing.T) {
	got := ProcessInstances(InstanceQuery{ProcessGUID: runWeb}, nil, []*corev1.Pod{instancePod(0, runningStatus(true, instancesNow, 0))})
	if len(got) != 0 {
		t.Errorf("ProcessInstances() = %v, want none for zero instances", got)
	}
}

func TestUptimeSeconds(t *testing.T) {
	for _, tc := range []struct {
		status InstanceStatus
		want   uint64
	}{
		{InstanceStatus{State: InstanceRunning, Since: instancesNow.Add(-90 * time.Second)}, 90},
		{InstanceStatus{State: InstanceStarting, Since: instancesNow.Add(-1500 * time.Millisecond)}, 1},
		{InstanceStatus{State: InstanceCrashed, Since: instancesNow.Add(-90 * time.Second)}, 0},
		{InstanceStatus{State: InstanceRunning}, 0},
		{InstanceStatus{State: InstanceRunning, Since: instancesNow.Add(time.Second)}, 0},
	} {
		if got := tc.status.UptimeSeconds(instancesNow); got != tc.want {
			t.Errorf("UptimeSeconds(%s since %v) = %d, want %d", tc.status.State, tc.status.Since, got, tc.want)
		}
	}
}

func TestObservedCrashes(t *testing.T) {
	started := instancesNow.Add(-time.Minute)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want int
	}{
		{name: "never crashed", pod: instancePod(0, runningStatus(true, started, 0)), want: 0},
		{name: "running after two restarts", pod: instancePod(0, runningStatus(true, started, 2)), want: 2},
		{name: "waiting for its second restart", pod: instancePod(0, crashLoopStatus(1, 1, "Error", started)), want: 2},
		{
			name: "exited, not restarted yet",
			pod: instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}),
			want: 1,
		},
		{
			name: "being deleted",
			pod: func() *corev1.Pod {
				p := instancePod(0, corev1.ContainerStatus{State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 143}}})
				p.DeletionTimestamp = &metav1.Time{Time: instancesNow}
				return p
			}(),
			want: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := observedCrashes(tc.pod); got != tc.want {
				t.Errorf("observedCrashes() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCrashAuditEvent(t *testing.T) {
	crash := Crash{AppGUID: runApp, AppName: "my-app", SpaceGUID: runSpace, OrgGUID: runOrg, ProcessGUID: runWeb,
		ProcessType: "web", Index: 1, InstanceGUID: "uid-1", CrashCount: 3, ExitStatus: 137, Reason: "OOMKilled",
		At: time.Unix(1700000000, 5)}
	want := store.AuditEvent{
		Type:             "audit.app.process.crash",
		ActorGUID:        runWeb,
		ActorType:        "process",
		ActorName:        "web",
		TargetGUID:       runApp,
		TargetType:       "app",
		TargetName:       "my-app",
		SpaceGUID:        runSpace,
		OrganizationGUID: runOrg,
		Data: map[string]any{
			"instance":         "uid-1",
			"index":            1,
			"reason":           "CRASHED",
			"exit_description": "APP/PROC/WEB: Exited with status 137 (out of memory)",
			"crash_count":      3,
			"crash_timestamp":  int64(1700000000000000005),
		},
	}
	if diff := cmp.Diff(want, crash.AuditEvent()); diff != "" {
		t.Errorf("AuditEvent() mismatch (-want +got):\n%s", diff)
	}
}
