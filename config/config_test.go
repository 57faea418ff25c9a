package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ferry.yaml")
	os.WriteFile(file, []byte("listen_address: 127.0.0.1:7000\ndatabase_url: postgres://file/db\nauth:\n  access_token_ttl: 5m\n"), 0o600)

	cfg, err := Load([]string{"--config", file, "--database-url", "postgres://flag/db"},
		envOf(map[string]string{"FERRY_DATABASE_URL": "postgres://env/db", "FERRY_ADMIN_PASSWORD": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddress != "127.0.0.1:7000" {
		t.Errorf("listen = %q, want the file's", cfg.ListenAddress)
	}
	if cfg.DatabaseURL != "postgres://flag/db" {
		t.Errorf("database = %q, want the flag's", cfg.DatabaseURL)
	}
	if cfg.Admin.Password != "s3cret" {
		t.Errorf("admin password not taken from env")
	}
	if cfg.Auth.AccessTokenTTL.Duration != 5*time.Minute {
		t.Errorf("access ttl = %v, want 5m", cfg.Auth.AccessTokenTTL)
	}
	if cfg.ExternalURL != "http://127.0.0.1:7000" {
		t.Errorf("external url = %q, want derived from listen address", cfg.ExternalURL)
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ferry.yaml")
	os.WriteFile(file, []byte("listen_adress: 127.0.0.1:7000\n"), 0o600)

	if _, err := Load([]string{"--config", file}, envOf(nil)); err == nil {
		t.Fatal("misspelled key accepted")
	}
}

func TestValidateNamesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"relative external url", map[string]string{"FERRY_EXTERNAL_URL": "api.example.com"}},
		{"bad log level", map[string]string{"FERRY_LOG_LEVEL": "loud"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Load(nil, envOf(tc.env)); err == nil {
				t.Fatal("invalid configuration accepted")
			}
		})
	}
}

func TestLoadBuildersFromEnv(t *testing.T) {
	cfg, err := Load(nil, envOf(map[string]string{"FERRY_STAGING_BUILDERS": "ferry-test=reg/builder:1, other=reg/b2@sha256:abc"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Builder{{Stack: "ferry-test", Image: "reg/builder:1"}, {Stack: "other", Image: "reg/b2@sha256:abc"}}
	if len(cfg.Staging.Builders) != 2 || cfg.Staging.Builders[0] != want[0] || cfg.Staging.Builders[1] != want[1] {
		t.Errorf("builders = %+v, want %+v", cfg.Staging.Builders, want)
	}

	if _, err := Load(nil, envOf(map[string]string{"FERRY_STAGING_BUILDERS": "no-image"})); err == nil {
		t.Error("entry without image accepted")
	}
}
