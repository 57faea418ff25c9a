package cfapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// newManifestFixture is an appFixture with the domains Ferry creates on
// start, whose apps.ferry.test is every organization's default domain,
// and the shared domain example.com.
func newManifestFixture(t *testing.T) *appFixture {
	t.Helper()
	f := newAppFixture(t)
	ctx := context.Background()
	if err := f.env.store.EnsureDefaultRouting(ctx, "apps.ferry.test", "apps.internal", "1024-1026"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureDomain(ctx, f.env.store.DB(), "example.com", false); err != nil {
		t.Fatal(err)
	}
	return f
}

// postYAML sends a manifest as the cf CLI does.
func (e *testEnv) postYAML(path, token, body string) *testResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.server.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-yaml")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "bearer "+token)
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

// applyManifest applies doc to the fixture's space as token, runs the job
// and returns it.
func (f *appFixture) applyManifest(token, doc string) jobJSON {
	f.t.Helper()
	resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", token, doc).expect(http.StatusAccepted)
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, f.env.server.URL+"/v3/jobs/") {
		f.t.Fatalf("Location = %q, want a job URL", location)
	}
	if len(resp.Body) != 0 {
		f.t.Errorf("apply_manifest body = %q, want none", resp.Body)
	}
	f.env.runner.RunPending(context.Background())
	var job jobJSON
	f.env.do(http.MethodGet, strings.TrimPrefix(location, f.env.server.URL), token, nil).expect(http.StatusOK).decode(&job)
	if job.Operation != "space.apply_manifest" {
		f.t.Errorf("job operation = %q", job.Operation)
	}
	return job
}

// mustApply applies doc and fails the test unless the job completes.
func (f *appFixture) mustApply(doc string) {
	f.t.Helper()
	if job := f.applyManifest(f.developer, doc); job.State != store.JobComplete {
		f.t.Fatalf("job = %s %+v, want COMPLETE", job.State, job.Errors)
	}
}

// appNamed returns the app of the fixture's space named name.
func (f *appFixture) appNamed(name string) appJSON {
	f.t.Helper()
	var list struct{ Resources []appJSON }
	f.env.do(http.MethodGet, "/v3/apps?names="+name+"&space_guids="+f.spaceGUID, f.admin, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 {
		f.t.Fatalf("apps named %s: %d, want 1", name, len(list.Resources))
	}
	return list.Resources[0]
}

// processesOf returns the processes of an app keyed by type.
func (f *appFixture) processesOf(appGUID string) map[string]processJSON {
	f.t.Helper()
	var list struct{ Resources []processJSON }
	f.env.do(http.MethodGet, "/v3/apps/"+appGUID+"/processes", f.admin, nil).expect(http.StatusOK).decode(&list)
	out := map[string]processJSON{}
	for _, p := range list.Resources {
		var full processJSON
		f.env.do(http.MethodGet, "/v3/processes/"+p.GUID, f.admin, nil).expect(http.StatusOK).decode(&full)
		out[p.Type] = full
	}
	return out
}

func (f *appFixture) envOf(appGUID string) map[string]string {
	f.t.Helper()
	var body appEnvironmentVariablesJSON
	f.env.do(http.MethodGet, "/v3/apps/"+appGUID+"/environment_variables", f.admin, nil).expect(http.StatusOK).decode(&body)
	return body.Var
}

func TestApplyManifestPushWithoutManifest(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply("applications:\n- name: myapp\n  default-route: true\n")

	app := f.appNamed("myapp")
	if app.State != "STOPPED" || app.Lifecycle.Type != "buildpack" {
		t.Errorf("app = %+v, want a stopped buildpack app", app)
	}
	data := app.Lifecycle.Data.(map[string]any)
	if data["stack"] != "ferry-test" || len(data["buildpacks"].([]any)) != 0 {
		t.Errorf("lifecycle data = %v, want the default stack and no buildpacks", data)
	}
	processes := f.processesOf(app.GUID)
	web, found := processes["web"]
	if len(processes) != 1 || !found || web.GUID != app.GUID || web.Instances != 1 || web.MemoryInMB != 1024 || web.HealthCheck.Type != "port" {
		t.Errorf("processes = %+v, want the default web process", processes)
	}
	intent, err := store.AppRouteIntent(context.Background(), f.env.store.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if !intent.DefaultRoute || intent.NoRoute || len(intent.Routes) != 0 {
		t.Errorf("route intent = %+v, want a default route", intent)
	}

	var types []string
	for _, ev := range f.events(app.GUID) {
		types = append(types, ev.Type)
	}
	if diff := cmp.Diff([]string{"audit.app.apply_manifest", "audit.app.create", "audit.app.map-route"}, types); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	var routes struct{ Resources []routeJSON }
	f.env.do(http.MethodGet, "/v3/apps/"+app.GUID+"/routes", f.developer, nil).expect(http.StatusOK).decode(&routes)
	if len(routes.Resources) != 1 || routes.Resources[0].URL != "myapp.apps.ferry.test" {
		t.Errorf("routes = %+v, want the default route myapp.apps.ferry.test", routes.Resources)
	}

	// Pushing again changes nothing and creates nothing.
	f.mustApply("applications:\n- name: myapp\n  default-route: true\n")
	if n := f.count(`SELECT count(*) FROM apps`); n != 1 {
		t.Errorf("%d apps after a second push, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM route_destinations`); n != 1 {
		t.Errorf("%d destinations after a second push, want 1", n)
	}
}

func TestApplyManifestEveryPushFlag(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply(`applications:
- name: app-bp
  disk-quota: 512M
  health-check-type: http
  health-check-http-endpoint: /health
  instances: 2
  memory: 256M
  default-route: true
  stack: other-stack
  buildpacks:
  - go_buildpack
  command: ./run
`)
	app := f.appNamed("app-bp")
	data := app.Lifecycle.Data.(map[string]any)
	if diff := cmp.Diff(map[string]any{"buildpacks": []any{"go_buildpack"}, "stack": "other-stack"}, data); diff != "" {
		t.Errorf("lifecycle data (-want +got):\n%s", diff)
	}
	web := f.processesOf(app.GUID)["web"]
	endpoint := "/health"
	want := processJSON{
		Type: "web", Command: ptrTo("./run"), Instances: 2, MemoryInMB: 256, DiskInMB: 512, LogRateLimit: -1,
		HealthCheck:          healthCheckJSON{Type: "http", Data: livenessCheckDataJSON{Endpoint: &endpoint}},
		ReadinessHealthCheck: readinessCheckJSON{Type: "process"},
	}
	got := processJSON{Type: web.Type, Command: web.Command, Instances: web.Instances, MemoryInMB: web.MemoryInMB,
		DiskInMB: web.DiskInMB, LogRateLimit: web.LogRateLimit, HealthCheck: web.HealthCheck, ReadinessHealthCheck: web.ReadinessHealthCheck}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("web process (-want +got):\n%s", diff)
	}

	types := map[string]bool{}
	for _, ev := range f.events(app.GUID) {
		types[ev.Type] = true
		if ev.Type == "audit.app.process.scale" {
			request := ev.Data["request"].(map[string]any)
			if request["instances"] != float64(2) || request["memory_in_mb"] != float64(256) || ev.Data["manifest_triggered"] != true {
				t.Errorf("scale event data = %v", ev.Data)
			}
		}
	}
	for _, typ := range []string{"audit.app.create", "audit.app.process.update", "audit.app.process.scale", "audit.app.apply_manifest"} {
		if !types[typ] {
			t.Errorf("no %s event among %v", typ, types)
		}
	}
}

func TestApplyManifestDocker(t *testing.T) {
	f := newManifestFixture(t)
	doc := "applications:\n- name: app-docker\n  docker:\n    image: nginx:1.25\n  default-route: true\n"
	resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer, doc)
	assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008, "For application 'app-docker': Feature Disabled: diego_docker")

	f.enableFlag(flagDiegoDocker, true)
	f.mustApply(doc)
	app := f.appNamed("app-docker")
	if app.Lifecycle.Type != "docker" || len(app.Lifecycle.Data.(map[string]any)) != 0 {
		t.Errorf("lifecycle = %+v, want docker with empty data", app.Lifecycle)
	}
	if web := f.processesOf(app.GUID)["web"]; web.Instances != 1 {
		t.Errorf("web = %+v", web)
	}

	resp = f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer,
		"applications:\n- name: app-docker\n  buildpacks: [go_buildpack]\n")
	assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008,
		"For application 'app-docker': Buildpacks cannot be configured for a docker lifecycle app.")
	resp = f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer,
		"applications:\n- name: app-docker\n  lifecycle: buildpack\n")
	assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008,
		"For application 'app-docker': Lifecycle type cannot be changed from docker to buildpack")
	f.mustApply("applications:\n- name: bp-app\n")
	resp = f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer,
		"applications:\n- name: bp-app\n  docker:\n    image: busybox\n")
	assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008,
		"For application 'bp-app': Docker cannot be configured for a buildpack lifecycle app.")
}

func TestApplyManifestProcessesAndEnv(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply(`applications:
- name: multi
  path: /home/dev/multi
  env:
    NUM: 42
    RATIO: 1.5
    FLAG: true
    TEXT: plain
  routes:
  - route: multi.example.com/api
  default-route: true
  metadata:
    labels:
      tier: backend
  processes:
  - type: web
    instances: 2
    memory: 512M
    health-check-type: http
  - type: worker
    instances: 3
    memory: 1G
    disk_quota: 2G
    command: bundle exec worker
    health-check-type: process
    log-rate-limit-per-second: 16K
    timeout: 120
`)
	app := f.appNamed("multi")
	if diff := cmp.Diff(map[string]string{"NUM": "42", "RATIO": "1.5", "FLAG": "true", "TEXT": "plain"}, f.envOf(app.GUID)); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if app.Metadata.Labels["tier"] != "backend" {
		t.Errorf("labels = %v", app.Metadata.Labels)
	}
	processes := f.processesOf(app.GUID)
	web, worker := processes["web"], processes["worker"]
	if web.Instances != 2 || web.MemoryInMB != 512 || web.HealthCheck.Type != "http" || *web.HealthCheck.Data.Endpoint != "/" {
		t.Errorf("web = %+v", web)
	}
	if worker.Instances != 3 || worker.MemoryInMB != 1024 || worker.DiskInMB != 2048 || worker.LogRateLimit != 16384 ||
		*worker.Command != "bundle exec worker" || worker.HealthCheck.Type != "process" || *worker.HealthCheck.Data.Timeout != 120 {
		t.Errorf("worker = %+v", worker)
	}
	intent, err := store.AppRouteIntent(context.Background(), f.env.store.DB(), app.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(intent.Routes) != 1 || intent.Routes[0].Route != "multi.example.com/api" {
		t.Errorf("route intent = %+v", intent)
	}

	// A second manifest merges env and metadata, keeps unlisted processes,
	// resets the command, and adds routes.
	f.mustApply(`applications:
- name: multi
  env:
    TEXT: changed
    NEW: "1"
  metadata:
    labels:
      tier: null
  routes:
  - route: multi.example.com/v2
  processes:
  - type: worker
    command: null
    instances: 0
`)
	if diff := cmp.Diff(map[string]string{"NUM": "42", "RATIO": "1.5", "FLAG": "true", "TEXT": "changed", "NEW": "1"}, f.envOf(app.GUID)); diff != "" {
		t.Errorf("env after second apply (-want +got):\n%s", diff)
	}
	processes = f.processesOf(app.GUID)
	if processes["web"].Instances != 2 || processes["worker"].Instances != 0 || processes["worker"].Command != nil {
		t.Errorf("processes after second apply = %+v", processes)
	}
	if labels := f.appNamed("multi").Metadata.Labels; len(labels) != 0 {
		t.Errorf("labels after deleting tier = %v", labels)
	}
	if intent, _ = store.AppRouteIntent(context.Background(), f.env.store.DB(), app.GUID); len(intent.Routes) != 2 {
		t.Errorf("routes after second apply = %+v, want both", intent.Routes)
	}

	f.mustApply("applications:\n- name: multi\n  no-route: true\n")
	if intent, _ = store.AppRouteIntent(context.Background(), f.env.store.DB(), app.GUID); !intent.NoRoute || len(intent.Routes) != 0 {
		t.Errorf("route intent after no-route = %+v", intent)
	}

	for _, ev := range f.events(app.GUID) {
		if ev.Type != "audit.app.apply_manifest" {
			continue
		}
		manifest := ev.Data["request"].(map[string]any)["manifest"].(string)
		if strings.Contains(manifest, "plain") || strings.Contains(manifest, "changed") {
			t.Errorf("apply_manifest event records env values: %s", manifest)
		}
	}
}

func TestApplyManifestSeveralApps(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply("applications:\n- name: one\n  instances: 2\n- name: two\n  features:\n    revisions: false\n")
	if f.processesOf(f.appNamed("one").GUID)["web"].Instances != 2 {
		t.Error("first app not scaled")
	}
	var feature appFeatureJSON
	f.env.do(http.MethodGet, "/v3/apps/"+f.appNamed("two").GUID+"/features/revisions", f.admin, nil).expect(http.StatusOK).decode(&feature)
	if feature.Enabled {
		t.Error("revisions still enabled on the second app")
	}
}

func TestApplyManifestRejectsInvalidManifests(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply("applications:\n- name: existing\n  instances: 2\n")
	tests := []struct {
		name   string
		doc    string
		status int
		code   int
		detail string
	}{
		{"bad memory unit", "applications:\n- name: existing\n  memory: 1Q\n", 422, 10008,
			`For application 'existing': Process "web": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`},
		{"negative instances", "applications:\n- name: existing\n  instances: -3\n", 422, 10008,
			`For application 'existing': Process "web": Instances must be greater than or equal to 0`},
		{"unknown health check type", "applications:\n- name: existing\n  processes:\n  - type: web\n    health-check-type: tcp\n", 422, 10008,
			`For application 'existing': Process "web": Health check type must be "port", "process", or "http"`},
		{"missing name", "applications:\n- instances: 1\n", 422, 10008, "For application at index 0: Name must not be empty"},
		{"duplicate names", "applications:\n- name: existing\n- name: existing\n  instances: 5\n", 422, 10008,
			"For application 'existing': Application name 'existing' appears more than once in the manifest"},
		{"unknown stack", "applications:\n- name: existing\n  stack: cflinuxfs2\n", 422, 10008,
			"For application 'existing': Stack must be an existing stack: 'cflinuxfs2' is not one of 'ferry-test', 'other-stack'"},
		{"reserved env name", "applications:\n- name: existing\n  env:\n    VCAP_SERVICES: x\n", 422, 10008,
			"For application 'existing': Env cannot start with VCAP_"},
		{"bad label", "applications:\n- name: existing\n  metadata:\n    labels:\n      'bad key!': x\n", 422, 10008,
			"For application 'existing': Metadata label key 'bad key!' is invalid: the name may contain only letters, digits, '-', '_' and '.'"},
		{"ssh feature", "applications:\n- name: existing\n  features:\n    ssh: true\n", 422, 10008,
			"For application 'existing': SSH cannot be enabled: Ferry does not offer SSH access to app instances"},
		{"two apps with problems", "applications:\n- name: a\n  memory: 1\n- name: b\n  instances: x\n", 422, 10008,
			`For application 'a': Process "web": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB; ` +
				`For application 'b': Process "web": Instances is not a number`},
		{"no applications", "version: 1\n", 422, 10008, "Cannot parse manifest with no 'applications' field."},
		{"not yaml", "applications: [", 400, 1001, "Request invalid due to parse error: invalid request body"},
		{"aliases", "base: &base {name: x}\napplications:\n- *base\n", 400, 1004, "Bad request: Manifest does not support Anchors and Aliases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer, tt.doc)
			assertTenancyError(t, resp, tt.status, tt.code, tt.detail)
		})
	}
	if n := f.count(`SELECT count(*) FROM apps`); n != 1 {
		t.Errorf("%d apps, want only the existing one", n)
	}
	if n := f.count(`SELECT count(*) FROM jobs WHERE operation = 'space.apply_manifest'`); n != 1 {
		t.Errorf("%d apply jobs, want only the first", n)
	}
	if web := f.processesOf(f.appNamed("existing").GUID)["web"]; web.Instances != 2 || web.MemoryInMB != 1024 {
		t.Errorf("existing web process changed: %+v", web)
	}
}

func TestApplyManifestFailedJobChangesNothing(t *testing.T) {
	f := newManifestFixture(t)
	job := f.applyManifest(f.developer, "applications:\n- name: first\n- name: svc-app\n  instances: 4\n  services:\n  - db\n- name: last\n")
	if job.State != store.JobFailed || len(job.Errors) != 1 {
		t.Fatalf("job = %s %+v, want FAILED with one error", job.State, job.Errors)
	}
	want := store.JobError{Code: 10010, Title: "CF-ResourceNotFound", Detail: "For application 'svc-app': Service instance 'db' not found"}
	if diff := cmp.Diff(want, job.Errors[0]); diff != "" {
		t.Errorf("job error (-want +got):\n%s", diff)
	}
	var names []string
	var list struct{ Resources []appJSON }
	f.env.do(http.MethodGet, "/v3/apps?order_by=name", f.admin, nil).expect(http.StatusOK).decode(&list)
	for _, app := range list.Resources {
		names = append(names, app.Name)
	}
	if diff := cmp.Diff([]string{"first"}, names); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	if n := f.count(`SELECT count(*) FROM manifest_applies`); n != 0 {
		t.Errorf("%d stored manifests after the job, want 0", n)
	}
}

func TestApplyManifestPermissionsAndContentType(t *testing.T) {
	f := newManifestFixture(t)
	doc := "applications:\n- name: perm-app\n"
	path := "/v3/spaces/" + f.spaceGUID + "/actions/apply_manifest"
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"auditor", f.auditor, http.StatusForbidden},
		{"supporter", f.supporter, http.StatusForbidden},
		{"space manager", f.spaceManager, http.StatusForbidden},
		{"org manager", f.orgManager, http.StatusForbidden},
		{"global auditor", f.globalAuditor, http.StatusForbidden},
		{"read-only admin", f.readOnlyAdmin, http.StatusForbidden},
		{"stranger", f.stranger, http.StatusNotFound},
		{"admin", f.admin, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.postYAML(path, tt.token, doc).expect(tt.status)
			if tt.status == http.StatusNotFound {
				if _, _, detail := resp.cfError(); detail != "Space not found" {
					t.Errorf("detail = %q", detail)
				}
			}
		})
	}
	resp := f.env.do(http.MethodPost, path, f.developer, map[string]any{"applications": []any{}})
	assertTenancyError(t, resp, http.StatusBadRequest, 1004, "Bad request: Content-Type must be yaml")
	big := "applications:\n- name: big\n  env:\n    BLOB: " + strings.Repeat("x", 1<<20) + "\n"
	assertTenancyError(t, f.env.postYAML(path, f.developer, big), http.StatusBadRequest, 1004,
		"Bad request: Manifest size is too large. The maximum supported size is 1MB.")
}

func TestAppManifestGet(t *testing.T) {
	f := newManifestFixture(t)
	f.mustApply(`applications:
- name: shown
  env:
    MODE: prod
  buildpacks: [go_buildpack]
  routes:
  - route: shown.example.com
  metadata:
    annotations:
      owner: team-a
  processes:
  - type: web
    instances: 2
    memory: 256M
    health-check-type: http
    health-check-http-endpoint: /health
    timeout: 60
  - type: worker
    command: ./work
    log-rate-limit-per-second: 1M
`)
	guid := f.appNamed("shown").GUID
	req, err := http.NewRequest(http.MethodGet, f.env.server.URL+"/v3/apps/"+guid+"/manifest", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+f.developer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-yaml" {
		t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	want := `---
applications:
  - name: shown
    env:
      MODE: prod
    lifecycle: buildpack
    buildpacks:
      - go_buildpack
    stack: ferry-test
    features:
      ssh: false
      revisions: true
      service-binding-k8s: false
      file-based-vcap-services: false
    routes:
      - route: shown.example.com
    metadata:
      annotations:
        owner: team-a
    processes:
      - type: web
        instances: 2
        memory: 256M
        disk_quota: 1024M
        log-rate-limit-per-second: -1
        health-check-type: http
        health-check-http-endpoint: /health
        readiness-health-check-type: process
        timeout: 60
      - type: worker
        instances: 0
        memory: 1024M
        disk_quota: 1024M
        log-rate-limit-per-second: 1M
        command: ./work
        health-check-type: process
        readiness-health-check-type: process
`
	if diff := cmp.Diff(want, string(body)); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}

	f.env.do(http.MethodGet, "/v3/apps/"+guid+"/manifest", f.auditor, nil).expect(http.StatusForbidden)
	f.env.do(http.MethodGet, "/v3/apps/"+guid+"/manifest", f.globalAuditor, nil).expect(http.StatusForbidden)
	f.env.do(http.MethodGet, "/v3/apps/"+guid+"/manifest", f.readOnlyAdmin, nil).expect(http.StatusOK)
	assertTenancyError(t, f.env.do(http.MethodGet, "/v3/apps/"+guid+"/manifest", f.stranger, nil), http.StatusNotFound, 10010, "App not found")

	// The manifest applies to a new app with the same result.
	f.mustApply(strings.Replace(want, "name: shown", "name: copy", 1))
	copyGUID := f.appNamed("copy").GUID
	if diff := cmp.Diff(f.processesOf(guid)["worker"].Command, f.processesOf(copyGUID)["worker"].Command); diff != "" {
		t.Errorf("copied worker command (-want +got):\n%s", diff)
	}
}
