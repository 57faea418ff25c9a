package cfapi

import (
	"context"
	"net/http"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// taskView is the task JSON as the cf CLI and these tests read it.
type taskView struct {
	GUID         string  `json:"guid"`
	SequenceID   int64   `json:"sequence_id"`
	Name         string  `json:"name"`
	Command      *string `json:"command"`
	State        string  `json:"state"`
	MemoryInMB   int64   `json:"memory_in_mb"`
	DiskInMB     int64   `json:"disk_in_mb"`
	LogRateLimit int64   `json:"log_rate_limit_in_bytes_per_second"`
	Result       struct {
		FailureReason *string `json:"failure_reason"`
	} `json:"result"`
	DropletGUID   *string `json:"droplet_guid"`
	Relationships struct {
		App toOne `json:"app"`
	} `json:"relationships"`
	Metadata  metadataJSON `json:"metadata"`
	CreatedAt string       `json:"created_at"`
	Links     struct {
		Self   link `json:"self"`
		App    link `json:"app"`
		Cancel link `json:"cancel"`
	} `json:"links"`
}

type taskList struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
	} `json:"pagination"`
	Resources []taskView `json:"resources"`
}

// taskFixture is an app fixture with one app that has a staged droplet.
type taskFixture struct {
	*appFixture
	appGUID string
}

func newTaskFixture(t *testing.T) *taskFixture {
	t.Helper()
	f := &taskFixture{appFixture: newAppFixture(t)}
	f.appGUID = f.app(appBody("worker", f.spaceGUID))["guid"].(string)
	f.stagedDroplet(f.appGUID)
	return f
}

func (f *taskFixture) runTask(token string, body map[string]any) taskView {
	f.t.Helper()
	var task taskView
	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/tasks", token, body).expect(http.StatusAccepted).decode(&task)
	return task
}

func (f *taskFixture) listTasks(token, path string) taskList {
	f.t.Helper()
	var list taskList
	f.env.do(http.MethodGet, path, token, nil).expect(http.StatusOK).decode(&list)
	return list
}

func TestTaskCreateAndGet(t *testing.T) {
	f := newTaskFixture(t)

	task := f.runTask(f.developer, map[string]any{"command": "rake db:migrate", "name": "migrate", "memory_in_mb": 256})
	if task.Name != "migrate" || task.SequenceID != 1 || task.State != store.TaskStatePending {
		t.Errorf("task = %s #%d %s, want migrate #1 PENDING", task.Name, task.SequenceID, task.State)
	}
	if task.Command == nil || *task.Command != "rake db:migrate" {
		t.Errorf("command = %v, want rake db:migrate", task.Command)
	}
	if task.MemoryInMB != 256 || task.DiskInMB != store.DefaultProcessDiskMB || task.LogRateLimit != -1 {
		t.Errorf("sizes = %d MB, %d MB, %d B/s; want 256, %d, -1", task.MemoryInMB, task.DiskInMB, task.LogRateLimit,
			store.DefaultProcessDiskMB)
	}
	if task.Result.FailureReason != nil {
		t.Errorf("failure reason = %q, want null", *task.Result.FailureReason)
	}
	if task.DropletGUID == nil {
		t.Error("droplet_guid is null, want the current droplet")
	}
	if got := task.Relationships.App.Data; got == nil || got.GUID != f.appGUID {
		t.Errorf("app relationship = %v, want %s", got, f.appGUID)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(task.CreatedAt) {
		t.Errorf("created_at = %q, want RFC 3339 in seconds", task.CreatedAt)
	}
	wantCancel := link{Href: f.env.api.url("/v3/tasks/", task.GUID, "/actions/cancel"), Method: http.MethodPost}
	if diff := cmp.Diff(wantCancel, task.Links.Cancel); diff != "" {
		t.Errorf("cancel link (-want +got):\n%s", diff)
	}

	var got taskView
	f.env.do(http.MethodGet, "/v3/tasks/"+task.GUID, f.developer, nil).expect(http.StatusOK).decode(&got)
	if diff := cmp.Diff(task, got); diff != "" {
		t.Errorf("read task (-created +read):\n%s", diff)
	}

	second := f.runTask(f.developer, map[string]any{"command": "echo hi"})
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(second.Name) {
		t.Errorf("default name = %q, want 8 hexadecimal digits", second.Name)
	}
	if second.SequenceID != 2 {
		t.Errorf("second sequence id = %d, want 2", second.SequenceID)
	}
}

func TestTaskCommandHiddenFromAuditors(t *testing.T) {
	f := newTaskFixture(t)
	task := f.runTask(f.developer, map[string]any{"command": "echo $SECRET"})

	for _, tc := range []struct {
		name  string
		token string
		shown bool
	}{
		{"developer", f.developer, true},
		{"supporter", f.supporter, true},
		{"space auditor", f.auditor, false},
		{"space manager", f.spaceManager, false},
		{"read-only admin", f.readOnlyAdmin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := f.env.do(http.MethodGet, "/v3/tasks/"+task.GUID, tc.token, nil).expect(http.StatusOK).object()
			if _, shown := body["command"]; shown != tc.shown {
				t.Errorf("command shown = %t, want %t", shown, tc.shown)
			}
			list := f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/tasks", tc.token, nil).expect(http.StatusOK).object()
			first := list["resources"].([]any)[0].(map[string]any)
			if _, shown := first["command"]; shown != tc.shown {
				t.Errorf("command shown in the list = %t, want %t", shown, tc.shown)
			}
		})
	}
	f.env.do(http.MethodGet, "/v3/tasks/"+task.GUID, f.stranger, nil).expect(http.StatusNotFound)
}

func TestTaskCreateRejections(t *testing.T) {
	f := newTaskFixture(t)
	bare := f.app(appBody("bare", f.spaceGUID))["guid"].(string)

	for _, tc := range []struct {
		name   string
		app    string
		token  string
		body   map[string]any
		status int
		detail string
	}{
		{"no droplet", bare, f.developer, map[string]any{"command": "x"}, http.StatusUnprocessableEntity,
			"Task must have a droplet. Specify droplet or assign current droplet to app."},
		{"no command", f.appGUID, f.developer, map[string]any{"name": "x"}, http.StatusUnprocessableEntity,
			"The request body must contain command or template.process.guid"},
		{"blank command", f.appGUID, f.developer, map[string]any{"command": ""}, http.StatusUnprocessableEntity,
			"Command can't be blank"},
		{"zero memory", f.appGUID, f.developer, map[string]any{"command": "x", "memory_in_mb": 0},
			http.StatusUnprocessableEntity, "Memory in mb must be greater than 0"},
		{"negative disk", f.appGUID, f.developer, map[string]any{"command": "x", "disk_in_mb": -5},
			http.StatusUnprocessableEntity, "Disk in mb must be greater than 0"},
		{"log rate below -1", f.appGUID, f.developer, map[string]any{"command": "x", "log_rate_limit_in_bytes_per_second": -2},
			http.StatusUnprocessableEntity, "Log rate limit in bytes per second must be greater than or equal to -1"},
		{"unknown template process", f.appGUID, f.developer,
			map[string]any{"template": map[string]any{"process": map[string]any{"guid": "nope"}}},
			http.StatusUnprocessableEntity, "Template process 'nope' does not exist or is not a process of this app"},
		{"auditor", f.appGUID, f.auditor, map[string]any{"command": "x"}, http.StatusForbidden, ""},
		{"stranger", f.appGUID, f.stranger, map[string]any{"command": "x"}, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/apps/"+tc.app+"/tasks", tc.token, tc.body).expect(tc.status)
			if tc.detail == "" {
				return
			}
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
}

func TestTaskFromTemplateProcess(t *testing.T) {
	f := newTaskFixture(t)
	// The web process has the app's GUID and takes its command from the
	// droplet.
	f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.admin,
		map[string]any{"memory_in_mb": 300, "disk_in_mb": 700}).expect(http.StatusAccepted)

	task := f.runTask(f.developer, map[string]any{"template": map[string]any{"process": map[string]any{"guid": f.appGUID}}})
	if task.Command == nil || *task.Command != "node server.js" {
		t.Errorf("command = %v, want the droplet's web command", task.Command)
	}
	if task.MemoryInMB != 300 || task.DiskInMB != 700 {
		t.Errorf("sizes = %d MB, %d MB; want the process's 300 and 700", task.MemoryInMB, task.DiskInMB)
	}

	override := f.runTask(f.developer, map[string]any{"command": "echo override", "memory_in_mb": 64,
		"template": map[string]any{"process": map[string]any{"guid": f.appGUID}}})
	if override.Command == nil || *override.Command != "echo override" || override.MemoryInMB != 64 {
		t.Errorf("override = %v with %d MB, want echo override with 64 MB", override.Command, override.MemoryInMB)
	}
}

func TestTaskCreationFlag(t *testing.T) {
	f := newTaskFixture(t)
	f.enableFlag(flagTaskCreation, false)

	resp := f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/tasks", f.developer, map[string]any{"command": "x"})
	resp.expect(http.StatusForbidden)
	if _, title, _ := resp.cfError(); title != "CF-FeatureDisabled" {
		t.Errorf("title = %q, want CF-FeatureDisabled", title)
	}
	f.runTask(f.admin, map[string]any{"command": "x"})
}

func TestTaskListFilters(t *testing.T) {
	f := newTaskFixture(t)
	first := f.runTask(f.developer, map[string]any{"command": "x", "name": "one"})
	second := f.runTask(f.developer, map[string]any{"command": "x", "name": "two"})
	if _, err := f.env.store.SetTaskState(context.Background(), second.GUID, store.TaskStateRunning, ""); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/v3/tasks", []string{first.GUID, second.GUID}},
		{"/v3/tasks?names=two", []string{second.GUID}},
		{"/v3/tasks?states=RUNNING", []string{second.GUID}},
		{"/v3/tasks?app_guids=" + f.appGUID + "&order_by=-created_at", []string{second.GUID, first.GUID}},
		{"/v3/tasks?space_guids=" + f.spaceGUID + "&organization_guids=" + f.orgGUID, []string{first.GUID, second.GUID}},
		{"/v3/apps/" + f.appGUID + "/tasks?sequence_ids=1", []string{first.GUID}},
		{"/v3/tasks?label_selector=missing", nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var got []string
			for _, task := range f.listTasks(f.developer, tc.path).Resources {
				got = append(got, task.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
		})
	}

	f.env.do(http.MethodGet, "/v3/tasks?sequence_ids=1", f.developer, nil).expect(http.StatusBadRequest)
	f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/tasks?sequence_ids=one", f.developer, nil).expect(http.StatusBadRequest)
	if list := f.listTasks(f.stranger, "/v3/tasks"); list.Pagination.TotalResults != 0 {
		t.Errorf("stranger sees %d tasks, want 0", list.Pagination.TotalResults)
	}
}

func TestTaskCancel(t *testing.T) {
	f := newTaskFixture(t)
	task := f.runTask(f.developer, map[string]any{"command": "sleep 600"})

	f.env.do(http.MethodPost, "/v3/tasks/"+task.GUID+"/actions/cancel", f.auditor, nil).expect(http.StatusForbidden)

	var canceled taskView
	f.env.do(http.MethodPost, "/v3/tasks/"+task.GUID+"/actions/cancel", f.developer, nil).
		expect(http.StatusAccepted).decode(&canceled)
	if canceled.State != store.TaskStateCanceling {
		t.Errorf("state after cancel = %s, want CANCELING", canceled.State)
	}
	// cf terminate-task sends PUT /v3/tasks/:guid/cancel; a second cancel
	// of a CANCELING task changes nothing.
	f.env.do(http.MethodPut, "/v3/tasks/"+task.GUID+"/cancel", f.developer, nil).expect(http.StatusAccepted)

	if _, err := f.env.store.SetTaskState(context.Background(), task.GUID, store.TaskStateFailed, "task was cancelled"); err != nil {
		t.Fatal(err)
	}
	resp := f.env.do(http.MethodPost, "/v3/tasks/"+task.GUID+"/actions/cancel", f.developer, nil).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); detail != "Task state is FAILED and therefore cannot be canceled" {
		t.Errorf("detail = %q", detail)
	}

	var events struct {
		Resources []struct {
			Type string `json:"type"`
		} `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/audit_events?target_guids="+f.appGUID, f.admin, nil).expect(http.StatusOK).decode(&events)
	counts := map[string]int{}
	for _, ev := range events.Resources {
		counts[ev.Type]++
	}
	if counts["audit.app.task.create"] != 1 || counts["audit.app.task.cancel"] != 1 {
		t.Errorf("task events = %v, want one create and one cancel", counts)
	}
}

func TestTaskMetadataUpdate(t *testing.T) {
	f := newTaskFixture(t)
	task := f.runTask(f.developer, map[string]any{"command": "x"})

	var updated taskView
	f.env.do(http.MethodPatch, "/v3/tasks/"+task.GUID, f.developer,
		map[string]any{"metadata": map[string]any{"labels": map[string]any{"env": "prod"}}}).
		expect(http.StatusOK).decode(&updated)
	if updated.Metadata.Labels["env"] != "prod" {
		t.Errorf("labels = %v, want env=prod", updated.Metadata.Labels)
	}
	f.env.do(http.MethodPatch, "/v3/tasks/"+task.GUID, f.auditor,
		map[string]any{"metadata": map[string]any{"labels": map[string]any{"env": "x"}}}).expect(http.StatusForbidden)
	if list := f.listTasks(f.developer, "/v3/tasks?label_selector=env=prod"); len(list.Resources) != 1 {
		t.Errorf("tasks with env=prod: %d, want 1", len(list.Resources))
	}
}
