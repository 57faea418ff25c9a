package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

const runTask = "7a7a7a7a-0000-4000-8000-0000000000f1"

func runTestTask() TaskSpec {
	return TaskSpec{GUID: runTask, Name: "migrate", Command: "rake db:migrate $HOME", MemoryMB: 512, DiskMB: 1024,
		LogRateLimit: 4096}
}

func TestMakeTaskJob(t *testing.T) {
	job, startErr := MakeTaskJob(runTestApp(), runTestTask(), runTestWorkload())
	if startErr != "" {
		t.Fatalf("start error: %s", startErr)
	}

	wantLabels := map[string]string{
		LabelManagedBy:    ManagedByFerry,
		LabelInstallation: DefaultInstallation,
		LabelComponent:    ComponentTask,
		LabelOrgGUID:      runOrg,
		LabelSpaceGUID:    runSpace,
		LabelAppGUID:      runApp,
		LabelTaskGUID:     runTask,
	}
	wantAnnotations := map[string]string{
		AnnotationOrgName: "acme", AnnotationSpaceName: "dev", AnnotationAppName: "my-app",
		AnnotationTaskName: "migrate", AnnotationLogRateLimit: "4096",
	}
	wantMeta := metav1.ObjectMeta{Name: "task-" + runTask, Namespace: "cf-space-" + runSpace, Labels: wantLabels,
		Annotations: wantAnnotations}
	if diff := cmp.Diff(wantMeta, job.ObjectMeta); diff != "" {
		t.Errorf("Job metadata (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantLabels, job.Spec.Template.Labels); diff != "" {
		t.Errorf("pod labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAnnotations, job.Spec.Template.Annotations); diff != "" {
		t.Errorf("pod annotations (-want +got):\n%s", diff)
	}

	if got := ptr.Deref(job.Spec.BackoffLimit, -1); got != 0 {
		t.Errorf("backoffLimit = %d, want 0", got)
	}
	if job.Spec.ActiveDeadlineSeconds != nil {
		t.Errorf("activeDeadlineSeconds = %d, want none", *job.Spec.ActiveDeadlineSeconds)
	}
	if got := ptr.Deref(job.Spec.TTLSecondsAfterFinished, 0); got != 86400 {
		t.Errorf("ttlSecondsAfterFinished = %d, want 86400", got)
	}

	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %s, want Never", pod.RestartPolicy)
	}
	if len(pod.TopologySpreadConstraints) != 0 {
		t.Errorf("topology spread constraints = %v, want none", pod.TopologySpreadConstraints)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != runImage {
		t.Errorf("image = %s, want %s", c.Image, runImage)
	}
	wantCommand := []string{"/cnb/lifecycle/launcher", "--", "/bin/sh", "-c", "rake db:migrate $$HOME"}
	if diff := cmp.Diff(wantCommand, c.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if c.StartupProbe != nil || c.LivenessProbe != nil || c.ReadinessProbe != nil {
		t.Errorf("probes = %v %v %v, want none", c.StartupProbe, c.LivenessProbe, c.ReadinessProbe)
	}
	if len(c.Ports) != 0 {
		t.Errorf("ports = %v, want none", c.Ports)
	}
	if diff := cmp.Diff([]corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app-" + runApp + "-env"}}}}, c.EnvFrom); diff != "" {
		t.Errorf("envFrom (-want +got):\n%s", diff)
	}
	env := map[string]corev1.EnvVar{}
	for _, v := range c.Env {
		env[v.Name] = v
	}
	if diff := cmp.Diff(corev1.EnvVar{Name: "CF_INSTANCE_INDEX", Value: "0"}, env["CF_INSTANCE_INDEX"]); diff != "" {
		t.Errorf("CF_INSTANCE_INDEX (-want +got):\n%s", diff)
	}
	if got := env["MEMORY_LIMIT"].Value; got != "512m" {
		t.Errorf("MEMORY_LIMIT = %q, want 512m", got)
	}
	if got := c.Resources.Limits.Memory().Value(); got != 512*mebibyte {
		t.Errorf("memory limit = %d, want %d", got, 512*mebibyte)
	}
}

func TestMakeTaskJobTemplateWithoutGUID(t *testing.T) {
	task := runTestTask()
	task.GUID = ""
	spec, startErr := MakeTaskJobSpec(runTestApp(), task, runTestWorkload())
	if startErr != "" {
		t.Fatalf("start error: %s", startErr)
	}
	if _, ok := spec.Template.Labels[LabelTaskGUID]; ok {
		t.Errorf("pod labels %v carry a task GUID, want none", spec.Template.Labels)
	}
}

func TestMakeTaskJobStartErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*AppSpec, *TaskSpec)
		want   string
	}{
		{"no command", func(_ *AppSpec, task *TaskSpec) { task.Command = "" },
			`process type "task" has no start command: the droplet defines the process types web, worker; set a command for the process`},
		{"no memory", func(_ *AppSpec, task *TaskSpec) { task.MemoryMB = 0 }, "memory must be at least 1 MB, not 0 MB"},
		{"root docker image", func(app *AppSpec, _ *TaskSpec) {
			app.Droplet = &DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: "busybox", User: "root",
				ProcessTypes: map[string]string{"web": "sh"}}
		}, `the docker image runs as root (user "root"), and this platform runs apps only as non-root users: set a non-root numeric USER in the image, such as USER 1000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, task := runTestApp(), runTestTask()
			tc.change(&app, &task)
			_, got := MakeTaskJob(app, task, runTestWorkload())
			if got != tc.want {
				t.Errorf("start error = %q, want %q", got, tc.want)
			}
		})
	}
}

func taskTestPod(state corev1.ContainerState) *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: AppContainer, State: state}}}}
}

func TestTaskOutcomeOf(t *testing.T) {
	condition := func(kind batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: kind, Status: corev1.ConditionTrue, Reason: reason}
	}
	exited := func(code int32) *corev1.Pod {
		return taskTestPod(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}})
	}
	for _, tc := range []struct {
		name   string
		status batchv1.JobStatus
		pods   []*corev1.Pod
		want   TaskOutcome
	}{
		{"new Job", batchv1.JobStatus{}, nil, TaskOutcome{State: store.TaskStatePending}},
		{"pod pulling", batchv1.JobStatus{Active: 1},
			[]*corev1.Pod{taskTestPod(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}})},
			TaskOutcome{State: store.TaskStatePending}},
		{"container running", batchv1.JobStatus{Active: 1},
			[]*corev1.Pod{taskTestPod(corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})},
			TaskOutcome{State: store.TaskStateRunning}},
		{"ready pod without pod list", batchv1.JobStatus{Active: 1, Ready: ptr.To[int32](1)}, nil,
			TaskOutcome{State: store.TaskStateRunning}},
		{"complete", batchv1.JobStatus{Conditions: []batchv1.JobCondition{condition(batchv1.JobComplete, "")}},
			[]*corev1.Pod{exited(0)}, TaskOutcome{State: store.TaskStateSucceeded}},
		{"failed with exit status", batchv1.JobStatus{Conditions: []batchv1.JobCondition{condition(batchv1.JobFailed, "BackoffLimitExceeded")}},
			[]*corev1.Pod{exited(3)}, TaskOutcome{State: store.TaskStateFailed, FailureReason: "Exited with status 3"}},
		{"failure target before the pod ended", batchv1.JobStatus{Conditions: []batchv1.JobCondition{condition(batchv1.JobFailureTarget, "BackoffLimitExceeded")}},
			[]*corev1.Pod{exited(137)}, TaskOutcome{State: store.TaskStateFailed, FailureReason: "Exited with status 137"}},
		{"failed without pod", batchv1.JobStatus{Conditions: []batchv1.JobCondition{condition(batchv1.JobFailed, "DeadlineExceeded")}},
			nil, TaskOutcome{State: store.TaskStateFailed, FailureReason: "the task's Job failed: DeadlineExceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := TaskOutcomeOf(&batchv1.Job{Status: tc.status}, tc.pods)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTaskPodLogSource(t *testing.T) {
	job, _ := MakeTaskJob(runTestApp(), runTestTask(), runTestWorkload())
	pod := &corev1.Pod{ObjectMeta: job.Spec.Template.ObjectMeta}
	source, ok := podLogSourceOf(pod, "")
	if !ok {
		t.Fatal("task pod has no log source")
	}
	want := logSource{SourceID: runApp, InstanceID: "0", SourceType: "APP/TASK/migrate", Task: true, RateLimit: 4096}
	if diff := cmp.Diff(want, source); diff != "" {
		t.Errorf("log source (-want +got):\n%s", diff)
	}
	if !logPodSelector("").Matches(labels.Set(pod.Labels)) {
		t.Error("the log collector's selector does not select task pods")
	}
}
