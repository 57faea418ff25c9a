package auth

import (
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// RefreshClaims is the refresh token payload. The cf CLI reads only its jti,
// to revoke it on logout. The other claims are for Ferry.
type RefreshClaims struct {
	jwt.RegisteredClaims
	// UserID is the user's id, empty for tokens issued to a client alone.
	UserID    string `json:"user_id,omitempty"`
	ClientID  string `json:"client_id"`
	CID       string `json:"cid"`
	GrantType string `json:"grant_type"`
	Revocable bool   `json:"revocable"`
	Zone      string `json:"zid"`
}

// IssueRefreshToken signs a refresh token for userID (empty for a client
// alone) on behalf of clientID. Its jti ends in "-r", as UAA's do, so the
// two kinds of jti never collide.
func (s *Service) IssueRefreshToken(userID, clientID, grant string) (string, RefreshClaims, error) {
	now := s.now()
	subject := userID
	if subject == "" {
		subject = clientID
	}
	claims := RefreshClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        uuid.NewString() + "-r",
			Issuer:    s.cfg.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{clientID},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.RefreshTokenTTL)),
		},
		UserID:    userID,
		ClientID:  clientID,
		CID:       clientID,
		GrantType: grant,
		Revocable: true,
		Zone:      "uaa",
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.refreshKey)
	if err != nil {
		return "", RefreshClaims{}, fmt.Errorf("sign refresh token: %w", err)
	}
	return signed, claims, nil
}

// ParseRefreshToken checks a refresh token's MAC and expiry and returns its
// claims. Whether it was revoked is for the caller to look up by jti.
func (s *Service) ParseRefreshToken(raw string) (*RefreshClaims, error) {
	claims := &RefreshClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return s.refreshKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil, fmt.Errorf("parse refresh token: %w", err)
	}
	if claims.ID == "" || claims.ClientID == "" {
		return nil, errors.New("parse refresh token: jti or client_id missing")
	}
	return claims, nil
}

// deriveRefreshKey derives the refresh token MAC key from the signing key,
// so the key persists and rotates with it and needs no storage of its own.
func deriveRefreshKey(key *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(fmt.Errorf("derive refresh token key: %w", err)) // A valid *rsa.PrivateKey always marshals.
	}
	derived, err := hkdf.Key(sha256.New, der, nil, "ferry refresh token v1", 32)
	if err != nil {
		panic(fmt.Errorf("derive refresh token key: %w", err)) // Only an oversized length fails.
	}
	return derived
}
