package cfapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// roleTestEnv seeds orgs, spaces, identities and roles directly in the
// database, so role tests do not depend on the org and space endpoints.
type roleTestEnv struct {
	*testEnv
}

func newRoleTestEnv(t *testing.T) *roleTestEnv {
	return &roleTestEnv{testEnv: newTestEnv(t)}
}

func (e *roleTestEnv) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := e.store.DB().ExecContext(context.Background(), query, args...); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

func (e *roleTestEnv) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (e *roleTestEnv) org(name string) string {
	guid := uuid.NewString()
	e.exec(`INSERT INTO organizations (guid, name, quota_guid) SELECT $1, $2, guid FROM organization_quotas WHERE name = 'default'`, guid, name)
	return guid
}

func (e *roleTestEnv) space(orgGUID, name string) string {
	guid := uuid.NewString()
	e.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, $2, $3)`, guid, name, orgGUID)
	return guid
}

// identity creates a UAA user without a Cloud Controller record and returns
// its id.
func (e *roleTestEnv) identity(username, origin string) string {
	e.t.Helper()
	u, err := e.store.CreateUAAUser(context.Background(), store.UAAUser{ID: uuid.NewString(), Username: username, Origin: origin})
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// person creates a UAA user with a Cloud Controller record and returns its
// guid and a token with ordinary user scopes plus extra.
func (e *roleTestEnv) person(username string, extra ...string) (string, string) {
	e.t.Helper()
	guid := e.identity(username, "uaa")
	e.exec(`INSERT INTO users (guid) VALUES ($1)`, guid)
	scopes := append([]string{auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID}, extra...)
	return guid, e.token(auth.Actor{UserGUID: guid, UserName: username, Origin: "uaa", ClientID: "cf", Scopes: scopes})
}

// grant inserts a role row; target is an org guid for org role types and a
// space guid for space role types.
func (e *roleTestEnv) grant(userGUID, roleType, target string) string {
	guid := uuid.NewString()
	if strings.HasPrefix(roleType, "space_") {
		e.exec(`INSERT INTO roles (guid, type, user_guid, space_guid) VALUES ($1, $2, $3, $4)`, guid, roleType, userGUID, target)
	} else {
		e.exec(`INSERT INTO roles (guid, type, user_guid, organization_guid) VALUES ($1, $2, $3, $4)`, guid, roleType, userGUID, target)
	}
	return guid
}

func (e *roleTestEnv) roleCount() int { return e.count(`SELECT count(*) FROM roles`) }

// byUsername is a role body as the cf CLI sends it for a user named by
// username, with origin only when given.
func byUsername(roleType, targetKind, targetGUID, username, origin string) map[string]any {
	user := map[string]any{"username": username}
	if origin != "" {
		user["origin"] = origin
	}
	return map[string]any{"type": roleType, "relationships": map[string]any{
		targetKind: map[string]any{"data": map[string]any{"guid": targetGUID}},
		"user":     map[string]any{"data": user},
	}}
}

func byGUID(roleType, targetKind, targetGUID, userGUID string) map[string]any {
	return map[string]any{"type": roleType, "relationships": map[string]any{
		targetKind: map[string]any{"data": map[string]any{"guid": targetGUID}},
		"user":     map[string]any{"data": map[string]any{"guid": userGUID}},
	}}
}

type roleResponse struct {
	GUID          string `json:"guid"`
	Type          string `json:"type"`
	CreatedAt     string `json:"created_at"`
	Relationships map[string]struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	} `json:"relationships"`
	Links map[string]struct {
		Href string `json:"href"`
	} `json:"links"`
}

func (r roleResponse) related(name string) string {
	rel, ok := r.Relationships[name]
	if !ok || rel.Data == nil {
		return ""
	}
	return rel.Data.GUID
}

// expectCFError fails unless resp has status and the v3 error detail.
func expectCFError(t *testing.T, resp *testResponse, status int, title, detail string) {
	t.Helper()
	resp.expect(status)
	_, gotTitle, gotDetail := resp.cfError()
	if gotTitle != title {
		t.Errorf("title = %q, want %q", gotTitle, title)
	}
	if gotDetail != detail {
		t.Errorf("detail = %q, want %q", gotDetail, detail)
	}
}

func TestRolesCreateSpaceSequenceAsCfCLI(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	spaceGUID := env.space(orgGUID, "dev")
	aliceGUID := env.identity("alice", "uaa")

	// cf create-space posts these four roles for the current user.
	var orgUser roleResponse
	env.do(http.MethodPost, "/v3/roles", admin, byUsername("organization_user", "organization", orgGUID, "alice", "")).
		expect(http.StatusCreated).decode(&orgUser)
	env.do(http.MethodPost, "/v3/roles", admin, byUsername("space_manager", "space", spaceGUID, "alice", "")).
		expect(http.StatusCreated)
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", admin, byUsername("organization_user", "organization", orgGUID, "alice", "")),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "User 'alice' already has 'organization_user' role in organization 'acme'.")
	var developer roleResponse
	env.do(http.MethodPost, "/v3/roles", admin, byUsername("space_developer", "space", spaceGUID, "alice", "")).
		expect(http.StatusCreated).decode(&developer)

	if orgUser.Type != "organization_user" || orgUser.related("user") != aliceGUID || orgUser.related("organization") != orgGUID {
		t.Errorf("org role = %+v", orgUser)
	}
	if _, ok := orgUser.Relationships["space"]; !ok || orgUser.related("space") != "" {
		t.Errorf("org role space relationship = %+v, want data null", orgUser.Relationships["space"])
	}
	if developer.related("space") != spaceGUID || developer.related("organization") != "" {
		t.Errorf("space role relationships = %+v", developer.Relationships)
	}
	wantLinks := map[string]string{
		"self":  env.server.URL + "/v3/roles/" + developer.GUID,
		"user":  env.server.URL + "/v3/users/" + aliceGUID,
		"space": env.server.URL + "/v3/spaces/" + spaceGUID,
	}
	for name, want := range wantLinks {
		if got := developer.Links[name].Href; got != want {
			t.Errorf("links.%s = %q, want %q", name, got, want)
		}
	}
	if got := env.count(`SELECT count(*) FROM users WHERE guid = $1`, aliceGUID); got != 1 {
		t.Errorf("Cloud Controller records of alice = %d, want 1 (created with the first role)", got)
	}
	if got := env.roleCount(); got != 3 {
		t.Errorf("roles = %d, want 3", got)
	}

	var events struct {
		Resources []struct {
			Type   string `json:"type"`
			Target struct {
				GUID string `json:"guid"`
				Type string `json:"type"`
				Name string `json:"name"`
			} `json:"target"`
			Actor struct {
				Name string `json:"name"`
			} `json:"actor"`
			Space        *struct{ GUID string } `json:"space"`
			Organization *struct{ GUID string } `json:"organization"`
			Data         struct {
				Request map[string]any `json:"request"`
			} `json:"data"`
		} `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/audit_events?target_guids="+aliceGUID, admin, nil).expect(http.StatusOK).decode(&events)
	var types []string
	for _, ev := range events.Resources {
		types = append(types, ev.Type)
	}
	want := "audit.user.organization_user_add,audit.user.space_manager_add,audit.user.space_developer_add"
	if strings.Join(types, ",") != want {
		t.Fatalf("event types = %v, want %s (the duplicate records nothing)", types, want)
	}
	last := events.Resources[2]
	if last.Target.Name != "alice" || last.Target.Type != "user" || last.Actor.Name != "admin" {
		t.Errorf("event target/actor = %+v / %+v", last.Target, last.Actor)
	}
	if last.Space == nil || last.Space.GUID != spaceGUID || last.Organization == nil || last.Organization.GUID != orgGUID {
		t.Errorf("event space/org = %+v / %+v", last.Space, last.Organization)
	}
	if last.Data.Request["type"] != "space_developer" {
		t.Errorf("event data.request = %v", last.Data.Request)
	}
}

func TestRolesCreateByGUIDCreatesUserForOrgRole(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	spaceGUID := env.space(orgGUID, "dev")
	external := "user-from-another-idp"

	env.do(http.MethodPost, "/v3/roles", admin, byGUID("organization_auditor", "organization", orgGUID, external)).
		expect(http.StatusCreated)
	if got := env.count(`SELECT count(*) FROM users WHERE guid = $1`, external); got != 1 {
		t.Fatalf("user records = %d, want 1", got)
	}

	// A space role needs organization_user, not just any org role.
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", admin, byGUID("space_auditor", "space", spaceGUID, external)),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", msgSpaceUserNotInOrg)

	env.do(http.MethodPost, "/v3/roles", admin, byGUID("organization_user", "organization", orgGUID, external)).
		expect(http.StatusCreated)
	env.do(http.MethodPost, "/v3/roles", admin, byGUID("space_auditor", "space", spaceGUID, external)).
		expect(http.StatusCreated)

	// Without a username the duplicate message names the guid.
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", admin, byGUID("space_auditor", "space", spaceGUID, external)),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", "User '"+external+"' already has 'space_auditor' role in space 'dev'.")

	// A space role for a guid without any user record is refused.
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", admin, byGUID("space_developer", "space", spaceGUID, "nobody")),
		http.StatusUnprocessableEntity, "CF-UnprocessableEntity", msgSpaceUserNotInOrg)
}

func TestRolesCreateEveryType(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	spaceGUID := env.space(orgGUID, "dev")
	bob := env.identity("bob", "uaa")

	for _, roleType := range []string{"organization_user", "organization_auditor", "organization_manager", "organization_billing_manager"} {
		var role roleResponse
		env.do(http.MethodPost, "/v3/roles", admin, byGUID(roleType, "organization", orgGUID, bob)).expect(http.StatusCreated).decode(&role)
		if role.Type != roleType || role.related("organization") != orgGUID {
			t.Errorf("%s: role = %+v", roleType, role)
		}
	}
	for _, roleType := range []string{"space_developer", "space_auditor", "space_manager", "space_supporter"} {
		var role roleResponse
		env.do(http.MethodPost, "/v3/roles", admin, byGUID(roleType, "space", spaceGUID, bob)).expect(http.StatusCreated).decode(&role)
		if role.Type != roleType || role.related("space") != spaceGUID {
			t.Errorf("%s: role = %+v", roleType, role)
		}
	}
	if got := env.roleCount(); got != 8 {
		t.Errorf("roles = %d, want 8", got)
	}
}

func TestRolesCreateRejectsBadInput(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	spaceGUID := env.space(orgGUID, "dev")
	env.identity("alice", "uaa")
	env.identity("carol", "uaa")
	env.identity("carol", "ldap")
	env.person("dave")

	allowed := `Type must be one of the allowed types ["organization_auditor", "organization_manager", ` +
		`"organization_billing_manager", "organization_user", "space_auditor", "space_manager", "space_developer", "space_supporter"]`
	orgRel := map[string]any{"data": map[string]any{"guid": orgGUID}}
	spaceRel := map[string]any{"data": map[string]any{"guid": spaceGUID}}
	cases := []struct {
		name   string
		body   any
		status int
		title  string
		detail string
	}{
		{"unknown type", byUsername("org_admin", "organization", orgGUID, "alice", ""), 422, "CF-UnprocessableEntity", allowed},
		{"missing type", map[string]any{"relationships": map[string]any{"organization": orgRel, "user": map[string]any{"data": map[string]any{"guid": "g"}}}},
			422, "CF-UnprocessableEntity", allowed},
		{"missing relationships", map[string]any{"type": "organization_user"}, 422, "CF-UnprocessableEntity",
			"Relationships 'relationships' is not an object"},
		{"empty relationships", map[string]any{"type": "organization_user", "relationships": map[string]any{}}, 422, "CF-UnprocessableEntity",
			"Relationships 'relationships' must include one or more valid relationships"},
		{"missing user", map[string]any{"type": "organization_user", "relationships": map[string]any{"organization": orgRel}},
			422, "CF-UnprocessableEntity", "Relationships User must have a username or guid specified"},
		{"guid and username", map[string]any{"type": "organization_user", "relationships": map[string]any{"organization": orgRel,
			"user": map[string]any{"data": map[string]any{"guid": "g", "username": "alice"}}}},
			422, "CF-UnprocessableEntity", "Relationships Username cannot be specified when identifying user by guid"},
		{"origin without username", map[string]any{"type": "organization_user", "relationships": map[string]any{"organization": orgRel,
			"user": map[string]any{"data": map[string]any{"origin": "uaa"}}}},
			422, "CF-UnprocessableEntity", "Relationships User origin cannot be specified without specifying the username, " +
				"Relationships User must have a username or guid specified"},
		{"no target", map[string]any{"type": "organization_user", "relationships": map[string]any{
			"user": map[string]any{"data": map[string]any{"guid": "g"}}}},
			422, "CF-UnprocessableEntity", "Relationships must specify either a space or an organization."},
		{"space for org type", byUsername("organization_user", "space", spaceGUID, "alice", ""), 422, "CF-UnprocessableEntity",
			"Relationships Space cannot be provided with the organization role type: 'organization_user'."},
		{"org for space type", byUsername("space_developer", "organization", orgGUID, "alice", ""), 422, "CF-UnprocessableEntity",
			"Relationships Organization cannot be provided with the space role type: 'space_developer'."},
		{"both targets", map[string]any{"type": "space_developer", "relationships": map[string]any{"organization": orgRel, "space": spaceRel,
			"user": map[string]any{"data": map[string]any{"guid": "g"}}}},
			422, "CF-UnprocessableEntity", "Relationships Organization cannot be provided with the space role type: 'space_developer'., " +
				"Relationships cannot specify both an organization and a space."},
		{"space without data", map[string]any{"type": "space_developer", "relationships": map[string]any{"space": map[string]any{"guid": spaceGUID},
			"user": map[string]any{"data": map[string]any{"guid": "g"}}}},
			422, "CF-UnprocessableEntity", "Unknown field(s): 'guid'"},
		{"space data without guid", map[string]any{"type": "space_developer", "relationships": map[string]any{"space": map[string]any{"data": map[string]any{}},
			"user": map[string]any{"data": map[string]any{"guid": "g"}}}},
			422, "CF-UnprocessableEntity", `Relationships Space must be structured like this: "space: {"data": {"guid": "valid-guid"}}"`},
		{"empty user guid", byGUID("organization_user", "organization", orgGUID, ""), 422, "CF-UnprocessableEntity",
			"Relationships User guid must be between 1 and 200 characters"},
		{"unknown field", map[string]any{"type": "organization_user", "name": "x", "relationships": map[string]any{"organization": orgRel,
			"user": map[string]any{"data": map[string]any{"guid": "g"}}}}, 422, "CF-UnprocessableEntity", "Unknown field(s): 'name'"},
		{"guid of wrong type", map[string]any{"type": "organization_user", "relationships": map[string]any{"organization": orgRel,
			"user": map[string]any{"data": map[string]any{"guid": 7}}}}, 422, "CF-UnprocessableEntity", "Relationships.user.data.guid must be a string"},
		{"malformed JSON", `{"type": `, 400, "CF-MessageParseError", "Request invalid due to parse error: the body is not valid JSON"},
		{"unknown username", byUsername("organization_user", "organization", orgGUID, "nobody", ""), 422, "CF-UnprocessableEntity",
			"No user exists with the username 'nobody'."},
		{"unknown username in origin", byUsername("organization_user", "organization", orgGUID, "nobody", "uaa"), 422, "CF-UnprocessableEntity",
			"No user exists with the username 'nobody' and origin 'uaa'."},
		{"username in other origin", byUsername("organization_user", "organization", orgGUID, "alice", "ldap"), 422, "CF-UnprocessableEntity",
			"No user exists with the username 'alice' and origin 'ldap'."},
		{"ambiguous username", byUsername("organization_user", "organization", orgGUID, "carol", ""), 422, "CF-UnprocessableEntity",
			"Ambiguous user. User with username 'carol' exists in the following origins: ldap, uaa. Specify an origin to disambiguate."},
		{"unknown username for space role", byUsername("space_developer", "space", spaceGUID, "nobody", ""), 422, "CF-UnprocessableEntity",
			msgSpaceUserNotInOrg},
		{"space role without org user", byUsername("space_developer", "space", spaceGUID, "dave", ""), 422, "CF-UnprocessableEntity",
			msgSpaceUserNotInOrg},
		{"unknown org", byUsername("organization_user", "organization", uuid.NewString(), "alice", ""), 422, "CF-UnprocessableEntity",
			msgInvalidOrganization},
		{"unknown space", byUsername("space_developer", "space", "not-a-guid", "alice", ""), 422, "CF-UnprocessableEntity",
			msgInvalidSpace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectCFError(t, env.do(http.MethodPost, "/v3/roles", admin, tc.body), tc.status, tc.title, tc.detail)
		})
	}
	if got := env.roleCount(); got != 0 {
		t.Errorf("roles after rejected requests = %d, want 0", got)
	}
	if got := env.count(`SELECT count(*) FROM audit_events`); got != 0 {
		t.Errorf("audit events after rejected requests = %d, want 0", got)
	}
	if got := env.count(`SELECT count(*) FROM users`); got != 1 {
		t.Errorf("users after rejected requests = %d, want 1 (dave)", got)
	}

	// carol resolves once the origin is given.
	env.do(http.MethodPost, "/v3/roles", admin, byUsername("organization_user", "organization", orgGUID, "carol", "ldap")).
		expect(http.StatusCreated)
	// Usernames compare without regard to case, as in UAA.
	env.do(http.MethodPost, "/v3/roles", admin, byUsername("organization_user", "organization", orgGUID, "ALICE", "")).
		expect(http.StatusCreated)
}

func TestRolesCreatePermissions(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	prod := env.space(orgGUID, "prod")
	otherOrg := env.org("other")

	manager, managerToken := env.person("manager")
	env.grant(manager, "organization_manager", orgGUID)
	spaceManager, spaceManagerToken := env.person("space-manager")
	env.grant(spaceManager, "organization_user", orgGUID)
	env.grant(spaceManager, "space_manager", dev)
	developer, developerToken := env.person("developer")
	env.grant(developer, "organization_user", orgGUID)
	env.grant(developer, "space_developer", dev)
	_, strangerToken := env.person("stranger")
	_, auditorToken := env.person("auditor", auth.ScopeGlobalAuditor)
	_, readOnlyToken := env.person("reader", auth.ScopeAdminReadOnly)
	member, _ := env.person("member")
	env.grant(member, "organization_user", orgGUID)
	readOnlyManager, _ := env.person("read-only-manager")
	env.grant(readOnlyManager, "organization_manager", orgGUID)
	noWriteToken := env.token(auth.Actor{UserGUID: readOnlyManager, UserName: "read-only-manager", Origin: "uaa", ClientID: "cf",
		Scopes: []string{auth.ScopeRead, auth.ScopeOpenID}})

	cases := []struct {
		name   string
		token  string
		body   any
		status int
		detail string
	}{
		{"org manager gives org role", managerToken, byUsername("organization_auditor", "organization", orgGUID, "member", ""), 201, ""},
		{"org manager gives space role", managerToken, byUsername("space_developer", "space", prod, "member", ""), 201, ""},
		{"org manager in other org", managerToken, byUsername("organization_user", "organization", otherOrg, "member", ""), 422, msgInvalidOrganization},
		{"space manager gives space role", spaceManagerToken, byUsername("space_auditor", "space", dev, "member", ""), 201, ""},
		{"space manager gives org role", spaceManagerToken, byUsername("organization_manager", "organization", orgGUID, "member", ""), 403, "You are not authorized to perform the requested action"},
		{"space manager in invisible space", spaceManagerToken, byUsername("space_auditor", "space", prod, "member", ""), 422, msgInvalidSpace},
		{"developer gives space role", developerToken, byUsername("space_manager", "space", dev, "member", ""), 403, "You are not authorized to perform the requested action"},
		{"stranger", strangerToken, byUsername("organization_user", "organization", orgGUID, "member", ""), 422, msgInvalidOrganization},
		{"global auditor", auditorToken, byUsername("organization_manager", "organization", orgGUID, "member", ""), 403, "You are not authorized to perform the requested action"},
		{"read-only admin", readOnlyToken, byUsername("organization_manager", "organization", orgGUID, "member", ""), 403, "You are not authorized to perform the requested action"},
		{"manager token without write scope", noWriteToken, byUsername("organization_manager", "organization", orgGUID, "member", ""), 403, "You are not authorized to perform the requested action"},
		{"admin", admin, byUsername("organization_billing_manager", "organization", orgGUID, "member", ""), 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(http.MethodPost, "/v3/roles", tc.token, tc.body).expect(tc.status)
			if tc.detail != "" {
				if _, _, detail := resp.cfError(); detail != tc.detail {
					t.Errorf("detail = %q, want %q", detail, tc.detail)
				}
			}
		})
	}
}

func TestRolesCreateByUsernameFeatureFlag(t *testing.T) {
	env := newRoleTestEnv(t)
	orgGUID := env.org("acme")
	manager, managerToken := env.person("manager")
	env.grant(manager, "organization_manager", orgGUID)
	bob := env.identity("bob", "uaa")
	env.exec(`INSERT INTO feature_flags (name, enabled) VALUES ('set_roles_by_username', false)`)

	expectCFError(t, env.do(http.MethodPost, "/v3/roles", managerToken, byUsername("organization_user", "organization", orgGUID, "bob", "")),
		http.StatusForbidden, "CF-FeatureDisabled", "Feature Disabled: set_roles_by_username")
	env.do(http.MethodPost, "/v3/roles", managerToken, byGUID("organization_user", "organization", orgGUID, bob)).
		expect(http.StatusCreated)
	// Admins skip the flag, as in Cloud Controller.
	env.do(http.MethodPost, "/v3/roles", env.adminToken(), byUsername("organization_auditor", "organization", orgGUID, "bob", "")).
		expect(http.StatusCreated)
}

type roleListResponse struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
		TotalPages   int `json:"total_pages"`
		Next         *struct {
			Href string `json:"href"`
		} `json:"next"`
	} `json:"pagination"`
	Resources []roleResponse `json:"resources"`
	Included  struct {
		Users []struct {
			GUID             string  `json:"guid"`
			Username         *string `json:"username"`
			PresentationName string  `json:"presentation_name"`
			Origin           *string `json:"origin"`
		} `json:"users"`
		Spaces []struct {
			GUID string `json:"guid"`
			Name string `json:"name"`
		} `json:"spaces"`
		Organizations []struct {
			GUID string `json:"guid"`
			Name string `json:"name"`
		} `json:"organizations"`
	} `json:"included"`
}

func (r roleListResponse) guids() []string {
	var out []string
	for _, role := range r.Resources {
		out = append(out, role.GUID)
	}
	return out
}

func TestRolesList(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	prod := env.space(orgGUID, "prod")
	otherOrg := env.org("other")

	alice, aliceToken := env.person("alice")
	aliceOrgUser := env.grant(alice, "organization_user", orgGUID)
	aliceDev := env.grant(alice, "space_developer", dev)
	bob := env.identity("bob", "uaa")
	env.exec(`INSERT INTO users (guid) VALUES ($1)`, bob)
	bobOrgUser := env.grant(bob, "organization_user", orgGUID)
	bobProd := env.grant(bob, "space_manager", prod)
	otherRole := env.grant(bob, "organization_manager", otherOrg)
	all := []string{aliceOrgUser, aliceDev, bobOrgUser, bobProd, otherRole}

	list := func(token, query string) roleListResponse {
		t.Helper()
		var out roleListResponse
		env.do(http.MethodGet, "/v3/roles"+query, token, nil).expect(http.StatusOK).decode(&out)
		return out
	}

	cases := []struct {
		name  string
		token string
		query string
		want  []string
	}{
		{"admin sees all", admin, "", all},
		{"types", admin, "?types=organization_user,space_manager", []string{aliceOrgUser, bobOrgUser, bobProd}},
		{"space_guids", admin, "?space_guids=" + dev, []string{aliceDev}},
		{"organization_guids", admin, "?organization_guids=" + otherOrg, []string{otherRole}},
		{"user_guids", admin, "?user_guids=" + alice, []string{aliceOrgUser, aliceDev}},
		{"guids", admin, "?guids=" + bobProd + "," + aliceDev, []string{aliceDev, bobProd}},
		{"empty filter value", admin, "?space_guids=", nil},
		{"newest first", admin, "?order_by=-created_at", []string{otherRole, bobProd, bobOrgUser, aliceDev, aliceOrgUser}},
		// alice sees the org's roles and her space's roles, not prod's
		// roles (she has no role there) nor the other org's.
		{"member visibility", aliceToken, "", []string{aliceOrgUser, aliceDev, bobOrgUser}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := list(tc.token, tc.query).guids()
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("roles = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("pagination", func(t *testing.T) {
		page := list(admin, "?per_page=2&types=organization_user,space_developer,space_manager")
		if page.Pagination.TotalResults != 4 || page.Pagination.TotalPages != 2 || len(page.Resources) != 2 {
			t.Fatalf("pagination = %+v with %d resources", page.Pagination, len(page.Resources))
		}
		if page.Pagination.Next == nil || !strings.HasPrefix(page.Pagination.Next.Href, env.server.URL+"/v3/roles?") {
			t.Fatalf("next = %+v, want an absolute URL", page.Pagination.Next)
		}
		next, err := url.Parse(page.Pagination.Next.Href)
		if err != nil {
			t.Fatal(err)
		}
		second := list(admin, "?"+next.RawQuery)
		if strings.Join(second.guids(), ",") != bobOrgUser+","+bobProd || second.Pagination.Next != nil {
			t.Errorf("second page = %v, next %+v", second.guids(), second.Pagination.Next)
		}
		past := list(admin, "?per_page=2&page=9")
		if past.Pagination.TotalResults != 5 || len(past.Resources) != 0 {
			t.Errorf("page past the end = %+v with %d resources", past.Pagination, len(past.Resources))
		}
	})

	t.Run("space-users include", func(t *testing.T) {
		// cf space-users and cf org-users read usernames from included.users.
		got := list(aliceToken, "?include=user&space_guids="+dev+"&per_page=5000")
		if len(got.Resources) != 1 || len(got.Included.Users) != 1 {
			t.Fatalf("roles %v, included users %+v", got.guids(), got.Included.Users)
		}
		u := got.Included.Users[0]
		if u.GUID != alice || u.Username == nil || *u.Username != "alice" || u.PresentationName != "alice" || u.Origin == nil || *u.Origin != "uaa" {
			t.Errorf("included user = %+v", u)
		}
	})

	t.Run("include space and organization", func(t *testing.T) {
		got := list(admin, "?include=space,organization&user_guids="+bob)
		if len(got.Included.Spaces) != 1 || got.Included.Spaces[0].GUID != prod || got.Included.Spaces[0].Name != "prod" {
			t.Errorf("included spaces = %+v", got.Included.Spaces)
		}
		if len(got.Included.Organizations) != 2 {
			t.Errorf("included organizations = %+v, want acme and other", got.Included.Organizations)
		}
	})

	badQueries := map[string]string{
		"?include=apps":          "The query parameter is invalid: Invalid included resource: 'apps'. Valid included resources are: 'user', 'space', 'organization'",
		"?order_by=type":         "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'",
		"?per_page=0":            "The query parameter is invalid: Per page must be between 1 and 5000",
		"?created_ats=yesterday": "The query parameter is invalid: Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'",
	}
	for query, detail := range badQueries {
		t.Run("bad "+query, func(t *testing.T) {
			expectCFError(t, env.do(http.MethodGet, "/v3/roles"+query, admin, nil), http.StatusBadRequest, "CF-BadQueryParameter", detail)
		})
	}
	t.Run("unknown parameter", func(t *testing.T) {
		resp := env.do(http.MethodGet, "/v3/roles?names=x", admin, nil).expect(http.StatusBadRequest)
		if _, _, detail := resp.cfError(); !strings.Contains(detail, "Unknown query parameter(s): 'names'") || !strings.Contains(detail, "'user_guids'") {
			t.Errorf("detail = %q", detail)
		}
	})
}

func TestRolesGet(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	otherOrg := env.org("other")
	alice, aliceToken := env.person("alice")
	own := env.grant(alice, "organization_user", orgGUID)
	bob, _ := env.person("bob")
	foreign := env.grant(bob, "organization_manager", otherOrg)

	var role struct {
		roleResponse
		Included struct {
			Users []struct {
				Username string `json:"username"`
			} `json:"users"`
		} `json:"included"`
	}
	env.do(http.MethodGet, "/v3/roles/"+own+"?include=user", aliceToken, nil).expect(http.StatusOK).decode(&role)
	if role.GUID != own || len(role.Included.Users) != 1 || role.Included.Users[0].Username != "alice" {
		t.Errorf("role = %+v", role)
	}
	env.do(http.MethodGet, "/v3/roles/"+foreign, admin, nil).expect(http.StatusOK)

	expectCFError(t, env.do(http.MethodGet, "/v3/roles/"+foreign, aliceToken, nil), http.StatusNotFound, "CF-ResourceNotFound", "Role not found")
	expectCFError(t, env.do(http.MethodGet, "/v3/roles/no-such-role", admin, nil), http.StatusNotFound, "CF-ResourceNotFound", "Role not found")
	env.do(http.MethodGet, "/v3/roles/"+own+"?page=1", admin, nil).expect(http.StatusBadRequest)
}

// runJob runs every pending job and returns the state of job at location.
func (e *roleTestEnv) runJob(location string) map[string]any {
	e.t.Helper()
	e.runner.RunPending(context.Background())
	path := strings.TrimPrefix(location, e.server.URL)
	return e.do(http.MethodGet, path, e.adminToken(), nil).expect(http.StatusOK).object()
}

func TestRolesDelete(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	alice, _ := env.person("alice")
	orgUser := env.grant(alice, "organization_user", orgGUID)
	developer := env.grant(alice, "space_developer", dev)

	// organization_user cannot go while alice has a space role in the org.
	expectCFError(t, env.do(http.MethodDelete, "/v3/roles/"+orgUser, admin, nil), http.StatusUnprocessableEntity,
		"CF-UnprocessableEntity", msgOrgUserHasSpaces)

	resp := env.do(http.MethodDelete, "/v3/roles/"+developer, admin, nil).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, env.server.URL+"/v3/jobs/") {
		t.Fatalf("Location = %q", location)
	}
	job := env.runJob(location)
	if job["state"] != "COMPLETE" || job["operation"] != "role.delete" {
		t.Fatalf("job = %v", job)
	}
	if got := env.count(`SELECT count(*) FROM roles WHERE guid = $1`, developer); got != 0 {
		t.Errorf("space_developer role still exists")
	}

	var events struct {
		Resources []struct {
			Type   string                 `json:"type"`
			Target struct{ Name string }  `json:"target"`
			Space  *struct{ GUID string } `json:"space"`
		} `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/audit_events?types=audit.user.space_developer_remove", admin, nil).expect(http.StatusOK).decode(&events)
	if len(events.Resources) != 1 || events.Resources[0].Target.Name != "alice" || events.Resources[0].Space == nil || events.Resources[0].Space.GUID != dev {
		t.Errorf("remove events = %+v", events.Resources)
	}

	// With the space role gone, organization_user can go too.
	resp = env.do(http.MethodDelete, "/v3/roles/"+orgUser, admin, nil).expect(http.StatusAccepted)
	if job := env.runJob(resp.Header.Get("Location")); job["state"] != "COMPLETE" {
		t.Fatalf("job = %v", job)
	}
	if got := env.roleCount(); got != 0 {
		t.Errorf("roles = %d, want 0", got)
	}
	expectCFError(t, env.do(http.MethodDelete, "/v3/roles/"+orgUser, admin, nil), http.StatusNotFound, "CF-ResourceNotFound", "Role not found")
}

func TestRolesDeleteJobFailsWhenSpaceRoleAppears(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	alice, _ := env.person("alice")
	orgUser := env.grant(alice, "organization_user", orgGUID)

	resp := env.do(http.MethodDelete, "/v3/roles/"+orgUser, admin, nil).expect(http.StatusAccepted)
	// A space role added before the job runs makes the delete invalid.
	env.do(http.MethodPost, "/v3/roles", admin, byGUID("space_auditor", "space", dev, alice)).expect(http.StatusCreated)

	job := env.runJob(resp.Header.Get("Location"))
	if job["state"] != "FAILED" {
		t.Fatalf("job state = %v, want FAILED", job["state"])
	}
	errs, _ := job["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("job errors = %v", job["errors"])
	}
	first := errs[0].(map[string]any)
	if first["detail"] != msgOrgUserHasSpaces || first["title"] != "CF-UnprocessableEntity" || first["code"] != float64(10008) {
		t.Errorf("job error = %v", first)
	}
	if got := env.count(`SELECT count(*) FROM roles WHERE guid = $1`, orgUser); got != 1 {
		t.Errorf("organization_user role deleted despite the space role")
	}
	if got := env.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.user.organization_user_remove'`); got != 0 {
		t.Errorf("remove events = %d, want 0 for a failed delete", got)
	}
}

func TestRolesDeletePermissions(t *testing.T) {
	env := newRoleTestEnv(t)
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	otherOrg := env.org("other")

	_, spaceManagerToken := func() (string, string) {
		guid, token := env.person("space-manager")
		env.grant(guid, "organization_user", orgGUID)
		env.grant(guid, "space_manager", dev)
		return guid, token
	}()
	manager, managerToken := env.person("manager")
	env.grant(manager, "organization_manager", orgGUID)
	_, auditorToken := env.person("auditor", auth.ScopeGlobalAuditor)
	_, strangerToken := env.person("stranger")

	alice, _ := env.person("alice")
	aliceOrgAuditor := env.grant(alice, "organization_auditor", orgGUID)
	aliceDevAuditor := env.grant(alice, "space_auditor", dev)
	aliceOther := env.grant(alice, "organization_user", otherOrg)

	cases := []struct {
		name   string
		token  string
		role   string
		status int
	}{
		{"global auditor", auditorToken, aliceDevAuditor, 403},
		{"space manager on org role", spaceManagerToken, aliceOrgAuditor, 403},
		{"stranger", strangerToken, aliceDevAuditor, 404},
		{"org manager in other org", managerToken, aliceOther, 404},
		{"space manager on space role", spaceManagerToken, aliceDevAuditor, 202},
		{"org manager on org role", managerToken, aliceOrgAuditor, 202},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.do(http.MethodDelete, "/v3/roles/"+tc.role, tc.token, nil).expect(tc.status)
		})
	}
}

func TestRolesSuspendedOrgAndSpace(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	manager, managerToken := env.person("manager")
	env.grant(manager, "organization_manager", orgGUID)
	spaceManager, spaceManagerToken := env.person("space-manager")
	env.grant(spaceManager, "organization_user", orgGUID)
	env.grant(spaceManager, "space_manager", dev)
	member, _ := env.person("member")
	env.grant(member, "organization_user", orgGUID)
	auditor := env.grant(member, "space_auditor", dev)

	// In a suspended space only admins and org managers change roles.
	env.exec(`UPDATE spaces SET suspended = true WHERE guid = $1`, dev)
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", spaceManagerToken, byGUID("space_developer", "space", dev, member)),
		http.StatusForbidden, "CF-SpaceSuspended", "The space is suspended")
	expectCFError(t, env.do(http.MethodDelete, "/v3/roles/"+auditor, spaceManagerToken, nil),
		http.StatusForbidden, "CF-SpaceSuspended", "The space is suspended")
	env.do(http.MethodPost, "/v3/roles", managerToken, byGUID("space_developer", "space", dev, member)).expect(http.StatusCreated)

	// In a suspended org only admins do.
	env.exec(`UPDATE organizations SET suspended = true WHERE guid = $1`, orgGUID)
	expectCFError(t, env.do(http.MethodPost, "/v3/roles", managerToken, byGUID("organization_auditor", "organization", orgGUID, member)),
		http.StatusForbidden, "CF-OrgSuspended", "The organization is suspended")
	expectCFError(t, env.do(http.MethodDelete, "/v3/roles/"+auditor, managerToken, nil),
		http.StatusForbidden, "CF-OrgSuspended", "The organization is suspended")
	env.do(http.MethodPost, "/v3/roles", admin, byGUID("organization_auditor", "organization", orgGUID, member)).expect(http.StatusCreated)
	env.do(http.MethodDelete, "/v3/roles/"+auditor, admin, nil).expect(http.StatusAccepted)
}
