package cfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// auditEventsFixture records one event per scope: org-level, one per space
// and one with neither, at fixed times a minute apart.
type auditEventsFixture struct {
	orgGUID, devGUID, prodGUID, otherOrgGUID                  string
	orgEvent, devEvent, prodEvent, globalEvent, otherOrgEvent string
	base                                                      time.Time
}

func seedAuditEvents(t *testing.T, env *roleTestEnv) auditEventsFixture {
	t.Helper()
	f := auditEventsFixture{base: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	f.orgGUID = env.org("acme")
	f.devGUID = env.space(f.orgGUID, "dev")
	f.prodGUID = env.space(f.orgGUID, "prod")
	f.otherOrgGUID = env.org("other")

	record := func(guid, eventType, target, space, org string, minute int) string {
		ev := store.AuditEvent{GUID: guid, Type: eventType, ActorGUID: "admin-guid", ActorType: "user", ActorName: "admin",
			TargetGUID: target, TargetType: "app", TargetName: "app-" + guid, SpaceGUID: space, OrganizationGUID: org,
			Data: map[string]any{"request": map[string]any{"instances": float64(minute)}}}
		if err := store.RecordAuditEvent(context.Background(), env.store.DB(), ev); err != nil {
			t.Fatal(err)
		}
		at := f.base.Add(time.Duration(minute)*time.Minute + 250*time.Millisecond)
		env.exec(`UPDATE audit_events SET created_at = $2, updated_at = $2 WHERE guid = $1`, guid, at)
		return guid
	}
	f.orgEvent = record("e-org", "audit.organization.update", f.orgGUID, "", f.orgGUID, 0)
	f.devEvent = record("e-dev", "audit.app.update", "app-1", f.devGUID, f.orgGUID, 1)
	f.prodEvent = record("e-prod", "audit.app.create", "app-2", f.prodGUID, f.orgGUID, 2)
	f.globalEvent = record("e-global", "audit.service_broker.create", "broker", "", "", 3)
	f.otherOrgEvent = record("e-other", "audit.app.update", "app-1", "", f.otherOrgGUID, 4)
	return f
}

type auditEventList struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
	} `json:"pagination"`
	Resources []struct {
		GUID string `json:"guid"`
	} `json:"resources"`
}

func (l auditEventList) guids() string {
	var out []string
	for _, r := range l.Resources {
		out = append(out, r.GUID)
	}
	return strings.Join(out, ",")
}

func TestAuditEventsListFilters(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	f := seedAuditEvents(t, env)

	cases := []struct {
		name  string
		query string
		want  string
	}{
		{"all in creation order", "", "e-org,e-dev,e-prod,e-global,e-other"},
		{"newest first as cf events asks", "?order_by=-created_at&page=1", "e-other,e-global,e-prod,e-dev,e-org"},
		{"types", "?types=audit.app.update,audit.app.create", "e-dev,e-prod,e-other"},
		{"target_guids", "?target_guids=app-1", "e-dev,e-other"},
		{"target_guids not", "?target_guids[not]=app-1,broker", "e-org,e-prod"},
		{"space_guids", "?space_guids=" + f.prodGUID, "e-prod"},
		{"organization_guids", "?organization_guids=" + f.orgGUID, "e-org,e-dev,e-prod"},
		{"guids", "?guids=e-global,e-org", "e-org,e-global"},
		{"created_ats equal covers the second", "?created_ats=2024-05-01T12:01:00Z", "e-dev"},
		{"created_ats several", "?created_ats=2024-05-01T12:01:00Z,2024-05-01T12:03:00Z", "e-dev,e-global"},
		{"created_ats lt", "?created_ats[lt]=2024-05-01T12:01:00Z", "e-org"},
		{"created_ats lte", "?created_ats[lte]=2024-05-01T12:01:00Z", "e-org,e-dev"},
		{"created_ats gt", "?created_ats[gt]=2024-05-01T12:03:00Z", "e-other"},
		{"created_ats gte", "?created_ats[gte]=2024-05-01T12:03:00Z", "e-global,e-other"},
		{"created_ats range", "?created_ats[gt]=2024-05-01T12:00:00Z&created_ats[lt]=2024-05-01T12:03:00Z", "e-dev,e-prod"},
		{"updated_ats", "?updated_ats[gte]=2024-05-01T12:04:00Z", "e-other"},
		{"combined", "?types=audit.app.update&organization_guids=" + f.orgGUID, "e-dev"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got auditEventList
			env.do(http.MethodGet, "/v3/audit_events"+tc.query, admin, nil).expect(http.StatusOK).decode(&got)
			if got.guids() != tc.want {
				t.Errorf("events = %s, want %s", got.guids(), tc.want)
			}
		})
	}

	bad := map[string]string{
		"?created_ats=2024-05-01":                                    "The query parameter is invalid: Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'",
		"?created_ats[lt]=2024-05-01T12:00:00Z,2024-05-01T13:00:00Z": "The query parameter is invalid: Created ats only accepts one value when using a relational operator",
		"?updated_ats[gt]=2024-13-01T12:00:00Z":                      "The query parameter is invalid: Updated ats has an invalid timestamp: '2024-13-01T12:00:00Z'",
		"?order_by=type":                                             "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'",
	}
	for query, detail := range bad {
		t.Run("bad "+query, func(t *testing.T) {
			expectCFError(t, env.do(http.MethodGet, "/v3/audit_events"+query, admin, nil), http.StatusBadRequest, "CF-BadQueryParameter", detail)
		})
	}
	env.do(http.MethodGet, "/v3/audit_events?created_ats[eq]=2024-05-01T12:00:00Z", admin, nil).expect(http.StatusBadRequest)
}

func TestAuditEventsVisibility(t *testing.T) {
	env := newRoleTestEnv(t)
	f := seedAuditEvents(t, env)

	type member struct{ roleType, target string }
	cases := []struct {
		name  string
		roles []member
		want  string
	}{
		{"org auditor sees the org and its spaces", []member{{"organization_auditor", f.orgGUID}}, "e-org,e-dev,e-prod"},
		{"org manager sees nothing", []member{{"organization_manager", f.orgGUID}}, ""},
		{"org user sees nothing", []member{{"organization_user", f.orgGUID}}, ""},
		{"space developer sees the space", []member{{"organization_user", f.orgGUID}, {"space_developer", f.devGUID}}, "e-dev"},
		{"space auditor sees the space", []member{{"organization_user", f.orgGUID}, {"space_auditor", f.prodGUID}}, "e-prod"},
		{"space supporter sees the space", []member{{"organization_user", f.orgGUID}, {"space_supporter", f.devGUID}}, "e-dev"},
		{"space manager sees nothing", []member{{"organization_user", f.orgGUID}, {"space_manager", f.devGUID}}, ""},
		{"no roles", nil, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			guid, token := env.person("user-" + string(rune('a'+i)))
			for _, m := range tc.roles {
				env.grant(guid, m.roleType, m.target)
			}
			var got auditEventList
			env.do(http.MethodGet, "/v3/audit_events", token, nil).expect(http.StatusOK).decode(&got)
			if got.guids() != tc.want || got.Pagination.TotalResults != len(got.Resources) {
				t.Errorf("events = %q (total %d), want %q", got.guids(), got.Pagination.TotalResults, tc.want)
			}
		})
	}

	for _, scope := range []string{auth.ScopeAdminReadOnly, auth.ScopeGlobalAuditor} {
		_, token := env.person("reader-"+scope, scope)
		var got auditEventList
		env.do(http.MethodGet, "/v3/audit_events", token, nil).expect(http.StatusOK).decode(&got)
		if got.Pagination.TotalResults != 5 {
			t.Errorf("%s sees %d events, want 5", scope, got.Pagination.TotalResults)
		}
	}
}

func TestAuditEventsGet(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	f := seedAuditEvents(t, env)
	developer, developerToken := env.person("developer")
	env.grant(developer, "organization_user", f.orgGUID)
	env.grant(developer, "space_developer", f.devGUID)

	var ev map[string]any
	env.do(http.MethodGet, "/v3/audit_events/"+f.devEvent, developerToken, nil).expect(http.StatusOK).decode(&ev)
	want := map[string]any{
		"guid":         "e-dev",
		"created_at":   "2024-05-01T12:01:00Z",
		"type":         "audit.app.update",
		"actor":        map[string]any{"guid": "admin-guid", "type": "user", "name": "admin"},
		"target":       map[string]any{"guid": "app-1", "type": "app", "name": "app-e-dev"},
		"data":         map[string]any{"request": map[string]any{"instances": float64(1)}},
		"space":        map[string]any{"guid": f.devGUID},
		"organization": map[string]any{"guid": f.orgGUID},
		"links":        map[string]any{"self": map[string]any{"href": env.server.URL + "/v3/audit_events/e-dev"}},
	}
	for key, value := range want {
		if !sameJSON(t, ev[key], value) {
			t.Errorf("%s = %v, want %v", key, ev[key], value)
		}
	}

	var global map[string]any
	env.do(http.MethodGet, "/v3/audit_events/"+f.globalEvent, admin, nil).expect(http.StatusOK).decode(&global)
	if global["space"] != nil || global["organization"] != nil {
		t.Errorf("space/organization of an event outside orgs = %v / %v, want null", global["space"], global["organization"])
	}

	expectCFError(t, env.do(http.MethodGet, "/v3/audit_events/"+f.prodEvent, developerToken, nil), http.StatusNotFound, "CF-ResourceNotFound", "Event not found")
	expectCFError(t, env.do(http.MethodGet, "/v3/audit_events/nope", admin, nil), http.StatusNotFound, "CF-ResourceNotFound", "Event not found")
	env.do(http.MethodGet, "/v3/audit_events", "", nil).expect(http.StatusUnauthorized)
}

// sameJSON reports whether a and b encode to the same JSON.
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
