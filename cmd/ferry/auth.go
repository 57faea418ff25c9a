package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

// setUpAuth loads the token signing key and bootstraps the admin user.
//
// TODO: persist the signing key in PostgreSQL and bootstrap the admin user;
// until then every restart invalidates all tokens.
func setUpAuth(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, stdout io.Writer) (*auth.Service, error) {
	key, err := auth.GenerateKey()
	if err != nil {
		return nil, err
	}
	return auth.NewService(key, "ferry-key-1", auth.Config{
		Issuer:          cfg.ExternalURL + "/oauth/token",
		AccessTokenTTL:  cfg.Auth.AccessTokenTTL.Duration,
		RefreshTokenTTL: cfg.Auth.RefreshTokenTTL.Duration,
	}), nil
}
