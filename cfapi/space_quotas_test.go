package cfapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/auth"
)

// spaceQuotaBody is a create request for a space quota in orgGUID.
func spaceQuotaBody(name, orgGUID string, extra map[string]any) map[string]any {
	body := map[string]any{
		"name":          name,
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": orgGUID}}},
	}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// createSpaceQuota creates a space quota as admin.
func (f *quotaFixture) createSpaceQuota(name, orgGUID string, extra map[string]any) spaceQuotaJSON {
	f.t.Helper()
	var q spaceQuotaJSON
	f.do(http.MethodPost, "/v3/space_quotas", f.admin, spaceQuotaBody(name, orgGUID, extra)).expect(http.StatusCreated).decode(&q)
	return q
}

func spacesData(guids ...string) map[string]any {
	data := []any{}
	for _, g := range guids {
		data = append(data, map[string]any{"guid": g})
	}
	return map[string]any{"data": data}
}

func spaceQuotaNames(quotas []spaceQuotaJSON) []string {
	names := []string{}
	for _, q := range quotas {
		names = append(names, q.Name)
	}
	return names
}

func TestSpaceQuotaCreateJSON(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	sp := f.space(org, "s1")

	resp := f.do(http.MethodPost, "/v3/space_quotas", f.admin, spaceQuotaBody("small", org, map[string]any{
		"apps":          map[string]any{"total_memory_in_mb": 512},
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(sp)},
	})).expect(http.StatusCreated)
	got := resp.object()
	guid, _ := got["guid"].(string)
	for _, key := range []string{"created_at", "updated_at"} {
		if s, _ := got[key].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(s) {
			t.Errorf("%s = %v, want an RFC 3339 UTC timestamp", key, got[key])
		}
		delete(got, key)
	}
	want := map[string]any{
		"guid": guid,
		"name": "small",
		"apps": map[string]any{"total_memory_in_mb": 512.0, "per_process_memory_in_mb": nil, "total_instances": nil,
			"per_app_tasks": nil, "log_rate_limit_in_bytes_per_second": nil},
		"services": map[string]any{"paid_services_allowed": true, "total_service_instances": nil, "total_service_keys": nil},
		"routes":   map[string]any{"total_routes": nil, "total_reserved_ports": nil},
		"relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": org}},
			"spaces":       map[string]any{"data": []any{map[string]any{"guid": sp}}},
		},
		"links": map[string]any{
			"self":         map[string]any{"href": f.server.URL + "/v3/space_quotas/" + guid},
			"organization": map[string]any{"href": f.server.URL + "/v3/organizations/" + org},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created space quota (-want +got):\n%s", diff)
	}

	if n := f.count(`SELECT count(*) FROM spaces WHERE guid = $1 AND quota_guid = $2`, sp, guid); n != 1 {
		t.Errorf("space %s does not use the new quota", sp)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.create' AND target_guid = $1
		AND organization_guid = $2 AND data->'request'->'relationships'->'spaces'->'data'->0->>'guid' = $3`, guid, org, sp); n != 1 {
		t.Errorf("create events = %d, want 1 with the request's spaces", n)
	}
}

func TestSpaceQuotaCreateByRole(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	suspended := f.org("suspended")
	f.exec(`UPDATE organizations SET suspended = true WHERE guid = $1`, suspended)

	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	f.grant(managerGUID, roleOrgManager, suspended, "")
	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", f.space(org, "dev"))
	auditorGUID, orgAuditor := f.newUser("org-auditor")
	f.grant(auditorGUID, roleOrgAuditor, org, "")
	_, stranger := f.newUser("stranger")
	_, readOnlyAdmin := f.newUser("ro-admin", auth.ScopeAdminReadOnly)

	noOrg := "Organization with guid '" + org + "' does not exist, or you do not have access to it."
	tests := []struct {
		name   string
		token  string
		org    string
		status int
		detail string
	}{
		{"org manager", manager, org, http.StatusCreated, ""},
		{"manager of a suspended org", manager, suspended, http.StatusForbidden, "The organization is suspended"},
		{"space developer", developer, org, http.StatusForbidden, "You are not authorized to perform the requested action"},
		{"org auditor", orgAuditor, org, http.StatusForbidden, "You are not authorized to perform the requested action"},
		{"stranger", stranger, org, http.StatusUnprocessableEntity, noOrg},
		{"admin read-only", readOnlyAdmin, org, http.StatusForbidden, "You are not authorized to perform the requested action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			before := f.count(`SELECT count(*) FROM space_quotas`)
			resp := f.do(http.MethodPost, "/v3/space_quotas", tt.token, spaceQuotaBody("q-"+strings.ReplaceAll(tt.name, " ", "-"), tt.org, nil))
			resp.expect(tt.status)
			if tt.status == http.StatusCreated {
				return
			}
			if _, _, detail := resp.cfError(); detail != tt.detail {
				t.Errorf("detail = %q, want %q", detail, tt.detail)
			}
			if after := f.count(`SELECT count(*) FROM space_quotas`); after != before {
				t.Errorf("space quotas = %d, want %d", after, before)
			}
		})
	}
}

func TestSpaceQuotaCreateInvalid(t *testing.T) {
	f := newQuotaFixture(t)
	org, other := f.org("o1"), f.org("o2")
	foreign := f.space(other, "foreign")
	f.createSpaceQuota("small", org, nil)
	f.createOrgQuota(map[string]any{"name": "ports", "routes": map[string]any{"total_reserved_ports": 2},
		"relationships": map[string]any{"organizations": map[string]any{"data": []any{map[string]any{"guid": other}}}}})
	const unprocessable = "CF-UnprocessableEntity"
	orgShape := `Relationships.organization must be structured like this: {"data": {"guid": "valid-guid"}}`

	tests := []struct {
		name   string
		body   any
		detail string
	}{
		{"no relationships", map[string]any{"name": "q"}, orgShape},
		{"organization without data", map[string]any{"name": "q", "relationships": map[string]any{"organization": map[string]any{}}}, orgShape},
		{"unknown organization", spaceQuotaBody("q", "nope", nil), "Organization with guid 'nope' does not exist, or you do not have access to it."},
		{"duplicate name", spaceQuotaBody("small", org, nil), "Space Quota 'small' already exists."},
		{"domains", spaceQuotaBody("q", org, map[string]any{"domains": map[string]any{"total_domains": 1}}), "Unknown field(s): 'domains'"},
		{"negative instances", spaceQuotaBody("q", org, map[string]any{"apps": map[string]any{"total_instances": -1}}),
			"Apps.total_instances must be an integer from 0 to 2147483647, or null for unlimited"},
		{"no name", map[string]any{"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}},
			"Name can't be blank"},
		{"space of another organization", spaceQuotaBody("q", org, map[string]any{"relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(foreign)}}),
			`Spaces with guids ["` + foreign + `"] do not exist within the organization specified, or you do not have access to them.`},
		{"reserved ports above the organization quota", spaceQuotaBody("q", other, map[string]any{"routes": map[string]any{"total_reserved_ports": 3}}),
			"Routes.total_reserved_ports must be less than or equal to the organization quota's total_reserved_ports (2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			expectQuotaError(t, f.do(http.MethodPost, "/v3/space_quotas", f.admin, tt.body), http.StatusUnprocessableEntity, unprocessable, tt.detail)
			if n := f.count(`SELECT count(*) FROM space_quotas`); n != 1 {
				t.Errorf("space quotas = %d, want 1", n)
			}
			if n := f.count(`SELECT count(*) FROM spaces WHERE quota_guid IS NOT NULL`); n != 0 {
				t.Errorf("spaces with a quota = %d, want 0", n)
			}
		})
	}

	f.createSpaceQuota("small", other, nil)
	f.createSpaceQuota("Small", org, nil)
	f.createSpaceQuota("two-ports", other, map[string]any{"routes": map[string]any{"total_reserved_ports": 2}})
}

func TestSpaceQuotaListAndVisibility(t *testing.T) {
	f := newQuotaFixture(t)
	org, other := f.org("o1"), f.org("o2")
	dev, ops := f.space(org, "dev"), f.space(org, "ops")
	applied := f.createSpaceQuota("applied", org, map[string]any{"relationships": map[string]any{
		"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(dev, ops)}})
	unapplied := f.createSpaceQuota("unapplied", org, nil)
	elsewhere := f.createSpaceQuota("elsewhere", other, nil)

	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", dev)
	auditorGUID, orgAuditor := f.newUser("org-auditor")
	f.grant(auditorGUID, roleOrgAuditor, org, "")
	_, globalAuditor := f.newUser("global-auditor", auth.ScopeGlobalAuditor)

	tests := []struct {
		name       string
		token      string
		query      string
		wantNames  []string
		wantSpaces []string
	}{
		{"admin", f.admin, "", []string{"applied", "unapplied", "elsewhere"}, []string{dev, ops}},
		{"global auditor", globalAuditor, "", []string{"applied", "unapplied", "elsewhere"}, []string{dev, ops}},
		{"org manager", manager, "", []string{"applied", "unapplied"}, []string{dev, ops}},
		{"space developer", developer, "", []string{"applied"}, []string{dev}},
		{"org auditor", orgAuditor, "", []string{}, nil},
		{"names", f.admin, "?names=unapplied,Applied", []string{"unapplied"}, nil},
		{"organization guids", f.admin, "?organization_guids=" + other, []string{"elsewhere"}, nil},
		{"space guids", f.admin, "?space_guids=" + ops, []string{"applied"}, []string{dev, ops}},
		{"guids", f.admin, "?guids=" + unapplied.GUID + "," + elsewhere.GUID, []string{"unapplied", "elsewhere"}, nil},
		{"newest first", f.admin, "?order_by=-created_at", []string{"elsewhere", "unapplied", "applied"}, nil},
		{"invisible space", developer, "?space_guids=" + ops, []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			var body struct {
				Resources []spaceQuotaJSON `json:"resources"`
			}
			f.do(http.MethodGet, "/v3/space_quotas"+tt.query, tt.token, nil).expect(http.StatusOK).decode(&body)
			if diff := cmp.Diff(tt.wantNames, spaceQuotaNames(body.Resources)); diff != "" {
				t.Errorf("quotas (-want +got):\n%s", diff)
			}
			if tt.wantSpaces != nil && len(body.Resources) > 0 {
				if diff := cmp.Diff(tt.wantSpaces, quotaGUIDsOf(body.Resources[0].Relationships.Spaces.Data)); diff != "" {
					t.Errorf("spaces of %s (-want +got):\n%s", body.Resources[0].Name, diff)
				}
			}
		})
	}

	var fetched spaceQuotaJSON
	f.do(http.MethodGet, "/v3/space_quotas/"+applied.GUID, developer, nil).expect(http.StatusOK).decode(&fetched)
	if diff := cmp.Diff([]string{dev}, quotaGUIDsOf(fetched.Relationships.Spaces.Data)); diff != "" {
		t.Errorf("spaces the developer sees (-want +got):\n%s", diff)
	}
	for _, guid := range []string{unapplied.GUID, elsewhere.GUID, "nope"} {
		expectQuotaError(t, f.do(http.MethodGet, "/v3/space_quotas/"+guid, developer, nil), http.StatusNotFound,
			"CF-ResourceNotFound", "Space quota not found")
	}
}

func TestSpaceQuotaUpdate(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	dev := f.space(org, "dev")
	q := f.createSpaceQuota("small", org, map[string]any{
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(dev)},
		"routes":        map[string]any{"total_routes": 10}})
	f.createSpaceQuota("large", org, nil)
	path := "/v3/space_quotas/" + q.GUID

	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", dev)
	_, stranger := f.newUser("stranger")

	var updated spaceQuotaJSON
	f.do(http.MethodPatch, path, manager, map[string]any{"name": "medium", "apps": map[string]any{"per_process_memory_in_mb": 256}}).
		expect(http.StatusOK).decode(&updated)
	if updated.Name != "medium" {
		t.Errorf("name = %q, want medium", updated.Name)
	}
	if m := updated.Apps.PerProcessMemoryInMB; m == nil || *m != 256 {
		t.Errorf("apps.per_process_memory_in_mb = %v, want 256", m)
	}
	if r := updated.Routes.TotalRoutes; r == nil || *r != 10 {
		t.Errorf("routes.total_routes = %v, want 10 (unchanged)", r)
	}

	bad := []struct {
		name   string
		token  string
		body   any
		status int
		detail string
	}{
		{"duplicate name", manager, map[string]any{"name": "large"}, http.StatusUnprocessableEntity, "Space Quota 'large' already exists."},
		{"domains", manager, map[string]any{"domains": map[string]any{}}, http.StatusUnprocessableEntity, "Unknown field(s): 'domains'"},
		{"string limit", manager, map[string]any{"routes": map[string]any{"total_routes": "10"}}, http.StatusUnprocessableEntity,
			"Routes.total_routes must be an integer from 0 to 2147483647, or null for unlimited"},
		{"space developer", developer, map[string]any{"name": "x"}, http.StatusForbidden, "You are not authorized to perform the requested action"},
		{"stranger", stranger, map[string]any{"name": "x"}, http.StatusNotFound, "Space quota not found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			resp := f.do(http.MethodPatch, path, tt.token, tt.body).expect(tt.status)
			if _, _, detail := resp.cfError(); detail != tt.detail {
				t.Errorf("detail = %q, want %q", detail, tt.detail)
			}
			var now spaceQuotaJSON
			f.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&now)
			if diff := cmp.Diff(updated, now); diff != "" {
				t.Errorf("quota changed by a rejected update (-before +after):\n%s", diff)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.update' AND target_name = 'medium' AND organization_guid = $1`, org); n != 1 {
		t.Errorf("update events = %d, want 1", n)
	}
}

func TestSpaceQuotaDelete(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	dev := f.space(org, "dev")
	applied := f.createSpaceQuota("applied", org, map[string]any{"relationships": map[string]any{
		"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(dev)}})
	unused := f.createSpaceQuota("unused", org, nil)
	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", dev)

	expectQuotaError(t, f.do(http.MethodDelete, "/v3/space_quotas/"+applied.GUID, manager, nil), http.StatusUnprocessableEntity,
		"CF-UnprocessableEntity", "This quota is applied to one or more spaces. Remove this quota from all spaces before deleting.")
	f.do(http.MethodDelete, "/v3/space_quotas/"+applied.GUID, developer, nil).expect(http.StatusForbidden)
	expectQuotaError(t, f.do(http.MethodDelete, "/v3/space_quotas/"+unused.GUID, developer, nil), http.StatusNotFound,
		"CF-ResourceNotFound", "Space quota not found")
	if n := f.count(`SELECT count(*) FROM space_quotas`); n != 2 {
		t.Fatalf("space quotas after rejected deletes = %d, want 2", n)
	}

	resp := f.do(http.MethodDelete, "/v3/space_quotas/"+unused.GUID, manager, nil).expect(http.StatusAccepted)
	jobGUID, found := strings.CutPrefix(resp.Header.Get("Location"), f.server.URL+"/v3/jobs/")
	if !found {
		t.Fatalf("Location = %q, want a job URL", resp.Header.Get("Location"))
	}
	if n := f.count(`SELECT count(*) FROM jobs WHERE guid = $1 AND state = 'COMPLETE' AND operation = 'space_quota.delete'`, jobGUID); n != 1 {
		t.Errorf("complete delete jobs = %d, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM space_quotas WHERE guid = $1`, unused.GUID); n != 0 {
		t.Errorf("deleted quota rows = %d, want 0", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.delete' AND target_guid = $1`, unused.GUID); n != 1 {
		t.Errorf("delete events = %d, want 1", n)
	}
}

func TestSpaceQuotaApplyAndRemove(t *testing.T) {
	f := newQuotaFixture(t)
	org, other := f.org("o1"), f.org("o2")
	s1, s2, s3 := f.space(org, "s1"), f.space(org, "s2"), f.space(org, "s3")
	foreign, hidden := f.space(other, "foreign"), f.space(other, "hidden")
	q := f.createSpaceQuota("small", org, map[string]any{"relationships": map[string]any{
		"organization": map[string]any{"data": map[string]any{"guid": org}}, "spaces": spacesData(s1)}})
	path := "/v3/space_quotas/" + q.GUID + "/relationships/spaces"

	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	f.grant(managerGUID, roleSpaceAuditor, "", foreign)
	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", s1)

	var applied quotaRelationshipJSON
	f.do(http.MethodPost, path, manager, map[string]any{"data": []any{map[string]any{"guid": s2}, map[string]any{"guid": s3}}}).
		expect(http.StatusOK).decode(&applied)
	if diff := cmp.Diff([]string{s1, s2, s3}, quotaGUIDsOf(applied.Data)); diff != "" {
		t.Errorf("spaces (-want +got):\n%s", diff)
	}
	if applied.Links.Self.Href != f.server.URL+path {
		t.Errorf("links.self = %q, want %q", applied.Links.Self.Href, f.server.URL+path)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.apply' AND space_guid IN ($1, $2)`, s2, s3); n != 2 {
		t.Errorf("apply events = %d, want 2", n)
	}

	bad := []struct {
		name   string
		token  string
		body   any
		status int
		detail string
	}{
		{"space of another organization", manager, map[string]any{"data": []any{map[string]any{"guid": foreign}}},
			http.StatusUnprocessableEntity, "Space quotas cannot be applied outside of their owning organization."},
		{"invisible space", manager, map[string]any{"data": []any{map[string]any{"guid": hidden}, map[string]any{"guid": "nope"}}},
			http.StatusUnprocessableEntity, `Spaces with guids ["` + hidden + `", "nope"] do not exist, or you do not have access to them.`},
		{"empty data", manager, map[string]any{"data": []any{}}, http.StatusUnprocessableEntity,
			`Data must name one or more resources, as in [{"guid": "valid-guid"}]`},
		{"space developer", developer, map[string]any{"data": []any{map[string]any{"guid": s1}}}, http.StatusForbidden,
			"You are not authorized to perform the requested action"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			resp := f.do(http.MethodPost, path, tt.token, tt.body).expect(tt.status)
			if _, _, detail := resp.cfError(); detail != tt.detail {
				t.Errorf("detail = %q, want %q", detail, tt.detail)
			}
			if n := f.count(`SELECT count(*) FROM spaces WHERE quota_guid = $1`, q.GUID); n != 3 {
				t.Errorf("spaces on the quota = %d, want 3", n)
			}
		})
	}

	f.do(http.MethodDelete, path+"/"+s2, developer, nil).expect(http.StatusForbidden)
	f.do(http.MethodDelete, path+"/"+s2, manager, nil).expect(http.StatusNoContent)
	if n := f.count(`SELECT count(*) FROM spaces WHERE guid = $1 AND quota_guid IS NULL`, s2); n != 1 {
		t.Errorf("space %s still uses the quota", s2)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.remove' AND space_guid = $1`, s2); n != 1 {
		t.Errorf("remove events = %d, want 1", n)
	}
	expectQuotaError(t, f.do(http.MethodDelete, path+"/"+s2, manager, nil), http.StatusUnprocessableEntity, "CF-UnprocessableEntity",
		"Unable to remove quota from space with guid '"+s2+"'. Ensure the space quota is applied to this space.")
}

// The requests below follow the cf CLI's v7 create-space-quota,
// space-quotas, set-space-quota, unset-space-quota and delete-space-quota
// as an org manager with the organization targeted.
func TestSpaceQuotaCLISequence(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("myorg")
	sp := f.space(org, "dev")
	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")

	// cf create-space-quota small -m 512M -r 10: the CLI marshals a map, so
	// keys arrive sorted, and sends 0 for the limits it defaults.
	body := `{"apps":{"total_memory_in_mb":512},"name":"small","relationships":{"organization":{"data":{"guid":"` + org + `"}}},` +
		`"routes":{"total_reserved_ports":0,"total_routes":10},"services":{"paid_services_allowed":false,"total_service_instances":0}}`
	var created spaceQuotaJSON
	f.do(http.MethodPost, "/v3/space_quotas", manager, body).expect(http.StatusCreated).decode(&created)
	if created.Relationships.Organization.Data == nil || created.Relationships.Organization.Data.GUID != org {
		t.Errorf("relationships.organization = %+v, want %s", created.Relationships.Organization, org)
	}
	resp := f.do(http.MethodPost, "/v3/space_quotas", manager, body).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !regexp.MustCompile(`.* Quota '.*' already exists\.`).MatchString(detail) {
		t.Errorf("duplicate detail %q does not match the cf CLI's pattern", detail)
	}

	// cf space-quotas lists the targeted organization's quotas.
	var list struct {
		Resources []spaceQuotaJSON `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/space_quotas?organization_guids="+org, manager, nil).expect(http.StatusOK).decode(&list)
	if diff := cmp.Diff([]string{"small"}, spaceQuotaNames(list.Resources)); diff != "" {
		t.Errorf("space-quotas (-want +got):\n%s", diff)
	}

	// cf set-space-quota dev small: find the space, find the quota by name
	// in the organization, apply.
	var spaces struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/spaces?names=dev&organization_guids="+org+"&page=1&per_page=1", manager, nil).expect(http.StatusOK).decode(&spaces)
	if len(spaces.Resources) != 1 || spaces.Resources[0].GUID != sp {
		t.Fatalf("space lookup = %v, want %s", spaces.Resources, sp)
	}
	lookup := "/v3/space_quotas?names=small&organization_guids=" + org + "&page=1&per_page=1"
	f.do(http.MethodGet, lookup, manager, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 {
		t.Fatalf("quota lookup found %d quotas, want 1", len(list.Resources))
	}
	quotaGUID := list.Resources[0].GUID
	var applied struct {
		Data []map[string]string `json:"data"`
	}
	f.do(http.MethodPost, "/v3/space_quotas/"+quotaGUID+"/relationships/spaces", manager, `{"data":[{"guid":"`+sp+`"}]}`).
		expect(http.StatusOK).decode(&applied)
	if len(applied.Data) != 1 || applied.Data[0]["guid"] != sp {
		t.Errorf("applied data = %v, want [{guid: %s}]", applied.Data, sp)
	}

	// cf unset-space-quota dev small.
	f.do(http.MethodDelete, "/v3/space_quotas/"+quotaGUID+"/relationships/spaces/"+sp, manager, nil).expect(http.StatusNoContent)

	// cf delete-space-quota small -f: look up, delete, poll the job.
	resp = f.do(http.MethodDelete, "/v3/space_quotas/"+quotaGUID, manager, nil).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	var job struct {
		State string `json:"state"`
	}
	f.do(http.MethodGet, strings.TrimPrefix(location, f.server.URL), manager, nil).expect(http.StatusOK).decode(&job)
	if job.State != "COMPLETE" {
		t.Errorf("job state = %q, want COMPLETE", job.State)
	}
	f.do(http.MethodGet, lookup, manager, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 0 {
		t.Errorf("quotas named small after delete = %d, want 0", len(list.Resources))
	}
}
