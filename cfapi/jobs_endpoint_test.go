package cfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ferrycf/ferry/store"
)

func TestJobsGet(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	manager, managerToken := env.person("manager")
	env.grant(manager, "organization_manager", orgGUID)
	alice, _ := env.person("alice")
	role := env.grant(alice, "organization_auditor", orgGUID)
	_, otherToken := env.person("other")
	_, auditorToken := env.person("auditor", "cloud_controller.global_auditor")

	location := env.do(http.MethodDelete, "/v3/roles/"+role, managerToken, nil).expect(http.StatusAccepted).Header.Get("Location")
	path := location[len(env.server.URL):]

	var job struct {
		GUID      string           `json:"guid"`
		CreatedAt string           `json:"created_at"`
		Operation string           `json:"operation"`
		State     string           `json:"state"`
		Errors    []store.JobError `json:"errors"`
		Warnings  []struct {
			Detail string `json:"detail"`
		} `json:"warnings"`
		Links map[string]struct {
			Href string `json:"href"`
		} `json:"links"`
	}
	env.do(http.MethodGet, path, managerToken, nil).expect(http.StatusOK).decode(&job)
	if job.State != "PROCESSING" || job.Operation != "role.delete" || job.Errors == nil || job.Warnings == nil || job.CreatedAt == "" {
		t.Errorf("processing job = %+v", job)
	}
	if job.Links["self"].Href != location || job.Links["role"].Href != env.server.URL+"/v3/roles/"+role {
		t.Errorf("processing job links = %+v", job.Links)
	}

	// Actors who read everything see any job; other users do not.
	env.do(http.MethodGet, path, auditorToken, nil).expect(http.StatusOK)
	expectCFError(t, env.do(http.MethodGet, path, otherToken, nil), http.StatusNotFound, "CF-ResourceNotFound", "Job not found")
	expectCFError(t, env.do(http.MethodGet, "/v3/jobs/no-such-job", admin, nil), http.StatusNotFound, "CF-ResourceNotFound", "Job not found")
	env.do(http.MethodGet, path+"?x=1", managerToken, nil).expect(http.StatusBadRequest)

	env.runner.RunPending(context.Background())
	finished := env.do(http.MethodGet, path, managerToken, nil).expect(http.StatusOK).object()
	if finished["state"] != "COMPLETE" || !sameJSON(t, finished["errors"], []any{}) {
		t.Errorf("finished job = %v", finished)
	}
	if links, _ := finished["links"].(map[string]any); links["role"] != nil || links["self"] == nil {
		t.Errorf("links of a completed delete = %v, want self only", finished["links"])
	}
}

func TestJobsGetShowsWarnings(t *testing.T) {
	env := newRoleTestEnv(t)
	env.exec(`INSERT INTO jobs (guid, operation, state, resource_type, resource_guid, user_guid, warnings, errors)
		VALUES ('j1', 'space.apply_manifest', 'FAILED', 'space', 's1', 'admin-guid', '["careful"]',
		'[{"code": 10008, "title": "CF-UnprocessableEntity", "detail": "bad manifest"}]')`)

	body := env.do(http.MethodGet, "/v3/jobs/j1", env.adminToken(), nil).expect(http.StatusOK)
	var job struct {
		Errors   []store.JobError    `json:"errors"`
		Warnings []map[string]string `json:"warnings"`
		Links    map[string]json.RawMessage
	}
	body.decode(&job)
	if len(job.Warnings) != 1 || job.Warnings[0]["detail"] != "careful" {
		t.Errorf("warnings = %v", job.Warnings)
	}
	if len(job.Errors) != 1 || job.Errors[0].Detail != "bad manifest" || job.Errors[0].Code != 10008 {
		t.Errorf("errors = %+v", job.Errors)
	}
	if _, ok := job.Links["space"]; !ok {
		t.Errorf("links = %v, want a space link for a job that did not delete it", job.Links)
	}
}
