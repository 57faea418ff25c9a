package cfapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

type userResponse struct {
	GUID             string  `json:"guid"`
	CreatedAt        string  `json:"created_at"`
	UpdatedAt        string  `json:"updated_at"`
	Username         *string `json:"username"`
	PresentationName string  `json:"presentation_name"`
	Origin           *string `json:"origin"`
	Metadata         struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Links struct {
		Self struct {
			Href string `json:"href"`
		} `json:"self"`
	} `json:"links"`
}

func TestUsersCreate(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()

	// cf create-user posts the guid of the UAA user it just created.
	alice := env.identity("alice", "uaa")
	var created userResponse
	env.do(http.MethodPost, "/v3/users", admin, map[string]any{"guid": alice}).expect(http.StatusCreated).decode(&created)
	if created.GUID != alice || created.Username == nil || *created.Username != "alice" || created.Origin == nil || *created.Origin != "uaa" ||
		created.PresentationName != "alice" || created.CreatedAt == "" {
		t.Errorf("created user = %+v", created)
	}
	if created.Links.Self.Href != env.server.URL+"/v3/users/"+alice {
		t.Errorf("self link = %q", created.Links.Self.Href)
	}
	if created.Metadata.Labels == nil || created.Metadata.Annotations == nil {
		t.Errorf("metadata = %+v, want empty objects", created.Metadata)
	}

	// A user of another identity provider has no username here.
	var external map[string]any
	env.do(http.MethodPost, "/v3/users", admin, map[string]any{"guid": "ext-1", "metadata": map[string]any{
		"labels": map[string]any{"team": "blue"}, "annotations": map[string]any{"note": "from ldap"}}}).
		expect(http.StatusCreated).decode(&external)
	if external["username"] != nil || external["origin"] != nil || external["presentation_name"] != "ext-1" {
		t.Errorf("external user = %v", external)
	}
	if !sameJSON(t, external["metadata"], map[string]any{"labels": map[string]any{"team": "blue"}, "annotations": map[string]any{"note": "from ldap"}}) {
		t.Errorf("metadata = %v", external["metadata"])
	}

	// By username and origin, for an identity of a non-uaa origin.
	ldapUser := env.identity("lee", "ldap")
	var byName userResponse
	env.do(http.MethodPost, "/v3/users", admin, map[string]any{"username": "lee", "origin": "ldap"}).expect(http.StatusCreated).decode(&byName)
	if byName.GUID != ldapUser || byName.Origin == nil || *byName.Origin != "ldap" {
		t.Errorf("user by name = %+v", byName)
	}

	if got := env.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.user.create' AND target_guid = $1 AND actor_name = 'admin'`, alice); got != 1 {
		t.Errorf("audit.user.create events for alice = %d, want 1", got)
	}
}

func TestUsersCreateRejects(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	existing, userToken := env.person("existing")
	env.identity("lee", "ldap")
	_, readOnlyToken := env.person("reader", auth.ScopeAdminReadOnly)
	before := env.count(`SELECT count(*) FROM users`)

	cases := []struct {
		name   string
		token  string
		body   any
		status int
		detail string
	}{
		{"duplicate guid", admin, map[string]any{"guid": existing}, 422, "User with guid '" + existing + "' already exists."},
		{"guid and username", admin, map[string]any{"guid": "g", "username": "x"}, 422, "Username cannot be provided with 'guid'"},
		{"nothing", admin, map[string]any{}, 422, "Guid or 'username' and 'origin' must be provided"},
		{"username without origin", admin, map[string]any{"username": "lee"}, 422, "Username can only be provided together with 'origin'"},
		{"uaa origin", admin, map[string]any{"username": "lee", "origin": "uaa"}, 422, "Origin cannot be 'uaa' when creating a user by username"},
		{"unknown identity", admin, map[string]any{"username": "kim", "origin": "ldap"}, 422,
			"No user exists with the username 'kim' and origin 'ldap'. Create the UAA user first, or give the user's 'guid'."},
		{"empty guid", admin, map[string]any{"guid": ""}, 422, "Guid must be between 1 and 200 characters"},
		{"long guid", admin, map[string]any{"guid": strings.Repeat("g", 201)}, 422, "Guid must be between 1 and 200 characters"},
		{"guid of wrong type", admin, map[string]any{"guid": 5}, 422, "Guid must be a string"},
		{"unknown field", admin, map[string]any{"guid": "g", "name": "x"}, 422, "Unknown field(s): 'name'"},
		{"bad label", admin, map[string]any{"guid": "g", "metadata": map[string]any{"labels": map[string]any{"-bad": "x"}}}, 422, ""},
		{"not admin", userToken, map[string]any{"guid": "g"}, 403, "You are not authorized to perform the requested action"},
		{"read-only admin", readOnlyToken, map[string]any{"guid": "g"}, 403, "You are not authorized to perform the requested action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(http.MethodPost, "/v3/users", tc.token, tc.body).expect(tc.status)
			if tc.detail != "" {
				if _, _, detail := resp.cfError(); detail != tc.detail {
					t.Errorf("detail = %q, want %q", detail, tc.detail)
				}
			}
		})
	}
	env.do(http.MethodPost, "/v3/users", admin, "{").expect(http.StatusBadRequest)
	if got := env.count(`SELECT count(*) FROM users`); got != before {
		t.Errorf("users = %d, want %d: a rejected request wrote a user", got, before)
	}
}

type userList struct {
	Pagination struct {
		TotalResults int `json:"total_results"`
		Next         *struct {
			Href string `json:"href"`
		} `json:"next"`
	} `json:"pagination"`
	Resources []userResponse `json:"resources"`
}

func (l userList) names() string {
	var out []string
	for _, u := range l.Resources {
		out = append(out, u.PresentationName)
	}
	return strings.Join(out, ",")
}

func TestUsersList(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	otherOrg := env.org("other")
	alice, aliceToken := env.person("alice")
	env.grant(alice, "organization_user", orgGUID)
	bob, _ := env.person("bob")
	env.grant(bob, "organization_auditor", orgGUID)
	carol, _ := env.person("carol")
	env.grant(carol, "organization_user", otherOrg)
	ldapCarol := env.identity("carol", "ldap")
	env.exec(`INSERT INTO users (guid, labels) VALUES ($1, '{"team": "blue"}')`, ldapCarol)
	env.exec(`INSERT INTO users (guid) VALUES ('ext-1')`)
	_, loneToken := env.person("lone")

	cases := []struct {
		name  string
		token string
		query string
		want  string
	}{
		{"admin sees all", admin, "", "alice,bob,carol,carol,ext-1,lone"},
		{"member sees the org's members", aliceToken, "", "alice,bob"},
		{"user without roles sees themselves", loneToken, "", "lone"},
		{"usernames ignore case", admin, "?usernames=CAROL,bob", "bob,carol,carol"},
		{"usernames with origins", admin, "?usernames=carol&origins=ldap", "carol"},
		{"partial usernames", admin, "?partial_usernames=ar", "carol,carol"},
		{"partial usernames match literally", admin, "?partial_usernames=%25", ""},
		{"guids", admin, "?guids=ext-1," + bob, "bob,ext-1"},
		{"label_selector", admin, "?label_selector=team=blue", "carol"},
		{"newest first", admin, "?order_by=-created_at&per_page=2", "lone,ext-1"},
		{"visibility applies to filters", aliceToken, "?usernames=carol", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got userList
			env.do(http.MethodGet, "/v3/users"+tc.query, tc.token, nil).expect(http.StatusOK).decode(&got)
			if got.names() != tc.want {
				t.Errorf("users = %q, want %q", got.names(), tc.want)
			}
		})
	}

	var page userList
	env.do(http.MethodGet, "/v3/users?per_page=4", admin, nil).expect(http.StatusOK).decode(&page)
	if page.Pagination.TotalResults != 6 || page.Pagination.Next == nil || !strings.HasPrefix(page.Pagination.Next.Href, env.server.URL+"/v3/users?") {
		t.Errorf("pagination = %+v", page.Pagination)
	}

	bad := map[string]string{
		"?origins=uaa":                     "The query parameter is invalid: Origins filter cannot be provided without usernames or partial_usernames filter.",
		"?usernames=a&partial_usernames=b": "The query parameter is invalid: Usernames filter cannot be provided with both usernames and partial_usernames filter.",
		"?order_by=username":               "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'",
		"?created_ats[gt]=now":             "The query parameter is invalid: Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'",
	}
	for query, detail := range bad {
		t.Run("bad "+query, func(t *testing.T) {
			expectCFError(t, env.do(http.MethodGet, "/v3/users"+query, admin, nil), http.StatusBadRequest, "CF-BadQueryParameter", detail)
		})
	}
}

func TestUsersGetAndUpdate(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	alice, aliceToken := env.person("alice")
	env.grant(alice, "organization_manager", orgGUID)
	bob, _ := env.person("bob")
	env.grant(bob, "organization_user", orgGUID)
	stranger, _ := env.person("stranger")

	var got userResponse
	env.do(http.MethodGet, "/v3/users/"+bob, aliceToken, nil).expect(http.StatusOK).decode(&got)
	if got.GUID != bob || got.PresentationName != "bob" {
		t.Errorf("user = %+v", got)
	}
	expectCFError(t, env.do(http.MethodGet, "/v3/users/"+stranger, aliceToken, nil), http.StatusNotFound, "CF-ResourceNotFound", "User not found")
	expectCFError(t, env.do(http.MethodGet, "/v3/users/nobody", admin, nil), http.StatusNotFound, "CF-ResourceNotFound", "User not found")

	patch := map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "blue", "tier": "gold"}, "annotations": map[string]any{"note": "hi"}}}
	env.do(http.MethodPatch, "/v3/users/"+bob, admin, patch).expect(http.StatusOK).decode(&got)
	if got.Metadata.Labels["team"] != "blue" || got.Metadata.Annotations["note"] != "hi" {
		t.Errorf("metadata after patch = %+v", got.Metadata)
	}
	var afterDelete userResponse
	env.do(http.MethodPatch, "/v3/users/"+bob, admin, map[string]any{"metadata": map[string]any{"labels": map[string]any{"tier": nil}}}).
		expect(http.StatusOK).decode(&afterDelete)
	if _, ok := afterDelete.Metadata.Labels["tier"]; ok || afterDelete.Metadata.Labels["team"] != "blue" {
		t.Errorf("labels after deleting tier = %v", afterDelete.Metadata.Labels)
	}
	if got := env.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.user.update' AND target_guid = $1`, bob); got != 2 {
		t.Errorf("audit.user.update events = %d, want 2", got)
	}

	// An org manager can see bob but may not change him; a stranger is 404.
	env.do(http.MethodPatch, "/v3/users/"+bob, aliceToken, patch).expect(http.StatusForbidden)
	env.do(http.MethodPatch, "/v3/users/"+stranger, aliceToken, patch).expect(http.StatusNotFound)
	env.do(http.MethodPatch, "/v3/users/"+bob, admin, map[string]any{"username": "robert"}).expect(http.StatusUnprocessableEntity)
}

func TestUsersDelete(t *testing.T) {
	env := newRoleTestEnv(t)
	admin := env.adminToken()
	orgGUID := env.org("acme")
	dev := env.space(orgGUID, "dev")
	alice, aliceToken := env.person("alice")
	env.grant(alice, "organization_manager", orgGUID)
	bob, _ := env.person("bob")
	env.grant(bob, "organization_user", orgGUID)
	env.grant(bob, "space_developer", dev)

	env.do(http.MethodDelete, "/v3/users/"+bob, aliceToken, nil).expect(http.StatusForbidden)
	env.do(http.MethodDelete, "/v3/users/nobody", admin, nil).expect(http.StatusNotFound)

	resp := env.do(http.MethodDelete, "/v3/users/"+bob, admin, nil).expect(http.StatusAccepted)
	if got := env.count(`SELECT count(*) FROM users WHERE guid = $1`, bob); got != 1 {
		t.Fatalf("user deleted before its job ran")
	}
	job := env.runJob(resp.Header.Get("Location"))
	if job["state"] != "COMPLETE" || job["operation"] != "user.delete" {
		t.Fatalf("job = %v", job)
	}
	if got := env.count(`SELECT count(*) FROM users WHERE guid = $1`, bob); got != 0 {
		t.Errorf("user records of bob = %d, want 0", got)
	}
	if got := env.count(`SELECT count(*) FROM roles WHERE user_guid = $1`, bob); got != 0 {
		t.Errorf("roles of bob = %d, want 0", got)
	}
	if got := env.count(`SELECT count(*) FROM uaa_users WHERE id = $1`, bob); got != 1 {
		t.Errorf("UAA identity of bob = %d, want 1: cf delete-user deletes it through /Users", got)
	}
	if got := env.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.user.delete-request' AND target_guid = $1`, bob); got != 1 {
		t.Errorf("delete-request events = %d, want 1", got)
	}

	// A rerun of the job after the user is gone succeeds.
	if err := env.api.runUserDelete(context.Background(), store.Job{ResourceGUID: bob}); err != nil {
		t.Errorf("rerun: %v", err)
	}
}
