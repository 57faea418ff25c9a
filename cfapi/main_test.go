package cfapi

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The client_credentials client every test API has.
const (
	testClientID     = "ci-bot"
	testClientSecret = "ci-bot-secret"
)

var testClientScopes = []string{auth.ScopeRead, auth.ScopeWrite}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

func signingKey(t testing.TB) *rsa.PrivateKey {
	testKeyOnce.Do(func() {
		k, err := auth.GenerateKey()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// testEnv is an API on its own migrated database, served over real HTTP.
type testEnv struct {
	t      testing.TB
	api    *API
	store  *store.Store
	auth   *auth.Service
	runner *jobs.Runner
	server *httptest.Server
	logs   *bytes.Buffer
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	st := pgtest.NewStore(t)
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	env := &testEnv{t: t, store: st, logs: logs}
	env.server = httptest.NewUnstartedServer(nil)
	url := "http://" + env.server.Listener.Addr().String()

	env.auth = auth.NewService(signingKey(t), "test-key", auth.Config{
		Issuer:              url + "/oauth/token",
		Clients:             []auth.Client{{ID: testClientID, Secret: testClientSecret, Scopes: testClientScopes}},
		Revocations:         st,
		WeakPasswordHashing: true,
	})
	env.runner = jobs.NewRunner(st, logger)
	env.api = New(st, env.auth, env.runner, logger, Config{ExternalURL: url})
	env.server.Config.Handler = env.api.Handler()
	env.server.Start()
	t.Cleanup(env.server.Close)
	return env
}

// lockedWriter serialises writes from concurrent handlers into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// token signs an access token for actor without going through a login.
func (e *testEnv) token(actor auth.Actor) string {
	e.t.Helper()
	tok, _, err := e.auth.IssueAccessToken(actor, "password")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// adminToken is a token with the scopes UAA gives an admin user.
func (e *testEnv) adminToken() string {
	return e.token(auth.Actor{UserGUID: "admin-guid", UserName: "admin", Origin: "uaa", ClientID: "cf",
		Scopes: []string{auth.ScopeAdmin, auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID, auth.ScopeSCIMRead, auth.ScopeSCIMWrite, auth.ScopeUAAAdmin}})
}

// newUser creates a Cloud Controller user record and returns its guid and a
// token with ordinary user scopes plus extra.
func (e *testEnv) newUser(username string, extra ...string) (string, string) {
	e.t.Helper()
	guid := uuid.NewString()
	if _, err := e.store.DB().ExecContext(context.Background(), `INSERT INTO users (guid) VALUES ($1)`, guid); err != nil {
		e.t.Fatal(err)
	}
	scopes := append([]string{auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID}, extra...)
	return guid, e.token(auth.Actor{UserGUID: guid, UserName: username, Origin: "uaa", ClientID: "cf", Scopes: scopes})
}

// testResponse is a completed HTTP exchange.
type testResponse struct {
	t      testing.TB
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request; body may be nil, a string (sent as is) or a value
// encoded as JSON.
func (e *testEnv) do(method, path, token string, body any) *testResponse {
	e.t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.server.URL+path, reader)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &testResponse{t: e.t, Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// decode unmarshals the body into v.
func (r *testResponse) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// object returns the body as a generic JSON object.
func (r *testResponse) object() map[string]any {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	return m
}

// expect fails the test unless the status is want.
func (r *testResponse) expect(want int) *testResponse {
	r.t.Helper()
	if r.Status != want {
		r.t.Fatalf("status = %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// cfError returns the first v3 error of the body.
func (r *testResponse) cfError() (code int, title, detail string) {
	r.t.Helper()
	var body struct {
		Errors []struct {
			Code   int    `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	r.decode(&body)
	if len(body.Errors) == 0 {
		r.t.Fatalf("no errors in body: %s", r.Body)
	}
	e := body.Errors[0]
	return e.Code, e.Title, e.Detail
}
