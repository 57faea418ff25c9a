package cfapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// quotaFixture is a test API whose organizations, spaces and roles are
// inserted with SQL, so quota tests do not depend on those endpoints.
type quotaFixture struct {
	*testEnv
	admin string
}

func newQuotaFixture(t *testing.T) *quotaFixture {
	env := newTestEnv(t)
	return &quotaFixture{testEnv: env, admin: env.adminToken()}
}

// in returns the fixture reporting failures to t, for use inside subtests.
func (f *quotaFixture) in(t *testing.T) *quotaFixture {
	env := *f.testEnv
	env.t = t
	return &quotaFixture{testEnv: &env, admin: f.admin}
}

func (f *quotaFixture) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.store.DB().ExecContext(context.Background(), query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
}

func (f *quotaFixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.store.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (f *quotaFixture) org(name string) string {
	f.t.Helper()
	guid := uuid.NewString()
	f.exec(`INSERT INTO organizations (guid, name, quota_guid) SELECT $1, $2, guid FROM organization_quotas WHERE name = $3`,
		guid, name, store.DefaultOrganizationQuota)
	return guid
}

func (f *quotaFixture) space(orgGUID, name string) string {
	f.t.Helper()
	guid := uuid.NewString()
	f.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, $2, $3)`, guid, name, orgGUID)
	return guid
}

// grant gives userGUID a role in an organization or, when spaceGUID is set,
// in a space.
func (f *quotaFixture) grant(userGUID, roleType, orgGUID, spaceGUID string) {
	f.t.Helper()
	f.exec(`INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid) VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))`,
		uuid.NewString(), roleType, userGUID, orgGUID, spaceGUID)
}

func (f *quotaFixture) orgQuotaGUIDOf(orgGUID string) string {
	f.t.Helper()
	var guid string
	if err := f.store.DB().QueryRowContext(context.Background(), `SELECT quota_guid FROM organizations WHERE guid = $1`, orgGUID).Scan(&guid); err != nil {
		f.t.Fatal(err)
	}
	return guid
}

// createOrgQuota creates an organization quota as admin.
func (f *quotaFixture) createOrgQuota(body map[string]any) orgQuotaJSON {
	f.t.Helper()
	var q orgQuotaJSON
	f.do(http.MethodPost, "/v3/organization_quotas", f.admin, body).expect(http.StatusCreated).decode(&q)
	return q
}

// expectQuotaError checks a v3 error response; an empty detail is not
// checked.
func expectQuotaError(t *testing.T, resp *testResponse, status int, title, detail string) {
	t.Helper()
	resp.expect(status)
	_, gotTitle, gotDetail := resp.cfError()
	if gotTitle != title {
		t.Errorf("title = %q, want %q", gotTitle, title)
	}
	if detail != "" && gotDetail != detail {
		t.Errorf("detail = %q, want %q", gotDetail, detail)
	}
}

func quotaGUIDsOf(refs []guidRef) []string {
	guids := []string{}
	for _, r := range refs {
		guids = append(guids, r.GUID)
	}
	return guids
}

func TestOrganizationQuotaCreateDefaultsJSON(t *testing.T) {
	f := newQuotaFixture(t)

	resp := f.do(http.MethodPost, "/v3/organization_quotas", f.admin, map[string]any{"name": "gold"}).expect(http.StatusCreated)
	got := resp.object()

	guid, _ := got["guid"].(string)
	if _, err := uuid.Parse(guid); err != nil {
		t.Fatalf("guid %q is not a UUID", guid)
	}
	for _, key := range []string{"created_at", "updated_at"} {
		if s, _ := got[key].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(s) {
			t.Errorf("%s = %v, want an RFC 3339 UTC timestamp", key, got[key])
		}
		delete(got, key)
	}
	want := map[string]any{
		"guid": guid,
		"name": "gold",
		"apps": map[string]any{"total_memory_in_mb": nil, "per_process_memory_in_mb": nil, "total_instances": nil,
			"per_app_tasks": nil, "log_rate_limit_in_bytes_per_second": nil},
		"services":      map[string]any{"paid_services_allowed": true, "total_service_instances": nil, "total_service_keys": nil},
		"routes":        map[string]any{"total_routes": nil, "total_reserved_ports": nil},
		"domains":       map[string]any{"total_domains": nil},
		"relationships": map[string]any{"organizations": map[string]any{"data": []any{}}},
		"links":         map[string]any{"self": map[string]any{"href": f.server.URL + "/v3/organization_quotas/" + guid}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created quota (-want +got):\n%s", diff)
	}

	var fetched map[string]any
	f.do(http.MethodGet, "/v3/organization_quotas/"+guid, f.admin, nil).expect(http.StatusOK).decode(&fetched)
	delete(fetched, "created_at")
	delete(fetched, "updated_at")
	if diff := cmp.Diff(want, fetched); diff != "" {
		t.Errorf("fetched quota (-want +got):\n%s", diff)
	}

	var actorName, data string
	err := f.store.DB().QueryRowContext(context.Background(), `SELECT actor_name, data::text FROM audit_events
		WHERE type = 'audit.organization_quota.create' AND target_guid = $1 AND target_type = 'organization_quota' AND target_name = 'gold'`,
		guid).Scan(&actorName, &data)
	if err != nil {
		t.Fatalf("create event: %v", err)
	}
	if actorName != "admin" {
		t.Errorf("event actor = %q, want admin", actorName)
	}
	if data != `{"request": {"name": "gold"}}` {
		t.Errorf("event data = %s, want the request name", data)
	}
}

func TestOrganizationQuotaCreateAllFields(t *testing.T) {
	f := newQuotaFixture(t)
	o1, o2 := f.org("o1"), f.org("o2")

	q := f.createOrgQuota(map[string]any{
		"name": "platinum",
		"apps": map[string]any{"total_memory_in_mb": 10240, "per_process_memory_in_mb": 1024, "total_instances": 10,
			"per_app_tasks": 5, "log_rate_limit_in_bytes_per_second": int64(1) << 40},
		"services":      map[string]any{"paid_services_allowed": false, "total_service_instances": 3, "total_service_keys": 4},
		"routes":        map[string]any{"total_routes": 8, "total_reserved_ports": 8},
		"domains":       map[string]any{"total_domains": 0},
		"relationships": map[string]any{"organizations": map[string]any{"data": []any{map[string]any{"guid": o1}, map[string]any{"guid": o2}}}},
	})

	ints := []struct {
		field string
		got   *int64
		want  int64
	}{
		{"apps.total_memory_in_mb", q.Apps.TotalMemoryInMB, 10240},
		{"apps.per_process_memory_in_mb", q.Apps.PerProcessMemoryInMB, 1024},
		{"apps.total_instances", q.Apps.TotalInstances, 10},
		{"apps.per_app_tasks", q.Apps.PerAppTasks, 5},
		{"apps.log_rate_limit_in_bytes_per_second", q.Apps.LogRateLimitInBytesPerSecond, 1 << 40},
		{"services.total_service_instances", q.Services.TotalServiceInstances, 3},
		{"services.total_service_keys", q.Services.TotalServiceKeys, 4},
		{"routes.total_routes", q.Routes.TotalRoutes, 8},
		{"routes.total_reserved_ports", q.Routes.TotalReservedPorts, 8},
		{"domains.total_domains", q.Domains.TotalDomains, 0},
	}
	for _, c := range ints {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s = %v, want %d", c.field, c.got, c.want)
		}
	}
	if q.Services.PaidServicesAllowed {
		t.Error("services.paid_services_allowed = true, want false")
	}
	if diff := cmp.Diff([]string{o1, o2}, quotaGUIDsOf(q.Relationships.Organizations.Data)); diff != "" {
		t.Errorf("organizations (-want +got):\n%s", diff)
	}
	for _, org := range []string{o1, o2} {
		if got := f.orgQuotaGUIDOf(org); got != q.GUID {
			t.Errorf("quota of organization %s = %s, want %s", org, got, q.GUID)
		}
	}
}

func TestOrganizationQuotaCreateInvalid(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	const unprocessable = "CF-UnprocessableEntity"
	limitMessage := func(field string, max int64) string {
		return field + " must be an integer from 0 to " + strconv.FormatInt(max, 10) + ", or null for unlimited"
	}

	tests := []struct {
		name   string
		body   any
		status int
		title  string
		detail string
	}{
		{"name missing", map[string]any{}, 422, unprocessable, "Name can't be blank"},
		{"name null", map[string]any{"name": nil}, 422, unprocessable, "Name can't be blank"},
		{"name empty", map[string]any{"name": ""}, 422, unprocessable, "Name can't be blank"},
		{"name blank", map[string]any{"name": " \t"}, 422, unprocessable, "Name can't be blank"},
		{"name not a string", map[string]any{"name": 5}, 422, unprocessable, "Name must be a string"},
		{"name too long", map[string]any{"name": strings.Repeat("é", 251)}, 422, unprocessable, "Name is too long (maximum is 250 characters)"},
		{"negative memory", map[string]any{"name": "q", "apps": map[string]any{"total_memory_in_mb": -1}}, 422, unprocessable,
			limitMessage("Apps.total_memory_in_mb", quotaMaxLimit)},
		{"memory as a string", map[string]any{"name": "q", "apps": map[string]any{"total_memory_in_mb": "10G"}}, 422, unprocessable,
			limitMessage("Apps.total_memory_in_mb", quotaMaxLimit)},
		{"fractional instances", map[string]any{"name": "q", "apps": map[string]any{"total_instances": 1.5}}, 422, unprocessable,
			limitMessage("Apps.total_instances", quotaMaxLimit)},
		{"routes beyond 32 bits", map[string]any{"name": "q", "routes": map[string]any{"total_routes": int64(1) << 31}}, 422, unprocessable,
			limitMessage("Routes.total_routes", quotaMaxLimit)},
		{"negative log rate", map[string]any{"name": "q", "apps": map[string]any{"log_rate_limit_in_bytes_per_second": -5}}, 422, unprocessable,
			limitMessage("Apps.log_rate_limit_in_bytes_per_second", quotaMaxLogRateLimit)},
		{"two problems at once", map[string]any{"name": "", "domains": map[string]any{"total_domains": true}}, 422, unprocessable,
			"Name can't be blank, " + limitMessage("Domains.total_domains", quotaMaxLimit)},
		{"paid services not a boolean", map[string]any{"name": "q", "services": map[string]any{"paid_services_allowed": "yes"}}, 422, unprocessable,
			"Services.paid_services_allowed must be a boolean"},
		{"reserved ports above routes", map[string]any{"name": "q", "routes": map[string]any{"total_routes": 2, "total_reserved_ports": 3}}, 422, unprocessable,
			"Routes.total_reserved_ports must be less than or equal to routes.total_routes (2)"},
		{"unknown field", map[string]any{"name": "q", "memory": 5}, 422, unprocessable, "Unknown field(s): 'memory'"},
		{"unknown nested field", map[string]any{"name": "q", "apps": map[string]any{"total_memory": 5}}, 422, unprocessable, "Unknown field(s): 'total_memory'"},
		{"apps not an object", map[string]any{"name": "q", "apps": 5}, 422, unprocessable, ""},
		{"unknown organization", map[string]any{"name": "q", "relationships": map[string]any{"organizations": map[string]any{
			"data": []any{map[string]any{"guid": org}, map[string]any{"guid": "nope"}}}}}, 422, unprocessable,
			`Organizations with guids ["nope"] do not exist, or you do not have access to them.`},
		{"organizations without data", map[string]any{"name": "q", "relationships": map[string]any{"organizations": map[string]any{}}}, 422, unprocessable,
			`Relationships.organizations.data must be an array, as in [{"guid": "valid-guid"}]`},
		{"organization without guid", map[string]any{"name": "q", "relationships": map[string]any{"organizations": map[string]any{
			"data": []any{map[string]any{}}}}}, 422, unprocessable, "Relationships.organizations.data[0].guid must be a non-empty string"},
		{"not JSON", "{name", 400, "CF-MessageParseError", "Request invalid due to parse error: the body is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			resp := f.do(http.MethodPost, "/v3/organization_quotas", f.admin, tt.body)
			expectQuotaError(t, resp, tt.status, tt.title, tt.detail)
			if n := f.count(`SELECT count(*) FROM organization_quotas`); n != 1 {
				t.Errorf("organization quotas = %d, want only the default", n)
			}
			if n := f.count(`SELECT count(*) FROM organizations o JOIN organization_quotas q ON q.guid = o.quota_guid
				WHERE o.guid = $1 AND q.name = 'default'`, org); n != 1 {
				t.Errorf("organization %s left the default quota", org)
			}
			if n := f.count(`SELECT count(*) FROM audit_events`); n != 0 {
				t.Errorf("audit events = %d, want 0", n)
			}
		})
	}
}

func TestOrganizationQuotaCreateDuplicateName(t *testing.T) {
	f := newQuotaFixture(t)
	f.createOrgQuota(map[string]any{"name": "gold"})

	for _, name := range []string{"gold", "GOLD", "default"} {
		resp := f.do(http.MethodPost, "/v3/organization_quotas", f.admin, map[string]any{"name": name})
		expectQuotaError(t, resp, http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "Organization Quota '"+name+"' already exists.")
	}
	if n := f.count(`SELECT count(*) FROM organization_quotas`); n != 2 {
		t.Errorf("organization quotas = %d, want 2", n)
	}
}

func TestOrganizationQuotaWritesNeedAdmin(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	q := f.createOrgQuota(map[string]any{"name": "gold", "relationships": map[string]any{"organizations": map[string]any{
		"data": []any{map[string]any{"guid": org}}}}})
	other := f.createOrgQuota(map[string]any{"name": "silver"})

	managerGUID, manager := f.newUser("manager")
	f.grant(managerGUID, roleOrgManager, org, "")
	_, stranger := f.newUser("stranger")
	_, readOnlyAdmin := f.newUser("ro-admin", auth.ScopeAdminReadOnly)
	_, auditor := f.newUser("auditor", auth.ScopeGlobalAuditor)

	writes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPatch, "/v3/organization_quotas/" + q.GUID, map[string]any{"name": "changed"}},
		{http.MethodDelete, "/v3/organization_quotas/" + q.GUID, nil},
		{http.MethodPost, "/v3/organization_quotas/" + q.GUID + "/relationships/organizations", map[string]any{"data": []any{map[string]any{"guid": org}}}},
	}
	actors := []struct {
		name   string
		token  string
		status int
	}{
		{"org manager", manager, http.StatusForbidden},
		{"stranger", stranger, http.StatusNotFound},
		{"admin read-only", readOnlyAdmin, http.StatusForbidden},
		{"global auditor", auditor, http.StatusForbidden},
	}
	for _, actor := range actors {
		for _, w := range writes {
			t.Run(actor.name+" "+w.method, func(t *testing.T) {
				f := f.in(t)
				resp := f.do(w.method, w.path, actor.token, w.body).expect(actor.status)
				if actor.status == http.StatusNotFound {
					expectQuotaError(t, resp, http.StatusNotFound, "CF-ResourceNotFound", "Organization quota not found")
				}
			})
		}
		t.Run(actor.name+" create", func(t *testing.T) {
			f := f.in(t)
			f.do(http.MethodPost, "/v3/organization_quotas", actor.token, map[string]any{"name": "mine"}).expect(http.StatusForbidden)
		})
	}

	f.do(http.MethodPatch, "/v3/organization_quotas/"+other.GUID, manager, map[string]any{"name": "x"}).expect(http.StatusNotFound)
	if n := f.count(`SELECT count(*) FROM organization_quotas WHERE name IN ('gold', 'silver')`); n != 2 {
		t.Errorf("quotas gold and silver = %d, want both unchanged", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type <> 'audit.organization_quota.create'`); n != 0 {
		t.Errorf("audit events of rejected writes = %d, want 0", n)
	}
}

func TestOrganizationQuotaList(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	gold := f.createOrgQuota(map[string]any{"name": "Gold", "relationships": map[string]any{"organizations": map[string]any{
		"data": []any{map[string]any{"guid": org}}}}})
	silver := f.createOrgQuota(map[string]any{"name": "silver"})
	var defaultGUID string
	if err := f.store.DB().QueryRow(`SELECT guid FROM organization_quotas WHERE name = 'default'`).Scan(&defaultGUID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all, oldest first", "", []string{defaultGUID, gold.GUID, silver.GUID}},
		{"newest first", "?order_by=-created_at", []string{silver.GUID, gold.GUID, defaultGUID}},
		{"names ignore case", "?names=gold,SILVER", []string{gold.GUID, silver.GUID}},
		{"guids", "?guids=" + silver.GUID, []string{silver.GUID}},
		{"organization guids", "?organization_guids=" + org, []string{gold.GUID}},
		{"empty name", "?names=", []string{}},
		{"created after the epoch", "?created_ats[gt]=1970-01-01T00:00:00Z", []string{defaultGUID, gold.GUID, silver.GUID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			var body struct {
				Resources []orgQuotaJSON `json:"resources"`
			}
			f.do(http.MethodGet, "/v3/organization_quotas"+tt.query, f.admin, nil).expect(http.StatusOK).decode(&body)
			got := []string{}
			for _, q := range body.Resources {
				got = append(got, q.GUID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("quotas (-want +got):\n%s", diff)
			}
		})
	}

	var page struct {
		Pagination paginationJSON `json:"pagination"`
		Resources  []orgQuotaJSON `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/organization_quotas?per_page=2&page=2", f.admin, nil).expect(http.StatusOK).decode(&page)
	if page.Pagination.TotalResults != 3 || page.Pagination.TotalPages != 2 {
		t.Errorf("pagination = %+v, want 3 results on 2 pages", page.Pagination)
	}
	if len(page.Resources) != 1 || page.Resources[0].GUID != silver.GUID {
		t.Errorf("page 2 = %v, want only silver", page.Resources)
	}
	if page.Pagination.Next != nil {
		t.Errorf("next = %v, want null on the last page", page.Pagination.Next)
	}

	resp := f.do(http.MethodGet, "/v3/organization_quotas?order_by=name", f.admin, nil)
	expectQuotaError(t, resp, http.StatusBadRequest, "CF-BadQueryParameter", "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'")
	resp = f.do(http.MethodGet, "/v3/organization_quotas?space_guids=x", f.admin, nil).expect(http.StatusBadRequest)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Unknown query parameter(s): 'space_guids'") {
		t.Errorf("detail = %q, want the unknown parameter named", detail)
	}
}

func TestOrganizationQuotaVisibilityByRole(t *testing.T) {
	f := newQuotaFixture(t)
	mine, theirs := f.org("mine"), f.org("theirs")
	shared := f.createOrgQuota(map[string]any{"name": "shared", "relationships": map[string]any{"organizations": map[string]any{
		"data": []any{map[string]any{"guid": mine}, map[string]any{"guid": theirs}}}}})
	private := f.createOrgQuota(map[string]any{"name": "private"})

	devGUID, developer := f.newUser("developer")
	f.grant(devGUID, roleSpaceDeveloper, "", f.space(mine, "dev"))
	_, readOnlyAdmin := f.newUser("ro-admin", auth.ScopeAdminReadOnly)

	var list struct {
		Resources []orgQuotaJSON `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/organization_quotas", developer, nil).expect(http.StatusOK).decode(&list)
	var names []string
	for _, q := range list.Resources {
		names = append(names, q.Name)
	}
	if len(list.Resources) != 1 || list.Resources[0].GUID != shared.GUID {
		t.Fatalf("developer sees %v, want only the shared quota", names)
	}
	if diff := cmp.Diff([]string{mine}, quotaGUIDsOf(list.Resources[0].Relationships.Organizations.Data)); diff != "" {
		t.Errorf("organizations the developer sees (-want +got):\n%s", diff)
	}

	var fetched orgQuotaJSON
	f.do(http.MethodGet, "/v3/organization_quotas/"+shared.GUID, developer, nil).expect(http.StatusOK).decode(&fetched)
	if diff := cmp.Diff([]string{mine}, quotaGUIDsOf(fetched.Relationships.Organizations.Data)); diff != "" {
		t.Errorf("organizations of the fetched quota (-want +got):\n%s", diff)
	}
	expectQuotaError(t, f.do(http.MethodGet, "/v3/organization_quotas/"+private.GUID, developer, nil),
		http.StatusNotFound, "CF-ResourceNotFound", "Organization quota not found")

	f.do(http.MethodGet, "/v3/organization_quotas", readOnlyAdmin, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 3 {
		t.Errorf("read-only admin sees %d quotas, want 3", len(list.Resources))
	}
	f.do(http.MethodGet, "/v3/organization_quotas/"+private.GUID, readOnlyAdmin, nil).expect(http.StatusOK)
}

func TestOrganizationQuotaUpdate(t *testing.T) {
	f := newQuotaFixture(t)
	q := f.createOrgQuota(map[string]any{"name": "gold",
		"apps":   map[string]any{"total_memory_in_mb": 1024, "total_instances": 10},
		"routes": map[string]any{"total_routes": 10, "total_reserved_ports": 5}})
	f.createOrgQuota(map[string]any{"name": "silver"})
	path := "/v3/organization_quotas/" + q.GUID

	var updated orgQuotaJSON
	f.do(http.MethodPatch, path, f.admin, map[string]any{
		"apps":     map[string]any{"total_memory_in_mb": 2048, "total_instances": nil},
		"services": map[string]any{"paid_services_allowed": false},
		"domains":  map[string]any{"total_domains": 3},
	}).expect(http.StatusOK).decode(&updated)
	if updated.Name != "gold" {
		t.Errorf("name = %q, want gold", updated.Name)
	}
	if m := updated.Apps.TotalMemoryInMB; m == nil || *m != 2048 {
		t.Errorf("apps.total_memory_in_mb = %v, want 2048", m)
	}
	if updated.Apps.TotalInstances != nil {
		t.Errorf("apps.total_instances = %v, want null", *updated.Apps.TotalInstances)
	}
	if r := updated.Routes.TotalRoutes; r == nil || *r != 10 {
		t.Errorf("routes.total_routes = %v, want 10 (unchanged)", r)
	}
	if updated.Services.PaidServicesAllowed {
		t.Error("services.paid_services_allowed = true, want false")
	}
	if d := updated.Domains.TotalDomains; d == nil || *d != 3 {
		t.Errorf("domains.total_domains = %v, want 3", d)
	}

	f.do(http.MethodPatch, path, f.admin, map[string]any{"name": "Platinum", "services": map[string]any{"paid_services_allowed": nil}}).
		expect(http.StatusOK).decode(&updated)
	if updated.Name != "Platinum" || !updated.Services.PaidServicesAllowed {
		t.Errorf("after rename: name %q, paid services %v; want Platinum, true", updated.Name, updated.Services.PaidServicesAllowed)
	}

	bad := []struct {
		name   string
		body   any
		detail string
	}{
		{"duplicate name", map[string]any{"name": "SILVER"}, "Organization Quota 'SILVER' already exists."},
		{"null name", map[string]any{"name": nil}, "Name must be a string"},
		{"reserved ports above new routes", map[string]any{"routes": map[string]any{"total_routes": 4}},
			"Routes.total_reserved_ports must be less than or equal to routes.total_routes (4)"},
		{"negative tasks", map[string]any{"apps": map[string]any{"per_app_tasks": -2}},
			"Apps.per_app_tasks must be an integer from 0 to 2147483647, or null for unlimited"},
		{"relationships", map[string]any{"relationships": map[string]any{}}, "Unknown field(s): 'relationships'"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			expectQuotaError(t, f.do(http.MethodPatch, path, f.admin, tt.body), http.StatusUnprocessableEntity, "CF-UnprocessableEntity", tt.detail)
			var now orgQuotaJSON
			f.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&now)
			if diff := cmp.Diff(updated, now); diff != "" {
				t.Errorf("quota changed by a rejected update (-before +after):\n%s", diff)
			}
		})
	}

	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.update' AND target_guid = $1`, q.GUID); n != 2 {
		t.Errorf("update events = %d, want 2", n)
	}
	expectQuotaError(t, f.do(http.MethodPatch, "/v3/organization_quotas/no-such-guid", f.admin, map[string]any{"name": "x"}),
		http.StatusNotFound, "CF-ResourceNotFound", "Organization quota not found")
}

func TestOrganizationQuotaDefaultKeepsName(t *testing.T) {
	f := newQuotaFixture(t)
	var defaultGUID string
	if err := f.store.DB().QueryRow(`SELECT guid FROM organization_quotas WHERE name = 'default'`).Scan(&defaultGUID); err != nil {
		t.Fatal(err)
	}
	path := "/v3/organization_quotas/" + defaultGUID

	expectQuotaError(t, f.do(http.MethodPatch, path, f.admin, map[string]any{"name": "standard"}),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity",
		"The default organization quota cannot be renamed: new organizations get the quota named 'default'")
	expectQuotaError(t, f.do(http.MethodDelete, path, f.admin, nil),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "The default organization quota cannot be deleted: new organizations get it")

	f.do(http.MethodPatch, path, f.admin, map[string]any{"name": "default", "apps": map[string]any{"total_memory_in_mb": 1}}).expect(http.StatusOK)
	if n := f.count(`SELECT count(*) FROM organization_quotas WHERE name = 'default' AND total_memory_in_mb = 1`); n != 1 {
		t.Errorf("default quotas with the new limit = %d, want 1", n)
	}
}

func TestOrganizationQuotaDelete(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("o1")
	applied := f.createOrgQuota(map[string]any{"name": "applied", "relationships": map[string]any{"organizations": map[string]any{
		"data": []any{map[string]any{"guid": org}}}}})
	unused := f.createOrgQuota(map[string]any{"name": "unused"})

	expectQuotaError(t, f.do(http.MethodDelete, "/v3/organization_quotas/"+applied.GUID, f.admin, nil),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity",
		"This quota is applied to one or more organizations. Apply different quotas to those organizations before deleting.")

	resp := f.do(http.MethodDelete, "/v3/organization_quotas/"+unused.GUID, f.admin, nil).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	jobGUID, found := strings.CutPrefix(location, f.server.URL+"/v3/jobs/")
	if !found {
		t.Fatalf("Location = %q, want a job URL", location)
	}
	if n := f.count(`SELECT count(*) FROM jobs WHERE guid = $1 AND state = 'COMPLETE' AND operation = 'organization_quota.delete'
		AND resource_guid = $2`, jobGUID, unused.GUID); n != 1 {
		t.Errorf("complete delete jobs = %d, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM organization_quotas WHERE guid IN ($1, $2)`, applied.GUID, unused.GUID); n != 1 {
		t.Errorf("remaining quotas = %d, want only the applied one", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.delete' AND target_guid = $1`, unused.GUID); n != 1 {
		t.Errorf("delete events = %d, want 1", n)
	}

	expectQuotaError(t, f.do(http.MethodDelete, "/v3/organization_quotas/"+unused.GUID, f.admin, nil),
		http.StatusNotFound, "CF-ResourceNotFound", "Organization quota not found")
}

func TestOrganizationQuotaApply(t *testing.T) {
	f := newQuotaFixture(t)
	o1, o2, o3 := f.org("o1"), f.org("o2"), f.org("o3")
	q := f.createOrgQuota(map[string]any{"name": "gold", "relationships": map[string]any{"organizations": map[string]any{
		"data": []any{map[string]any{"guid": o1}}}}})
	path := "/v3/organization_quotas/" + q.GUID + "/relationships/organizations"

	var applied quotaRelationshipJSON
	f.do(http.MethodPost, path, f.admin, map[string]any{"data": []any{map[string]any{"guid": o2}, map[string]any{"guid": o3}}}).
		expect(http.StatusOK).decode(&applied)
	if diff := cmp.Diff([]string{o1, o2, o3}, quotaGUIDsOf(applied.Data)); diff != "" {
		t.Errorf("organizations (-want +got):\n%s", diff)
	}
	if applied.Links.Self.Href != f.server.URL+path {
		t.Errorf("links.self = %q, want %q", applied.Links.Self.Href, f.server.URL+path)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.apply' AND target_guid = $1
		AND organization_guid IN ($2, $3)`, q.GUID, o2, o3); n != 2 {
		t.Errorf("apply events = %d, want 2", n)
	}

	silver := f.createOrgQuota(map[string]any{"name": "silver"})
	silverPath := "/v3/organization_quotas/" + silver.GUID + "/relationships/organizations"
	bad := []struct {
		name   string
		body   any
		detail string
	}{
		{"unknown organization", map[string]any{"data": []any{map[string]any{"guid": o1}, map[string]any{"guid": "nope"}}},
			`Organizations with guids ["nope"] do not exist`},
		{"empty data", map[string]any{"data": []any{}}, `Data must name one or more resources, as in [{"guid": "valid-guid"}]`},
		{"no data", map[string]any{}, `Data must be an array, as in [{"guid": "valid-guid"}]`},
		{"guid not a string", map[string]any{"data": []any{map[string]any{"guid": 7}}}, "Data.guid must be a string"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f := f.in(t)
			expectQuotaError(t, f.do(http.MethodPost, silverPath, f.admin, tt.body), http.StatusUnprocessableEntity, "CF-UnprocessableEntity", tt.detail)
			if n := f.count(`SELECT count(*) FROM organizations WHERE quota_guid = $1`, silver.GUID); n != 0 {
				t.Errorf("organizations on silver = %d, want 0", n)
			}
		})
	}

	expectQuotaError(t, f.do(http.MethodPost, "/v3/organization_quotas/nope/relationships/organizations", f.admin,
		map[string]any{"data": []any{map[string]any{"guid": o1}}}), http.StatusNotFound, "CF-ResourceNotFound", "Organization quota not found")
}

// The requests below follow the cf CLI's v7 commands create-org-quota,
// org-quotas, org-quota, set-org-quota, update-org-quota and
// delete-org-quota. The bodies are what the CLI's resource types marshal to.

func TestOrganizationQuotaCLICreateOrgQuota(t *testing.T) {
	f := newQuotaFixture(t)
	// cf create-org-quota gold -m 10G -i 1G -a 100: the CLI sends 0 for
	// memory, routes, reserved ports and service instances it was not given
	// and always sends paid_services_allowed.
	body := `{"name":"gold","apps":{"total_memory_in_mb":10240,"per_process_memory_in_mb":1024,"total_instances":100},` +
		`"services":{"total_service_instances":0,"paid_services_allowed":false},"routes":{"total_routes":0,"total_reserved_ports":0}}`

	var q map[string]any
	f.do(http.MethodPost, "/v3/organization_quotas", f.admin, body).expect(http.StatusCreated).decode(&q)
	want := map[string]any{
		"name":     "gold",
		"apps":     map[string]any{"total_memory_in_mb": 10240.0, "per_process_memory_in_mb": 1024.0, "total_instances": 100.0, "per_app_tasks": nil, "log_rate_limit_in_bytes_per_second": nil},
		"services": map[string]any{"paid_services_allowed": false, "total_service_instances": 0.0, "total_service_keys": nil},
		"routes":   map[string]any{"total_routes": 0.0, "total_reserved_ports": 0.0},
	}
	for key, value := range want {
		if diff := cmp.Diff(value, q[key]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", key, diff)
		}
	}

	// Running the command again must print a warning and succeed: the CLI
	// matches the detail against this pattern.
	resp := f.do(http.MethodPost, "/v3/organization_quotas", f.admin, body).expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !regexp.MustCompile(`.* Quota '.*' already exists\.`).MatchString(detail) {
		t.Errorf("duplicate detail %q does not match the cf CLI's pattern", detail)
	}

	// cf org-quotas lists every page; cf org-quota gold looks the quota up
	// by name. Every limit the CLI prints must be present, and
	// paid_services_allowed must be a boolean because the CLI dereferences it.
	for _, path := range []string{"/v3/organization_quotas", "/v3/organization_quotas?names=gold&page=1&per_page=1"} {
		var list struct {
			Pagination struct {
				Next *link `json:"next"`
			} `json:"pagination"`
			Resources []map[string]any `json:"resources"`
		}
		f.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&list)
		if list.Pagination.Next != nil {
			t.Errorf("%s: next = %v, want null", path, list.Pagination.Next)
		}
		for _, r := range list.Resources {
			services, _ := r["services"].(map[string]any)
			if _, ok := services["paid_services_allowed"].(bool); !ok {
				t.Errorf("%s: %v has no boolean paid_services_allowed", path, r["name"])
			}
			apps, _ := r["apps"].(map[string]any)
			for _, key := range []string{"total_memory_in_mb", "per_process_memory_in_mb", "total_instances", "log_rate_limit_in_bytes_per_second"} {
				if _, ok := apps[key]; !ok {
					t.Errorf("%s: %v has no apps.%s", path, r["name"], key)
				}
			}
		}
	}
}

func TestOrganizationQuotaCLISetOrgQuota(t *testing.T) {
	f := newQuotaFixture(t)
	org := f.org("myorg")
	f.createOrgQuota(map[string]any{"name": "gold"})

	// cf set-org-quota myorg gold: find the organization, find the quota by
	// name, then apply it.
	var orgs struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/organizations?names=myorg&page=1&per_page=1", f.admin, nil).expect(http.StatusOK).decode(&orgs)
	if len(orgs.Resources) != 1 || orgs.Resources[0].GUID != org {
		t.Fatalf("organization lookup = %v, want %s", orgs.Resources, org)
	}

	var quotas struct {
		Resources []orgQuotaJSON `json:"resources"`
	}
	f.do(http.MethodGet, "/v3/organization_quotas?names=gold&page=1&per_page=1", f.admin, nil).expect(http.StatusOK).decode(&quotas)
	if len(quotas.Resources) != 1 {
		t.Fatalf("quota lookup found %d quotas, want 1", len(quotas.Resources))
	}
	quotaGUID := quotas.Resources[0].GUID

	var applied struct {
		Data []map[string]string `json:"data"`
	}
	f.do(http.MethodPost, "/v3/organization_quotas/"+quotaGUID+"/relationships/organizations", f.admin,
		`{"data":[{"guid":"`+org+`"}]}`).expect(http.StatusOK).decode(&applied)
	if len(applied.Data) != 1 || applied.Data[0]["guid"] != org {
		t.Errorf("applied data = %v, want [{guid: %s}]", applied.Data, org)
	}
	if got := f.orgQuotaGUIDOf(org); got != quotaGUID {
		t.Errorf("quota of myorg = %s, want %s", got, quotaGUID)
	}
}

func TestOrganizationQuotaCLIUpdateAndDelete(t *testing.T) {
	f := newQuotaFixture(t)
	f.createOrgQuota(map[string]any{"name": "gold", "services": map[string]any{"total_service_instances": 5}})

	// cf update-org-quota gold -n platinum -m 20G -s -1: the CLI turns -1
	// into null and sends empty objects for groups it has nothing for.
	lookup := func(name string) string {
		var quotas struct {
			Resources []orgQuotaJSON `json:"resources"`
		}
		f.do(http.MethodGet, "/v3/organization_quotas?names="+url.QueryEscape(name)+"&page=1&per_page=1", f.admin, nil).
			expect(http.StatusOK).decode(&quotas)
		if len(quotas.Resources) != 1 {
			t.Fatalf("quota %s not found", name)
		}
		return quotas.Resources[0].GUID
	}
	guid := lookup("gold")
	var updated orgQuotaJSON
	f.do(http.MethodPatch, "/v3/organization_quotas/"+guid, f.admin,
		`{"name":"platinum","apps":{"total_memory_in_mb":20480},"services":{"total_service_instances":null},"routes":{}}`).
		expect(http.StatusOK).decode(&updated)
	if updated.Name != "platinum" {
		t.Errorf("name = %q, want platinum", updated.Name)
	}
	if m := updated.Apps.TotalMemoryInMB; m == nil || *m != 20480 {
		t.Errorf("apps.total_memory_in_mb = %v, want 20480", m)
	}
	if updated.Services.TotalServiceInstances != nil {
		t.Errorf("services.total_service_instances = %d, want null", *updated.Services.TotalServiceInstances)
	}

	// cf delete-org-quota platinum -f: look up, delete, poll the job.
	resp := f.do(http.MethodDelete, "/v3/organization_quotas/"+lookup("platinum"), f.admin, nil).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, f.server.URL+"/v3/jobs/") {
		t.Fatalf("Location = %q, want an absolute job URL", location)
	}
	var job struct {
		State string `json:"state"`
	}
	f.do(http.MethodGet, strings.TrimPrefix(location, f.server.URL), f.admin, nil).expect(http.StatusOK).decode(&job)
	if job.State != "COMPLETE" {
		t.Errorf("job state = %q, want COMPLETE", job.State)
	}
}
