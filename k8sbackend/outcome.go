package k8sbackend

import (
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Exit codes of the CNB lifecycle creator (lifecycle v0.20.8,
// platform/exit.go) that map to Cloud Foundry staging errors.
const (
	exitFailedDetect           = 20 // no buildpack group passed detection
	exitFailedDetectWithErrors = 21 // no group passed and a buildpack errored
	exitFailedBuildWithErrors  = 51 // a buildpack's bin/build failed
)

// Build errors, as "<Cloud Controller error name> - <message>". The cf CLI
// shows a special message for NoAppDetectedError.
const (
	errNoAppDetected    = "NoAppDetectedError - An app was not successfully detected by any available buildpack"
	errBuildpackCompile = "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
)

// stagingError formats Cloud Controller's StagingError.
func stagingError(format string, a ...any) string {
	return "StagingError - Staging error: " + fmt.Sprintf(format, a...)
}

// lifecyclePhases names the phase behind each lifecycle exit code family.
var lifecyclePhases = map[int32]string{
	2: "detect", 3: "analyze", 4: "restore", 5: "build", 6: "export",
}

// imagePullReasons are container waiting reasons that mean the kubelet
// cannot pull an image. They fail a build at once.
var imagePullReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

// OutcomeKind is the stage a staging Job has reached.
type OutcomeKind int

// Staging outcomes.
const (
	// StagingRunning means the Job has not finished; wait for the next event.
	StagingRunning OutcomeKind = iota
	// StagingSucceeded means the droplet image has been exported.
	StagingSucceeded
	// StagingFailed means the build failed, for the reason in Outcome.Error.
	StagingFailed
)

// Outcome is the state of a build's staging, read from its Job and pods.
type Outcome struct {
	Kind OutcomeKind
	// Error is the build error of a failed build.
	Error string
	// StopJob is set when the failure was found while the Job still runs,
	// so the Job must be deleted to stop its pod.
	StopJob bool
	// RecheckAfter is the delay before the next check, for conditions that
	// become failures with time, such as an unschedulable pod.
	RecheckAfter time.Duration
}

// StagingOutcome reads the state of a staging Job and its pods at now.
func StagingOutcome(job *batchv1.Job, pods []*corev1.Pod, now time.Time, cfg Config) Outcome {
	if jobCondition(job, batchv1.JobComplete) != nil {
		return Outcome{Kind: StagingSucceeded}
	}
	failed := jobCondition(job, batchv1.JobFailed)
	if failed == nil {
		failed = jobCondition(job, batchv1.JobFailureTarget)
	}
	pod := newestPod(pods)
	if failed != nil {
		return Outcome{Kind: StagingFailed, Error: jobFailure(failed, pod, cfg)}
	}
	if pod == nil {
		return Outcome{Kind: StagingRunning}
	}
	if msg := imagePullFailure(pod); msg != "" {
		return Outcome{Kind: StagingFailed, Error: msg, StopJob: true}
	}
	return unschedulable(pod, now, cfg)
}

func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// newestPod returns the most recently created pod, or nil. A Job with
// backoffLimit 0 has at most one, unless a pod was deleted and replaced.
func newestPod(pods []*corev1.Pod) *corev1.Pod {
	var newest *corev1.Pod
	for _, p := range pods {
		if newest == nil || newest.CreationTimestamp.Before(&p.CreationTimestamp) {
			newest = p
		}
	}
	return newest
}

// jobFailure explains a failed Job from its condition and its pod.
func jobFailure(cond *batchv1.JobCondition, pod *corev1.Pod, cfg Config) string {
	if cond.Reason == batchv1.JobReasonDeadlineExceeded {
		return fmt.Sprintf("StagingTimeExpired - Staging time expired: staging did not finish within %s", cfg.StagingTimeout)
	}
	if pod != nil {
		if msg := containerFailure(pod); msg != "" {
			return msg
		}
		if pod.Status.Reason == "Evicted" {
			return stagingError("the staging pod was evicted: %s", oneLine(pod.Status.Message))
		}
	}
	detail := cond.Reason
	if cond.Message != "" {
		detail = cond.Message
	}
	return stagingError("the staging Job failed: %s", oneLine(detail))
}

// containerFailure explains the first container of pod that exited with
// an error, or returns "".
func containerFailure(pod *corev1.Pod) string {
	for _, st := range pod.Status.InitContainerStatuses {
		t := st.State.Terminated
		if st.Name != FetchContainer || t == nil || t.ExitCode == 0 {
			continue
		}
		if msg := oneLine(t.Message); msg != "" {
			return stagingError("fetching the package failed (exit code %d): %s", t.ExitCode, msg)
		}
		return stagingError("fetching the package failed (exit code %d)", t.ExitCode)
	}
	for _, st := range pod.Status.ContainerStatuses {
		t := st.State.Terminated
		if st.Name != BuildContainer || t == nil || t.ExitCode == 0 {
			continue
		}
		return creatorFailure(t, pod)
	}
	return ""
}

// creatorFailure maps the creator's exit to a Cloud Foundry staging error.
func creatorFailure(t *corev1.ContainerStateTerminated, pod *corev1.Pod) string {
	switch {
	case t.ExitCode == exitFailedDetect || t.ExitCode == exitFailedDetectWithErrors:
		return errNoAppDetected
	case t.ExitCode == exitFailedBuildWithErrors:
		return errBuildpackCompile
	case t.Reason == "OOMKilled":
		return stagingError("the staging container ran out of memory (limit %s); stage with more memory",
			memoryLimit(pod))
	}
	if phase, ok := lifecyclePhases[t.ExitCode/10]; ok && t.ExitCode >= 20 && t.ExitCode < 70 {
		return stagingError("the CNB lifecycle failed in the %s phase (exit code %d)", phase, t.ExitCode)
	}
	return stagingError("the CNB lifecycle failed (exit code %d)", t.ExitCode)
}

func memoryLimit(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == BuildContainer {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				return q.String()
			}
		}
	}
	return "unknown"
}

// imagePullFailure explains a container of pod whose image cannot be
// pulled, or returns "".
func imagePullFailure(pod *corev1.Pod) string {
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, st := range statuses {
		w := st.State.Waiting
		if w == nil || !slices.Contains(imagePullReasons, w.Reason) {
			continue
		}
		image := st.Image
		if image == "" {
			image = specImage(pod, st.Name)
		}
		if msg := oneLine(w.Message); msg != "" {
			return stagingError("cannot pull image %s for the staging container %q (%s): %s", image, st.Name, w.Reason, msg)
		}
		return stagingError("cannot pull image %s for the staging container %q (%s)", image, st.Name, w.Reason)
	}
	return ""
}

func specImage(pod *corev1.Pod, name string) string {
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		if c.Name == name {
			return c.Image
		}
	}
	return "unknown"
}

// unschedulable fails a pod that has waited for a node longer than the
// configured timeout. Until then it sets RecheckAfter to the time left.
func unschedulable(pod *corev1.Pod, now time.Time, cfg Config) Outcome {
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
			continue
		}
		timeout := cfg.UnschedulableTimeout
		if timeout <= 0 {
			timeout = DefaultUnschedulableTimeout
		}
		waited := now.Sub(c.LastTransitionTime.Time)
		if waited < timeout {
			return Outcome{Kind: StagingRunning, RecheckAfter: timeout - waited}
		}
		return Outcome{Kind: StagingFailed, StopJob: true,
			Error: stagingError("the staging pod could not be scheduled within %s: %s", timeout, oneLine(c.Message))}
	}
	return Outcome{Kind: StagingRunning}
}

// oneLine keeps the last non-empty line of a message, at most 300 bytes,
// because a termination message may be a log tail.
func oneLine(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if len(last) > 300 {
		last = last[:297] + "..."
	}
	return last
}
