package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// logCachePrefix is the path prefix of the log-cache read API. The Cloud
// Foundry API has no path under it, so both can share one listener.
const logCachePrefix = "/api/v1/"

// newLogStore returns the in-memory log store sized by cfg.Logs.
func newLogStore(cfg config.Config) *logcache.Store {
	return logcache.NewStore(logcache.Limits{
		MaxEntriesPerSource: cfg.Logs.MaxEntriesPerSource,
		MaxBytesPerSource:   int64(cfg.Logs.MaxBytesPerSource),
		MaxSources:          cfg.Logs.MaxSources,
	})
}

// newLogHandler returns the log-cache read API over logs. It verifies tokens
// with tokens and decides who may read an app's lines from st.
func newLogHandler(logs *logcache.Store, tokens *auth.Service, st *store.Store, logger *slog.Logger) http.Handler {
	return logcache.NewHandler(logs, logcache.NewAccess(tokens, st, logcache.DefaultAccessTTL), logger)
}

// withLogCache serves paths under logCachePrefix with logs and every other
// path with api.
func withLogCache(api, logs http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, logCachePrefix) {
			logs.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// addLogCache returns api with the log-cache read API over logs added under
// logCachePrefix, and serves that API on logs.listen_address as well when it
// is set. Without logs (`ferry api`) it returns api unchanged.
func addLogCache(ctx context.Context, cfg config.Config, api http.Handler, logs *logcache.Store,
	tokens *auth.Service, st *store.Store, logger *slog.Logger) (http.Handler, error) {
	if logs == nil {
		if cfg.Logs.ExternalURL == "" {
			logger.Warn("logs.external_url is not set: the root document sends the cf CLI to this API for logs, " +
				"which only `ferry serve` serves; set it to the URL of the controller's logs.listen_address")
		}
		return api, nil
	}

	logAPI := newLogHandler(logs, tokens, st, logger)
	if cfg.Logs.ListenAddress != "" {
		if err := startLogServer(ctx, cfg.Logs.ListenAddress, logAPI, logger); err != nil {
			return nil, err
		}
	}
	return withLogCache(api, logAPI), nil
}

// startLogServer listens on address and serves h there until ctx ends. A
// listen failure is returned at once; a later serve failure is logged.
func startLogServer(ctx context.Context, address string, h http.Handler, logger *slog.Logger) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("listen on %s (logs.listen_address): %w", address, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := srv.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("log-cache server stopped", "address", listener.Addr().String(), "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	logger.Info("log-cache read API listening", "address", listener.Addr().String())
	return nil
}

// runControllerCommand is `ferry controller`: the controller, and the
// log-cache read API on logs.listen_address when it is set. Only the
// leader collects lines, so only the leader's API returns any.
func runControllerCommand(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger) error {
	logs := newLogStore(cfg)
	if cfg.Logs.ListenAddress == "" {
		logger.Warn("logs.listen_address is not set: this controller does not serve the log-cache read API")
	} else {
		tokens, err := newAuthService(ctx, cfg, st, logger)
		if err != nil {
			return err
		}
		if err := startLogServer(ctx, cfg.Logs.ListenAddress, newLogHandler(logs, tokens, st, logger), logger); err != nil {
			return err
		}
	}
	return runController(ctx, cfg, st, logger, logs)
}
