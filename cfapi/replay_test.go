package cfapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// The replay sends the requests that real cf CLIs sent to ferry, recorded in
// testdata/replay, and checks every response field the CLI reads. A script
// is a list of commands, and each command lists the requests that one CLI
// invocation sent, in order. Values such as GUIDs and tokens are
// ${variables}, captured from earlier responses.
//
// Expected values in "expect" are JSON literals, or one of these matchers:
//
//	~guid ~string ~number ~semver ~jwt ~present ~absent
//	~url            an absolute URL on the test server
//	~url:/v3/jobs/  an absolute URL on the test server under that path
//	~len:N          an array or object with N elements
//	~oneof:A|B      one of the strings
//	~contains:X     an array with the element X, or a string containing X
//	~after:N        a Unix time more than N seconds from now
//
// A path is dot-separated: a number indexes an array, [key=value] picks the
// first array element whose key equals value, and ~header or ~payload decode
// the JWT at that point, as the cf CLI decodes its stored token.

// replayCLI describes the headers by which one cf CLI's requests differ
// from another's.
type replayCLI struct {
	name      string
	userAgent string
	// traceHeaders is set when the CLI sends X-B3-Traceid (one per
	// command) and X-B3-Spanid (one per request).
	traceHeaders bool
}

// The user agents are those of the CLIs the script was recorded with.
var replayCLIs = []replayCLI{
	{name: "cf8.9.1", userAgent: "cf/8.9.1+0d7fd1232.2025-02-24 (go1.26.8; amd64 linux)"},
	{name: "cf9", userAgent: "cf/9.0.0+ccfd649d1.2026-08-07 (go1.26.8; amd64 linux)", traceHeaders: true},
}

type replayScript struct {
	Description string          `json:"description"`
	Commands    []replayCommand `json:"commands"`
}

type replayCommand struct {
	Command  string          `json:"command"`
	Note     string          `json:"note"`
	Requests []replayRequest `json:"requests"`
}

type replayRequest struct {
	// Client is "uaa" for requests of the CLI's UAA client, and empty for
	// Cloud Controller requests.
	Client string `json:"client"`
	Method string `json:"method"`
	// Path is the path with its query, or a variable holding an absolute
	// URL.
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	// JSON is sent byte for byte (compacted), keeping the CLI's key order.
	JSON json.RawMessage `json:"json"`
	Form string          `json:"form"`

	Status int `json:"status"`
	// BodyUnread marks a response whose body the CLI ignores, so it need
	// not be JSON.
	BodyUnread     bool              `json:"body_unread"`
	Expect         map[string]any    `json:"expect"`
	ExpectHeaders  map[string]string `json:"expect_headers"`
	Capture        map[string]string `json:"capture"`
	CaptureHeaders map[string]string `json:"capture_headers"`
	// PollUntil repeats the request, as the CLI polls a job, until these
	// expectations hold.
	PollUntil map[string]any `json:"poll_until"`
}

func TestReplayCFCLIFoundation(t *testing.T) {
	script := loadReplayScript(t, "testdata/replay/foundation.json")
	for _, cli := range replayCLIs {
		t.Run(cli.name, func(t *testing.T) {
			r := newReplayer(t, cli)
			for _, cmd := range script.Commands {
				r.run(cmd)
			}
			r.assertSecretsNotLogged()
		})
	}
}

func loadReplayScript(t *testing.T, path string) replayScript {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var script replayScript
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&script); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(script.Commands) == 0 {
		t.Fatalf("%s has no commands", path)
	}
	return script
}

type replayer struct {
	t       *testing.T
	env     *testEnv
	baseURL string
	cli     replayCLI
	vars    map[string]string
	// secrets are the passwords and every token issued, none of which may
	// appear in the server log.
	secrets []string
	traceID string
	// command and step name the request being checked in failures.
	command string
	step    string
}

// newReplayer starts a test API with its job runner, bootstraps the admin
// user as ferry's first start does, and sets the script's fixed variables.
func newReplayer(t *testing.T, cli replayCLI) *replayer {
	env := newTestEnv(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.runner.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	adminPassword := replayRandomHex(t, 16)
	hash, err := env.auth.HashPassword(adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	admin, created, err := env.store.EnsureAdminUser(context.Background(), store.UAAUser{
		ID: uuid.NewString(), Username: "admin", Origin: "uaa", PasswordHash: hash, Groups: auth.AdminGroups,
	})
	if err != nil || !created {
		t.Fatalf("bootstrap admin: created = %v, err = %v", created, err)
	}

	userPassword := replayRandomHex(t, 16)
	return &replayer{t: t, env: env, baseURL: env.server.URL, cli: cli,
		secrets: []string{adminPassword, userPassword, testClientSecret},
		vars: map[string]string{
			"api":            env.server.URL,
			"admin_guid":     admin.ID,
			"admin_password": adminPassword,
			"user_password":  userPassword,
			"client_id":      testClientID,
			"client_secret":  testClientSecret,
		}}
}

func replayRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (r *replayer) run(cmd replayCommand) {
	r.command = r.expand(cmd.Command)
	r.traceID = replayRandomHex(r.t, 16)
	for i, req := range cmd.Requests {
		r.step = fmt.Sprintf("request %d, %s %s", i+1, req.Method, r.expand(req.Path))
		if req.PollUntil == nil {
			r.check(req, r.send(req))
			continue
		}
		r.poll(req)
	}
}

// poll repeats req until its PollUntil expectations hold. The CLI waits 3
// seconds between polls, but the replay pauses only briefly. The deadline
// is generous because the job runner shares the machine with other tests.
func (r *replayer) poll(req replayRequest) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		body := r.check(req, r.send(req))
		if r.mismatches(body, req.PollUntil) == nil {
			return
		}
		if time.Now().After(deadline) {
			r.failf("still not %s after 60s; last body: %s", replayJSON(req.PollUntil), replayJSON(body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// send builds the request with the headers the CLI sends and returns the
// response.
func (r *replayer) send(req replayRequest) *testResponse {
	r.t.Helper()
	target := r.expand(req.Path)
	if !strings.HasPrefix(target, "http://") {
		target = r.env.server.URL + target
	}

	var body io.Reader
	switch {
	case req.JSON != nil && req.Form != "":
		r.failf("request has both json and form")
	case req.JSON != nil:
		var compact bytes.Buffer
		if err := json.Compact(&compact, req.JSON); err != nil {
			r.failf("invalid json body: %v", err)
		}
		body = strings.NewReader(r.expand(compact.String()))
	case req.Form != "":
		body = strings.NewReader(r.expand(req.Form))
	}

	httpReq, err := http.NewRequest(req.Method, target, body)
	if err != nil {
		r.failf("build request: %v", err)
	}
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("User-Agent", r.cli.userAgent)
	if r.cli.traceHeaders {
		httpReq.Header.Set("X-B3-Traceid", r.traceID)
		httpReq.Header.Set("X-B3-Spanid", replayRandomHex(r.t, 8))
	}
	switch req.Client {
	case "uaa":
		httpReq.Header.Set("Connection", "close")
		httpReq.Close = true
	case "":
		// Cloud Controller requests carry this type even without a body.
		httpReq.Header.Set("Content-Type", "application/json")
	default:
		r.failf("unknown client %q", req.Client)
	}
	for name, value := range req.Headers {
		// An empty value is sent as an empty header, as the CLI sends an
		// empty Authorization to /login.
		httpReq.Header.Set(name, r.expand(value))
	}

	resp, err := http.DefaultClient.Do(httpReq)
	if err != nil {
		r.failf("send: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		r.failf("read response: %v", err)
	}
	return &testResponse{t: r.t, Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// check asserts the status, body and headers of resp, stores the captured
// variables and returns the decoded body (nil when the CLI does not read
// it).
func (r *replayer) check(req replayRequest, resp *testResponse) any {
	r.t.Helper()
	redacted := r.redact(resp.Body)
	if resp.Status != req.Status {
		r.failf("status = %d, want %d; body: %s", resp.Status, req.Status, redacted)
	}
	if resp.Header.Get("X-Vcap-Request-Id") == "" {
		r.errorf("response has no X-Vcap-Request-Id")
	}
	for name, want := range req.ExpectHeaders {
		if err := r.match(resp.Header.Get(name), want, resp.Header.Get(name) != ""); err != nil {
			r.errorf("header %s: %v", name, err)
		}
	}
	for name, header := range req.CaptureHeaders {
		value := resp.Header.Get(header)
		if value == "" {
			r.failf("no %s header to capture as %s", header, name)
		}
		r.vars[name] = value
	}

	var body any
	if !req.BodyUnread && resp.Status != http.StatusNoContent {
		// The CLI decodes every such body as JSON, so an empty one fails
		// with "EOF".
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			r.failf("body is not JSON (%v): %q", err, redacted)
		}
	}
	for _, msg := range r.mismatches(body, req.Expect) {
		r.errorf("%s; body: %s", msg, redacted)
	}
	for name, path := range req.Capture {
		value, found, err := replayLookup(body, path)
		s, isString := value.(string)
		if err != nil || !found || !isString || s == "" {
			r.failf("capture %s from %s: found %v, err %v; body: %s", name, path, found, err, redacted)
		}
		r.vars[name] = s
		if strings.HasSuffix(name, "_token") {
			r.secrets = append(r.secrets, s)
		}
	}
	if r.t.Failed() {
		r.t.FailNow()
	}
	return body
}

// mismatches returns one message per expectation that body does not meet,
// in path order.
func (r *replayer) mismatches(body any, expect map[string]any) []string {
	paths := make([]string, 0, len(expect))
	for path := range expect {
		paths = append(paths, path)
	}
	sort.Strings(paths)

	var msgs []string
	for _, path := range paths {
		expanded := r.expand(path)
		got, found, err := replayLookup(body, expanded)
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", expanded, err))
			continue
		}
		if err := r.match(got, expect[path], found); err != nil {
			msgs = append(msgs, fmt.Sprintf("%s: %v", expanded, err))
		}
	}
	return msgs
}

var (
	replayGUID   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	replaySemver = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	replayVar    = regexp.MustCompile(`\$\{([a-z_]+)\}`)
)

// match compares got with want, a JSON literal or a matcher. found reports
// whether the path of got exists.
func (r *replayer) match(got, want any, found bool) error {
	matcher, isString := want.(string)
	if !isString || !strings.HasPrefix(matcher, "~") {
		want = r.expandValue(want)
		if !found {
			return fmt.Errorf("missing, want %s", replayJSON(want))
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("= %s, want %s", replayJSON(got), replayJSON(want))
		}
		return nil
	}

	name, arg, _ := strings.Cut(matcher, ":")
	if name == "~absent" {
		if found {
			return fmt.Errorf("= %s, want it absent", replayJSON(got))
		}
		return nil
	}
	if !found {
		return fmt.Errorf("missing, want %s", matcher)
	}
	s, isStr := got.(string)
	ok := false
	switch name {
	case "~present":
		ok = true
	case "~string":
		ok = isStr && s != ""
	case "~number":
		_, ok = got.(float64)
	case "~guid":
		ok = isStr && replayGUID.MatchString(s)
	case "~semver":
		ok = isStr && replaySemver.MatchString(s)
	case "~url":
		if arg == "" {
			ok = isStr && (s == r.baseURL || strings.HasPrefix(s, r.baseURL+"/"))
		} else {
			prefix := r.baseURL + r.expand(arg)
			ok = isStr && strings.HasPrefix(s, prefix) && len(s) > len(prefix)
		}
	case "~jwt":
		ok = isStr && replayDecodeJWT(s, 0) != nil && replayDecodeJWT(s, 1) != nil
	case "~len":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return fmt.Errorf("invalid matcher %s: want an integer after the colon", matcher)
		}
		switch v := got.(type) {
		case []any:
			ok = len(v) == n
		case map[string]any:
			ok = len(v) == n
		}
	case "~oneof":
		ok = isStr && slices.Contains(strings.Split(arg, "|"), s)
	case "~contains":
		if list, isList := got.([]any); isList {
			ok = slices.Contains(list, any(arg))
		} else {
			ok = isStr && strings.Contains(s, arg)
		}
	case "~after":
		seconds, err := strconv.Atoi(arg)
		if err != nil {
			return fmt.Errorf("invalid matcher %s: want an integer after the colon", matcher)
		}
		unix, isNumber := got.(float64)
		ok = isNumber && time.Unix(int64(unix), 0).After(time.Now().Add(time.Duration(seconds)*time.Second))
	default:
		return fmt.Errorf("unknown matcher %s", matcher)
	}
	if !ok {
		return fmt.Errorf("= %s, want %s", replayJSON(got), matcher)
	}
	return nil
}

// replayLookup follows path through a decoded JSON value. found is false
// when the last key or index does not exist, and a missing intermediate step
// is an error.
func replayLookup(value any, path string) (any, bool, error) {
	segments := strings.Split(path, ".")
	for i, seg := range segments {
		last := i == len(segments)-1
		switch v := value.(type) {
		case map[string]any:
			if strings.HasPrefix(seg, "[") || strings.HasPrefix(seg, "~") {
				return nil, false, fmt.Errorf("%s applied to an object", seg)
			}
			next, ok := v[seg]
			if !ok {
				if last {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("no key %q", seg)
			}
			value = next
		case []any:
			if key, want, ok := strings.Cut(strings.Trim(seg, "[]"), "="); ok && strings.HasPrefix(seg, "[") {
				var picked any
				for _, elem := range v {
					if m, isMap := elem.(map[string]any); isMap && m[key] == want {
						picked = elem
						break
					}
				}
				if picked == nil {
					return nil, false, fmt.Errorf("no element with %s=%s", key, want)
				}
				value = picked
				continue
			}
			index, err := strconv.Atoi(seg)
			if err != nil {
				return nil, false, fmt.Errorf("%q applied to an array", seg)
			}
			if index < 0 || index >= len(v) {
				if last {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("index %d out of %d elements", index, len(v))
			}
			value = v[index]
		case string:
			part := map[string]int{"~header": 0, "~payload": 1}
			n, ok := part[seg]
			if !ok {
				return nil, false, fmt.Errorf("%q applied to a string", seg)
			}
			decoded := replayDecodeJWT(v, n)
			if decoded == nil {
				return nil, false, fmt.Errorf("not a JWT with a JSON %s", strings.TrimPrefix(seg, "~"))
			}
			value = decoded
		default:
			if value == nil && last {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("%q applied to %s", seg, replayJSON(value))
		}
	}
	return value, true, nil
}

// replayDecodeJWT returns part n (0 header, 1 payload) of a three-part JWT
// as a JSON object, or nil. Like the cf CLI, it does not check the
// signature, but the signature must be valid base64url.
func replayDecodeJWT(token string, n int) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[n])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// expand replaces every ${name} in s. An unknown name fails the test,
// because it means the script uses a value before capturing it.
func (r *replayer) expand(s string) string {
	return replayVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := r.vars[name]
		if !ok {
			r.failf("variable %s is not set yet", name)
		}
		return v
	})
}

func (r *replayer) expandValue(v any) any {
	switch t := v.(type) {
	case string:
		return r.expand(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = r.expandValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = r.expandValue(e)
		}
		return out
	}
	return v
}

// assertSecretsNotLogged fails if a password, the client secret or any
// token of the replay appears in the server's log.
func (r *replayer) assertSecretsNotLogged() {
	logs := r.env.logs.String()
	for i, secret := range r.secrets {
		if strings.Contains(logs, secret) {
			r.t.Errorf("server log contains secret %d of the replay (passwords, client secret, then tokens in issue order)", i+1)
		}
	}
}

// redact returns body for a failure message, with tokens and known secrets
// replaced by "****".
func (r *replayer) redact(body []byte) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil {
		for _, key := range []string{"access_token", "refresh_token", "id_token", "password"} {
			if _, ok := doc[key]; ok {
				doc[key] = "****"
			}
		}
		body, _ = json.Marshal(doc)
	}
	redacted := string(body)
	for _, secret := range r.secrets {
		redacted = strings.ReplaceAll(redacted, secret, "****")
	}
	return redacted
}

func (r *replayer) failf(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s: %s: %s", r.command, r.step, fmt.Sprintf(format, args...))
}

func (r *replayer) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("%s: %s: %s", r.command, r.step, fmt.Sprintf(format, args...))
}

func replayJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// TestReplayMatchers checks the matchers against passing and failing
// values, so that a replay cannot pass because a matcher accepts anything.
func TestReplayMatchers(t *testing.T) {
	base := "http://127.0.0.1:9022"
	r := &replayer{t: t, baseURL: base, vars: map[string]string{"org": "o-1"}}
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln"
	cases := []struct {
		got   any
		found bool
		want  any
		pass  bool
	}{
		{"o-1", true, "${org}", true},
		{"o-2", true, "${org}", false},
		{nil, false, nil, false},
		{nil, true, nil, true},
		{[]any{"text", "Email"}, true, []any{"text", "Email"}, true},
		{[]any{"text"}, true, []any{"text", "Email"}, false},
		{nil, false, "~absent", true},
		{"x", true, "~absent", false},
		{"", true, "~string", false},
		{float64(3), true, "~number", true},
		{"3", true, "~number", false},
		{"0c5a3f4e-0b7f-4a53-9a51-8f1d2b9e8e10", true, "~guid", true},
		{"not-a-guid", true, "~guid", false},
		{"3.200.0", true, "~semver", true},
		{"3.200", true, "~semver", false},
		{base + "/v3/jobs/j1", true, "~url:/v3/jobs/", true},
		{base + "/v3/jobs/", true, "~url:/v3/jobs/", false},
		{"/v3/jobs/j1", true, "~url:/v3/jobs/", false},
		{base, true, "~url", true},
		{base + "/logging", true, "~url", true},
		{base + "0/x", true, "~url", false},
		{jwt, true, "~jwt", true},
		{"a.b", true, "~jwt", false},
		{"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.x", true, "~jwt", false},
		{[]any{1.0, 2.0}, true, "~len:2", true},
		{map[string]any{"a": 1.0}, true, "~len:2", false},
		{"COMPLETE", true, "~oneof:PROCESSING|COMPLETE", true},
		{"FAILED", true, "~oneof:PROCESSING|COMPLETE", false},
		{[]any{"openid", "cloud_controller.admin"}, true, "~contains:cloud_controller.admin", true},
		{[]any{"openid"}, true, "~contains:cloud_controller.admin", false},
		{float64(time.Now().Add(time.Hour).Unix()), true, "~after:60", true},
		{float64(time.Now().Add(30 * time.Second).Unix()), true, "~after:60", false},
	}
	for _, tc := range cases {
		err := r.match(tc.got, tc.want, tc.found)
		if (err == nil) != tc.pass {
			t.Errorf("match(%s, %s, found=%v) error = %v, want pass = %v", replayJSON(tc.got), replayJSON(tc.want), tc.found, err, tc.pass)
		}
	}
}

func TestReplayLookup(t *testing.T) {
	var body any
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"user_name":"admin"}`))
	doc := `{"resources":[{"type":"a","guid":"1"},{"type":"b","guid":"2"}],"next":null,"token":"e30.` + payload + `.c2ln"}`
	if err := json.Unmarshal([]byte(doc), &body); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path    string
		want    any
		found   bool
		invalid bool
	}{
		{path: "resources.1.guid", want: "2", found: true},
		{path: "resources.[type=b].guid", want: "2", found: true},
		{path: "resources.[type=c].guid", invalid: true},
		{path: "resources.2", found: false},
		{path: "resources.5.guid", invalid: true},
		{path: "next", want: nil, found: true},
		{path: "missing", found: false},
		{path: "missing.deeper", invalid: true},
		{path: "token.~payload.user_name", want: "admin", found: true},
		{path: "token.~payload.user_id", found: false},
		{path: "resources.0.guid.~payload", invalid: true},
	}
	for _, tc := range cases {
		got, found, err := replayLookup(body, tc.path)
		if (err != nil) != tc.invalid {
			t.Errorf("%s: err = %v, want error = %v", tc.path, err, tc.invalid)
			continue
		}
		if found != tc.found || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %v (found %v), want %v (found %v)", tc.path, got, found, tc.want, tc.found)
		}
	}
}
