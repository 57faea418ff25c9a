package cfapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

// quotaScopes are the quotas every rule is tested with.
var quotaScopes = []string{store.QuotaScopeSpace, store.QuotaScopeOrganization}

// quotaCheckFixture is a process fixture whose quotas tests set through
// the quota endpoints.
type quotaCheckFixture struct {
	*processFixture
}

func newQuotaCheckFixture(t *testing.T) *quotaCheckFixture {
	t.Helper()
	return &quotaCheckFixture{processFixture: newProcessFixture(t)}
}

// limitApps applies a new quota with the apps limits apps to the
// fixture's space or organization, whichever scope names.
func (f *quotaCheckFixture) limitApps(scope string, apps map[string]any) {
	f.t.Helper()
	applyAppsQuota(f.appFixture, scope, apps)
}

// applyAppsQuota applies a new quota with the apps limits apps to the
// space or organization of f, whichever scope names.
func applyAppsQuota(f *appFixture, scope string, apps map[string]any) {
	f.t.Helper()
	name := "limits-" + uuid.NewString()
	if scope == store.QuotaScopeSpace {
		f.env.do(http.MethodPost, "/v3/space_quotas", f.admin, map[string]any{"name": name, "apps": apps,
			"relationships": map[string]any{
				"organization": map[string]any{"data": map[string]any{"guid": f.orgGUID}},
				"spaces":       map[string]any{"data": []any{map[string]any{"guid": f.spaceGUID}}},
			}}).expect(http.StatusCreated)
		return
	}
	f.env.do(http.MethodPost, "/v3/organization_quotas", f.admin, map[string]any{"name": name, "apps": apps,
		"relationships": map[string]any{"organizations": map[string]any{"data": []any{map[string]any{"guid": f.orgGUID}}}},
	}).expect(http.StatusCreated)
}

// scale scales the fixture app's web process as admin and fails the test
// unless it is accepted.
func (f *quotaCheckFixture) scale(body map[string]any) {
	f.t.Helper()
	f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.admin, body).expect(http.StatusAccepted)
}

// web returns the fixture app's web process.
func (f *quotaCheckFixture) web() processJSON {
	f.t.Helper()
	var p processJSON
	f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID, f.admin, nil).expect(http.StatusOK).decode(&p)
	return p
}

// state returns the fixture app's state.
func (f *quotaCheckFixture) state() string {
	f.t.Helper()
	var app appJSON
	f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID, f.admin, nil).expect(http.StatusOK).decode(&app)
	return app.State
}

// events counts the audit events of type eventType on the fixture app.
func (f *quotaCheckFixture) events(eventType string) int {
	return f.count(`SELECT count(*) FROM audit_events WHERE target_guid = $1 AND type = $2`, f.appGUID, eventType)
}

// assertQuotaRejected fails the test unless resp is Cloud Controller's
// 422 with detail.
func assertQuotaRejected(t *testing.T, resp *testResponse, detail string) {
	t.Helper()
	if resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422; body: %s", resp.Status, resp.Body)
	}
	code, title, got := resp.cfError()
	if code != 10008 || title != "CF-UnprocessableEntity" {
		t.Errorf("error = %d %s, want 10008 CF-UnprocessableEntity", code, title)
	}
	if got != detail {
		t.Errorf("detail = %q, want %q", got, detail)
	}
}

// scopeMessage returns the message of the space quota for scope space,
// and the organization's otherwise.
func scopeMessage(scope, space, org string) string {
	if scope == store.QuotaScopeSpace {
		return space
	}
	return org
}

func TestQuotaCheckScale(t *testing.T) {
	cases := []struct {
		name   string
		limits map[string]any
		// setup is the web process's scale before the quota applies. The
		// app then starts with it.
		setup map[string]any
		scale map[string]any
		path  string
		space string
		org   string
	}{
		{"total memory", map[string]any{"total_memory_in_mb": 2048}, nil, map[string]any{"instances": 3},
			"/v3/processes/%s/actions/scale", "memory space_quota_exceeded", "memory quota_exceeded"},
		{"instance memory", map[string]any{"per_process_memory_in_mb": 1024}, nil, map[string]any{"memory_in_mb": 2048},
			"/v3/apps/%s/processes/web/actions/scale",
			"memory space_instance_memory_limit_exceeded", "memory instance_memory_limit_exceeded"},
		{"total instances", map[string]any{"total_instances": 2}, map[string]any{"memory_in_mb": 64}, map[string]any{"instances": 3},
			"/v3/processes/%s/actions/scale",
			"app_instance_limit space_app_instance_limit_exceeded", "app_instance_limit app_instance_limit_exceeded"},
		{"log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000}, map[string]any{"log_rate_limit_in_bytes_per_second": 400},
			map[string]any{"instances": 3}, "/v3/apps/%s/processes/web/actions/scale",
			"log_rate_limit exceeds space log rate quota", "log_rate_limit exceeds organization log rate quota"},
		{"unlimited log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000}, nil, map[string]any{"instances": 2},
			"/v3/processes/%s/actions/scale",
			"log_rate_limit cannot be unlimited in space 'dev'.", "log_rate_limit cannot be unlimited in organization 'acme'."},
	}
	for _, scope := range quotaScopes {
		for _, tt := range cases {
			t.Run(scope+" "+tt.name, func(t *testing.T) {
				f := newQuotaCheckFixture(t)
				if tt.setup != nil {
					f.scale(tt.setup)
				}
				f.startApp()
				f.limitApps(scope, tt.limits)
				before := f.web()

				resp := f.env.do(http.MethodPost, fmt.Sprintf(tt.path, f.appGUID), f.developer, tt.scale)

				assertQuotaRejected(t, resp, scopeMessage(scope, tt.space, tt.org))
				if diff := cmp.Diff(before, f.web()); diff != "" {
					t.Errorf("process after a rejected scale (-before +after):\n%s", diff)
				}
				if n := f.events("audit.app.process.scale"); tt.setup == nil && n != 0 {
					t.Errorf("scale events = %d, want 0", n)
				}
			})
		}
	}
}

func TestQuotaCheckScaleWithinLimits(t *testing.T) {
	f := newQuotaCheckFixture(t)
	f.startApp()
	f.limitApps(store.QuotaScopeSpace, map[string]any{"total_memory_in_mb": 3072, "per_process_memory_in_mb": 1024,
		"total_instances": 3, "log_rate_limit_in_bytes_per_second": 3000})
	f.limitApps(store.QuotaScopeOrganization, map[string]any{"total_memory_in_mb": 3072, "total_instances": 3})

	f.scale(map[string]any{"instances": 3, "log_rate_limit_in_bytes_per_second": 1000})

	if p := f.web(); p.Instances != 3 || p.LogRateLimit != 1000 {
		t.Errorf("web = %d instances at %d B/s, want 3 at 1000", p.Instances, p.LogRateLimit)
	}
}

func TestQuotaCheckScaleDownOverLoweredQuota(t *testing.T) {
	f := newQuotaCheckFixture(t)
	f.scale(map[string]any{"instances": 4})
	f.startApp()
	f.limitApps(store.QuotaScopeOrganization, map[string]any{"total_memory_in_mb": 1024, "total_instances": 1})

	f.scale(map[string]any{"instances": 2})
	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/actions/restart", f.developer, nil).expect(http.StatusOK)

	assertQuotaRejected(t, f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.developer,
		map[string]any{"instances": 3}), "memory quota_exceeded, app_instance_limit app_instance_limit_exceeded")
	if n := f.web().Instances; n != 2 {
		t.Errorf("instances = %d, want 2", n)
	}
}

func TestQuotaCheckStart(t *testing.T) {
	cases := []struct {
		name   string
		limits map[string]any
		setup  map[string]any
		space  string
		org    string
	}{
		{"total memory", map[string]any{"total_memory_in_mb": 512}, nil, "memory space_quota_exceeded", "memory quota_exceeded"},
		{"instance memory", map[string]any{"per_process_memory_in_mb": 512}, nil,
			"memory space_instance_memory_limit_exceeded", "memory instance_memory_limit_exceeded"},
		{"total instances", map[string]any{"total_instances": 1}, map[string]any{"instances": 2},
			"app_instance_limit space_app_instance_limit_exceeded", "app_instance_limit app_instance_limit_exceeded"},
		{"log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000}, map[string]any{"log_rate_limit_in_bytes_per_second": 1001},
			"log_rate_limit exceeds space log rate quota", "log_rate_limit exceeds organization log rate quota"},
		{"unlimited log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000}, nil,
			"log_rate_limit cannot be unlimited in space 'dev'.", "log_rate_limit cannot be unlimited in organization 'acme'."},
	}
	for _, scope := range quotaScopes {
		for _, action := range []string{"start", "restart"} {
			for _, tt := range cases {
				t.Run(scope+" "+action+" "+tt.name, func(t *testing.T) {
					f := newQuotaCheckFixture(t)
					if tt.setup != nil {
						f.scale(tt.setup)
					}
					f.limitApps(scope, tt.limits)
					f.setDroplet(f.appGUID, "droplet-"+f.appGUID)

					resp := f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/actions/"+action, f.supporter, nil)

					assertQuotaRejected(t, resp, scopeMessage(scope, tt.space, tt.org))
					if got := f.state(); got != "STOPPED" {
						t.Errorf("state = %s, want STOPPED", got)
					}
					if n := f.events("audit.app." + action); n != 0 {
						t.Errorf("%s events = %d, want 0", action, n)
					}
				})
			}
		}
	}
}

func TestQuotaCheckStartCountsOnlyStartedApps(t *testing.T) {
	f := newQuotaCheckFixture(t)
	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	f.setDroplet(other, "droplet-"+other)
	f.env.do(http.MethodPost, "/v3/processes/"+other+"/actions/scale", f.admin, map[string]any{"instances": 8}).expect(http.StatusAccepted)
	f.limitApps(store.QuotaScopeSpace, map[string]any{"total_memory_in_mb": 1024})

	f.startApp()
	assertQuotaRejected(t, f.env.do(http.MethodPost, "/v3/apps/"+other+"/actions/start", f.developer, nil), "memory space_quota_exceeded")

	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/actions/stop", f.developer, nil).expect(http.StatusOK)
	f.env.do(http.MethodPost, "/v3/processes/"+other+"/actions/scale", f.developer, map[string]any{"instances": 1}).expect(http.StatusAccepted)
	f.env.do(http.MethodPost, "/v3/apps/"+other+"/actions/start", f.developer, nil).expect(http.StatusOK)
}

func TestQuotaCheckManifest(t *testing.T) {
	cases := []struct {
		name     string
		limits   map[string]any
		manifest string
		space    string
		org      string
	}{
		{"total memory", map[string]any{"total_memory_in_mb": 2048},
			"applications:\n- name: web-app\n  instances: 3\n  env:\n    ADDED: \"yes\"\n",
			"memory space_quota_exceeded", "memory quota_exceeded"},
		{"instance memory", map[string]any{"per_process_memory_in_mb": 1024},
			"applications:\n- name: web-app\n  memory: 2G\n  env:\n    ADDED: \"yes\"\n",
			"memory space_instance_memory_limit_exceeded", "memory instance_memory_limit_exceeded"},
		{"new process over total instances", map[string]any{"total_instances": 2},
			"applications:\n- name: web-app\n  env:\n    ADDED: \"yes\"\n  processes:\n  - type: worker\n    instances: 2\n    memory: 64M\n",
			"app_instance_limit space_app_instance_limit_exceeded", "app_instance_limit app_instance_limit_exceeded"},
		{"log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000},
			"applications:\n- name: web-app\n  log-rate-limit-per-second: 2K\n  env:\n    ADDED: \"yes\"\n",
			"log_rate_limit exceeds space log rate quota", "log_rate_limit exceeds organization log rate quota"},
	}
	for _, scope := range quotaScopes {
		for _, tt := range cases {
			t.Run(scope+" "+tt.name, func(t *testing.T) {
				f := newQuotaCheckFixture(t)
				f.scale(map[string]any{"log_rate_limit_in_bytes_per_second": 500})
				f.startApp()
				f.limitApps(scope, tt.limits)
				before := f.processesOf(f.appGUID)

				job := f.applyManifest(f.developer, tt.manifest)

				if job.State != store.JobFailed || len(job.Errors) != 1 {
					t.Fatalf("job = %s %+v, want FAILED with one error", job.State, job.Errors)
				}
				want := store.JobError{Code: 10008, Title: "CF-UnprocessableEntity",
					Detail: "For application 'web-app': " + scopeMessage(scope, tt.space, tt.org)}
				if diff := cmp.Diff(want, job.Errors[0]); diff != "" {
					t.Errorf("job error (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(before, f.processesOf(f.appGUID)); diff != "" {
					t.Errorf("processes after a rejected manifest (-before +after):\n%s", diff)
				}
				if env := f.envOf(f.appGUID); env["ADDED"] != "" {
					t.Errorf("environment = %v, want the manifest's variable rolled back", env)
				}
			})
		}
	}
}

func TestQuotaCheckManifestWithinLimits(t *testing.T) {
	f := newQuotaCheckFixture(t)
	f.startApp()
	f.limitApps(store.QuotaScopeSpace, map[string]any{"total_memory_in_mb": 2048, "total_instances": 2})

	f.mustApply("applications:\n- name: web-app\n  instances: 2\n")

	if n := f.web().Instances; n != 2 {
		t.Errorf("instances = %d, want 2", n)
	}
}

func TestQuotaCheckBuildCreate(t *testing.T) {
	cases := []struct {
		name   string
		limits map[string]any
		body   map[string]any
		space  string
		org    string
	}{
		{"memory", map[string]any{"total_memory_in_mb": 1536}, map[string]any{},
			"space's memory limit exceeded: staging requires 1024M memory",
			"organization's memory limit exceeded: staging requires 1024M memory"},
		{"log rate", map[string]any{"log_rate_limit_in_bytes_per_second": 1000},
			map[string]any{"staging_log_rate_limit_bytes_per_second": 700},
			"space's log rate limit exceeded: staging requires 700 bytes per second",
			"organization's log rate limit exceeded: staging requires 700 bytes per second"},
	}
	for _, scope := range quotaScopes {
		for _, tt := range cases {
			t.Run(scope+" "+tt.name, func(t *testing.T) {
				f := newStagingFixture(t)
				running := f.app(appBody("running", f.spaceGUID))["guid"].(string)
				f.env.do(http.MethodPost, "/v3/processes/"+running+"/actions/scale", f.admin,
					map[string]any{"log_rate_limit_in_bytes_per_second": 400}).expect(http.StatusAccepted)
				f.setDroplet(running, "droplet-"+running)
				f.env.do(http.MethodPost, "/v3/apps/"+running+"/actions/start", f.admin, nil).expect(http.StatusOK)
				applyAppsQuota(f.appFixture, scope, tt.limits)
				body := buildBody(f.readyPackage(f.appGUID))
				for k, v := range tt.body {
					body[k] = v
				}

				resp := f.env.do(http.MethodPost, "/v3/builds", f.developer, body)

				assertQuotaRejected(t, resp, scopeMessage(scope, tt.space, tt.org))
				if n := f.buildCount(); n != 0 {
					t.Errorf("builds = %d, want 0", n)
				}
			})
		}
	}
}

func TestQuotaCheckBuildCreateAtMinimumStagingMemory(t *testing.T) {
	f := newStagingFixture(t)
	applyAppsQuota(f.appFixture, store.QuotaScopeOrganization, map[string]any{"total_memory_in_mb": 256})
	body := buildBody(f.readyPackage(f.appGUID))
	body["staging_memory_in_mb"] = 128

	b := f.createBuild(f.developer, body)

	if b.StagingMemoryInMB != 512 {
		t.Errorf("staging memory = %d, want the configured minimum 512", b.StagingMemoryInMB)
	}
}

func TestQuotaCheckUsageSummary(t *testing.T) {
	f := newQuotaCheckFixture(t)
	f.scale(map[string]any{"instances": 2, "memory_in_mb": 512})
	f.startApp()
	f.app(appBody("stopped", f.spaceGUID))
	otherSpace := f.space(f.orgGUID, "other")
	other := f.app(appBody("elsewhere", otherSpace))["guid"].(string)
	f.setDroplet(other, "droplet-"+other)
	f.env.do(http.MethodPost, "/v3/processes/"+other+"/actions/scale", f.admin, map[string]any{"memory_in_mb": 128}).expect(http.StatusAccepted)
	f.env.do(http.MethodPost, "/v3/apps/"+other+"/actions/start", f.admin, nil).expect(http.StatusOK)

	for _, tt := range []struct {
		path              string
		instances, memory int
	}{
		{"/v3/spaces/" + f.spaceGUID + "/usage_summary", 2, 1024},
		{"/v3/organizations/" + f.orgGUID + "/usage_summary", 3, 1152},
	} {
		var body struct {
			UsageSummary map[string]int `json:"usage_summary"`
		}
		f.env.do(http.MethodGet, tt.path, f.developer, nil).expect(http.StatusOK).decode(&body)
		got := body.UsageSummary
		if got["started_instances"] != tt.instances || got["memory_in_mb"] != tt.memory {
			t.Errorf("%s = %v, want %d started instances using %d MB", tt.path, got, tt.instances, tt.memory)
		}
	}
}

// TestQuotaCheckConcurrentScales sends two scales at once that each fit
// the organization quota alone but not together. Exactly one must pass.
func TestQuotaCheckConcurrentScales(t *testing.T) {
	f := newQuotaCheckFixture(t)
	f.startApp()
	other := f.app(appBody("other", f.space(f.orgGUID, "other")))["guid"].(string)
	f.setDroplet(other, "droplet-"+other)
	f.env.do(http.MethodPost, "/v3/apps/"+other+"/actions/start", f.admin, nil).expect(http.StatusOK)
	f.limitApps(store.QuotaScopeOrganization, map[string]any{"total_memory_in_mb": 3072})

	statuses := make([]int, 2)
	details := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, guid := range []string{f.appGUID, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i], details[i], errs[i] = postScale(f.env.server.URL+"/v3/processes/"+guid+"/actions/scale", f.admin)
		}()
	}
	close(start)
	wg.Wait()

	passed, rejected := 0, 0
	for i := range statuses {
		if errs[i] != nil {
			t.Fatalf("scale %d: %v", i, errs[i])
		}
		switch {
		case statuses[i] == http.StatusAccepted:
			passed++
		case statuses[i] == http.StatusUnprocessableEntity && details[i] == "memory quota_exceeded":
			rejected++
		default:
			t.Errorf("scale %d = %d %q, want 202 or 422 memory quota_exceeded", i, statuses[i], details[i])
		}
	}
	if passed != 1 || rejected != 1 {
		t.Errorf("passed %d and rejected %d scales, want one each", passed, rejected)
	}
	var usage struct {
		UsageSummary map[string]int `json:"usage_summary"`
	}
	f.env.do(http.MethodGet, "/v3/organizations/"+f.orgGUID+"/usage_summary", f.admin, nil).expect(http.StatusOK).decode(&usage)
	if got := usage.UsageSummary["memory_in_mb"]; got != 3072 {
		t.Errorf("organization memory = %d MB, want 3072", got)
	}
}

// postScale scales a process to 2 instances and returns the status and
// the v3 error detail, if any. It reports failures as errors because it
// runs outside the test goroutine.
func postScale(url, token string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(`{"instances":2}`)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var body struct {
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if resp.StatusCode != http.StatusAccepted {
		if err := json.Unmarshal(data, &body); err != nil || len(body.Errors) == 0 {
			return resp.StatusCode, "", fmt.Errorf("status %d with body %s", resp.StatusCode, data)
		}
		return resp.StatusCode, body.Errors[0].Detail, nil
	}
	return resp.StatusCode, "", nil
}
