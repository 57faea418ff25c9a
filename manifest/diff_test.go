package manifest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func webState() *AppState {
	cmd := "./run"
	s := &AppState{
		Name:       "app",
		Env:        map[string]string{"MODE": "prod", "OTHER": "kept"},
		Lifecycle:  LifecycleBuildpack,
		Buildpacks: []string{"go_buildpack"},
		Stack:      "ferry-test",
		Features:   map[string]bool{"revisions": true},
		Labels:     map[string]string{"tier": "web", "team": "a"},
		Processes: []ProcessState{
			{Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1},
			{Type: "worker", Instances: 1, MemoryMB: 512, DiskMB: 1024, LogRateLimit: 1 << 20, Command: &cmd},
		},
	}
	s.Processes[0].HealthCheck.Type = "port"
	s.Processes[0].Readiness.Type = "process"
	s.Processes[1].HealthCheck.Type = "process"
	s.Processes[1].Readiness.Type = "process"
	return s
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		state *AppState
		want  []Change
	}{
		{
			name:  "new app adds every key",
			doc:   "applications:\n- name: fresh\n  instances: 2\n  default-route: true\n  path: /tmp/x\n",
			state: nil,
			want: []Change{
				{Op: OpAdd, Path: "/applications/0/default-route", Value: true},
				{Op: OpAdd, Path: "/applications/0/instances", Value: int64(2)},
				{Op: OpAdd, Path: "/applications/0/name", Value: "fresh"},
			},
		},
		{
			name:  "unchanged app",
			doc:   "applications:\n- name: app\n  instances: 2\n  memory: 1G\n  stack: ferry-test\n  env:\n    MODE: prod\n",
			state: webState(),
			want:  nil,
		},
		{
			name:  "replaced values",
			doc:   "applications:\n- name: app\n  instances: 3\n  stack: other\n  env:\n    MODE: 42\n  buildpacks: [java_buildpack]\n",
			state: webState(),
			want: []Change{
				{Op: OpReplace, Path: "/applications/0/buildpacks/0", Was: "go_buildpack", Value: "java_buildpack"},
				{Op: OpReplace, Path: "/applications/0/env/MODE", Was: "prod", Value: "42"},
				{Op: OpReplace, Path: "/applications/0/instances", Was: int64(2), Value: int64(3)},
				{Op: OpReplace, Path: "/applications/0/stack", Was: "ferry-test", Value: "other"},
			},
		},
		{
			name: "processes compare only listed types and keys",
			doc: `applications:
- name: app
  processes:
  - type: worker
    memory: 1G
    instances: 1
    log-rate-limit-per-second: 1024K
  - type: clock
    instances: 1
`,
			state: webState(),
			want: []Change{
				{Op: OpReplace, Path: "/applications/0/processes/0/memory", Was: "512M", Value: "1024M"},
				{Op: OpAdd, Path: "/applications/0/processes/1", Value: map[string]any{"type": "clock", "instances": int64(1)}},
			},
		},
		{
			name:  "metadata and features compare named keys",
			doc:   "applications:\n- name: app\n  metadata:\n    labels:\n      tier: api\n  features:\n    revisions: false\n",
			state: webState(),
			want: []Change{
				{Op: OpReplace, Path: "/applications/0/features/revisions", Was: true, Value: false},
				{Op: OpReplace, Path: "/applications/0/metadata/labels/tier", Was: "web", Value: "api"},
			},
		},
		{
			name:  "routes and commands",
			doc:   "applications:\n- name: app\n  command: ./serve\n  routes:\n  - route: app.example.com\n",
			state: webState(),
			want: []Change{
				{Op: OpAdd, Path: "/applications/0/command", Value: "./serve"},
				{Op: OpAdd, Path: "/applications/0/routes", Value: []any{map[string]any{"route": "app.example.com"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, tt.doc)
			got := Diff(m, []*AppState{tt.state})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffLists(t *testing.T) {
	got := diffValues("/l", []any{"a", "b", "c"}, []any{"b", "x", "c", "d"})
	want := []Change{
		{Op: OpAdd, Path: "/l/1", Value: "x"},
		{Op: OpAdd, Path: "/l/3", Value: "d"},
		{Op: OpRemove, Path: "/l/0", Was: "a"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffValues (-want +got):\n%s", diff)
	}
}

func TestDiffIndexesApplications(t *testing.T) {
	m := mustParse(t, "applications:\n- name: app\n  instances: 2\n- name: other\n")
	got := Diff(m, []*AppState{webState(), nil})
	want := []Change{{Op: OpAdd, Path: "/applications/1/name", Value: "other"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
}
