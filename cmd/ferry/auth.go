package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

// adminPasswordFile is the name of the file, under the state directory, that
// receives a generated admin password.
const adminPasswordFile = "admin-password"

// setUpAuth loads the token signing key from the database, creating it on
// the very first start, and bootstraps the admin user. Tokens therefore
// survive restarts and are valid on every replica.
func setUpAuth(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, stdout io.Writer) (*auth.Service, error) {
	service, err := newAuthService(ctx, cfg, st, logger)
	if err != nil {
		return nil, err
	}
	if err := bootstrapAdmin(ctx, cfg.Admin, st, service, logger, stdout); err != nil {
		return nil, err
	}
	return service, nil
}

// newAuthService returns the token service with the stored signing key,
// creating the key on the very first start. The controller uses it alone
// to verify the tokens of log-cache reads.
func newAuthService(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger) (*auth.Service, error) {
	key, kid, err := loadSigningKey(ctx, st, logger)
	if err != nil {
		return nil, err
	}

	clients := make([]auth.Client, 0, len(cfg.Auth.Clients))
	for _, c := range cfg.Auth.Clients {
		clients = append(clients, auth.Client{ID: c.ID, Secret: c.Secret, Scopes: c.Scopes})
	}
	return auth.NewService(key, kid, auth.Config{
		Issuer:          cfg.ExternalURL + "/oauth/token",
		AccessTokenTTL:  cfg.Auth.AccessTokenTTL.Duration,
		RefreshTokenTTL: cfg.Auth.RefreshTokenTTL.Duration,
		Clients:         clients,
		Revocations:     st,
	}), nil
}

// loadSigningKey returns the active signing key, generating and storing one
// when there is none. Replicas starting together may each generate a key,
// but the store keeps one and every replica uses that one.
func loadSigningKey(ctx context.Context, st *store.Store, logger *slog.Logger) (*rsa.PrivateKey, string, error) {
	stored, err := st.ActiveSigningKey(ctx)
	if errors.Is(err, store.ErrNotFound) {
		stored, err = createSigningKey(ctx, st)
		if err == nil {
			logger.Info("token signing key ready", "kid", stored.KID)
		}
	}
	if err != nil {
		return nil, "", err
	}
	key, err := auth.DecodeKey([]byte(stored.PrivateKeyPEM))
	if err != nil {
		return nil, "", fmt.Errorf("signing key %s: %w", stored.KID, err)
	}
	return key, stored.KID, nil
}

func createSigningKey(ctx context.Context, st *store.Store) (store.SigningKey, error) {
	key, err := auth.GenerateKey()
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	pemBytes, err := auth.EncodeKey(key)
	if err != nil {
		return store.SigningKey{}, err
	}
	return st.EnsureSigningKey(ctx, store.SigningKey{KID: "ferry-" + uuid.NewString()[:8], PrivateKeyPEM: string(pemBytes)})
}

// bootstrapAdmin creates the admin user on first start: a UAA user of origin
// "uaa" with the admin groups, and a Cloud Controller user with the same
// guid. An existing admin keeps its password, even when the configured
// password differs, because Ferry never resets a password silently. Without
// a configured password, a random one is written to a file readable only by
// the current user, and only the file's path is printed.
func bootstrapAdmin(ctx context.Context, admin config.Admin, st *store.Store, service *auth.Service, logger *slog.Logger, stdout io.Writer) error {
	existing, err := st.UAAUserByName(ctx, admin.Username, "uaa")
	switch {
	case err == nil:
		// Restores the Cloud Controller record if it was deleted.
		if _, _, err := st.EnsureAdminUser(ctx, existing); err != nil {
			return err
		}
		if admin.Password != "" && !service.CheckPassword(existing.PasswordHash, admin.Password) {
			logger.Warn("admin user exists with another password; the configured password is not applied", "username", admin.Username)
		}
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}

	password, generated := admin.Password, false
	if password == "" {
		if password, err = randomPassword(); err != nil {
			return err
		}
		generated = true
	}
	hash, err := service.HashPassword(password)
	if err != nil {
		return fmt.Errorf("admin password: %w", err)
	}
	user, created, err := st.EnsureAdminUser(ctx, store.UAAUser{
		ID:           uuid.NewString(),
		Username:     admin.Username,
		Origin:       "uaa",
		PasswordHash: hash,
		Groups:       auth.AdminGroups,
	})
	if err != nil {
		return err
	}
	if !created {
		// Another replica created the admin at the same moment.
		return nil
	}
	logger.Info("admin user created", "username", user.Username, "user_guid", user.ID)

	if generated {
		path, err := writeAdminPassword(password)
		if err != nil {
			// The password is lost, so no one could log in as this admin.
			// Delete it so that the next start tries again.
			if _, delErr := st.DeleteUAAUser(ctx, user.ID); delErr != nil {
				logger.Error("removing the admin user failed", "user_guid", user.ID, "error", delErr)
			}
			return fmt.Errorf("save generated admin password: %w (set FERRY_ADMIN_PASSWORD, or make the state directory writable)", err)
		}
		fmt.Fprintf(stdout, "Generated a password for admin user %q; it is in %s\n", user.Username, path)
	}
	return nil
}

// randomPassword returns 32 URL-safe characters from 24 random bytes.
func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate admin password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeAdminPassword writes password to the admin password file in the
// state directory, readable by the owner only, and returns the file's path.
func writeAdminPassword(password string) (string, error) {
	dir, err := stateDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, adminPasswordFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	// An older file may have wider permissions, which OpenFile keeps.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", err
	}
	if _, err := f.WriteString(password + "\n"); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// stateDir returns $XDG_STATE_HOME/ferry, or ~/.local/state/ferry when
// XDG_STATE_HOME is unset or relative, as the XDG Base Directory
// Specification defines the state directory.
func stateDir() (string, error) {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "ferry"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state directory: %w (set XDG_STATE_HOME)", err)
	}
	return filepath.Join(home, ".local", "state", "ferry"), nil
}
