package k8sbackend

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// fakeDesiredSpaces is a set of spaces the tests change directly.
type fakeDesiredSpaces struct {
	mu     sync.Mutex
	spaces map[string]SpaceSpec
}

func (f *fakeDesiredSpaces) DesiredSpaces(_ context.Context, guids []string) (map[string]SpaceSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	found := map[string]SpaceSpec{}
	for _, guid := range guids {
		if s, ok := f.spaces[guid]; ok {
			found[guid] = s
		}
	}
	return found, nil
}

func (f *fakeDesiredSpaces) set(s SpaceSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spaces[s.GUID] = s
}

func (f *fakeDesiredSpaces) remove(guid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.spaces, guid)
}

// spaceEnv is an app reconciler with a source of spaces on a real API
// server. Each env has an installation of its own, so its informers see
// only its own namespaces although the subtests share one server.
type spaceEnv struct {
	*appEnv
	spaces       *fakeDesiredSpaces
	installation string
}

func newSpaceEnv(t *testing.T, client kubernetes.Interface) *spaceEnv {
	t.Helper()
	cfg := testConfig()
	cfg.Installation = "q" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	e := &spaceEnv{
		appEnv:       &appEnv{t: t, ctx: t.Context(), client: client, desired: &fakeDesiredApps{apps: map[string]AppSpec{}}},
		spaces:       &fakeDesiredSpaces{spaces: map[string]SpaceSpec{}},
		installation: cfg.Installation,
	}
	e.r = NewAppReconciler(AppReconcilerOptions{
		Client:          client,
		Desired:         e.desired,
		Config:          cfg,
		Workload:        runTestWorkload(),
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Spaces:          e.spaces,
		StagingMemoryMB: 1024,
	})
	return e
}

// newSpace adds a space with limits to the desired state and creates its
// namespace, as the build or app reconciler would.
func (e *spaceEnv) newSpace(space, org store.QuotaLimits) SpaceSpec {
	e.t.Helper()
	s := SpaceSpec{GUID: uuid.NewString(), OrgGUID: uuid.NewString(), SpaceQuota: space, OrgQuota: org}
	e.spaces.set(s)
	e.createNamespace(s.GUID, s.OrgGUID)
	return s
}

func (e *spaceEnv) createNamespace(spaceGUID, orgGUID string) *corev1.Namespace {
	e.t.Helper()
	ns := MakeSpaceNamespace(store.Space{GUID: spaceGUID, Name: "dev", OrganizationGUID: orgGUID}, "acme", e.installation)
	created, err := e.client.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create namespace: %v", err)
	}
	return created
}

// waitSpaceCached waits until the caches hold the namespace of space and
// its quota objects as the API server has them, or know they are missing.
func (e *spaceEnv) waitSpaceCached(spaceGUID string) {
	e.t.Helper()
	ns := SpaceNamespace(spaceGUID)
	e.waitFor("the space caches to catch up", func() bool {
		if _, err := e.r.namespaces.Get(ns); err != nil {
			return false
		}
		quota, err := e.client.CoreV1().ResourceQuotas(ns).Get(e.ctx, SpaceResourceQuotaName, metav1.GetOptions{})
		cachedQuota, cachedErr := e.r.spaces.quotas.ResourceQuotas(ns).Get(SpaceResourceQuotaName)
		if !sameVersion(quota, err, cachedQuota, cachedErr) {
			return false
		}
		limits, err := e.client.CoreV1().LimitRanges(ns).Get(e.ctx, SpaceLimitRangeName, metav1.GetOptions{})
		cachedLimits, cachedErr := e.r.spaces.limitRanges.LimitRanges(ns).Get(SpaceLimitRangeName)
		return sameVersion(limits, err, cachedLimits, cachedErr)
	})
}

// sameVersion reports whether a cached object matches the live one, where
// an object missing from both matches, and a foreign one, which the
// informers never see, counts as missing.
func sameVersion(live metav1.Object, liveErr error, cached metav1.Object, cachedErr error) bool {
	liveMissing := apierrors.IsNotFound(liveErr) || (liveErr == nil && live.GetLabels()[LabelManagedBy] != ManagedByFerry)
	if liveMissing || apierrors.IsNotFound(cachedErr) {
		return liveMissing && apierrors.IsNotFound(cachedErr)
	}
	return liveErr == nil && cachedErr == nil && live.GetResourceVersion() == cached.GetResourceVersion()
}

func (e *spaceEnv) quota(spaceGUID string) *corev1.ResourceQuota {
	e.t.Helper()
	q, err := e.client.CoreV1().ResourceQuotas(SpaceNamespace(spaceGUID)).Get(e.ctx, SpaceResourceQuotaName, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("ResourceQuota: %v", err)
	}
	return q
}

func (e *spaceEnv) limitRange(spaceGUID string) *corev1.LimitRange {
	e.t.Helper()
	l, err := e.client.CoreV1().LimitRanges(SpaceNamespace(spaceGUID)).Get(e.ctx, SpaceLimitRangeName, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("LimitRange: %v", err)
	}
	return l
}

// checkQuotaObjects checks that the quota objects of space have the spec
// that space and running make.
func (e *spaceEnv) checkQuotaObjects(space SpaceSpec, running SpaceUsage) {
	e.t.Helper()
	wantQuota := MakeSpaceResourceQuota(space, running, e.installation)
	if diff := cmp.Diff(wantQuota.Spec, e.quota(space.GUID).Spec); diff != "" {
		e.t.Errorf("ResourceQuota spec (-want +got):\n%s", diff)
	}
	wantLimits := MakeSpaceLimitRange(space, running, e.installation, 1024)
	if diff := cmp.Diff(wantLimits.Spec, e.limitRange(space.GUID).Spec); diff != "" {
		e.t.Errorf("LimitRange spec (-want +got):\n%s", diff)
	}
}

func (e *spaceEnv) syncAll() {
	e.t.Helper()
	if err := e.r.spaces.syncAll(e.ctx); err != nil {
		e.t.Fatalf("sync all spaces: %v", err)
	}
}

// TestSpaceNamespacesOnAPIServer runs the space namespace reconciliation
// against a real API server, whose admission plugins enforce the quota
// objects as a cluster does. No controller manager runs, so deleted
// namespaces stay Terminating and the test writes quota usage itself.
func TestSpaceNamespacesOnAPIServer(t *testing.T) {
	client := startAPIServer(t)

	t.Run("API server accepts quota objects unchanged", func(t *testing.T) {
		testAPIServerAcceptsQuotaObjects(t, client)
	})
	t.Run("pods over the limits are rejected", func(t *testing.T) {
		testQuotaObjectsRejectPods(t, client)
	})
	t.Run("creates updates and repairs quota objects", func(t *testing.T) {
		testSpaceQuotaReconcile(t, client)
	})
	t.Run("quota never stops running instances", func(t *testing.T) {
		testSpaceQuotaCoversRunning(t, client)
	})
	t.Run("never touches foreign quota objects", func(t *testing.T) {
		testSpaceQuotaForeignObjects(t, client)
	})
	t.Run("deletes namespaces of deleted spaces", func(t *testing.T) {
		testDeleteSpaceNamespaces(t, client)
	})
	t.Run("run loop repairs and resyncs", func(t *testing.T) {
		testSpaceRunLoop(t, client)
	})
}

func testAPIServerAcceptsQuotaObjects(t *testing.T, client kubernetes.Interface) {
	ctx := t.Context()
	for _, tc := range []struct {
		name       string
		space, org store.QuotaLimits
		running    SpaceUsage
	}{
		{name: "unlimited"},
		{name: "every limit", space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](2048), PerProcessMemoryInMB: ptr.To[int64](512),
			TotalInstances: ptr.To[int64](4)}, org: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](10240), TotalInstances: ptr.To[int64](100)}},
		{name: "odd sizes", org: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1500), PerProcessMemoryInMB: ptr.To[int64](700)},
			running: SpaceUsage{Pods: 3, MemoryBytes: 1600*mebibyte + 1, MaxContainerMemoryBytes: 900 * mebibyte}},
		{name: "zero", space: store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](0), PerProcessMemoryInMB: ptr.To[int64](0),
			TotalInstances: ptr.To[int64](0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			space := SpaceSpec{GUID: uuid.NewString(), OrgGUID: uuid.NewString(), SpaceQuota: tc.space, OrgQuota: tc.org}
			ns := MakeSpaceNamespace(store.Space{GUID: space.GUID, Name: "dev", OrganizationGUID: space.OrgGUID}, "acme", "")
			if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}

			quota := MakeSpaceResourceQuota(space, tc.running, "")
			createdQuota, err := client.CoreV1().ResourceQuotas(ns.Name).Create(ctx, quota, metav1.CreateOptions{FieldManager: FieldManager})
			if err != nil {
				t.Fatalf("ResourceQuota rejected: %v", err)
			}
			// The reconciler compares specs in full, so a field the server
			// filled in would make it update the object on every sync.
			if diff := cmp.Diff(quota.Spec, createdQuota.Spec); diff != "" {
				t.Errorf("stored ResourceQuota spec (-want +got):\n%s", diff)
			}
			limits := MakeSpaceLimitRange(space, tc.running, "", 1024)
			createdLimits, err := client.CoreV1().LimitRanges(ns.Name).Create(ctx, limits, metav1.CreateOptions{FieldManager: FieldManager})
			if err != nil {
				t.Fatalf("LimitRange rejected: %v", err)
			}
			if diff := cmp.Diff(limits.Spec, createdLimits.Spec); diff != "" {
				t.Errorf("stored LimitRange spec (-want +got):\n%s", diff)
			}
		})
	}
}

// memoryPod is a pod in namespace with one container limited to memory,
// or without resources when memory is "".
func memoryPod(namespace, name, memory string) *corev1.Pod {
	container := corev1.Container{Name: "app", Image: runImage}
	if memory != "" {
		q := resource.MustParse(memory)
		container.Resources = corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q},
			Requests: corev1.ResourceList{corev1.ResourceMemory: q},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{container}},
	}
}

func testQuotaObjectsRejectPods(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	e.startInformers()
	space := e.newSpace(store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1536), TotalInstances: ptr.To[int64](3)},
		store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](512)})
	ns := SpaceNamespace(space.GUID)
	e.waitSpaceCached(space.GUID)
	e.syncAll()
	// No controller manager runs, so the test creates the default
	// ServiceAccount. It also writes the quota's status as the quota
	// controller would, because quota admission rejects every pod until
	// the status is written.
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	quota := e.quota(space.GUID)
	quota.Status.Hard = quota.Spec.Hard
	quota.Status.Used = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0"),
		corev1.ResourceLimitsMemory: resource.MustParse("0"), corev1.ResourceRequestsMemory: resource.MustParse("0")}
	if _, err := client.CoreV1().ResourceQuotas(ns).UpdateStatus(e.ctx, quota, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := client.CoreV1().Pods(ns)

	// The LimitRange allows 1 GiB per container, the staging memory,
	// which is above the 512 MB instance limit.
	_, err := pods.Create(e.ctx, memoryPod(ns, "too-big", "1100Mi"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "maximum memory usage per Container") {
		t.Errorf("a container over the memory cap: error = %v, want Forbidden by the LimitRange", err)
	}

	defaulted, err := pods.Create(e.ctx, memoryPod(ns, "no-resources", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a pod without resources: %v", err)
	}
	limits := defaulted.Spec.Containers[0].Resources
	if got := limits.Limits.Memory().String(); got != "512Mi" {
		t.Errorf("default memory limit = %s, want the instance limit 512Mi", got)
	}
	if got := limits.Requests.Memory().String(); got != "512Mi" {
		t.Errorf("default memory request = %s, want 512Mi", got)
	}

	if _, err := pods.Create(e.ctx, memoryPod(ns, "fits", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a pod within the quota: %v", err)
	}
	_, err = pods.Create(e.ctx, memoryPod(ns, "over-total", "512Mi"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") {
		t.Errorf("a pod over the total memory: error = %v, want Forbidden by the ResourceQuota", err)
	}

	// A staging pod with an active deadline, which staging pods must
	// have, is outside the quota's NotTerminating scope, and the
	// LimitRange admits its memory.
	plan := testPlan()
	plan.Build.SpaceGUID, plan.Build.StagingMemoryMB = space.GUID, 1024
	job, err := MakeBuildJob(plan, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	staging := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "staging", Namespace: ns}, Spec: job.Spec.Template.Spec}
	staging.Spec.ActiveDeadlineSeconds = job.Spec.ActiveDeadlineSeconds
	if _, err := pods.Create(e.ctx, staging, metav1.CreateOptions{}); err != nil {
		t.Errorf("a staging pod in a full space: %v", err)
	}
}

func testSpaceQuotaReconcile(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	e.startInformers()
	space := e.newSpace(store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](4096), TotalInstances: ptr.To[int64](10)},
		store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](2048)})
	e.waitSpaceCached(space.GUID)

	e.syncAll()
	e.checkQuotaObjects(space, SpaceUsage{})
	quota := e.quota(space.GUID)
	if !ownedBy(quota.Labels, e.installation) || quota.Labels[LabelSpaceGUID] != space.GUID {
		t.Errorf("ResourceQuota labels = %v, want Ferry's with the space GUID", quota.Labels)
	}

	t.Run("leaves current objects alone", func(t *testing.T) {
		e.waitSpaceCached(space.GUID)
		quotaVersion, limitsVersion := e.quota(space.GUID).ResourceVersion, e.limitRange(space.GUID).ResourceVersion
		e.syncAll()
		if got := e.quota(space.GUID).ResourceVersion; got != quotaVersion {
			t.Errorf("ResourceQuota written again: resource version %s, want %s", got, quotaVersion)
		}
		if got := e.limitRange(space.GUID).ResourceVersion; got != limitsVersion {
			t.Errorf("LimitRange written again: resource version %s, want %s", got, limitsVersion)
		}
	})

	t.Run("follows quota changes", func(t *testing.T) {
		space.SpaceQuota.TotalMemoryInMB = ptr.To[int64](1024)
		space.OrgQuota.PerProcessMemoryInMB = ptr.To[int64](-1)
		e.spaces.set(space)
		e.waitSpaceCached(space.GUID)
		e.syncAll()
		e.checkQuotaObjects(space, SpaceUsage{})
	})

	t.Run("repairs edited and deleted objects", func(t *testing.T) {
		e.waitSpaceCached(space.GUID)
		edited := e.quota(space.GUID)
		edited.Spec.Hard[corev1.ResourcePods] = resource.MustParse("0")
		edited.Spec.Hard[corev1.ResourceCPU] = resource.MustParse("1")
		edited.Labels["team"] = "ops"
		if _, err := client.CoreV1().ResourceQuotas(edited.Namespace).Update(e.ctx, edited, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := client.CoreV1().LimitRanges(edited.Namespace).Delete(e.ctx, SpaceLimitRangeName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitSpaceCached(space.GUID)

		if err := e.r.spaces.syncSpace(e.ctx, space.GUID); err != nil {
			t.Fatal(err)
		}
		e.checkQuotaObjects(space, SpaceUsage{})
		if got := e.quota(space.GUID).Labels["team"]; got != "ops" {
			t.Errorf("label another client set = %q, want it kept", got)
		}
	})
}

func testSpaceQuotaCoversRunning(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	e.startInformers()
	space := e.newSpace(store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1024), PerProcessMemoryInMB: ptr.To[int64](256),
		TotalInstances: ptr.To[int64](2)}, store.QuotaLimits{})

	// An app admitted under a larger quota runs three 512 MB instances.
	app := runTestApp()
	app.GUID, app.SpaceGUID, app.OrgGUID, app.Installation = uuid.NewString(), space.GUID, space.OrgGUID, e.installation
	web := runTestWeb()
	web.GUID, web.Instances, web.MemoryMB = uuid.NewString(), 3, 512
	sts := MakeStatefulSet(app, web, runTestWorkload())
	if _, err := client.AppsV1().StatefulSets(sts.Namespace).Create(e.ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the StatefulSet in the cache", func() bool {
		_, err := e.r.statefulSets.StatefulSets(sts.Namespace).Get(sts.Name)
		return err == nil
	})
	e.waitSpaceCached(space.GUID)

	e.syncAll()
	if got := e.quota(space.GUID).Spec.Hard; got.Name(corev1.ResourceLimitsMemory, resource.BinarySI).String() != "1536Mi" ||
		got.Pods().String() != "3" {
		t.Errorf("ResourceQuota hard = %v, want 1536Mi of memory and 3 pods, what runs", got)
	}
	if got := e.limitRange(space.GUID).Spec.Limits[0].Max.Memory().String(); got != "1Gi" {
		t.Errorf("LimitRange max = %s, want 1Gi, the staging memory above the 512Mi container", got)
	}

	t.Run("follows the instances down", func(t *testing.T) {
		current, err := client.AppsV1().StatefulSets(sts.Namespace).Get(e.ctx, sts.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		current.Spec.Replicas = ptr.To[int32](1)
		if _, err := client.AppsV1().StatefulSets(sts.Namespace).Update(e.ctx, current, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitFor("the scaled StatefulSet in the cache", func() bool {
			cached, err := e.r.statefulSets.StatefulSets(sts.Namespace).Get(sts.Name)
			return err == nil && ptr.Deref(cached.Spec.Replicas, 0) == 1
		})
		e.waitSpaceCached(space.GUID)

		e.syncAll()
		e.checkQuotaObjects(space, SpaceUsage{Pods: 1, MemoryBytes: 512 * mebibyte, MaxContainerMemoryBytes: 512 * mebibyte})
		if got := e.quota(space.GUID).Spec.Hard.Pods().String(); got != "2" {
			t.Errorf("pods = %s, want the quota's 2", got)
		}
	})
}

func testSpaceQuotaForeignObjects(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	e.startInformers()
	space := e.newSpace(store.QuotaLimits{TotalInstances: ptr.To[int64](5)}, store.QuotaLimits{})
	ns := SpaceNamespace(space.GUID)
	foreign := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: SpaceResourceQuotaName, Namespace: ns, Labels: map[string]string{"team": "ops"}},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("50")}},
	}
	foreign, err := client.CoreV1().ResourceQuotas(ns).Create(e.ctx, foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	operators := &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "operator-limits", Namespace: ns},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Max: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}}},
	}
	operators, err = client.CoreV1().LimitRanges(ns).Create(e.ctx, operators, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitSpaceCached(space.GUID)

	err = e.r.spaces.syncSpace(e.ctx, space.GUID)
	var notOwned *NotOwnedError
	if !errors.As(err, &notOwned) || notOwned.Kind != "ResourceQuota" || !onlyNotOwned(err) {
		t.Fatalf("syncSpace() error = %v, want only a NotOwnedError for the ResourceQuota", err)
	}
	got, err := client.CoreV1().ResourceQuotas(ns).Get(e.ctx, SpaceResourceQuotaName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the foreign ResourceQuota was written: resource version %s, want %s", got.ResourceVersion, foreign.ResourceVersion)
	}
	if e.limitRange(space.GUID).Labels[LabelSpaceGUID] != space.GUID {
		t.Error("Ferry's LimitRange was not created next to the foreign ResourceQuota")
	}
	gotOperators, err := client.CoreV1().LimitRanges(ns).Get(e.ctx, operators.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if gotOperators.ResourceVersion != operators.ResourceVersion {
		t.Error("the operator's LimitRange was written")
	}
}

func testDeleteSpaceNamespaces(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	e.startInformers()
	kept := e.newSpace(store.QuotaLimits{}, store.QuotaLimits{})
	deleted := e.newSpace(store.QuotaLimits{}, store.QuotaLimits{})
	// A namespace with the labels of a deleted space but another name is
	// not that space's namespace.
	renamed := MakeSpaceNamespace(store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: kept.OrgGUID}, "acme", e.installation)
	renamed.Name = "team-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:10]
	if _, err := client.CoreV1().Namespaces().Create(e.ctx, renamed, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another installation's namespace of a space missing here belongs to
	// another database.
	other := MakeSpaceNamespace(store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: kept.OrgGUID}, "acme", e.installation+"x")
	if _, err := client.CoreV1().Namespaces().Create(e.ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitSpaceCached(kept.GUID)
	e.waitSpaceCached(deleted.GUID)
	e.waitFor("the renamed namespace in the cache", func() bool {
		_, err := e.r.namespaces.Get(renamed.Name)
		return err == nil
	})

	e.spaces.remove(deleted.GUID)
	e.syncAll()

	gone, err := client.CoreV1().Namespaces().Get(e.ctx, SpaceNamespace(deleted.GUID), metav1.GetOptions{})
	if err == nil && gone.DeletionTimestamp == nil {
		t.Errorf("namespace of the deleted space is not being deleted")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	for _, name := range []string{SpaceNamespace(kept.GUID), renamed.Name, other.Name} {
		ns, err := client.CoreV1().Namespaces().Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		if ns.DeletionTimestamp != nil {
			t.Errorf("namespace %s is being deleted, want it kept", name)
		}
	}
	if e.quota(kept.GUID).Labels[LabelSpaceGUID] != kept.GUID {
		t.Error("the remaining space's namespace has no quota")
	}

	t.Run("keeps every namespace when no space exists", func(t *testing.T) {
		e.waitFor("the deleted namespace to leave the cache or be marked", func() bool {
			ns, err := e.r.namespaces.Get(SpaceNamespace(deleted.GUID))
			return apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil)
		})
		e.spaces.remove(kept.GUID)
		e.syncAll()
		ns, err := client.CoreV1().Namespaces().Get(e.ctx, SpaceNamespace(kept.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ns.DeletionTimestamp != nil {
			t.Error("the last namespace was deleted although the database holds none of the spaces")
		}
	})
}

func testSpaceRunLoop(t *testing.T, client kubernetes.Interface) {
	e := newSpaceEnv(t, client)
	first := e.newSpace(store.QuotaLimits{TotalInstances: ptr.To[int64](4)}, store.QuotaLimits{})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	// The resync period is an hour, so only the first resync, informer
	// events and the resync calls below drive the work.
	go func() { done <- e.r.Run(ctx, 1, time.Hour) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	limitsOf := func(guid string) func() bool {
		return func() bool {
			_, err := client.CoreV1().LimitRanges(SpaceNamespace(guid)).Get(e.ctx, SpaceLimitRangeName, metav1.GetOptions{})
			return err == nil
		}
	}
	e.waitFor("the first resync to create the quota objects", limitsOf(first.GUID))
	e.checkQuotaObjects(first, SpaceUsage{})

	second := e.newSpace(store.QuotaLimits{}, store.QuotaLimits{PerProcessMemoryInMB: ptr.To[int64](128)})
	e.waitFor("a new namespace to get its quota objects", limitsOf(second.GUID))
	e.checkQuotaObjects(second, SpaceUsage{})

	if err := client.CoreV1().LimitRanges(SpaceNamespace(first.GUID)).Delete(e.ctx, SpaceLimitRangeName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the deleted LimitRange to come back", limitsOf(first.GUID))

	first.SpaceQuota.TotalInstances = ptr.To[int64](2)
	e.spaces.set(first)
	e.r.resync(e.ctx)
	e.waitFor("the resync to lower the pods", func() bool {
		return e.quota(first.GUID).Spec.Hard.Pods().String() == "2"
	})

	e.spaces.remove(second.GUID)
	e.r.resync(e.ctx)
	e.waitFor("the resync to delete the namespace of the removed space", func() bool {
		ns, err := client.CoreV1().Namespaces().Get(e.ctx, SpaceNamespace(second.GUID), metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil)
	})
}
