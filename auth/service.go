package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
)

// Defaults for token lifetimes, matching UAA's defaults for the cf client.
const (
	DefaultAccessTokenTTL  = 20 * time.Minute
	DefaultRefreshTokenTTL = 30 * 24 * time.Hour
)

// Config sets token lifetimes, the issuer URL written into tokens, the OAuth
// clients and where revocations are looked up.
type Config struct {
	Issuer          string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// Clients are the client_credentials clients besides the built-in "cf".
	Clients []Client
	// Revocations, when set, is asked about the jti of every token that
	// passes signature and expiry checks.
	Revocations RevocationList
	// WeakPasswordHashing hashes passwords at bcrypt's minimum cost instead
	// of DefaultPasswordCost. Tests set it to keep logins fast, and
	// configuration files cannot set it.
	WeakPasswordHashing bool
}

// RevocationList reports whether an access token was revoked before its
// expiry.
type RevocationList interface {
	AccessTokenRevoked(ctx context.Context, jti string) (bool, error)
}

// Claims is the UAA access token payload. The cf CLI requires a numeric exp,
// and string user_id and origin whenever user_name is present; client tokens
// carry client_id and no user_name.
type Claims struct {
	jwt.RegisteredClaims
	UserID    string   `json:"user_id,omitempty"`
	UserName  string   `json:"user_name,omitempty"`
	Origin    string   `json:"origin,omitempty"`
	ClientID  string   `json:"client_id"`
	CID       string   `json:"cid"`
	Scope     []string `json:"scope"`
	GrantType string   `json:"grant_type"`
	Revocable bool     `json:"revocable"`
	Zone      string   `json:"zid"`
}

// Service issues and verifies tokens, hashes and checks passwords, and
// authenticates OAuth clients. Access tokens are RS256 JWTs that anyone can
// verify with the published key. Refresh tokens are HS256 JWTs under a key
// derived from the signing key. Only Ferry reads them, and their different
// algorithm means one can never pass as an access token.
type Service struct {
	key          *rsa.PrivateKey
	kid          string
	refreshKey   []byte
	cfg          Config
	now          func() time.Time
	clients      map[string]client
	passwordCost int
	dummyHash    []byte
}

// NewService returns a Service signing with key, published under kid.
func NewService(key *rsa.PrivateKey, kid string, cfg Config) *Service {
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	cost := DefaultPasswordCost
	if cfg.WeakPasswordHashing {
		cost = weakPasswordCost
	}
	return &Service{
		key:          key,
		kid:          kid,
		refreshKey:   deriveRefreshKey(key),
		cfg:          cfg,
		now:          time.Now,
		clients:      newClients(cfg.Clients),
		passwordCost: cost,
		dummyHash:    dummyPasswordHash(cost),
	}
}

// AccessTokenTTL is how long new access tokens are valid.
func (s *Service) AccessTokenTTL() time.Duration { return s.cfg.AccessTokenTTL }

// RefreshTokenTTL is how long new refresh tokens are valid.
func (s *Service) RefreshTokenTTL() time.Duration { return s.cfg.RefreshTokenTTL }

// KeyID is the kid of the signing key, as published at /token_keys.
func (s *Service) KeyID() string { return s.kid }

// PublicKey is the verification key, as published at /token_keys.
func (s *Service) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// IssueAccessToken signs an access token for actor with grant type grant.
// It returns the token and its claims; actor.TokenID is ignored and a fresh
// jti is generated.
func (s *Service) IssueAccessToken(actor Actor, grant string) (string, Claims, error) {
	now := s.now()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        uuid.NewString(),
			Issuer:    s.cfg.Issuer,
			Subject:   actor.UserGUID,
			Audience:  audienceFor(actor.Scopes, actor.ClientID),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTokenTTL)),
		},
		UserID:    actor.UserGUID,
		UserName:  actor.UserName,
		Origin:    actor.Origin,
		ClientID:  actor.ClientID,
		CID:       actor.ClientID,
		Scope:     actor.Scopes,
		GrantType: grant,
		Revocable: true,
		Zone:      "uaa",
	}
	if actor.UserName == "" {
		claims.UserID = ""
		claims.Origin = ""
	}
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	token.Header["kid"] = s.kid
	signed, err := token.SignedString(s.key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, claims, nil
}

// Verify checks a raw access token's signature, algorithm, expiry and
// revocation and returns its actor. Every rejection is CF-InvalidAuthToken,
// and the reason is not sent to the client. A failed revocation lookup is
// returned as an internal error, so a database outage does not log users out.
//
// Verify looks up only the token's own jti: the access tokens of a deleted
// user, or issued before a password change, stay valid until they expire
// (AccessTokenTTL), while their refresh tokens stop working at once.
func (s *Service) Verify(ctx context.Context, raw string) (*Actor, error) {
	claims, err := s.parse(raw)
	if err != nil || claims.ID == "" {
		return nil, apierr.InvalidAuthToken()
	}
	if s.cfg.Revocations != nil {
		revoked, err := s.cfg.Revocations.AccessTokenRevoked(ctx, claims.ID)
		if err != nil {
			return nil, fmt.Errorf("verify access token: %w", err)
		}
		if revoked {
			return nil, apierr.InvalidAuthToken()
		}
	}
	return actorFromClaims(claims), nil
}

// parse verifies raw and returns its claims. Only RS256 with Ferry's key is
// accepted, which rules out "alg: none" and HMAC-with-public-key forgeries.
func (s *Service) parse(raw string) (*Claims, error) {
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errors.New("unknown signing key")
		}
		return &s.key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, err
	}
	return claims, nil
}

func actorFromClaims(c *Claims) *Actor {
	a := &Actor{
		UserGUID: c.UserID,
		UserName: c.UserName,
		Origin:   c.Origin,
		ClientID: c.ClientID,
		TokenID:  c.ID,
		Scopes:   c.Scope,
	}
	if c.ExpiresAt != nil {
		a.ExpiresAt = c.ExpiresAt.Time
	}
	if a.UserName == "" {
		a.UserGUID = c.ClientID
	}
	return a
}

// audienceFor lists the resource servers of the scopes, as UAA does
// ("cloud_controller.read" → "cloud_controller"), plus the client.
func audienceFor(scopes []string, clientID string) jwt.ClaimStrings {
	seen := map[string]bool{}
	var aud jwt.ClaimStrings
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			aud = append(aud, s)
		}
	}
	add(clientID)
	for _, scope := range scopes {
		for i := 0; i < len(scope); i++ {
			if scope[i] == '.' {
				add(scope[:i])
				break
			}
		}
	}
	return aud
}
