package cfapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// protectedPath is a Cloud Controller route that needs a token. The job does
// not exist, so a valid token gets 404 and an invalid one 401.
const protectedPath = "/v3/jobs/00000000-0000-0000-0000-000000000000"

// createUAAUser stores a UAA user of origin "uaa" with password and groups.
func (e *testEnv) createUAAUser(username, password string, groups ...string) store.UAAUser {
	e.t.Helper()
	hash, err := e.auth.HashPassword(password)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.store.CreateUAAUser(context.Background(), store.UAAUser{
		ID: uuid.NewString(), Username: username, Origin: "uaa", PasswordHash: hash, Groups: groups,
		Email: username + "@example.com",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// formRequest describes a form-encoded POST to /oauth/token.
type formRequest struct {
	form  url.Values
	query url.Values
	// basic, when set, is sent as HTTP Basic "user:password".
	basic *[2]string
}

var cfBasic = &[2]string{"cf", ""}

// token posts a token request the way the cf CLI does.
func (e *testEnv) tokenRequest(req formRequest) *testResponse {
	e.t.Helper()
	target := e.server.URL + "/oauth/token"
	if req.query != nil {
		target += "?" + req.query.Encode()
	}
	httpReq, err := http.NewRequest(http.MethodPost, target, strings.NewReader(req.form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	httpReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	httpReq.Header.Set("Accept", "application/json")
	if req.basic != nil {
		httpReq.SetBasicAuth(req.basic[0], req.basic[1])
	}
	return e.send(httpReq)
}

// doWithHeader sends a request with a raw Authorization header.
func (e *testEnv) doWithHeader(method, path, authorization string, body io.Reader) *testResponse {
	e.t.Helper()
	req, err := http.NewRequest(method, e.server.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return e.send(req)
}

func (e *testEnv) send(req *http.Request) *testResponse {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &testResponse{t: e.t, Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// tokenResponse is the decoded response body of /oauth/token.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	JTI          string `json:"jti"`
}

// login performs cf login's password grant and returns the tokens.
func (e *testEnv) login(username, password string) tokenResponse {
	e.t.Helper()
	var tok tokenResponse
	e.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}},
		basic: cfBasic,
	}).expect(http.StatusOK).decode(&tok)
	return tok
}

// refresh performs the cf CLI's refresh_token grant.
func (e *testEnv) refresh(refreshToken string) *testResponse {
	e.t.Helper()
	return e.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}},
		basic: cfBasic,
	})
}

// uaaError returns the UAA error of the body.
func (r *testResponse) uaaError() (kind, description string) {
	r.t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	r.decode(&body)
	if body.Error == "" {
		r.t.Fatalf("no UAA error in body: %s", r.Body)
	}
	return body.Error, body.Description
}

// jwtPayload decodes a JWT's payload without verifying it, as the cf CLI
// does.
func jwtPayload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload is not base64url: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("payload is not JSON: %v", err)
	}
	return claims
}

func scopesOf(t *testing.T, claims map[string]any) []string {
	t.Helper()
	raw, ok := claims["scope"].([]any)
	if !ok {
		t.Fatalf("scope claim = %#v, want an array", claims["scope"])
	}
	var scopes []string
	for _, s := range raw {
		scopes = append(scopes, s.(string))
	}
	return scopes
}

func TestUAALoginDocument(t *testing.T) {
	env := newTestEnv(t)

	var doc struct {
		App struct {
			Version string `json:"version"`
		} `json:"app"`
		Links   map[string]string   `json:"links"`
		Prompts map[string][]string `json:"prompts"`
	}
	env.do(http.MethodGet, "/login", "", nil).expect(http.StatusOK).decode(&doc)

	want := map[string][]string{"username": {"text", "Email"}, "password": {"password", "Password"}}
	if len(doc.Prompts) != len(want) {
		t.Errorf("prompts = %v, want exactly %v", doc.Prompts, want)
	}
	for key, prompt := range want {
		if !slices.Equal(doc.Prompts[key], prompt) {
			t.Errorf("prompt %s = %v, want %v", key, doc.Prompts[key], prompt)
		}
	}
	if doc.Links["uaa"] != env.server.URL || doc.Links["login"] != env.server.URL {
		t.Errorf("links = %v, want uaa and login at %s", doc.Links, env.server.URL)
	}
	if doc.App.Version != uaaVersion {
		t.Errorf("app.version = %q, want %q", doc.App.Version, uaaVersion)
	}
}

func TestUAAPasswordGrantAsCFCLI(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("dev@example.com", "s3cret-pass")

	// cf login: GET /login, then the password grant with Basic cf:.
	env.do(http.MethodGet, "/login", "", nil).expect(http.StatusOK)
	resp := env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"DEV@example.com"}, "password": {"s3cret-pass"}},
		basic: cfBasic,
	}).expect(http.StatusOK)
	var tok tokenResponse
	resp.decode(&tok)

	if tok.TokenType != "bearer" {
		t.Errorf("token_type = %q, want bearer", tok.TokenType)
	}
	if tok.RefreshToken == "" {
		t.Error("refresh_token is empty")
	}
	if tok.ExpiresIn != int64(auth.DefaultAccessTokenTTL/time.Second) {
		t.Errorf("expires_in = %d, want %d", tok.ExpiresIn, int64(auth.DefaultAccessTokenTTL/time.Second))
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	claims := jwtPayload(t, tok.AccessToken)
	for key, want := range map[string]any{
		"jti": tok.JTI, "user_id": user.ID, "user_name": "dev@example.com", "origin": "uaa",
		"client_id": "cf", "cid": "cf", "sub": user.ID, "revocable": true, "grant_type": "password",
	} {
		if claims[key] != want {
			t.Errorf("claim %s = %#v, want %#v", key, claims[key], want)
		}
	}
	exp, expOK := claims["exp"].(float64)
	iat, iatOK := claims["iat"].(float64)
	if !expOK || !iatOK {
		t.Fatalf("exp = %#v, iat = %#v, want numbers", claims["exp"], claims["iat"])
	}
	if exp-iat != auth.DefaultAccessTokenTTL.Seconds() {
		t.Errorf("exp - iat = %v, want %v", exp-iat, auth.DefaultAccessTokenTTL.Seconds())
	}
	if time.Unix(int64(exp), 0).Before(time.Now().Add(time.Minute)) {
		t.Errorf("exp = %v is less than a minute away; the cf CLI would refresh before every request", exp)
	}
	wantScopes := []string{auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID, auth.ScopePasswordWrite, auth.ScopeSCIMMe, auth.ScopeUAAUser}
	if got := scopesOf(t, claims); !slices.Equal(got, wantScopes) {
		t.Errorf("scope claim = %v, want %v", got, wantScopes)
	}
	if tok.Scope != strings.Join(wantScopes, " ") {
		t.Errorf("scope = %q, want %q", tok.Scope, strings.Join(wantScopes, " "))
	}

	// The cf CLI sends "bearer <token>" to Cloud Controller.
	env.do(http.MethodGet, protectedPath, tok.AccessToken, nil).expect(http.StatusNotFound)
}

func TestUAAPasswordGrantWithOriginHint(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("hinted", "pw-hinted")

	resp := env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"hinted"}, "password": {"pw-hinted"}},
		query: url.Values{"login_hint": {`{"origin":"uaa"}`}},
		basic: cfBasic,
	})
	resp.expect(http.StatusOK)

	resp = env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"hinted"}, "password": {"pw-hinted"}},
		query: url.Values{"login_hint": {`{"origin":"ldap"}`}},
		basic: cfBasic,
	}).expect(http.StatusUnauthorized)
	if kind, desc := resp.uaaError(); kind != "unauthorized" || desc != "Bad credentials" {
		t.Errorf("error = %s %q, want unauthorized \"Bad credentials\"", kind, desc)
	}
}

func TestUAAAdminUserScopes(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("boss", "boss-pw", auth.AdminGroups...)
	env.createUAAUser("auditor", "auditor-pw", auth.ScopeGlobalAuditor)

	admin := jwtPayload(t, env.login("boss", "boss-pw").AccessToken)
	wantAdmin := []string{auth.ScopeAdmin, auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID, auth.ScopeSCIMRead,
		auth.ScopeSCIMWrite, auth.ScopeUAAAdmin, auth.ScopePasswordWrite}
	if got := scopesOf(t, admin); !slices.Equal(got, wantAdmin) {
		t.Errorf("admin scopes = %v, want %v", got, wantAdmin)
	}

	auditor := scopesOf(t, jwtPayload(t, env.login("auditor", "auditor-pw").AccessToken))
	if !slices.Contains(auditor, auth.ScopeGlobalAuditor) {
		t.Errorf("auditor scopes = %v, want %s", auditor, auth.ScopeGlobalAuditor)
	}
	if slices.Contains(auditor, auth.ScopeWrite) {
		t.Errorf("auditor scopes = %v, want no %s", auditor, auth.ScopeWrite)
	}
}

func TestUAARequestedScopes(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("narrow", "narrow-pw")

	var tok tokenResponse
	env.tokenRequest(formRequest{
		form: url.Values{"grant_type": {"password"}, "username": {"narrow"}, "password": {"narrow-pw"},
			"scope": {"openid cloud_controller.read"}},
		basic: cfBasic,
	}).expect(http.StatusOK).decode(&tok)
	if tok.Scope != "openid cloud_controller.read" {
		t.Errorf("scope = %q, want the requested two", tok.Scope)
	}

	resp := env.tokenRequest(formRequest{
		form: url.Values{"grant_type": {"password"}, "username": {"narrow"}, "password": {"narrow-pw"},
			"scope": {"cloud_controller.admin"}},
		basic: cfBasic,
	}).expect(http.StatusBadRequest)
	if kind, _ := resp.uaaError(); kind != "invalid_scope" {
		t.Errorf("error = %s, want invalid_scope", kind)
	}
}

func TestUAARefreshGrant(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("refresher", "refresh-pw")
	first := env.login("refresher", "refresh-pw")

	var second tokenResponse
	env.refresh(first.RefreshToken).expect(http.StatusOK).decode(&second)

	if second.TokenType != "bearer" {
		t.Errorf("token_type = %q, want bearer", second.TokenType)
	}
	if second.RefreshToken != first.RefreshToken {
		t.Error("refresh_token changed; the refresh token is reused until it expires")
	}
	if second.JTI == first.JTI {
		t.Error("refreshed access token has the old jti")
	}
	claims := jwtPayload(t, second.AccessToken)
	if claims["user_id"] != user.ID || claims["grant_type"] != "refresh_token" {
		t.Errorf("claims user_id = %v, grant_type = %v", claims["user_id"], claims["grant_type"])
	}
	env.do(http.MethodGet, protectedPath, second.AccessToken, nil).expect(http.StatusNotFound)
	env.do(http.MethodGet, protectedPath, first.AccessToken, nil).expect(http.StatusNotFound)
}

func TestUAARefreshGrantRejects(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("rejected", "rejected-pw")
	tok := env.login("rejected", "rejected-pw")

	tests := []struct {
		name       string
		req        formRequest
		wantStatus int
		wantKind   string
	}{
		{"garbage token", formRequest{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}}, basic: cfBasic},
			http.StatusUnauthorized, "invalid_token"},
		{"access token as refresh token", formRequest{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.AccessToken}}, basic: cfBasic},
			http.StatusUnauthorized, "invalid_token"},
		{"missing token", formRequest{form: url.Values{"grant_type": {"refresh_token"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request"},
		{"no client authentication", formRequest{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}},
			http.StatusUnauthorized, "unauthorized"},
		{"client without refresh grant", formRequest{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
			basic: &[2]string{testClientID, testClientSecret}}, http.StatusBadRequest, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.tokenRequest(tt.req).expect(tt.wantStatus)
			if kind, _ := resp.uaaError(); kind != tt.wantKind {
				t.Errorf("error = %s, want %s", kind, tt.wantKind)
			}
		})
	}
}

func TestUAAClientCredentialsAsCFAuth(t *testing.T) {
	env := newTestEnv(t)

	// cf auth --client-credentials sends the credentials in the body and no
	// Basic header.
	resp := env.tokenRequest(formRequest{form: url.Values{
		"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
	}}).expect(http.StatusOK)
	body := resp.object()
	if _, has := body["refresh_token"]; has {
		t.Errorf("client_credentials response has a refresh_token: %v", body)
	}
	if body["token_type"] != "bearer" {
		t.Errorf("token_type = %v, want bearer", body["token_type"])
	}

	access := body["access_token"].(string)
	claims := jwtPayload(t, access)
	if _, has := claims["user_name"]; has {
		t.Errorf("client token has user_name: %v", claims)
	}
	if claims["client_id"] != testClientID || claims["sub"] != testClientID || claims["revocable"] != true {
		t.Errorf("claims client_id = %v, sub = %v, revocable = %v", claims["client_id"], claims["sub"], claims["revocable"])
	}
	if got := scopesOf(t, claims); !slices.Equal(got, testClientScopes) {
		t.Errorf("scopes = %v, want %v", got, testClientScopes)
	}
	env.do(http.MethodGet, protectedPath, access, nil).expect(http.StatusNotFound)

	// Basic works too.
	env.tokenRequest(formRequest{form: url.Values{"grant_type": {"client_credentials"}},
		basic: &[2]string{testClientID, testClientSecret}}).expect(http.StatusOK)
}

func TestUAAClientCredentialsRejects(t *testing.T) {
	env := newTestEnv(t)

	tests := []struct {
		name       string
		req        formRequest
		wantStatus int
		wantKind   string
	}{
		{"wrong secret", formRequest{form: url.Values{"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {"nope"}}},
			http.StatusUnauthorized, "invalid_client"},
		{"unknown client", formRequest{form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"ghost"}, "client_secret": {"x"}}},
			http.StatusUnauthorized, "invalid_client"},
		{"cf client", formRequest{form: url.Values{"grant_type": {"client_credentials"}}, basic: cfBasic},
			http.StatusBadRequest, "unauthorized_client"},
		{"password grant for configured client", formRequest{form: url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}},
			basic: &[2]string{testClientID, testClientSecret}}, http.StatusBadRequest, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.tokenRequest(tt.req).expect(tt.wantStatus)
			if kind, _ := resp.uaaError(); kind != tt.wantKind {
				t.Errorf("error = %s, want %s", kind, tt.wantKind)
			}
		})
	}
}

func TestUAATokenBadInput(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("alice", "alice-pw")

	password := func(username, pw string) url.Values {
		return url.Values{"grant_type": {"password"}, "username": {username}, "password": {pw}}
	}
	tests := []struct {
		name            string
		req             formRequest
		wantStatus      int
		wantKind        string
		wantDescription string
	}{
		{"wrong password", formRequest{form: password("alice", "wrong"), basic: cfBasic},
			http.StatusUnauthorized, "unauthorized", "Bad credentials"},
		{"unknown user", formRequest{form: password("nobody", "alice-pw"), basic: cfBasic},
			http.StatusUnauthorized, "unauthorized", "Bad credentials"},
		{"unknown grant type", formRequest{form: url.Values{"grant_type": {"implicit"}}, basic: cfBasic},
			http.StatusBadRequest, "unsupported_grant_type", `Unsupported grant type: "implicit". Use password, refresh_token or client_credentials.`},
		{"missing grant type", formRequest{form: url.Values{"username": {"alice"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request", "Missing grant_type: use password, refresh_token or client_credentials."},
		{"missing username", formRequest{form: url.Values{"grant_type": {"password"}, "password": {"x"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request", "Missing username: the password grant needs username and password in the body."},
		{"missing password", formRequest{form: url.Values{"grant_type": {"password"}, "username": {"alice"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request", "Missing password: the password grant needs username and password in the body."},
		{"password in the query only", formRequest{form: url.Values{"grant_type": {"password"}, "username": {"alice"}},
			query: url.Values{"password": {"alice-pw"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request", "Missing password: the password grant needs username and password in the body."},
		{"no client authentication", formRequest{form: password("alice", "alice-pw")},
			http.StatusUnauthorized, "unauthorized", ""},
		{"wrong cf secret", formRequest{form: password("alice", "alice-pw"), basic: &[2]string{"cf", "x"}},
			http.StatusUnauthorized, "invalid_client", "Bad credentials"},
		{"malformed login hint", formRequest{form: password("alice", "alice-pw"), query: url.Values{"login_hint": {"uaa"}}, basic: cfBasic},
			http.StatusBadRequest, "invalid_request", `Invalid login_hint: use JSON such as {"origin":"uaa"}.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.tokenRequest(tt.req).expect(tt.wantStatus)
			kind, desc := resp.uaaError()
			if kind != tt.wantKind {
				t.Errorf("error = %s, want %s", kind, tt.wantKind)
			}
			if tt.wantDescription != "" && desc != tt.wantDescription {
				t.Errorf("error_description = %q, want %q", desc, tt.wantDescription)
			}
		})
	}
}

func TestUAALogoutAsCFCLI(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("leaver", "leaver-pw")
	tok := env.login("leaver", "leaver-pw")
	refreshJTI, _ := jwtPayload(t, tok.RefreshToken)["jti"].(string)
	if refreshJTI == "" {
		t.Fatal("refresh token has no jti; cf logout reads it from the payload")
	}

	// cf logout revokes the refresh token, then the access token, each by
	// the jti in its payload, sending its stored "bearer <access token>".
	header := "bearer " + tok.AccessToken
	env.doWithHeader(http.MethodDelete, "/oauth/token/revoke/"+refreshJTI, header, nil).expect(http.StatusOK)
	env.doWithHeader(http.MethodDelete, "/oauth/token/revoke/"+tok.JTI, header, nil).expect(http.StatusOK)

	resp := env.do(http.MethodGet, protectedPath, tok.AccessToken, nil).expect(http.StatusUnauthorized)
	if _, title, _ := resp.cfError(); title != "CF-InvalidAuthToken" {
		t.Errorf("revoked access token: title = %s, want CF-InvalidAuthToken", title)
	}
	resp = env.refresh(tok.RefreshToken).expect(http.StatusUnauthorized)
	if kind, _ := resp.uaaError(); kind != "invalid_token" {
		t.Errorf("refresh after logout: error = %s, want invalid_token", kind)
	}
}

func TestUAARevokeAccessTokenEndsSession(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("session", "session-pw")
	tok := env.login("session", "session-pw")

	// After a refresh, the newest access token stands for the session.
	var refreshed tokenResponse
	env.refresh(tok.RefreshToken).expect(http.StatusOK).decode(&refreshed)
	env.do(http.MethodDelete, "/oauth/token/revoke/"+refreshed.JTI, refreshed.AccessToken, nil).expect(http.StatusOK)

	env.refresh(tok.RefreshToken).expect(http.StatusUnauthorized)
	env.do(http.MethodGet, protectedPath, refreshed.AccessToken, nil).expect(http.StatusUnauthorized)
	env.do(http.MethodGet, protectedPath, tok.AccessToken, nil).expect(http.StatusNotFound)
}

func TestUAARevokePermissions(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("owner", "owner-pw")
	env.createUAAUser("other", "other-pw")
	env.createUAAUser("root", "root-pw", auth.AdminGroups...)
	owner := env.login("owner", "owner-pw")
	other := env.login("other", "other-pw")
	root := env.login("root", "root-pw")
	ownerRefreshJTI := jwtPayload(t, owner.RefreshToken)["jti"].(string)

	resp := env.do(http.MethodDelete, "/oauth/token/revoke/"+ownerRefreshJTI, other.AccessToken, nil).expect(http.StatusForbidden)
	if kind, _ := resp.uaaError(); kind != "access_denied" {
		t.Errorf("other user revoking a refresh token: error = %s, want access_denied", kind)
	}
	env.do(http.MethodDelete, "/oauth/token/revoke/"+owner.JTI, other.AccessToken, nil).expect(http.StatusForbidden)
	env.do(http.MethodDelete, "/oauth/token/revoke/no-such-jti", other.AccessToken, nil).expect(http.StatusNotFound)
	env.do(http.MethodDelete, "/oauth/token/revoke/"+owner.JTI, "", nil).expect(http.StatusUnauthorized)
	env.do(http.MethodGet, protectedPath, owner.AccessToken, nil).expect(http.StatusNotFound)

	env.do(http.MethodDelete, "/oauth/token/revoke/"+owner.JTI, root.AccessToken, nil).expect(http.StatusOK)
	env.do(http.MethodGet, protectedPath, owner.AccessToken, nil).expect(http.StatusUnauthorized)
	env.refresh(owner.RefreshToken).expect(http.StatusUnauthorized)
}

func TestUAARefreshInvalidAfterPasswordChange(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("changer", "old-password")
	tok := env.login("changer", "old-password")

	env.do(http.MethodPut, "/Users/"+user.ID+"/password", tok.AccessToken,
		map[string]string{"oldPassword": "old-password", "password": "new-password"}).expect(http.StatusOK)

	resp := env.refresh(tok.RefreshToken).expect(http.StatusUnauthorized)
	if kind, _ := resp.uaaError(); kind != "invalid_token" {
		t.Errorf("refresh after password change: error = %s, want invalid_token", kind)
	}
	env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"changer"}, "password": {"old-password"}},
		basic: cfBasic,
	}).expect(http.StatusUnauthorized)
	fresh := env.login("changer", "new-password")
	env.refresh(fresh.RefreshToken).expect(http.StatusOK)
}

func TestUAARefreshInvalidAfterUserDeletion(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("doomed", "doomed-pw")
	tok := env.login("doomed", "doomed-pw")

	var deleted struct {
		ID     string `json:"id"`
		Origin string `json:"origin"`
	}
	env.do(http.MethodDelete, "/Users/"+user.ID, env.adminToken(), nil).expect(http.StatusOK).decode(&deleted)
	if deleted.ID != user.ID || deleted.Origin != "uaa" {
		t.Errorf("deleted user = %+v, want id %s origin uaa", deleted, user.ID)
	}

	resp := env.refresh(tok.RefreshToken).expect(http.StatusUnauthorized)
	if kind, _ := resp.uaaError(); kind != "invalid_token" {
		t.Errorf("refresh after deletion: error = %s, want invalid_token", kind)
	}
	env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"doomed"}, "password": {"doomed-pw"}},
		basic: cfBasic,
	}).expect(http.StatusUnauthorized)
}

func TestUAAUserInfo(t *testing.T) {
	env := newTestEnv(t)
	user := env.createUAAUser("info", "info-pw")
	tok := env.login("info", "info-pw")

	body := env.do(http.MethodGet, "/userinfo", tok.AccessToken, nil).expect(http.StatusOK).object()
	for key, want := range map[string]any{
		"user_id": user.ID, "sub": user.ID, "user_name": "info", "email": "info@example.com", "origin": "uaa",
	} {
		if body[key] != want {
			t.Errorf("userinfo %s = %#v, want %#v", key, body[key], want)
		}
	}

	resp := env.do(http.MethodGet, "/userinfo", "", nil).expect(http.StatusUnauthorized)
	if kind, _ := resp.uaaError(); kind != "unauthorized" {
		t.Errorf("no token: error = %s, want unauthorized", kind)
	}
	resp = env.do(http.MethodGet, "/userinfo", "garbage", nil).expect(http.StatusUnauthorized)
	if kind, _ := resp.uaaError(); kind != "invalid_token" {
		t.Errorf("garbage token: error = %s, want invalid_token", kind)
	}
}

func TestUAATokenKeysVerifyIssuedTokens(t *testing.T) {
	env := newTestEnv(t)

	var keys struct {
		Keys []jwkJSON `json:"keys"`
	}
	env.do(http.MethodGet, "/token_keys", "", nil).expect(http.StatusOK).decode(&keys)
	if len(keys.Keys) != 1 {
		t.Fatalf("keys = %d, want 1", len(keys.Keys))
	}
	key := keys.Keys[0]
	if key.Kty != "RSA" || key.Alg != "RS256" || key.Use != "sig" || key.Kid != "test-key" {
		t.Errorf("key = %s %s %s %s, want RSA RS256 sig test-key", key.Kty, key.Alg, key.Use, key.Kid)
	}
	if !strings.HasPrefix(key.Value, "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("value = %q, want a PEM public key", key.Value)
	}
	if key.E != "AQAB" {
		t.Errorf("e = %q, want AQAB (65537)", key.E)
	}

	var single jwkJSON
	env.do(http.MethodGet, "/token_key", "", nil).expect(http.StatusOK).decode(&single)
	if single != key {
		t.Errorf("/token_key = %+v, want the key of /token_keys", single)
	}

	pub := signingKey(t).PublicKey
	n, err := base64.RawURLEncoding.DecodeString(key.N)
	if err != nil {
		t.Fatal(err)
	}
	if string(n) != string(pub.N.Bytes()) {
		t.Error("n does not match the signing key's modulus")
	}
}
