package k8sbackend

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/store"
)

func TestReconcileWaitsForStagingLogs(t *testing.T) {
	e := newReconcilerEnv(t)
	sink := &lineRecorder{}
	e.r.logs = sink
	now := time.Now()
	e.r.now = func() time.Time { return now }

	b := e.newBuild()
	job := e.startJob(b)
	e.addPod(job, corev1.PodStatus{Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 20, "Error", "")}})
	failed := condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	failed.LastTransitionTime = metav1.NewTime(now.Add(-time.Second))
	e.setJobStatus(job, failed)

	after := e.reconcile(b.GUID)
	if after != stagingLogGrace-time.Second {
		t.Errorf("recheck after %s, want %s", after, stagingLogGrace-time.Second)
	}
	if got := e.build(b.GUID).State; got != store.BuildStateStaging {
		t.Errorf("build state during the grace = %s, want STAGING", got)
	}

	now = now.Add(after)
	e.reconcile(b.GUID)
	if got := e.build(b.GUID).State; got != store.BuildStateFailed {
		t.Errorf("build state after the grace = %s, want FAILED", got)
	}
	want := []string{
		"STG/0 Staging started for build " + b.GUID,
		"STG/0 Staging failed: " + errNoAppDetected,
	}
	if diff := cmp.Diff(want, sink.lines(b.AppGUID)); diff != "" {
		t.Errorf("staging lines (-want +got):\n%s", diff)
	}
}

func TestReconcileWithoutLogsDoesNotWait(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	job := e.startJob(b)
	e.addPod(job, corev1.PodStatus{Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{terminated(BuildContainer, 20, "Error", "")}})
	failed := condition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	failed.LastTransitionTime = metav1.Now()
	e.setJobStatus(job, failed)

	if after := e.reconcile(b.GUID); after != 0 {
		t.Errorf("recheck after %s, want none", after)
	}
	if got := e.build(b.GUID).State; got != store.BuildStateFailed {
		t.Errorf("build state = %s, want FAILED", got)
	}
}

func TestRunControllerCollectsLogs(t *testing.T) {
	e := newReconcilerEnv(t)
	b := e.newBuild()
	sink := &lineRecorder{}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunController(ctx, ControllerOptions{Store: e.store, Client: e.client, Images: e.images, Catalog: e.catalog,
			Config: e.cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Identity: "test", Resync: time.Second,
			Logs: sink})
	}()

	// The staging line comes from the build reconciler, the API line from
	// the collector's audit event tail.
	want := []string{"STG/0 Staging started for build " + b.GUID, "API/0 Starting app with guid " + b.AppGUID}
	err := store.RecordAuditEvent(e.ctx, e.store.DB(), store.AuditEvent{Type: "audit.app.start", TargetGUID: b.AppGUID,
		TargetType: "app", TargetName: "web", ActorGUID: "user-1", ActorType: "user", ActorName: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the staging and API lines", func() bool {
		got := sink.lines(b.AppGUID)
		return slices.Contains(got, want[0]) && slices.Contains(got, want[1])
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunController: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunController did not return after its context ended")
	}
}
