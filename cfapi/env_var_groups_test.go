package cfapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// envGroupPath is the path of an environment variable group.
func envGroupPath(name string) string { return "/v3/environment_variable_groups/" + name }

// envGroupVars returns the var object of a group response.
func envGroupVars(t *testing.T, resp *testResponse) map[string]any {
	t.Helper()
	vars, ok := resp.object()["var"].(map[string]any)
	if !ok {
		t.Fatalf("no var object in %s", resp.Body)
	}
	return vars
}

func TestEnvironmentVariableGroupGet(t *testing.T) {
	f := newAppFixture(t)
	env := f.env

	for _, name := range []string{"running", "staging"} {
		got := env.do(http.MethodGet, envGroupPath(name), f.stranger, nil).expect(http.StatusOK).object()
		if _, ok := got["updated_at"].(string); !ok {
			t.Errorf("%s updated_at = %v, want a timestamp", name, got["updated_at"])
		}
		delete(got, "updated_at")
		want := map[string]any{
			"name":  name,
			"var":   map[string]any{},
			"links": map[string]any{"self": map[string]any{"href": env.server.URL + envGroupPath(name)}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s group (-want +got):\n%s", name, diff)
		}
	}

	for _, token := range []string{f.admin, f.globalAuditor, f.readOnlyAdmin, f.developer, f.orgUser} {
		env.do(http.MethodGet, envGroupPath("running"), token, nil).expect(http.StatusOK)
	}
	assertTenancyError(t, env.do(http.MethodGet, envGroupPath("purple"), f.admin, nil), http.StatusNotFound, 10010,
		"Environment variable group not found")
	env.do(http.MethodGet, envGroupPath("running"), "", nil).expect(http.StatusUnauthorized)
	env.do(http.MethodGet, envGroupPath("running")+"?name=x", f.admin, nil).expect(http.StatusBadRequest)
}

func TestEnvironmentVariableGroupUpdate(t *testing.T) {
	f := newAppFixture(t)
	env := f.env

	env.do(http.MethodPatch, envGroupPath("running"), f.admin, map[string]any{
		"var": map[string]any{"foo": "burger_king", "bar": "sonic"},
	}).expect(http.StatusOK)
	resp := env.do(http.MethodPatch, envGroupPath("running"), f.admin, map[string]any{
		"var": map[string]any{"foo": "in-n-out", "boo": "mcdonalds", "bar": nil},
	}).expect(http.StatusOK)
	if diff := cmp.Diff(map[string]any{"foo": "in-n-out", "boo": "mcdonalds"}, envGroupVars(t, resp)); diff != "" {
		t.Errorf("running group after patch (-want +got):\n%s", diff)
	}
	if got := resp.object()["name"]; got != "running" {
		t.Errorf("name = %v, want running", got)
	}

	// An empty body changes nothing.
	resp = env.do(http.MethodPatch, envGroupPath("running"), f.admin, map[string]any{}).expect(http.StatusOK)
	if diff := cmp.Diff(map[string]any{"foo": "in-n-out", "boo": "mcdonalds"}, envGroupVars(t, resp)); diff != "" {
		t.Errorf("running group after empty patch (-want +got):\n%s", diff)
	}

	// The two groups are separate.
	resp = env.do(http.MethodGet, envGroupPath("staging"), f.developer, nil).expect(http.StatusOK)
	if got := envGroupVars(t, resp); len(got) != 0 {
		t.Errorf("staging group = %v, want it untouched", got)
	}
	env.do(http.MethodPatch, envGroupPath("staging"), f.admin, map[string]any{"var": map[string]any{"BP_DEBUG": "1"}}).expect(http.StatusOK)
	resp = env.do(http.MethodGet, envGroupPath("staging"), f.developer, nil).expect(http.StatusOK)
	if diff := cmp.Diff(map[string]any{"BP_DEBUG": "1"}, envGroupVars(t, resp)); diff != "" {
		t.Errorf("staging group (-want +got):\n%s", diff)
	}

	if strings.Contains(env.logs.String(), "mcdonalds") {
		t.Error("the logs contain a group variable's value")
	}
}

func TestEnvironmentVariableGroupUpdatePermissions(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	body := map[string]any{"var": map[string]any{"foo": "bar"}}

	for name, token := range map[string]string{
		"space developer": f.developer, "space manager": f.spaceManager, "org manager": f.orgManager,
		"global auditor": f.globalAuditor, "read-only admin": f.readOnlyAdmin, "stranger": f.stranger,
	} {
		resp := env.do(http.MethodPatch, envGroupPath("running"), token, body)
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, resp.Status)
		}
	}
	resp := env.do(http.MethodGet, envGroupPath("running"), f.admin, nil).expect(http.StatusOK)
	if got := envGroupVars(t, resp); len(got) != 0 {
		t.Errorf("running group = %v after rejected patches, want it empty", got)
	}

	// As in Cloud Controller, the body is checked before the permission,
	// and the group name after it.
	assertTenancyError(t, env.do(http.MethodPatch, envGroupPath("running"), f.developer, map[string]any{"var": "x"}),
		http.StatusUnprocessableEntity, 10008, "Var must be an object")
	assertTenancyError(t, env.do(http.MethodPatch, envGroupPath("purple"), f.developer, body),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, envGroupPath("purple"), f.admin, body),
		http.StatusNotFound, 10010, "Environment variable group not found")
}

func TestEnvironmentVariableGroupUpdateRejectsBadInput(t *testing.T) {
	f := newAppFixture(t)
	env := f.env

	for _, tc := range []struct {
		name   string
		body   any
		detail string
	}{
		{"number value", `{"var": {"count": 1}}`, "Non-string value in environment variable for key 'count', value '1'"},
		{"object value", `{"var": {"nested": {"a": true}}}`, `Non-string value in environment variable for key 'nested', value '{"a":true}'`},
		{"var not an object", `{"var": ["a"]}`, "Var must be an object"},
		{"var null", `{"var": null}`, "Var must be an object"},
		{"VCAP_ prefix", `{"var": {"VCAP_SERVICES": "{}"}}`, "Var cannot start with VCAP_"},
		{"VMC prefix", `{"var": {"vmc_thing": "x"}}`, "Var cannot start with VMC_"},
		{"PORT", `{"var": {"port": "8080"}}`, "Var cannot set PORT"},
		{"empty name", `{"var": {"": "x"}}`, "Var key must be a minimum length of 1"},
		{"unknown field", `{"disallowed_key": "val"}`, "Unknown field(s): 'disallowed_key'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPatch, envGroupPath("staging"), f.admin, tc.body),
				http.StatusUnprocessableEntity, 10008, tc.detail)
		})
	}
	env.do(http.MethodPatch, envGroupPath("staging"), f.admin, `{"var":`).expect(http.StatusBadRequest)

	resp := env.do(http.MethodGet, envGroupPath("staging"), f.admin, nil).expect(http.StatusOK)
	if got := envGroupVars(t, resp); len(got) != 0 {
		t.Errorf("staging group = %v after rejected patches, want it empty", got)
	}
}

func TestAppEnvShowsEnvironmentVariableGroups(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)

	env.do(http.MethodPatch, envGroupPath("running"), f.admin, map[string]any{"var": map[string]any{"RUN": "r"}}).expect(http.StatusOK)
	env.do(http.MethodPatch, envGroupPath("staging"), f.admin, map[string]any{"var": map[string]any{"STAGE": "s"}}).expect(http.StatusOK)

	got := env.do(http.MethodGet, "/v3/apps/"+guid+"/env", f.developer, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"RUN": "r"}, got["running_env_json"]); diff != "" {
		t.Errorf("running_env_json (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"STAGE": "s"}, got["staging_env_json"]); diff != "" {
		t.Errorf("staging_env_json (-want +got):\n%s", diff)
	}
}
