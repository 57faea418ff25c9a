package cfapi

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// processFixture is an app fixture with one app, whose guid is also the
// guid of its web process.
type processFixture struct {
	*appFixture
	appGUID string
}

func newProcessFixture(t *testing.T) *processFixture {
	t.Helper()
	f := &processFixture{appFixture: newAppFixture(t)}
	f.appGUID = f.app(appBody("web-app", f.spaceGUID))["guid"].(string)
	return f
}

// startApp gives the app a current droplet and starts it.
func (f *processFixture) startApp() {
	f.t.Helper()
	f.setDroplet(f.appGUID, "droplet-"+f.appGUID)
	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/actions/start", f.admin, nil).expect(http.StatusOK)
}

func TestProcessGetShape(t *testing.T) {
	f := newProcessFixture(t)
	base := f.env.server.URL
	self := base + "/v3/processes/" + f.appGUID

	got := f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID, f.developer, nil).expect(http.StatusOK).object()
	for _, key := range []string{"created_at", "updated_at", "version"} {
		if s, _ := got[key].(string); s == "" {
			t.Errorf("%s = %v, want a string", key, got[key])
		}
		delete(got, key)
	}
	want := map[string]any{
		"guid":                               f.appGUID,
		"type":                               "web",
		"command":                            nil,
		"instances":                          float64(1),
		"memory_in_mb":                       float64(1024),
		"disk_in_mb":                         float64(1024),
		"log_rate_limit_in_bytes_per_second": float64(-1),
		"cpu_in_millicores":                  nil,
		"health_check": map[string]any{"type": "port", "data": map[string]any{
			"timeout": nil, "invocation_timeout": nil, "interval": nil}},
		"readiness_health_check": map[string]any{"type": "process", "data": map[string]any{
			"invocation_timeout": nil, "interval": nil}},
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": f.appGUID}}},
		"metadata":      map[string]any{"labels": map[string]any{}, "annotations": map[string]any{}},
		"links": map[string]any{
			"self":  map[string]any{"href": self},
			"scale": map[string]any{"href": self + "/actions/scale", "method": "POST"},
			"app":   map[string]any{"href": base + "/v3/apps/" + f.appGUID},
			"space": map[string]any{"href": base + "/v3/spaces/" + f.spaceGUID},
			"stats": map[string]any{"href": self + "/stats"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("process (-want +got):\n%s", diff)
	}

	byType := f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/processes/web", f.developer, nil).expect(http.StatusOK).object()
	if byType["guid"] != f.appGUID {
		t.Errorf("GET /v3/apps/:guid/processes/web guid = %v", byType["guid"])
	}
}

func TestProcessCommandVisibility(t *testing.T) {
	f := newProcessFixture(t)
	f.env.do(http.MethodPatch, "/v3/processes/"+f.appGUID, f.developer, map[string]any{"command": "./run --port $PORT"}).expect(http.StatusOK)

	tests := []struct {
		name, path, token, want string
	}{
		{"developer reads it", "/v3/processes/" + f.appGUID, f.developer, "./run --port $PORT"},
		{"read-only admin reads it", "/v3/processes/" + f.appGUID, f.readOnlyAdmin, "./run --port $PORT"},
		{"auditor gets it hidden", "/v3/processes/" + f.appGUID, f.auditor, "[PRIVATE DATA HIDDEN]"},
		{"global auditor gets it hidden", "/v3/apps/" + f.appGUID + "/processes/web", f.globalAuditor, "[PRIVATE DATA HIDDEN]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body processJSON
			f.env.do(http.MethodGet, tt.path, tt.token, nil).expect(http.StatusOK).decode(&body)
			if body.Command == nil || *body.Command != tt.want {
				t.Errorf("command = %v, want %q", body.Command, tt.want)
			}
		})
	}

	var list struct{ Resources []processJSON }
	f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/processes", f.developer, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || *list.Resources[0].Command != "[PRIVATE DATA HIDDEN IN LISTS]" {
		t.Errorf("list = %+v, want one process with its command hidden", list.Resources)
	}
}

func TestProcessCommandFromDroplet(t *testing.T) {
	f := newProcessFixture(t)
	ctx := context.Background()
	droplet, err := store.CreateDroplet(ctx, f.env.store.DB(), store.Droplet{
		GUID: "droplet-1", AppGUID: f.appGUID, State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		ProcessTypes: map[string]string{"web": "bundle exec rackup"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, f.env.store.DB(), f.appGUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	var body processJSON
	f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID, f.developer, nil).expect(http.StatusOK).decode(&body)
	if body.Command == nil || *body.Command != "bundle exec rackup" {
		t.Errorf("command = %v, want the droplet's", body.Command)
	}
}

func TestProcessNotFound(t *testing.T) {
	f := newProcessFixture(t)
	tests := []struct {
		name, path, token, detail string
	}{
		{"unknown guid", "/v3/processes/nope", f.developer, "Process not found"},
		{"invisible process", "/v3/processes/" + f.appGUID, f.stranger, "Process not found"},
		{"unknown type", "/v3/apps/" + f.appGUID + "/processes/worker", f.developer, "Process not found"},
		{"invisible app", "/v3/apps/" + f.appGUID + "/processes/web", f.stranger, "App not found"},
		{"stats of unknown type", "/v3/apps/" + f.appGUID + "/processes/worker/stats", f.developer, "Process not found"},
		{"sidecars of invisible process", "/v3/processes/" + f.appGUID + "/sidecars", f.stranger, "Process not found"},
		{"processes of invisible app", "/v3/apps/" + f.appGUID + "/processes", f.stranger, "App not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertTenancyError(t, f.env.do(http.MethodGet, tt.path, tt.token, nil), http.StatusNotFound, 10010, tt.detail)
		})
	}
}

func TestProcessList(t *testing.T) {
	f := newProcessFixture(t)
	ctx := context.Background()
	other := f.space(f.orgGUID, "other")
	otherApp := f.app(appBody("other-app", other))["guid"].(string)
	if _, err := store.EnsureProcessTypes(ctx, f.env.store.DB(), f.appGUID, []string{"worker"}); err != nil {
		t.Fatal(err)
	}

	names := func(path, token string) []string {
		t.Helper()
		var list struct{ Resources []processJSON }
		f.env.do(http.MethodGet, path, token, nil).expect(http.StatusOK).decode(&list)
		got := []string{}
		for _, p := range list.Resources {
			got = append(got, p.Relationships.App.Data.GUID+"/"+p.Type)
		}
		return got
	}
	tests := []struct {
		name, path, token string
		want              []string
	}{
		{"admin sees all", "/v3/processes", f.admin, []string{f.appGUID + "/web", otherApp + "/web", f.appGUID + "/worker"}},
		{"developer sees own space", "/v3/processes", f.developer, []string{f.appGUID + "/web", f.appGUID + "/worker"}},
		{"stranger sees none", "/v3/processes", f.stranger, []string{}},
		{"types", "/v3/processes?types=worker", f.admin, []string{f.appGUID + "/worker"}},
		{"app guids", "/v3/processes?app_guids=" + otherApp, f.admin, []string{otherApp + "/web"}},
		{"space guids", "/v3/processes?space_guids=" + other, f.admin, []string{otherApp + "/web"}},
		{"organization guids", "/v3/processes?organization_guids=" + f.orgGUID + "&types=web", f.admin, []string{f.appGUID + "/web", otherApp + "/web"}},
		{"newest first", "/v3/processes?order_by=-created_at", f.admin, []string{f.appGUID + "/worker", otherApp + "/web", f.appGUID + "/web"}},
		{"app processes", "/v3/apps/" + f.appGUID + "/processes", f.developer, []string{f.appGUID + "/web", f.appGUID + "/worker"}},
		{"app processes by type", "/v3/apps/" + f.appGUID + "/processes?types=web", f.developer, []string{f.appGUID + "/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, names(tt.path, tt.token)); diff != "" {
				t.Errorf("processes (-want +got):\n%s", diff)
			}
		})
	}

	var page struct {
		Pagination paginationJSON
		Resources  []processJSON
	}
	f.env.do(http.MethodGet, "/v3/processes?per_page=2", f.admin, nil).expect(http.StatusOK).decode(&page)
	if page.Pagination.TotalResults != 3 || page.Pagination.Next == nil || len(page.Resources) != 2 {
		t.Errorf("first page = %+v, want 2 of 3 with a next link", page.Pagination)
	}

	for _, tt := range []struct {
		name, path string
	}{
		{"unknown parameter", "/v3/processes?names=web"},
		{"app filter on app processes", "/v3/apps/" + f.appGUID + "/processes?app_guids=" + f.appGUID},
		{"unknown embed", "/v3/processes?embed=stats"},
		{"bad order", "/v3/processes?order_by=type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.do(http.MethodGet, tt.path, f.admin, nil).expect(http.StatusBadRequest)
			if code, _, _ := resp.cfError(); code != 10005 {
				t.Errorf("code = %d, want 10005", code)
			}
		})
	}
}

func TestProcessListEmbedsInstances(t *testing.T) {
	f := newProcessFixture(t)
	type embedded struct {
		Resources []struct {
			GUID             string
			ProcessInstances *[]processInstanceJSON `json:"process_instances"`
		}
	}
	var stopped embedded
	f.env.do(http.MethodGet, "/v3/processes?embed=process_instances&space_guids="+f.spaceGUID, f.developer, nil).
		expect(http.StatusOK).decode(&stopped)
	if len(stopped.Resources) != 1 || stopped.Resources[0].ProcessInstances == nil {
		t.Fatalf("stopped app = %+v", stopped.Resources)
	}
	if diff := cmp.Diff([]processInstanceJSON{{Index: 0, State: "DOWN"}}, *stopped.Resources[0].ProcessInstances); diff != "" {
		t.Errorf("stopped app process_instances (-want +got):\n%s", diff)
	}

	f.startApp()
	f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.developer, map[string]any{"instances": 2}).expect(http.StatusAccepted)
	var started embedded
	f.env.do(http.MethodGet, "/v3/processes?embed=process_instances", f.developer, nil).expect(http.StatusOK).decode(&started)
	want := []processInstanceJSON{{Index: 0, State: "DOWN"}, {Index: 1, State: "DOWN"}}
	if len(started.Resources) != 1 || started.Resources[0].ProcessInstances == nil {
		t.Fatalf("started app = %+v", started.Resources)
	}
	if diff := cmp.Diff(want, *started.Resources[0].ProcessInstances); diff != "" {
		t.Errorf("process_instances (-want +got):\n%s", diff)
	}

	plain := f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID, f.developer, nil).expect(http.StatusOK).object()
	if _, found := plain["process_instances"]; found {
		t.Error("process_instances present without embed")
	}
	one := f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"?embed=process_instances", f.developer, nil).expect(http.StatusOK).object()
	if list, _ := one["process_instances"].([]any); len(list) != 2 {
		t.Errorf("GET with embed: process_instances = %v, want 2 entries", one["process_instances"])
	}
}

func TestProcessUpdate(t *testing.T) {
	f := newProcessFixture(t)
	path := "/v3/processes/" + f.appGUID

	var body processJSON
	f.env.do(http.MethodPatch, path, f.developer, map[string]any{
		"command":                "./server",
		"health_check":           map[string]any{"type": "http", "data": map[string]any{"endpoint": "/health", "timeout": 90, "invocation_timeout": 5, "interval": 10}},
		"readiness_health_check": map[string]any{"type": "http", "data": map[string]any{"endpoint": "/ready", "invocation_timeout": 3}},
		"metadata":               map[string]any{"labels": map[string]any{"tier": "front"}},
	}).expect(http.StatusOK).decode(&body)
	endpoint, ready := "/health", "/ready"
	want := processJSON{
		Type: "web", Command: ptrTo("./server"),
		HealthCheck: healthCheckJSON{Type: "http", Data: livenessCheckDataJSON{
			Timeout: ptrTo(90), InvocationTimeout: ptrTo(5), Interval: ptrTo(10), Endpoint: &endpoint}},
		ReadinessHealthCheck: readinessCheckJSON{Type: "http", Data: readinessCheckDataJSON{InvocationTimeout: ptrTo(3), Endpoint: &ready}},
		Metadata:             metadataJSON{Labels: map[string]string{"tier": "front"}, Annotations: map[string]string{}},
	}
	got := processJSON{Type: body.Type, Command: body.Command, HealthCheck: body.HealthCheck,
		ReadinessHealthCheck: body.ReadinessHealthCheck, Metadata: body.Metadata}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("updated process (-want +got):\n%s", diff)
	}

	// A type other than http drops the endpoint; null resets the command
	// and clears a timeout.
	body = processJSON{}
	f.env.do(http.MethodPatch, "/v3/apps/"+f.appGUID+"/processes/web", f.supporter, map[string]any{
		"command":      nil,
		"health_check": map[string]any{"type": "port", "data": map[string]any{"timeout": nil}},
	}).expect(http.StatusOK).decode(&body)
	if body.Command != nil || body.HealthCheck.Type != "port" || body.HealthCheck.Data.Endpoint != nil || body.HealthCheck.Data.Timeout != nil {
		t.Errorf("after reset: command %v, health check %+v", body.Command, body.HealthCheck)
	}

	// An http check without an endpoint checks "/".
	body = processJSON{}
	f.env.do(http.MethodPatch, path, f.developer, map[string]any{"health_check": map[string]any{"type": "http"}}).
		expect(http.StatusOK).decode(&body)
	if body.HealthCheck.Data.Endpoint == nil || *body.HealthCheck.Data.Endpoint != "/" {
		t.Errorf("http check without endpoint: endpoint = %v, want /", body.HealthCheck.Data.Endpoint)
	}

	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.process.update" || last.Data["process_type"] != "web" {
		t.Errorf("last event = %+v, want audit.app.process.update of web", last)
	}
	for _, ev := range events {
		request, _ := ev.Data["request"].(map[string]any)
		if command, found := request["command"]; found && command != "[PRIVATE DATA HIDDEN]" {
			t.Errorf("%s records the command %v", ev.Type, command)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestProcessUpdateRejectsBadInput(t *testing.T) {
	f := newProcessFixture(t)
	tests := []struct {
		name   string
		body   any
		detail string
	}{
		{"empty command", map[string]any{"command": ""}, "Command must be between 1 and 4096 characters"},
		{"command not a string", map[string]any{"command": 3}, "Command must be a string"},
		{"unknown type", map[string]any{"health_check": map[string]any{"type": "tcp"}}, `Health check type must be "port", "process", or "http"`},
		{"zero timeout", map[string]any{"health_check": map[string]any{"data": map[string]any{"timeout": 0}}}, "Health check timeout must be greater than or equal to 1"},
		{"long timeout", map[string]any{"health_check": map[string]any{"data": map[string]any{"timeout": 181}}}, "Health check timeout must be less than or equal to 180"},
		{"fractional interval", map[string]any{"health_check": map[string]any{"data": map[string]any{"interval": 1.5}}}, "Health check interval must be an integer"},
		{"relative endpoint", map[string]any{"health_check": map[string]any{"data": map[string]any{"endpoint": "health"}}}, "Health check endpoint must be a valid URI path"},
		{"readiness type", map[string]any{"readiness_health_check": map[string]any{"type": "none"}}, `Readiness health check type must be "port", "process", or "http"`},
		{"readiness timeout", map[string]any{"readiness_health_check": map[string]any{"data": map[string]any{"timeout": 5}}}, "Unknown field(s): 'timeout'"},
		{"unknown field", map[string]any{"instances": 2}, "Unknown field(s): 'instances'"},
		{"two problems", map[string]any{"command": "", "health_check": map[string]any{"type": "tcp"}},
			`Command must be between 1 and 4096 characters, Health check type must be "port", "process", or "http"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPatch, "/v3/processes/"+f.appGUID, f.developer, tt.body)
			assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008, tt.detail)
		})
	}
}

func TestProcessWritePermissions(t *testing.T) {
	f := newProcessFixture(t)
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"admin", f.admin, http.StatusOK},
		{"developer", f.developer, http.StatusOK},
		{"supporter", f.supporter, http.StatusOK},
		{"auditor", f.auditor, http.StatusForbidden},
		{"space manager", f.spaceManager, http.StatusForbidden},
		{"org manager", f.orgManager, http.StatusForbidden},
		{"global auditor", f.globalAuditor, http.StatusForbidden},
		{"read-only admin", f.readOnlyAdmin, http.StatusForbidden},
		{"stranger", f.stranger, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.env.do(http.MethodPatch, "/v3/processes/"+f.appGUID, tt.token, map[string]any{}).expect(tt.status)
			scaled := tt.status
			if scaled == http.StatusOK {
				scaled = http.StatusAccepted
			}
			f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", tt.token, map[string]any{"instances": 1}).expect(scaled)
		})
	}
}

func TestProcessScale(t *testing.T) {
	f := newProcessFixture(t)
	var body processJSON
	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/processes/web/actions/scale", f.developer, map[string]any{
		"instances": 3, "memory_in_mb": 256, "disk_in_mb": 512, "log_rate_limit_in_bytes_per_second": 1024,
	}).expect(http.StatusAccepted).decode(&body)
	if body.Instances != 3 || body.MemoryInMB != 256 || body.DiskInMB != 512 || body.LogRateLimit != 1024 {
		t.Errorf("scaled process = %+v", body)
	}
	f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.developer, map[string]any{"instances": 0}).
		expect(http.StatusAccepted).decode(&body)
	if body.Instances != 0 || body.MemoryInMB != 256 {
		t.Errorf("after scaling to 0: %+v, want 0 instances and the memory kept", body)
	}

	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.process.scale" || last.Data["request"].(map[string]any)["instances"] != float64(0) {
		t.Errorf("last event = %+v, want the scale to 0", last)
	}

	tests := []struct {
		name   string
		body   any
		detail string
	}{
		{"negative instances", map[string]any{"instances": -1}, "Instances must be greater than or equal to 0"},
		{"zero memory", map[string]any{"memory_in_mb": 0}, "Memory in mb must be greater than 0"},
		{"zero disk", map[string]any{"disk_in_mb": 0}, "Disk in mb must be greater than 0"},
		{"log rate below -1", map[string]any{"log_rate_limit_in_bytes_per_second": -2}, "Log rate limit in bytes per second must be greater than or equal to -1"},
		{"fractional instances", map[string]any{"instances": 1.5}, "Instances must be an integer"},
		{"instances not a number", map[string]any{"instances": true}, "Instances is not a number"},
		{"huge memory", map[string]any{"memory_in_mb": 1 << 40}, "Memory in mb must be less than or equal to 2147483647"},
		{"unknown field", map[string]any{"cpu": 2}, "Unknown field(s): 'cpu'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.developer, tt.body)
			assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008, tt.detail)
		})
	}

	f.enableFlag(flagAppScaling, false)
	resp := f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.developer, map[string]any{"instances": 2})
	assertTenancyError(t, resp, http.StatusForbidden, 330002, "Feature Disabled: app_scaling")
}

// cliProcessInstance is the stats entry as the cf CLI decodes it: a
// negative number or a fraction in an unsigned field fails decoding.
type cliProcessInstance struct {
	Details          string `json:"details"`
	DiskQuota        uint64 `json:"disk_quota"`
	Index            int64  `json:"index"`
	IsolationSegment string `json:"isolation_segment"`
	MemQuota         uint64 `json:"mem_quota"`
	LogRateLimit     int64  `json:"log_rate_limit"`
	State            string `json:"state"`
	Routable         *bool  `json:"routable"`
	Type             string `json:"type"`
	Uptime           int64  `json:"uptime"`
	Usage            struct {
		CPUEntitlement *float64 `json:"cpu_entitlement"`
		Mem            uint64   `json:"mem"`
		Disk           uint64   `json:"disk"`
		LogRate        uint64   `json:"log_rate"`
	} `json:"usage"`
}

// fakeRuntime reports fixed instances and records restarts.
type fakeRuntime struct {
	mu        sync.Mutex
	instances []InstanceStatus
	err       error
	restarted []int
}

func (r *fakeRuntime) Instances(context.Context, store.App, store.Process) ([]InstanceStatus, error) {
	return r.instances, r.err
}

func (r *fakeRuntime) RestartInstance(_ context.Context, _ store.App, _ store.Process, index int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.restarted = append(r.restarted, index)
	return r.err
}

func TestProcessStatsWithoutRuntime(t *testing.T) {
	f := newProcessFixture(t)
	want := []cliProcessInstance{{Index: 0, State: "DOWN", Type: "web"}}
	var stats struct{ Resources []cliProcessInstance }
	f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"/stats", f.auditor, nil).expect(http.StatusOK).decode(&stats)
	if diff := cmp.Diff(want, stats.Resources); diff != "" {
		t.Errorf("stopped app stats (-want +got):\n%s", diff)
	}

	f.startApp()
	f.env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/processes/web/stats", f.auditor, nil).expect(http.StatusOK).decode(&stats)
	if diff := cmp.Diff(want, stats.Resources); diff != "" {
		t.Errorf("started app stats (-want +got):\n%s", diff)
	}
}

func TestProcessStatsFromRuntime(t *testing.T) {
	f := newProcessFixture(t)
	routable := true
	entitlement := 0.25
	runtime := &fakeRuntime{instances: []InstanceStatus{
		{Index: 1, State: InstanceCrashed, Details: "exited with status 1"},
		{Index: 0, State: InstanceRunning, Since: time.Now().Add(-90 * time.Second), Routable: &routable,
			InstanceGUID: "pod-0", Host: "10.88.0.5", InternalIP: "10.88.0.5", Ports: []InstancePort{{External: 8080, Internal: 8080}},
			Usage: &InstanceUsage{Time: time.Now(), CPU: 0.05, CPUEntitlement: &entitlement, MemBytes: 64 << 20, DiskBytes: 10 << 20, LogRate: 12}},
	}}
	f.env.api.instances = runtime
	var stopped struct{ Resources []cliProcessInstance }
	f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"/stats", f.developer, nil).expect(http.StatusOK).decode(&stopped)
	if diff := cmp.Diff([]cliProcessInstance{{Index: 0, State: "DOWN", Type: "web"}}, stopped.Resources); diff != "" {
		t.Errorf("stopped app stats, not read from the runtime (-want +got):\n%s", diff)
	}
	f.startApp()
	f.env.do(http.MethodPost, "/v3/processes/"+f.appGUID+"/actions/scale", f.admin, map[string]any{"memory_in_mb": 256, "log_rate_limit_in_bytes_per_second": -1}).expect(http.StatusAccepted)

	var stats struct{ Resources []cliProcessInstance }
	f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"/stats", f.developer, nil).expect(http.StatusOK).decode(&stats)
	if len(stats.Resources) != 2 {
		t.Fatalf("stats = %+v, want 2 instances", stats.Resources)
	}
	running, crashed := stats.Resources[0], stats.Resources[1]
	if running.Index != 0 || running.State != "RUNNING" || running.MemQuota != 256<<20 || running.DiskQuota != 1024<<20 ||
		running.LogRateLimit != -1 || running.Uptime < 90 || running.Usage.Mem != 64<<20 || running.Usage.LogRate != 12 ||
		running.Routable == nil || !*running.Routable || running.Usage.CPUEntitlement == nil {
		t.Errorf("running instance = %+v", running)
	}
	if crashed.Index != 1 || crashed.State != "CRASHED" || crashed.Details != "exited with status 1" {
		t.Errorf("crashed instance = %+v", crashed)
	}
	raw := f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"/stats", f.developer, nil).object()
	first := raw["resources"].([]any)[0].(map[string]any)
	if first["fds_quota"] != float64(16384) || first["instance_ports"] == nil || first["isolation_segment"] != nil {
		t.Errorf("running instance JSON = %v", first)
	}

	runtime.err = errors.New("cluster unreachable")
	resp := f.env.do(http.MethodGet, "/v3/processes/"+f.appGUID+"/stats", f.developer, nil)
	if code, _, _ := resp.expect(http.StatusServiceUnavailable).cfError(); code != 10015 {
		t.Errorf("code = %d, want 10015", code)
	}
}

func TestProcessInstanceRestart(t *testing.T) {
	f := newProcessFixture(t)
	path := "/v3/processes/" + f.appGUID + "/instances/0"

	resp := f.env.do(http.MethodDelete, path, f.developer, nil)
	if code, _, _ := resp.expect(http.StatusServiceUnavailable).cfError(); code != 10015 {
		t.Errorf("without a runtime: code = %d, want 10015", code)
	}

	runtime := &fakeRuntime{}
	f.env.api.restarter = runtime
	f.env.do(http.MethodDelete, "/v3/apps/"+f.appGUID+"/processes/web/instances/0", f.supporter, nil).expect(http.StatusNoContent)
	if diff := cmp.Diff([]int{0}, runtime.restarted); diff != "" {
		t.Errorf("restarted (-want +got):\n%s", diff)
	}
	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.process.terminate_instance" || last.Data["process_index"] != float64(0) {
		t.Errorf("last event = %+v", last)
	}

	for _, index := range []string{"1", "-1", "x"} {
		assertTenancyError(t, f.env.do(http.MethodDelete, "/v3/processes/"+f.appGUID+"/instances/"+index, f.developer, nil),
			http.StatusNotFound, 10010, "Instance not found")
	}
	f.env.do(http.MethodDelete, path, f.auditor, nil).expect(http.StatusForbidden)
	if len(runtime.restarted) != 1 {
		t.Errorf("restarted %v, want only the first restart", runtime.restarted)
	}
}

func TestProcessSidecarsAreEmpty(t *testing.T) {
	f := newProcessFixture(t)
	for _, path := range []string{"/v3/processes/" + f.appGUID + "/sidecars", "/v3/apps/" + f.appGUID + "/sidecars"} {
		var list struct {
			Pagination paginationJSON
			Resources  []any
		}
		f.env.do(http.MethodGet, path, f.auditor, nil).expect(http.StatusOK).decode(&list)
		if list.Resources == nil || len(list.Resources) != 0 || list.Pagination.TotalResults != 0 {
			t.Errorf("%s = %+v, want an empty list", path, list)
		}
	}
}
