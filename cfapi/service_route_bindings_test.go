package cfapi

import (
	"net/http"
	"testing"
)

func TestServiceRouteBindingsListIsEmpty(t *testing.T) {
	env := newTestEnv(t)
	_, token := env.newUser("dev")

	var body struct {
		Pagination struct {
			TotalResults int `json:"total_results"`
		} `json:"pagination"`
		Resources []any `json:"resources"`
	}
	// The query cf routes sends.
	env.do(http.MethodGet, "/v3/service_route_bindings?include=service_instance&route_guids=abc,def", token, nil).
		expect(http.StatusOK).decode(&body)
	if body.Resources == nil || len(body.Resources) != 0 || body.Pagination.TotalResults != 0 {
		t.Errorf("list = %+v, want an empty resources array", body)
	}

	env.do(http.MethodGet, "/v3/service_route_bindings?colour=red", token, nil).expect(http.StatusBadRequest)
	_, _, detail := env.do(http.MethodGet, "/v3/service_route_bindings/x", token, nil).expect(http.StatusNotFound).cfError()
	if detail != "Service route binding not found" {
		t.Errorf("detail = %q", detail)
	}
}
