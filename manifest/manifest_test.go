package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

func mustParse(t *testing.T, doc string) *Manifest {
	t.Helper()
	m, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return m
}

func TestParseCLIManifests(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Application
	}{
		{
			name: "push without manifest",
			doc:  "applications:\n- name: myapp\n  default-route: true\n",
			want: Application{Name: "myapp", Routes: &Routes{DefaultRoute: ptr(true)}},
		},
		{
			name: "every push flag",
			doc: `applications:
- name: app-bp
  disk-quota: 512M
  health-check-type: http
  health-check-http-endpoint: /health
  instances: 2
  memory: 256M
  default-route: true
  stack: cflinuxfs4
  buildpacks:
  - go_buildpack
  command: ./run
`,
			want: Application{
				Name:       "app-bp",
				Buildpacks: &[]string{"go_buildpack"},
				Stack:      ptr("cflinuxfs4"),
				Routes:     &Routes{DefaultRoute: ptr(true)},
				Processes: []Process{{
					Type:        "web",
					Command:     Command{Set: true, Value: "./run"},
					Instances:   ptr(2),
					MemoryMB:    ptr[int64](256),
					DiskMB:      ptr[int64](512),
					HealthCheck: HealthCheck{Type: ptr("http"), Endpoint: ptr("/health")},
				}},
			},
		},
		{
			name: "docker image",
			doc:  "applications:\n- name: app-docker\n  docker:\n    image: nginx:1.25\n  default-route: true\n",
			want: Application{
				Name:      "app-docker",
				Lifecycle: LifecycleDocker,
				Docker:    &Docker{Image: "nginx:1.25"},
				Routes:    &Routes{DefaultRoute: ptr(true)},
			},
		},
		{
			name: "processes, routes and env of other types",
			doc: `applications:
- name: multi
  path: /home/dev/multi
  env:
    NUM: 42
    RATIO: 1.5
    FLAG: true
    NOTHING: null
    TEXT: plain
  routes:
  - route: multi.example.com/api
    protocol: http2
    options:
      loadbalancing: least-connection
  default-route: true
  processes:
  - type: worker
    instances: 3
    memory: 1G
    command: bundle exec worker
    health-check-type: process
    log-rate-limit-per-second: 16K
  - type: web
    instances: 2
    disk_quota: 2G
    health-check-type: none
    timeout: 90
    readiness-health-check-type: http
    readiness-health-check-http-endpoint: /ready
`,
			want: Application{
				Name: "multi",
				Env:  map[string]string{"NUM": "42", "RATIO": "1.5", "FLAG": "true", "NOTHING": "", "TEXT": "plain"},
				Routes: &Routes{
					RoutesSet:    true,
					Routes:       []Route{{Route: "multi.example.com/api", Protocol: "http2", Options: map[string]string{"loadbalancing": "least-connection"}}},
					DefaultRoute: ptr(true),
				},
				Processes: []Process{
					{
						Type: "web", Instances: ptr(2), DiskMB: ptr[int64](2048),
						HealthCheck: HealthCheck{Type: ptr("process"), Timeout: ptr(90)},
						Readiness:   HealthCheck{Type: ptr("http"), Endpoint: ptr("/ready")},
					},
					{
						Type: "worker", Instances: ptr(3), MemoryMB: ptr[int64](1024), LogRateLimit: ptr[int64](16384),
						Command:     Command{Set: true, Value: "bundle exec worker"},
						HealthCheck: HealthCheck{Type: ptr("process")},
					},
				},
			},
		},
		{
			name: "buildpack default and command reset",
			doc:  "applications:\n- name: a\n  buildpack: default\n  command: null\n  log-rate-limit-per-second: -1\n",
			want: Application{
				Name:       "a",
				Buildpacks: &[]string{},
				Processes:  []Process{{Type: "web", Command: Command{Set: true, Reset: true}, LogRateLimit: ptr[int64](-1)}},
			},
		},
		{
			name: "features metadata services and empty sidecars",
			doc: `applications:
- name: b
  features:
    revisions: false
  metadata:
    labels:
      tier: web
      old: null
    annotations:
      note: hello
  services:
  - db
  - name: cache
    binding_name: redis
  sidecars: []
`,
			want: Application{
				Name:     "b",
				Features: map[string]bool{"revisions": false},
				Metadata: &Metadata{
					Labels:      map[string]*string{"tier": ptr("web"), "old": nil},
					Annotations: map[string]*string{"note": ptr("hello")},
				},
				Services: []Service{{Name: "db"}, {Name: "cache", BindingName: "redis"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.doc)
			if len(m.Applications) != 1 {
				t.Fatalf("got %d applications, want 1", len(m.Applications))
			}
			got := m.Applications[0]
			if got.Raw["name"] != tt.want.Name {
				t.Errorf("Raw name = %v, want %s", got.Raw["name"], tt.want.Name)
			}
			got.Raw = nil
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("application (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejectsInvalidManifests(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		kind ErrorKind
		want []string
	}{
		{"not yaml", "applications: [", ErrorSyntax, []string{"invalid request body"}},
		{"not a mapping", "- name: a\n", ErrorSyntax, []string{"invalid request body"}},
		{"aliases", "x: &a {name: a}\napplications:\n- *a\n", ErrorAliases, []string{"Manifest does not support Anchors and Aliases"}},
		{"no applications", "version: 1\n", ErrorInvalid, []string{"Cannot parse manifest with no 'applications' field."}},
		{"bad version", "version: 2\napplications:\n- name: a\n", ErrorInvalid, []string{"Unsupported manifest schema version. Currently supported versions: [1]."}},
		{"missing name", "applications:\n- instances: 1\n", ErrorInvalid, []string{"For application at index 0: Name must not be empty"}},
		{"name not a string", "applications:\n- name: [a]\n", ErrorInvalid, []string{"For application at index 0: Name must be a string"}},
		{"duplicate names", "applications:\n- name: a\n- name: A\n", ErrorInvalid,
			[]string{"For application 'A': Application name 'A' appears more than once in the manifest"}},
		{"memory without unit", "applications:\n- name: a\n  memory: 256\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`}},
		{"memory not a number", "applications:\n- name: a\n  memory: lots\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Memory is not a number`}},
		{"memory below a megabyte", "applications:\n- name: a\n  memory: 512K\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Memory must be greater than 0MB`}},
		{"disk with a bad unit", "applications:\n- name: a\n  disk_quota: 1X\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Disk quota must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`}},
		{"negative instances", "applications:\n- name: a\n  instances: -1\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Instances must be greater than or equal to 0`}},
		{"fractional instances", "applications:\n- name: a\n  processes:\n  - type: worker\n    instances: 1.5\n", ErrorInvalid,
			[]string{`For application 'a': Process "worker": Instances must be an integer`}},
		{"unknown health check type", "applications:\n- name: a\n  health-check-type: tcp\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Health check type must be "port", "process", or "http"`}},
		{"endpoint without http", "applications:\n- name: a\n  health-check-type: port\n  health-check-http-endpoint: /h\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Health check type must be "http" to set a health check HTTP endpoint`}},
		{"relative endpoint", "applications:\n- name: a\n  health-check-http-endpoint: health\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Health check http endpoint must be a valid URI path`}},
		{"timeout too long", "applications:\n- name: a\n  timeout: 600\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Timeout must be less than or equal to 180`}},
		{"zero invocation timeout", "applications:\n- name: a\n  health-check-invocation-timeout: 0\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Health check invocation timeout must be greater than or equal to 1`}},
		{"negative log rate", "applications:\n- name: a\n  log-rate-limit-per-second: -2M\n", ErrorInvalid,
			[]string{`For application 'a': Process "web": Log rate limit must be an integer greater than or equal to -1`}},
		{"process without type", "applications:\n- name: a\n  processes:\n  - instances: 1\n", ErrorInvalid,
			[]string{"For application 'a': All Processes must specify a type"}},
		{"process twice", "applications:\n- name: a\n  processes:\n  - type: w\n  - type: w\n", ErrorInvalid,
			[]string{`For application 'a': Process "w" may only be present once`}},
		{"processes not a list", "applications:\n- name: a\n  processes: web\n", ErrorInvalid,
			[]string{"For application 'a': Processes must be an array of process configurations"}},
		{"buildpack and buildpacks", "applications:\n- name: a\n  buildpack: x\n  buildpacks: [y]\n", ErrorInvalid,
			[]string{"For application 'a': Buildpack and Buildpacks fields cannot be used together."}},
		{"docker and buildpacks", "applications:\n- name: a\n  docker: {image: x}\n  buildpacks: [y]\n", ErrorInvalid,
			[]string{"For application 'a': Cannot specify both buildpack(s) and docker keys"}},
		{"cnb lifecycle", "applications:\n- name: a\n  lifecycle: cnb\n", ErrorInvalid,
			[]string{"For application 'a': Lifecycle 'cnb' is not supported: Ferry stages buildpack apps with Cloud Native Buildpacks, so use 'buildpack'"}},
		{"env not a mapping", "applications:\n- name: a\n  env: [A]\n", ErrorInvalid,
			[]string{"For application 'a': Env must be an object of keys and values"}},
		{"bad route", "applications:\n- name: a\n  routes:\n  - route: 'http://:80'\n", ErrorInvalid,
			[]string{"For application 'a': The route 'http://:80' is not a properly formed URL"}},
		{"routes not objects", "applications:\n- name: a\n  routes: [a.example.com]\n", ErrorInvalid,
			[]string{"For application 'a': Routes must be a list of route objects"}},
		{"bad protocol", "applications:\n- name: a\n  routes:\n  - route: a.example.com\n    protocol: quic\n", ErrorInvalid,
			[]string{"For application 'a': Route protocol must be 'http1', 'http2', 'tcp' or 'udp'."}},
		{"random and default route", "applications:\n- name: a\n  random-route: true\n  default-route: true\n", ErrorInvalid,
			[]string{"For application 'a': Random-route and default-route may not be used together"}},
		{"no-route not a boolean", "applications:\n- name: a\n  no-route: sure\n", ErrorInvalid,
			[]string{"For application 'a': No-route must be a boolean"}},
		{"unknown feature", "applications:\n- name: a\n  features: {magic: true}\n", ErrorInvalid,
			[]string{"For application 'a': Features must be a map of valid feature names to booleans (true = enabled, false = disabled)"}},
		{"services not a list", "applications:\n- name: a\n  services: db\n", ErrorInvalid,
			[]string{"For application 'a': Services must be a list of service instances"}},
		{"sidecars", "applications:\n- name: a\n  sidecars:\n  - name: s\n    command: run\n", ErrorInvalid,
			[]string{"For application 'a': Sidecars are not supported: remove the sidecars or leave the list empty"}},
		{"several problems", "applications:\n- name: a\n  memory: 1\n  instances: x\n- memory: 1M\n  stack: 3\n", ErrorInvalid,
			[]string{
				`For application 'a': Process "web": Instances is not a number`,
				`For application 'a': Process "web": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`,
				"For application at index 1: Name must not be empty",
				"For application at index 1: Stack must be a string",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var merr *Error
			if !errors.As(err, &merr) {
				t.Fatalf("Parse error = %v, want *Error", err)
			}
			if merr.Kind != tt.kind {
				t.Errorf("kind = %d, want %d", merr.Kind, tt.kind)
			}
			if diff := cmp.Diff(tt.want, merr.Messages); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWebInProcessesReplacesTopLevel(t *testing.T) {
	m := mustParse(t, "applications:\n- name: a\n  instances: 5\n  processes:\n  - type: web\n    instances: 2\n")
	got := m.Applications[0].Processes
	if len(got) != 1 || got[0].Instances == nil || *got[0].Instances != 2 {
		t.Errorf("processes = %+v, want web with 2 instances", got)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"1B", 1, ""},
		{"2K", 2048, ""},
		{"2kb", 2048, ""},
		{"3MiB", 3 << 20, ""},
		{"1.5G", 1536 << 20, ""},
		{"1T", 1 << 40, ""},
		{"12", 0, "must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"},
		{"12Q", 0, "must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"},
		{"M", 0, "is not a number"},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("ParseBytes(%q) = %d, %q; want %d, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{1 << 20: "1M", 16384: "16K", 1000: "1000B", 3 << 30: "3G", 0: "0B"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestRenderOrdersKeysAsCloudController(t *testing.T) {
	cmd := "./run"
	state := AppState{
		Name:       "app",
		Env:        map[string]string{"B": "2", "A": "1"},
		Lifecycle:  LifecycleBuildpack,
		Buildpacks: []string{"go_buildpack"},
		Stack:      "ferry-test",
		Features:   map[string]bool{"revisions": true},
		Routes:     []Route{{Route: "app.example.com"}},
		Labels:     map[string]string{"tier": "web"},
		Processes: []ProcessState{{
			Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1, Command: &cmd,
		}},
	}
	state.Processes[0].HealthCheck.Type = "http"
	state.Processes[0].HealthCheck.Endpoint = "/health"
	state.Processes[0].HealthCheck.Timeout = 60
	state.Processes[0].Readiness.Type = "process"

	got, err := Render(state)
	if err != nil {
		t.Fatal(err)
	}
	want := `---
applications:
  - name: app
    env:
      A: "1"
      B: "2"
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
      - route: app.example.com
    metadata:
      labels:
        tier: web
    processes:
      - type: web
        instances: 2
        memory: 256M
        disk_quota: 1024M
        log-rate-limit-per-second: -1
        command: ./run
        health-check-type: http
        health-check-http-endpoint: /health
        readiness-health-check-type: process
        timeout: 60
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
	reparsed := mustParse(t, string(got))
	if reparsed.Applications[0].Name != "app" || !strings.Contains(string(got), "log-rate-limit-per-second: -1") {
		t.Errorf("rendered manifest does not parse back: %+v", reparsed.Applications[0])
	}
}

func TestParseUDPRouteProtocol(t *testing.T) {
	m := mustParse(t, "applications:\n- name: dns\n  routes:\n  - route: tcp.example.com:1053\n    protocol: udp\n")
	want := &Routes{RoutesSet: true, Routes: []Route{{Route: "tcp.example.com:1053", Protocol: "udp"}}}
	if diff := cmp.Diff(want, m.Applications[0].Routes); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}
