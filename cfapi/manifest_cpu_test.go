package cfapi

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cpuLimits returns the cpu_in_millicores of an app's processes by type,
// with -1 for null.
func (f *appFixture) cpuLimits(appGUID string) map[string]int {
	f.t.Helper()
	out := map[string]int{}
	for processType, p := range f.processesOf(appGUID) {
		out[processType] = -1
		if p.CPUInMillicores != nil {
			out[processType] = *p.CPUInMillicores
		}
	}
	return out
}

func TestApplyManifestCPU(t *testing.T) {
	f := newAppFixture(t)
	f.mustApply(`applications:
- name: cpu-app
  cpu: 500m
  processes:
  - type: worker
    cpu: 2
  - type: clock
    instances: 1
`)
	guid := f.appNamed("cpu-app").GUID
	if diff := cmp.Diff(map[string]int{"web": 500, "worker": 2000, "clock": -1}, f.cpuLimits(guid)); diff != "" {
		t.Errorf("cpu_in_millicores (-want +got):\n%s", diff)
	}
	raw := f.env.do(http.MethodGet, "/v3/apps/"+guid+"/processes", f.admin, nil).expect(http.StatusOK)
	if !strings.Contains(string(raw.Body), `"cpu_in_millicores":null`) {
		t.Errorf("process list lacks cpu_in_millicores null for the process without a CPU limit: %s", raw.Body)
	}

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
	manifest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cpu: 500m\n", "cpu: 2\n"} {
		if !strings.Contains(string(manifest), want) {
			t.Errorf("app manifest lacks %q:\n%s", want, manifest)
		}
	}

	f.mustApply("applications:\n- name: cpu-app\n  cpu: default\n  processes:\n  - type: worker\n    cpu: 1.5\n")
	if diff := cmp.Diff(map[string]int{"web": -1, "worker": 1500, "clock": -1}, f.cpuLimits(guid)); diff != "" {
		t.Errorf("cpu_in_millicores after a reset and a change (-want +got):\n%s", diff)
	}
}

func TestApplyManifestRejectsInvalidCPU(t *testing.T) {
	f := newAppFixture(t)
	f.mustApply("applications:\n- name: existing\n  cpu: 250m\n")
	for _, tt := range []struct {
		name, doc, detail string
	}{
		{"zero", "applications:\n- name: existing\n  cpu: 0\n",
			`For application 'existing': Process "web": Cpu must be greater than 0`},
		{"unit", "applications:\n- name: existing\n  processes:\n  - type: web\n    cpu: 500M\n",
			`For application 'existing': Process "web": Cpu must be a number of CPUs such as 2 or 0.5, or of millicores such as 500m`},
		{"finer than a millicore", "applications:\n- name: existing\n  cpu: 0.0001\n",
			`For application 'existing': Process "web": Cpu must be a whole number of millicores: use at most 3 decimal places, or millicores such as 1250m`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.env.postYAML("/v3/spaces/"+f.spaceGUID+"/actions/apply_manifest", f.developer, tt.doc)
			assertTenancyError(t, resp, http.StatusUnprocessableEntity, 10008, tt.detail)
		})
	}
	if diff := cmp.Diff(map[string]int{"web": 250}, f.cpuLimits(f.appNamed("existing").GUID)); diff != "" {
		t.Errorf("cpu_in_millicores after rejected manifests (-want +got):\n%s", diff)
	}
}
