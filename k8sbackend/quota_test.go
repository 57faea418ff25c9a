package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

const (
	quotaSpace = "5a5a5a5a-0000-4000-8000-000000000001"
	quotaOrg   = "0a0a0a0a-0000-4000-8000-000000000001"
)

func quotaTestSpace(space, org store.QuotaLimits) SpaceSpec {
	return SpaceSpec{GUID: quotaSpace, OrgGUID: quotaOrg, SpaceQuota: space, OrgQuota: org}
}

func mi(n int64) int64 { return n * mebibyte }

func TestMakeSpaceResourceQuota(t *testing.T) {
	memory := func(q string) corev1.ResourceList {
		return corev1.ResourceList{
			corev1.ResourceLimitsMemory:   resource.MustParse(q),
			corev1.ResourceRequestsMemory: resource.MustParse(q),
		}
	}
	for _, tc := range []struct {
		name    string
		space   store.QuotaLimits
		org     store.QuotaLimits
		running SpaceUsage
		want    corev1.ResourceList
	}{
		{name: "unlimited"},
		{
			name:  "space memory stricter",
			space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](2048)},
			org:   store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](4096)},
			want:  memory("2Gi"),
		},
		{
			name:  "organization memory stricter",
			space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](2048)},
			org:   store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1024)},
			want:  memory("1Gi"),
		},
		{
			name:  "-1 is unlimited",
			space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](-1), TotalInstances: ptr.To[int64](-1)},
			org:   store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](512)},
			want:  memory("512Mi"),
		},
		{
			name:  "instances",
			space: store.QuotaLimits{TotalInstances: ptr.To[int64](5)},
			org:   store.QuotaLimits{TotalInstances: ptr.To[int64](10)},
			want:  corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5")},
		},
		{
			name:  "zero allows nothing",
			space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](0), TotalInstances: ptr.To[int64](0)},
			want: corev1.ResourceList{
				corev1.ResourceLimitsMemory:   resource.MustParse("0"),
				corev1.ResourceRequestsMemory: resource.MustParse("0"),
				corev1.ResourcePods:           resource.MustParse("0"),
			},
		},
		{
			name:    "running within the limits",
			space:   store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](4096), TotalInstances: ptr.To[int64](8)},
			running: SpaceUsage{Pods: 3, MemoryBytes: mi(1536)},
			want: corev1.ResourceList{
				corev1.ResourceLimitsMemory:   resource.MustParse("4Gi"),
				corev1.ResourceRequestsMemory: resource.MustParse("4Gi"),
				corev1.ResourcePods:           resource.MustParse("8"),
			},
		},
		{
			name:    "lowered below running",
			org:     store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1024), TotalInstances: ptr.To[int64](2)},
			running: SpaceUsage{Pods: 6, MemoryBytes: mi(3072)},
			want: corev1.ResourceList{
				corev1.ResourceLimitsMemory:   resource.MustParse("3Gi"),
				corev1.ResourceRequestsMemory: resource.MustParse("3Gi"),
				corev1.ResourcePods:           resource.MustParse("6"),
			},
		},
		{
			name:    "running without limits",
			running: SpaceUsage{Pods: 6, MemoryBytes: mi(3072)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MakeSpaceResourceQuota(quotaTestSpace(tc.space, tc.org), tc.running, "")
			want := corev1.ResourceQuotaSpec{Hard: tc.want, Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating}}
			if diff := cmp.Diff(want, got.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeSpaceQuotaObjectsMetadata(t *testing.T) {
	space := quotaTestSpace(store.QuotaLimits{}, store.QuotaLimits{})
	wantLabels := map[string]string{
		LabelManagedBy:    ManagedByFerry,
		LabelInstallation: "blue",
		LabelComponent:    ComponentSpace,
		LabelOrgGUID:      quotaOrg,
		LabelSpaceGUID:    quotaSpace,
	}
	quota := MakeSpaceResourceQuota(space, SpaceUsage{}, "blue")
	limits := MakeSpaceLimitRange(space, SpaceUsage{}, "blue", 1024)
	for _, tc := range []struct {
		kind, name, namespace, wantName string
		labels, annotations             map[string]string
	}{
		{"ResourceQuota", quota.Name, quota.Namespace, SpaceResourceQuotaName, quota.Labels, quota.Annotations},
		{"LimitRange", limits.Name, limits.Namespace, SpaceLimitRangeName, limits.Labels, limits.Annotations},
	} {
		if tc.name != tc.wantName || tc.namespace != "cf-space-"+quotaSpace {
			t.Errorf("%s is %s/%s, want cf-space-%s/%s", tc.kind, tc.namespace, tc.name, quotaSpace, tc.wantName)
		}
		if diff := cmp.Diff(wantLabels, tc.labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", tc.kind, diff)
		}
		if tc.annotations[AnnotationSpecHash] == "" {
			t.Errorf("%s has no %s annotation", tc.kind, AnnotationSpecHash)
		}
	}

	limited := quotaTestSpace(store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1024), PerProcessMemoryInMB: ptr.To[int64](256)},
		store.QuotaLimits{})
	if MakeSpaceResourceQuota(limited, SpaceUsage{}, "blue").Annotations[AnnotationSpecHash] == quota.Annotations[AnnotationSpecHash] {
		t.Error("the ResourceQuota's spec hash did not change with its limits")
	}
	if MakeSpaceLimitRange(limited, SpaceUsage{}, "blue", 1024).Annotations[AnnotationSpecHash] == limits.Annotations[AnnotationSpecHash] {
		t.Error("the LimitRange's spec hash did not change with its limits")
	}
}

func TestMakeSpaceLimitRange(t *testing.T) {
	memory := func(q string) corev1.ResourceList {
		return corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(q)}
	}
	item := func(max, defaults string) corev1.LimitRangeSpec {
		i := corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Default: memory(defaults), DefaultRequest: memory(defaults)}
		if max != "" {
			i.Max = memory(max)
		}
		return corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{i}}
	}
	for _, tc := range []struct {
		name      string
		space     store.QuotaLimits
		org       store.QuotaLimits
		running   SpaceUsage
		stagingMB int64
		want      corev1.LimitRangeSpec
	}{
		{name: "unlimited", stagingMB: 1024, want: item("", "1Gi")},
		{
			name:      "space instance limit stricter",
			space:     store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](2048)},
			org:       store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](4096)},
			stagingMB: 1024,
			want:      item("2Gi", "1Gi"),
		},
		{
			name:      "organization instance limit stricter",
			space:     store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](4096)},
			org:       store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](1536)},
			stagingMB: 1024,
			want:      item("1536Mi", "1Gi"),
		},
		{
			name:      "limit below staging memory",
			org:       store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](512)},
			stagingMB: 1024,
			want:      item("1Gi", "512Mi"),
		},
		{
			name:      "lowered below a running container",
			space:     store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](512)},
			running:   SpaceUsage{MaxContainerMemoryBytes: mi(3072)},
			stagingMB: 1024,
			want:      item("3Gi", "512Mi"),
		},
		{
			name:      "zero instance memory",
			space:     store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](0)},
			stagingMB: 2048,
			want:      item("2Gi", "1Mi"),
		},
		{
			name:  "zero instance memory without staging memory",
			space: store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](0)},
			want:  item("1Mi", "1Mi"),
		},
		{
			name:      "total memory does not set the default",
			space:     store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](256), PerProcessMemoryInMB: ptr.To[int64](-1)},
			stagingMB: 1024,
			want:      item("", "1Gi"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MakeSpaceLimitRange(quotaTestSpace(tc.space, tc.org), tc.running, "", tc.stagingMB)
			if diff := cmp.Diff(tc.want, got.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageOf(t *testing.T) {
	set := func(replicas *int32, containers, initContainers []int64) *appsv1.StatefulSet {
		toContainers := func(mbs []int64) []corev1.Container {
			var out []corev1.Container
			for _, mb := range mbs {
				out = append(out, corev1.Container{Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(mi(mb), resource.BinarySI)}}})
			}
			return out
		}
		s := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: replicas}}
		s.Spec.Template.Spec.Containers = toContainers(containers)
		s.Spec.Template.Spec.InitContainers = toContainers(initContainers)
		return s
	}
	for _, tc := range []struct {
		name string
		sets []*appsv1.StatefulSet
		used corev1.ResourceList
		want SpaceUsage
	}{
		{name: "nothing"},
		{
			name: "replicas times pod memory",
			sets: []*appsv1.StatefulSet{
				set(ptr.To[int32](2), []int64{256}, nil),
				set(ptr.To[int32](0), []int64{4096}, nil),
				set(nil, []int64{128}, nil),
			},
			want: SpaceUsage{Pods: 3, MemoryBytes: mi(640), MaxContainerMemoryBytes: mi(256)},
		},
		{
			name: "containers add up, init containers do not",
			sets: []*appsv1.StatefulSet{set(ptr.To[int32](1), []int64{100, 200}, []int64{250, 50})},
			want: SpaceUsage{Pods: 1, MemoryBytes: mi(300), MaxContainerMemoryBytes: mi(250)},
		},
		{
			name: "largest init container counts",
			sets: []*appsv1.StatefulSet{set(ptr.To[int32](2), []int64{100}, []int64{400})},
			want: SpaceUsage{Pods: 2, MemoryBytes: mi(800), MaxContainerMemoryBytes: mi(400)},
		},
		{
			name: "quota usage above the StatefulSets",
			sets: []*appsv1.StatefulSet{set(ptr.To[int32](1), []int64{512}, nil)},
			used: corev1.ResourceList{
				corev1.ResourcePods:           resource.MustParse("3"),
				corev1.ResourceLimitsMemory:   resource.MustParse("1Gi"),
				corev1.ResourceRequestsMemory: resource.MustParse("1536Mi"),
			},
			want: SpaceUsage{Pods: 3, MemoryBytes: mi(1536), MaxContainerMemoryBytes: mi(512)},
		},
		{
			name: "quota usage below the StatefulSets",
			sets: []*appsv1.StatefulSet{set(ptr.To[int32](4), []int64{512}, nil)},
			used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1"), corev1.ResourceLimitsMemory: resource.MustParse("512Mi")},
			want: SpaceUsage{Pods: 4, MemoryBytes: mi(2048), MaxContainerMemoryBytes: mi(512)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, usageOf(tc.sets, tc.used)); diff != "" {
				t.Errorf("usageOf (-want +got):\n%s", diff)
			}
		})
	}
}
