package cfapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLogsNeverContainSecrets runs the login, token, user and tenancy flows
// with known secrets and checks that none of them reaches the log output,
// neither in full nor as a recognisable part.
func TestLogsNeverContainSecrets(t *testing.T) {
	env := newTestEnv(t)
	const (
		password    = "Pw-for-log-check-7f3a91"
		newPassword = "Pw-changed-log-check-c81e"
		userPass    = "Pw-scim-user-log-check-55d0"
	)
	env.createUAAUser("log-admin", password, "cloud_controller.admin", "scim.write", "scim.read", "uaa.admin")

	// cf login, with one failed attempt first.
	env.tokenRequest(formRequest{
		form:  url.Values{"grant_type": {"password"}, "username": {"log-admin"}, "password": {password + "x"}},
		basic: cfBasic,
	}).expect(http.StatusUnauthorized)
	tok := env.login("log-admin", password)
	refreshed := env.refresh(tok.RefreshToken).expect(http.StatusOK)
	var second tokenResponse
	refreshed.decode(&second)

	// cf auth --client-credentials.
	var client tokenResponse
	env.tokenRequest(formRequest{form: url.Values{
		"grant_type": {"client_credentials"}, "client_id": {testClientID}, "client_secret": {testClientSecret},
	}}).expect(http.StatusOK).decode(&client)

	// cf create-user, then a password change.
	var created struct{ ID string }
	env.do(http.MethodPost, "/Users", tok.AccessToken, map[string]any{
		"userName": "log-user", "password": userPass, "origin": "",
		"name":   map[string]any{"familyName": "log-user", "givenName": "log-user"},
		"emails": []any{map[string]any{"value": "log-user", "primary": true}},
	}).expect(http.StatusCreated).decode(&created)
	env.do(http.MethodPut, "/Users/"+created.ID+"/password", tok.AccessToken, map[string]any{
		"oldPassword": userPass, "password": newPassword,
	}).expect(http.StatusOK)

	// Tenancy calls with the tokens in the Authorization header, a query
	// string carrying a token-like value, and a tampered token.
	var org struct{ GUID string }
	env.do(http.MethodPost, "/v3/organizations", tok.AccessToken, map[string]any{"name": "log-org"}).expect(http.StatusCreated).decode(&org)
	env.do(http.MethodGet, "/v3/organizations?names="+url.QueryEscape(password), second.AccessToken, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/organizations", client.AccessToken, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/organizations", tok.AccessToken+"tampered", nil).expect(http.StatusUnauthorized)
	env.do(http.MethodDelete, "/oauth/token/revoke/"+tok.JTI, tok.AccessToken, nil)

	logs := env.logs.String()
	if !strings.Contains(logs, `"request"`) {
		t.Fatalf("no access log lines captured; the check would prove nothing:\n%s", logs)
	}
	secrets := map[string]string{
		"password":             password,
		"new password":         newPassword,
		"scim user password":   userPass,
		"client secret":        testClientSecret,
		"access token":         tok.AccessToken,
		"refreshed token":      second.AccessToken,
		"refresh token":        tok.RefreshToken,
		"client token":         client.AccessToken,
		"access token payload": strings.Split(tok.AccessToken, ".")[1],
		"access signature":     strings.Split(tok.AccessToken, ".")[2],
	}
	for name, secret := range secrets {
		if secret == "" {
			t.Errorf("%s is empty; the flow did not produce it", name)
			continue
		}
		if strings.Contains(logs, secret) {
			t.Errorf("log output contains the %s", name)
		}
	}
}
