package k8sbackend

import (
	"maps"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// Labels and annotations of scheduled tasks' CronJobs, and of the Jobs and
// pods those start.
const (
	// LabelScheduledTaskGUID is on a scheduled task's CronJob and on every
	// Job and pod it starts.
	LabelScheduledTaskGUID = "cloudfoundry.org/scheduled_task_guid"
	// LabelDropletGUID is on the Jobs a CronJob starts: the droplet whose
	// image they run, which the run's task records.
	LabelDropletGUID = "cloudfoundry.org/droplet_guid"
	// AnnotationScheduledTaskName is the scheduled task's name, which
	// need not be a valid label value.
	AnnotationScheduledTaskName = "cloudfoundry.org/scheduled_task_name"
	// ComponentScheduledTask is the LabelComponent value of CronJobs. The
	// Jobs they start are ComponentTask, so the task reconciler follows
	// them like any task's Job.
	ComponentScheduledTask = "scheduled-task"
)

// ScheduledTaskCronJobName is the name of the CronJob of the scheduled
// task guid. At 39 characters it stays within the 52 that Kubernetes
// allows a CronJob, whose Jobs append "-" and the scheduled minute.
func ScheduledTaskCronJobName(guid string) string { return "st-" + guid }

// ScheduledTaskSpec is the desired state of one scheduled task.
type ScheduledTaskSpec struct {
	GUID     string
	Name     string
	Command  string
	Schedule string
	// TimeZone is an IANA name, or "" for the time zone of the
	// kube-controller-manager.
	TimeZone string
	// ConcurrencyPolicy is a CronJob concurrency policy: Allow, Forbid or
	// Replace.
	ConcurrencyPolicy      string
	SuccessfulHistoryLimit int32
	FailedHistoryLimit     int32
	// DeadlineSeconds becomes each Job's activeDeadlineSeconds, and 0
	// sets none.
	DeadlineSeconds int64
	// StartingDeadlineSeconds becomes the CronJob's
	// startingDeadlineSeconds, and 0 sets none.
	StartingDeadlineSeconds int64
	Suspended               bool
	MemoryMB                int64
	DiskMB                  int64
}

// ScheduledTaskSpecFrom returns the desired state of a stored scheduled
// task.
func ScheduledTaskSpecFrom(t store.ScheduledTask) ScheduledTaskSpec {
	return ScheduledTaskSpec{
		GUID: t.GUID, Name: t.Name, Command: t.Command, Schedule: t.Schedule, TimeZone: t.TimeZone,
		ConcurrencyPolicy: t.ConcurrencyPolicy, SuccessfulHistoryLimit: int32(t.SuccessfulHistoryLimit),
		FailedHistoryLimit: int32(t.FailedHistoryLimit), DeadlineSeconds: t.DeadlineSeconds,
		StartingDeadlineSeconds: t.StartingDeadlineSeconds, Suspended: t.Suspended,
		MemoryMB: t.MemoryMB, DiskMB: t.DiskMB,
	}
}

// MakeScheduledTaskCronJob returns the CronJob that runs the scheduled
// task st of app from app.Droplet, in the app's space namespace. Each Job
// it starts is a task's Job, made by MakeTaskJobSpec, with three
// differences. The history limits, not a TTL, decide when finished Jobs
// go. DeadlineSeconds becomes activeDeadlineSeconds. The Job carries
// LabelScheduledTaskGUID and LabelDropletGUID, from which the controller
// records the run as a task.
//
// A scheduled task that cannot start as asked, such as one whose docker
// image runs as root where root is not allowed, gets a suspended CronJob
// with an AnnotationStartError saying why. app.Droplet must not be nil.
func MakeScheduledTaskCronJob(app AppSpec, st ScheduledTaskSpec, cfg WorkloadConfig) *batchv1.CronJob {
	task := TaskSpec{Name: st.Name, Command: st.Command, MemoryMB: st.MemoryMB, DiskMB: st.DiskMB, LogRateLimit: store.UnlimitedLogRate}
	jobSpec, startErr := MakeTaskJobSpec(app, task, cfg)
	jobSpec.TTLSecondsAfterFinished = nil
	if st.DeadlineSeconds > 0 {
		jobSpec.ActiveDeadlineSeconds = ptr.To(st.DeadlineSeconds)
	}
	jobSpec.Template.Labels[LabelScheduledTaskGUID] = st.GUID

	jobLabels := taskLabels(app, task)
	jobLabels[LabelScheduledTaskGUID] = st.GUID
	jobLabels[LabelDropletGUID] = labelValue(app.Droplet.GUID)
	jobAnnotations := taskAnnotations(app, task)

	labels := ownerLabels(app.Installation, ComponentScheduledTask)
	labels[LabelOrgGUID] = app.OrgGUID
	labels[LabelSpaceGUID] = app.SpaceGUID
	labels[LabelAppGUID] = app.GUID
	labels[LabelScheduledTaskGUID] = st.GUID
	annotations := appAnnotations(app)
	annotations[AnnotationScheduledTaskName] = st.Name
	if startErr != "" {
		annotations[AnnotationStartError] = startErr
	}

	spec := batchv1.CronJobSpec{
		Schedule:                   st.Schedule,
		ConcurrencyPolicy:          batchv1.ConcurrencyPolicy(st.ConcurrencyPolicy),
		Suspend:                    ptr.To(st.Suspended || startErr != ""),
		SuccessfulJobsHistoryLimit: ptr.To(st.SuccessfulHistoryLimit),
		FailedJobsHistoryLimit:     ptr.To(st.FailedHistoryLimit),
		JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: jobLabels, Annotations: jobAnnotations},
			Spec:       jobSpec,
		},
	}
	if st.TimeZone != "" {
		spec.TimeZone = ptr.To(st.TimeZone)
	}
	if st.StartingDeadlineSeconds > 0 {
		spec.StartingDeadlineSeconds = ptr.To(st.StartingDeadlineSeconds)
	}
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}

	cronJob := &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ScheduledTaskCronJobName(st.GUID),
			Namespace:   SpaceNamespace(app.SpaceGUID),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: spec,
	}
	// The API server fills in defaults all through the Job template, so a
	// hash of what Ferry sets, not a comparison with the stored spec,
	// decides whether the CronJob needs an update.
	cronJob.Annotations[AnnotationSpecHash] = specHash(cronJob.Labels, maps.Clone(cronJob.Annotations), cronJob.Spec)
	return cronJob
}
