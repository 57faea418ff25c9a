package cfapi

import (
	"net/http"
	"testing"
)

func TestRouteAndDeploymentListsAreEmpty(t *testing.T) {
	env := newTestEnv(t)
	admin := env.adminToken()

	for _, path := range []string{
		"/v3/routes?app_guids=a,b&hosts=&paths=",
		"/v3/deployments?app_guids=a&order_by=-created_at&page=1&per_page=1&status_values=ACTIVE",
	} {
		var body struct {
			Resources []any `json:"resources"`
		}
		env.do(http.MethodGet, path, admin, nil).expect(http.StatusOK).decode(&body)
		if body.Resources == nil || len(body.Resources) != 0 {
			t.Errorf("GET %s: resources = %v, want an empty array", path, body.Resources)
		}
	}

	env.do(http.MethodGet, "/v3/routes?colour=red", admin, nil).expect(http.StatusBadRequest)
	_, _, detail := env.do(http.MethodGet, "/v3/apps/no-such-app/routes", admin, nil).expect(http.StatusNotFound).cfError()
	if detail != "App not found" {
		t.Errorf("routes of a missing app: detail = %q, want App not found", detail)
	}
	_, _, detail = env.do(http.MethodGet, "/v3/deployments/x", admin, nil).expect(http.StatusNotFound).cfError()
	if detail != "Deployment not found" {
		t.Errorf("deployment: detail = %q, want Deployment not found", detail)
	}
}
