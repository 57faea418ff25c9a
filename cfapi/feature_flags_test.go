package cfapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/auth"
)

func TestFeatureFlagListDefaults(t *testing.T) {
	f := newTenancyFixture(t)
	_, userToken := f.env.newUser("reader")

	var body struct {
		Pagination struct {
			TotalResults int `json:"total_results"`
		} `json:"pagination"`
		Resources []map[string]any `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/feature_flags?per_page=100", userToken, nil).expect(http.StatusOK).decode(&body)

	want := map[string]bool{
		"app_bits_upload": true, "app_scaling": true, "diego_cnb": false, "diego_docker": false,
		"env_var_visibility": true, "hash_based_routing": false, "hide_marketplace_from_unauthenticated_users": false,
		"private_domain_creation": true, "resource_matching": true, "route_creation": true, "route_sharing": false,
		"service_instance_creation": true, "service_instance_sharing": false, "set_roles_by_username": true,
		"space_developer_env_var_visibility": true, "space_scoped_private_broker_creation": true,
		"task_creation": true, "unset_roles_by_username": true, "user_org_creation": false,
	}
	got := map[string]bool{}
	var order []string
	for _, r := range body.Resources {
		name := r["name"].(string)
		got[name] = r["enabled"].(bool)
		order = append(order, name)
		if r["updated_at"] != nil || r["custom_error_message"] != nil {
			t.Errorf("%s: updated_at %v, custom_error_message %v; want null for an unchanged flag", name, r["updated_at"], r["custom_error_message"])
		}
		self := r["links"].(map[string]any)["self"].(map[string]any)["href"]
		if self != f.env.server.URL+"/v3/feature_flags/"+name {
			t.Errorf("%s: self = %v", name, self)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("flags (-want +got):\n%s", diff)
	}
	if body.Pagination.TotalResults != len(want) {
		t.Errorf("total_results = %d, want %d", body.Pagination.TotalResults, len(want))
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("flags not sorted by name: %q before %q", order[i-1], order[i])
		}
	}
}

func TestFeatureFlagListPaginationAndOrder(t *testing.T) {
	f := newTenancyFixture(t)

	names, body := tenancyNames(t, f.env.do(http.MethodGet, "/v3/feature_flags?per_page=2&page=2&order_by=-name", f.admin, nil))
	if diff := cmp.Diff([]string{"task_creation", "space_scoped_private_broker_creation"}, names); diff != "" {
		t.Errorf("page 2 by -name (-want +got):\n%s", diff)
	}
	if body.Pagination.TotalPages != 10 || body.Pagination.Next == nil || body.Pagination.Previous == nil {
		t.Errorf("pagination = %+v", body.Pagination)
	}
	names, body = tenancyNames(t, f.env.do(http.MethodGet, "/v3/feature_flags?page=3&per_page=50", f.admin, nil))
	if len(names) != 0 || body.Pagination.TotalResults != 19 {
		t.Errorf("page past the end: %v of %d", names, body.Pagination.TotalResults)
	}

	for query, detail := range map[string]string{
		"order_by=created_at": "The query parameter is invalid: Order by can only be: 'name'",
		"names=x":             "The query parameter is invalid: Unknown query parameter(s): 'names'. Valid parameters are: 'page', 'per_page', 'order_by'",
		"per_page=5001":       "The query parameter is invalid: Per page must be between 1 and 5000",
	} {
		assertTenancyError(t, f.env.do(http.MethodGet, "/v3/feature_flags?"+query, f.admin, nil), http.StatusBadRequest, 10005, detail)
	}
}

func TestFeatureFlagGetAndUpdate(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	ctx := context.Background()
	path := "/v3/feature_flags/diego_docker"

	flag := env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).object()
	if flag["enabled"] != false || flag["updated_at"] != nil {
		t.Errorf("default diego_docker = %v", flag)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/feature_flags/warp_drive", f.admin, nil), http.StatusNotFound, 10010, "Feature flag not found")

	flag = env.do(http.MethodPatch, path, f.admin, map[string]any{"enabled": true, "custom_error_message": "Docker is off today"}).
		expect(http.StatusOK).object()
	if flag["enabled"] != true || flag["custom_error_message"] != "Docker is off today" || flag["updated_at"] == nil {
		t.Errorf("after update = %v", flag)
	}

	// Changing only the message keeps enabled; null removes the message.
	flag = env.do(http.MethodPatch, path, f.admin, map[string]any{"custom_error_message": "Ask ops"}).expect(http.StatusOK).object()
	if flag["enabled"] != true || flag["custom_error_message"] != "Ask ops" {
		t.Errorf("after message update = %v", flag)
	}
	flag = env.do(http.MethodPatch, path, f.admin, map[string]any{"enabled": false, "custom_error_message": nil}).expect(http.StatusOK).object()
	if flag["enabled"] != false || flag["custom_error_message"] != nil {
		t.Errorf("after clearing = %v", flag)
	}
	enabled, message, err := env.api.featureEnabled(ctx, "diego_docker")
	if err != nil || enabled || message != "" {
		t.Errorf("featureEnabled = %v, %q, %v", enabled, message, err)
	}

	env.do(http.MethodPatch, "/v3/feature_flags/task_creation", f.admin, map[string]any{"custom_error_message": "no tasks"}).expect(http.StatusOK)
	enabled, message, err = env.api.featureEnabled(ctx, "task_creation")
	if err != nil || !enabled || message != "no tasks" {
		t.Errorf("featureEnabled(task_creation) = %v, %q, %v; want the default true with the message", enabled, message, err)
	}
	if _, _, err := env.api.featureEnabled(ctx, "warp_drive"); err == nil {
		t.Error("featureEnabled of an unknown flag succeeded")
	}

	got := env.do(http.MethodGet, "/v3/feature_flags?per_page=50", f.admin, nil).object()
	changed := 0
	for _, r := range got["resources"].([]any) {
		if r.(map[string]any)["updated_at"] != nil {
			changed++
		}
	}
	if changed != 2 {
		t.Errorf("flags with updated_at = %d, want 2", changed)
	}
}

func TestFeatureFlagUpdateRejects(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	path := "/v3/feature_flags/user_org_creation"
	_, userToken := env.newUser("user")
	forbidden := "You are not authorized to perform the requested action"

	tests := []struct {
		name   string
		token  string
		path   string
		body   any
		status int
		code   int
		detail string
	}{
		{"ordinary user", userToken, path, map[string]any{"enabled": true}, 403, 10003, forbidden},
		{"read-only admin", f.scopedToken("ro", auth.ScopeAdminReadOnly), path, map[string]any{"enabled": true}, 403, 10003, forbidden},
		{"unknown flag", f.admin, "/v3/feature_flags/warp_drive", map[string]any{"enabled": true}, 404, 10010, "Feature flag not found"},
		{"unknown field", f.admin, path, map[string]any{"enabled": true, "name": "x"}, 422, 10008, "Unknown field(s): 'name'"},
		{"enabled not a boolean", f.admin, path, map[string]any{"enabled": "yes"}, 422, 10008, "Enabled must be a boolean"},
		{"message not a string", f.admin, path, map[string]any{"custom_error_message": 5}, 422, 10008, "Custom_error_message must be a string"},
		{"empty message", f.admin, path, map[string]any{"custom_error_message": ""}, 422, 10008,
			"Custom error message must be 1 to 250 characters; send null to remove it"},
		{"long message", f.admin, path, map[string]any{"custom_error_message": strings.Repeat("m", 251)}, 422, 10008,
			"Custom error message must be 1 to 250 characters; send null to remove it"},
		{"malformed JSON", f.admin, path, `{"enabled": tru}`, 400, 1001, "Request invalid due to parse error: the body is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPatch, tt.path, tt.token, tt.body), tt.status, tt.code, tt.detail)
		})
	}
	if n := f.count(`SELECT count(*) FROM feature_flags`); n != 0 {
		t.Errorf("stored flags after rejected updates = %d, want 0", n)
	}
}
