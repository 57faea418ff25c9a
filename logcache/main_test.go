package logcache

import (
	"context"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// TestMain starts the private PostgreSQL server, except in the server child
// process of the load test, which uses the parent's.
func TestMain(m *testing.M) {
	if os.Getenv("FERRY_LOADTEST_SERVER") != "" {
		os.Exit(m.Run())
	}
	pgtest.Main(m)
}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

func signingKey() *rsa.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := auth.GenerateKey()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// apiEnv is the read API over a Store, with real token verification and
// an app in a space of its own PostgreSQL database.
type apiEnv struct {
	t     testing.TB
	store *store.Store
	// databaseURL is the URL of store's database.
	databaseURL string
	auth        *auth.Service
	logs        *Store
	access      *Access
	server      *httptest.Server
	orgGUID     string
	space       string
	app         string
}

func newAPIEnv(t testing.TB) *apiEnv {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewURL(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	env := &apiEnv{t: t, store: st, databaseURL: url, logs: NewStore(Limits{})}
	env.auth = auth.NewService(signingKey(), "test-key", auth.Config{Revocations: st})
	env.access = NewAccess(env.auth, st, 0)

	org, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	space, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org.GUID})
	if err != nil {
		t.Fatal(err)
	}
	app, err := store.CreateApp(ctx, st.DB(), store.App{GUID: uuid.NewString(), Name: "web", SpaceGUID: space.GUID,
		LifecycleType: store.LifecycleBuildpack})
	if err != nil {
		t.Fatal(err)
	}
	env.orgGUID, env.space, env.app = org.GUID, space.GUID, app.GUID

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	env.server = httptest.NewServer(NewHandler(env.logs, env.access, logger))
	t.Cleanup(env.server.Close)
	return env
}

// token signs an access token for a user with scopes.
func (e *apiEnv) token(userGUID string, scopes ...string) string {
	e.t.Helper()
	tok, _, err := e.auth.IssueAccessToken(auth.Actor{UserGUID: userGUID, UserName: "user-" + userGUID[:8],
		Origin: "uaa", ClientID: "cf", Scopes: scopes}, "password")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// userWithRole creates a user holding roleType in the app's space (space_*
// roles) or org (organization_* roles) and returns the user's guid.
func (e *apiEnv) userWithRole(roleType string) string {
	e.t.Helper()
	ctx := context.Background()
	guid := uuid.NewString()
	if _, err := store.CreateUser(ctx, e.store.DB(), guid, nil, nil); err != nil {
		e.t.Fatal(err)
	}
	if roleType == "" {
		return guid
	}
	role := store.Role{GUID: uuid.NewString(), Type: roleType, UserGUID: guid}
	if len(roleType) > 6 && roleType[:6] == "space_" {
		role.SpaceGUID = e.space
	} else {
		role.OrganizationGUID = e.orgGUID
	}
	if _, err := store.CreateRole(ctx, e.store.DB(), role); err != nil {
		e.t.Fatal(err)
	}
	return guid
}

// get sends a GET with token (none when empty) and returns the status and
// body.
func (e *apiEnv) get(path, token string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.server.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
