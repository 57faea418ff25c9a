package k8sbackend

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// Instance IDs of the lines that belong to no app instance. Cloud Foundry
// tags staging lines with the staging task's instance 0 and API lines with
// the index of the Cloud Controller that wrote them, so the cf CLI prints
// them as [STG/0] and [API/0].
const (
	stagingInstanceID = "0"
	apiInstanceID     = "0"
)

// logSource is the destination of one pod's lines.
type logSource struct {
	// SourceID is the app GUID.
	SourceID string
	// InstanceID is the instance index of an app pod, or stagingInstanceID
	// for a staging pod.
	InstanceID string
	// SourceType is the type of the containers' output lines.
	SourceType string
	Staging    bool
	// Task is set for a task pod. Diego runs tasks without a health check.
	Task bool
	// RateLimit is the app instance's log rate limit in bytes per second,
	// or -1 for none.
	RateLimit int64
}

// podLogSourceOf returns where the lines of a staging, app or task pod of
// installation go, and false for any other pod.
func podLogSourceOf(pod *corev1.Pod, installation string) (logSource, bool) {
	appGUID := pod.Labels[LabelAppGUID]
	if !ownedBy(pod.Labels, installation) || appGUID == "" {
		return logSource{}, false
	}
	switch pod.Labels[LabelComponent] {
	case ComponentStaging:
		return logSource{SourceID: appGUID, InstanceID: stagingInstanceID, SourceType: logcache.SourceTypeStaging,
			Staging: true, RateLimit: -1}, true
	case ComponentApp:
		processType := pod.Annotations[AnnotationProcessType]
		if processType == "" {
			processType = pod.Labels[LabelProcessType]
		}
		if processType == "" {
			return logSource{}, false
		}
		source := logSource{SourceID: appGUID, SourceType: logcache.ProcessSourceType(processType), RateLimit: -1}
		if index, ok := instanceIndex(pod, pod.Labels[LabelProcessGUID]); ok {
			source.InstanceID = strconv.Itoa(index)
		}
		if limit, err := strconv.ParseInt(pod.Annotations[AnnotationLogRateLimit], 10, 64); err == nil && limit >= 0 {
			source.RateLimit = limit
		}
		return source, true
	case ComponentTask:
		// A task has one instance, which Cloud Foundry numbers 0.
		source := logSource{SourceID: appGUID, InstanceID: "0",
			SourceType: logcache.TaskSourceType(pod.Annotations[AnnotationTaskName]), Task: true, RateLimit: -1}
		if limit, err := strconv.ParseInt(pod.Annotations[AnnotationLogRateLimit], 10, 64); err == nil && limit >= 0 {
			source.RateLimit = limit
		}
		return source, true
	}
	return logSource{}, false
}

// cellSourceType is the source type of a pod's lifecycle lines: CELL for
// app instances, as Diego's, and STG for staging, where Diego's cell lines
// appear too.
func (s logSource) cellSourceType() string {
	if s.Staging {
		return logcache.SourceTypeStaging
	}
	return logcache.SourceTypeCell
}

// announce puts the lifecycle lines of a pod's change from before to
// after, in the words of Diego's cells. before is nil for a pod that
// appeared after the collector started.
func (c *LogCollector) announce(p *podLogs, before, after *corev1.Pod) {
	if !p.announcedCreate && after.Spec.NodeName != "" && (before == nil || before.Spec.NodeName == "") {
		p.announcedCreate = true
		c.put(p.source, time.Now(), p.source.cellSourceType(),
			fmt.Appendf(nil, "Cell %s creating container for instance %s", after.Spec.NodeName, after.UID))
	}
	if p.source.Staging {
		return
	}
	// Diego's cells print "Container became healthy" when an instance's
	// health check first passes. Tasks have no health check, so their pods
	// get no such line even though they turn ready.
	if !p.source.Task && !p.announcedHealthy && podReady(after) && (before == nil || !podReady(before)) {
		p.announcedHealthy = true
		c.put(p.source, time.Now(), logcache.SourceTypeCell, []byte("Container became healthy"))
	}
	if after.DeletionTimestamp != nil && (before == nil || before.DeletionTimestamp == nil) {
		c.announceStop(p, after)
	}
}

// announceStop puts the line of an app instance being stopped, once.
func (c *LogCollector) announceStop(p *podLogs, pod *corev1.Pod) {
	if p.source.Staging || p.announcedStop {
		return
	}
	p.announcedStop = true
	c.put(p.source, time.Now(), logcache.SourceTypeCell,
		fmt.Appendf(nil, "Cell %s stopping instance %s", pod.Spec.NodeName, pod.UID))
}

func podReady(pod *corev1.Pod) bool {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// putCrashLogLine puts the CELL line of a crash into sink, if there is
// one, such as "APP/PROC/WEB: Exited with status 137 (out of memory)".
func putCrashLogLine(sink logcache.Sink, c Crash) {
	if sink == nil {
		return
	}
	sink.Put(logcache.Envelope{
		Timestamp:  c.At.UnixNano(),
		SourceID:   c.AppGUID,
		InstanceID: strconv.Itoa(c.Index),
		SourceType: logcache.SourceTypeCell,
		Stream:     logcache.StreamOut,
		Payload:    []byte(c.ExitDescription()),
	})
}

// stagingLogGrace is how long after its Job finished a build stays STAGING
// while the collector runs. The cf CLI prints a staging line only once it
// is 2 s old and stops tailing when it reads the build's final state, so
// without the wait the last lines, such as a buildpack's error, never
// show. Job condition times have second precision, and the extra second
// covers that.
const stagingLogGrace = 4 * time.Second

// stagingLogsPending returns how long a build whose Job finished with
// outcome waits for its last log lines, or 0.
func (r *BuildReconciler) stagingLogsPending(job *batchv1.Job, outcome Outcome) time.Duration {
	if r.logs == nil || outcome.Kind == StagingRunning || outcome.StopJob {
		return 0
	}
	finished := jobCondition(job, batchv1.JobComplete)
	if finished == nil {
		finished = jobCondition(job, batchv1.JobFailed)
	}
	if finished == nil {
		finished = jobCondition(job, batchv1.JobFailureTarget)
	}
	if finished == nil {
		return 0
	}
	return max(finished.LastTransitionTime.Add(stagingLogGrace).Sub(r.now()), 0)
}

// putStagingLine puts a line of Ferry's own about a build into its app's
// staging log, when the controller collects logs.
func (r *BuildReconciler) putStagingLine(build store.Build, text string) {
	if r.logs == nil {
		return
	}
	r.logs.Put(logcache.Envelope{
		Timestamp:  r.now().UnixNano(),
		SourceID:   build.AppGUID,
		InstanceID: stagingInstanceID,
		SourceType: logcache.SourceTypeStaging,
		Stream:     logcache.StreamOut,
		Payload:    []byte(text),
	})
}
