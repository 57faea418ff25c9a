package cfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// tenancyFixture creates organizations, spaces and roles for the tests of
// organizations, spaces and feature flags. Roles are inserted with SQL so
// these tests do not depend on the roles API.
type tenancyFixture struct {
	t     *testing.T
	env   *testEnv
	admin string
}

func newTenancyFixture(t *testing.T) *tenancyFixture {
	env := newTestEnv(t)
	return &tenancyFixture{t: t, env: env, admin: env.adminToken()}
}

// org creates an organization through the API as admin and returns its guid.
func (f *tenancyFixture) org(name string) string {
	f.t.Helper()
	var org organizationJSON
	f.env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{"name": name}).expect(http.StatusCreated).decode(&org)
	return org.GUID
}

// space creates a space through the API as admin and returns its guid.
func (f *tenancyFixture) space(orgGUID, name string) string {
	f.t.Helper()
	var space spaceJSON
	f.env.do(http.MethodPost, "/v3/spaces", f.admin, map[string]any{
		"name":          name,
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": orgGUID}}},
	}).expect(http.StatusCreated).decode(&space)
	return space.GUID
}

// grant gives userGUID a role in an organization or, when spaceGUID is
// set, a space.
func (f *tenancyFixture) grant(userGUID, roleType, orgGUID, spaceGUID string) {
	f.t.Helper()
	var org, space any
	if spaceGUID != "" {
		space = spaceGUID
	} else {
		org = orgGUID
	}
	_, err := f.env.store.DB().ExecContext(context.Background(),
		`INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid) VALUES ($1, $2, $3, $4, $5)`,
		uuid.NewString(), roleType, userGUID, org, space)
	if err != nil {
		f.t.Fatal(err)
	}
}

// count runs a SELECT count(*) query.
func (f *tenancyFixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.env.store.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// scopedToken is a token for a new user with exactly the given scopes.
func (f *tenancyFixture) scopedToken(name string, scopes ...string) string {
	guid := uuid.NewString()
	return f.env.token(auth.Actor{UserGUID: guid, UserName: name, Origin: "uaa", ClientID: "cf", Scopes: scopes})
}

// recordedEvent is an audit event row as the tests inspect it.
type recordedEvent struct {
	Type, ActorName, TargetType, TargetName, OrgGUID, SpaceGUID string
	Data                                                        map[string]any
}

func (f *tenancyFixture) events(targetGUID string) []recordedEvent {
	f.t.Helper()
	rows, err := f.env.store.DB().QueryContext(context.Background(), `
		SELECT type, actor_name, target_type, target_name, COALESCE(organization_guid, ''), COALESCE(space_guid, ''), data
		FROM audit_events WHERE target_guid = $1 ORDER BY created_at, type`, targetGUID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []recordedEvent
	for rows.Next() {
		var ev recordedEvent
		var data []byte
		if err := rows.Scan(&ev.Type, &ev.ActorName, &ev.TargetType, &ev.TargetName, &ev.OrgGUID, &ev.SpaceGUID, &data); err != nil {
			f.t.Fatal(err)
		}
		if err := json.Unmarshal(data, &ev.Data); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	return out
}

// assertTenancyError checks the status, code and detail of a v3 error response.
func assertTenancyError(t *testing.T, resp *testResponse, status, code int, detail string) {
	t.Helper()
	resp.expect(status)
	gotCode, _, gotDetail := resp.cfError()
	if gotCode != code || gotDetail != detail {
		t.Errorf("error = %d %q, want %d %q", gotCode, gotDetail, code, detail)
	}
}

// tenancyNames returns the names of a list response's resources and its body.
func tenancyNames(t *testing.T, resp *testResponse) ([]string, tenancyList) {
	t.Helper()
	var body tenancyList
	resp.expect(http.StatusOK).decode(&body)
	names := []string{}
	for _, r := range body.Resources {
		names = append(names, r.Name)
	}
	return names, body
}

type tenancyList struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
		TotalPages   int `json:"total_pages"`
		First        struct {
			Href string `json:"href"`
		} `json:"first"`
		Last struct {
			Href string `json:"href"`
		} `json:"last"`
		Next *struct {
			Href string `json:"href"`
		} `json:"next"`
		Previous *struct {
			Href string `json:"href"`
		} `json:"previous"`
	} `json:"pagination"`
	Resources []struct {
		GUID string `json:"guid"`
		Name string `json:"name"`
	} `json:"resources"`
	Included map[string][]struct {
		GUID string `json:"guid"`
		Name string `json:"name"`
	} `json:"included"`
}

func TestOrganizationCreateAndGet(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env

	resp := env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{
		"name":      "acme",
		"suspended": false,
		"metadata": map[string]any{
			"labels":      map[string]any{"env": "prod", "example.com/tier": "gold", "gone": nil},
			"annotations": map[string]any{"contact": "ops@example.com"},
		},
	}).expect(http.StatusCreated)
	var created map[string]any
	resp.decode(&created)

	guid, _ := created["guid"].(string)
	if _, err := uuid.Parse(guid); err != nil {
		t.Fatalf("guid %q is not a UUID", guid)
	}
	var defaultQuota string
	if err := env.store.DB().QueryRow(`SELECT guid FROM organization_quotas WHERE name = 'default'`).Scan(&defaultQuota); err != nil {
		t.Fatal(err)
	}
	self := env.server.URL + "/v3/organizations/" + guid
	want := map[string]any{
		"guid":          guid,
		"created_at":    created["created_at"],
		"updated_at":    created["updated_at"],
		"name":          "acme",
		"suspended":     false,
		"relationships": map[string]any{"quota": map[string]any{"data": map[string]any{"guid": defaultQuota}}},
		"metadata": map[string]any{
			"labels":      map[string]any{"env": "prod", "example.com/tier": "gold"},
			"annotations": map[string]any{"contact": "ops@example.com"},
		},
		"links": map[string]any{
			"self":           map[string]any{"href": self},
			"domains":        map[string]any{"href": self + "/domains"},
			"default_domain": map[string]any{"href": self + "/domains/default"},
			"quota":          map[string]any{"href": env.server.URL + "/v3/organization_quotas/" + defaultQuota},
		},
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created organization (-want +got):\n%s", diff)
	}
	if ts, _ := created["created_at"].(string); !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05Z") {
		t.Errorf("created_at = %q, want RFC 3339 in UTC", ts)
	}

	got := env.do(http.MethodGet, "/v3/organizations/"+guid, f.admin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GET differs from POST (-post +get):\n%s", diff)
	}

	events := f.events(guid)
	if len(events) != 1 {
		t.Fatalf("audit events = %+v, want one", events)
	}
	ev := events[0]
	if ev.Type != "audit.organization.create" || ev.ActorName != "admin" || ev.TargetType != "organization" || ev.TargetName != "acme" || ev.OrgGUID != guid {
		t.Errorf("audit event = %+v", ev)
	}
	request, _ := ev.Data["request"].(map[string]any)
	if request["name"] != "acme" || request["suspended"] != false {
		t.Errorf("audit data.request = %v", request)
	}
}

func TestOrganizationCreateRejectsBadInput(t *testing.T) {
	f := newTenancyFixture(t)
	long := strings.Repeat("a", 256)

	tests := []struct {
		name   string
		body   any
		status int
		code   int
		detail string
	}{
		{"malformed JSON", `{"name": "x"`, 400, 1001, "Request invalid due to parse error: the body is not valid JSON"},
		{"empty body", ``, 400, 1001, "Request invalid due to parse error: the request body is empty; send a JSON object"},
		{"unknown field", map[string]any{"name": "x", "color": "red"}, 422, 10008, "Unknown field(s): 'color'"},
		{"missing name", map[string]any{"suspended": false}, 422, 10008, "Name is required: send a name of 1 to 255 characters"},
		{"empty name", map[string]any{"name": ""}, 422, 10008, "Name must not be blank"},
		{"blank name", map[string]any{"name": "   "}, 422, 10008, "Name must not be blank"},
		{"256 characters", map[string]any{"name": long}, 422, 10008, "Name is too long: the maximum is 255 characters"},
		{"newline in name", map[string]any{"name": "a\nb"}, 422, 10008, "Name must not contain control characters such as tabs or newlines"},
		{"name not a string", map[string]any{"name": 7}, 422, 10008, "Name must be a string"},
		{"suspended not a boolean", map[string]any{"name": "x", "suspended": "yes"}, 422, 10008, "Suspended must be a boolean"},
		{"invalid label key", map[string]any{"name": "x", "metadata": map[string]any{"labels": map[string]any{"bad key": "v"}}},
			422, 10008, "Metadata label key 'bad key' is invalid: the name may contain only letters, digits, '-', '_' and '.'"},
		{"invalid label value", map[string]any{"name": "x", "metadata": map[string]any{"labels": map[string]any{"k": "-v"}}},
			422, 10008, "Metadata label value '-v' of key 'k' is invalid: a value must start and end with a letter or digit"},
		{"annotation too long", map[string]any{"name": "x", "metadata": map[string]any{"annotations": map[string]any{"k": strings.Repeat("é", 5001)}}},
			422, 10008, "Metadata annotation value of key 'k' is invalid: a value must be at most 5000 characters"},
		{"unknown metadata field", map[string]any{"name": "x", "metadata": map[string]any{"tags": map[string]any{}}}, 422, 10008, "Unknown field(s): 'tags'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/organizations", f.admin, tt.body)
			assertTenancyError(t, resp, tt.status, tt.code, tt.detail)
		})
	}

	if n := f.count(`SELECT count(*) FROM organizations`); n != 0 {
		t.Errorf("organizations after rejected requests = %d, want 0", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events`); n != 0 {
		t.Errorf("audit events after rejected requests = %d, want 0", n)
	}
}

func TestOrganizationCreateAcceptsMaximalName(t *testing.T) {
	f := newTenancyFixture(t)
	name := strings.Repeat("é", 255)
	var org organizationJSON
	f.env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{"name": name}).expect(http.StatusCreated).decode(&org)
	if org.Name != name {
		t.Errorf("name = %q, want 255 × é", org.Name)
	}
}

func TestOrganizationCreateDuplicateName(t *testing.T) {
	f := newTenancyFixture(t)
	f.org("acme")

	for _, name := range []string{"acme", "ACME"} {
		resp := f.env.do(http.MethodPost, "/v3/organizations", f.admin, map[string]any{"name": name})
		assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008, "Organization '"+name+"' already exists.")
	}
	if n := f.count(`SELECT count(*) FROM organizations`); n != 1 {
		t.Errorf("organizations = %d, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization.create'`); n != 1 {
		t.Errorf("create events = %d, want 1", n)
	}
}

func TestOrganizationCreateByUsers(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	userGUID, userToken := env.newUser("alice")

	resp := env.do(http.MethodPost, "/v3/organizations", userToken, map[string]any{"name": "alices"})
	assertTenancyError(t, resp, http.StatusForbidden, 10003, "You are not authorized to perform the requested action")

	env.do(http.MethodPatch, "/v3/feature_flags/user_org_creation", f.admin, map[string]any{"enabled": true}).expect(http.StatusOK)

	resp = env.do(http.MethodPost, "/v3/organizations", userToken, map[string]any{"name": "alices", "suspended": true})
	assertTenancyError(t, resp, http.StatusForbidden, 10003, "You are not authorized to perform the requested action")

	var org organizationJSON
	env.do(http.MethodPost, "/v3/organizations", userToken, map[string]any{"name": "alices"}).expect(http.StatusCreated).decode(&org)

	roles := f.count(`SELECT count(*) FROM roles WHERE user_guid = $1 AND organization_guid = $2
		AND type IN ('organization_user', 'organization_manager')`, userGUID, org.GUID)
	if roles != 2 {
		t.Errorf("creator roles = %d, want organization_user and organization_manager", roles)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE target_guid = $1 AND type IN
		('audit.user.organization_user_add', 'audit.user.organization_manager_add')`, userGUID); n != 2 {
		t.Errorf("role audit events = %d, want 2", n)
	}
	env.do(http.MethodGet, "/v3/organizations/"+org.GUID, userToken, nil).expect(http.StatusOK)
	env.do(http.MethodPatch, "/v3/organizations/"+org.GUID, userToken, map[string]any{"name": "alices-renamed"}).expect(http.StatusOK)

	// Tokens that may not write are refused even with the flag on.
	for _, scope := range []string{auth.ScopeAdminReadOnly, auth.ScopeGlobalAuditor, auth.ScopeRead} {
		resp := env.do(http.MethodPost, "/v3/organizations", f.scopedToken("reader", scope), map[string]any{"name": "r-" + scope})
		assertTenancyError(t, resp, http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	}
}

func TestOrganizationCreateByUserWithoutUserRecord(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	env.do(http.MethodPatch, "/v3/feature_flags/user_org_creation", f.admin, map[string]any{"enabled": true}).expect(http.StatusOK)

	token := f.scopedToken("bob", auth.ScopeRead, auth.ScopeWrite)
	var org organizationJSON
	env.do(http.MethodPost, "/v3/organizations", token, map[string]any{"name": "bobs"}).expect(http.StatusCreated).decode(&org)
	if n := f.count(`SELECT count(*) FROM roles WHERE organization_guid = $1`, org.GUID); n != 2 {
		t.Errorf("roles = %d, want 2", n)
	}
}

func TestOrganizationListFiltersAndOrder(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	for _, name := range []string{"charlie", "alpha", "Bravo", "delta"} {
		f.org(name)
	}
	alpha := env.do(http.MethodGet, "/v3/organizations?names=alpha", f.admin, nil)
	_, alphaBody := tenancyNames(t, alpha)
	alphaGUID := alphaBody.Resources[0].GUID

	env.do(http.MethodPatch, "/v3/organizations/"+alphaGUID, f.admin, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"env": "prod", "tier": "gold"}},
	}).expect(http.StatusOK)

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"charlie", "alpha", "Bravo", "delta"}},
		{"?order_by=name", []string{"alpha", "Bravo", "charlie", "delta"}},
		{"?order_by=-name", []string{"delta", "charlie", "Bravo", "alpha"}},
		{"?order_by=-created_at", []string{"delta", "Bravo", "alpha", "charlie"}},
		{"?order_by=updated_at", []string{"charlie", "Bravo", "delta", "alpha"}},
		{"?names=ALPHA,bravo&order_by=name", []string{"alpha", "Bravo"}},
		{"?names=", []string{}},
		{"?guids=" + alphaGUID, []string{"alpha"}},
		{"?label_selector=env", []string{"alpha"}},
		{"?label_selector=!env&order_by=name", []string{"Bravo", "charlie", "delta"}},
		{"?label_selector=" + url.QueryEscape("env=prod,tier in (gold,silver)"), []string{"alpha"}},
		{"?label_selector=" + url.QueryEscape("env!=prod") + "&order_by=name", []string{"Bravo", "charlie", "delta"}},
		{"?label_selector=" + url.QueryEscape("tier notin (gold)") + "&order_by=name", []string{"Bravo", "charlie", "delta"}},
		{"?label_selector=env==staging", []string{}},
		{"?created_ats[lt]=2000-01-01T00:00:00Z", []string{}},
		{"?created_ats[gt]=2000-01-01T00:00:00Z&updated_ats[lt]=2999-01-01T00:00:00Z&order_by=name", []string{"alpha", "Bravo", "charlie", "delta"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, _ := tenancyNames(t, env.do(http.MethodGet, "/v3/organizations"+tt.query, f.admin, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOrganizationListPagination(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	for _, name := range []string{"o1", "o2", "o3", "o4", "o5"} {
		f.org(name)
	}

	names, body := tenancyNames(t, env.do(http.MethodGet, "/v3/organizations?order_by=name&per_page=2", f.admin, nil))
	if diff := cmp.Diff([]string{"o1", "o2"}, names); diff != "" {
		t.Errorf("page 1 (-want +got):\n%s", diff)
	}
	if body.Pagination.TotalResults != 5 || body.Pagination.TotalPages != 3 {
		t.Errorf("pagination = %+v", body.Pagination)
	}
	if body.Pagination.Previous != nil {
		t.Errorf("previous = %v, want null on page 1", body.Pagination.Previous)
	}
	wantNext := env.server.URL + "/v3/organizations?order_by=name&page=2&per_page=2"
	if body.Pagination.Next == nil || body.Pagination.Next.Href != wantNext {
		t.Fatalf("next = %+v, want %s", body.Pagination.Next, wantNext)
	}

	// Follow next hrefs as the cf CLI does, verbatim.
	var all []string
	next := env.server.URL + "/v3/organizations?order_by=name&per_page=2"
	for next != "" {
		names, body := tenancyNames(t, env.do(http.MethodGet, strings.TrimPrefix(next, env.server.URL), f.admin, nil))
		all = append(all, names...)
		next = ""
		if body.Pagination.Next != nil {
			if !strings.HasPrefix(body.Pagination.Next.Href, "http://") {
				t.Fatalf("next href %q is not absolute", body.Pagination.Next.Href)
			}
			next = body.Pagination.Next.Href
		}
	}
	if diff := cmp.Diff([]string{"o1", "o2", "o3", "o4", "o5"}, all); diff != "" {
		t.Errorf("all pages (-want +got):\n%s", diff)
	}

	names, body = tenancyNames(t, env.do(http.MethodGet, "/v3/organizations?page=9&per_page=2", f.admin, nil))
	if len(names) != 0 || body.Pagination.TotalResults != 5 {
		t.Errorf("page past the end: names %v, total %d; want none of 5", names, body.Pagination.TotalResults)
	}
}

func TestOrganizationListRejectsBadQueries(t *testing.T) {
	f := newTenancyFixture(t)
	tests := []struct {
		query  string
		detail string
	}{
		{"per_page=0", "The query parameter is invalid: Per page must be between 1 and 5000"},
		{"per_page=5001", "The query parameter is invalid: Per page must be between 1 and 5000"},
		{"page=0", "The query parameter is invalid: Page must be greater than 0"},
		{"order_by=size", "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at', 'name'"},
		{"colour=red", "The query parameter is invalid: Unknown query parameter(s): 'colour'. Valid parameters are: " +
			"'page', 'per_page', 'order_by', 'guids', 'names', 'label_selector', 'created_ats', 'updated_ats', " +
			"'created_ats[lt]', 'created_ats[lte]', 'created_ats[gt]', 'created_ats[gte]', " +
			"'updated_ats[lt]', 'updated_ats[lte]', 'updated_ats[gt]', 'updated_ats[gte]'"},
		{"created_ats=yesterday", "The query parameter is invalid: Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"},
		{"label_selector=", "The query parameter is invalid: label_selector is empty: give one or more requirements, such as 'env=prod'"},
		{"label_selector=" + url.QueryEscape("a b"), "The query parameter is invalid: label_selector requirement 'a b' is invalid: " +
			"use key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)"},
		{"label_selector=" + url.QueryEscape("env=-x"), "The query parameter is invalid: label_selector requirement 'env=-x' is invalid: " +
			"a value must start and end with a letter or digit"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp := f.env.do(http.MethodGet, "/v3/organizations?"+tt.query, f.admin, nil)
			assertTenancyError(t, resp, http.StatusBadRequest, 10005, tt.detail)
		})
	}
}

func TestOrganizationVisibility(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	orgA, orgB, orgC := f.org("org-a"), f.org("org-b"), f.org("org-c")
	spaceB := f.space(orgB, "space-b")

	userGUID, userToken := env.newUser("vera")
	f.grant(userGUID, roleOrgAuditor, orgA, "")
	f.grant(userGUID, roleSpaceDeveloper, "", spaceB)

	names, body := tenancyNames(t, env.do(http.MethodGet, "/v3/organizations?order_by=name", userToken, nil))
	if diff := cmp.Diff([]string{"org-a", "org-b"}, names); diff != "" {
		t.Errorf("visible organizations (-want +got):\n%s", diff)
	}
	if body.Pagination.TotalResults != 2 {
		t.Errorf("total_results = %d, want 2", body.Pagination.TotalResults)
	}
	env.do(http.MethodGet, "/v3/organizations/"+orgA, userToken, nil).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/"+orgC, userToken, nil), http.StatusNotFound, 10010, "Organization not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/"+orgC+"/usage_summary", userToken, nil), http.StatusNotFound, 10010, "Organization not found")

	_, strangerToken := env.newUser("stranger")
	names, _ = tenancyNames(t, env.do(http.MethodGet, "/v3/organizations", strangerToken, nil))
	if len(names) != 0 {
		t.Errorf("stranger sees %v, want nothing", names)
	}

	for _, scope := range []string{auth.ScopeAdminReadOnly, auth.ScopeGlobalAuditor} {
		names, _ := tenancyNames(t, env.do(http.MethodGet, "/v3/organizations", f.scopedToken("reader", scope), nil))
		if len(names) != 3 {
			t.Errorf("%s sees %v, want all three", scope, names)
		}
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/"+uuid.NewString(), f.admin, nil), http.StatusNotFound, 10010, "Organization not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/not-a-guid", f.admin, nil), http.StatusNotFound, 10010, "Organization not found")
}

func TestOrganizationUpdate(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	guid := f.org("acme")
	f.org("taken")
	path := "/v3/organizations/" + guid

	env.do(http.MethodPatch, path, f.admin, map[string]any{
		"metadata": map[string]any{
			"labels":      map[string]any{"env": "staging", "ready": "true"},
			"annotations": map[string]any{"spring": "5.1", "version": "0.1-alpha"},
		},
	}).expect(http.StatusOK)

	var org organizationJSON
	env.do(http.MethodPatch, path, f.admin, map[string]any{
		"name": "acme-corp",
		"metadata": map[string]any{
			"labels":      map[string]any{"env": "production", "ready": nil, "never-set": nil},
			"annotations": map[string]any{"version": "0.1", "month": "november"},
		},
	}).expect(http.StatusOK).decode(&org)

	if org.Name != "acme-corp" {
		t.Errorf("name = %q", org.Name)
	}
	want := metadataJSON{
		Labels:      map[string]string{"env": "production"},
		Annotations: map[string]string{"spring": "5.1", "version": "0.1", "month": "november"},
	}
	if diff := cmp.Diff(want, org.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}

	// An empty body changes nothing but still succeeds.
	env.do(http.MethodPatch, path, f.admin, map[string]any{}).expect(http.StatusOK)

	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, map[string]any{"name": "TAKEN"}),
		http.StatusUnprocessableEntity, 10008, "Organization 'TAKEN' already exists.")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, map[string]any{"name": ""}),
		http.StatusUnprocessableEntity, 10008, "Name must not be blank")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.admin, map[string]any{"guid": "x"}),
		http.StatusUnprocessableEntity, 10008, "Unknown field(s): 'guid'")
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/organizations/"+uuid.NewString(), f.admin, map[string]any{"name": "x"}),
		http.StatusNotFound, 10010, "Organization not found")

	var got organizationJSON
	env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&got)
	if got.Name != "acme-corp" {
		t.Errorf("name after rejected updates = %q, want acme-corp", got.Name)
	}

	var types []string
	for _, ev := range f.events(guid) {
		types = append(types, ev.Type)
	}
	wantTypes := []string{"audit.organization.create", "audit.organization.update", "audit.organization.update", "audit.organization.update"}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
}

func TestOrganizationUpdatePermissions(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	guid := f.org("acme")
	path := "/v3/organizations/" + guid

	managerGUID, managerToken := env.newUser("manager")
	f.grant(managerGUID, roleOrgManager, guid, "")
	userGUID, userToken := env.newUser("member")
	f.grant(userGUID, roleOrgUser, guid, "")
	_, strangerToken := env.newUser("stranger")

	env.do(http.MethodPatch, path, managerToken, map[string]any{"name": "acme-2"}).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodPatch, path, managerToken, map[string]any{"suspended": true}),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, path, userToken, map[string]any{"name": "nope"}),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, path, strangerToken, map[string]any{"name": "nope"}),
		http.StatusNotFound, 10010, "Organization not found")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.scopedToken("ro", auth.ScopeAdminReadOnly), map[string]any{"name": "nope"}),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")

	// Only admins may change a suspended organization.
	env.do(http.MethodPatch, path, f.admin, map[string]any{"suspended": true}).expect(http.StatusOK)
	resp := env.do(http.MethodPatch, path, managerToken, map[string]any{"name": "acme-3"}).expect(http.StatusForbidden)
	if code, title, _ := resp.cfError(); code != 10017 || title != "CF-OrgSuspended" {
		t.Errorf("error = %d %s, want 10017 CF-OrgSuspended", code, title)
	}
	var org organizationJSON
	env.do(http.MethodPatch, path, f.admin, map[string]any{"suspended": false}).expect(http.StatusOK).decode(&org)
	if org.Suspended || org.Name != "acme-2" {
		t.Errorf("organization = %+v, want acme-2 active", org)
	}
}

func TestOrganizationDelete(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	ctx := context.Background()
	guid := f.org("doomed")
	keep := f.org("keeper")
	spaceGUID := f.space(guid, "s1")
	f.space(keep, "s1")
	userGUID, userToken := env.newUser("member")
	f.grant(userGUID, roleOrgManager, guid, "")
	f.grant(userGUID, roleSpaceDeveloper, "", spaceGUID)
	if _, err := env.store.DB().Exec(`INSERT INTO space_quotas (guid, name, organization_guid) VALUES ($1, 'small', $2)`, uuid.NewString(), guid); err != nil {
		t.Fatal(err)
	}

	assertTenancyError(t, env.do(http.MethodDelete, "/v3/organizations/"+guid, userToken, nil),
		http.StatusForbidden, 10003, "You are not authorized to perform the requested action")
	_, strangerToken := env.newUser("stranger")
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/organizations/"+guid, strangerToken, nil),
		http.StatusNotFound, 10010, "Organization not found")

	resp := env.do(http.MethodDelete, "/v3/organizations/"+guid, f.admin, nil).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	jobGUID, found := strings.CutPrefix(location, env.server.URL+"/v3/jobs/")
	if !found {
		t.Fatalf("Location = %q, want an absolute job URL", location)
	}
	job, err := env.store.Job(ctx, jobGUID)
	if err != nil {
		t.Fatal(err)
	}
	if job.Operation != "organization.delete" || job.State != store.JobProcessing || job.ResourceGUID != guid {
		t.Errorf("job = %+v", job)
	}

	env.runner.RunPending(ctx)

	if job, err = env.store.Job(ctx, jobGUID); err != nil || job.State != store.JobComplete {
		t.Fatalf("job after run = %+v, %v; want COMPLETE", job, err)
	}
	for table, query := range map[string]string{
		"organizations": `SELECT count(*) FROM organizations WHERE guid = $1`,
		"spaces":        `SELECT count(*) FROM spaces WHERE organization_guid = $1`,
		"space_quotas":  `SELECT count(*) FROM space_quotas WHERE organization_guid = $1`,
		"org roles":     `SELECT count(*) FROM roles WHERE organization_guid = $1`,
	} {
		if n := f.count(query, guid); n != 0 {
			t.Errorf("%s left after delete = %d", table, n)
		}
	}
	if n := f.count(`SELECT count(*) FROM roles WHERE user_guid = $1`, userGUID); n != 0 {
		t.Errorf("roles of the member left = %d", n)
	}
	if n := f.count(`SELECT count(*) FROM spaces WHERE organization_guid = $1`, keep); n != 1 {
		t.Errorf("spaces of another organization = %d, want 1", n)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/"+guid, f.admin, nil), http.StatusNotFound, 10010, "Organization not found")

	// The job is idempotent: running it again after the organization is gone succeeds.
	if err := env.api.runOrganizationDelete(ctx, job); err != nil {
		t.Errorf("second run: %v", err)
	}

	events := f.events(guid)
	last := events[len(events)-1]
	if last.Type != "audit.organization.delete-request" || last.Data["request"].(map[string]any)["recursive"] != true {
		t.Errorf("last audit event = %+v", last)
	}
}

func TestOrganizationSubresources(t *testing.T) {
	f := newTenancyFixture(t)
	env := f.env
	guid := f.org("acme")
	base := "/v3/organizations/" + guid

	var usage struct {
		UsageSummary map[string]int             `json:"usage_summary"`
		Links        map[string]json.RawMessage `json:"links"`
	}
	env.do(http.MethodGet, base+"/usage_summary", f.admin, nil).expect(http.StatusOK).decode(&usage)
	wantUsage := map[string]int{"started_instances": 0, "memory_in_mb": 0, "routes": 0, "service_instances": 0,
		"reserved_ports": 0, "domains": 0, "per_app_tasks": 0, "service_keys": 0}
	if diff := cmp.Diff(wantUsage, usage.UsageSummary); diff != "" {
		t.Errorf("usage_summary (-want +got):\n%s", diff)
	}
	if _, ok := usage.Links["self"]; !ok {
		t.Errorf("usage links = %v, want self", usage.Links)
	}

	assertTenancyError(t, env.do(http.MethodGet, base+"/domains/default", f.admin, nil), http.StatusNotFound, 10010, "Domain not found")
	names, body := tenancyNames(t, env.do(http.MethodGet, base+"/domains?names=apps.example.com", f.admin, nil))
	if len(names) != 0 || body.Pagination.TotalResults != 0 {
		t.Errorf("domains = %v", names)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/organizations/"+uuid.NewString()+"/domains", f.admin, nil),
		http.StatusNotFound, 10010, "Organization not found")

	iso := env.do(http.MethodGet, base+"/relationships/default_isolation_segment", f.admin, nil).expect(http.StatusOK).object()
	wantIso := map[string]any{"data": nil, "links": map[string]any{"self": map[string]any{
		"href": env.server.URL + base + "/relationships/default_isolation_segment"}}}
	if diff := cmp.Diff(wantIso, iso); diff != "" {
		t.Errorf("default isolation segment (-want +got):\n%s", diff)
	}
	env.do(http.MethodPatch, base+"/relationships/default_isolation_segment", f.admin, map[string]any{"data": nil}).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodPatch, base+"/relationships/default_isolation_segment", f.admin,
		map[string]any{"data": map[string]any{"guid": "seg-1"}}), http.StatusUnprocessableEntity, 10008,
		"Unable to assign isolation segment with guid 'seg-1': it is not entitled to the organization. Send data null to use the shared isolation segment.")
}
