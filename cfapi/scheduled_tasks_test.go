package cfapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// scheduledTaskBody is a create body with every setting.
func scheduledTaskBody(name string) map[string]any {
	return map[string]any{
		"name": name, "command": "bin/report --all", "schedule": "0 2 * * *", "time_zone": "Europe/Berlin",
		"concurrency_policy": "Forbid", "successful_history_limit": 5, "failed_history_limit": 0,
		"deadline_seconds": 600, "starting_deadline_seconds": 30, "memory_in_mb": 256, "disk_in_mb": 512,
		"metadata": map[string]any{"labels": map[string]any{"team": "ops"}},
	}
}

func TestScheduledTaskCreateAndGet(t *testing.T) {
	f := newAppFixture(t)
	app := f.app(appBody("reports", f.spaceGUID))["guid"].(string)

	var got scheduledTaskJSON
	f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, scheduledTaskBody("nightly")).
		expect(http.StatusCreated).decode(&got)
	berlin, deadline, startingDeadline := "Europe/Berlin", int64(600), int64(30)
	want := scheduledTaskJSON{
		GUID: got.GUID, CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt, Name: "nightly", Command: "bin/report --all",
		Schedule: "0 2 * * *", TimeZone: &berlin, ConcurrencyPolicy: "Forbid", SuccessfulHistoryLimit: 5,
		FailedHistoryLimit: 0, DeadlineSeconds: &deadline, StartingDeadline: &startingDeadline, MemoryInMB: 256, DiskInMB: 512,
		Relationships: scheduledTaskRelationships{App: relTo(app)},
		Metadata:      metadataJSON{Labels: map[string]string{"team": "ops"}, Annotations: map[string]string{}},
		Links: scheduledTaskLinks{
			Self:  link{Href: f.env.api.externalURL + "/v3/scheduled_tasks/" + got.GUID},
			App:   link{Href: f.env.api.externalURL + "/v3/apps/" + app},
			Space: link{Href: f.env.api.externalURL + "/v3/spaces/" + f.spaceGUID},
			Tasks: link{Href: f.env.api.externalURL + "/v3/apps/" + app + "/tasks?names=nightly"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}

	var read scheduledTaskJSON
	f.env.do(http.MethodGet, "/v3/scheduled_tasks/"+got.GUID, f.developer, nil).expect(http.StatusOK).decode(&read)
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("read by the developer (-want +got):\n%s", diff)
	}
	f.env.do(http.MethodGet, "/v3/scheduled_tasks/"+got.GUID, f.auditor, nil).expect(http.StatusOK).decode(&read)
	if read.Command != privateDataHidden {
		t.Errorf("command shown to a space auditor = %q, want it hidden", read.Command)
	}
	f.env.do(http.MethodGet, "/v3/scheduled_tasks/"+got.GUID, f.stranger, nil).expect(http.StatusNotFound)

	events := f.env.do(http.MethodGet, "/v3/audit_events?types=audit.app.scheduled_task.create&target_guids="+app, f.admin, nil).
		expect(http.StatusOK).object()
	if n := len(events["resources"].([]any)); n != 1 {
		t.Errorf("create audit events = %d, want 1", n)
	}
}

func TestScheduledTaskCreateDefaultsAndTemplate(t *testing.T) {
	f := newAppFixture(t)
	app := f.app(appBody("reports", f.spaceGUID))["guid"].(string)

	var plain scheduledTaskJSON
	f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer,
		map[string]any{"name": "plain", "command": "true", "schedule": "@hourly"}).expect(http.StatusCreated).decode(&plain)
	if plain.ConcurrencyPolicy != "Allow" || plain.SuccessfulHistoryLimit != 3 || plain.FailedHistoryLimit != 1 ||
		plain.TimeZone != nil || plain.DeadlineSeconds != nil || plain.Suspended || plain.MemoryInMB != store.DefaultProcessMemoryMB {
		t.Errorf("defaults = %+v, want Allow, 3, 1, no time zone, no deadline, not suspended, default memory", plain)
	}

	// The web process has no command until the app has a droplet, so the
	// template alone is not enough, and a command next to it is.
	body := map[string]any{"name": "templated", "schedule": "@hourly", "template": map[string]any{"process": map[string]any{"guid": app}}}
	resp := f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, body).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Command is required") {
		t.Errorf("template without a command: detail = %q", detail)
	}
	body["command"] = "bin/report"
	var templated scheduledTaskJSON
	f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, body).expect(http.StatusCreated).decode(&templated)
	if templated.Template == nil || templated.Template.Process.GUID != app {
		t.Errorf("template = %+v, want the web process %s", templated.Template, app)
	}

	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	body["name"], body["template"] = "foreign", map[string]any{"process": map[string]any{"guid": other}}
	resp = f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, body).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "is not a process of the app") {
		t.Errorf("template of another app: detail = %q", detail)
	}
}

func TestScheduledTaskCreateRejectsBadInput(t *testing.T) {
	f := newAppFixture(t)
	app := f.app(appBody("reports", f.spaceGUID))["guid"].(string)
	f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, scheduledTaskBody("taken")).expect(http.StatusCreated)

	for _, tc := range []struct {
		name   string
		change map[string]any
		status int
		detail string
	}{
		{"invalid cron", map[string]any{"schedule": "every minute"}, 422, "Schedule 'every minute' is not a valid cron expression"},
		{"six fields", map[string]any{"schedule": "0 * * * * *"}, 422, "use five fields 'minute hour day-of-month month day-of-week'"},
		{"unknown time zone", map[string]any{"time_zone": "Mars/Olympus"}, 422, "Time_zone 'Mars/Olympus' is invalid: unknown time zone"},
		{"time zone type", map[string]any{"time_zone": 3}, 422, "Time_zone must be a string"},
		{"negative successful limit", map[string]any{"successful_history_limit": -1}, 422, "Successful_history_limit must be greater than or equal to 0"},
		{"negative failed limit", map[string]any{"failed_history_limit": -2}, 422, "Failed_history_limit must be greater than or equal to 0"},
		{"zero deadline", map[string]any{"deadline_seconds": 0}, 422, "Deadline_seconds must be greater than 0"},
		{"short starting deadline", map[string]any{"starting_deadline_seconds": 5}, 422, "Starting_deadline_seconds must be greater than or equal to 10"},
		{"policy", map[string]any{"concurrency_policy": "Queue"}, 422, "Concurrency_policy 'Queue' is invalid: use one of Allow, Forbid, Replace"},
		{"memory", map[string]any{"memory_in_mb": 0}, 422, "Memory_in_mb must be greater than 0"},
		{"empty command", map[string]any{"command": ""}, 422, "Command must be between 1 and"},
		{"taken name", map[string]any{"name": "taken"}, 422, "Scheduled task name 'taken' is already taken"},
		{"unknown field", map[string]any{"cron": "* * * * *"}, 422, "Unknown field(s): 'cron'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := scheduledTaskBody("fresh")
			for key, value := range tc.change {
				body[key] = value
			}
			resp := f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, body).expect(tc.status)
			if _, _, detail := resp.cfError(); !strings.Contains(detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", detail, tc.detail)
			}
		})
	}

	missing := f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, map[string]any{"name": "x"}).
		expect(http.StatusUnprocessableEntity)
	if _, _, detail := missing.cfError(); !strings.Contains(detail, "Command is required") || !strings.Contains(detail, "Schedule is required") {
		t.Errorf("missing command and schedule: detail = %q", detail)
	}
}

func TestScheduledTaskPermissions(t *testing.T) {
	f := newAppFixture(t)
	app := f.app(appBody("reports", f.spaceGUID))["guid"].(string)
	path := "/v3/apps/" + app + "/scheduled_tasks"

	for _, token := range []string{f.auditor, f.supporter, f.spaceManager, f.orgManager, f.globalAuditor, f.readOnlyAdmin} {
		f.env.do(http.MethodPost, path, token, scheduledTaskBody("nightly")).expect(http.StatusForbidden)
	}
	f.env.do(http.MethodPost, path, f.stranger, scheduledTaskBody("nightly")).expect(http.StatusNotFound)

	guid := f.env.do(http.MethodPost, path, f.developer, scheduledTaskBody("nightly")).expect(http.StatusCreated).object()["guid"].(string)
	f.env.do(http.MethodPatch, "/v3/scheduled_tasks/"+guid, f.auditor, map[string]any{"suspended": true}).expect(http.StatusForbidden)
	f.env.do(http.MethodDelete, "/v3/scheduled_tasks/"+guid, f.auditor, nil).expect(http.StatusForbidden)
	f.env.do(http.MethodDelete, "/v3/scheduled_tasks/"+guid, f.stranger, nil).expect(http.StatusNotFound)
}

func TestScheduledTaskUpdateSuspendAndDelete(t *testing.T) {
	f := newAppFixture(t)
	app := f.app(appBody("reports", f.spaceGUID))["guid"].(string)
	guid := f.env.do(http.MethodPost, "/v3/apps/"+app+"/scheduled_tasks", f.developer, scheduledTaskBody("nightly")).
		expect(http.StatusCreated).object()["guid"].(string)

	var updated scheduledTaskJSON
	f.env.do(http.MethodPatch, "/v3/scheduled_tasks/"+guid, f.developer, map[string]any{
		"suspended": true, "schedule": "*/5 * * * *", "time_zone": nil, "deadline_seconds": nil, "starting_deadline_seconds": nil,
		"metadata": map[string]any{"labels": map[string]any{"team": nil}},
	}).expect(http.StatusOK).decode(&updated)
	if !updated.Suspended || updated.Schedule != "*/5 * * * *" || updated.TimeZone != nil || updated.DeadlineSeconds != nil {
		t.Errorf("after suspend = %+v, want suspended, */5 * * * *, no time zone, no deadline", updated)
	}
	if updated.StartingDeadline != nil {
		t.Errorf("starting_deadline_seconds = %d, want null after clearing it", *updated.StartingDeadline)
	}
	if len(updated.Metadata.Labels) != 0 {
		t.Errorf("labels = %v, want none", updated.Metadata.Labels)
	}
	if updated.Command != "bin/report --all" || updated.ConcurrencyPolicy != "Forbid" {
		t.Errorf("unchanged fields = %q %q, want them kept", updated.Command, updated.ConcurrencyPolicy)
	}

	f.env.do(http.MethodPatch, "/v3/scheduled_tasks/"+guid, f.developer, map[string]any{"suspended": false}).
		expect(http.StatusOK).decode(&updated)
	if updated.Suspended {
		t.Error("resume left the scheduled task suspended")
	}
	resp := f.env.do(http.MethodPatch, "/v3/scheduled_tasks/"+guid, f.developer,
		map[string]any{"template": map[string]any{"process": map[string]any{"guid": app}}}).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Template can only be set when the scheduled task is created") {
		t.Errorf("template on update: detail = %q", detail)
	}

	f.env.do(http.MethodDelete, "/v3/scheduled_tasks/"+guid, f.developer, nil).expect(http.StatusNoContent)
	f.env.do(http.MethodGet, "/v3/scheduled_tasks/"+guid, f.developer, nil).expect(http.StatusNotFound)
	events := f.env.do(http.MethodGet, "/v3/audit_events?types=audit.app.scheduled_task.update,audit.app.scheduled_task.delete&target_guids="+app,
		f.admin, nil).expect(http.StatusOK).object()
	if n := len(events["resources"].([]any)); n != 3 {
		t.Errorf("update and delete audit events = %d, want 3", n)
	}
}

func TestScheduledTaskLists(t *testing.T) {
	f := newAppFixture(t)
	reports := f.app(appBody("reports", f.spaceGUID))["guid"].(string)
	billing := f.app(appBody("billing", f.spaceGUID))["guid"].(string)
	for _, c := range []struct{ app, name string }{{reports, "nightly"}, {reports, "hourly"}, {billing, "nightly"}} {
		f.env.do(http.MethodPost, "/v3/apps/"+c.app+"/scheduled_tasks", f.developer, scheduledTaskBody(c.name)).expect(http.StatusCreated)
	}

	names := func(path, token string) []string {
		t.Helper()
		var list struct {
			Pagination struct {
				TotalResults int `json:"total_results"`
			} `json:"pagination"`
			Resources []scheduledTaskJSON `json:"resources"`
		}
		f.env.do(http.MethodGet, path, token, nil).expect(http.StatusOK).decode(&list)
		out := []string{}
		for _, r := range list.Resources {
			if r.Command != privateDataHiddenInLists {
				t.Errorf("%s: command %q shown in a list", path, r.Command)
			}
			app := "reports"
			if r.Relationships.App.Data.GUID == billing {
				app = "billing"
			}
			out = append(out, app+"/"+r.Name)
		}
		if list.Pagination.TotalResults != len(out) {
			t.Errorf("%s: total_results = %d, want %d", path, list.Pagination.TotalResults, len(out))
		}
		return out
	}

	for _, tc := range []struct {
		path, token string
		want        []string
	}{
		{"/v3/scheduled_tasks", f.developer, []string{"reports/nightly", "reports/hourly", "billing/nightly"}},
		{"/v3/scheduled_tasks?names=nightly&order_by=created_at", f.auditor, []string{"reports/nightly", "billing/nightly"}},
		{"/v3/scheduled_tasks?app_guids=" + billing, f.developer, []string{"billing/nightly"}},
		{"/v3/scheduled_tasks?space_guids=" + f.spaceGUID + "&order_by=-created_at", f.developer, []string{"billing/nightly", "reports/hourly", "reports/nightly"}},
		{"/v3/apps/" + reports + "/scheduled_tasks?order_by=name", f.developer, []string{"reports/hourly", "reports/nightly"}},
		{"/v3/scheduled_tasks", f.stranger, []string{}},
	} {
		if diff := cmp.Diff(tc.want, names(tc.path, tc.token)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.path, diff)
		}
	}
	resp := f.env.do(http.MethodGet, "/v3/scheduled_tasks?states=RUNNING", f.developer, nil).expect(http.StatusBadRequest)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Unknown query parameter(s): 'states'") {
		t.Errorf("unknown filter: detail = %q", detail)
	}
}

func TestApplyManifestScheduledTasks(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply(`applications:
- name: reports
  scheduled-tasks:
  - name: nightly
    command: bin/report
    schedule: "0 2 * * *"
    time-zone: Asia/Shanghai
    concurrency-policy: Forbid
    memory: 256M
`)
	app := f.appNamed("reports").GUID
	list := f.env.do(http.MethodGet, "/v3/apps/"+app+"/scheduled_tasks", f.developer, nil).expect(http.StatusOK).object()
	resources := list["resources"].([]any)
	if len(resources) != 1 {
		t.Fatalf("scheduled tasks after the first apply = %d, want 1", len(resources))
	}
	first := resources[0].(map[string]any)
	if first["time_zone"] != "Asia/Shanghai" || first["concurrency_policy"] != "Forbid" || first["memory_in_mb"] != float64(256) {
		t.Errorf("created from the manifest = %v", first)
	}

	// A second apply updates by name and keeps what it does not set.
	f.mustApply(`applications:
- name: reports
  scheduled-tasks:
  - name: nightly
    command: bin/report --full
    schedule: "30 3 * * *"
    suspended: true
`)
	var updated scheduledTaskJSON
	f.env.do(http.MethodGet, "/v3/scheduled_tasks/"+first["guid"].(string), f.developer, nil).expect(http.StatusOK).decode(&updated)
	if updated.Command != "bin/report --full" || updated.Schedule != "30 3 * * *" || !updated.Suspended ||
		updated.ConcurrencyPolicy != "Forbid" || updated.TimeZone == nil || *updated.TimeZone != "Asia/Shanghai" {
		t.Errorf("after the second apply = %+v", updated)
	}

	resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer,
		"applications:\n- name: reports\n  scheduled-tasks:\n  - {name: bad, command: x, schedule: '* * *'}\n").
		expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Scheduled task 'bad': schedule '* * *' is not a valid cron expression") {
		t.Errorf("invalid schedule in a manifest: detail = %q", detail)
	}
}
