// Command registry serves an OCI distribution registry over plain HTTP for
// Ferry's local environment.
//
// It runs the request handlers of the CNCF distribution registry on its
// filesystem storage driver, so blobs, manifests and tags survive restarts.
// One process listens on every -listen address, which lets the host use
// 127.0.0.1 while pods use the bridge address. It has no authentication and
// no TLS, so it must only listen on addresses local to the machine.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/sirupsen/logrus"
)

// shutdownGrace bounds how long in-flight requests may run after SIGINT or
// SIGTERM before their connections are closed.
const shutdownGrace = 10 * time.Second

// listenAddrs collects the repeatable -listen flag.
type listenAddrs []string

func (l *listenAddrs) String() string { return strings.Join(*l, ",") }

func (l *listenAddrs) Set(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("invalid listen address %q: %w", addr, err)
	}
	*l = append(*l, addr)
	return nil
}

// options are the command-line settings of one registry process.
type options struct {
	listen   []string
	root     string
	logLevel string
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "registry: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, nil); err != nil {
		logrus.WithError(err).Error("registry stopped")
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var listen listenAddrs
	flags := flag.NewFlagSet("registry", flag.ContinueOnError)
	flags.Var(&listen, "listen", "host:port to serve plain HTTP on; repeat the flag to serve on several addresses (default 127.0.0.1:5000)")
	root := flags.String("root", "", "directory that stores blobs, manifests and tags (required)")
	logLevel := flags.String("log-level", "info", "log level: error, warn, info or debug")
	if err := flags.Parse(args); err != nil {
		return options{}, err
	}
	if flags.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q: all settings are flags", flags.Args())
	}
	if *root == "" {
		return options{}, errors.New("missing -root: name the storage directory")
	}
	if len(listen) == 0 {
		listen = listenAddrs{"127.0.0.1:5000"}
	}
	return options{listen: listen, root: *root, logLevel: *logLevel}, nil
}

// run serves the registry until ctx is cancelled. It binds every listen
// address before serving any, so a missing address fails the start instead of
// leaving a partial registry. When ready is not nil, run sends it the bound
// addresses once all listeners are open.
func run(ctx context.Context, opts options, ready chan<- []net.Addr) error {
	level, err := logrus.ParseLevel(opts.logLevel)
	if err != nil {
		return fmt.Errorf("invalid -log-level %q: %w", opts.logLevel, err)
	}
	logrus.SetLevel(level)
	logrus.SetFormatter(&logrus.TextFormatter{TimestampFormat: time.RFC3339Nano})

	if err := os.MkdirAll(opts.root, 0o755); err != nil {
		return fmt.Errorf("create storage directory: %w", err)
	}
	config, err := newConfiguration(opts.root)
	if err != nil {
		return err
	}

	listeners, err := listenAll(opts.listen)
	if err != nil {
		return err
	}
	app := handlers.NewApp(ctx, config)

	servers := make([]*http.Server, len(listeners))
	errs := make(chan error, len(listeners))
	var wg sync.WaitGroup
	addrs := make([]net.Addr, len(listeners))
	for i, listener := range listeners {
		servers[i] = &http.Server{Handler: app, ReadHeaderTimeout: 30 * time.Second}
		addrs[i] = listener.Addr()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := servers[i].Serve(listener); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serve on %s: %w", listener.Addr(), err)
			}
		}()
		logrus.WithField("addr", listener.Addr().String()).WithField("root", opts.root).Info("registry listening")
	}
	if ready != nil {
		ready <- addrs
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logrus.Info("registry shutting down")
	case serveErr = <-errs:
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, server := range servers {
		if err := server.Shutdown(shutdownCtx); err != nil {
			logrus.WithError(err).Warn("closing connections after the shutdown grace period")
			server.Close()
		}
	}
	wg.Wait()
	if err := app.Shutdown(); err != nil {
		logrus.WithError(err).Warn("registry application shutdown failed")
	}
	return serveErr
}

// newConfiguration returns the distribution configuration of the local
// registry: filesystem storage under root, deletes enabled (Ferry deletes
// packages and droplets), and a random secret for signing upload state. It
// goes through distribution's configuration parser, so every setting not
// named here gets the same default as in the stock registry binary, and
// REGISTRY_* environment variables override settings the same way.
func newConfiguration(root string) (*configuration.Configuration, error) {
	rootYAML, err := json.Marshal(root) // a JSON string is a valid YAML scalar
	if err != nil {
		return nil, err
	}
	document := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  headers:
    X-Content-Type-Options: [nosniff]
`, rootYAML)
	config, err := configuration.Parse(strings.NewReader(document))
	if err != nil {
		return nil, fmt.Errorf("parse registry configuration: %w", err)
	}

	// The secret signs the state of open blob uploads. It changes on every
	// start, so an upload that spans a restart fails with BLOB_UPLOAD_INVALID
	// and the client has to push again.
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate upload secret: %w", err)
	}
	config.HTTP.Secret = hex.EncodeToString(secret)
	return config, nil
}

func listenAll(addrs []string) ([]net.Listener, error) {
	listeners := make([]net.Listener, 0, len(addrs))
	for _, addr := range addrs {
		listener, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range listeners {
				open.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		listeners = append(listeners, listener)
	}
	return listeners, nil
}
