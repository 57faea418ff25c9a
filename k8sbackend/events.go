package k8sbackend

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// Words the kubelet and the StatefulSet controller write (Kubernetes
// v1.37): event reasons, the prefixes of failed probe messages, and the
// termination reason of a container the kernel killed for lack of memory.
const (
	reasonUnhealthy    = "Unhealthy"
	reasonFailedCreate = "FailedCreate"
	reasonOOMKilled    = "OOMKilled"
	livenessFailed     = "Liveness probe failed"
	startupFailed      = "Startup probe failed"
)

// Involved object kinds of the events Ferry keeps.
const (
	kindPod         = "Pod"
	kindStatefulSet = "StatefulSet"
	kindJob         = "Job"
)

// involvedObjectIndex indexes event informers by the object an event is
// about, as "namespace/kind/name".
const involvedObjectIndex = "involvedObject"

// failedCreateWindow is how long after a StatefulSet last failed to create
// an instance's pod process stats still give that failure as the reason the
// instance is DOWN. The StatefulSet controller retries with a back-off of
// up to about 17 minutes (client-go's default controller rate limiter,
// at most 1000 s), so one failure explains the gap until the next retry.
const failedCreateWindow = 20 * time.Minute

// probeSlack allows for event and container timestamps, which the API
// server keeps to the second.
const probeSlack = time.Second

// failedCreatePod finds the pod name in the StatefulSet controller's
// messages, such as "create Pod proc-x-0 in StatefulSet proc-x failed
// error: ...".
var failedCreatePod = regexp.MustCompile(`\bPod (\S+) in StatefulSet \S+`)

func involvedObjectKey(namespace, kind, name string) string {
	return namespace + "/" + kind + "/" + name
}

// indexByInvolvedObject is the cache.IndexFunc of involvedObjectIndex.
func indexByInvolvedObject(obj any) ([]string, error) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return nil, nil
	}
	namespace := ev.InvolvedObject.Namespace
	if namespace == "" {
		namespace = ev.Namespace
	}
	return []string{involvedObjectKey(namespace, ev.InvolvedObject.Kind, ev.InvolvedObject.Name)}, nil
}

// eventsAbout returns the events in indexer about one object.
func eventsAbout(indexer cache.Indexer, namespace, kind, name string) []*corev1.Event {
	objs, err := indexer.ByIndex(involvedObjectIndex, involvedObjectKey(namespace, kind, name))
	if err != nil { // Only an unknown index name fails.
		return nil
	}
	events := make([]*corev1.Event, 0, len(objs))
	for _, obj := range objs {
		if ev, ok := obj.(*corev1.Event); ok {
			events = append(events, ev)
		}
	}
	return events
}

// eventSeen returns when an event was first and last seen and how often
// it occurred. The kubelet fills the core/v1 count and timestamps. The
// scheduler writes through the events.k8s.io API, whose events carry an
// event time and, when repeated, a series.
func eventSeen(ev *corev1.Event) (first, last time.Time, count int) {
	first, last, count = ev.FirstTimestamp.Time, ev.LastTimestamp.Time, int(ev.Count)
	if first.IsZero() {
		first = ev.EventTime.Time
	}
	if ev.Series != nil {
		count = max(count, int(ev.Series.Count))
		if observed := ev.Series.LastObservedTime.Time; observed.After(last) {
			last = observed
		}
	}
	if first.IsZero() {
		first = ev.CreationTimestamp.Time
	}
	if last.Before(first) {
		last = first
	}
	return first, last, max(count, 1)
}

// eventSubject is the Ferry object an event is about.
type eventSubject struct {
	AppGUID     string
	ProcessGUID string
	// BuildGUID is set for the staging Job and its pod.
	BuildGUID string
	// Index is the instance index, or -1 when the event concerns no single
	// instance.
	Index int
}

// staging reports whether the event concerns a build.
func (s eventSubject) staging() bool { return s.BuildGUID != "" }

// subjectOf returns who an event about an object with objectLabels is
// about: the app, and the process, instance or build. podName is the pod
// the event names, "" if none. It returns false for objects without an
// app GUID label.
func subjectOf(objectLabels map[string]string, podName string) (eventSubject, bool) {
	s := eventSubject{
		AppGUID:     objectLabels[LabelAppGUID],
		ProcessGUID: objectLabels[LabelProcessGUID],
		BuildGUID:   objectLabels[LabelBuildGUID],
		Index:       -1,
	}
	if s.AppGUID == "" {
		return eventSubject{}, false
	}
	if s.ProcessGUID != "" && podName != "" {
		if text, ok := strings.CutPrefix(podName, ProcessWorkloadName(s.ProcessGUID)+"-"); ok {
			if index, err := strconv.Atoi(text); err == nil && index >= 0 {
				s.Index = index
			}
		}
	}
	return s, true
}

// podNamedIn returns the pod a StatefulSet event's message names, or "".
func podNamedIn(message string) string {
	if m := failedCreatePod.FindStringSubmatch(message); m != nil {
		return m[1]
	}
	return ""
}

// kubeEventRecord is the store row of an event about subject.
func kubeEventRecord(ev *corev1.Event, s eventSubject) store.KubeEvent {
	first, last, count := eventSeen(ev)
	rec := store.KubeEvent{
		UID: string(ev.UID), AppGUID: s.AppGUID, ProcessGUID: s.ProcessGUID, BuildGUID: s.BuildGUID,
		Type: ev.Type, Reason: ev.Reason, Message: ev.Message, Count: count, FirstSeen: first, LastSeen: last,
		Namespace: ev.Namespace, InvolvedKind: ev.InvolvedObject.Kind, InvolvedName: ev.InvolvedObject.Name,
		InvolvedUID: string(ev.InvolvedObject.UID),
	}
	if s.Index >= 0 {
		index := s.Index
		rec.InstanceIndex = &index
	}
	return rec
}

// eventLine returns the log line of a Warning event about subject,
// stamped at. Events about app instances become CELL lines, as Cloud
// Foundry's cells report why an instance cannot run, and events about
// staging STG lines, so cf push shows why staging waits. The line goes to
// stderr.
func eventLine(ev *corev1.Event, s eventSubject, at time.Time) logcache.Envelope {
	sourceType, instance := logcache.SourceTypeCell, ""
	if s.Index >= 0 {
		instance = strconv.Itoa(s.Index)
	}
	if s.staging() {
		sourceType, instance = logcache.SourceTypeStaging, stagingInstanceID
	}
	return logcache.Envelope{
		Timestamp:  at.UnixNano(),
		SourceID:   s.AppGUID,
		InstanceID: instance,
		SourceType: sourceType,
		Stream:     logcache.StreamErr,
		Payload:    []byte(ev.Reason + ": " + ev.Message),
	}
}

// probeKill returns Cloud Foundry's crash reason when the kubelet killed
// the app container run that ended with t because its startup or liveness
// probe failed, or "" otherwise. events are the pod's events. A probe
// killed the run when the run ended by a signal (exit status 137 or 143,
// and no OOM kill) and a failed probe of the app container was last seen
// while it ran.
func probeKill(pod *corev1.Pod, t *corev1.ContainerStateTerminated, events []*corev1.Event) string {
	if pod == nil || t == nil || t.Reason == reasonOOMKilled || (t.ExitCode != 137 && t.ExitCode != 143) {
		return ""
	}
	var latest *corev1.Event
	var latestSeen time.Time
	for _, ev := range events {
		if ev.Reason != reasonUnhealthy || string(ev.InvolvedObject.UID) != string(pod.UID) ||
			!aboutAppContainer(ev) {
			continue
		}
		if !strings.HasPrefix(ev.Message, livenessFailed) && !strings.HasPrefix(ev.Message, startupFailed) {
			continue
		}
		_, seen, _ := eventSeen(ev)
		if seen.Before(t.StartedAt.Add(-probeSlack)) || seen.After(t.FinishedAt.Add(probeSlack)) {
			continue
		}
		if latest == nil || seen.After(latestSeen) {
			latest, latestSeen = ev, seen
		}
	}
	switch {
	case latest == nil:
		return ""
	case strings.HasPrefix(latest.Message, startupFailed):
		if window := startupWindow(pod); window > 0 {
			return "Instance never healthy after " + window.String() + ": " + latest.Message
		}
		return "Instance never healthy: " + latest.Message
	}
	return "Instance became unhealthy: " + latest.Message
}

// aboutAppContainer reports whether an event about a pod concerns its app
// container, or names no container.
func aboutAppContainer(ev *corev1.Event) bool {
	path := ev.InvolvedObject.FieldPath
	return path == "" || path == "spec.containers{"+AppContainer+"}"
}

// startupWindow returns how long the app container's startup probe lets
// an instance start, or 0 without one.
func startupWindow(pod *corev1.Pod) time.Duration {
	for _, c := range pod.Spec.Containers {
		if c.Name != AppContainer || c.StartupProbe == nil {
			continue
		}
		p := c.StartupProbe
		period := max(p.PeriodSeconds, 1)
		threshold := max(p.FailureThreshold, 1)
		return time.Duration(p.InitialDelaySeconds+period*threshold) * time.Second
	}
	return 0
}

// failedCreate returns why the StatefulSet controller last failed to
// create podName, from the set's events, when that was less than
// failedCreateWindow before now, or "".
func failedCreate(podName string, setEvents []*corev1.Event, now time.Time) string {
	var latest *corev1.Event
	var latestSeen time.Time
	for _, ev := range setEvents {
		if ev.Reason != reasonFailedCreate || podNamedIn(ev.Message) != podName {
			continue
		}
		_, seen, _ := eventSeen(ev)
		if now.Sub(seen) > failedCreateWindow {
			continue
		}
		if latest == nil || seen.After(latestSeen) {
			latest, latestSeen = ev, seen
		}
	}
	if latest == nil {
		return ""
	}
	// The message repeats the pod and StatefulSet names before the error
	// the API server returned, which is the part that explains.
	if _, cause, ok := strings.Cut(latest.Message, " failed error: "); ok {
		return "instance could not be created: " + cause
	}
	return "instance could not be created: " + latest.Message
}

// explainInstances replaces the details of instances whose pod status
// alone does not show why they are not running. These are CRASHED
// instances that a failed startup or liveness probe killed, and DOWN
// instances whose pod the StatefulSet controller could not create.
// eventsAbout returns the events about one object of the process's
// namespace.
func explainInstances(statuses []InstanceStatus, q InstanceQuery, pods []*corev1.Pod,
	eventsAbout func(kind, name string) []*corev1.Event, now time.Time) {
	byUID := make(map[string]*corev1.Pod, len(pods))
	for _, pod := range pods {
		byUID[string(pod.UID)] = pod
	}
	var setEvents []*corev1.Event
	setEventsRead := false
	for i := range statuses {
		s := &statuses[i]
		switch {
		case s.State == InstanceCrashed && s.InstanceGUID != "":
			pod := byUID[s.InstanceGUID]
			cs := appContainerStatusOrNil(pod)
			if cs == nil {
				continue
			}
			if reason := probeKill(pod, lastTermination(cs), eventsAbout(kindPod, pod.Name)); reason != "" {
				s.Details = reason
			}
		case s.State == InstanceDown && s.InstanceGUID == "" && s.Details == "":
			if !setEventsRead {
				setEvents, setEventsRead = eventsAbout(kindStatefulSet, ProcessWorkloadName(q.ProcessGUID)), true
			}
			s.Details = failedCreate(InstancePodName(q.ProcessGUID, s.Index), setEvents, now)
		}
	}
}

// appContainerStatusOrNil is appContainerStatus for a pod that may be nil.
func appContainerStatusOrNil(pod *corev1.Pod) *corev1.ContainerStatus {
	if pod == nil {
		return nil
	}
	return appContainerStatus(pod)
}
