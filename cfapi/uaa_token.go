package cfapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// maxFormBytes bounds /oauth/token bodies, which hold a few short fields.
const maxFormBytes = 64 << 10

// tokenJSON is the OAuth token response. token_type is lowercase "bearer":
// the cf CLI stores "<token_type> <access_token>" and later strips exactly
// "bearer ", so "Bearer" would make it refresh before every request.
type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	JTI          string `json:"jti"`
}

// issueToken is the OAuth token endpoint. cf login uses the password grant,
// with client "cf" and an empty secret in HTTP Basic. The cf CLI uses the
// refresh_token grant before a token expires. cf auth --client-credentials
// uses the client_credentials grant, with client_id and client_secret in the
// body and no Basic header. Credentials are read from the body only, never
// from the query string.
func (a *API) issueToken(r *http.Request) (*response, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, apierr.InvalidRequestUAA("The body must be application/x-www-form-urlencoded and at most 64 KiB.")
	}

	grant := r.Form.Get("grant_type")
	if grant == "" {
		return nil, apierr.InvalidRequestUAA("Missing grant_type: use password, refresh_token or client_credentials.")
	}
	if grant != auth.GrantPassword && grant != auth.GrantRefreshToken && grant != auth.GrantClientCredentials {
		return nil, apierr.UnsupportedGrantType(grant)
	}

	client, err := a.authenticateClient(r)
	if err != nil {
		return nil, err
	}
	if !client.Allows(grant) {
		return nil, &apierr.UAAError{Status: http.StatusBadRequest, Kind: "unauthorized_client",
			Description: "Client '" + client.ID + "' may not use the " + grant + " grant."}
	}

	var tok tokenJSON
	switch grant {
	case auth.GrantPassword:
		tok, err = a.passwordGrant(r, client)
	case auth.GrantRefreshToken:
		tok, err = a.refreshGrant(r, client)
	default:
		tok, err = a.clientCredentialsGrant(client)
	}
	if err != nil {
		return nil, err
	}
	resp := ok(tok)
	resp.header = http.Header{"Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}
	return resp, nil
}

// authenticateClient checks the client credentials of a token request: HTTP
// Basic, or client_id and client_secret in the body.
func (a *API) authenticateClient(r *http.Request) (auth.AuthenticatedClient, error) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		id = r.PostForm.Get("client_id")
		secret = r.PostForm.Get("client_secret")
		if id == "" {
			return auth.AuthenticatedClient{}, &apierr.UAAError{Status: http.StatusUnauthorized, Kind: "unauthorized",
				Description: "Client authentication is required: send HTTP Basic credentials (cf: for the cf CLI) or client_id and client_secret in the body."}
		}
	}
	client, ok := a.auth.AuthenticateClient(id, secret)
	if !ok {
		return auth.AuthenticatedClient{}, apierr.InvalidClient()
	}
	return client, nil
}

// passwordGrant logs a user in with username and password. The user is
// looked up in the origin of login_hint (query or body, JSON such as
// {"origin":"ldap"}), "uaa" without one. An unknown user and a wrong
// password get the same error.
func (a *API) passwordGrant(r *http.Request, client auth.AuthenticatedClient) (tokenJSON, error) {
	username := r.PostForm.Get("username")
	password := r.PostForm.Get("password")
	if username == "" {
		return tokenJSON{}, apierr.InvalidRequestUAA("Missing username: the password grant needs username and password in the body.")
	}
	if password == "" {
		return tokenJSON{}, apierr.InvalidRequestUAA("Missing password: the password grant needs username and password in the body.")
	}
	origin, err := loginHintOrigin(r.Form.Get("login_hint"))
	if err != nil {
		return tokenJSON{}, err
	}

	user, err := a.store.UAAUserByName(r.Context(), username, origin)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return tokenJSON{}, err
	}
	// NOTE: failed logins are neither rate-limited nor counted towards an
	// account lockout, as UAA's lockout policy would.
	if !a.auth.CheckPassword(user.PasswordHash, password) {
		loggerFrom(r.Context(), a.logger).Info("login failed", "origin", origin, "client_id", client.ID)
		return tokenJSON{}, apierr.BadCredentials()
	}

	scopes, err := requestedScopes(r.PostForm.Get("scope"), auth.UserScopes(user.Groups))
	if err != nil {
		return tokenJSON{}, err
	}
	actor := auth.Actor{UserGUID: user.ID, UserName: user.Username, Origin: user.Origin, ClientID: client.ID, Scopes: scopes}
	access, claims, err := a.auth.IssueAccessToken(actor, auth.GrantPassword)
	if err != nil {
		return tokenJSON{}, err
	}
	refresh, refreshClaims, err := a.auth.IssueRefreshToken(user.ID, client.ID, auth.GrantPassword)
	if err != nil {
		return tokenJSON{}, err
	}
	err = a.store.CreateRefreshToken(r.Context(), store.RefreshToken{
		JTI:        refreshClaims.ID,
		UserID:     user.ID,
		ClientID:   client.ID,
		Scopes:     scopes,
		Generation: user.Generation,
		AccessJTI:  claims.ID,
		ExpiresAt:  refreshClaims.ExpiresAt.Time,
	})
	if err != nil {
		return tokenJSON{}, err
	}
	loggerFrom(r.Context(), a.logger).Info("login succeeded", "user_guid", user.ID, "origin", user.Origin, "client_id", client.ID)
	return a.tokenResponse(access, claims, refresh), nil
}

// loginHintOrigin returns the origin of a login_hint, "uaa" when empty.
func loginHintOrigin(hint string) (string, error) {
	if hint == "" {
		return "uaa", nil
	}
	var parsed struct {
		Origin string `json:"origin"`
	}
	if err := json.Unmarshal([]byte(hint), &parsed); err != nil {
		return "", apierr.InvalidRequestUAA(`Invalid login_hint: use JSON such as {"origin":"uaa"}.`)
	}
	if parsed.Origin == "" {
		return "uaa", nil
	}
	return parsed.Origin, nil
}

// requestedScopes narrows allowed to the space-separated scopes a client
// requested. An empty request means all allowed scopes.
func requestedScopes(requested string, allowed []string) ([]string, error) {
	if strings.TrimSpace(requested) == "" {
		return allowed, nil
	}
	var scopes []string
	for _, s := range strings.Fields(requested) {
		if !slices.Contains(allowed, s) {
			return nil, &apierr.UAAError{Status: http.StatusBadRequest, Kind: "invalid_scope",
				Description: "Invalid scope: " + s + ". Valid scopes are: " + strings.Join(allowed, " ")}
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes, nil
}

// errInvalidRefreshToken is returned for every unusable refresh token. The
// cf CLI shows it as "please log in again".
var errInvalidRefreshToken = apierr.InvalidToken("Invalid refresh token: it is malformed, expired or revoked. Log in again.")

// refreshGrant issues a new access token for a refresh token issued to the
// same client. The refresh token stays the same, as with UAA's default
// non-rotating refresh tokens. It fails once the token is revoked, or the
// user is deleted or has changed password since it was issued. The new
// token's scopes are those granted at login that the user still has.
func (a *API) refreshGrant(r *http.Request, client auth.AuthenticatedClient) (tokenJSON, error) {
	raw := r.PostForm.Get("refresh_token")
	if raw == "" {
		return tokenJSON{}, apierr.InvalidRequestUAA("Missing refresh_token: the refresh_token grant needs it in the body.")
	}
	parsed, err := a.auth.ParseRefreshToken(raw)
	if err != nil || parsed.ClientID != client.ID {
		return tokenJSON{}, errInvalidRefreshToken
	}

	ctx := r.Context()
	record, err := a.store.RefreshToken(ctx, parsed.ID)
	if errors.Is(err, store.ErrNotFound) {
		return tokenJSON{}, errInvalidRefreshToken
	}
	if err != nil {
		return tokenJSON{}, err
	}
	if record.Revoked || !record.ExpiresAt.After(time.Now()) || record.ClientID != client.ID || record.UserID != parsed.UserID {
		return tokenJSON{}, errInvalidRefreshToken
	}

	actor := auth.Actor{UserGUID: client.ID, ClientID: client.ID, Scopes: record.Scopes}
	if record.UserID != "" {
		user, err := a.store.UAAUser(ctx, record.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return tokenJSON{}, errInvalidRefreshToken
		}
		if err != nil {
			return tokenJSON{}, err
		}
		if user.Generation != record.Generation {
			return tokenJSON{}, errInvalidRefreshToken
		}
		actor = auth.Actor{UserGUID: user.ID, UserName: user.Username, Origin: user.Origin, ClientID: client.ID,
			Scopes: auth.IntersectScopes(record.Scopes, auth.UserScopes(user.Groups))}
	}

	access, claims, err := a.auth.IssueAccessToken(actor, auth.GrantRefreshToken)
	if err != nil {
		return tokenJSON{}, err
	}
	err = a.store.SetRefreshTokenAccessJTI(ctx, record.JTI, claims.ID)
	if errors.Is(err, store.ErrNotFound) {
		return tokenJSON{}, errInvalidRefreshToken
	}
	if err != nil {
		return tokenJSON{}, err
	}
	return a.tokenResponse(access, claims, raw), nil
}

// clientCredentialsGrant issues a token to a configured client acting for
// itself. Such tokens carry client_id and no user_name, and get no refresh
// token.
func (a *API) clientCredentialsGrant(client auth.AuthenticatedClient) (tokenJSON, error) {
	scopes := client.Scopes
	if len(scopes) == 0 {
		scopes = []string{auth.ScopeUAANone}
	}
	access, claims, err := a.auth.IssueAccessToken(auth.Actor{UserGUID: client.ID, ClientID: client.ID, Scopes: scopes},
		auth.GrantClientCredentials)
	if err != nil {
		return tokenJSON{}, err
	}
	return a.tokenResponse(access, claims, ""), nil
}

func (a *API) tokenResponse(access string, claims auth.Claims, refresh string) tokenJSON {
	return tokenJSON{
		AccessToken:  access,
		TokenType:    "bearer",
		RefreshToken: refresh,
		ExpiresIn:    int64(claims.ExpiresAt.Sub(claims.IssuedAt.Time) / time.Second),
		Scope:        strings.Join(claims.Scope, " "),
		JTI:          claims.ID,
	}
}
