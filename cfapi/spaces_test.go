package cfapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// spaceBody is a POST /v3/spaces body for a space in orgGUID.
func spaceCreateBody(name, orgGUID string) map[string]any {
	return map[string]any{
		"name":          name,
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": orgGUID}}},
	}
}

func TestSpaceCreateAndGet(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgGUID := f.org("acme")

	body := spaceCreateBody("dev", orgGUID)
	body["metadata"] = map[string]any{"labels": map[string]any{"team": "web"}, "annotations": map[string]any{"owner": "jo"}}
	created := env.do(http.MethodPost, "/v3/spaces", f.admin, body).expect(http.StatusCreated).object()

	guid, _ := created["guid"].(string)
	self := env.server.URL + "/v3/spaces/" + guid
	want := map[string]any{
		"guid":       guid,
		"created_at": created["created_at"],
		"updated_at": created["updated_at"],
		"name":       "dev",
		"suspended":  false,
		"relationships": map[string]any{
			"organization": map[string]any{"data": map[string]any{"guid": orgGUID}},
			"quota":        map[string]any{"data": nil},
		},
		"metadata": map[string]any{"labels": map[string]any{"team": "web"}, "annotations": map[string]any{"owner": "jo"}},
		"links": map[string]any{
			"self":           map[string]any{"href": self},
			"features":       map[string]any{"href": self + "/features"},
			"organization":   map[string]any{"href": env.server.URL + "/v3/organizations/" + orgGUID},
			"apply_manifest": map[string]any{"href": self + "/actions/apply_manifest", "method": "POST"},
		},
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created space (-want +got):\n%s", diff)
	}

	got := env.do(http.MethodGet, "/v3/spaces/"+guid, f.admin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GET differs from POST (-post +get):\n%s", diff)
	}

	var withOrg struct {
		Included struct {
			Organizations []organizationJSON `json:"organizations"`
		} `json:"included"`
	}
	env.do(http.MethodGet, "/v3/spaces/"+guid+"?include=organization", f.admin, nil).expect(http.StatusOK).decode(&withOrg)
	if len(withOrg.Included.Organizations) != 1 || withOrg.Included.Organizations[0].Name != "acme" {
		t.Errorf("included organizations = %+v", withOrg.Included.Organizations)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/"+guid+"?include=apps", f.admin, nil), http.StatusBadRequest, 10005,
		"The query parameter is invalid: Invalid included resource: 'apps'. Valid included resources are: 'organization'")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/"+guid+"?page=2", f.admin, nil), http.StatusBadRequest, 10005,
		"The query parameter is invalid: Unknown query parameter(s): 'page'. Valid parameters are: 'include'")

	events := f.events(guid)
	if len(events) != 1 || events[0].Type != "audit.space.create" || events[0].SpaceGUID != guid || events[0].OrgGUID != orgGUID {
		t.Fatalf("audit events = %+v", events)
	}
	request, _ := events[0].Data["request"].(map[string]any)
	if request["name"] != "dev" || request["relationships"] == nil {
		t.Errorf("audit data.request = %v", request)
	}
}

func TestSpaceCreateRejectsBadInput(t *testing.T) {
	f := newTenancyFixture(t)
	orgGUID := f.org("acme")
	f.space(orgGUID, "taken")

	withBadLabel := spaceCreateBody("x", orgGUID)
	withBadLabel["metadata"] = map[string]any{"labels": map[string]any{"cloudfoundry.org/x": "v"}}

	tests := []struct {
		name   string
		body   any
		status int
		code   int
		detail string
	}{
		{"malformed JSON", `{"name":`, 400, 1001, "Request invalid due to parse error: the body is not valid JSON"},
		{"unknown field", map[string]any{"name": "x", "org": orgGUID}, 422, 10008, "Unknown field(s): 'org'"},
		{"missing name", map[string]any{"relationships": spaceCreateBody("x", orgGUID)["relationships"]}, 422, 10008,
			"Name is required: send a name of 1 to 255 characters"},
		{"empty name", spaceCreateBody("", orgGUID), 422, 10008, "Name must not be blank"},
		{"256 characters", spaceCreateBody(strings.Repeat("s", 256), orgGUID), 422, 10008, "Name is too long: the maximum is 255 characters"},
		{"missing organization", map[string]any{"name": "x"}, 422, 10008,
			"Relationships.organization is required: send relationships.organization.data.guid with the guid of the space's organization"},
		{"null organization data", map[string]any{"name": "x", "relationships": map[string]any{"organization": map[string]any{"data": nil}}}, 422, 10008,
			"Relationships.organization is required: send relationships.organization.data.guid with the guid of the space's organization"},
		{"unknown organization", spaceCreateBody("x", uuid.NewString()), 422, 10008,
			"Invalid organization. Ensure the organization exists and you have access to it."},
		{"malformed organization guid", spaceCreateBody("x", "not a guid"), 422, 10008,
			"Invalid organization. Ensure the organization exists and you have access to it."},
		{"duplicate name", spaceCreateBody("taken", orgGUID), 422, 10008, "Name must be unique per organization"},
		{"duplicate name other case", spaceCreateBody("TAKEN", orgGUID), 422, 10008, "Name must be unique per organization"},
		{"reserved label prefix", withBadLabel, 422, 10008,
			"Metadata label key 'cloudfoundry.org/x' is invalid: the prefix 'cloudfoundry.org' is reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertTenancyError(t, f.env.do(http.MethodPost, "/v3/spaces", f.admin, tt.body), tt.status, tt.code, tt.detail)
		})
	}
	if n := f.count(`SELECT count(*) FROM spaces`); n != 1 {
		t.Errorf("spaces after rejected requests = %d, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space.create'`); n != 1 {
		t.Errorf("space create events = %d, want 1", n)
	}
}

func TestSpaceNamesAreScopedToTheOrganization(t *testing.T) {
	f := newTenancyFixture(t)
	f.space(f.org("one"), "dev")
	f.space(f.org("two"), "dev")
	if n := f.count(`SELECT count(*) FROM spaces WHERE name = 'dev'`); n != 2 {
		t.Errorf("spaces named dev = %d, want 2", n)
	}
}

func TestSpaceCreatePermissions(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgGUID := f.org("acme")
	other := f.org("other")

	managerGUID, managerToken := env.newUser("manager")
	f.grant(managerGUID, roleOrgManager, orgGUID, "")
	memberGUID, memberToken := env.newUser("member")
	f.grant(memberGUID, roleOrgUser, orgGUID, "")

	env.do(http.MethodPost, "/v3/spaces", managerToken, spaceCreateBody("by-manager", orgGUID)).expect(http.StatusCreated)
	assertTenancyError(t, env.do(http.MethodPost, "/v3/spaces", memberToken, spaceCreateBody("by-member", orgGUID)),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPost, "/v3/spaces", managerToken, spaceCreateBody("elsewhere", other)),
		http.StatusUnprocessableEntity, 10008, "Invalid organization. Ensure the organization exists and you have access to it.")
	assertTenancyError(t, env.do(http.MethodPost, "/v3/spaces", f.scopedToken("ro", auth.ScopeAdminReadOnly), spaceCreateBody("ro", orgGUID)),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")

	env.do(http.MethodPatch, "/v3/organizations/"+orgGUID, f.admin, map[string]any{"suspended": true}).expect(http.StatusOK)
	resp := env.do(http.MethodPost, "/v3/spaces", managerToken, spaceCreateBody("while-suspended", orgGUID)).expect(http.StatusForbidden)
	if _, title, _ := resp.cfError(); title != "CF-OrgSuspended" {
		t.Errorf("title = %s, want CF-OrgSuspended", title)
	}
	env.do(http.MethodPost, "/v3/spaces", f.admin, spaceCreateBody("admin-while-suspended", orgGUID)).expect(http.StatusCreated)
}

func TestSpaceListFiltersIncludeAndOrder(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	acme, globex := f.org("acme"), f.org("globex")
	dev := f.space(acme, "dev")
	f.space(acme, "Prod")
	f.space(globex, "dev")
	f.space(globex, "qa")
	env.do(http.MethodPatch, "/v3/spaces/"+dev, f.admin, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"example.com/team": "web"}},
	}).expect(http.StatusOK)

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"dev", "Prod", "dev", "qa"}},
		{"?order_by=-name", []string{"qa", "Prod", "dev", "dev"}},
		{"?names=DEV", []string{"dev", "dev"}},
		{"?organization_guids=" + globex, []string{"dev", "qa"}},
		{"?organization_guids=" + globex + "," + acme + "&names=prod,qa&order_by=name", []string{"Prod", "qa"}},
		{"?guids=" + dev, []string{"dev"}},
		{"?label_selector=example.com/team=web", []string{"dev"}},
		{"?label_selector=" + url.QueryEscape("example.com/team in (web,api),!other"), []string{"dev"}},
		{"?organization_guids=", []string{}},
		{"?updated_ats[gte]=2999-01-01T00:00:00Z", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, _ := tenancyNames(t, env.do(http.MethodGet, "/v3/spaces"+tt.query, f.admin, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}

	_, body := tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?include=organization&order_by=name", f.admin, nil))
	var included []string
	for _, o := range body.Included["organizations"] {
		included = append(included, o.Name)
	}
	if diff := cmp.Diff([]string{"acme", "globex"}, included); diff != "" {
		t.Errorf("included organizations (-want +got):\n%s", diff)
	}

	_, body = tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?include=organization&organization_guids="+globex, f.admin, nil))
	if orgs := body.Included["organizations"]; len(orgs) != 1 || orgs[0].GUID != globex {
		t.Errorf("included organizations = %+v, want only globex", orgs)
	}

	_, body = tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?include=organization&names=none", f.admin, nil))
	if orgs, ok := body.Included["organizations"]; !ok || len(orgs) != 0 {
		t.Errorf("included organizations of an empty page = %+v, want []", orgs)
	}
}

func TestSpaceListPaginationAndBadQueries(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgGUID := f.org("acme")
	for _, name := range []string{"s1", "s2", "s3"} {
		f.space(orgGUID, name)
	}

	names, body := tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?order_by=name&per_page=2&organization_guids="+orgGUID, f.admin, nil))
	if diff := cmp.Diff([]string{"s1", "s2"}, names); diff != "" {
		t.Errorf("page 1 (-want +got):\n%s", diff)
	}
	wantNext := env.server.URL + "/v3/spaces?order_by=name&organization_guids=" + orgGUID + "&page=2&per_page=2"
	if body.Pagination.Next == nil || body.Pagination.Next.Href != wantNext {
		t.Fatalf("next = %+v, want %s", body.Pagination.Next, wantNext)
	}
	names, body = tenancyNames(t, env.do(http.MethodGet, strings.TrimPrefix(body.Pagination.Next.Href, env.server.URL), f.admin, nil))
	if diff := cmp.Diff([]string{"s3"}, names); diff != "" || body.Pagination.Next != nil {
		t.Errorf("page 2 = %v, next %v (-want +got):\n%s", names, body.Pagination.Next, diff)
	}

	for query, detail := range map[string]string{
		"per_page=0":    "The query parameter is invalid: Per page must be between 1 and 5000",
		"per_page=5001": "The query parameter is invalid: Per page must be between 1 and 5000",
		"include=space": "The query parameter is invalid: Invalid included resource: 'space'. Valid included resources are: 'organization'",
		"space_guids=x": "The query parameter is invalid: Unknown query parameter(s): 'space_guids'. Valid parameters are: " +
			"'page', 'per_page', 'order_by', 'include', 'guids', 'names', 'organization_guids', 'label_selector', 'created_ats', 'updated_ats', " +
			"'created_ats[lt]', 'created_ats[lte]', 'created_ats[gt]', 'created_ats[gte]', " +
			"'updated_ats[lt]', 'updated_ats[lte]', 'updated_ats[gt]', 'updated_ats[gte]'",
		"label_selector=" + url.QueryEscape("a/b/c"): "The query parameter is invalid: label_selector requirement 'a/b/c' is invalid: " +
			"a key has at most one '/', between its prefix and its name",
	} {
		t.Run(query, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces?"+query, f.admin, nil), http.StatusBadRequest, 10005, detail)
		})
	}
}

func TestSpaceVisibility(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	acme, globex := f.org("acme"), f.org("globex")
	acmeDev, acmeProd := f.space(acme, "acme-dev"), f.space(acme, "acme-prod")
	globexDev, globexQA := f.space(globex, "globex-dev"), f.space(globex, "globex-qa")

	developerGUID, developerToken := env.newUser("dev")
	f.grant(developerGUID, roleOrgUser, acme, "")
	f.grant(developerGUID, roleSpaceDeveloper, "", acmeDev)
	f.grant(developerGUID, roleSpaceAuditor, "", globexQA)

	managerGUID, managerToken := env.newUser("mgr")
	f.grant(managerGUID, roleOrgManager, globex, "")

	auditorGUID, auditorToken := env.newUser("aud")
	f.grant(auditorGUID, roleOrgAuditor, acme, "")

	tests := []struct {
		who   string
		token string
		want  []string
	}{
		{"space roles", developerToken, []string{"acme-dev", "globex-qa"}},
		{"org manager", managerToken, []string{"globex-dev", "globex-qa"}},
		{"org auditor", auditorToken, []string{}},
		{"global auditor", f.scopedToken("ga", auth.ScopeGlobalAuditor), []string{"acme-dev", "acme-prod", "globex-dev", "globex-qa"}},
		{"admin", f.admin, []string{"acme-dev", "acme-prod", "globex-dev", "globex-qa"}},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			got, body := tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?order_by=name", tt.token, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("visible spaces (-want +got):\n%s", diff)
			}
			if body.Pagination.TotalResults != len(tt.want) {
				t.Errorf("total_results = %d, want %d", body.Pagination.TotalResults, len(tt.want))
			}
		})
	}

	env.do(http.MethodGet, "/v3/spaces/"+acmeDev, developerToken, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/spaces/"+globexDev, managerToken, nil).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/"+acmeProd, developerToken, nil), http.StatusNotFound, 10010, "Space not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/"+acmeDev, auditorToken, nil), http.StatusNotFound, 10010, "Space not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/"+uuid.NewString(), f.admin, nil), http.StatusNotFound, 10010, "Space not found")

	// Included organizations are those of visible spaces only.
	_, body := tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?include=organization", managerToken, nil))
	if orgs := body.Included["organizations"]; len(orgs) != 1 || orgs[0].GUID != globex {
		t.Errorf("included organizations = %+v, want only globex", orgs)
	}
}

func TestSpaceUpdate(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgGUID := f.org("acme")
	guid := f.space(orgGUID, "dev")
	f.space(orgGUID, "prod")
	path := "/v3/spaces/" + guid

	managerGUID, managerToken := env.newUser("space-manager")
	f.grant(managerGUID, roleSpaceManager, "", guid)
	developerGUID, developerToken := env.newUser("developer")
	f.grant(developerGUID, roleSpaceDeveloper, "", guid)
	orgManagerGUID, orgManagerToken := env.newUser("org-manager")
	f.grant(orgManagerGUID, roleOrgManager, orgGUID, "")
	_, strangerToken := env.newUser("stranger")

	var space spaceJSON
	env.do(http.MethodPatch, path, managerToken, map[string]any{
		"name":     "development",
		"metadata": map[string]any{"labels": map[string]any{"a": "1", "b": "2"}},
	}).expect(http.StatusOK).decode(&space)
	if space.Name != "development" {
		t.Errorf("name = %q", space.Name)
	}
	space = spaceJSON{} // decoding into the old maps would merge keys
	env.do(http.MethodPatch, path, orgManagerToken, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"a": nil, "c": ""}},
	}).expect(http.StatusOK).decode(&space)
	if diff := cmp.Diff(map[string]string{"b": "2", "c": ""}, space.Metadata.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}

	forbidden := "You are not authorized to perform the requested action"
	assertTenancyError(t, env.do(http.MethodPatch, path, developerToken, map[string]any{"name": "x"}), http.StatusForbidden, 10003, forbidden)
	assertTenancyError(t, env.do(http.MethodPatch, path, managerToken, map[string]any{"suspended": false}), http.StatusForbidden, 10003, forbidden)
	assertTenancyError(t, env.do(http.MethodPatch, path, strangerToken, map[string]any{"name": "x"}), http.StatusNotFound, 10010, "Space not found")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, map[string]any{"name": "PROD"}),
		http.StatusUnprocessableEntity, 10008, "Name must be unique per organization")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, map[string]any{"name": strings.Repeat("n", 256)}),
		http.StatusUnprocessableEntity, 10008, "Name is too long: the maximum is 255 characters")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, `{"name": "x", }`),
		http.StatusBadRequest, 1001, "Request invalid due to parse error: the body is not valid JSON")

	// A suspended space: only admins and org managers may change it.
	env.do(http.MethodPatch, path, orgManagerToken, map[string]any{"suspended": true}).expect(http.StatusOK).decode(&space)
	if !space.Suspended {
		t.Fatal("space not suspended")
	}
	resp := env.do(http.MethodPatch, path, managerToken, map[string]any{"name": "again"}).expect(http.StatusForbidden)
	if code, title, _ := resp.cfError(); code != 10019 || title != "CF-SpaceSuspended" {
		t.Errorf("error = %d %s, want 10019 CF-SpaceSuspended", code, title)
	}
	env.do(http.MethodPatch, path, orgManagerToken, map[string]any{"suspended": false}).expect(http.StatusOK)

	var got spaceJSON
	env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&got)
	if got.Name != "development" || got.Suspended {
		t.Errorf("space = %+v, want development, active", got)
	}
	updates := 0
	for _, ev := range f.events(guid) {
		if ev.Type == "audit.space.update" {
			updates++
		}
	}
	if updates != 4 {
		t.Errorf("update events = %d, want 4", updates)
	}
}

func TestSpaceDelete(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	ctx := context.Background()
	orgGUID := f.org("acme")
	guid := f.space(orgGUID, "dev")
	other := f.space(orgGUID, "prod")

	developerGUID, developerToken := env.newUser("developer")
	f.grant(developerGUID, roleSpaceDeveloper, "", guid)
	spaceManagerGUID, spaceManagerToken := env.newUser("space-manager")
	f.grant(spaceManagerGUID, roleSpaceManager, "", guid)
	orgManagerGUID, orgManagerToken := env.newUser("org-manager")
	f.grant(orgManagerGUID, roleOrgManager, orgGUID, "")
	_, strangerToken := env.newUser("stranger")

	forbidden := "You are not authorized to perform the requested action"
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/spaces/"+guid, developerToken, nil), http.StatusForbidden, 10003, forbidden)
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/spaces/"+guid, spaceManagerToken, nil), http.StatusForbidden, 10003, forbidden)
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/spaces/"+guid, strangerToken, nil), http.StatusNotFound, 10010, "Space not found")
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/spaces/"+uuid.NewString(), f.admin, nil), http.StatusNotFound, 10010, "Space not found")

	resp := env.do(http.MethodDelete, "/v3/spaces/"+guid, orgManagerToken, nil).expect(http.StatusAccepted)
	jobGUID, found := strings.CutPrefix(resp.Header.Get("Location"), env.server.URL+"/v3/jobs/")
	if !found {
		t.Fatalf("Location = %q", resp.Header.Get("Location"))
	}
	env.runner.RunPending(ctx)

	job, err := env.store.Job(ctx, jobGUID)
	if err != nil || job.State != store.JobComplete || job.Operation != "space.delete" {
		t.Fatalf("job = %+v, %v; want a COMPLETE space.delete", job, err)
	}
	if n := f.count(`SELECT count(*) FROM spaces WHERE guid = $1`, guid); n != 0 {
		t.Errorf("space left after delete")
	}
	if n := f.count(`SELECT count(*) FROM roles WHERE space_guid = $1`, guid); n != 0 {
		t.Errorf("roles of the space left = %d", n)
	}
	if n := f.count(`SELECT count(*) FROM spaces WHERE guid = $1`, other); n != 1 {
		t.Errorf("other space deleted")
	}
	if err := env.api.runSpaceDelete(ctx, job); err != nil {
		t.Errorf("second run: %v", err)
	}
	events := f.events(guid)
	if last := events[len(events)-1]; last.Type != "audit.space.delete-request" || last.ActorName != "org-manager" {
		t.Errorf("last audit event = %+v", last)
	}
}

func TestSpaceUsageSummary(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgGUID := f.org("acme")
	guid := f.space(orgGUID, "dev")
	base := "/v3/spaces/" + guid
	developerGUID, developerToken := env.newUser("developer")
	f.grant(developerGUID, roleSpaceDeveloper, "", guid)

	usage := env.do(http.MethodGet, base+"/usage_summary", developerToken, nil).expect(http.StatusOK).object()
	want := map[string]any{
		"usage_summary": map[string]any{"started_instances": 0.0, "memory_in_mb": 0.0, "routes": 0.0, "service_instances": 0.0,
			"reserved_ports": 0.0, "domains": 0.0, "per_app_tasks": 0.0, "service_keys": 0.0},
		"links": map[string]any{
			"self":  map[string]any{"href": env.server.URL + base + "/usage_summary"},
			"space": map[string]any{"href": env.server.URL + base},
		},
	}
	if diff := cmp.Diff(want, usage); diff != "" {
		t.Errorf("usage summary (-want +got):\n%s", diff)
	}
	_, strangerToken := env.newUser("stranger")
	assertTenancyError(t, env.do(http.MethodGet, base+"/usage_summary", strangerToken, nil), http.StatusNotFound, 10010, "Space not found")
	assertTenancyError(t, env.do(http.MethodGet, base+"/features", strangerToken, nil), http.StatusNotFound, 10010, "Space not found")
}

// TestCLITenancySequences replays the requests cf create-org, create-space,
// target, orgs, spaces, delete-space and delete-org send, and checks the
// fields the cf CLI reads.
func TestCLITenancySequences(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	ctx := context.Background()

	// cf create-org acme, twice: the second 422 is printed as OK.
	var org organizationJSON
	env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{"name": "acme", "suspended": false}).
		expect(http.StatusCreated).decode(&org)
	assertTenancyError(t, env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{"name": "acme", "suspended": false}),
		http.StatusUnprocessableEntity, 10008, "Organization 'acme' already exists.")

	// cf create-space dev -o acme, twice.
	names, body := tenancyNames(t, env.do(http.MethodGet, "/v3/organizations?names=acme&page=1&per_page=1", f.admin, nil))
	if len(names) != 1 || body.Resources[0].GUID != org.GUID {
		t.Fatalf("org lookup = %v", names)
	}
	var space spaceJSON
	env.do(http.MethodPost, "/v3/spaces", f.admin, spaceCreateBody("dev", org.GUID)).expect(http.StatusCreated).decode(&space)
	if space.Relationships.Organization.Data == nil || space.Relationships.Organization.Data.GUID != org.GUID {
		t.Errorf("space relationships = %+v", space.Relationships)
	}
	assertTenancyError(t, env.do(http.MethodPost, "/v3/spaces", f.admin, spaceCreateBody("dev", org.GUID)),
		http.StatusUnprocessableEntity, 10008, "Name must be unique per organization")

	// cf target -o acme -s dev, cf orgs, cf spaces.
	names, _ = tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?names=dev&organization_guids="+org.GUID+"&page=1&per_page=1", f.admin, nil))
	if len(names) != 1 {
		t.Errorf("space lookup = %v", names)
	}
	names, _ = tenancyNames(t, env.do(http.MethodGet, "/v3/organizations?order_by=name", f.admin, nil))
	if len(names) != 1 || names[0] != "acme" {
		t.Errorf("cf orgs = %v", names)
	}
	names, _ = tenancyNames(t, env.do(http.MethodGet, "/v3/spaces?order_by=name&organization_guids="+org.GUID, f.admin, nil))
	if len(names) != 1 || names[0] != "dev" {
		t.Errorf("cf spaces = %v", names)
	}

	// cf delete-space dev -f and cf delete-org acme -f poll the Location.
	for _, path := range []string{"/v3/spaces/" + space.GUID, "/v3/organizations/" + org.GUID} {
		location := env.do(http.MethodDelete, path, f.admin, nil).expect(http.StatusAccepted).Header.Get("Location")
		env.runner.RunPending(ctx)
		job := env.do(http.MethodGet, strings.TrimPrefix(location, env.server.URL), f.admin, nil).expect(http.StatusOK).object()
		if job["state"] != "COMPLETE" {
			t.Errorf("job of DELETE %s = %v, want COMPLETE", path, job)
		}
		env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusNotFound)
	}
}
