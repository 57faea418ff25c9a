package cfapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppEnvironmentVariables(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	body := appBody("web", f.spaceGUID)
	body["environment_variables"] = map[string]any{"KEEP": "1", "DROP": "2", "CHANGE": "3", "SKIPPED": nil}
	guid, _ := f.app(body)["guid"].(string)
	path := "/v3/apps/" + guid + "/environment_variables"
	links := map[string]any{
		"self": map[string]any{"href": env.server.URL + path},
		"app":  map[string]any{"href": env.server.URL + "/v3/apps/" + guid},
	}

	got := env.do(http.MethodGet, path, f.developer, nil).expect(http.StatusOK).object()
	want := map[string]any{"var": map[string]any{"KEEP": "1", "DROP": "2", "CHANGE": "3"}, "links": links}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables after create (-want +got):\n%s", diff)
	}

	// cf set-env, then cf unset-env, as the cf CLI sends them.
	got = env.do(http.MethodPatch, path, f.supporter, map[string]any{"var": map[string]any{"CHANGE": "new", "ADD": ""}}).expect(http.StatusOK).object()
	want = map[string]any{"var": map[string]any{"KEEP": "1", "DROP": "2", "CHANGE": "new", "ADD": ""}, "links": links}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables after set (-want +got):\n%s", diff)
	}
	got = env.do(http.MethodPatch, path, f.developer, map[string]any{"var": map[string]any{"DROP": nil, "NEVER_SET": nil}}).expect(http.StatusOK).object()
	want = map[string]any{"var": map[string]any{"KEEP": "1", "CHANGE": "new", "ADD": ""}, "links": links}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables after unset (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name   string
		body   any
		detail string
	}{
		{"missing var", map[string]any{}, "Var must be an object"},
		{"null var", map[string]any{"var": nil}, "Var must be an object"},
		{"var not an object", map[string]any{"var": "A=1"}, "Var must be an object"},
		{"number value", map[string]any{"var": map[string]any{"N": 1.5}}, "Non-string value in environment variable for key 'N', value '1.5'"},
		{"object value", map[string]any{"var": map[string]any{"O": map[string]any{"a": true}}}, `Non-string value in environment variable for key 'O', value '{"a":true}'`},
		{"reserved name", map[string]any{"var": map[string]any{"VCAP_SERVICES": "{}"}}, "Var cannot start with VCAP_"},
		{"unknown field", map[string]any{"var": map[string]any{}, "vars": map[string]any{}}, "Unknown field(s): 'vars'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPatch, path, f.developer, tt.body), http.StatusUnprocessableEntity, 10008, tt.detail)
		})
	}
	got = env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables after rejected patches (-want +got):\n%s", diff)
	}

	var types []string
	for _, ev := range f.events(guid) {
		types = append(types, ev.Type)
		if ev.Type == "audit.app.update" {
			wantData := map[string]any{"request": map[string]any{"environment_variables": "[PRIVATE DATA HIDDEN]"}}
			if diff := cmp.Diff(wantData, ev.Data); diff != "" {
				t.Errorf("update event data (-want +got):\n%s", diff)
			}
		}
	}
	wantTypes := []string{"audit.app.create", "audit.app.environment_variables.show", "audit.app.update", "audit.app.update",
		"audit.app.environment_variables.show"}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

func TestAppEnv(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	body := appBody("web", f.spaceGUID)
	body["environment_variables"] = map[string]any{"MODE": "prod"}
	guid, _ := f.app(body)["guid"].(string)
	path := "/v3/apps/" + guid + "/env"

	got := env.do(http.MethodGet, path, f.developer, nil).expect(http.StatusOK).object()
	want := map[string]any{
		"environment_variables": map[string]any{"MODE": "prod"},
		"staging_env_json":      map[string]any{},
		"running_env_json":      map[string]any{},
		"system_env_json":       map[string]any{"VCAP_SERVICES": map[string]any{}},
		"application_env_json": map[string]any{"VCAP_APPLICATION": map[string]any{
			"cf_api":            env.server.URL,
			"limits":            map[string]any{"fds": float64(16384)},
			"application_name":  "web",
			"application_uris":  []any{},
			"name":              "web",
			"space_name":        "dev",
			"space_id":          f.spaceGUID,
			"organization_id":   f.orgGUID,
			"organization_name": "acme",
			"uris":              []any{},
			"users":             nil,
			"application_id":    guid,
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env of a developer (-want +got):\n%s", diff)
	}

	got = env.do(http.MethodGet, path, f.supporter, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"redacted_message": "[PRIVATE DATA HIDDEN]"}, got["system_env_json"]); diff != "" {
		t.Errorf("system_env_json of a supporter (-want +got):\n%s", diff)
	}
	got = env.do(http.MethodGet, path, f.readOnlyAdmin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(want["system_env_json"], got["system_env_json"]); diff != "" {
		t.Errorf("system_env_json of a read-only admin (-want +got):\n%s", diff)
	}

	forbidden := "You are not authorized to perform the requested action"
	for _, token := range []string{f.auditor, f.spaceManager, f.orgManager, f.globalAuditor} {
		assertTenancyError(t, env.do(http.MethodGet, path, token, nil), http.StatusForbidden, 10003, forbidden)
	}
	assertTenancyError(t, env.do(http.MethodGet, path, f.stranger, nil), http.StatusNotFound, 10010, "App not found")

	f.enableFlag("space_developer_env_var_visibility", false)
	assertTenancyError(t, env.do(http.MethodGet, path, f.developer, nil), http.StatusForbidden, 330002, "Feature Disabled: space_developer_env_var_visibility")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+guid+"/environment_variables", f.developer, nil),
		http.StatusForbidden, 330002, "Feature Disabled: space_developer_env_var_visibility")
	env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK)
	env.do(http.MethodGet, path, f.readOnlyAdmin, nil).expect(http.StatusOK)
	f.enableFlag("space_developer_env_var_visibility", true)

	f.enableFlag("env_var_visibility", false)
	for _, p := range []string{path, "/v3/apps/" + guid + "/environment_variables"} {
		assertTenancyError(t, env.do(http.MethodGet, p, f.admin, nil), http.StatusForbidden, 330002, "Feature Disabled: env_var_visibility")
	}

	var shows int
	for _, ev := range f.events(guid) {
		if ev.Type == "audit.app.environment.show" {
			shows++
		}
	}
	if shows != 5 {
		t.Errorf("audit.app.environment.show events = %d, want one per successful read (5)", shows)
	}
}

// TestAppEnvironmentValuesStaySecret sets, changes and reads environment
// variables with known values, and checks that no value reaches the log
// output or any audit event.
func TestAppEnvironmentValuesStaySecret(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	const (
		createdSecret = "env-secret-created-9c41e7"
		patchedSecret = "env-secret-patched-2b7d05"
		rejectedValue = "env-secret-rejected-41aa8f"
	)

	body := appBody("web", f.spaceGUID)
	body["environment_variables"] = map[string]any{"DB_PASSWORD": createdSecret}
	guid, _ := f.app(body)["guid"].(string)
	path := "/v3/apps/" + guid
	env.do(http.MethodPatch, path+"/environment_variables", f.developer, map[string]any{"var": map[string]any{"API_TOKEN": patchedSecret}}).expect(http.StatusOK)
	env.do(http.MethodPatch, path+"/environment_variables", f.developer, map[string]any{"var": map[string]any{"VCAP_X": rejectedValue}}).expect(http.StatusUnprocessableEntity)
	env.do(http.MethodPatch, path+"/environment_variables", f.developer, map[string]any{"var": map[string]any{"DB_PASSWORD": nil}}).expect(http.StatusOK)
	env.do(http.MethodGet, path+"/env", f.developer, nil).expect(http.StatusOK)
	env.do(http.MethodGet, path+"/environment_variables", f.developer, nil).expect(http.StatusOK)
	dup := appBody("WEB", f.spaceGUID)
	dup["environment_variables"] = map[string]any{"X": rejectedValue}
	env.do(http.MethodPost, "/v3/apps", f.developer, dup).expect(http.StatusUnprocessableEntity)

	logs := env.logs.String()
	if !strings.Contains(logs, guid) {
		t.Fatalf("the logs never mention the app; the check would prove nothing:\n%s", logs)
	}
	var events strings.Builder
	rows, err := env.store.DB().Query(`SELECT type, data::text FROM audit_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ, data string
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		events.WriteString(typ + " " + data + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events.String(), "audit.app.update") {
		t.Fatalf("no update events recorded; the check would prove nothing:\n%s", events.String())
	}
	for _, secret := range []string{createdSecret, patchedSecret, rejectedValue} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the value %q", secret)
		}
		if strings.Contains(events.String(), secret) {
			t.Errorf("audit events contain the value %q", secret)
		}
	}
}
