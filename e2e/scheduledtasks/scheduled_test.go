//go:build e2e

package scheduledtasks

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// runTimeout bounds each wait for scheduled runs. A one-minute schedule
// needs up to two minutes for its second run, and Forbid skips a minute.
const runTimeout = 6 * time.Minute

type taskJSON struct {
	GUID   string `json:"guid"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Result struct {
		FailureReason *string `json:"failure_reason"`
	} `json:"result"`
}

// TestScheduledTasks runs two scheduled tasks with a one-minute schedule
// side by side, so the whole test takes a few minutes. "tick" echoes and
// ends at once, with a successful history of 1. "overlap" sleeps 90
// seconds with the Forbid policy.
func TestScheduledTasks(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-scheduled-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	namespace := k8sbackend.SpaceNamespace(space)
	t.Cleanup(func() { deleteNamespace(t, env, namespace) })
	app := f.stageApp(t, space, "reports", filepath.Join(repoRoot(t), "fixtures", "apps", "procfile"))

	tick := f.create(t, "/v3/apps/"+app+"/scheduled_tasks", map[string]any{
		"name": "tick", "command": "echo scheduled tick", "schedule": "* * * * *",
		"successful_history_limit": 1, "failed_history_limit": 1, "memory_in_mb": 64, "disk_in_mb": 64,
	})
	overlap := f.create(t, "/v3/apps/"+app+"/scheduled_tasks", map[string]any{
		"name": "overlap", "command": "sleep 90", "schedule": "* * * * *", "concurrency_policy": "Forbid",
		"starting_deadline_seconds": 20,
		"memory_in_mb":              64, "disk_in_mb": 64,
	})

	t.Run("one-minute schedule runs twice", func(t *testing.T) {
		envtest.WaitFor(t, runTimeout, "two succeeded runs of tick", func(context.Context) (bool, string) {
			succeeded, states := f.taskStates(t, app, "tick")
			return succeeded >= 2, states
		})
	})

	t.Run("history limit keeps one succeeded Job", func(t *testing.T) {
		// The CronJob controller deletes surplus Jobs after a run ends, so
		// wait for a moment with at least two succeeded tasks and exactly
		// one succeeded Job.
		envtest.WaitFor(t, runTimeout, "one succeeded Job of tick next to two succeeded tasks", func(ctx context.Context) (bool, string) {
			jobs := runJobs(t, ctx, env, namespace, tick)
			succeededJobs := 0
			for _, job := range jobs {
				if job.Status.Succeeded > 0 {
					succeededJobs++
				}
			}
			succeeded, states := f.taskStates(t, app, "tick")
			return succeededJobs == 1 && succeeded >= 2, fmt.Sprintf("%d succeeded Jobs; tasks %s", succeededJobs, states)
		})
	})

	t.Run("Forbid skips an overlapping run", func(t *testing.T) {
		var minutes []int64
		envtest.WaitFor(t, runTimeout, "two runs of overlap", func(ctx context.Context) (bool, string) {
			minutes = scheduledMinutes(t, runJobs(t, ctx, env, namespace, overlap))
			return len(minutes) >= 2, fmt.Sprintf("runs scheduled at minutes %v", minutes)
		})
		// A run lasts 90 seconds. The run due a minute after each start
		// is still blocked 20 seconds later, past its starting deadline,
		// so it is skipped and consecutive runs are at least two minutes
		// apart. Without a starting deadline Kubernetes would start it
		// late instead, once the previous run ended.
		for i := 1; i < len(minutes); i++ {
			if gap := minutes[i] - minutes[i-1]; gap < 2 {
				t.Errorf("runs scheduled at minutes %d and %d overlap under Forbid", minutes[i-1], minutes[i])
			}
		}
		_, states := f.taskStates(t, app, "overlap")
		if !strings.Contains(states, "RUNNING") && !strings.Contains(states, "SUCCEEDED") {
			t.Errorf("tasks of overlap = %s, want runs recorded as tasks", states)
		}
	})

	t.Run("suspend and delete", func(t *testing.T) {
		f.do(t, http.MethodPatch, "/v3/scheduled_tasks/"+tick, map[string]any{"suspended": true}, http.StatusOK, nil)
		envtest.WaitFor(t, startTimeout, "the CronJob of tick to be suspended", func(ctx context.Context) (bool, string) {
			cronJob, err := env.Kube.BatchV1().CronJobs(namespace).Get(ctx, k8sbackend.ScheduledTaskCronJobName(tick), metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return cronJob.Spec.Suspend != nil && *cronJob.Spec.Suspend, "not suspended"
		})

		for _, guid := range []string{tick, overlap} {
			f.do(t, http.MethodDelete, "/v3/scheduled_tasks/"+guid, nil, http.StatusNoContent, nil)
		}
		envtest.WaitFor(t, startTimeout, "the CronJobs to be deleted", func(ctx context.Context) (bool, string) {
			for _, guid := range []string{tick, overlap} {
				_, err := env.Kube.BatchV1().CronJobs(namespace).Get(ctx, k8sbackend.ScheduledTaskCronJobName(guid), metav1.GetOptions{})
				if !apierrors.IsNotFound(err) {
					return false, "CronJob of " + guid + " still exists"
				}
			}
			return true, ""
		})
		if succeeded, states := f.taskStates(t, app, "tick"); succeeded < 2 {
			t.Errorf("tasks of tick after the delete = %s, want the recorded runs kept", states)
		}
	})
}

// taskStates returns how many tasks of app named name SUCCEEDED, and every
// task's state and failure reason for messages.
func (f *ferry) taskStates(t *testing.T, app, name string) (int, string) {
	t.Helper()
	var list struct {
		Resources []taskJSON `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app+"/tasks?per_page=100&names="+url.QueryEscape(name), &list)
	succeeded := 0
	var states []string
	for _, task := range list.Resources {
		state := task.State
		if task.State == "SUCCEEDED" {
			succeeded++
		}
		if task.Result.FailureReason != nil {
			state += " (" + *task.Result.FailureReason + ")"
		}
		states = append(states, state)
	}
	return succeeded, "[" + strings.Join(states, ", ") + "]"
}

// runJobs lists the Jobs the CronJob of the scheduled task guid started.
func runJobs(t *testing.T, ctx context.Context, env *envtest.Environment, namespace, guid string) []batchv1.Job {
	t.Helper()
	list, err := env.Kube.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: k8sbackend.LabelScheduledTaskGUID + "=" + guid,
	})
	if err != nil {
		t.Fatalf("list Jobs of scheduled task %s: %v", guid, err)
	}
	return list.Items
}

// scheduledMinutes returns the scheduled times of Jobs in minutes since
// the Unix epoch, ascending. The CronJob controller names each Job after
// its CronJob and that minute.
func scheduledMinutes(t *testing.T, jobs []batchv1.Job) []int64 {
	t.Helper()
	var minutes []int64
	for _, job := range jobs {
		suffix := job.Name[strings.LastIndex(job.Name, "-")+1:]
		minute, err := strconv.ParseInt(suffix, 10, 64)
		if err != nil {
			t.Fatalf("Job %s has no scheduled minute in its name", job.Name)
		}
		minutes = append(minutes, minute)
	}
	slices.Sort(minutes)
	return minutes
}
