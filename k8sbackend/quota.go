package k8sbackend

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// Names of the quota objects in every space namespace. Ferry owns only the
// objects with these names and its labels, so a cluster operator's own
// ResourceQuotas and LimitRanges in the namespace stay as they are and
// apply on top of Ferry's.
const (
	SpaceResourceQuotaName = "ferry-space-quota"
	SpaceLimitRangeName    = "ferry-space-limits"
)

// DefaultStagingMemoryMB is the staging memory the LimitRange allows when
// the reconciler gets no staging memory_mb setting. It is that setting's
// default.
const DefaultStagingMemoryMB = 1024

// SpaceSpec is a space with the limits of the quotas that apply to it.
type SpaceSpec struct {
	GUID    string
	OrgGUID string
	// SpaceQuota is the limits of the space's quota, all nil for a space
	// without one, and OrgQuota the limits of its organization's quota.
	// Nil and negative limits are unlimited.
	SpaceQuota store.QuotaLimits
	OrgQuota   store.QuotaLimits
}

// SpaceUsage is the pod count and memory that the long-running pods of a
// space namespace claim, now or once their StatefulSets have converged.
type SpaceUsage struct {
	Pods int64
	// MemoryBytes is the sum of the pods' memory limits.
	MemoryBytes int64
	// MaxContainerMemoryBytes is the largest memory limit of one container.
	MaxContainerMemoryBytes int64
}

// MakeSpaceResourceQuota returns the ResourceQuota of a space namespace.
// It caps the memory of the namespace's long-running pods at the stricter
// of the space's and the organization's total memory, and their number at
// the stricter app instance limit. Unlimited limits are left out. An
// organization's quota spans several namespaces, so the API enforces its
// totals, and here they only cap each namespace on its own.
//
// The quota counts only pods without an activeDeadlineSeconds, the
// NotTerminating scope, so staging pods, which must have one, do not take
// the room of app instances. The API checks staging memory when it admits
// a build and never counts staging as usage.
//
// Each limit is raised to what running claims, because the API lets
// existing instances restart under a quota that was lowered below their
// usage, and the quota must not stop the replacement pods. The quota then
// only stops growth beyond what already runs.
func MakeSpaceResourceQuota(space SpaceSpec, running SpaceUsage, installation string) *corev1.ResourceQuota {
	hard := corev1.ResourceList{}
	if mb, limited := strictest(space.SpaceQuota.TotalMemoryInMB, space.OrgQuota.TotalMemoryInMB); limited {
		memory := *resource.NewQuantity(max(mb*mebibyte, running.MemoryBytes), resource.BinarySI)
		hard[corev1.ResourceLimitsMemory] = memory
		hard[corev1.ResourceRequestsMemory] = memory
	}
	if n, limited := strictest(space.SpaceQuota.TotalInstances, space.OrgQuota.TotalInstances); limited {
		hard[corev1.ResourcePods] = *resource.NewQuantity(max(n, running.Pods), resource.DecimalSI)
	}
	if len(hard) == 0 {
		// The API server stores an empty list as none.
		hard = nil
	}

	quota := &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: spaceObjectMeta(SpaceResourceQuotaName, space, installation),
		Spec: corev1.ResourceQuotaSpec{
			Hard:   hard,
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating},
		},
	}
	quota.Annotations[AnnotationSpecHash] = specHash(quota.Labels, quota.Spec)
	return quota
}

// MakeSpaceLimitRange returns the LimitRange of a space namespace. It
// gives containers that set no memory the default app memory, 1024 MB as
// in Cloud Controller, lowered to the instance memory limit when that is
// smaller, with the request equal to the limit as Ferry's app containers
// have it. It sets no CPU default, because staging containers set no CPU
// and a default would throttle them.
//
// With an instance memory limit, the stricter of the space's and the
// organization's, it caps each container's memory at that limit. The cap
// is raised to stagingMemoryMB, the memory staging containers get at
// least, because staging runs in the same namespace and the API checks
// staging memory against total memory only. It is raised to running's
// largest container too, so instances that the API lets restart under a
// lowered limit are not rejected.
func MakeSpaceLimitRange(space SpaceSpec, running SpaceUsage, installation string, stagingMemoryMB int64) *corev1.LimitRange {
	defaultMB := int64(store.DefaultProcessMemoryMB)
	item := corev1.LimitRangeItem{Type: corev1.LimitTypeContainer}
	if mb, limited := strictest(space.SpaceQuota.PerProcessMemoryInMB, space.OrgQuota.PerProcessMemoryInMB); limited {
		// A limit of 0 MB lets no instance run. The default stays at
		// 1 MB then, because a default of 0 is no memory at all, and the
		// API server rejects a maximum below the default.
		defaultMB = max(min(defaultMB, mb), 1)
		maxBytes := max(mb*mebibyte, stagingMemoryMB*mebibyte, running.MaxContainerMemoryBytes, defaultMB*mebibyte)
		item.Max = corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(maxBytes, resource.BinarySI)}
	}
	defaultMemory := *resource.NewQuantity(defaultMB*mebibyte, resource.BinarySI)
	item.Default = corev1.ResourceList{corev1.ResourceMemory: defaultMemory}
	item.DefaultRequest = corev1.ResourceList{corev1.ResourceMemory: defaultMemory}

	limits := &corev1.LimitRange{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "LimitRange"},
		ObjectMeta: spaceObjectMeta(SpaceLimitRangeName, space, installation),
		Spec:       corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{item}},
	}
	limits.Annotations[AnnotationSpecHash] = specHash(limits.Labels, limits.Spec)
	return limits
}

// spaceObjectMeta is the metadata of an object that belongs to a space
// namespace rather than to one of its apps.
func spaceObjectMeta(name string, space SpaceSpec, installation string) metav1.ObjectMeta {
	labels := ownerLabels(installation, ComponentSpace)
	labels[LabelOrgGUID] = space.OrgGUID
	labels[LabelSpaceGUID] = space.GUID
	return metav1.ObjectMeta{
		Name:        name,
		Namespace:   SpaceNamespace(space.GUID),
		Labels:      labels,
		Annotations: map[string]string{},
	}
}

// strictest returns the smallest of the limits that are set, and whether
// any is. Nil and negative limits are unlimited, as in Cloud Controller,
// where -1 means unlimited.
func strictest(limits ...*int64) (int64, bool) {
	var lowest int64
	found := false
	for _, l := range limits {
		if l == nil || *l < 0 {
			continue
		}
		if !found || *l < lowest {
			lowest, found = *l, true
		}
	}
	return lowest, found
}

// usageOf returns what the pods of sets claim once the StatefulSets have
// converged, raised to the usage that a ResourceQuota reports in used,
// which also counts the old pods of a rollout.
func usageOf(sets []*appsv1.StatefulSet, used corev1.ResourceList) SpaceUsage {
	var u SpaceUsage
	for _, s := range sets {
		replicas := int64(ptr.Deref(s.Spec.Replicas, 1))
		if replicas <= 0 {
			continue
		}
		podMemory, largest := podMemory(s.Spec.Template.Spec)
		u.Pods += replicas
		u.MemoryBytes += replicas * podMemory
		u.MaxContainerMemoryBytes = max(u.MaxContainerMemoryBytes, largest)
	}
	if q, found := used[corev1.ResourcePods]; found {
		u.Pods = max(u.Pods, q.Value())
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceLimitsMemory, corev1.ResourceRequestsMemory} {
		if q, found := used[name]; found {
			u.MemoryBytes = max(u.MemoryBytes, q.Value())
		}
	}
	return u
}

// podMemory returns the memory limit of a pod as a ResourceQuota counts
// it, the sum over its containers or its largest init container, and the
// largest memory limit of one container.
func podMemory(pod corev1.PodSpec) (total, largest int64) {
	var sum, largestInit int64
	for _, c := range pod.Containers {
		memory := c.Resources.Limits.Memory().Value()
		sum += memory
		largest = max(largest, memory)
	}
	for _, c := range pod.InitContainers {
		memory := c.Resources.Limits.Memory().Value()
		largestInit = max(largestInit, memory)
		largest = max(largest, memory)
	}
	return max(sum, largestInit), largest
}
