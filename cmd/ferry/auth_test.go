package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// startAuth runs setUpAuth as a start of ferry would and returns the
// service and what it printed and logged.
func startAuth(t *testing.T, st *store.Store, cfg config.Config) (*auth.Service, string, string) {
	t.Helper()
	var stdout, logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	service, err := setUpAuth(context.Background(), cfg, st, logger, &stdout)
	if err != nil {
		t.Fatalf("setUpAuth: %v", err)
	}
	return service, stdout.String(), logs.String()
}

func TestSetUpAuthGeneratesAdminPassword(t *testing.T) {
	st := pgtest.NewStore(t)
	stateHome := t.TempDir()
	t.Setenv("XDG_STATE_HOME", stateHome)
	cfg := config.Default()
	ctx := context.Background()

	first, stdout, logs := startAuth(t, st, cfg)

	path := filepath.Join(stateHome, "ferry", adminPasswordFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("password file: %v", err)
	}
	password := strings.TrimSpace(string(data))
	if len(password) < 32 {
		t.Errorf("generated password has %d characters, want at least 32", len(password))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("password file mode = %o, want 600", perm)
	}
	if !strings.Contains(stdout, path) {
		t.Errorf("stdout %q does not name %s", stdout, path)
	}
	if strings.Contains(stdout, password) || strings.Contains(logs, password) {
		t.Error("the generated password was printed or logged")
	}

	admin, err := st.UAAUserByName(ctx, "admin", "uaa")
	if err != nil {
		t.Fatal(err)
	}
	if !first.CheckPassword(admin.PasswordHash, password) {
		t.Error("the password in the file does not match the admin's")
	}
	if !strings.Contains(strings.Join(auth.UserScopes(admin.Groups), " "), auth.ScopeAdmin) {
		t.Errorf("admin groups = %v, want %s", admin.Groups, auth.ScopeAdmin)
	}
	var ccUsers int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM users WHERE guid = $1`, admin.ID).Scan(&ccUsers); err != nil {
		t.Fatal(err)
	}
	if ccUsers != 1 {
		t.Errorf("Cloud Controller users with the admin's guid = %d, want 1", ccUsers)
	}

	// A restart keeps the key, so tokens stay valid, and keeps the admin.
	token, _, err := first.IssueAccessToken(auth.Actor{UserGUID: admin.ID, UserName: "admin", Origin: "uaa", ClientID: "cf",
		Scopes: []string{auth.ScopeRead}}, auth.GrantPassword)
	if err != nil {
		t.Fatal(err)
	}
	second, stdout, _ := startAuth(t, st, cfg)
	if second.KeyID() != first.KeyID() {
		t.Errorf("key id after restart = %s, want %s", second.KeyID(), first.KeyID())
	}
	if _, err := second.Verify(ctx, token); err != nil {
		t.Errorf("token from before the restart: %v", err)
	}
	if stdout != "" {
		t.Errorf("restart printed %q, want nothing", stdout)
	}
	again, err := st.UAAUserByName(ctx, "admin", "uaa")
	if err != nil || again.ID != admin.ID || again.PasswordHash != admin.PasswordHash {
		t.Errorf("admin after restart = %+v, %v; want unchanged", again, err)
	}
}

func TestSetUpAuthKeepsExistingAdminPassword(t *testing.T) {
	st := pgtest.NewStore(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg := config.Default()
	cfg.Admin.Password = "first-password"

	service, stdout, _ := startAuth(t, st, cfg)
	if stdout != "" {
		t.Errorf("configured password: stdout = %q, want nothing", stdout)
	}
	admin, err := st.UAAUserByName(context.Background(), "admin", "uaa")
	if err != nil {
		t.Fatal(err)
	}
	if !service.CheckPassword(admin.PasswordHash, "first-password") {
		t.Error("the configured password does not match")
	}

	cfg.Admin.Password = "second-password"
	_, _, logs := startAuth(t, st, cfg)
	again, err := st.UAAUserByName(context.Background(), "admin", "uaa")
	if err != nil {
		t.Fatal(err)
	}
	if again.PasswordHash != admin.PasswordHash {
		t.Error("a restart with another configured password changed the admin's password")
	}
	if !strings.Contains(logs, "configured password is not applied") {
		t.Errorf("logs = %q, want a warning about the unapplied password", logs)
	}
	if strings.Contains(logs, "second-password") || strings.Contains(logs, "first-password") {
		t.Error("a configured password was logged")
	}
}

func TestSetUpAuthRestoresAdminCloudControllerUser(t *testing.T) {
	st := pgtest.NewStore(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	cfg := config.Default()
	cfg.Admin.Password = "pw"
	ctx := context.Background()

	startAuth(t, st, cfg)
	admin, err := st.UAAUserByName(ctx, "admin", "uaa")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM users WHERE guid = $1`, admin.ID); err != nil {
		t.Fatal(err)
	}

	startAuth(t, st, cfg)
	var ccUsers int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM users WHERE guid = $1`, admin.ID).Scan(&ccUsers); err != nil {
		t.Fatal(err)
	}
	if ccUsers != 1 {
		t.Errorf("Cloud Controller users with the admin's guid = %d, want 1", ccUsers)
	}
}
