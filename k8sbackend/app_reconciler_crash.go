package k8sbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ferrycf/ferry/store"
)

// Crash is a crash of one app instance, with the number of times that
// instance has crashed. Several crashes between two reconciles are
// reported once, with the latest count.
type Crash struct {
	AppGUID     string
	AppName     string
	SpaceGUID   string
	OrgGUID     string
	ProcessGUID string
	ProcessType string
	Index       int
	// InstanceGUID is the pod's UID, the instance's CF_INSTANCE_GUID.
	InstanceGUID string
	CrashCount   int
	ExitStatus   int32
	// Reason is the kubelet's termination reason, such as "OOMKilled",
	// "Error" or "Completed".
	Reason string
	// HealthCheckFailure is Cloud Foundry's crash reason, read from the
	// pod's events, when the kubelet killed the instance because its
	// startup or liveness probe failed. An example is "Instance became
	// unhealthy: Liveness probe failed: ...". It is "" for other crashes.
	HealthCheckFailure string
	At                 time.Time
}

// ExitDescription describes the crash as Cloud Foundry's exit_description
// does: the failed health check, or the exit status, for example
// "APP/PROC/WEB: Exited with status 137 (out of memory)", as Diego's
// executor words it.
func (c Crash) ExitDescription() string {
	if c.HealthCheckFailure != "" && c.Reason != reasonOOMKilled {
		return c.HealthCheckFailure
	}
	text := fmt.Sprintf("APP/PROC/%s: Exited with status %d", strings.ToUpper(c.ProcessType), c.ExitStatus)
	if c.Reason == reasonOOMKilled {
		text += " (out of memory)"
	}
	return text
}

// AuditEvent returns the audit.app.process.crash event of the crash. As in
// Cloud Controller, the actor is the process and the target the app.
func (c Crash) AuditEvent() store.AuditEvent {
	return store.AuditEvent{
		Type:             "audit.app.process.crash",
		ActorGUID:        c.ProcessGUID,
		ActorType:        "process",
		ActorName:        c.ProcessType,
		TargetGUID:       c.AppGUID,
		TargetType:       "app",
		TargetName:       c.AppName,
		SpaceGUID:        c.SpaceGUID,
		OrganizationGUID: c.OrgGUID,
		Data: map[string]any{
			"instance":         c.InstanceGUID,
			"index":            c.Index,
			"reason":           "CRASHED",
			"exit_description": c.ExitDescription(),
			"crash_count":      c.CrashCount,
			"crash_timestamp":  c.At.UnixNano(),
		},
	}
}

// appContainerStatus returns the status of a pod's app container, or nil.
func appContainerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == AppContainer {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// observedCrashes is how often a pod's app container has exited: its
// restart count, plus one while the last exit waits for its restart. Exits
// of a pod being deleted or of a finished pod, for example one evicted
// from its node, are not crashes of the app.
func observedCrashes(pod *corev1.Pod) int {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return 0
	}
	cs := appContainerStatus(pod)
	if cs == nil {
		return 0
	}
	n := int(cs.RestartCount)
	if cs.State.Terminated != nil || (cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff) {
		n++
	}
	return n
}

// lastTermination returns the most recent exit of a container.
func lastTermination(cs *corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	if cs.State.Terminated != nil {
		return cs.State.Terminated
	}
	return cs.LastTerminationState.Terminated
}

// instanceIndex returns the instance index of a process's pod, from the
// StatefulSet's pod index label or else from the pod's name.
func instanceIndex(pod *corev1.Pod, processGUID string) (int, bool) {
	text, ok := pod.Labels[appsv1.PodIndexLabel]
	if !ok {
		text, ok = strings.CutPrefix(pod.Name, ProcessWorkloadName(processGUID)+"-")
	}
	if !ok {
		return 0, false
	}
	index, err := strconv.Atoi(text)
	return index, err == nil && index >= 0
}

// recordCrashes reports each new crash of the app's instances through
// OnCrash, then marks it reported in the pod's AnnotationReportedCrashes,
// so a controller restart or another leader does not report it again.
func (r *AppReconciler) recordCrashes(ctx context.Context, app AppSpec) error {
	pods, err := r.pods.Pods(SpaceNamespace(app.SpaceGUID)).List(labels.Set{LabelAppGUID: app.GUID}.AsSelector())
	if err != nil {
		return err
	}
	var errs []error
	for _, pod := range pods {
		crashes := observedCrashes(pod)
		reported, _ := strconv.Atoi(pod.Annotations[AnnotationReportedCrashes])
		if crashes <= reported {
			continue
		}
		crash := crashOf(app, pod, crashes)
		if r.onCrash != nil {
			if err := r.onCrash(ctx, crash); err != nil {
				errs = append(errs, fmt.Errorf("record crash of pod %s/%s: %w", pod.Namespace, pod.Name, err))
				continue
			}
		}
		if err := r.markCrashesReported(ctx, pod, crashes); err != nil {
			errs = append(errs, err)
			continue
		}
		r.logger.Info("app instance crashed", "app_guid", app.GUID, "process_guid", crash.ProcessGUID,
			"index", crash.Index, "crash_count", crashes, "reason", crash.Reason, "exit_status", crash.ExitStatus)
	}
	return errors.Join(errs...)
}

func crashOf(app AppSpec, pod *corev1.Pod, crashes int) Crash {
	processGUID := pod.Labels[LabelProcessGUID]
	index, _ := instanceIndex(pod, processGUID)
	crash := Crash{
		AppGUID:      app.GUID,
		AppName:      app.Name,
		SpaceGUID:    app.SpaceGUID,
		OrgGUID:      app.OrgGUID,
		ProcessGUID:  processGUID,
		ProcessType:  pod.Annotations[AnnotationProcessType],
		Index:        index,
		InstanceGUID: string(pod.UID),
		CrashCount:   crashes,
		At:           time.Now(),
	}
	if cs := appContainerStatus(pod); cs != nil {
		if t := lastTermination(cs); t != nil {
			crash.ExitStatus = t.ExitCode
			crash.Reason = t.Reason
			if !t.FinishedAt.IsZero() {
				crash.At = t.FinishedAt.Time
			}
		}
	}
	return crash
}

// markCrashesReported records in the pod that crashes are reported. The
// patch carries the pod's UID, so it fails instead of marking a new pod
// that took the same name.
func (r *AppReconciler) markCrashesReported(ctx context.Context, pod *corev1.Pod, crashes int) error {
	patch, _ := json.Marshal(map[string]any{ // Strings always encode.
		"metadata": map[string]any{
			"uid":         string(pod.UID),
			"annotations": map[string]string{AnnotationReportedCrashes: strconv.Itoa(crashes)},
		},
	})
	_, err := r.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("mark crashes of pod %s/%s reported: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
