package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/cfapi"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/k8sbackend"
	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/tlscert"
)

// kubernetesConfigured reports whether Ferry can reach a cluster: a
// kubeconfig is set, or it runs in a pod.
func kubernetesConfigured(cfg config.Config) bool {
	return cfg.Kubernetes.Kubeconfig != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// kubernetesClient builds a clientset from the configured kubeconfig, or
// from the pod's service account when none is set.
func kubernetesClient(cfg config.Config) (kubernetes.Interface, error) {
	return kubernetesClientWithLimits(cfg, 0, 0)
}

// Request limits of the log collector's client. It opens one log stream
// per container, about two per container when a new leader starts, so
// client-go's default of 5 requests a second would keep a busy cluster's
// logs, and the reconcilers sharing that limit, waiting for minutes.
const (
	logClientQPS   = 50
	logClientBurst = 100
)

// kubernetesClientWithLimits is kubernetesClient with client-go's request
// rate limit set to qps and burst; zero keeps client-go's defaults.
func kubernetesClientWithLimits(cfg config.Config, qps float32, burst int) (kubernetes.Interface, error) {
	restConfig, err := kubernetesRESTConfig(cfg, qps, burst)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client, nil
}

// gatewayClient returns a Gateway API client when routing is enabled, and
// nil otherwise.
func gatewayClient(cfg config.Config) (gatewayclient.Interface, error) {
	if !cfg.Routing.Enabled {
		return nil, nil
	}
	restConfig, err := kubernetesRESTConfig(cfg, 0, 0)
	if err != nil {
		return nil, err
	}
	// The API server warns on every request for TCPRoutes and UDPRoutes
	// that v1alpha2 is deprecated, and the reconciler lists them in every
	// space on every sync, so each distinct warning is printed once.
	restConfig.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	client, err := gatewayclient.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("gateway API client: %w", err)
	}
	return client, nil
}

// kubernetesRESTConfig is the client configuration of kubernetesClientWithLimits.
func kubernetesRESTConfig(cfg config.Config, qps float32, burst int) (*rest.Config, error) {
	var restConfig *rest.Config
	var err error
	if cfg.Kubernetes.Kubeconfig != "" {
		restConfig, err = clientcmd.BuildConfigFromFlags("", cfg.Kubernetes.Kubeconfig)
	} else {
		restConfig, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration (kubernetes.kubeconfig or KUBECONFIG): %w", err)
	}
	restConfig.UserAgent = "ferry/" + version
	restConfig.QPS, restConfig.Burst = qps, burst
	return restConfig, nil
}

// stagingCatalog returns the builder catalog of the configured stacks,
// read through Ferry's registry client.
func stagingCatalog(cfg config.Config, images *registry.Client, logger *slog.Logger) *k8sbackend.Catalog {
	stacks := make([]string, 0, len(cfg.Staging.Builders))
	for _, b := range cfg.Staging.Builders {
		stacks = append(stacks, b.Stack)
	}
	return k8sbackend.NewCatalog(images, k8sbackend.ConfigFrom(cfg), stacks, logger)
}

// stagingBackends returns what the API needs for builds, stacks and
// buildpacks: the builder catalog and the docker droplet maker.
func stagingBackends(cfg config.Config, images *registry.Client, logger *slog.Logger) (cfapi.BuilderCatalog, cfapi.DockerStager) {
	return catalogAdapter{stagingCatalog(cfg, images, logger)}, dockerStager{images: images}
}

// catalogAdapter serves the API's BuilderCatalog from k8sbackend's Catalog.
type catalogAdapter struct{ catalog *k8sbackend.Catalog }

func (c catalogAdapter) Builder(ctx context.Context, stack string) (cfapi.BuilderInfo, error) {
	b, err := c.catalog.Builder(ctx, stack)
	if err != nil {
		return cfapi.BuilderInfo{}, err
	}
	info := cfapi.BuilderInfo{Image: b.Image, Description: b.Description, RunImage: b.RunImage, Created: b.Created}
	for _, bp := range b.Buildpacks {
		info.Buildpacks = append(info.Buildpacks, cfapi.BuildpackInfo{ID: bp.ID, Version: bp.Version})
	}
	return info, nil
}

// dockerStager makes docker droplets: it pins the package's image by
// digest and reads its config, with the package's registry credentials
// when it has some.
type dockerStager struct{ images *registry.Client }

func (d dockerStager) DockerDroplet(ctx context.Context, pkg store.Package, b store.Build) (store.Droplet, error) {
	client := d.images
	if pkg.DockerUsername != "" {
		client = client.WithCredentials(pkg.DockerUsername, pkg.DockerPassword)
	}
	pinned, err := client.Resolve(ctx, pkg.Image)
	if err != nil {
		return store.Droplet{}, err
	}
	cf, err := client.ConfigFile(ctx, pinned)
	if err != nil {
		return store.Droplet{}, err
	}
	droplet, err := k8sbackend.DockerDroplet(uuid.NewString(), b, d.images.ClusterReference(pinned), cf.Config)
	if err != nil {
		return store.Droplet{}, &cfapi.UnusableImageError{Reason: err.Error()}
	}
	return droplet, nil
}

// runController runs the controller until ctx ends: `ferry controller`,
// and the controller half of `ferry serve`. The log lines it collects go
// to logs.
func runController(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, logs logcache.Sink) error {
	client, err := kubernetesClient(cfg)
	if err != nil {
		return err
	}
	logClient, err := kubernetesClientWithLimits(cfg, logClientQPS, logClientBurst)
	if err != nil {
		return err
	}
	gateways, err := gatewayClient(cfg)
	if err != nil {
		return err
	}
	certificates, err := controllerCertificates(cfg, st, logger)
	if err != nil {
		return err
	}
	var dynamicClient dynamic.Interface
	if gateways != nil {
		restConfig, err := kubernetesRESTConfig(cfg, 0, 0)
		if err != nil {
			return err
		}
		if dynamicClient, err = dynamic.NewForConfig(restConfig); err != nil {
			return fmt.Errorf("dynamic client: %w", err)
		}
	}
	images := registry.New(cfg.Registry)
	logger.Info("ferry controller starting", "version", version, "stacks", len(cfg.Staging.Builders))
	err = k8sbackend.RunController(ctx, k8sbackend.ControllerOptions{
		Store:        st,
		Client:       client,
		Images:       images,
		Catalog:      stagingCatalog(cfg, images, logger),
		Config:       k8sbackend.ConfigFrom(cfg),
		Logger:       logger,
		DatabaseURL:  cfg.DatabaseURL,
		Logs:         logs,
		LogClient:    logClient,
		Gateways:     gateways,
		Certificates: certificates,
		Dynamic:      dynamicClient,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// controllerCertificates returns the certificate source of the routing
// reconcilers, which opens keys with the certificate key the API seals
// them with, or nil when routing is off.
func controllerCertificates(cfg config.Config, st *store.Store, logger *slog.Logger) (k8sbackend.DesiredCertificates, error) {
	if !cfg.Routing.Enabled {
		return nil, nil
	}
	sealer, _, _, err := tlscert.LoadSealer(cfg.Routing.CertificateKey, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	return k8sbackend.StoreCertificates{Store: st, Sealer: sealer, Installation: cfg.Kubernetes.Installation,
		Logger: logger}, nil
}

// startController runs the controller beside the API in `ferry serve`
// when a cluster is configured, restarting it after a failure, because
// the API keeps serving either way.
func startController(ctx context.Context, cfg config.Config, st *store.Store, logger *slog.Logger, logs logcache.Sink) {
	if !kubernetesConfigured(cfg) {
		logger.Warn("no Kubernetes configuration: builds stay STAGING until a controller runs; set KUBECONFIG")
		return
	}
	go func() {
		for ctx.Err() == nil {
			if err := runController(ctx, cfg, st, logger, logs); err != nil {
				logger.Error("controller failed, restarting in 10s", "error", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
	}()
}
