package cfapi

import (
	"log/slog"
	"strings"

	"github.com/ferrycf/ferry/appbits"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/tlscert"
)

// Config is the HTTP layer's view of its deployment: URLs, staging, the
// registry and the runtime it talks to.
type Config struct {
	// ExternalURL is the base URL clients use to reach Ferry, e.g.
	// "https://api.example.com". Every link and Location is built from it.
	ExternalURL string
	// Staging is the staging configuration. Apps take their default stack
	// from it, and a stack an app names must be one of its builders' stacks.
	Staging config.Staging
	// Registry stores bits packages as images. Without one, bits uploads,
	// copies and downloads fail with CF-UnknownError.
	Registry *registry.Client
	// DataDir holds upload spool files and, under resource-cache/, the
	// resource cache.
	DataDir string
	// UploadLimits bound package uploads; zero fields take
	// appbits.DefaultLimits.
	UploadLimits appbits.Limits
	// Builders reads the stacks' builder images for /v3/stacks and
	// /v3/buildpacks. Without it, stacks come from Staging alone and there
	// are no buildpacks.
	Builders BuilderCatalog
	// Docker makes the droplets of docker builds. Without it, docker
	// builds fail with CF-UnknownError.
	Docker DockerStager
	// Instances reports the instances of processes from the runtime.
	// Without it, every instance of a started app is reported DOWN.
	Instances InstanceReporter
	// Restarter restarts single instances. Without it, restarting an
	// instance fails with CF-ServiceUnavailable.
	Restarter InstanceRestarter
	// LogCacheURL is the base URL of the log-cache read API that the root
	// document links to. Empty means ExternalURL, where `ferry serve`
	// serves it.
	LogCacheURL string
	// CertificateSealer encrypts the private keys of uploaded TLS
	// certificates for storage. Without it, uploading and rotating
	// certificates fail with CF-ServiceUnavailable.
	CertificateSealer *tlscert.Sealer
}

// API serves the Cloud Foundry and UAA endpoints.
type API struct {
	store       *store.Store
	auth        *auth.Service
	jobs        *jobs.Runner
	logger      *slog.Logger
	externalURL string
	staging     config.Staging
	registry    *registry.Client
	uploads     uploadConfig
	builders    BuilderCatalog
	docker      DockerStager
	instances   InstanceReporter
	restarter   InstanceRestarter
	logCacheURL string
	sealer      *tlscert.Sealer
}

// New returns the API and registers its async operations with runner.
func New(st *store.Store, authService *auth.Service, runner *jobs.Runner, logger *slog.Logger, cfg Config) *API {
	a := &API{
		store:       st,
		auth:        authService,
		jobs:        runner,
		logger:      logger,
		externalURL: strings.TrimRight(cfg.ExternalURL, "/"),
		staging:     cfg.Staging,
		registry:    cfg.Registry,
		uploads:     newUploadConfig(cfg.DataDir, cfg.UploadLimits),
		builders:    cfg.Builders,
		docker:      cfg.Docker,
		instances:   cfg.Instances,
		restarter:   cfg.Restarter,
		logCacheURL: strings.TrimRight(cfg.LogCacheURL, "/"),
		sealer:      cfg.CertificateSealer,
	}
	a.registerJobs()
	return a
}

// url joins path parts onto the external URL.
func (a *API) url(parts ...string) string {
	return a.externalURL + strings.Join(parts, "")
}
