package envtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSettings(t *testing.T) {
	out := []byte("KUBECONFIG=/state/kubeconfigs/admin.kubeconfig\n" +
		"FERRY_DATABASE_URL=postgres://ferry:pw@127.0.0.1:5432/ferry?sslmode=disable\n\n")
	got, err := parseSettings(out)
	if err != nil {
		t.Fatalf("parseSettings: %v", err)
	}
	want := map[string]string{
		"KUBECONFIG":         "/state/kubeconfigs/admin.kubeconfig",
		"FERRY_DATABASE_URL": "postgres://ferry:pw@127.0.0.1:5432/ferry?sslmode=disable",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSettings (-want +got):\n%s", diff)
	}
}

func TestParseSettingsInvalidLine(t *testing.T) {
	if _, err := parseSettings([]byte("export KUBECONFIG\n")); err == nil {
		t.Error("parseSettings accepted a line without '='")
	}
}

func TestNewEnvironmentMissingSettings(t *testing.T) {
	_, err := newEnvironment("/repo", map[string]string{"KUBECONFIG": "/k"})
	if err == nil {
		t.Fatal("newEnvironment accepted settings without the registry, gateway and database")
	}
}

func TestApplyAliasesPrefersNewerNames(t *testing.T) {
	settings := map[string]string{
		"FERRY_GATEWAY_HTTP":       "127.0.0.1:8080",
		"FERRY_GATEWAY_HTTPS_ADDR": "127.0.0.1:9443",
	}
	applyAliases(settings)
	want := map[string]string{
		"FERRY_GATEWAY_HTTP":       "127.0.0.1:8080",
		"FERRY_GATEWAY_HTTPS":      "127.0.0.1:9443",
		"FERRY_GATEWAY_HTTPS_ADDR": "127.0.0.1:9443",
	}
	if diff := cmp.Diff(want, settings); diff != "" {
		t.Errorf("applyAliases (-want +got):\n%s", diff)
	}
}
