package cfapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOrganizationRouting(t *testing.T) {
	f := newAppFixture(t)
	path := "/v3/organizations/" + f.orgGUID + "/routing"
	base := f.env.server.URL + "/v3/organizations/" + f.orgGUID
	want := map[string]any{
		"dedicated_gateway": false,
		"links":             map[string]any{"self": map[string]any{"href": base + "/routing"}, "organization": map[string]any{"href": base}},
	}
	if diff := cmp.Diff(want, f.env.do(http.MethodGet, path, f.orgUser, nil).expect(http.StatusOK).object()); diff != "" {
		t.Errorf("routing of a new organization (-want +got):\n%s", diff)
	}
	f.env.do(http.MethodGet, path, f.stranger, nil).expect(http.StatusNotFound)

	got := f.env.do(http.MethodPatch, path, f.admin, map[string]any{"dedicated_gateway": true}).expect(http.StatusOK).object()
	if got["dedicated_gateway"] != true {
		t.Errorf("PATCH response = %v, want dedicated_gateway true", got)
	}
	if got := f.env.do(http.MethodGet, path, f.developer, nil).expect(http.StatusOK).object(); got["dedicated_gateway"] != true {
		t.Errorf("routing after PATCH = %v, want dedicated_gateway true", got)
	}
	orgs, err := f.env.store.DedicatedGatewayOrgs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{f.orgGUID}, orgs); diff != "" {
		t.Errorf("DedicatedGatewayOrgs (-want +got):\n%s", diff)
	}
	events := f.events(f.orgGUID)
	if last := events[len(events)-1]; last.Type != "audit.organization.update" {
		t.Errorf("last organization event = %+v, want audit.organization.update", last)
	}

	f.env.do(http.MethodPatch, path, f.admin, map[string]any{"dedicated_gateway": false}).expect(http.StatusOK)
	if orgs, _ := f.env.store.DedicatedGatewayOrgs(context.Background()); len(orgs) != 0 {
		t.Errorf("DedicatedGatewayOrgs after turning it off = %v, want none", orgs)
	}
}

func TestOrganizationRoutingRejectsBadPatch(t *testing.T) {
	f := newAppFixture(t)
	path := "/v3/organizations/" + f.orgGUID + "/routing"

	for _, token := range []string{f.orgManager, f.developer} {
		_, title, _ := f.env.do(http.MethodPatch, path, token, map[string]any{"dedicated_gateway": true}).expect(http.StatusForbidden).cfError()
		if title != "CF-NotAuthorized" {
			t.Errorf("PATCH by a non-admin: title = %q, want CF-NotAuthorized", title)
		}
	}
	f.env.do(http.MethodPatch, path, f.stranger, map[string]any{"dedicated_gateway": true}).expect(http.StatusNotFound)

	cases := []struct {
		name     string
		body     any
		contains []string
	}{
		{"other key", map[string]any{"dedicated_gateway": true, "listeners": 2}, []string{"'listeners'", "'dedicated_gateway'"}},
		{"string value", map[string]any{"dedicated_gateway": "yes"}, []string{"Dedicated_gateway must be a boolean"}},
		{"null value", map[string]any{"dedicated_gateway": nil}, []string{"Dedicated_gateway must be a boolean"}},
		{"missing key", map[string]any{}, []string{"Dedicated_gateway is required"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, detail := f.env.do(http.MethodPatch, path, f.admin, c.body).expect(http.StatusUnprocessableEntity).cfError()
			for _, part := range c.contains {
				if !strings.Contains(detail, part) {
					t.Errorf("detail = %q, want it to contain %q", detail, part)
				}
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM organizations WHERE dedicated_gateway`); n != 0 {
		t.Errorf("organizations with a dedicated gateway after rejected requests = %d, want 0", n)
	}
}
