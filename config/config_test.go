package config

import (
	"os"
	"path/filepath"
	"strings"
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

func TestLogsDefaults(t *testing.T) {
	cfg, err := Load(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Logs{MaxEntriesPerSource: 10000, MaxBytesPerSource: 4 << 20, MaxSources: 1000}
	if cfg.Logs != want {
		t.Errorf("logs = %+v, want %+v", cfg.Logs, want)
	}
}

func TestLogsFromFileAndEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ferry.yaml")
	os.WriteFile(file, []byte("logs:\n  max_entries_per_source: 500\n  max_bytes_per_source: 2MiB\n  max_sources: 30\n"+
		"  listen_address: 127.0.0.1:9023\n  external_url: https://logs.example.com/\n"), 0o600)

	cfg, err := Load([]string{"--config", file}, envOf(map[string]string{"FERRY_LOGS_MAX_SOURCES": "40"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Logs{MaxEntriesPerSource: 500, MaxBytesPerSource: 2 << 20, MaxSources: 40,
		ListenAddress: "127.0.0.1:9023", ExternalURL: "https://logs.example.com"}
	if cfg.Logs != want {
		t.Errorf("logs = %+v, want %+v", cfg.Logs, want)
	}
}

func TestLogsFromEnv(t *testing.T) {
	cfg, err := Load(nil, envOf(map[string]string{
		"FERRY_LOGS_MAX_ENTRIES_PER_SOURCE": "20",
		"FERRY_LOGS_MAX_BYTES_PER_SOURCE":   "65536",
		"FERRY_LOGS_MAX_SOURCES":            "3",
		"FERRY_LOGS_LISTEN_ADDRESS":         "0.0.0.0:9023",
		"FERRY_LOGS_EXTERNAL_URL":           "http://10.96.0.20:9023",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Logs{MaxEntriesPerSource: 20, MaxBytesPerSource: 65536, MaxSources: 3,
		ListenAddress: "0.0.0.0:9023", ExternalURL: "http://10.96.0.20:9023"}
	if cfg.Logs != want {
		t.Errorf("logs = %+v, want %+v", cfg.Logs, want)
	}
}

func TestLogsRejectsBadSettings(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"entries not a number": {"FERRY_LOGS_MAX_ENTRIES_PER_SOURCE": "many"},
		"zero entries":         {"FERRY_LOGS_MAX_ENTRIES_PER_SOURCE": "0"},
		"negative sources":     {"FERRY_LOGS_MAX_SOURCES": "-1"},
		"unknown size unit":    {"FERRY_LOGS_MAX_BYTES_PER_SOURCE": "4TB"},
		"zero bytes":           {"FERRY_LOGS_MAX_BYTES_PER_SOURCE": "0"},
		"relative url":         {"FERRY_LOGS_EXTERNAL_URL": "logs.example.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(nil, envOf(env)); err == nil {
				t.Fatal("invalid logs setting accepted")
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "4194304": 4 << 20, "512B": 512, "64KiB": 64 << 10, "4MiB": 4 << 20, "1GiB": 1 << 30,
		"4Mi": 4 << 20, "2 MiB": 2 << 20,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5MiB", "4MB", "9999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func TestCertificateKeyFromEnv(t *testing.T) {
	key := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0 to 31
	cfg, err := Load(nil, envOf(map[string]string{"FERRY_CERTIFICATE_KEY": key}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.CertificateKey != key {
		t.Errorf("routing.certificate_key not taken from FERRY_CERTIFICATE_KEY")
	}
}

func TestCertificateKeyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  string
	}{
		{"not base64", "not-base64-at-all!"},
		{"16 bytes", "AAECAwQFBgcICQoLDA0ODw=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, envOf(map[string]string{"FERRY_CERTIFICATE_KEY": tc.key}))
			if err == nil {
				t.Fatal("invalid certificate key accepted")
			}
			if strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q contains the key", err)
			}
			if !strings.Contains(err.Error(), "routing.certificate_key") {
				t.Errorf("error %q does not name routing.certificate_key", err)
			}
		})
	}
}
