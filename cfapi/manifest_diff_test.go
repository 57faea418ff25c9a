package cfapi

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestManifestDiff(t *testing.T) {
	f := newAppFixture(t)
	f.mustApply(`applications:
- name: existing
  instances: 2
  memory: 256M
  env:
    MODE: prod
  processes:
  - type: worker
    command: ./work
`)
	path := "/v3/spaces/" + f.spaceGUID + "/manifest_diff"
	tests := []struct {
		name string
		doc  string
		want []map[string]any
	}{
		{
			name: "unchanged",
			doc:  "applications:\n- name: existing\n  instances: 2\n  env:\n    MODE: prod\n",
			want: []map[string]any{},
		},
		{
			name: "changed scale, env and worker",
			doc: `applications:
- name: existing
  instances: 3
  env:
    MODE: dev
  processes:
  - type: worker
    command: ./work --fast
    memory: 2G
`,
			want: []map[string]any{
				{"op": "replace", "path": "/applications/0/env/MODE", "was": "prod", "value": "dev"},
				{"op": "replace", "path": "/applications/0/instances", "was": float64(2), "value": float64(3)},
				{"op": "replace", "path": "/applications/0/processes/0/command", "was": "./work", "value": "./work --fast"},
				{"op": "replace", "path": "/applications/0/processes/0/memory", "was": "1024M", "value": "2048M"},
			},
		},
		{
			name: "new app",
			doc:  "applications:\n- name: brand-new\n  default-route: true\n",
			want: []map[string]any{
				{"op": "add", "path": "/applications/0/default-route", "value": true},
				{"op": "add", "path": "/applications/0/name", "value": "brand-new"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Diff []map[string]any `json:"diff"`
			}
			f.env.postYAML(path, f.developer, tt.doc).expect(http.StatusCreated).decode(&body)
			if diff := cmp.Diff(tt.want, body.Diff); diff != "" {
				t.Errorf("diff (-want +got):\n%s", diff)
			}
		})
	}

	raw := f.env.postYAML(path, f.developer, "applications:\n- name: existing\n  instances: 2\n").expect(http.StatusCreated).object()
	if list, isList := raw["diff"].([]any); !isList || len(list) != 0 {
		t.Errorf("diff of an unchanged app = %v, want []", raw["diff"])
	}
}

func TestManifestDiffErrors(t *testing.T) {
	f := newAppFixture(t)
	path := "/v3/spaces/" + f.spaceGUID + "/manifest_diff"
	tests := []struct {
		name   string
		token  string
		doc    string
		status int
		code   int
		detail string
	}{
		{"invalid manifest", f.developer, "applications:\n- name: a\n  memory: 12\n", 422, 10008,
			`For application 'a': Process "web": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB`},
		{"no applications", f.developer, "applications: []\n", 422, 10008, "Cannot parse manifest with no 'applications' field."},
		{"docker disabled", f.developer, "applications:\n- name: d\n  docker: {image: nginx}\n", 422, 10008,
			"For application 'd': Feature Disabled: diego_docker"},
		{"not yaml", f.developer, "applications: [", 400, 1001, "Request invalid due to parse error: invalid request body"},
		{"auditor", f.auditor, "applications:\n- name: a\n", 403, 10003, "You are not authorized to perform the requested action"},
		{"stranger", f.stranger, "applications:\n- name: a\n", 404, 10010, "Space not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertTenancyError(t, f.env.postYAML(path, tt.token, tt.doc), tt.status, tt.code, tt.detail)
		})
	}
	if n := f.count(`SELECT count(*) FROM apps`); n != 0 {
		t.Errorf("manifest_diff created %d apps", n)
	}
}
