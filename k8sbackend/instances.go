package k8sbackend

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Instance states, as the cf CLI reads them from process stats.
const (
	InstanceRunning  = "RUNNING"
	InstanceStarting = "STARTING"
	InstanceCrashed  = "CRASHED"
	InstanceDown     = "DOWN"
)

// Container waiting reasons the kubelet reports.
const (
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonUnschedulable    = "Unschedulable"
)

// failedStartReasons are the waiting reasons of a container that cannot
// start until something outside it changes, such as its image or config.
var failedStartReasons = map[string]bool{
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
}

// InstanceStatus is the state of one instance of a process, as process
// stats report it.
type InstanceStatus struct {
	Index int
	// State is InstanceRunning, InstanceStarting, InstanceCrashed or
	// InstanceDown.
	State string
	// Since is when the container started, for running and starting
	// instances, or when it last exited, for crashed ones; zero otherwise.
	Since time.Time
	// Details is the reason an instance is not running, for example
	// "OOMKilled", or "".
	Details string
	// Routable is whether the instance passes its readiness check, or nil
	// before its container runs.
	Routable *bool
	// InstanceGUID is the pod's UID, the instance's CF_INSTANCE_GUID.
	InstanceGUID string
	// Host is the node's IP and InternalIP the pod's IP; "" when unknown.
	Host       string
	InternalIP string
	// Ports are the TCP ports the instance listens on, the app's port
	// first.
	Ports []int32
	// MemoryQuota and DiskQuota are the limits in bytes.
	MemoryQuota uint64
	DiskQuota   uint64
	// LogRateLimit is in bytes per second, -1 for unlimited.
	LogRateLimit int64
	// MemoryUsage and DiskUsage are in bytes.
	// TODO: read them from the metrics API once the cluster serves it;
	// until then they are 0.
	MemoryUsage uint64
	DiskUsage   uint64
}

// UptimeSeconds is how long a running or starting instance has run at
// now, and 0 for other instances.
func (s InstanceStatus) UptimeSeconds(now time.Time) uint64 {
	if (s.State != InstanceRunning && s.State != InstanceStarting) || s.Since.IsZero() || now.Before(s.Since) {
		return 0
	}
	return uint64(now.Sub(s.Since) / time.Second)
}

// InstanceQuery names a process and carries its desired state, which
// fills in where the cluster has no object yet.
type InstanceQuery struct {
	SpaceGUID   string
	ProcessGUID string
	// Instances is the desired number of instances; the result has one
	// entry per index below it.
	Instances    int
	MemoryMB     int64
	DiskMB       int64
	LogRateLimit int64
	// Revision is the app's AppRevision. A pod of another revision is
	// being replaced by a restart and is reported STARTING, so the cf CLI
	// waits for the new instance. "" skips this check.
	Revision string
}

// ProcessInstances returns the state of every desired instance of a
// process from its StatefulSet, which may be nil, and its pods. Indexes
// without a pod are DOWN, and indexes whose pod is of another revision
// than q's are STARTING. When the StatefulSet carries a start error, every
// instance is CRASHED with that error as details, so the cf CLI stops
// waiting and shows why.
func ProcessInstances(q InstanceQuery, sts *appsv1.StatefulSet, pods []*corev1.Pod) []InstanceStatus {
	quota := InstanceStatus{
		Ports:        []int32{AppPort},
		MemoryQuota:  uint64(max(q.MemoryMB, 0)) * mebibyte,
		DiskQuota:    uint64(max(q.DiskMB, 0)) * mebibyte,
		LogRateLimit: q.LogRateLimit,
	}
	startErr := ""
	if sts != nil {
		quota = limitsOf(sts, quota)
		startErr = sts.Annotations[AnnotationStartError]
	}
	byIndex := map[int]*corev1.Pod{}
	for _, pod := range pods {
		index, ok := instanceIndex(pod, q.ProcessGUID)
		if !ok {
			continue
		}
		// While a deployment runs two revisions, an index can have a pod
		// of each; the one of q's revision is reported.
		if other := byIndex[index]; other == nil || !currentRevision(other, q.Revision) {
			byIndex[index] = pod
		}
	}

	statuses := make([]InstanceStatus, 0, max(q.Instances, 0))
	for index := range max(q.Instances, 0) {
		status := quota
		status.Index = index
		switch pod := byIndex[index]; {
		case startErr != "":
			status.State, status.Details = InstanceCrashed, startErr
		case pod == nil:
			status.State = InstanceDown
		case q.Revision != "" && pod.Labels[LabelRevision] != labelValue(q.Revision):
			status.State = InstanceStarting
		default:
			status.State, status.Since, status.Details = podState(pod)
			status.InstanceGUID, status.Host, status.InternalIP = string(pod.UID), pod.Status.HostIP, pod.Status.PodIP
			if cs := appContainerStatus(pod); cs != nil {
				status.Routable = ptr.To(cs.Ready)
			}
		}
		statuses = append(statuses, status)
	}
	return statuses
}

// currentRevision reports whether pod runs revision and is not being
// deleted.
func currentRevision(pod *corev1.Pod, revision string) bool {
	return pod.DeletionTimestamp == nil && (revision == "" || pod.Labels[LabelRevision] == labelValue(revision))
}

// limitsOf reads the ports and limits a StatefulSet's app container runs
// with, keeping fallback's values for what it does not set.
func limitsOf(sts *appsv1.StatefulSet, fallback InstanceStatus) InstanceStatus {
	quota := fallback
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name != AppContainer {
			continue
		}
		if len(c.Ports) > 0 {
			quota.Ports = make([]int32, len(c.Ports))
			for i, p := range c.Ports {
				quota.Ports[i] = p.ContainerPort
			}
		}
		if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && m.Value() >= 0 {
			quota.MemoryQuota = uint64(m.Value())
		}
		if d, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok && d.Value() >= 0 {
			quota.DiskQuota = uint64(d.Value())
		}
	}
	if v, err := strconv.ParseInt(sts.Annotations[AnnotationLogRateLimit], 10, 64); err == nil {
		quota.LogRateLimit = v
	}
	return quota
}

// podState maps a pod to an instance state, when it entered it, and
// details.
func podState(pod *corev1.Pod) (string, time.Time, string) {
	if pod.DeletionTimestamp != nil {
		return InstanceDown, time.Time{}, ""
	}
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return InstanceCrashed, time.Time{}, joinReason(pod.Status.Reason, pod.Status.Message)
	}
	cs := appContainerStatus(pod)
	if cs == nil {
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == reasonUnschedulable {
				return InstanceDown, time.Time{}, joinReason("insufficient resources", c.Message)
			}
		}
		return InstanceStarting, time.Time{}, ""
	}

	switch {
	case cs.State.Running != nil:
		state := InstanceStarting
		if cs.Ready {
			state = InstanceRunning
		}
		return state, cs.State.Running.StartedAt.Time, ""
	case cs.State.Terminated != nil:
		return InstanceCrashed, cs.State.Terminated.FinishedAt.Time, exitDetails(cs.State.Terminated)
	case cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCrashLoopBackOff:
		last := cs.LastTerminationState.Terminated
		if last == nil {
			return InstanceCrashed, time.Time{}, reasonCrashLoopBackOff
		}
		return InstanceCrashed, last.FinishedAt.Time, exitDetails(last)
	case cs.State.Waiting != nil && failedStartReasons[cs.State.Waiting.Reason]:
		return InstanceCrashed, time.Time{}, joinReason(cs.State.Waiting.Reason, cs.State.Waiting.Message)
	}
	return InstanceStarting, time.Time{}, ""
}

// exitDetails describes a container exit by the kubelet's reason, such
// as "OOMKilled", or else by its exit status.
func exitDetails(t *corev1.ContainerStateTerminated) string {
	switch t.Reason {
	case "", "Error", "Completed":
		return fmt.Sprintf("exited with status %d", t.ExitCode)
	}
	return t.Reason
}

func joinReason(reason, message string) string {
	switch {
	case message == "":
		return reason
	case reason == "":
		return message
	}
	return reason + ": " + message
}

// InstanceTracker reads the state of app instances from an informer cache
// of Ferry's StatefulSets and app pods, so serving process stats makes no
// request to the Kubernetes API, and restarts single instances. Any
// replica of the API can run one; it needs no leadership.
type InstanceTracker struct {
	client       kubernetes.Interface
	factory      informers.SharedInformerFactory
	statefulSets appslisters.StatefulSetLister
	pods         corelisters.PodLister
	synced       []cache.InformerSynced
	// eventFactory watches Warning events, which explain instances that
	// do not run. Nothing waits for its cache, so until it fills,
	// instances are explained by their pods alone.
	eventFactory informers.SharedInformerFactory
	events       cache.Indexer
}

// NewInstanceTracker returns a tracker whose informers watch only the
// StatefulSets and pods that carry the app labels of installation, and
// the Warning events of the cluster. Call Start before using it.
func NewInstanceTracker(client kubernetes.Interface, installation string) *InstanceTracker {
	selector := appObjectSelector(installation).String()
	factory := informers.NewSharedInformerFactoryWithOptions(client, informerResync,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	stsInformer := factory.Apps().V1().StatefulSets()
	podInformer := factory.Core().V1().Pods()
	eventFactory := newWarningEventFactory(client)
	eventInformer := eventFactory.Core().V1().Events().Informer()
	// AddIndexers fails only on an informer that has started.
	_ = eventInformer.AddIndexers(cache.Indexers{involvedObjectIndex: indexByInvolvedObject})
	return &InstanceTracker{
		client:       client,
		factory:      factory,
		statefulSets: stsInformer.Lister(),
		pods:         podInformer.Lister(),
		synced:       []cache.InformerSynced{stsInformer.Informer().HasSynced, podInformer.Informer().HasSynced},
		eventFactory: eventFactory,
		events:       eventInformer.GetIndexer(),
	}
}

// Start starts the informers, which run until ctx ends, and waits until
// the caches of StatefulSets and pods are filled.
func (t *InstanceTracker) Start(ctx context.Context) error {
	t.factory.Start(ctx.Done())
	t.eventFactory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		t.factory.Shutdown()
		t.eventFactory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), t.synced...) {
		return fmt.Errorf("instance tracker: informer caches did not sync: %w", context.Cause(ctx))
	}
	return nil
}

// ProcessInstances returns the state of every desired instance of the
// process q names. Call it only for started apps: a stopped app has no
// instances. Warning events explain instances that a failed probe killed
// and instances whose pods could not be created.
func (t *InstanceTracker) ProcessInstances(q InstanceQuery) ([]InstanceStatus, error) {
	namespace := SpaceNamespace(q.SpaceGUID)
	sts, err := t.processStatefulSet(namespace, q)
	if err != nil {
		return nil, err
	}
	pods, err := t.pods.Pods(namespace).List(labels.Set{LabelProcessGUID: q.ProcessGUID}.AsSelector())
	if err != nil {
		return nil, err
	}
	statuses := ProcessInstances(q, sts, pods)
	explainInstances(statuses, q, pods, func(kind, name string) []*corev1.Event {
		return eventsAbout(t.events, namespace, kind, name)
	}, time.Now())
	return statuses, nil
}

// processStatefulSet returns the StatefulSet of the process q names, or
// nil. While a deployment moves a process to its other slot, the process
// has two StatefulSets, and the one of q's revision is returned.
func (t *InstanceTracker) processStatefulSet(namespace string, q InstanceQuery) (*appsv1.StatefulSet, error) {
	var found *appsv1.StatefulSet
	for _, slot := range []string{SlotPrimary, SlotSecondary} {
		sts, err := t.statefulSets.StatefulSets(namespace).Get(SlotWorkloadName(q.ProcessGUID, slot))
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found == nil || sts.Spec.Template.Labels[LabelRevision] == labelValue(q.Revision) {
			found = sts
		}
	}
	return found, nil
}

// RestartInstance deletes the pod of one instance; its StatefulSet starts
// a new one with the same index. An instance without a pod is left alone:
// its StatefulSet is already starting it. Callers check that index is
// below the process's instance count.
func (t *InstanceTracker) RestartInstance(ctx context.Context, spaceGUID, processGUID string, index int) error {
	namespace := SpaceNamespace(spaceGUID)
	pod, err := t.pods.Pods(namespace).Get(InstancePodName(processGUID, index))
	if apierrors.IsNotFound(err) {
		// A process that a deployment moved runs in its second slot.
		// TODO: pick the pod of the app's revision when a deployment
		// runs both slots; the first slot's pod is restarted until then.
		pod, err = t.pods.Pods(namespace).Get(SlotWorkloadName(processGUID, SlotSecondary) + "-" + strconv.Itoa(index))
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Labels[LabelProcessGUID] != processGUID {
		return &NotOwnedError{Kind: "Pod", Namespace: namespace, Name: pod.Name}
	}
	uid := pod.UID
	err = t.client.CoreV1().Pods(namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("restart instance %d of process %s: delete pod %s/%s: %w", index, processGUID, namespace, pod.Name, err)
	}
	return nil
}
