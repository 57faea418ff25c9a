package cfapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

// appFixture is an API with one organization and space, the staging
// configuration of the local environment, and a user for each role that
// matters to apps.
type appFixture struct {
	*tenancyFixture
	orgGUID, spaceGUID string
	// Tokens of users with one role each, and of users with none.
	developer, supporter, auditor, spaceManager, orgManager, orgUser, stranger string
	globalAuditor, readOnlyAdmin                                               string
}

func newAppFixture(t *testing.T) *appFixture {
	t.Helper()
	f := &appFixture{tenancyFixture: newTenancyFixture(t)}
	f.env.api.staging = config.Staging{
		DefaultStack: "ferry-test",
		Builders:     []config.Builder{{Stack: "ferry-test", Image: "builder:test"}, {Stack: "other-stack", Image: "builder:other"}},
	}
	f.orgGUID = f.org("acme")
	f.spaceGUID = f.space(f.orgGUID, "dev")

	for _, u := range []struct {
		token     *string
		name      string
		roleType  string
		spaceRole bool
	}{
		{&f.developer, "developer", roleSpaceDeveloper, true},
		{&f.supporter, "supporter", roleSpaceSupporter, true},
		{&f.auditor, "auditor", roleSpaceAuditor, true},
		{&f.spaceManager, "space-manager", roleSpaceManager, true},
		{&f.orgManager, "org-manager", roleOrgManager, false},
		{&f.orgUser, "org-user", roleOrgUser, false},
	} {
		guid, token := f.env.newUser(u.name)
		if u.spaceRole {
			f.grant(guid, roleOrgUser, f.orgGUID, "")
			f.grant(guid, u.roleType, f.orgGUID, f.spaceGUID)
		} else {
			f.grant(guid, u.roleType, f.orgGUID, "")
		}
		*u.token = token
	}
	_, f.stranger = f.env.newUser("stranger")
	f.globalAuditor = f.scopedToken("global-auditor", auth.ScopeGlobalAuditor)
	f.readOnlyAdmin = f.scopedToken("read-only-admin", auth.ScopeAdminReadOnly, auth.ScopeRead)
	return f
}

// appBody is a POST /v3/apps body for an app in spaceGUID.
func appBody(name, spaceGUID string) map[string]any {
	return map[string]any{
		"name":          name,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": spaceGUID}}},
	}
}

// app creates an app through the API as admin and returns it.
func (f *appFixture) app(body map[string]any) map[string]any {
	f.t.Helper()
	return f.env.do(http.MethodPost, "/v3/apps", f.admin, body).expect(http.StatusCreated).object()
}

// setDroplet makes dropletGUID the app's current droplet without creating
// a droplet row: the session skips foreign-key triggers, so these tests
// do not depend on the droplets schema.
func (f *appFixture) setDroplet(appGUID, dropletGUID string) {
	f.t.Helper()
	ctx := context.Background()
	conn, err := f.env.store.DB().Conn(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET session_replication_role = replica`); err != nil {
		f.t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `SET session_replication_role = DEFAULT`)
	if _, err := conn.ExecContext(ctx, `UPDATE apps SET current_droplet_guid = $2 WHERE guid = $1`, appGUID, dropletGUID); err != nil {
		f.t.Fatal(err)
	}
}

// enableFlag turns a feature flag on or off as admin.
func (f *appFixture) enableFlag(name string, enabled bool) {
	f.t.Helper()
	f.env.do(http.MethodPatch, "/v3/feature_flags/"+name, f.admin, map[string]any{"enabled": enabled}).expect(http.StatusOK)
}

func TestAppCreateAndGet(t *testing.T) {
	f := newAppFixture(t)
	env := f.env

	body := appBody("web", f.spaceGUID)
	body["environment_variables"] = map[string]any{"MODE": "prod"}
	body["metadata"] = map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{"owner": "jo"}}
	created := env.do(http.MethodPost, "/v3/apps", f.developer, body).expect(http.StatusCreated).object()

	guid, _ := created["guid"].(string)
	self := env.server.URL + "/v3/apps/" + guid
	want := map[string]any{
		"guid":       guid,
		"created_at": created["created_at"],
		"updated_at": created["updated_at"],
		"name":       "web",
		"state":      "STOPPED",
		"lifecycle": map[string]any{
			"type": "buildpack",
			"data": map[string]any{"buildpacks": []any{}, "stack": "ferry-test"},
		},
		"relationships": map[string]any{
			"space":           map[string]any{"data": map[string]any{"guid": f.spaceGUID}},
			"current_droplet": map[string]any{"data": map[string]any{"guid": nil}},
		},
		"metadata": map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{"owner": "jo"}},
		"links": map[string]any{
			"self":                  map[string]any{"href": self},
			"environment_variables": map[string]any{"href": self + "/environment_variables"},
			"space":                 map[string]any{"href": env.server.URL + "/v3/spaces/" + f.spaceGUID},
			"processes":             map[string]any{"href": self + "/processes"},
			"packages":              map[string]any{"href": self + "/packages"},
			"current_droplet":       map[string]any{"href": self + "/droplets/current"},
			"droplets":              map[string]any{"href": self + "/droplets"},
			"tasks":                 map[string]any{"href": self + "/tasks"},
			"start":                 map[string]any{"href": self + "/actions/start", "method": "POST"},
			"stop":                  map[string]any{"href": self + "/actions/stop", "method": "POST"},
			"revisions":             map[string]any{"href": self + "/revisions"},
			"deployed_revisions":    map[string]any{"href": self + "/revisions/deployed"},
			"features":              map[string]any{"href": self + "/features"},
		},
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created app (-want +got):\n%s", diff)
	}
	if ts, _ := created["created_at"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("created_at = %q, want RFC 3339 in UTC", ts)
	}

	got := env.do(http.MethodGet, "/v3/apps/"+guid, f.auditor, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("GET differs from POST (-post +get):\n%s", diff)
	}

	events := f.events(guid)
	if len(events) != 1 || events[0].Type != "audit.app.create" || events[0].ActorName != "developer" ||
		events[0].TargetType != "app" || events[0].TargetName != "web" || events[0].SpaceGUID != f.spaceGUID || events[0].OrgGUID != f.orgGUID {
		t.Fatalf("events = %+v, want one audit.app.create by developer", events)
	}
	wantRequest := map[string]any{
		"name":                  "web",
		"relationships":         map[string]any{"space": map[string]any{"data": map[string]any{"guid": f.spaceGUID}}},
		"environment_variables": "[PRIVATE DATA HIDDEN]",
		"metadata":              map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{"owner": "jo"}},
	}
	if diff := cmp.Diff(map[string]any{"request": wantRequest}, events[0].Data); diff != "" {
		t.Errorf("audit data (-want +got):\n%s", diff)
	}
}

func TestAppCreateLifecycles(t *testing.T) {
	f := newAppFixture(t)
	env := f.env

	body := appBody("bp", f.spaceGUID)
	body["lifecycle"] = map[string]any{"type": "buildpack", "data": map[string]any{
		"buildpacks": []any{"go_buildpack", "https://user:token@git.example.com/bp.git"}, "stack": "other-stack"}}
	created := f.app(body)
	wantLifecycle := map[string]any{"type": "buildpack", "data": map[string]any{
		"buildpacks": []any{"go_buildpack", "https://***:***@git.example.com/bp.git"}, "stack": "other-stack"}}
	if diff := cmp.Diff(wantLifecycle, created["lifecycle"]); diff != "" {
		t.Errorf("buildpack lifecycle (-want +got):\n%s", diff)
	}
	guid, _ := created["guid"].(string)
	events := f.events(guid)
	if len(events) != 1 || strings.Contains(mustJSON(t, events[0].Data), "token@") {
		t.Errorf("audit event of a buildpack URL with credentials = %+v, want the credentials masked", events)
	}

	body = appBody("no-type", f.spaceGUID)
	body["lifecycle"] = map[string]any{"data": map[string]any{"stack": nil}}
	noType := f.app(body)
	if diff := cmp.Diff(map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []any{}, "stack": "ferry-test"}}, noType["lifecycle"]); diff != "" {
		t.Errorf("lifecycle without a type (-want +got):\n%s", diff)
	}

	docker := appBody("img", f.spaceGUID)
	docker["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{}}
	assertTenancyError(t, env.do(http.MethodPost, "/v3/apps", f.developer, docker), http.StatusForbidden, 330002, "Feature Disabled: diego_docker")
	if n := f.count(`SELECT count(*) FROM apps WHERE name = 'img'`); n != 0 {
		t.Errorf("docker app stored while diego_docker is disabled")
	}
	f.enableFlag("diego_docker", true)
	created = env.do(http.MethodPost, "/v3/apps", f.developer, docker).expect(http.StatusCreated).object()
	if diff := cmp.Diff(map[string]any{"type": "docker", "data": map[string]any{}}, created["lifecycle"]); diff != "" {
		t.Errorf("docker lifecycle (-want +got):\n%s", diff)
	}
}

func TestAppCreateRejectsBadInput(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	f.app(appBody("web", f.spaceGUID))
	eventsBefore := f.count(`SELECT count(*) FROM audit_events`)

	with := func(name string, mutate func(map[string]any)) map[string]any {
		body := appBody(name, f.spaceGUID)
		mutate(body)
		return body
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   int
		detail string
	}{
		{"duplicate name ignoring case", appBody("WEB", f.spaceGUID), 422, 10016, "App with the name 'WEB' already exists."},
		{"missing name", with("x", func(b map[string]any) { delete(b, "name") }), 422, 10008, "Name is required: send a name of 1 to 255 characters"},
		{"blank name", appBody("  ", f.spaceGUID), 422, 10008, "Name must not be blank"},
		{"long name", appBody(strings.Repeat("a", 256), f.spaceGUID), 422, 10008, "Name is too long: the maximum is 255 characters"},
		{"missing space", map[string]any{"name": "x"}, 422, 10008,
			"Relationships.space is required: send relationships.space.data.guid with the guid of the app's space"},
		{"unknown space", appBody("x", uuid.NewString()), 422, 10008, "Invalid space. Ensure that the space exists and you have access to it."},
		{"unknown field", with("x", func(b map[string]any) { b["command"] = "run" }), 422, 10008, "Unknown field(s): 'command'"},
		{"not JSON", "{", 400, 1001, "Request invalid due to parse error: the body is not valid JSON"},
		{"unknown lifecycle type", with("x", func(b map[string]any) { b["lifecycle"] = map[string]any{"type": "cnb", "data": map[string]any{}} }),
			422, 10008, "Lifecycle type is not included in the list: buildpack, docker"},
		{"lifecycle without data", with("x", func(b map[string]any) { b["lifecycle"] = map[string]any{"type": "buildpack"} }),
			422, 10008, `Lifecycle data must be an object: send {} for docker apps or {"buildpacks":[],"stack":"NAME"} for buildpack apps`},
		{"lifecycle data not an object", with("x", func(b map[string]any) { b["lifecycle"] = map[string]any{"type": "buildpack", "data": []any{}} }),
			422, 10008, "Lifecycle data must be an object"},
		{"docker data with buildpacks", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{"buildpacks": []any{"x"}}}
		}), 422, 10008, "Lifecycle Unknown field(s): 'buildpacks'"},
		{"buildpack data with unknown key", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"type": "buildpack", "data": map[string]any{"image": "nginx"}}
		}), 422, 10008, "Lifecycle Unknown field(s): 'image'"},
		{"non-string buildpack", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"data": map[string]any{"buildpacks": []any{1}}}
		}), 422, 10008, "Lifecycle Buildpacks can only contain strings"},
		{"blank buildpack", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"data": map[string]any{"buildpacks": []any{""}}}
		}), 422, 10008, "Lifecycle Buildpacks entries must be between 1 and 4096 characters"},
		{"buildpacks not an array", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"data": map[string]any{"buildpacks": "go"}}
		}), 422, 10008, "Lifecycle Buildpacks must be an array"},
		{"unknown stack", with("x", func(b map[string]any) {
			b["lifecycle"] = map[string]any{"data": map[string]any{"stack": "cflinuxfs4"}}
		}), 422, 10008, "Stack must be an existing stack: 'cflinuxfs4' is not one of 'ferry-test', 'other-stack'"},
		{"environment not an object", with("x", func(b map[string]any) { b["environment_variables"] = []any{"A=1"} }),
			422, 10008, "Environment variables must be an object"},
		{"non-string environment value", with("x", func(b map[string]any) { b["environment_variables"] = map[string]any{"N": 42} }),
			422, 10008, "Non-string value in environment variable for key 'N', value '42'"},
		{"reserved environment names", with("x", func(b map[string]any) {
			b["environment_variables"] = map[string]any{"vcap_x": "1", "VMCX": "1", "port": "1", "": "1", "A=B": "1"}
		}), 422, 10008, "Environment variables key must be a minimum length of 1, " +
			"Environment variables key 'A=B' must not contain '=' or NUL characters, " +
			"Environment variables cannot start with VMC_, Environment variables cannot set PORT, Environment variables cannot start with VCAP_"},
		{"invalid label", with("x", func(b map[string]any) { b["metadata"] = map[string]any{"labels": map[string]any{"-bad": "x"}} }),
			422, 10008, "Metadata label key '-bad' is invalid: the name must start and end with a letter or digit"},
		{"query parameter", nil, 400, 10005, "The query parameter is invalid: Unknown query parameter(s): 'x'. Valid parameters are: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/v3/apps"
			body := tt.body
			if tt.name == "query parameter" {
				path, body = "/v3/apps?x=1", appBody("x", f.spaceGUID)
			}
			assertTenancyError(t, env.do(http.MethodPost, path, f.developer, body), tt.status, tt.code, tt.detail)
		})
	}

	if n := f.count(`SELECT count(*) FROM apps`); n != 1 {
		t.Errorf("apps after rejected requests = %d, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_events`); n != eventsBefore {
		t.Errorf("audit events after rejected requests = %d, want %d", n, eventsBefore)
	}
}

func TestAppPermissions(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.setDroplet(guid, uuid.NewString())
	path := "/v3/apps/" + guid

	const (
		forbidden = "You are not authorized to perform the requested action"
		notFound  = "App not found"
	)
	type call struct {
		method, path string
		body         any
	}
	calls := map[string]call{
		"get":      {http.MethodGet, path, nil},
		"create":   {http.MethodPost, "/v3/apps", appBody("new", f.spaceGUID)},
		"update":   {http.MethodPatch, path, map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}}}},
		"start":    {http.MethodPost, path + "/actions/start", nil},
		"stop":     {http.MethodPost, path + "/actions/stop", nil},
		"set-env":  {http.MethodPatch, path + "/environment_variables", map[string]any{"var": map[string]any{"A": "1"}}},
		"read-env": {http.MethodGet, path + "/env", nil},
	}
	tests := []struct {
		actor string
		token string
		// want maps each call to its status; calls not listed expect 403.
		want map[string]int
	}{
		{"developer", f.developer, map[string]int{"get": 200, "create": 201, "update": 200, "start": 200, "stop": 200, "set-env": 200, "read-env": 200}},
		{"supporter", f.supporter, map[string]int{"get": 200, "start": 200, "stop": 200, "set-env": 200, "read-env": 200}},
		{"space auditor", f.auditor, map[string]int{"get": 200}},
		{"space manager", f.spaceManager, map[string]int{"get": 200}},
		{"org manager", f.orgManager, map[string]int{"get": 200}},
		{"org user", f.orgUser, map[string]int{"get": 404, "update": 404, "start": 404, "stop": 404, "set-env": 404, "read-env": 404, "create": 422}},
		{"stranger", f.stranger, map[string]int{"get": 404, "update": 404, "start": 404, "stop": 404, "set-env": 404, "read-env": 404, "create": 422}},
		{"global auditor", f.globalAuditor, map[string]int{"get": 200}},
		{"read-only admin", f.readOnlyAdmin, map[string]int{"get": 200, "read-env": 200}},
		{"admin", f.admin, map[string]int{"get": 200, "create": 201, "update": 200, "start": 200, "stop": 200, "set-env": 200, "read-env": 200}},
	}
	for _, tt := range tests {
		t.Run(tt.actor, func(t *testing.T) {
			for name, c := range calls {
				body := c.body
				if name == "create" {
					body = appBody("new-"+strings.ReplaceAll(tt.actor, " ", "-"), f.spaceGUID)
				}
				want, listed := tt.want[name]
				if !listed {
					want = http.StatusForbidden
				}
				resp := env.do(c.method, c.path, tt.token, body)
				if resp.Status != want {
					t.Errorf("%s: status %d, want %d; body %s", name, resp.Status, want, resp.Body)
					continue
				}
				switch want {
				case http.StatusForbidden:
					if _, _, detail := resp.cfError(); detail != forbidden {
						t.Errorf("%s: detail %q, want %q", name, detail, forbidden)
					}
				case http.StatusNotFound:
					if _, _, detail := resp.cfError(); detail != notFound {
						t.Errorf("%s: detail %q, want %q", name, detail, notFound)
					}
				}
			}
		})
	}

	// Only admins and developers may delete; the job is checked elsewhere.
	for _, token := range []string{f.supporter, f.auditor, f.spaceManager, f.orgManager, f.globalAuditor, f.readOnlyAdmin} {
		assertTenancyError(t, env.do(http.MethodDelete, path, token, nil), http.StatusForbidden, 10003, forbidden)
	}
	assertTenancyError(t, env.do(http.MethodDelete, path, f.stranger, nil), http.StatusNotFound, 10010, notFound)
}

func TestAppWritesInSuspendedSpaceOrOrg(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	update := map[string]any{"name": "renamed"}

	env.do(http.MethodPatch, "/v3/spaces/"+f.spaceGUID, f.admin, map[string]any{"suspended": true}).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/apps/"+guid, f.developer, update), http.StatusForbidden, 10019, "The space is suspended")
	assertTenancyError(t, env.do(http.MethodPost, "/v3/apps", f.developer, appBody("new", f.spaceGUID)), http.StatusForbidden, 10019, "The space is suspended")
	env.do(http.MethodPatch, "/v3/spaces/"+f.spaceGUID, f.admin, map[string]any{"suspended": false}).expect(http.StatusOK)

	env.do(http.MethodPatch, "/v3/organizations/"+f.orgGUID, f.admin, map[string]any{"suspended": true}).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/apps/"+guid, f.developer, update), http.StatusForbidden, 10017, "The organization is suspended")
	env.do(http.MethodPatch, "/v3/apps/"+guid, f.admin, update).expect(http.StatusOK)
}

func TestAppList(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	f.enableFlag("diego_docker", true)
	prodGUID := f.space(f.orgGUID, "prod")
	otherOrg := f.org("other")
	farSpace := f.space(otherOrg, "far")

	web := appBody("web", f.spaceGUID)
	web["metadata"] = map[string]any{"labels": map[string]any{"tier": "web"}}
	webGUID, _ := f.app(web)["guid"].(string)
	worker := appBody("Worker", f.spaceGUID)
	worker["lifecycle"] = map[string]any{"data": map[string]any{"stack": "other-stack"}}
	f.app(worker)
	img := appBody("img", prodGUID)
	img["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{}}
	f.app(img)
	f.app(appBody("far", farSpace))
	f.setDroplet(webGUID, uuid.NewString())
	env.do(http.MethodPost, "/v3/apps/"+webGUID+"/actions/start", f.admin, nil).expect(http.StatusOK)

	names := func(token, query string) []string {
		t.Helper()
		var body struct {
			Resources []appJSON `json:"resources"`
		}
		env.do(http.MethodGet, "/v3/apps"+query, token, nil).expect(http.StatusOK).decode(&body)
		out := []string{}
		for _, a := range body.Resources {
			out = append(out, a.Name)
		}
		return out
	}
	tests := []struct {
		name, token, query string
		want               []string
	}{
		{"admin by name", f.admin, "?order_by=name", []string{"far", "img", "web", "Worker"}},
		{"default order is creation", f.admin, "", []string{"web", "Worker", "img", "far"}},
		{"name descending", f.admin, "?order_by=-name", []string{"Worker", "web", "img", "far"}},
		{"state", f.admin, "?order_by=-state&names=web,img", []string{"img", "web"}},
		{"developer sees own space", f.developer, "?order_by=name", []string{"web", "Worker"}},
		{"org manager sees the org", f.orgManager, "?order_by=name", []string{"img", "web", "Worker"}},
		{"org user sees nothing", f.orgUser, "", []string{}},
		{"global auditor sees all", f.globalAuditor, "?order_by=name", []string{"far", "img", "web", "Worker"}},
		{"names", f.admin, "?order_by=name&names=WEB,worker", []string{"web", "Worker"}},
		{"space guids", f.admin, "?order_by=name&space_guids=" + prodGUID + "," + farSpace, []string{"far", "img"}},
		{"organization guids", f.admin, "?organization_guids=" + otherOrg, []string{"far"}},
		{"stacks", f.admin, "?stacks=other-stack", []string{"Worker"}},
		{"lifecycle type", f.admin, "?lifecycle_type=docker", []string{"img"}},
		{"label selector", f.admin, "?label_selector=tier%3Dweb", []string{"web"}},
		{"guids", f.admin, "?guids=" + webGUID, []string{"web"}},
		{"empty names", f.admin, "?names=", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, names(tt.token, tt.query)); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}

	page := env.do(http.MethodGet, "/v3/apps?order_by=name&per_page=3&page=2", f.admin, nil).expect(http.StatusOK).object()
	pagination, _ := page["pagination"].(map[string]any)
	if pagination["total_results"] != float64(4) || pagination["total_pages"] != float64(2) || pagination["next"] != nil {
		t.Errorf("pagination of page 2 = %v", pagination)
	}
	if prev, _ := pagination["previous"].(map[string]any); prev == nil || !strings.Contains(prev["href"].(string), "order_by=name") {
		t.Errorf("previous link = %v, want one that keeps order_by", pagination["previous"])
	}

	for query, detail := range map[string]string{
		"?lifecycle_type=cnb": "The query parameter is invalid: Lifecycle type must be one of 'buildpack', 'docker'",
		"?order_by=stack":     "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at', 'name', 'state'",
		"?include=droplet":    "The query parameter is invalid: Invalid included resource: 'droplet'. Valid included resources are: 'space', 'org', 'space.organization'",
	} {
		assertTenancyError(t, env.do(http.MethodGet, "/v3/apps"+query, f.admin, nil), http.StatusBadRequest, 10005, detail)
	}
	resp := env.do(http.MethodGet, "/v3/apps?space_guid="+f.spaceGUID, f.admin, nil).expect(http.StatusBadRequest)
	if _, _, detail := resp.cfError(); !strings.Contains(detail, "Unknown query parameter(s): 'space_guid'") {
		t.Errorf("unknown parameter detail = %q", detail)
	}
}

func TestAppIncludes(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	prodGUID := f.space(f.orgGUID, "prod")
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.app(appBody("api", f.spaceGUID))
	f.app(appBody("db", prodGUID))

	included := func(path string) map[string][]string {
		t.Helper()
		var body struct {
			Included map[string][]struct {
				GUID string `json:"guid"`
			} `json:"included"`
		}
		env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).decode(&body)
		out := map[string][]string{}
		for kind, resources := range body.Included {
			out[kind] = []string{}
			for _, r := range resources {
				out[kind] = append(out[kind], r.GUID)
			}
		}
		return out
	}
	tests := []struct {
		path string
		want map[string][]string
	}{
		{"/v3/apps?include=space&order_by=name", map[string][]string{"spaces": {f.spaceGUID, prodGUID}}},
		{"/v3/apps?include=org", map[string][]string{"organizations": {f.orgGUID}}},
		{"/v3/apps?include=space.organization&names=web", map[string][]string{"spaces": {f.spaceGUID}, "organizations": {f.orgGUID}}},
		{"/v3/apps/" + guid + "?include=space", map[string][]string{"spaces": {f.spaceGUID}}},
		{"/v3/apps/" + guid, map[string][]string{}},
		{"/v3/apps?names=none&include=space", map[string][]string{"spaces": {}}},
	}
	for _, tt := range tests {
		got := included(tt.path)
		// Spaces come back ordered by name: dev before prod.
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET %s included (-want +got):\n%s", tt.path, diff)
		}
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+guid+"?names=web", f.admin, nil), http.StatusBadRequest, 10005,
		"The query parameter is invalid: Unknown query parameter(s): 'names'. Valid parameters are: 'page', 'per_page', 'include'")
}

func TestAppUpdate(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	body := appBody("web", f.spaceGUID)
	body["lifecycle"] = map[string]any{"data": map[string]any{"buildpacks": []any{"go_buildpack"}, "stack": "other-stack"}}
	body["metadata"] = map[string]any{"labels": map[string]any{"keep": "1", "drop": "2"}}
	guid, _ := f.app(body)["guid"].(string)
	f.app(appBody("taken", f.spaceGUID))
	path := "/v3/apps/" + guid

	updated := env.do(http.MethodPatch, path, f.developer, map[string]any{
		"name":      "api",
		"lifecycle": map[string]any{"data": map[string]any{"buildpacks": []any{"nodejs_buildpack", "go_buildpack"}}},
		"metadata":  map[string]any{"labels": map[string]any{"drop": nil, "new": "3"}},
	}).expect(http.StatusOK).object()
	if updated["name"] != "api" {
		t.Errorf("name = %v", updated["name"])
	}
	wantLifecycle := map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []any{"nodejs_buildpack", "go_buildpack"}, "stack": "other-stack"}}
	if diff := cmp.Diff(wantLifecycle, updated["lifecycle"]); diff != "" {
		t.Errorf("lifecycle after buildpacks change (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"labels": map[string]any{"keep": "1", "new": "3"}, "annotations": map[string]any{}}, updated["metadata"]); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}

	reset := env.do(http.MethodPatch, path, f.developer, map[string]any{
		"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": nil, "stack": nil}},
	}).expect(http.StatusOK).object()
	wantLifecycle = map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []any{}, "stack": "ferry-test"}}
	if diff := cmp.Diff(wantLifecycle, reset["lifecycle"]); diff != "" {
		t.Errorf("lifecycle after reset (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name   string
		body   any
		code   int
		detail string
	}{
		{"taken name", map[string]any{"name": "TAKEN"}, 10016, "App with the name 'TAKEN' already exists."},
		{"lifecycle type change", map[string]any{"lifecycle": map[string]any{"type": "docker", "data": map[string]any{}}}, 10008,
			"Lifecycle type cannot be changed from buildpack to docker"},
		{"unknown stack", map[string]any{"lifecycle": map[string]any{"data": map[string]any{"stack": "nope"}}}, 10008,
			"Stack must be an existing stack: 'nope' is not one of 'ferry-test', 'other-stack'"},
		{"environment variables", map[string]any{"environment_variables": map[string]any{}}, 10008, "Unknown field(s): 'environment_variables'"},
		{"blank name", map[string]any{"name": ""}, 10008, "Name must not be blank"},
	} {
		assertTenancyError(t, env.do(http.MethodPatch, path, f.developer, tt.body), http.StatusUnprocessableEntity, tt.code, tt.detail)
	}
	got := env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).object()
	if got["name"] != "api" {
		t.Errorf("name after rejected updates = %v, want api", got["name"])
	}

	var updates []recordedEvent
	for _, ev := range f.events(guid) {
		if ev.Type == "audit.app.update" {
			updates = append(updates, ev)
		}
	}
	if len(updates) != 2 {
		t.Fatalf("audit.app.update events = %d, want 2", len(updates))
	}
	wantRequest := map[string]any{"request": map[string]any{
		"name":      "api",
		"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []any{"nodejs_buildpack", "go_buildpack"}}},
		"metadata":  map[string]any{"labels": map[string]any{"drop": nil, "new": "3"}},
	}}
	if diff := cmp.Diff(wantRequest, updates[0].Data); diff != "" {
		t.Errorf("update audit data (-want +got):\n%s", diff)
	}

	assertTenancyError(t, env.do(http.MethodPatch, "/v3/apps/"+uuid.NewString(), f.admin, map[string]any{"name": "x"}), http.StatusNotFound, 10010, "App not found")
}

func TestAppStateActions(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	path := "/v3/apps/" + guid

	for _, action := range []string{"start", "restart"} {
		assertTenancyError(t, env.do(http.MethodPost, path+"/actions/"+action, f.developer, nil), http.StatusUnprocessableEntity, 10008,
			"Assign a droplet before starting this app.")
	}
	stopped := env.do(http.MethodPost, path+"/actions/stop", f.developer, nil).expect(http.StatusOK).object()
	if stopped["state"] != "STOPPED" {
		t.Errorf("state after stop = %v", stopped["state"])
	}

	droplet := uuid.NewString()
	f.setDroplet(guid, droplet)
	started := env.do(http.MethodPost, path+"/actions/start", f.supporter, nil).expect(http.StatusOK).object()
	rel, _ := started["relationships"].(map[string]any)
	if started["state"] != "STARTED" || !cmp.Equal(rel["current_droplet"], map[string]any{"data": map[string]any{"guid": droplet}}) {
		t.Errorf("after start: state %v, current_droplet %v", started["state"], rel["current_droplet"])
	}
	stopped = env.do(http.MethodPost, path+"/actions/stop", f.developer, nil).expect(http.StatusOK).object()
	if stopped["state"] != "STOPPED" {
		t.Errorf("state after stop = %v", stopped["state"])
	}
	restarted := env.do(http.MethodPost, path+"/actions/restart", f.developer, nil).expect(http.StatusOK).object()
	if restarted["state"] != "STARTED" {
		t.Errorf("state after restart = %v", restarted["state"])
	}

	var types []string
	for _, ev := range f.events(guid) {
		types = append(types, ev.Type)
		if ev.Type != "audit.app.create" && len(ev.Data) != 0 {
			t.Errorf("%s data = %v, want none", ev.Type, ev.Data)
		}
	}
	want := []string{"audit.app.create", "audit.app.stop", "audit.app.start", "audit.app.stop", "audit.app.restart"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}

	f.enableFlag("diego_docker", true)
	docker := appBody("img", f.spaceGUID)
	docker["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{}}
	dockerGUID, _ := f.app(docker)["guid"].(string)
	f.setDroplet(dockerGUID, uuid.NewString())
	f.enableFlag("diego_docker", false)
	assertTenancyError(t, env.do(http.MethodPost, "/v3/apps/"+dockerGUID+"/actions/start", f.developer, nil), http.StatusForbidden, 330002, "Feature Disabled: diego_docker")
	env.do(http.MethodPost, "/v3/apps/"+dockerGUID+"/actions/stop", f.developer, nil).expect(http.StatusOK)
}

// TestAppRestartReplacesInstances checks the start count the controller
// puts into the pod template: restart raises it whether the app runs or
// not, start only when the app was stopped, and a rejected action not at
// all.
func TestAppRestartReplacesInstances(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	path := "/v3/apps/" + guid
	startCount := func() int64 {
		t.Helper()
		app, err := env.store.App(context.Background(), store.Visibility{All: true}, guid)
		if err != nil {
			t.Fatal(err)
		}
		return app.StartCount
	}

	env.do(http.MethodPost, path+"/actions/restart", f.developer, nil).expect(http.StatusUnprocessableEntity)
	if got := startCount(); got != 0 {
		t.Errorf("start count after a rejected restart = %d, want 0", got)
	}

	f.setDroplet(guid, uuid.NewString())
	for _, step := range []struct {
		action    string
		wantState string
		wantCount int64
	}{
		{"restart", "STARTED", 1}, // a stopped app starts
		{"restart", "STARTED", 2}, // a started app gets new instances
		{"start", "STARTED", 2},   // starting a started app changes nothing
		{"stop", "STOPPED", 2},
		{"start", "STARTED", 3},
	} {
		app := env.do(http.MethodPost, path+"/actions/"+step.action, f.developer, nil).expect(http.StatusOK).object()
		if app["state"] != step.wantState {
			t.Errorf("state after %s = %v, want %s", step.action, app["state"], step.wantState)
		}
		if got := startCount(); got != step.wantCount {
			t.Errorf("start count after %s = %d, want %d", step.action, got, step.wantCount)
		}
	}
}

func TestAppDelete(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	ctx := context.Background()
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	env.do(http.MethodPatch, "/v3/apps/"+guid+"/environment_variables", f.admin, map[string]any{"var": map[string]any{"A": "1"}}).expect(http.StatusOK)

	resp := env.do(http.MethodDelete, "/v3/apps/"+guid, f.developer, nil).expect(http.StatusAccepted)
	if len(resp.Body) != 0 {
		t.Errorf("DELETE body = %s, want none", resp.Body)
	}
	jobGUID, found := strings.CutPrefix(resp.Header.Get("Location"), env.server.URL+"/v3/jobs/")
	if !found {
		t.Fatalf("Location = %q", resp.Header.Get("Location"))
	}
	env.runner.RunPending(ctx)

	job, err := env.store.Job(ctx, jobGUID)
	if err != nil || job.State != store.JobComplete || job.Operation != "app.delete" {
		t.Fatalf("job = %+v, %v; want a COMPLETE app.delete", job, err)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+guid, f.admin, nil), http.StatusNotFound, 10010, "App not found")
	if n := f.count(`SELECT count(*) FROM apps WHERE guid = $1`, guid); n != 0 {
		t.Errorf("app row left after delete")
	}
	var deleteEvents int
	for _, ev := range f.events(guid) {
		if ev.Type == "audit.app.delete-request" {
			deleteEvents++
			if diff := cmp.Diff(map[string]any{"request": map[string]any{"recursive": true}}, ev.Data); diff != "" {
				t.Errorf("delete-request data (-want +got):\n%s", diff)
			}
		}
	}
	if deleteEvents != 1 {
		t.Errorf("audit.app.delete-request events = %d, want 1", deleteEvents)
	}

	// The job succeeds again when the app is already gone.
	if err := env.api.runAppDelete(ctx, job); err != nil {
		t.Errorf("second run of the delete job: %v", err)
	}
}

func TestAppSpaceDeleteRemovesApps(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)

	env.do(http.MethodDelete, "/v3/spaces/"+f.spaceGUID, f.admin, nil).expect(http.StatusAccepted)
	env.runner.RunPending(context.Background())
	if n := f.count(`SELECT count(*) FROM apps WHERE guid = $1`, guid); n != 0 {
		t.Errorf("app left after its space was deleted")
	}
}

func TestAppPermissionsEndpoint(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	for _, tt := range []struct {
		actor, token string
		sensitive    bool
	}{
		{"developer", f.developer, true},
		{"supporter", f.supporter, false},
		{"auditor", f.auditor, false},
		{"global auditor", f.globalAuditor, false},
		{"read-only admin", f.readOnlyAdmin, true},
		{"admin", f.admin, true},
	} {
		got := env.do(http.MethodGet, "/v3/apps/"+guid+"/permissions", tt.token, nil).expect(http.StatusOK).object()
		want := map[string]any{"read_basic_data": true, "read_sensitive_data": tt.sensitive}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: permissions (-want +got):\n%s", tt.actor, diff)
		}
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+guid+"/permissions", f.stranger, nil), http.StatusNotFound, 10010, "App not found")
}

func TestAppFeatures(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	base := "/v3/apps/" + guid

	list := env.do(http.MethodGet, base+"/features", f.auditor, nil).expect(http.StatusOK).object()
	self := env.server.URL + base + "/features"
	want := map[string]any{
		"resources": []any{
			map[string]any{"name": "ssh", "description": "Enable SSHing into the app.", "enabled": false},
			map[string]any{"name": "revisions", "description": "Enable versioning of an application", "enabled": true},
			map[string]any{"name": "service-binding-k8s", "description": "Enable k8s service bindings for the app", "enabled": false},
			map[string]any{"name": "file-based-vcap-services", "description": "Enable file-based VCAP service bindings for the app", "enabled": false},
		},
		"pagination": map[string]any{
			"total_results": float64(4), "total_pages": float64(1),
			"first": map[string]any{"href": self}, "last": map[string]any{"href": self},
			"next": nil, "previous": nil,
		},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("features (-want +got):\n%s", diff)
	}

	ssh := env.do(http.MethodGet, base+"/features/ssh", f.auditor, nil).expect(http.StatusOK).object()
	if ssh["enabled"] != false || ssh["name"] != "ssh" {
		t.Errorf("ssh feature = %v", ssh)
	}
	assertTenancyError(t, env.do(http.MethodGet, base+"/features/warp", f.auditor, nil), http.StatusNotFound, 10010, "Feature not found")
	assertTenancyError(t, env.do(http.MethodGet, base+"/features/ssh", f.stranger, nil), http.StatusNotFound, 10010, "App not found")

	env.do(http.MethodPatch, base+"/features/ssh", f.developer, map[string]any{"enabled": false}).expect(http.StatusOK)
	assertTenancyError(t, env.do(http.MethodPatch, base+"/features/ssh", f.developer, map[string]any{"enabled": true}), http.StatusUnprocessableEntity, 10008,
		"SSH cannot be enabled: Ferry does not offer SSH access to app instances")
	assertTenancyError(t, env.do(http.MethodPatch, base+"/features/ssh", f.supporter, map[string]any{"enabled": false}), http.StatusForbidden, 10003,
		"You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, base+"/features/revisions", f.developer, map[string]any{}), http.StatusUnprocessableEntity, 10008,
		"Enabled must be a boolean")

	revisions := env.do(http.MethodPatch, base+"/features/revisions", f.supporter, map[string]any{"enabled": false}).expect(http.StatusOK).object()
	if revisions["enabled"] != false {
		t.Errorf("revisions after disabling = %v", revisions)
	}
	revisions = env.do(http.MethodGet, base+"/features/revisions", f.auditor, nil).expect(http.StatusOK).object()
	if revisions["enabled"] != false {
		t.Errorf("revisions read back = %v", revisions)
	}

	sshEnabled := env.do(http.MethodGet, base+"/ssh_enabled", f.auditor, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"enabled": false, "reason": "ssh is disabled globally"}, sshEnabled); diff != "" {
		t.Errorf("ssh_enabled (-want +got):\n%s", diff)
	}
}

// mustJSON renders v for substring checks.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
