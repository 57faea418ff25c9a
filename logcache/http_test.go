package logcache

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// cliStartTime is the start_time the cf CLI sends for "from the beginning":
// the Go zero time in Unix nanoseconds.
const cliStartTime = "-6795364578871345152"

func (e *apiEnv) adminToken() string {
	return e.token("admin-guid", auth.ScopeAdmin, auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID)
}

func (e *apiEnv) putLines() {
	e.logs.Put(Envelope{Timestamp: 1000, SourceID: e.app, InstanceID: "", SourceType: SourceTypeStaging,
		Stream: StreamOut, Payload: []byte("Staging app")})
	e.logs.Put(Envelope{Timestamp: 2000, SourceID: e.app, InstanceID: "0", SourceType: ProcessSourceType("web"),
		Stream: StreamOut, Payload: []byte("listening on :8080")})
	e.logs.Put(Envelope{Timestamp: 3000, SourceID: e.app, InstanceID: "1", SourceType: ProcessSourceType("web"),
		Stream: StreamErr, Payload: []byte("warning: \"quoted\"")})
}

func TestInfoNeedsNoToken(t *testing.T) {
	env := newAPIEnv(t)

	status, body := env.get("/api/v1/info", "")
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200", status)
	}
	var info map[string]string
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if info["version"] != Version {
		t.Errorf("version = %q, want %q", info["version"], Version)
	}
	if _, ok := info["vm_uptime"]; !ok || len(info) != 2 {
		t.Errorf("info = %v, want exactly version and vm_uptime", info)
	}
}

func TestReadExactJSON(t *testing.T) {
	env := newAPIEnv(t)
	env.putLines()

	status, body := env.get("/api/v1/read/"+env.app+"?start_time="+cliStartTime, env.adminToken())
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", status, body)
	}
	want := `{"envelopes":{"batch":[` +
		`{"timestamp":"1000","source_id":"` + env.app + `","instance_id":"","tags":{"source_type":"STG"},"log":{"payload":"U3RhZ2luZyBhcHA=","type":"OUT"}},` +
		`{"timestamp":"2000","source_id":"` + env.app + `","instance_id":"0","tags":{"source_type":"APP/PROC/WEB"},"log":{"payload":"bGlzdGVuaW5nIG9uIDo4MDgw","type":"OUT"}},` +
		`{"timestamp":"3000","source_id":"` + env.app + `","instance_id":"1","tags":{"source_type":"APP/PROC/WEB"},"log":{"payload":"d2FybmluZzogInF1b3RlZCI=","type":"ERR"}}` +
		"]}}\n"
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestReadEmptyBatch(t *testing.T) {
	env := newAPIEnv(t)

	status, body := env.get("/api/v1/read/"+env.app, env.adminToken())
	if status != http.StatusOK || body != `{"envelopes":{"batch":[]}}`+"\n" {
		t.Errorf("status %d, body %q; want 200 and an empty batch", status, body)
	}
}

// readTimestamps reads with query and returns the timestamps of the batch.
func (e *apiEnv) readTimestamps(query string) []string {
	e.t.Helper()
	status, body := e.get("/api/v1/read/"+e.app+"?"+query, e.adminToken())
	if status != http.StatusOK {
		e.t.Fatalf("read ?%s: status %d, body %s", query, status, body)
	}
	var resp struct {
		Envelopes struct {
			Batch []struct {
				Timestamp string `json:"timestamp"`
			} `json:"batch"`
		} `json:"envelopes"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		e.t.Fatal(err)
	}
	out := []string{}
	for _, env := range resp.Envelopes.Batch {
		out = append(out, env.Timestamp)
	}
	return out
}

func TestReadParameters(t *testing.T) {
	env := newAPIEnv(t)
	env.putLines()

	tests := []struct {
		query string
		want  []string
	}{
		{"start_time=" + cliStartTime, []string{"1000", "2000", "3000"}},
		{"", []string{"1000", "2000", "3000"}},
		{"start_time=2000", []string{"2000", "3000"}},
		{"start_time=2001", []string{"3000"}},
		{"start_time=0&end_time=3000", []string{"1000", "2000"}},
		{"start_time=2000&end_time=2000", []string{}},
		{"limit=2", []string{"1000", "2000"}},
		{"descending=true&limit=1&start_time=" + cliStartTime, []string{"3000"}},
		{"descending=true&envelope_types=LOG&limit=1000&start_time=" + cliStartTime, []string{"3000", "2000", "1000"}},
		{"envelope_types=LOG", []string{"1000", "2000", "3000"}},
		{"envelope_types=ANY", []string{"1000", "2000", "3000"}},
		{"envelope_types=GAUGE&envelope_types=LOG", []string{"1000", "2000", "3000"}},
		{"envelope_types=GAUGE", []string{}},
		{"envelope_types=COUNTER&envelope_types=TIMER", []string{}},
		{"name_filter=cpu", []string{}},
		{"unknown_parameter=1", []string{"1000", "2000", "3000"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, env.readTimestamps(tt.query)); diff != "" {
				t.Errorf("timestamps (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadDefaultEndIsNow(t *testing.T) {
	env := newAPIEnv(t)
	future := time.Now().Add(time.Hour).UnixNano()
	env.logs.Put(Envelope{Timestamp: 1000, SourceID: env.app, Payload: []byte("past")})
	env.logs.Put(Envelope{Timestamp: future, SourceID: env.app, Payload: []byte("future")})

	if diff := cmp.Diff([]string{"1000"}, env.readTimestamps("")); diff != "" {
		t.Errorf("timestamps without end_time (-want +got):\n%s", diff)
	}
}

func TestReadInvalidParameters(t *testing.T) {
	env := newAPIEnv(t)

	tests := []struct {
		query, message string
	}{
		{"start_time=abc", `start_time "abc" is invalid`},
		{"end_time=1.5", `end_time "1.5" is invalid`},
		{"limit=x", `limit "x" is invalid`},
		{"limit=1001", "limit 1001 is out of range"},
		{"limit=-1", "limit -1 is out of range"},
		{"start_time=20&end_time=10", "start_time 20 is after end_time 10"},
		{"descending=maybe", `descending "maybe" is invalid`},
		{"envelope_types=LOGS", `envelope_types "LOGS" is invalid`},
		{"name_filter=" + url.QueryEscape("(unclosed"), `name_filter "(unclosed" is not a valid regular expression`},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := env.get("/api/v1/read/"+env.app+"?"+tt.query, env.adminToken())
			if status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", status)
			}
			var got struct {
				Code    int      `json:"code"`
				Message string   `json:"message"`
				Details []string `json:"details"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if got.Code != 3 {
				t.Errorf("code = %d, want 3 (InvalidArgument)", got.Code)
			}
			if !strings.HasPrefix(got.Message, tt.message) {
				t.Errorf("message = %q, want it to start with %q", got.Message, tt.message)
			}
			if got.Details == nil {
				t.Errorf("details missing from %s", body)
			}
		})
	}
}

func TestReadAuthorization(t *testing.T) {
	env := newAPIEnv(t)
	env.putLines()
	read, write, openid := auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"admin", env.token("admin-guid", auth.ScopeAdmin), http.StatusOK},
		{"read-only admin", env.token("ro-admin-guid", auth.ScopeAdminReadOnly), http.StatusOK},
		{"global auditor", env.token("auditor-guid", auth.ScopeGlobalAuditor), http.StatusOK},
		{"space developer", env.token(env.userWithRole("space_developer"), read, write, openid), http.StatusOK},
		{"space auditor", env.token(env.userWithRole("space_auditor"), read, openid), http.StatusOK},
		{"space manager", env.token(env.userWithRole("space_manager"), read, write, openid), http.StatusOK},
		{"space supporter", env.token(env.userWithRole("space_supporter"), read, write, openid), http.StatusOK},
		{"org manager", env.token(env.userWithRole("organization_manager"), read, write, openid), http.StatusOK},
		{"org user only", env.token(env.userWithRole("organization_user"), read, write, openid), http.StatusNotFound},
		{"org auditor", env.token(env.userWithRole("organization_auditor"), read, openid), http.StatusNotFound},
		{"user without roles", env.token(env.userWithRole(""), read, write, openid), http.StatusNotFound},
		{"developer without cloud_controller.read", env.token(env.userWithRole("space_developer"), openid), http.StatusNotFound},
		{"no token", "", http.StatusNotFound},
		{"malformed token", "not-a-jwt", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := env.get("/api/v1/read/"+env.app, tt.token)
			if status != tt.status {
				t.Errorf("status = %d, want %d; body %s", status, tt.status, body)
			}
			if status == http.StatusNotFound && body != "" {
				t.Errorf("404 body = %q, want empty as log-cache sends", body)
			}
		})
	}
}

func TestReadUnknownSource(t *testing.T) {
	env := newAPIEnv(t)
	developer := env.token(env.userWithRole("space_developer"), auth.ScopeRead)

	if status, _ := env.get("/api/v1/read/no-such-app", developer); status != http.StatusNotFound {
		t.Errorf("developer: status = %d, want 404", status)
	}
	// Admins may read any source, as in log-cache, so they get an empty batch.
	if status, body := env.get("/api/v1/read/no-such-app", env.adminToken()); status != http.StatusOK ||
		body != `{"envelopes":{"batch":[]}}`+"\n" {
		t.Errorf("admin: status %d, body %q; want 200 and an empty batch", status, body)
	}
}

func TestReadAuthorizationIsCached(t *testing.T) {
	env := newAPIEnv(t)
	env.putLines()
	now := time.Now()
	env.access.now = func() time.Time { return now }
	user := env.userWithRole("space_developer")
	token := env.token(user, auth.ScopeRead)

	if status, _ := env.get("/api/v1/read/"+env.app, token); status != http.StatusOK {
		t.Fatalf("before removing the role: status = %d, want 200", status)
	}
	if _, err := env.store.DB().ExecContext(context.Background(), `DELETE FROM roles WHERE user_guid = $1`, user); err != nil {
		t.Fatal(err)
	}

	now = now.Add(DefaultAccessTTL - time.Second)
	if status, _ := env.get("/api/v1/read/"+env.app, token); status != http.StatusOK {
		t.Errorf("within the TTL: status = %d, want the cached 200", status)
	}
	now = now.Add(2 * time.Second)
	if status, _ := env.get("/api/v1/read/"+env.app, token); status != http.StatusNotFound {
		t.Errorf("after the TTL: status = %d, want 404", status)
	}
}

func TestAccessDoesNotCacheTokensPastExpiry(t *testing.T) {
	env := newAPIEnv(t)
	token := env.adminToken()
	if _, err := env.access.Actor(context.Background(), "bearer "+token); err != nil {
		t.Fatal(err)
	}

	// The cached entry must expire with the token, even within the TTL.
	env.access.now = func() time.Time { return time.Now().Add(auth.DefaultAccessTokenTTL + time.Second) }
	key := tokenKey("bearer " + token)
	env.access.mu.RLock()
	cached := env.access.actors[key]
	env.access.mu.RUnlock()
	if !cached.expires.Before(env.access.now()) {
		t.Errorf("cached token expires at %v, after the token's own expiry", cached.expires)
	}
}

func TestMetaListsReadableSources(t *testing.T) {
	env := newAPIEnv(t)
	env.putLines()
	env.logs.Put(Envelope{Timestamp: 5, SourceID: "other-app", Payload: []byte("x")})

	type metaJSON struct {
		Meta map[string]map[string]string `json:"meta"`
	}
	decode := func(body string) metaJSON {
		var m metaJSON
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		return m
	}

	status, body := env.get("/api/v1/meta", env.adminToken())
	if status != http.StatusOK {
		t.Fatalf("admin: status = %d", status)
	}
	want := metaJSON{Meta: map[string]map[string]string{
		env.app:     {"count": "3", "expired": "0", "oldest_timestamp": "1000", "newest_timestamp": "3000"},
		"other-app": {"count": "1", "expired": "0", "oldest_timestamp": "5", "newest_timestamp": "5"},
	}}
	if diff := cmp.Diff(want, decode(body)); diff != "" {
		t.Errorf("admin meta (-want +got):\n%s", diff)
	}

	developer := env.token(env.userWithRole("space_developer"), auth.ScopeRead)
	status, body = env.get("/api/v1/meta", developer)
	if status != http.StatusOK {
		t.Fatalf("developer: status = %d", status)
	}
	if got := decode(body).Meta; len(got) != 1 || got[env.app] == nil {
		t.Errorf("developer meta = %v, want only %s", got, env.app)
	}

	if status, _ := env.get("/api/v1/meta", ""); status != http.StatusNotFound {
		t.Errorf("no token: status = %d, want 404", status)
	}
}

func TestAppFinderErrorIsInternal(t *testing.T) {
	env := newAPIEnv(t)
	env.access.apps = failingApps{}
	developer := env.token(env.userWithRole("space_developer"), auth.ScopeRead)

	status, body := env.get("/api/v1/read/"+env.app, developer)
	if status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", status)
	}
	if !strings.Contains(body, `"code":13`) || strings.Contains(body, "database is down") {
		t.Errorf("body = %s, want code 13 without the internal error text", body)
	}
}

type failingApps struct{}

func (failingApps) App(context.Context, store.Visibility, string) (store.App, error) {
	return store.App{}, errDatabaseDown
}

var errDatabaseDown = &testError{"database is down"}

type testError struct{ msg string }

func (e *testError) Error() string { return e.msg }
