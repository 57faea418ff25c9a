package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestRefreshTokenLifecycle(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	createRefreshToken(t, st, "rt-a-r", "user-a", "access-a1")

	rt, err := st.RefreshToken(ctx, "rt-a-r")
	if err != nil {
		t.Fatal(err)
	}
	if rt.UserID != "user-a" || rt.ClientID != "cf" || rt.AccessJTI != "access-a1" || rt.Revoked || rt.Generation != 1 {
		t.Errorf("refresh token = %+v", rt)
	}

	if err := st.SetRefreshTokenAccessJTI(ctx, "rt-a-r", "access-a2"); err != nil {
		t.Fatal(err)
	}
	byAccess, err := st.RefreshTokenByAccessJTI(ctx, "access-a2")
	if err != nil || byAccess.JTI != "rt-a-r" {
		t.Errorf("RefreshTokenByAccessJTI = %+v, %v", byAccess, err)
	}
	if _, err := st.RefreshTokenByAccessJTI(ctx, "access-a1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("superseded access jti: error = %v, want ErrNotFound", err)
	}

	if err := st.RevokeRefreshToken(ctx, "rt-a-r"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetRefreshTokenAccessJTI(ctx, "rt-a-r", "access-a3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh with a revoked token: error = %v, want ErrNotFound", err)
	}
	if err := st.RevokeRefreshToken(ctx, "missing-r"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: error = %v, want ErrNotFound", err)
	}
}

func TestRevokeAccessToken(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	createRefreshToken(t, st, "rt-b-r", "user-b", "access-b")

	revoked, err := st.AccessTokenRevoked(ctx, "access-b")
	if err != nil || revoked {
		t.Fatalf("before: revoked = %v, %v", revoked, err)
	}
	if err := st.RevokeAccessToken(ctx, "access-b", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(ctx, "access-b", time.Now().Add(time.Hour)); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	revoked, err = st.AccessTokenRevoked(ctx, "access-b")
	if err != nil || !revoked {
		t.Errorf("after: revoked = %v, %v", revoked, err)
	}
	rt, err := st.RefreshToken(ctx, "rt-b-r")
	if err != nil || !rt.Revoked {
		t.Errorf("refresh token of the revoked access token: %+v, %v; want revoked", rt, err)
	}
}

func TestExpiredRevocationsAreDropped(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	if err := st.RevokeAccessToken(ctx, "old", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(ctx, "new", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM revoked_tokens`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("revocation rows = %d, want 1 (the expired one dropped)", n)
	}
}
