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

// Config sets token lifetimes and the issuer URL written into tokens.
type Config struct {
	Issuer          string
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
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

// Service issues and verifies RS256 access tokens.
type Service struct {
	key *rsa.PrivateKey
	kid string
	cfg Config
	now func() time.Time
}

// NewService returns a Service signing with key, published under kid.
func NewService(key *rsa.PrivateKey, kid string, cfg Config) *Service {
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	return &Service{key: key, kid: kid, cfg: cfg, now: time.Now}
}

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

// Verify checks a raw access token's signature, algorithm and expiry and
// returns its actor. Every failure is CF-InvalidAuthToken; the reason is not
// sent to the client.
func (s *Service) Verify(ctx context.Context, raw string) (*Actor, error) {
	claims, err := s.parse(raw)
	if err != nil {
		return nil, apierr.InvalidAuthToken()
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
