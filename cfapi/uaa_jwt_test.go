package cfapi

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ferrycf/ferry/auth"
)

// adminClaims are the claims of an admin token, for forging.
func adminClaims(now time.Time) auth.Claims {
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        "forged-" + now.Format("150405.000000000"),
			Subject:   "admin-guid",
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		UserID:   "admin-guid",
		UserName: "admin",
		Origin:   "uaa",
		ClientID: "cf",
		Scope:    []string{auth.ScopeAdmin, auth.ScopeRead, auth.ScopeWrite},
	}
}

func signWith(t *testing.T, method jwt.SigningMethod, key any, kid string, claims auth.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestUAAJWTAttacksOnProtectedEndpoint(t *testing.T) {
	env := newTestEnv(t)
	env.createUAAUser("victim", "victim-pw")
	login := env.login("victim", "victim-pw")
	now := time.Now()

	expired := adminClaims(now.Add(-2 * time.Hour))
	otherKey, err := auth.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	publicPEM, err := auth.EncodePublicKey(&signingKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(login.AccessToken, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	elevated := strings.Replace(string(payload), `"scope":[`, `"scope":["cloud_controller.admin",`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(elevated)) + "." + parts[2]

	noneToken := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "test-key", adminClaims(now))

	revoked := env.login("victim", "victim-pw")
	env.do(http.MethodDelete, "/oauth/token/revoke/"+revoked.JTI, revoked.AccessToken, nil).expect(http.StatusOK)

	tests := []struct {
		name          string
		authorization string
		wantTitle     string
	}{
		{"expired token", "bearer " + signWith(t, jwt.SigningMethodRS256, signingKey(t), "test-key", expired), "CF-InvalidAuthToken"},
		{"signed by another key", "bearer " + signWith(t, jwt.SigningMethodRS256, otherKey, "test-key", adminClaims(now)), "CF-InvalidAuthToken"},
		{"alg none", "bearer " + noneToken, "CF-InvalidAuthToken"},
		{"HS256 with the public key", "bearer " + signWith(t, jwt.SigningMethodHS256, publicPEM, "test-key", adminClaims(now)), "CF-InvalidAuthToken"},
		{"tampered payload", "bearer " + tampered, "CF-InvalidAuthToken"},
		{"refresh token as access token", "bearer " + login.RefreshToken, "CF-InvalidAuthToken"},
		{"garbage", "bearer garbage", "CF-InvalidAuthToken"},
		{"three garbage segments", "bearer a.b.c", "CF-InvalidAuthToken"},
		{"basic scheme", "Basic Y2Y6", "CF-InvalidAuthToken"},
		{"bearer without token", "bearer ", "CF-InvalidAuthToken"},
		{"revoked jti", "bearer " + revoked.AccessToken, "CF-InvalidAuthToken"},
		{"missing authorization", "", "CF-NotAuthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := env.doWithHeader(http.MethodGet, protectedPath, tt.authorization, nil).expect(http.StatusUnauthorized)
			if _, title, _ := resp.cfError(); title != tt.wantTitle {
				t.Errorf("title = %s, want %s", title, tt.wantTitle)
			}
		})
	}

	t.Run("valid token still accepted", func(t *testing.T) {
		env.do(http.MethodGet, protectedPath, login.AccessToken, nil).expect(http.StatusNotFound)
	})
	t.Run("UAA endpoints answer in UAA form", func(t *testing.T) {
		resp := env.doWithHeader(http.MethodGet, "/userinfo", "bearer "+noneToken, nil).expect(http.StatusUnauthorized)
		if kind, _ := resp.uaaError(); kind != "invalid_token" {
			t.Errorf("error = %s, want invalid_token", kind)
		}
		resp = env.doWithHeader(http.MethodGet, "/userinfo", "bearer "+revoked.AccessToken, nil).expect(http.StatusUnauthorized)
		if kind, _ := resp.uaaError(); kind != "invalid_token" {
			t.Errorf("revoked token: error = %s, want invalid_token", kind)
		}
	})
}
