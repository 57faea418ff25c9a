package cfapi

import (
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// uaaVersion is the UAA version /login reports. cf auth --origin requires at
// least 4.26.0 there (cf CLI v8 and v9, uaaversion.MinUAAClientVersion).
const uaaVersion = "77.0.0"

// uaaRoutes are the UAA-compatible endpoints. They are public in the router
// because UAA reports token problems in its own error form, and the cf CLI
// refreshes its token once on invalid_token. The handlers that need a token
// call uaaActor themselves.
func (a *API) uaaRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/login", handler: a.uaaLogin, public: true},
		{method: http.MethodPost, path: "/oauth/token", handler: a.issueToken, public: true},
		{method: http.MethodDelete, path: "/oauth/token/revoke/{jti}", handler: a.revokeToken, public: true},
		{method: http.MethodGet, path: "/token_keys", handler: a.tokenKeys, public: true},
		{method: http.MethodGet, path: "/token_key", handler: a.tokenKey, public: true},
		{method: http.MethodGet, path: "/userinfo", handler: a.userInfo, public: true},
		{method: http.MethodPost, path: "/Users", handler: a.createSCIMUser, public: true},
		{method: http.MethodGet, path: "/Users", handler: a.listSCIMUsers, public: true},
		{method: http.MethodGet, path: "/Users/{id}", handler: a.getSCIMUser, public: true},
		{method: http.MethodDelete, path: "/Users/{id}", handler: a.deleteSCIMUser, public: true},
		{method: http.MethodPut, path: "/Users/{id}/password", handler: a.changePassword, public: true},
	}
}

// uaaActor verifies the bearer token of a UAA endpoint. Problems are UAA
// errors, not CF ones.
func (a *API) uaaActor(r *http.Request) (*auth.Actor, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, &apierr.UAAError{Status: http.StatusUnauthorized, Kind: "unauthorized",
			Description: "Full authentication is required to access this resource"}
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return nil, apierr.InvalidToken("The Authorization header must be \"bearer\" followed by an access token.")
	}
	token = strings.TrimSpace(token)

	actor, err := a.auth.Verify(r.Context(), token)
	var cfErr *apierr.Error
	if errors.As(err, &cfErr) {
		return nil, apierr.InvalidToken("The access token is invalid, expired or revoked.")
	}
	if err != nil {
		return nil, err
	}
	return actor, nil
}

// requireScope fails with insufficient_scope unless actor has one of scopes.
func requireScope(actor *auth.Actor, scopes ...string) error {
	for _, s := range scopes {
		if actor.HasScope(s) {
			return nil
		}
	}
	return apierr.InsufficientScope(scopes...)
}

type loginInfoJSON struct {
	App struct {
		Version string `json:"version"`
	} `json:"app"`
	Links struct {
		UAA   string `json:"uaa"`
		Login string `json:"login"`
	} `json:"links"`
	ZoneName string               `json:"zone_name"`
	Prompts  map[string][2]string `json:"prompts"`
}

// uaaLogin is the document cf login reads first. The cf CLI prompts
// interactively for every prompt of type "text" and indexes each prompt as a
// two-element array, so exactly these two prompts are sent.
func (a *API) uaaLogin(r *http.Request) (*response, error) {
	var doc loginInfoJSON
	doc.App.Version = uaaVersion
	doc.Links.UAA = a.url()
	doc.Links.Login = a.url()
	doc.ZoneName = "uaa"
	doc.Prompts = map[string][2]string{
		"username": {"text", "Email"},
		"password": {"password", "Password"},
	}
	return ok(doc), nil
}

// jwkJSON is a public key in JWK form plus UAA's PEM "value".
type jwkJSON struct {
	Kty   string `json:"kty"`
	Alg   string `json:"alg"`
	Use   string `json:"use"`
	Kid   string `json:"kid"`
	N     string `json:"n"`
	E     string `json:"e"`
	Value string `json:"value"`
}

func (a *API) signingJWK() (jwkJSON, error) {
	pub := a.auth.PublicKey()
	pemBytes, err := auth.EncodePublicKey(pub)
	if err != nil {
		return jwkJSON{}, err
	}
	return jwkJSON{
		Kty:   "RSA",
		Alg:   "RS256",
		Use:   "sig",
		Kid:   a.auth.KeyID(),
		N:     base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:     base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		Value: string(pemBytes),
	}, nil
}

// tokenKeys publishes the token verification keys, as UAA's /token_keys.
func (a *API) tokenKeys(r *http.Request) (*response, error) {
	key, err := a.signingJWK()
	if err != nil {
		return nil, err
	}
	return ok(map[string][]jwkJSON{"keys": {key}}), nil
}

// tokenKey publishes the active verification key, as UAA's /token_key.
func (a *API) tokenKey(r *http.Request) (*response, error) {
	key, err := a.signingJWK()
	if err != nil {
		return nil, err
	}
	return ok(key), nil
}

type userInfoJSON struct {
	UserID            string  `json:"user_id"`
	Sub               string  `json:"sub"`
	UserName          string  `json:"user_name"`
	GivenName         string  `json:"given_name"`
	FamilyName        string  `json:"family_name"`
	Name              string  `json:"name"`
	Email             string  `json:"email"`
	EmailVerified     bool    `json:"email_verified"`
	PhoneNumber       *string `json:"phone_number"`
	Origin            string  `json:"origin"`
	PreviousLogonTime *int64  `json:"previous_logon_time"`
}

// userInfo is the OpenID Connect userinfo of the token's user.
func (a *API) userInfo(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	if err := requireScope(actor, auth.ScopeOpenID); err != nil {
		return nil, err
	}
	if actor.IsClient() {
		return nil, &apierr.UAAError{Status: http.StatusForbidden, Kind: "insufficient_scope",
			Description: "User info needs a user's token; this token was issued to a client."}
	}

	u, err := a.store.UAAUser(r.Context(), actor.UserGUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.InvalidToken("The user of this token no longer exists.")
	}
	if err != nil {
		return nil, err
	}
	return ok(userInfoJSON{
		UserID:        u.ID,
		Sub:           u.ID,
		UserName:      u.Username,
		GivenName:     u.GivenName,
		FamilyName:    u.FamilyName,
		Name:          strings.TrimSpace(u.GivenName + " " + u.FamilyName),
		Email:         u.Email,
		EmailVerified: true,
		Origin:        u.Origin,
	}), nil
}

// revokeToken revokes one token by jti, as cf logout does for its refresh
// token and then its access token. The caller may revoke its own tokens:
// the access token it authenticates with, any refresh token of its own, and
// the newest access token issued with one. Admins (uaa.admin) may revoke
// any jti. Revoking an access token also revokes the refresh token it came
// from, so a logout holds even when only the access token is revoked.
func (a *API) revokeToken(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	jti := pathParam(r, "jti")
	isAdmin := actor.HasScope(auth.ScopeUAAAdmin)

	if jti == actor.TokenID {
		if err := a.store.RevokeAccessToken(ctx, jti, actor.ExpiresAt); err != nil {
			return nil, err
		}
		return &response{status: http.StatusOK}, nil
	}

	refresh, err := a.store.RefreshToken(ctx, jti)
	switch {
	case err == nil:
		if !isAdmin && !ownsRefreshToken(actor, refresh) {
			return nil, errTokenNotOwned
		}
		if err := a.store.RevokeRefreshToken(ctx, jti); err != nil {
			return nil, err
		}
		return &response{status: http.StatusOK}, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}

	refresh, err = a.store.RefreshTokenByAccessJTI(ctx, jti)
	switch {
	case err == nil:
		if !isAdmin && !ownsRefreshToken(actor, refresh) {
			return nil, errTokenNotOwned
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	case !isAdmin:
		return nil, &apierr.UAAError{Status: http.StatusNotFound, Kind: "not_found",
			Description: "No token of yours has this jti."}
	}
	// The token's own expiry is unknown here, but no access token outlives
	// the access token lifetime from now.
	if err := a.store.RevokeAccessToken(ctx, jti, time.Now().Add(a.auth.AccessTokenTTL())); err != nil {
		return nil, err
	}
	return &response{status: http.StatusOK}, nil
}

var errTokenNotOwned = &apierr.UAAError{Status: http.StatusForbidden, Kind: "access_denied",
	Description: "Only the token's owner or an admin (uaa.admin) may revoke it."}

// ownsRefreshToken reports whether refresh was issued to actor: to its user,
// or, for a client's own token, to its client.
func ownsRefreshToken(actor *auth.Actor, refresh store.RefreshToken) bool {
	if actor.IsClient() {
		return refresh.UserID == "" && refresh.ClientID == actor.ClientID
	}
	return refresh.UserID != "" && refresh.UserID == actor.UserGUID
}
