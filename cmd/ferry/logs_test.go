package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestLogStoreDefaultsMatchConfig(t *testing.T) {
	got := newLogStore(config.Default()).Limits()
	want := logcache.Limits{
		MaxEntriesPerSource: logcache.DefaultMaxEntriesPerSource,
		MaxBytesPerSource:   logcache.DefaultMaxBytesPerSource,
		MaxSources:          logcache.DefaultMaxSources,
	}
	if got != want {
		t.Errorf("limits from the default configuration = %+v, want logcache's defaults %+v", got, want)
	}
}

// TestServeMountsLogCache checks that `ferry serve` serves log-cache paths
// from the log store, with tokens of the API's own auth service, and every
// other path from the API.
func TestServeMountsLogCache(t *testing.T) {
	st := pgtest.NewStore(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	tokens, err := newAuthService(context.Background(), cfg, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogStore(cfg)
	logs.Put(logcache.Envelope{Timestamp: 1, SourceID: "some-app", SourceType: logcache.SourceTypeStaging, Payload: []byte("hi")})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })

	handler, err := addLogCache(context.Background(), cfg, api, logs, tokens, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(handler)
	defer server.Close()
	token, _, err := tokens.IssueAccessToken(auth.Actor{UserGUID: "admin-guid", UserName: "admin", Origin: "uaa",
		ClientID: "cf", Scopes: []string{auth.ScopeAdmin}}, "password")
	if err != nil {
		t.Fatal(err)
	}

	for path, want := range map[string]int{
		"/api/v1/info":           http.StatusOK,
		"/api/v1/read/some-app":  http.StatusOK,
		"/v3/apps":               http.StatusTeapot,
		"/":                      http.StatusTeapot,
		"/api/v2/something-else": http.StatusTeapot,
	} {
		req, _ := http.NewRequest(http.MethodGet, server.URL+path, nil)
		req.Header.Set("Authorization", "bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/api/v1/read/some-app" && !strings.Contains(string(body), `"source_type":"STG"`) {
			t.Errorf("GET %s: body %s, want the stored line", path, body)
		}
	}
}

func TestAPIOnlyLeavesHandlerAlone(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	handler, err := addLogCache(context.Background(), config.Default(), api, nil, nil, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/info", nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("GET /api/v1/info without a log store: status %d, want the API's %d", rec.Code, http.StatusTeapot)
	}
}
