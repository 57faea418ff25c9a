package k8sbackend

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// Labels and annotations on the Jobs and pods that run tasks.
const (
	LabelTaskGUID = "cloudfoundry.org/task_guid"
	// AnnotationTaskName is the task's name. It is an annotation because
	// task names need not be valid label values; the log collector reads
	// it to tag the task's lines "APP/TASK/<name>".
	AnnotationTaskName = "cloudfoundry.org/task_name"
	// ComponentTask is the LabelComponent value of task Jobs and their
	// pods. It differs from ComponentApp, so the app reconciler never
	// counts a task pod as an app instance.
	ComponentTask = "task"
)

// TaskProcessType is the process type a task's container reports in
// VCAP_APPLICATION.
const TaskProcessType = "task"

// taskJobTTL is how long a finished task Job and its pod stay, so the
// task's logs and exit status can still be read after it ended.
const taskJobTTL = 24 * time.Hour

// TaskJobName is the name of the Job that runs the task taskGUID.
func TaskJobName(taskGUID string) string { return "task-" + taskGUID }

// TaskSpec is what running a task needs besides its app.
type TaskSpec struct {
	// GUID is "" for a Job template, such as a CronJob's, that runs
	// tasks not yet created: then the Job carries no LabelTaskGUID.
	GUID    string
	Name    string
	Command string
	// MemoryMB and DiskMB are the container's limits in MiB.
	MemoryMB int64
	DiskMB   int64
	// LogRateLimit is in bytes per second, -1 for unlimited.
	LogRateLimit int64
}

// taskLabels are the labels of a task's Job and pod.
func taskLabels(app AppSpec, task TaskSpec) map[string]string {
	labels := ownerLabels(app.Installation, ComponentTask)
	labels[LabelOrgGUID] = app.OrgGUID
	labels[LabelSpaceGUID] = app.SpaceGUID
	labels[LabelAppGUID] = app.GUID
	if task.GUID != "" {
		labels[LabelTaskGUID] = task.GUID
	}
	return labels
}

func taskAnnotations(app AppSpec, task TaskSpec) map[string]string {
	annotations := appAnnotations(app)
	annotations[AnnotationTaskName] = task.Name
	annotations[AnnotationLogRateLimit] = strconv.FormatInt(task.LogRateLimit, 10)
	return annotations
}

// MakeTaskJobSpec returns the spec of a Job that runs task once from
// app.Droplet, with the app's env Secret, and the reason when the task
// cannot start as requested. The pod never restarts and the Job never retries,
// because a task runs at most once. It has no deadline, as Cloud
// Foundry's tasks have none. app.Droplet must not be nil.
func MakeTaskJobSpec(app AppSpec, task TaskSpec, cfg WorkloadConfig) (batchv1.JobSpec, string) {
	proc := ProcessSpec{
		Type:         TaskProcessType,
		Command:      task.Command,
		MemoryMB:     task.MemoryMB,
		DiskMB:       task.DiskMB,
		LogRateLimit: task.LogRateLimit,
		HealthCheck:  HealthCheck{Type: HealthCheckProcess},
		Readiness:    HealthCheck{Type: HealthCheckProcess},
	}
	pod, startErr := makePodSpec(app, proc, cfg)
	if task.Command == "" && startErr == "" {
		startErr = "the task has no command"
	}

	// A task listens on no port and has one instance, so it gets no port,
	// no spread constraints, and instance index 0.
	pod.RestartPolicy = corev1.RestartPolicyNever
	pod.TopologySpreadConstraints = nil
	container := &pod.Containers[0]
	container.Ports = nil
	for i := range container.Env {
		if container.Env[i].Name == "CF_INSTANCE_INDEX" {
			container.Env[i] = corev1.EnvVar{Name: "CF_INSTANCE_INDEX", Value: "0"}
		}
	}

	return batchv1.JobSpec{
		BackoffLimit:            ptr.To[int32](0),
		TTLSecondsAfterFinished: ptr.To(int32(taskJobTTL.Seconds())),
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: taskLabels(app, task), Annotations: taskAnnotations(app, task)},
			Spec:       pod,
		},
	}, startErr
}

// MakeTaskJob returns the Job "task-<guid>" that runs task in the app's
// space namespace, and, when the task cannot start as asked, why. A Job
// with a start error should not be created. See MakeTaskJobSpec.
func MakeTaskJob(app AppSpec, task TaskSpec, cfg WorkloadConfig) (*batchv1.Job, string) {
	spec, startErr := MakeTaskJobSpec(app, task, cfg)
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        TaskJobName(task.GUID),
			Namespace:   SpaceNamespace(app.SpaceGUID),
			Labels:      taskLabels(app, task),
			Annotations: taskAnnotations(app, task),
		},
		Spec: spec,
	}, startErr
}

// Task failure reasons, in Cloud Foundry's words.
const (
	TaskFailureCanceled = "task was cancelled"
)

// TaskOutcome is the state a task's Job and pods show.
type TaskOutcome struct {
	// State is store.TaskStatePending, TaskStateRunning,
	// TaskStateSucceeded or TaskStateFailed.
	State string
	// FailureReason is the failure of a FAILED task.
	FailureReason string
}

// TaskOutcomeOf reads the state of a task from its Job and the Job's
// pods. A Job that completed is SUCCEEDED. A Job that failed is FAILED with
// "Exited with status N" from its pod's app container, or with the Job
// condition's reason when no pod shows an exit status. A Job with a ready
// pod, or a pod whose container started, is RUNNING; any other is PENDING.
func TaskOutcomeOf(job *batchv1.Job, pods []*corev1.Pod) TaskOutcome {
	if jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobSuccessCriteriaMet) != nil {
		return TaskOutcome{State: store.TaskStateSucceeded}
	}
	failed := jobCondition(job, batchv1.JobFailed)
	if failed == nil {
		failed = jobCondition(job, batchv1.JobFailureTarget)
	}
	if failed != nil {
		if t := taskTermination(pods); t != nil {
			return TaskOutcome{State: store.TaskStateFailed, FailureReason: "Exited with status " + strconv.Itoa(int(t.ExitCode))}
		}
		reason := "the task's Job failed"
		if failed.Reason != "" {
			reason += ": " + failed.Reason
		}
		if failed.Message != "" {
			reason += ": " + failed.Message
		}
		return TaskOutcome{State: store.TaskStateFailed, FailureReason: reason}
	}
	if ptr.Deref(job.Status.Ready, 0) > 0 || taskStarted(pods) {
		return TaskOutcome{State: store.TaskStateRunning}
	}
	return TaskOutcome{State: store.TaskStatePending}
}

// taskTermination returns the terminated state of the app container of
// the first pod that has one.
func taskTermination(pods []*corev1.Pod) *corev1.ContainerStateTerminated {
	for _, pod := range pods {
		if cs := appContainerStatus(pod); cs != nil && cs.State.Terminated != nil {
			return cs.State.Terminated
		}
	}
	return nil
}

// taskStarted reports whether the app container of any pod is running or
// has ended.
func taskStarted(pods []*corev1.Pod) bool {
	for _, pod := range pods {
		cs := appContainerStatus(pod)
		if cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// describeTaskStartError is the failure reason of a task whose Job cannot
// be made.
func describeTaskStartError(startErr string) string {
	return fmt.Sprintf("the task cannot start: %s", startErr)
}
