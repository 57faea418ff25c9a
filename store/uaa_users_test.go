package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func newUAAUser(username, origin string) store.UAAUser {
	return store.UAAUser{ID: uuid.NewString(), Username: username, Origin: origin, PasswordHash: "$2a$04$hash",
		Groups: []string{"cloud_controller.admin"}}
}

func TestUAAUserUniquePerOrigin(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()

	first, err := st.CreateUAAUser(ctx, newUAAUser("Dana", "uaa"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Generation != 1 || len(first.Groups) != 1 || first.CreatedAt.IsZero() {
		t.Errorf("created = %+v", first)
	}

	_, err = st.CreateUAAUser(ctx, newUAAUser("dana", "uaa"))
	if !store.IsUnique(err, store.UAAUsernameOriginKey) {
		t.Errorf("same name, other case: error = %v, want a unique violation of %s", err, store.UAAUsernameOriginKey)
	}
	dup := newUAAUser("someone", "uaa")
	dup.ID = first.ID
	if _, err := st.CreateUAAUser(ctx, dup); !store.IsUnique(err, store.UAAUserPrimaryKey) {
		t.Errorf("same id: error = %v, want a unique violation of %s", err, store.UAAUserPrimaryKey)
	}
	ldap := newUAAUser("dana", "ldap")
	ldap.PasswordHash = ""
	if _, err := st.CreateUAAUser(ctx, ldap); err != nil {
		t.Errorf("same name in another origin: %v", err)
	}
}

func TestUAAUserLookups(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	uaa, err := st.CreateUAAUser(ctx, newUAAUser("Erin", "uaa"))
	if err != nil {
		t.Fatal(err)
	}
	ldapUser := newUAAUser("erin", "ldap")
	ldapUser.PasswordHash = ""
	ldap, err := st.CreateUAAUser(ctx, ldapUser)
	if err != nil {
		t.Fatal(err)
	}

	got, err := st.UAAUserByName(ctx, "ERIN", "uaa")
	if err != nil || got.ID != uaa.ID || got.Username != "Erin" {
		t.Errorf("UAAUserByName = %+v, %v; want %s", got, err, uaa.ID)
	}
	if _, err := st.UAAUserByName(ctx, "erin", "saml"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown origin: error = %v, want ErrNotFound", err)
	}
	if ldap.PasswordHash != "" {
		t.Errorf("ldap user hash = %q, want empty", ldap.PasswordHash)
	}

	byName, err := st.UAAUsersByName(ctx, "erin")
	if err != nil || len(byName) != 2 || byName[0].Origin != "ldap" || byName[1].Origin != "uaa" {
		t.Errorf("UAAUsersByName = %+v, %v; want ldap then uaa", byName, err)
	}

	byID, err := st.UAAUsersByIDs(ctx, []string{uaa.ID, ldap.ID, "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(byID) != 2 || byID[uaa.ID].Origin != "uaa" || byID[ldap.ID].Username != "erin" {
		t.Errorf("UAAUsersByIDs = %+v", byID)
	}
	if empty, err := st.UAAUsersByIDs(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("UAAUsersByIDs(nil) = %v, %v", empty, err)
	}
}

func TestUAAUsersFilterIsParameterised(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	if _, err := st.CreateUAAUser(ctx, newUAAUser("frank", "uaa")); err != nil {
		t.Fatal(err)
	}

	users, total, err := st.UAAUsers(ctx, store.UAAUserQuery{
		Filter: &store.UAAUserFilter{Operator: "eq", Attribute: "username", Value: `x' OR '1'='1`}, Count: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 0 || total != 0 {
		t.Errorf("injection attempt matched %d users (total %d)", len(users), total)
	}

	_, _, err = st.UAAUsers(ctx, store.UAAUserQuery{
		Filter: &store.UAAUserFilter{Operator: "eq", Attribute: "password_hash", Value: "x"}, Count: 10,
	})
	if err == nil {
		t.Error("a filter on password_hash was accepted")
	}
}

func TestSetUAAUserPasswordRevokesRefreshTokens(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	u, err := st.CreateUAAUser(ctx, newUAAUser("gina", "uaa"))
	if err != nil {
		t.Fatal(err)
	}
	createRefreshToken(t, st, "rt-1-r", u.ID, "access-1")

	if err := st.SetUAAUserPassword(ctx, u.ID, "$2a$04$newhash"); err != nil {
		t.Fatal(err)
	}
	after, err := st.UAAUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != u.Generation+1 || after.PasswordHash != "$2a$04$newhash" {
		t.Errorf("after change: generation %d, hash %q", after.Generation, after.PasswordHash)
	}
	rt, err := st.RefreshToken(ctx, "rt-1-r")
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Revoked {
		t.Error("refresh token not revoked by the password change")
	}
	if err := st.SetUAAUserPassword(ctx, "missing", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: error = %v, want ErrNotFound", err)
	}
}

func TestDeleteUAAUserDeletesRefreshTokens(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	u, err := st.CreateUAAUser(ctx, newUAAUser("hank", "uaa"))
	if err != nil {
		t.Fatal(err)
	}
	createRefreshToken(t, st, "rt-2-r", u.ID, "access-2")

	deleted, err := st.DeleteUAAUser(ctx, u.ID)
	if err != nil || deleted.ID != u.ID {
		t.Fatalf("DeleteUAAUser = %+v, %v", deleted, err)
	}
	if _, err := st.RefreshToken(ctx, "rt-2-r"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh token after user deletion: error = %v, want ErrNotFound", err)
	}
	if _, err := st.DeleteUAAUser(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: error = %v, want ErrNotFound", err)
	}
}

func TestEnsureAdminUserCreatesOnce(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()

	const callers = 6
	var wg sync.WaitGroup
	results := make([]bool, callers)
	ids := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, created, err := st.EnsureAdminUser(ctx, newUAAUser("admin", "uaa"))
			results[i], ids[i], errs[i] = created, u.ID, err
		}()
	}
	wg.Wait()

	creations := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i] {
			creations++
		}
		if ids[i] != ids[0] {
			t.Errorf("caller %d got user %s, caller 0 got %s", i, ids[i], ids[0])
		}
	}
	if creations != 1 {
		t.Errorf("%d callers created the admin, want 1", creations)
	}

	var ccUsers int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM users WHERE guid = $1`, ids[0]).Scan(&ccUsers); err != nil {
		t.Fatal(err)
	}
	if ccUsers != 1 {
		t.Errorf("Cloud Controller users with the admin's guid = %d, want 1", ccUsers)
	}
}

func createRefreshToken(t *testing.T, st *store.Store, jti, userID, accessJTI string) {
	t.Helper()
	err := st.CreateRefreshToken(context.Background(), store.RefreshToken{
		JTI: jti, UserID: userID, ClientID: "cf", Scopes: []string{"openid"}, Generation: 1, AccessJTI: accessJTI,
		ExpiresAt: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
}
