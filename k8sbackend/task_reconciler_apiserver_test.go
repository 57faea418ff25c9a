package k8sbackend

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// taskEnv is a task reconciler on a fresh database and a real
// kube-apiserver, which validates the Jobs and the statuses the test
// writes. No Job controller runs, so the test plays its part.
type taskEnv struct {
	t       *testing.T
	ctx     context.Context
	store   *store.Store
	client  kubernetes.Interface
	r       *TaskReconciler
	app     store.App
	droplet store.Droplet
}

func newTaskEnv(t *testing.T) *taskEnv {
	t.Helper()
	client := startAPIServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := pgtest.NewStore(t)

	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	space, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org.GUID})
	if err != nil {
		t.Fatal(err)
	}
	app, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "worker", SpaceGUID: space.GUID,
		LifecycleType: store.LifecycleBuildpack, EnvironmentVariables: map[string]string{"SECRET": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	droplet, err := store.CreateDroplet(ctx, st.DB(), store.Droplet{GUID: uuid.NewString(), AppGUID: app.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		Image: "10.88.0.1:5000/ferry/droplets/x@sha256:" + sha256Hex("d"), ProcessTypes: map[string]string{"web": "./server"}})
	if err != nil {
		t.Fatal(err)
	}
	if app, err = store.SetAppCurrentDroplet(ctx, st.DB(), app.GUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	ns := MakeSpaceNamespace(space, org.Name, "")
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		t.Fatal(err)
	}
	// No controller manager runs to create the namespace's default
	// service account, which pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	if _, err := client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := NewTaskReconciler(TaskReconcilerOptions{Store: st, Client: client, Workload: runTestWorkload(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		t.Fatal("informer caches did not sync")
	}
	return &taskEnv{t: t, ctx: ctx, store: st, client: client, r: r, app: app, droplet: droplet}
}

func sha256Hex(seed string) string {
	out := make([]byte, 64)
	for i := range out {
		out[i] = "0123456789abcdef"[(int(seed[0])+i)%16]
	}
	return string(out)
}

func (e *taskEnv) newTask(command string) store.Task {
	e.t.Helper()
	task, err := store.CreateTask(e.ctx, e.store.DB(), store.Task{GUID: uuid.NewString(), AppGUID: e.app.GUID,
		Name: "t-" + uuid.NewString()[:4], Command: command, MemoryMB: 128, DiskMB: 256, LogRateLimit: -1,
		DropletGUID: e.droplet.GUID})
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

func (e *taskEnv) reconcile(guid string) {
	e.t.Helper()
	if err := e.r.Reconcile(e.ctx, guid); err != nil {
		e.t.Fatalf("reconcile task %s: %v", guid, err)
	}
}

func (e *taskEnv) task(guid string) store.Task {
	e.t.Helper()
	task, err := e.store.ControllerTask(e.ctx, guid)
	if err != nil {
		e.t.Fatal(err)
	}
	return task
}

// waitFor polls cond until it holds, failing after a generous deadline.
func (e *taskEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startJob reconciles a PENDING task until its Job is in the informer
// cache.
func (e *taskEnv) startJob(task store.Task) *batchv1.Job {
	e.t.Helper()
	e.reconcile(task.GUID)
	var job *batchv1.Job
	e.waitFor("the Job in the informer cache", func() bool {
		var err error
		job, err = e.r.jobs.Jobs(SpaceNamespace(e.app.SpaceGUID)).Get(TaskJobName(task.GUID))
		return err == nil
	})
	return job
}

// setJobStatus writes a Job status, as the Job controller would, and waits
// for the informer to see it.
func (e *taskEnv) setJobStatus(job *batchv1.Job, status batchv1.JobStatus) *batchv1.Job {
	e.t.Helper()
	current, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	current.Status = status
	updated, err := e.client.BatchV1().Jobs(job.Namespace).UpdateStatus(e.ctx, current, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("update the status of Job %s: %v", job.Name, err)
	}
	e.waitFor("the Job status in the informer cache", func() bool {
		got, err := e.r.jobs.Jobs(job.Namespace).Get(job.Name)
		return err == nil && got.ResourceVersion == updated.ResourceVersion
	})
	return updated
}

// addPod creates the Job's pod with an app container in state and waits
// for the informer to see it.
func (e *taskEnv) addPod(job *batchv1.Job, state corev1.ContainerState) {
	e.t.Helper()
	labels := map[string]string{batchv1.JobNameLabel: job.Name}
	for k, v := range job.Spec.Template.Labels {
		labels[k] = v
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: job.Namespace, Labels: labels},
		Spec:       job.Spec.Template.Spec,
	}
	created, err := e.client.CoreV1().Pods(job.Namespace).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
		{Name: AppContainer, Image: job.Spec.Template.Spec.Containers[0].Image, State: state}}}
	updated, err := e.client.CoreV1().Pods(job.Namespace).UpdateStatus(e.ctx, created, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatalf("update the pod status: %v", err)
	}
	e.waitFor("the pod in the informer cache", func() bool {
		got, err := e.r.pods.Pods(job.Namespace).Get(pod.Name)
		return err == nil && got.ResourceVersion == updated.ResourceVersion
	})
}

func (e *taskEnv) expectState(task store.Task, state, reason string) {
	e.t.Helper()
	got := e.task(task.GUID)
	if got.State != state || got.FailureReason != reason {
		e.t.Errorf("task %s: state %s with failure reason %q, want %s with %q", task.Name, got.State,
			got.FailureReason, state, reason)
	}
}

func TestTaskReconcilerRunsJob(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("echo hello")

	job := e.startJob(task)
	if got := e.task(task.GUID).JobName; got != job.Name {
		t.Errorf("recorded job name = %q, want %q", got, job.Name)
	}
	e.expectState(task, store.TaskStatePending, "")

	started := metav1.Now()
	job = e.setJobStatus(job, batchv1.JobStatus{StartTime: &started, Active: 1, Ready: ptr.To[int32](1)})
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateRunning, "")

	finished := metav1.NewTime(started.Add(time.Second))
	e.setJobStatus(job, batchv1.JobStatus{StartTime: &started, CompletionTime: &finished, Succeeded: 1,
		Ready: ptr.To[int32](0), Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: finished},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: finished},
		}})
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateSucceeded, "")
}

func TestTaskReconcilerReportsExitStatus(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("exit 3")
	job := e.startJob(task)

	e.addPod(job, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}})
	started := metav1.Now()
	e.setJobStatus(job, batchv1.JobStatus{StartTime: &started, Failed: 1, Ready: ptr.To[int32](0),
		Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				LastTransitionTime: started},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				LastTransitionTime: started},
		}})
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateFailed, "Exited with status 3")
}

func TestTaskReconcilerCancels(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("sleep 600")
	job := e.startJob(task)
	started := metav1.Now()
	e.setJobStatus(job, batchv1.JobStatus{StartTime: &started, Active: 1, Ready: ptr.To[int32](1)})
	e.reconcile(task.GUID)

	if _, err := e.store.SetTaskState(e.ctx, task.GUID, store.TaskStateCanceling, ""); err != nil {
		t.Fatal(err)
	}
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateFailed, TaskFailureCanceled)
	got, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	case got.DeletionTimestamp == nil:
		t.Errorf("Job %s still exists without a deletion timestamp after cancel", job.Name)
	}
}

func TestTaskReconcilerFailsLostJob(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("sleep 600")
	job := e.startJob(task)
	started := metav1.Now()
	e.setJobStatus(job, batchv1.JobStatus{StartTime: &started, Active: 1, Ready: ptr.To[int32](1)})
	e.reconcile(task.GUID)

	background := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	if err := e.client.BatchV1().Jobs(job.Namespace).Delete(e.ctx, job.Name, background); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the Job to leave the informer cache", func() bool {
		_, err := e.r.jobs.Jobs(job.Namespace).Get(job.Name)
		return apierrors.IsNotFound(err)
	})
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateFailed, "the task's Job "+job.Name+" was deleted")
}

func TestTaskReconcilerRefusesForeignJob(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("echo hi")
	foreign := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: TaskJobName(task.GUID), Namespace: SpaceNamespace(e.app.SpaceGUID),
			Labels: map[string]string{"owner": "someone-else"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
		}}},
	}
	if _, err := e.client.BatchV1().Jobs(foreign.Namespace).Create(e.ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The informers see only Ferry's Jobs, so the create finds the name
	// taken by a Job the API server returns without Ferry's labels.
	e.reconcile(task.GUID)
	e.expectState(task, store.TaskStateFailed,
		"the Job "+foreign.Namespace+"/"+foreign.Name+" exists and is not managed by Ferry")
	still, err := e.client.BatchV1().Jobs(foreign.Namespace).Get(e.ctx, foreign.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("foreign Job: %v", err)
	}
	if still.Labels["owner"] != "someone-else" {
		t.Errorf("foreign Job labels changed: %v", still.Labels)
	}
}

func TestTaskReconcilerDeletesJobOfDeletedApp(t *testing.T) {
	e := newTaskEnv(t)
	task := e.newTask("sleep 600")
	job := e.startJob(task)

	if _, err := e.store.DB().ExecContext(e.ctx, `DELETE FROM apps WHERE guid = $1`, e.app.GUID); err != nil {
		t.Fatal(err)
	}
	e.reconcile(task.GUID)
	got, err := e.client.BatchV1().Jobs(job.Namespace).Get(e.ctx, job.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	case got.DeletionTimestamp == nil:
		t.Errorf("Job %s of a deleted task still exists", job.Name)
	}
}
