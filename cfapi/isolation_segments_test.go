package cfapi

import (
	"net/http"
	"testing"
)

func TestIsolationSegmentsListIsEmpty(t *testing.T) {
	env := newTestEnv(t)
	_, token := env.newUser("dev")

	var body struct {
		Pagination struct {
			TotalResults int `json:"total_results"`
		} `json:"pagination"`
		Resources []any `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/isolation_segments?organization_guids=abc", token, nil).expect(http.StatusOK).decode(&body)
	if body.Resources == nil || len(body.Resources) != 0 || body.Pagination.TotalResults != 0 {
		t.Errorf("list = %+v, want an empty resources array", body)
	}

	env.do(http.MethodGet, "/v3/isolation_segments?colour=red", token, nil).expect(http.StatusBadRequest)
	_, _, detail := env.do(http.MethodGet, "/v3/isolation_segments/x", token, nil).expect(http.StatusNotFound).cfError()
	if detail != "Isolation segment not found" {
		t.Errorf("detail = %q", detail)
	}
}
