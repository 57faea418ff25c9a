package k8sbackend

import (
	"context"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// fakeScheduledTasks is DesiredScheduledTasks over a list, recording runs
// by task GUID.
type fakeScheduledTasks struct {
	mu    sync.Mutex
	tasks []store.ScheduledTask
	runs  map[string]store.ScheduledRun
}

func (f *fakeScheduledTasks) SpaceScheduledTasks(_ context.Context, spaceGUID string) ([]store.ScheduledTask, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.ScheduledTask
	for _, t := range f.tasks {
		if t.SpaceGUID == spaceGUID {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeScheduledTasks) RecordScheduledRun(_ context.Context, _ store.ScheduledTask, run store.ScheduledRun) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, found := f.runs[run.TaskGUID]; found {
		return false, nil
	}
	f.runs[run.TaskGUID] = run
	return true, nil
}

func (f *fakeScheduledTasks) set(tasks ...store.ScheduledTask) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = tasks
}

// staticApp is DesiredApp returning one app.
type staticApp struct{ app AppSpec }

func (s staticApp) DesiredApp(_ context.Context, guid string) (AppSpec, error) {
	if guid != s.app.GUID {
		return AppSpec{}, ErrAppNotFound
	}
	return s.app, nil
}

func scheduledTaskOf(guid, name, policy string) store.ScheduledTask {
	return store.ScheduledTask{
		GUID: guid, AppGUID: runApp, SpaceGUID: runSpace, Name: name, Command: "bin/report", Schedule: "*/5 * * * *",
		TimeZone: "Asia/Shanghai", ConcurrencyPolicy: policy, SuccessfulHistoryLimit: 3, FailedHistoryLimit: 1,
		DeadlineSeconds: 300, StartingDeadlineSeconds: 30, MemoryMB: 128, DiskMB: 256,
	}
}

// TestAPIServerScheduledTaskCronJobs runs the reconciler against a real
// API server, which validates every CronJob it writes. No
// kube-controller-manager runs, so no Job starts on its own: the test
// creates a CronJob's Job by hand to check that the run is recorded.
func TestAPIServerScheduledTaskCronJobs(t *testing.T) {
	client := startAPIServer(t)
	ctx := t.Context()
	ns := MakeSpaceNamespace(store.Space{GUID: runSpace, Name: "dev", OrganizationGUID: runOrg}, "acme", "")
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cronJobs := client.BatchV1().CronJobs(ns.Name)

	// A CronJob of someone else, with a name the reconciler would use.
	const foreignGUID = "f0f0f0f0-0000-4000-8000-000000000001"
	foreign := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: ScheduledTaskCronJobName(foreignGUID), Namespace: ns.Name},
		Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
		}}},
	}
	if _, err := cronJobs.Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	allow := scheduledTaskOf("a0a0a0a0-0000-4000-8000-000000000001", "allow", store.ConcurrencyAllow)
	forbid := scheduledTaskOf("a0a0a0a0-0000-4000-8000-000000000002", "forbid", store.ConcurrencyForbid)
	replace := scheduledTaskOf("a0a0a0a0-0000-4000-8000-000000000003", "replace", store.ConcurrencyReplace)
	desired := &fakeScheduledTasks{runs: map[string]store.ScheduledRun{}}
	desired.set(allow, forbid, replace)
	r := NewScheduledTaskReconciler(ScheduledTaskReconcilerOptions{
		Client: client, Desired: desired, Apps: staticApp{runTestApp()}, Workload: runTestWorkload(),
	})

	if err := r.Reconcile(ctx, runSpace); err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	for _, st := range []store.ScheduledTask{allow, forbid, replace} {
		got, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(st.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CronJob of %s: %v", st.Name, err)
		}
		if string(got.Spec.ConcurrencyPolicy) != st.ConcurrencyPolicy {
			t.Errorf("%s: concurrencyPolicy = %s", st.Name, got.Spec.ConcurrencyPolicy)
		}
		if ptr.Deref(got.Spec.TimeZone, "") != "Asia/Shanghai" {
			t.Errorf("%s: timeZone = %v", st.Name, got.Spec.TimeZone)
		}
	}
	before, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(allow.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// A second reconcile with nothing changed writes nothing.
	if err := r.Reconcile(ctx, runSpace); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	again, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(allow.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResourceVersion != before.ResourceVersion {
		t.Errorf("unchanged scheduled task updated its CronJob: resourceVersion %s → %s", before.ResourceVersion, again.ResourceVersion)
	}

	// Suspend one, change another's schedule, delete the third.
	allow.Suspended = true
	forbid.Schedule = "0 4 * * *"
	desired.set(allow, forbid)
	if err := r.Reconcile(ctx, runSpace); err != nil {
		t.Fatalf("reconcile after changes: %v", err)
	}
	suspended, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(allow.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ptr.Deref(suspended.Spec.Suspend, false) {
		t.Error("suspended scheduled task's CronJob is not suspended")
	}
	rescheduled, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(forbid.GUID), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rescheduled.Spec.Schedule != "0 4 * * *" {
		t.Errorf("schedule = %q, want 0 4 * * *", rescheduled.Spec.Schedule)
	}
	if _, err := cronJobs.Get(ctx, ScheduledTaskCronJobName(replace.GUID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("CronJob of the deleted scheduled task: %v, want not found", err)
	}

	// A scheduled task that collides with the foreign CronJob's name is
	// reported, and the foreign CronJob stays as it was.
	colliding := scheduledTaskOf(foreignGUID, "colliding", store.ConcurrencyAllow)
	desired.set(allow, forbid, colliding)
	if err := r.Reconcile(ctx, runSpace); !onlyNotOwned(err) {
		t.Errorf("reconcile with a foreign CronJob in the way = %v, want a NotOwnedError", err)
	}
	foreignAfter, err := cronJobs.Get(ctx, foreign.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("foreign CronJob: %v", err)
	}
	if foreignAfter.Spec.Schedule != "@daily" || len(foreignAfter.Labels) != 0 {
		t.Errorf("foreign CronJob changed: schedule %q, labels %v", foreignAfter.Spec.Schedule, foreignAfter.Labels)
	}
	desired.set(allow, forbid)

	// A Job of the forbid CronJob, as kube-controller-manager would
	// create it, is recorded once as a task.
	template := rescheduled.Spec.JobTemplate
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: rescheduled.Name + "-29400000", Namespace: ns.Name,
			Labels: template.Labels, Annotations: template.Annotations},
		Spec: template.Spec,
	}
	job, err = client.BatchV1().Jobs(ns.Name).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("Job of the CronJob's template: %v", err)
	}
	for range 2 {
		if err := r.Reconcile(ctx, runSpace); err != nil {
			t.Fatalf("reconcile with a run: %v", err)
		}
	}
	run, found := desired.runs[string(job.UID)]
	if !found || len(desired.runs) != 1 {
		t.Fatalf("runs = %v, want one for Job %s", desired.runs, job.Name)
	}
	if run.JobName != job.Name || run.DropletGUID != runDroplet {
		t.Errorf("run = %+v, want Job %s and droplet %s", run, job.Name, runDroplet)
	}
}
