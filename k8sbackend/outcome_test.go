package k8sbackend

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var outcomeNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func jobWith(conditions ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{Status: batchv1.JobStatus{Conditions: conditions}}
}

func condition(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: "Job has reached the specified backoff limit"}
}

func podWith(status corev1.PodStatus) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(outcomeNow.Add(-time.Minute))},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: FetchContainer, Image: "10.88.0.1:5000/ferry/ferry:abc"}},
			Containers: []corev1.Container{{Name: BuildContainer, Image: "10.88.0.1:5000/ferry/builder:test",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
		},
		Status: status,
	}
}

func terminated(name string, code int32, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message}}}
}

func waiting(name, reason, message string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}
}

func TestStagingOutcome(t *testing.T) {
	backoff := condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	fetchOK := terminated(FetchContainer, 0, "Completed", "")
	for _, tc := range []struct {
		name string
		job  *batchv1.Job
		pods []*corev1.Pod
		want Outcome
	}{
		{"no pod yet", jobWith(), nil, Outcome{Kind: StagingRunning}},
		{"running", jobWith(), []*corev1.Pod{podWith(corev1.PodStatus{Phase: corev1.PodRunning})}, Outcome{Kind: StagingRunning}},
		{"complete", jobWith(condition(batchv1.JobComplete, "")), nil, Outcome{Kind: StagingSucceeded}},
		{
			name: "no buildpack detected",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{fetchOK},
				ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 20, "Error", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "NoAppDetectedError - An app was not successfully detected by any available buildpack"},
		},
		{
			name: "detection with errors, seen through the failure target",
			job:  jobWith(condition(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded)),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 21, "Error", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "NoAppDetectedError - An app was not successfully detected by any available buildpack"},
		},
		{
			name: "buildpack build failed",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 51, "Error", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "BuildpackCompileFailed - App staging failed in the buildpack compile phase"},
		},
		{
			name: "export failed",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 62, "Error", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: the CNB lifecycle failed in the export phase (exit code 62)"},
		},
		{
			name: "generic lifecycle failure",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 1, "Error", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: the CNB lifecycle failed (exit code 1)"},
		},
		{
			name: "out of memory",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 137, "OOMKilled", "")}})},
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: the staging container ran out of memory (limit 1Gi); stage with more memory"},
		},
		{
			name: "fetch failed",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{
				terminated(FetchContainer, 1, "Error", "pulling\nferry: stage-fetch: image 10.88.0.1:5000/x: not found\n")}})},
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: fetching the package failed (exit code 1): ferry: stage-fetch: image 10.88.0.1:5000/x: not found"},
		},
		{
			name: "deadline exceeded",
			job:  jobWith(condition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{Phase: corev1.PodRunning})},
			want: Outcome{Kind: StagingFailed, Error: "StagingTimeExpired - Staging time expired: staging did not finish within 15m0s"},
		},
		{
			name: "failed with no pod",
			job:  jobWith(backoff),
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: the staging Job failed: Job has reached the specified backoff limit"},
		},
		{
			name: "evicted",
			job:  jobWith(backoff),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: ephemeral-storage."})},
			want: Outcome{Kind: StagingFailed, Error: "StagingError - Staging error: the staging pod was evicted: The node was low on resource: ephemeral-storage."},
		},
		{
			name: "builder image cannot be pulled",
			job:  jobWith(),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{fetchOK},
				ContainerStatuses: []corev1.ContainerStatus{waiting(BuildContainer, "ImagePullBackOff", `Back-off pulling image "10.88.0.1:5000/ferry/builder:test"`)}})},
			want: Outcome{Kind: StagingFailed, StopJob: true, Error: `StagingError - Staging error: cannot pull image 10.88.0.1:5000/ferry/builder:test for the staging container "build" (ImagePullBackOff): Back-off pulling image "10.88.0.1:5000/ferry/builder:test"`},
		},
		{
			name: "staging image cannot be pulled",
			job:  jobWith(),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{waiting(FetchContainer, "ErrImagePull", "")}})},
			want: Outcome{Kind: StagingFailed, StopJob: true, Error: `StagingError - Staging error: cannot pull image 10.88.0.1:5000/ferry/ferry:abc for the staging container "fetch" (ErrImagePull)`},
		},
		{
			name: "unschedulable for a while",
			job:  jobWith(),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				LastTransitionTime: metav1.NewTime(outcomeNow.Add(-2 * time.Minute)), Message: "0/1 nodes are available: 1 Insufficient memory."}}})},
			want: Outcome{Kind: StagingRunning, RecheckAfter: 3 * time.Minute},
		},
		{
			name: "unschedulable too long",
			job:  jobWith(),
			pods: []*corev1.Pod{podWith(corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
				LastTransitionTime: metav1.NewTime(outcomeNow.Add(-6 * time.Minute)), Message: "0/1 nodes are available: 1 Insufficient memory."}}})},
			want: Outcome{Kind: StagingFailed, StopJob: true, Error: "StagingError - Staging error: the staging pod could not be scheduled within 5m0s: 0/1 nodes are available: 1 Insufficient memory."},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := StagingOutcome(tc.job, tc.pods, outcomeNow, testConfig())
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("StagingOutcome (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStagingOutcomeUsesNewestPod(t *testing.T) {
	old := podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 20, "Error", "")}})
	old.CreationTimestamp = metav1.NewTime(outcomeNow.Add(-time.Hour))
	newer := podWith(corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 51, "Error", "")}})
	got := StagingOutcome(jobWith(condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)),
		[]*corev1.Pod{newer, old}, outcomeNow, testConfig())
	if got.Error != errBuildpackCompile {
		t.Errorf("error = %q, want the newer pod's %q", got.Error, errBuildpackCompile)
	}
}
