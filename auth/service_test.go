package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ferrycf/ferry/apierr"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func key(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := GenerateKey()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// revocations is an in-memory RevocationList.
type revocations struct {
	revoked map[string]bool
	err     error
}

func (r *revocations) AccessTokenRevoked(_ context.Context, jti string) (bool, error) {
	return r.revoked[jti], r.err
}

func newTestService(t *testing.T, cfg Config) *Service {
	t.Helper()
	cfg.WeakPasswordHashing = true
	return NewService(key(t), "kid-1", cfg)
}

var userActor = Actor{UserGUID: "u-1", UserName: "alice", Origin: "uaa", ClientID: CFClientID, Scopes: []string{ScopeRead, ScopeWrite}}

func TestIssueAndVerifyAccessToken(t *testing.T) {
	s := newTestService(t, Config{Issuer: "https://api.example.com/oauth/token"})

	raw, claims, err := s.IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}
	actor, err := s.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if actor.UserGUID != "u-1" || actor.UserName != "alice" || actor.Origin != "uaa" || actor.ClientID != CFClientID {
		t.Errorf("actor = %+v", actor)
	}
	if actor.TokenID != claims.ID || claims.ID == "" {
		t.Errorf("TokenID = %q, jti = %q", actor.TokenID, claims.ID)
	}
	if !slices.Equal(actor.Scopes, userActor.Scopes) {
		t.Errorf("scopes = %v, want %v", actor.Scopes, userActor.Scopes)
	}
	if !actor.ExpiresAt.Equal(claims.ExpiresAt.Time) {
		t.Errorf("ExpiresAt = %v, want %v", actor.ExpiresAt, claims.ExpiresAt.Time)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != DefaultAccessTokenTTL {
		t.Errorf("lifetime = %v, want %v", got, DefaultAccessTokenTTL)
	}
}

func TestClientTokenActorIsClient(t *testing.T) {
	s := newTestService(t, Config{})
	raw, claims, err := s.IssueAccessToken(Actor{UserGUID: "bot", ClientID: "bot", Scopes: []string{ScopeRead}}, GrantClientCredentials)
	if err != nil {
		t.Fatal(err)
	}
	if claims.UserID != "" || claims.Origin != "" || claims.UserName != "" {
		t.Errorf("client claims carry user fields: %+v", claims)
	}
	actor, err := s.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !actor.IsClient() || actor.UserGUID != "bot" {
		t.Errorf("actor = %+v, want client bot", actor)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := newTestService(t, Config{})
	valid, _, err := s.IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}

	expired := newTestService(t, Config{})
	expired.now = func() time.Time { return time.Now().Add(-time.Hour) }
	expiredToken, _, err := expired.IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}

	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := NewService(other, "kid-1", Config{WeakPasswordHashing: true}).IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}

	refresh, _, err := s.IssueRefreshToken("u-1", CFClientID, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}

	tests := map[string]string{
		"expired":                expiredToken,
		"other key, same kid":    forged,
		"refresh token":          refresh,
		"garbage":                "not-a-jwt",
		"empty":                  "",
		"truncated signature":    valid[:len(valid)-4],
		"alg none":               unsignedToken(t),
		"HS256 with public key":  hmacWithPublicKey(t, s),
		"wrong kid":              withKid(t, s, "kid-2"),
		"valid but missing jti":  withoutJTI(t, s),
		"valid but missing exp":  withoutExp(t, s),
		"tampered payload scope": tamper(t, valid),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := s.Verify(context.Background(), raw)
			if !errors.Is(err, apierr.InvalidAuthToken()) {
				t.Errorf("Verify error = %v, want CF-InvalidAuthToken", err)
			}
		})
	}
}

func TestVerifyChecksRevocations(t *testing.T) {
	list := &revocations{revoked: map[string]bool{}}
	s := newTestService(t, Config{Revocations: list})
	raw, claims, err := s.IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(context.Background(), raw); err != nil {
		t.Fatalf("before revocation: %v", err)
	}

	list.revoked[claims.ID] = true
	if _, err := s.Verify(context.Background(), raw); !errors.Is(err, apierr.InvalidAuthToken()) {
		t.Errorf("after revocation: error = %v, want CF-InvalidAuthToken", err)
	}

	list.err = errors.New("database down")
	_, err = s.Verify(context.Background(), raw)
	var apiErr *apierr.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Errorf("lookup failure: error = %v, want an internal error, not a token rejection", err)
	}
}

func TestRefreshTokenRoundTrip(t *testing.T) {
	s := newTestService(t, Config{RefreshTokenTTL: time.Hour})
	raw, claims, err := s.IssueRefreshToken("u-1", CFClientID, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.ID) < 3 || claims.ID[len(claims.ID)-2:] != "-r" {
		t.Errorf("jti = %q, want a -r suffix", claims.ID)
	}
	parsed, err := s.ParseRefreshToken(raw)
	if err != nil {
		t.Fatalf("ParseRefreshToken: %v", err)
	}
	if parsed.ID != claims.ID || parsed.UserID != "u-1" || parsed.ClientID != CFClientID || parsed.Subject != "u-1" {
		t.Errorf("parsed = %+v", parsed)
	}
	if got := parsed.ExpiresAt.Sub(parsed.IssuedAt.Time); got != time.Hour {
		t.Errorf("lifetime = %v, want 1h", got)
	}

	access, _, err := s.IssueAccessToken(userActor, GrantPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ParseRefreshToken(access); err == nil {
		t.Error("an access token parsed as a refresh token")
	}

	other, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewService(other, "kid-1", Config{WeakPasswordHashing: true}).ParseRefreshToken(raw); err == nil {
		t.Error("a refresh token parsed under another signing key")
	}
}

func TestPasswordHashing(t *testing.T) {
	s := newTestService(t, Config{})
	hash, err := s.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !s.CheckPassword(hash, "correct horse") {
		t.Error("the right password does not match")
	}
	if s.CheckPassword(hash, "wrong horse") {
		t.Error("a wrong password matches")
	}
	if s.CheckPassword("", "") {
		t.Error("an empty hash matches")
	}
	if _, err := s.HashPassword(string(make([]byte, MaxPasswordBytes+1))); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("long password: error = %v, want ErrPasswordTooLong", err)
	}
}

func TestDefaultPasswordCost(t *testing.T) {
	s := NewService(key(t), "kid-1", Config{})
	if s.passwordCost != DefaultPasswordCost || DefaultPasswordCost < 10 {
		t.Errorf("cost = %d, want %d (at least 10)", s.passwordCost, DefaultPasswordCost)
	}
}

func TestAuthenticateClient(t *testing.T) {
	s := newTestService(t, Config{Clients: []Client{{ID: "bot", Secret: "bot-secret", Scopes: []string{ScopeRead}}}})

	tests := []struct {
		name, id, secret string
		wantOK           bool
		wantGrant        string
	}{
		{"cf with empty secret", CFClientID, "", true, GrantPassword},
		{"cf with a secret", CFClientID, "x", false, ""},
		{"configured client", "bot", "bot-secret", true, GrantClientCredentials},
		{"configured client, wrong secret", "bot", "bot-secre", false, ""},
		{"unknown client", "ghost", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := s.AuthenticateClient(tt.id, tt.secret)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && !c.Allows(tt.wantGrant) {
				t.Errorf("client %s does not allow %s", tt.id, tt.wantGrant)
			}
		})
	}
	bot, _ := s.AuthenticateClient("bot", "bot-secret")
	if bot.Allows(GrantPassword) || !slices.Equal(bot.Scopes, []string{ScopeRead}) {
		t.Errorf("bot = %+v, want client_credentials only with scope %s", bot, ScopeRead)
	}
}

func TestUserScopes(t *testing.T) {
	tests := []struct {
		name        string
		groups      []string
		wantHas     []string
		wantMissing []string
	}{
		{"ordinary user", nil, []string{ScopeRead, ScopeWrite, ScopeOpenID, ScopePasswordWrite, ScopeSCIMMe, ScopeUAAUser},
			[]string{ScopeAdmin, ScopeSCIMRead}},
		{"admin", AdminGroups, []string{ScopeAdmin, ScopeRead, ScopeWrite, ScopeSCIMRead, ScopeSCIMWrite, ScopeUAAAdmin, ScopePasswordWrite},
			[]string{ScopeSCIMMe}},
		{"read-only admin", []string{ScopeAdminReadOnly}, []string{ScopeAdminReadOnly, ScopeRead}, []string{ScopeWrite}},
		{"global auditor", []string{ScopeGlobalAuditor}, []string{ScopeGlobalAuditor, ScopeRead}, []string{ScopeWrite}},
		{"extra group", []string{"doppler.firehose"}, []string{"doppler.firehose", ScopeWrite}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UserScopes(tt.groups)
			for _, s := range tt.wantHas {
				if !slices.Contains(got, s) {
					t.Errorf("scopes %v lack %s", got, s)
				}
			}
			for _, s := range tt.wantMissing {
				if slices.Contains(got, s) {
					t.Errorf("scopes %v contain %s", got, s)
				}
			}
		})
	}
}

func TestIntersectScopes(t *testing.T) {
	got := IntersectScopes([]string{"a", "b", "c"}, []string{"c", "a", "d"})
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("IntersectScopes = %v, want [a c]", got)
	}
}

// unsignedToken is a token with "alg": "none" and no signature.
func unsignedToken(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims())
	tok.Header["kid"] = "kid-1"
	raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// hmacWithPublicKey signs with HS256 using the PEM public key as the
// secret, the classic algorithm-confusion forgery.
func hmacWithPublicKey(t *testing.T, s *Service) string {
	t.Helper()
	pemKey, err := EncodePublicKey(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
	tok.Header["kid"] = "kid-1"
	raw, err := tok.SignedString(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func withKid(t *testing.T, s *Service, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, validClaims())
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func withoutJTI(t *testing.T, s *Service) string {
	t.Helper()
	c := validClaims()
	c.ID = ""
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "kid-1"
	raw, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func withoutExp(t *testing.T, s *Service) string {
	t.Helper()
	c := validClaims()
	c.ExpiresAt = nil
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "kid-1"
	raw, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// tamper swaps the payload of a validly signed token for one with admin
// scope, keeping header and signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	c := validClaims()
	c.Scope = []string{ScopeAdmin}
	forged := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	unsigned, err := forged.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	header, payload := splitToken(raw)[0], splitToken(unsigned)[1]
	return header + "." + payload + "." + splitToken(raw)[2]
}

func splitToken(raw string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] == '.' {
			parts = append(parts, raw[start:i])
			start = i + 1
		}
	}
	return append(parts, raw[start:])
}

func validClaims() Claims {
	now := time.Now()
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        "forged-jti",
			Subject:   "u-1",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		UserID:   "u-1",
		UserName: "alice",
		Origin:   "uaa",
		ClientID: CFClientID,
		Scope:    []string{ScopeRead},
	}
}
