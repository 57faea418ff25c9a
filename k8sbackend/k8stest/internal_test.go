package k8stest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNamespacePrefix(t *testing.T) {
	tests := []struct {
		testName string
		want     string
	}{
		{"TestRoutes", "testroutes-"},
		{"TestRoutes/TCP_route_on_port_1024", "testroutes-tcp-route-on-port-1024-"},
		{"TestX/__weird__//name", "testx-weird-name-"},
		{"/// ___", "test-"},
		{strings.Repeat("a", 70), strings.Repeat("a", maxNamespacePrefix) + "-"},
		{strings.Repeat("a", maxNamespacePrefix-1) + "/bc", strings.Repeat("a", maxNamespacePrefix-1) + "-"},
	}
	for _, tt := range tests {
		if got := namespacePrefix(tt.testName); got != tt.want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", tt.testName, got, tt.want)
		}
	}
}

func TestWaitReadyReportsEarlyExit(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "component.log")
	p, err := startProcess("component", logPath, "/bin/sh", []string{"-c", "echo listen failed: boom; exit 3"}, os.Environ())
	if err != nil {
		t.Fatalf("start process: %v", err)
	}

	err = p.waitReady("probe", func() error { return errors.New("not ready") })
	if err == nil {
		t.Fatal("waitReady succeeded for a process that exited")
	}
	for _, want := range []string{"component exited", "exit status 3", logPath, "listen failed: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("waitReady error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, errPortInUse) {
		t.Errorf("waitReady error %q wraps errPortInUse without a port conflict in the log", err)
	}
}

func TestWaitReadyDetectsPortConflict(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "component.log")
	script := "echo 'listen tcp 127.0.0.1:2379: bind: address already in use'; exit 1"
	p, err := startProcess("component", logPath, "/bin/sh", []string{"-c", script}, os.Environ())
	if err != nil {
		t.Fatalf("start process: %v", err)
	}

	err = p.waitReady("probe", func() error { return errors.New("not ready") })
	if !errors.Is(err, errPortInUse) {
		t.Errorf("waitReady error = %v, want one wrapping errPortInUse", err)
	}
}

func TestStopEndsRunningProcess(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "component.log")
	p, err := startProcess("component", logPath, "/bin/sleep", []string{"600"}, os.Environ())
	if err != nil {
		t.Fatalf("start process: %v", err)
	}
	p.stop()
	if !p.exited() {
		t.Error("process still running after stop")
	}
}
