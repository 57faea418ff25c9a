package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

const runScheduledTask = "5e5e5e5e-0000-4000-8000-0000000000f2"

func runTestScheduledTask() ScheduledTaskSpec {
	return ScheduledTaskSpec{
		GUID: runScheduledTask, Name: "nightly report", Command: "bin/report", Schedule: "0 2 * * *",
		TimeZone: "Europe/Berlin", ConcurrencyPolicy: "Forbid", SuccessfulHistoryLimit: 5, FailedHistoryLimit: 2,
		DeadlineSeconds: 600, StartingDeadlineSeconds: 45, MemoryMB: 256, DiskMB: 512,
	}
}

func TestMakeScheduledTaskCronJobMetadata(t *testing.T) {
	cronJob := MakeScheduledTaskCronJob(runTestApp(), runTestScheduledTask(), runTestWorkload())

	if cronJob.Name != "st-"+runScheduledTask || cronJob.Namespace != "cf-space-"+runSpace {
		t.Errorf("CronJob = %s/%s, want cf-space-%s/st-%s", cronJob.Namespace, cronJob.Name, runSpace, runScheduledTask)
	}
	wantLabels := map[string]string{
		LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelComponent: ComponentScheduledTask,
		LabelOrgGUID: runOrg, LabelSpaceGUID: runSpace, LabelAppGUID: runApp, LabelScheduledTaskGUID: runScheduledTask,
	}
	if diff := cmp.Diff(wantLabels, cronJob.Labels); diff != "" {
		t.Errorf("CronJob labels (-want +got):\n%s", diff)
	}
	if got := cronJob.Annotations[AnnotationScheduledTaskName]; got != "nightly report" {
		t.Errorf("name annotation = %q", got)
	}
	if cronJob.Annotations[AnnotationSpecHash] == "" {
		t.Error("CronJob has no spec hash")
	}

	wantJobLabels := map[string]string{
		LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelComponent: ComponentTask,
		LabelOrgGUID: runOrg, LabelSpaceGUID: runSpace, LabelAppGUID: runApp, LabelScheduledTaskGUID: runScheduledTask,
		LabelDropletGUID: runDroplet,
	}
	if diff := cmp.Diff(wantJobLabels, cronJob.Spec.JobTemplate.Labels); diff != "" {
		t.Errorf("Job labels (-want +got):\n%s", diff)
	}
	if _, found := cronJob.Spec.JobTemplate.Labels[LabelTaskGUID]; found {
		t.Error("Job template carries a task GUID; each run's task is recorded after the Job appears")
	}
	if got := cronJob.Spec.JobTemplate.Annotations[AnnotationTaskName]; got != "nightly report" {
		t.Errorf("Job task name annotation = %q, want the scheduled task's name for the log source", got)
	}
	if got := cronJob.Spec.JobTemplate.Spec.Template.Labels[LabelScheduledTaskGUID]; got != runScheduledTask {
		t.Errorf("pod scheduled task label = %q", got)
	}
}

func TestMakeScheduledTaskCronJobSpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*ScheduledTaskSpec)
		check  func(t *testing.T, spec batchv1.CronJobSpec)
	}{
		{"every setting", nil, func(t *testing.T, spec batchv1.CronJobSpec) {
			if spec.Schedule != "0 2 * * *" || ptr.Deref(spec.TimeZone, "") != "Europe/Berlin" {
				t.Errorf("schedule = %q in %v", spec.Schedule, spec.TimeZone)
			}
			if spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy = %s", spec.ConcurrencyPolicy)
			}
			if ptr.Deref(spec.SuccessfulJobsHistoryLimit, -1) != 5 || ptr.Deref(spec.FailedJobsHistoryLimit, -1) != 2 {
				t.Errorf("history limits = %v, %v", spec.SuccessfulJobsHistoryLimit, spec.FailedJobsHistoryLimit)
			}
			if ptr.Deref(spec.Suspend, true) {
				t.Error("suspended, want running")
			}
			if ptr.Deref(spec.StartingDeadlineSeconds, 0) != 45 {
				t.Errorf("startingDeadlineSeconds = %v, want 45", spec.StartingDeadlineSeconds)
			}
			job := spec.JobTemplate.Spec
			if ptr.Deref(job.ActiveDeadlineSeconds, 0) != 600 {
				t.Errorf("activeDeadlineSeconds = %v, want 600", job.ActiveDeadlineSeconds)
			}
			if job.TTLSecondsAfterFinished != nil {
				t.Errorf("ttlSecondsAfterFinished = %d, want none: the history limits remove Jobs", *job.TTLSecondsAfterFinished)
			}
			if ptr.Deref(job.BackoffLimit, -1) != 0 {
				t.Errorf("backoffLimit = %v, want 0", job.BackoffLimit)
			}
			container := job.Template.Spec.Containers[0]
			if got := container.Resources.Limits.Memory().Value(); got != 256*mebibyte {
				t.Errorf("memory limit = %d, want 256 MiB", got)
			}
			if len(container.Command) == 0 || container.Command[len(container.Command)-1] != "bin/report" {
				t.Errorf("command = %q, want it to end with bin/report", container.Command)
			}
		}},
		{"suspended", func(st *ScheduledTaskSpec) { st.Suspended = true }, func(t *testing.T, spec batchv1.CronJobSpec) {
			if !ptr.Deref(spec.Suspend, false) {
				t.Error("not suspended")
			}
		}},
		{"no time zone or deadline", func(st *ScheduledTaskSpec) { st.TimeZone, st.DeadlineSeconds, st.StartingDeadlineSeconds = "", 0, 0 }, func(t *testing.T, spec batchv1.CronJobSpec) {
			if spec.StartingDeadlineSeconds != nil {
				t.Errorf("startingDeadlineSeconds = %d, want none", *spec.StartingDeadlineSeconds)
			}
			if spec.TimeZone != nil {
				t.Errorf("timeZone = %q, want none", *spec.TimeZone)
			}
			if spec.JobTemplate.Spec.ActiveDeadlineSeconds != nil {
				t.Errorf("activeDeadlineSeconds = %d, want none", *spec.JobTemplate.Spec.ActiveDeadlineSeconds)
			}
		}},
		{"zero history", func(st *ScheduledTaskSpec) { st.SuccessfulHistoryLimit, st.FailedHistoryLimit = 0, 0 }, func(t *testing.T, spec batchv1.CronJobSpec) {
			if spec.SuccessfulJobsHistoryLimit == nil || *spec.SuccessfulJobsHistoryLimit != 0 || spec.FailedJobsHistoryLimit == nil || *spec.FailedJobsHistoryLimit != 0 {
				t.Errorf("history limits = %v, %v, want explicit zeros", spec.SuccessfulJobsHistoryLimit, spec.FailedJobsHistoryLimit)
			}
		}},
		{"replace", func(st *ScheduledTaskSpec) { st.ConcurrencyPolicy = store.ConcurrencyReplace }, func(t *testing.T, spec batchv1.CronJobSpec) {
			if spec.ConcurrencyPolicy != batchv1.ReplaceConcurrent {
				t.Errorf("concurrencyPolicy = %s", spec.ConcurrencyPolicy)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := runTestScheduledTask()
			if tc.mutate != nil {
				tc.mutate(&st)
			}
			tc.check(t, MakeScheduledTaskCronJob(runTestApp(), st, runTestWorkload()).Spec)
		})
	}
}

func TestMakeScheduledTaskCronJobStartError(t *testing.T) {
	app := runTestApp()
	app.Droplet.LifecycleType = store.LifecycleDocker
	app.Droplet.User = "root"
	cronJob := MakeScheduledTaskCronJob(app, runTestScheduledTask(), runTestWorkload())
	if !ptr.Deref(cronJob.Spec.Suspend, false) {
		t.Error("a scheduled task that cannot start is not suspended")
	}
	if cronJob.Annotations[AnnotationStartError] == "" {
		t.Error("no start error annotation")
	}
}

func TestMakeScheduledTaskCronJobHashFollowsChanges(t *testing.T) {
	base := MakeScheduledTaskCronJob(runTestApp(), runTestScheduledTask(), runTestWorkload())
	same := MakeScheduledTaskCronJob(runTestApp(), runTestScheduledTask(), runTestWorkload())
	if base.Annotations[AnnotationSpecHash] != same.Annotations[AnnotationSpecHash] {
		t.Error("the same scheduled task hashes differently")
	}
	changed := runTestScheduledTask()
	changed.Schedule = "*/10 * * * *"
	if MakeScheduledTaskCronJob(runTestApp(), changed, runTestWorkload()).Annotations[AnnotationSpecHash] == base.Annotations[AnnotationSpecHash] {
		t.Error("a new schedule keeps the hash")
	}
	app := runTestApp()
	app.Droplet.Image = "127.0.0.1:5000/ferry/other@sha256:" + "ab"
	if MakeScheduledTaskCronJob(app, runTestScheduledTask(), runTestWorkload()).Annotations[AnnotationSpecHash] == base.Annotations[AnnotationSpecHash] {
		t.Error("a new droplet image keeps the hash")
	}
}
