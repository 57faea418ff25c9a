package cfapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/ferrycf/ferry/auth"
)

// scimList is the decoded response body of GET /Users.
type scimList struct {
	Resources []struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
		Origin   string `json:"origin"`
	} `json:"resources"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	TotalResults int      `json:"totalResults"`
	Schemas      []string `json:"schemas"`
}

func (l scimList) usernames() []string {
	var names []string
	for _, r := range l.Resources {
		names = append(names, r.UserName)
	}
	return names
}

func (e *testEnv) listUsers(token string, query url.Values) *testResponse {
	e.t.Helper()
	return e.do(http.MethodGet, "/Users?"+query.Encode(), token, nil)
}

// cliCreateUserBody is the body cf create-user sends.
func cliCreateUserBody(username, password, origin string) map[string]any {
	return map[string]any{
		"userName": username,
		"password": password,
		"origin":   origin,
		"name":     map[string]string{"familyName": username, "givenName": username},
		"emails":   []map[string]any{{"value": username, "primary": true}},
	}
}

func TestUAASCIMCreateUserAsCFCLI(t *testing.T) {
	env := newTestEnv(t)
	admin := env.adminToken()
	filter := url.Values{"filter": {`userName eq "carol" and origin eq "uaa"`}}

	// cf create-user first looks the user up, then creates it.
	var before scimList
	env.listUsers(admin, filter).expect(http.StatusOK).decode(&before)
	if before.TotalResults != 0 || len(before.Resources) != 0 {
		t.Fatalf("before creation: %+v", before)
	}

	var created struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
		Origin   string `json:"origin"`
		Active   bool   `json:"active"`
		Verified bool   `json:"verified"`
		Name     struct {
			FamilyName string `json:"familyName"`
			GivenName  string `json:"givenName"`
		} `json:"name"`
		Emails []struct {
			Value   string `json:"value"`
			Primary bool   `json:"primary"`
		} `json:"emails"`
		Meta struct {
			Created      string `json:"created"`
			LastModified string `json:"lastModified"`
		} `json:"meta"`
		Schemas []string `json:"schemas"`
	}
	env.do(http.MethodPost, "/Users", admin, cliCreateUserBody("carol", "carol-pw", "")).expect(http.StatusCreated).decode(&created)
	if created.ID == "" || created.UserName != "carol" || created.Origin != "uaa" || !created.Active || !created.Verified {
		t.Errorf("created = %+v", created)
	}
	if created.Name.GivenName != "carol" || len(created.Emails) != 1 || created.Emails[0].Value != "carol" || !created.Emails[0].Primary {
		t.Errorf("name = %+v, emails = %+v", created.Name, created.Emails)
	}
	if created.Meta.Created == "" || len(created.Schemas) == 0 {
		t.Errorf("meta = %+v, schemas = %v", created.Meta, created.Schemas)
	}

	var after scimList
	env.listUsers(admin, filter).expect(http.StatusOK).decode(&after)
	if after.TotalResults != 1 || len(after.Resources) != 1 || after.Resources[0].ID != created.ID {
		t.Errorf("after creation: %+v", after)
	}

	// The new user can log in.
	tok := env.login("carol", "carol-pw")
	if claims := jwtPayload(t, tok.AccessToken); claims["user_id"] != created.ID {
		t.Errorf("token user_id = %v, want %s", claims["user_id"], created.ID)
	}

	for _, name := range []string{"carol", "CAROL"} {
		resp := env.do(http.MethodPost, "/Users", admin, cliCreateUserBody(name, "x", "uaa")).expect(http.StatusConflict)
		kind, desc := resp.uaaError()
		if kind != "scim_resource_already_exists" || desc != "Username already in use: "+name {
			t.Errorf("duplicate %s: error = %s %q", name, kind, desc)
		}
	}

	// Another origin is another namespace, and its users have no password.
	var ldap struct {
		ID     string `json:"id"`
		Origin string `json:"origin"`
	}
	env.do(http.MethodPost, "/Users", admin, cliCreateUserBody("carol", "", "ldap")).expect(http.StatusCreated).decode(&ldap)
	if ldap.Origin != "ldap" || ldap.ID == created.ID {
		t.Errorf("ldap user = %+v", ldap)
	}
}

func TestUAASCIMCreateUserBadInput(t *testing.T) {
	env := newTestEnv(t)
	_, userToken := env.newUser("plain")

	tests := []struct {
		name       string
		token      string
		body       any
		wantStatus int
		wantKind   string
	}{
		{"missing userName", env.adminToken(), map[string]any{"password": "x"}, http.StatusBadRequest, "invalid_scim_resource"},
		{"blank userName", env.adminToken(), map[string]any{"userName": "  ", "password": "x"}, http.StatusBadRequest, "invalid_scim_resource"},
		{"uaa user without password", env.adminToken(), cliCreateUserBody("nopw", "", ""), http.StatusUnprocessableEntity, "invalid_password"},
		{"ldap user with password", env.adminToken(), cliCreateUserBody("ldappw", "secret", "ldap"), http.StatusBadRequest, "invalid_scim_resource"},
		{"password over 72 bytes", env.adminToken(), cliCreateUserBody("longpw", string(make([]byte, 73)), ""), http.StatusUnprocessableEntity, "invalid_password"},
		{"inactive user", env.adminToken(), map[string]any{"userName": "inactive", "password": "x", "active": false}, http.StatusBadRequest, "invalid_scim_resource"},
		{"unknown field", env.adminToken(), map[string]any{"userName": "u", "password": "x", "shoeSize": 42}, http.StatusBadRequest, "invalid_scim_resource"},
		{"malformed JSON", env.adminToken(), `{"userName":`, http.StatusBadRequest, "invalid_scim_resource"},
		{"wrong type", env.adminToken(), map[string]any{"userName": 7}, http.StatusBadRequest, "invalid_scim_resource"},
		{"no token", "", cliCreateUserBody("anon", "x", ""), http.StatusUnauthorized, "unauthorized"},
		{"ordinary user", userToken, cliCreateUserBody("byuser", "x", ""), http.StatusForbidden, "insufficient_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.do(http.MethodPost, "/Users", tt.token, tt.body).expect(tt.wantStatus)
			if kind, _ := resp.uaaError(); kind != tt.wantKind {
				t.Errorf("error = %s, want %s", kind, tt.wantKind)
			}
		})
	}

	var all scimList
	env.listUsers(env.adminToken(), nil).expect(http.StatusOK).decode(&all)
	if all.TotalResults != 0 {
		t.Errorf("rejected requests created users: %v", all.usernames())
	}
}

func TestUAASCIMListFilters(t *testing.T) {
	env := newTestEnv(t)
	admin := env.adminToken()
	for _, u := range []struct{ name, origin, password string }{
		{"anna", "uaa", "pw"}, {"bert", "uaa", "pw"}, {"anna", "ldap", ""}, {"annabel", "uaa", "pw"},
	} {
		env.do(http.MethodPost, "/Users", admin, cliCreateUserBody(u.name, u.password, u.origin)).expect(http.StatusCreated)
	}

	tests := []struct {
		filter string
		want   []string
	}{
		{`userName eq "anna"`, []string{"anna", "anna"}},
		{`userName eq "ANNA" and origin eq "uaa"`, []string{"anna"}},
		{`USERNAME Eq "anna" AND Origin EQ "ldap"`, []string{"anna"}},
		{`userName eq "bert" or userName eq "annabel"`, []string{"bert", "annabel"}},
		{`userName sw "ann" and origin eq "uaa"`, []string{"anna", "annabel"}},
		{`userName co "nab"`, []string{"annabel"}},
		{`(userName eq "bert" or userName eq "anna") and origin eq "uaa"`, []string{"anna", "bert"}},
		{`origin eq "saml"`, nil},
		{`userName eq "it\"s"`, nil},
		{`emails.value eq "bert"`, []string{"bert"}},
		{`userName pr and origin eq "ldap"`, []string{"anna"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			var list scimList
			env.listUsers(admin, url.Values{"filter": {tt.filter}}).expect(http.StatusOK).decode(&list)
			if got := list.usernames(); !slices.Equal(got, tt.want) {
				t.Errorf("users = %v, want %v", got, tt.want)
			}
			if list.TotalResults != len(tt.want) {
				t.Errorf("totalResults = %d, want %d", list.TotalResults, len(tt.want))
			}
		})
	}

	var byID scimList
	var first scimList
	env.listUsers(admin, url.Values{"filter": {`userName eq "bert"`}}).expect(http.StatusOK).decode(&first)
	env.listUsers(admin, url.Values{"filter": {`id eq "` + first.Resources[0].ID + `"`}}).expect(http.StatusOK).decode(&byID)
	if got := byID.usernames(); !slices.Equal(got, []string{"bert"}) {
		t.Errorf("id filter: users = %v, want [bert]", got)
	}
}

func TestUAASCIMListBadFilters(t *testing.T) {
	env := newTestEnv(t)

	for _, filter := range []string{
		`userName eq`,
		`userName eq bob`,
		`userName gt "a"`,
		`password eq "x"`,
		`userName eq "bob" and`,
		`userName eq "bob`,
		`(userName eq "bob"`,
		`userName eq "bob")`,
		`"userName" eq "bob"`,
		`userName eq "a" xor origin eq "uaa"`,
	} {
		t.Run(filter, func(t *testing.T) {
			resp := env.listUsers(env.adminToken(), url.Values{"filter": {filter}}).expect(http.StatusBadRequest)
			if kind, _ := resp.uaaError(); kind != "invalid_filter" {
				t.Errorf("error = %s, want invalid_filter", kind)
			}
		})
	}
}

func TestUAASCIMListPaginationAndSort(t *testing.T) {
	env := newTestEnv(t)
	admin := env.adminToken()
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5"} {
		env.do(http.MethodPost, "/Users", admin, cliCreateUserBody(name, "pw", "")).expect(http.StatusCreated)
	}

	var page scimList
	env.listUsers(admin, url.Values{"startIndex": {"2"}, "count": {"2"}, "sortBy": {"userName"}}).expect(http.StatusOK).decode(&page)
	if got := page.usernames(); !slices.Equal(got, []string{"u2", "u3"}) {
		t.Errorf("page = %v, want [u2 u3]", got)
	}
	if page.StartIndex != 2 || page.ItemsPerPage != 2 || page.TotalResults != 5 {
		t.Errorf("startIndex = %d, itemsPerPage = %d, totalResults = %d; want 2, 2, 5", page.StartIndex, page.ItemsPerPage, page.TotalResults)
	}

	var desc scimList
	env.listUsers(admin, url.Values{"count": {"1"}, "sortBy": {"username"}, "sortOrder": {"descending"}}).expect(http.StatusOK).decode(&desc)
	if got := desc.usernames(); !slices.Equal(got, []string{"u5"}) {
		t.Errorf("descending first = %v, want [u5]", got)
	}

	var past scimList
	env.listUsers(admin, url.Values{"startIndex": {"10"}}).expect(http.StatusOK).decode(&past)
	if len(past.Resources) != 0 || past.TotalResults != 5 {
		t.Errorf("past the end: %d resources, totalResults %d; want 0, 5", len(past.Resources), past.TotalResults)
	}

	for _, bad := range []url.Values{
		{"count": {"0"}}, {"count": {"x"}}, {"startIndex": {"x"}}, {"sortBy": {"password"}}, {"sortOrder": {"up"}}, {"colour": {"red"}},
	} {
		resp := env.listUsers(admin, bad).expect(http.StatusBadRequest)
		if kind, _ := resp.uaaError(); kind != "invalid_request" {
			t.Errorf("%v: error = %s, want invalid_request", bad, kind)
		}
	}
}

func TestUAASCIMReadPermissions(t *testing.T) {
	env := newTestEnv(t)
	self := env.createUAAUser("self", "self-pw")
	other := env.createUAAUser("someone", "someone-pw")
	tok := env.login("self", "self-pw")

	var got struct {
		ID       string `json:"id"`
		UserName string `json:"userName"`
	}
	env.do(http.MethodGet, "/Users/"+self.ID, tok.AccessToken, nil).expect(http.StatusOK).decode(&got)
	if got.ID != self.ID || got.UserName != "self" {
		t.Errorf("self = %+v", got)
	}

	resp := env.do(http.MethodGet, "/Users/"+other.ID, tok.AccessToken, nil).expect(http.StatusForbidden)
	if kind, _ := resp.uaaError(); kind != "insufficient_scope" {
		t.Errorf("reading another user: error = %s, want insufficient_scope", kind)
	}
	env.listUsers(tok.AccessToken, nil).expect(http.StatusForbidden)
	env.do(http.MethodDelete, "/Users/"+other.ID, tok.AccessToken, nil).expect(http.StatusForbidden)

	env.do(http.MethodGet, "/Users/"+other.ID, env.adminToken(), nil).expect(http.StatusOK)
	resp = env.do(http.MethodGet, "/Users/no-such-id", env.adminToken(), nil).expect(http.StatusNotFound)
	if kind, _ := resp.uaaError(); kind != "scim_resource_not_found" {
		t.Errorf("unknown id: error = %s, want scim_resource_not_found", kind)
	}
	env.do(http.MethodDelete, "/Users/no-such-id", env.adminToken(), nil).expect(http.StatusNotFound)
}

func TestUAASCIMDeleteUser(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("gone", "gone-pw")

	env.do(http.MethodDelete, "/Users/"+user.ID, env.adminToken(), nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/Users/"+user.ID, env.adminToken(), nil).expect(http.StatusNotFound)
	env.do(http.MethodDelete, "/Users/"+user.ID, env.adminToken(), nil).expect(http.StatusNotFound)
}

func TestUAAPasswordChange(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("pat", "pat-pw-1")
	other := env.createUAAUser("quinn", "quinn-pw")
	tok := env.login("pat", "pat-pw-1")
	otherTok := env.login("quinn", "quinn-pw")
	path := "/Users/" + user.ID + "/password"

	tests := []struct {
		name       string
		token      string
		body       any
		wantStatus int
		wantKind   string
	}{
		{"wrong old password", tok.AccessToken, map[string]string{"oldPassword": "nope", "password": "pat-pw-2"}, http.StatusUnauthorized, "unauthorized"},
		{"missing old password", tok.AccessToken, map[string]string{"password": "pat-pw-2"}, http.StatusUnauthorized, "unauthorized"},
		{"same as old", tok.AccessToken, map[string]string{"oldPassword": "pat-pw-1", "password": "pat-pw-1"}, http.StatusUnprocessableEntity, "invalid_password"},
		{"empty new password", tok.AccessToken, map[string]string{"oldPassword": "pat-pw-1", "password": ""}, http.StatusUnprocessableEntity, "invalid_password"},
		{"unknown field", tok.AccessToken, map[string]string{"old": "pat-pw-1", "password": "x"}, http.StatusBadRequest, "invalid_request"},
		{"another user", otherTok.AccessToken, map[string]string{"oldPassword": "pat-pw-1", "password": "x"}, http.StatusForbidden, "insufficient_scope"},
		{"no token", "", map[string]string{"oldPassword": "pat-pw-1", "password": "x"}, http.StatusUnauthorized, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.do(http.MethodPut, path, tt.token, tt.body).expect(tt.wantStatus)
			if kind, _ := resp.uaaError(); kind != tt.wantKind {
				t.Errorf("error = %s, want %s", kind, tt.wantKind)
			}
		})
	}
	env.login("pat", "pat-pw-1")

	body := env.do(http.MethodPut, path, tok.AccessToken, map[string]string{"oldPassword": "pat-pw-1", "password": "pat-pw-2"}).
		expect(http.StatusOK).object()
	if body["status"] != "ok" {
		t.Errorf("body = %v, want status ok", body)
	}
	env.login("pat", "pat-pw-2")

	// An admin needs no old password.
	env.do(http.MethodPut, "/Users/"+other.ID+"/password", env.adminToken(), map[string]string{"password": "reset-pw"}).expect(http.StatusOK)
	env.login("quinn", "reset-pw")
	env.do(http.MethodPut, "/Users/no-such-id/password", env.adminToken(), map[string]string{"password": "x"}).expect(http.StatusNotFound)
}

func TestUAAClientCannotUseUserEndpoints(t *testing.T) {
	env := newTestEnv(t)
	var tok tokenResponse
	env.tokenRequest(formRequest{form: url.Values{"grant_type": {"client_credentials"}},
		basic: &[2]string{testClientID, testClientSecret}}).expect(http.StatusOK).decode(&tok)

	env.do(http.MethodGet, "/userinfo", tok.AccessToken, nil).expect(http.StatusForbidden)
	env.listUsers(tok.AccessToken, nil).expect(http.StatusForbidden)
	if slices.Contains(testClientScopes, auth.ScopeSCIMRead) {
		t.Fatal("the test client must not have scim.read for this test")
	}
}
