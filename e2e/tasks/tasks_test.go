//go:build e2e

package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// task is the part of the task JSON the cf CLI reads.
type task struct {
	GUID       string  `json:"guid"`
	SequenceID int     `json:"sequence_id"`
	Name       string  `json:"name"`
	State      string  `json:"state"`
	Command    *string `json:"command"`
	CreatedAt  string  `json:"created_at"`
	Result     struct {
		FailureReason *string `json:"failure_reason"`
	} `json:"result"`
}

func (t task) failureReason() string {
	if t.Result.FailureReason == nil {
		return ""
	}
	return *t.Result.FailureReason
}

// TestTasks pushes the procfile fixture and runs tasks from its droplet
// with the cf CLI's requests: cf run-task, cf tasks and cf terminate-task.
// A task that exits 0 SUCCEEDS and its output reaches the log API as
// APP/TASK/<name>; one that exits 3 FAILS with "Exited with status 3"; a
// long task canceled while RUNNING FAILS with "task was cancelled" and its
// Job is deleted. Run it with:
// go test -tags e2e ./e2e/tasks/ -run TestTasks -count=1 -v
func TestTasks(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-tasks-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })
	app := f.pushApp(t, space, "tasks", filepath.Join(repoRoot(t), "fixtures", "apps", "procfile"))

	t.Run("succeeds with output in logs", func(t *testing.T) {
		marker := "task-output-" + randomToken(t)
		since := time.Now().Add(-time.Minute)
		run := f.runTask(t, app, "echo "+marker, "greet")
		done := f.awaitTask(t, run, "SUCCEEDED", "FAILED")
		if done.State != "SUCCEEDED" {
			t.Fatalf("task %s = %s (%s), want SUCCEEDED", run.Name, done.State, done.failureReason())
		}
		f.awaitLogLine(t, app, since, "APP/TASK/greet", marker)
	})

	t.Run("fails with exit status", func(t *testing.T) {
		run := f.runTask(t, app, "echo failing; exit 3", "")
		done := f.awaitTask(t, run, "SUCCEEDED", "FAILED")
		if done.State != "FAILED" || done.failureReason() != "Exited with status 3" {
			t.Errorf("task %s = %s (%q), want FAILED with \"Exited with status 3\"", run.Name, done.State, done.failureReason())
		}
	})

	t.Run("cancel stops a long task", func(t *testing.T) {
		run := f.runTask(t, app, "sleep 600", "sleeper")
		f.awaitTask(t, run, "RUNNING")
		f.terminateTask(t, app, run.SequenceID)
		done := f.awaitTask(t, run, "FAILED", "SUCCEEDED")
		if done.failureReason() != "task was cancelled" {
			t.Errorf("canceled task = %s (%q), want FAILED with \"task was cancelled\"", done.State, done.failureReason())
		}
		envtest.WaitFor(t, taskTimeout, "the task's Job to go", func(ctx context.Context) (bool, string) {
			_, err := env.Kube.BatchV1().Jobs(k8sbackend.SpaceNamespace(space)).Get(ctx,
				k8sbackend.TaskJobName(run.GUID), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, fmt.Sprint(err)
		})
	})

	// cf tasks lists every task of the app with its sequence id and state.
	var list struct {
		Resources []task `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app+"/tasks?per_page=5000", &list)
	if len(list.Resources) != 3 {
		t.Errorf("cf tasks: %d tasks, want 3", len(list.Resources))
	}
	for i, listed := range list.Resources {
		if listed.SequenceID != i+1 {
			t.Errorf("task %d has sequence id %d, want %d", i, listed.SequenceID, i+1)
		}
		if _, err := time.Parse(time.RFC3339, listed.CreatedAt); err != nil {
			t.Errorf("task %d created_at %q is not RFC 3339: %v", i, listed.CreatedAt, err)
		}
	}
}

// runTask sends cf run-task's request and returns the new task.
func (f *ferry) runTask(t *testing.T, app, command, name string) task {
	t.Helper()
	body := map[string]any{"command": command}
	if name != "" {
		body["name"] = name
	}
	var created task
	f.do(t, http.MethodPost, "/v3/apps/"+app+"/tasks", body, http.StatusAccepted, &created)
	if created.State != "PENDING" && created.State != "RUNNING" {
		t.Fatalf("new task %s is %s, want PENDING", created.Name, created.State)
	}
	return created
}

// awaitTask polls the task, as cf run-task --wait does, until it reaches
// one of states, and returns it.
func (f *ferry) awaitTask(t *testing.T, run task, states ...string) task {
	t.Helper()
	var current task
	envtest.WaitFor(t, taskTimeout, "task "+run.Name+" to be "+strings.Join(states, " or "),
		func(context.Context) (bool, string) {
			f.get(t, "/v3/tasks/"+run.GUID, &current)
			for _, s := range states {
				if current.State == s {
					return true, ""
				}
			}
			return false, current.State + " " + current.failureReason()
		})
	return current
}

// terminateTask sends cf terminate-task's requests (cf CLI v8): find the
// task by its sequence id, then cancel it with PUT /v3/tasks/:guid/cancel.
func (f *ferry) terminateTask(t *testing.T, app string, sequenceID int) {
	t.Helper()
	var list struct {
		Resources []task `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app+"/tasks?sequence_ids="+strconv.Itoa(sequenceID), &list)
	if len(list.Resources) != 1 {
		t.Fatalf("tasks with sequence id %d: %d, want 1", sequenceID, len(list.Resources))
	}
	var canceled task
	f.do(t, http.MethodPut, "/v3/tasks/"+list.Resources[0].GUID+"/cancel", nil, http.StatusAccepted, &canceled)
	if canceled.State != "CANCELING" && canceled.State != "FAILED" {
		t.Errorf("task after cancel = %s, want CANCELING", canceled.State)
	}
}

// awaitLogLine reads the app's log from the log-cache read API, which the
// root document links to, until a line of sourceType contains text.
func (f *ferry) awaitLogLine(t *testing.T, app string, since time.Time, sourceType, text string) {
	t.Helper()
	var root struct {
		Links struct {
			LogCache struct {
				Href string `json:"href"`
			} `json:"log_cache"`
		} `json:"links"`
	}
	f.get(t, "/", &root)
	base := strings.TrimSuffix(root.Links.LogCache.Href, "/")
	if base == "" {
		t.Fatal("the root document has no log_cache link")
	}
	query := url.Values{"envelope_types": {"LOG"}, "limit": {"1000"},
		"start_time": {strconv.FormatInt(since.UnixNano(), 10)}}
	envtest.WaitFor(t, taskTimeout, sourceType+" line "+text, func(ctx context.Context) (bool, string) {
		lines, err := f.readLog(ctx, base+"/api/v1/read/"+app+"?"+query.Encode())
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, l := range lines {
			if l.sourceType == sourceType && strings.Contains(l.payload, text) {
				return true, ""
			}
			seen = append(seen, "["+l.sourceType+"] "+l.payload)
		}
		return false, strings.Join(seen[max(len(seen)-20, 0):], "\n")
	})
}

type logLine struct {
	sourceType, payload string
}

// readLog reads one batch of log envelopes.
func (f *ferry) readLog(ctx context.Context, readURL string) ([]logLine, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", req.URL.Path, resp.StatusCode, data)
	}
	var body struct {
		Envelopes struct {
			Batch []struct {
				Tags map[string]string `json:"tags"`
				Log  *struct {
					Payload []byte `json:"payload"`
				} `json:"log"`
			} `json:"batch"`
		} `json:"envelopes"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode read response: %w", err)
	}
	var lines []logLine
	for _, e := range body.Envelopes.Batch {
		if e.Log != nil {
			lines = append(lines, logLine{sourceType: e.Tags["source_type"], payload: string(e.Log.Payload)})
		}
	}
	return lines, nil
}
