// Command ferry runs Ferry: the Cloud Foundry API server and, later, the
// controller that runs apps on Kubernetes.
//
//	ferry serve        API (and controller) in one process, migrating first
//	ferry api          API only
//	ferry controller   controller only: stages builds on Kubernetes
//	ferry stage-fetch  unpack a package image (the staging init container)
//	ferry migrate      apply database migrations and exit
//	ferry version      print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferrycf/ferry/cfapi"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/tlscert"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: ferry <command> [flags]

commands:
  serve        run the API and, when Kubernetes is configured, the controller
  api          run the API only
  controller   run the controller only (needs KUBECONFIG or in-cluster credentials)
  stage-fetch  unpack a package for staging; staging Jobs run it
  migrate      apply database migrations and exit
  version      print the version

Run "ferry <command> -h" for the flags of a command.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferry:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]

	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "ferry", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "stage-fetch":
		return runStageFetch(rest, stdout, stderr)
	case "serve", "api", "migrate", "controller":
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}

	cfg, err := config.Load(rest, os.Getenv)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.Log, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := openStore(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer st.Close()

	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if cmd == "migrate" {
		logger.Info("migrations applied")
		return nil
	}
	if err := st.EnsureDefaultRouting(ctx, cfg.Routing.DefaultDomain, cfg.Routing.InternalDomain, cfg.Routing.TCPReservablePorts); err != nil {
		return err
	}
	if cmd == "controller" {
		return runControllerCommand(ctx, cfg, st, logger)
	}
	var logs *logcache.Store
	if cmd == "serve" {
		logs = newLogStore(cfg)
		startController(ctx, cfg, st, logger, logs)
	}
	return serveAPI(ctx, cfg, st, logger, stdout, logs)
}

// openStore connects to PostgreSQL, retrying for a while so Ferry can start
// together with its database.
func openStore(ctx context.Context, url string, logger *slog.Logger) (*store.Store, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := store.Open(ctx, url)
		if err == nil {
			return st, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%w (check FERRY_DATABASE_URL)", err)
		}
		logger.Warn("database not reachable yet, retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// serveAPI serves the API until ctx ends. With logs (`ferry serve`) it also
// serves the log-cache read API over them, on the same listener and on
// logs.listen_address when that is set.
func serveAPI(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, stdout io.Writer, logs *logcache.Store) error {
	authService, err := setUpAuth(ctx, cfg, st, logger, stdout)
	if err != nil {
		return err
	}

	runner := jobs.NewRunner(st, logger)
	images := registry.New(cfg.Registry)
	builders, docker := stagingBackends(cfg, images, logger)
	instances, restarter := runtimeBackends(ctx, cfg, logger)
	sealer, keyPath, generated, err := tlscert.LoadSealer(cfg.Routing.CertificateKey, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}
	if generated {
		logger.Info("certificate key generated; API replicas must share one key in routing.certificate_key", "path", keyPath)
	}
	api := cfapi.New(st, authService, runner, logger, cfapi.Config{ExternalURL: cfg.ExternalURL, Staging: cfg.Staging,
		Registry: images, DataDir: cfg.DataDir, Builders: builders, Docker: docker,
		Instances: instances, Restarter: restarter, LogCacheURL: cfg.Logs.ExternalURL, CertificateSealer: sealer})

	handler, err := addLogCache(ctx, cfg, api.Handler(), logs, authService, st, logger)
	if err != nil {
		return err
	}

	listener, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddress, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	go runner.Run(ctx)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(listener) }()
	logger.Info("ferry api listening", "address", listener.Addr().String(), "external_url", cfg.ExternalURL, "version", version)
	fmt.Fprintf(stdout, "Ferry API: %s\nLog in with: cf api %s && cf login -u %s\n", cfg.ExternalURL, cfg.ExternalURL, cfg.Admin.Username)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	logger.Info("shutting down")
	return srv.Shutdown(shutdownCtx)
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
