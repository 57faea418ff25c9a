// Command udpgateway implements Gateway API UDPRoutes (v1alpha2) for the
// local environment, where Traefik serves no UDPRoute. It serves the
// Gateways whose GatewayClass names its controller. For each UDP listener
// it binds 127.0.0.1:PORT. It forwards each client's datagrams to one ready
// endpoint of the backend Services of the UDPRoutes attached to that
// listener, and sends the replies back. It forwards only to addresses in
// --allowed-cidr. The UDP listeners bind only 127.0.0.1, and so does
// /healthz, whose --health-address must be a loopback address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

func main() {
	if err := run(); err != nil {
		slog.Error("udpgateway failed", "error", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "path of the kubeconfig file (env KUBECONFIG)")
	controllerName := flag.String("controller-name", "ferry.cloudfoundry.org/udp-gateway", "spec.controllerName of the GatewayClasses to serve")
	allowedCIDR := flag.String("allowed-cidr", "10.88.0.0/16", "IPv4 range of the backend addresses to forward to; other endpoints are ignored")
	healthAddress := flag.String("health-address", "127.0.0.1:8083", "loopback host:port of the /healthz endpoint; empty turns it off")
	maxSessions := flag.Int("max-sessions", 1024, "maximum number of client sessions per listener")
	idleTimeout := flag.Duration("idle-timeout", 60*time.Second, "time without datagrams after which a session ends")
	resync := flag.Duration("resync", 30*time.Second, "interval of full syncs in addition to the ones changes trigger")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	prefix, err := parseAllowedCIDR(*allowedCIDR)
	if err != nil {
		return err
	}
	if *maxSessions <= 0 || *idleTimeout <= 0 || *resync <= 0 {
		return fmt.Errorf("invalid flags: --max-sessions, --idle-timeout and --resync must be positive")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %q: %w", *kubeconfig, err)
	}
	cfg.UserAgent = "ferry-udpgateway"
	// The API server warns on every request for v1alpha2 UDPRoutes, which
	// this program reads on purpose; log each warning once.
	cfg.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create Kubernetes client: %w", err)
	}
	gateway, err := gatewayclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create Gateway API client: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *healthAddress != "" {
		if err := serveHealth(ctx, *healthAddress, log); err != nil {
			return err
		}
	}

	opts := ProxyOptions{MaxSessions: *maxSessions, IdleTimeout: *idleTimeout, AllowedCIDR: prefix, Logger: log}
	log.Info("starting", "controller_name", *controllerName, "allowed_cidr", prefix.String(), "max_sessions", *maxSessions, "idle_timeout", idleTimeout.String())
	err = NewController(kube, gateway, *controllerName, opts, *resync, log).Run(ctx)
	log.Info("stopped")
	return err
}

// serveHealth serves GET /healthz on a loopback address until ctx ends.
func serveHealth(ctx context.Context, address string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("invalid --health-address %q: %w", address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid --health-address %q: the host must be a loopback IP address", address)
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("listen on %s for /healthz: %w", address, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health endpoint failed", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		server.Close()
	}()
	return nil
}
