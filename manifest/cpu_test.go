package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCPU(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"2", 2000, nil},
		{"0.5", 500, nil},
		{"1.25", 1250, nil},
		{"0.001", 1, nil},
		{"500m", 500, nil},
		{" 750m ", 750, nil},
		{"2147483647m", MaxCPUMillicores, nil},
		{"2147483.647", MaxCPUMillicores, nil},
		{"2147483648m", 0, errCPUTooLarge},
		{"99999999999999999999", 0, errCPUTooLarge},
		{"0", 0, errCPUZero},
		{"0m", 0, errCPUZero},
		{"0.0", 0, errCPUZero},
		{"0.0005", 0, errCPUTooFine},
		{"1.2345", 0, errCPUTooFine},
		{"-1", 0, errCPUSyntax},
		{"500M", 0, errCPUSyntax},
		{"1.5m", 0, errCPUSyntax},
		{"2 cores", 0, errCPUSyntax},
		{".5", 0, errCPUSyntax},
		{"", 0, errCPUSyntax},
	}
	for _, tt := range tests {
		got, err := ParseCPU(tt.in)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatCPU(t *testing.T) {
	for in, want := range map[int64]any{1000: int64(1), 2000: int64(2), 500: "500m", 1500: "1500m", 1: "1m"} {
		if got := FormatCPU(in); got != want {
			t.Errorf("FormatCPU(%d) = %#v, want %#v", in, got, want)
		}
	}
}

func TestParseCPUKey(t *testing.T) {
	doc := `applications:
- name: app
  cpu: 500m
  processes:
  - type: worker
    cpu: 2
  - type: clock
    cpu: 0.25
  - type: batch
    cpu: "1.5"
  - type: reset
    cpu: default
- name: other
  instances: 1
`
	m := mustParse(t, doc)
	got := map[string]*int64{}
	for _, p := range m.Applications[0].Processes {
		got[p.Type] = p.CPUMillicores
		if !p.HasScale() {
			t.Errorf("process %s with cpu: HasScale() = false, want true", p.Type)
		}
	}
	want := map[string]*int64{"web": ptr[int64](500), "worker": ptr[int64](2000), "clock": ptr[int64](250),
		"batch": ptr[int64](1500), "reset": ptr[int64](0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CPU limits (-want +got):\n%s", diff)
	}
	if cpu := m.Applications[1].Processes[0].CPUMillicores; cpu != nil {
		t.Errorf("CPU limit without a cpu key = %d, want none", *cpu)
	}
}

func TestParseRejectsInvalidCPU(t *testing.T) {
	doc := `applications:
- name: a
  cpu: 0
  processes:
  - type: worker
    cpu: 1.0005
  - type: clock
    cpu: 2 cores
  - type: batch
    cpu: [1]
  - type: big
    cpu: 3000000
`
	_, err := Parse([]byte(doc))
	var merr *Error
	if !errors.As(err, &merr) || merr.Kind != ErrorInvalid {
		t.Fatalf("Parse error = %v, want an invalid manifest", err)
	}
	want := []string{
		`For application 'a': Process "web": Cpu must be greater than 0`,
		`For application 'a': Process "worker": Cpu must be a whole number of millicores: use at most 3 decimal places, or millicores such as 1250m`,
		`For application 'a': Process "clock": Cpu must be a number of CPUs such as 2 or 0.5, or of millicores such as 500m`,
		`For application 'a': Process "batch": Cpu must be a number of CPUs such as 2 or 0.5, or of millicores such as 500m`,
		`For application 'a': Process "big": Cpu must be less than or equal to 2147483647m`,
	}
	if diff := cmp.Diff(want, merr.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestRenderCPU(t *testing.T) {
	state := AppState{Name: "app", Lifecycle: LifecycleBuildpack, Processes: []ProcessState{
		{Type: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1, CPUMillicores: 1500},
		{Type: "worker", Instances: 1, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1, CPUMillicores: 2000},
		{Type: "clock", Instances: 1, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1},
	}}
	for i := range state.Processes {
		state.Processes[i].HealthCheck.Type, state.Processes[i].Readiness.Type = HealthCheckPort, HealthCheckProcess
	}
	got, err := Render(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"log-rate-limit-per-second: -1\n        cpu: 1500m\n", "cpu: 2\n"} {
		if !strings.Contains(string(got), line) {
			t.Errorf("rendered manifest lacks %q:\n%s", line, got)
		}
	}
	if n := strings.Count(string(got), "cpu:"); n != 2 {
		t.Errorf("rendered manifest has %d cpu keys, want 2: the process without a CPU limit has none", n)
	}

	reparsed := mustParse(t, string(got))
	var limits []int64
	for _, p := range reparsed.Applications[0].Processes {
		if p.CPUMillicores != nil {
			limits = append(limits, *p.CPUMillicores)
		}
	}
	if diff := cmp.Diff([]int64{1500, 2000}, limits); diff != "" {
		t.Errorf("CPU limits parsed back (-want +got):\n%s", diff)
	}
}

func TestDiffCPU(t *testing.T) {
	state := webState()
	state.Processes[1].CPUMillicores = 1500
	tests := []struct {
		name string
		doc  string
		want []Change
	}{
		{
			name: "same limit written differently",
			doc:  "applications:\n- name: app\n  processes:\n  - type: worker\n    cpu: 1.5\n",
		},
		{
			name: "changed limit",
			doc:  "applications:\n- name: app\n  processes:\n  - type: worker\n    cpu: 2000m\n",
			want: []Change{{Op: OpReplace, Path: "/applications/0/processes/0/cpu", Was: "1500m", Value: int64(2)}},
		},
		{
			name: "new limit on the web process",
			doc:  "applications:\n- name: app\n  cpu: 250m\n",
			want: []Change{{Op: OpAdd, Path: "/applications/0/cpu", Value: "250m"}},
		},
		{
			name: "reset to the default",
			doc:  "applications:\n- name: app\n  cpu: default\n  processes:\n  - type: worker\n    cpu: default\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(mustParse(t, tt.doc), []*AppState{state})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}
