package cfapi

import (
	"log/slog"
	"strings"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Config is what the HTTP layer needs to know about its deployment.
type Config struct {
	// ExternalURL is the base URL clients use to reach Ferry, e.g.
	// "https://api.example.com". Every link and Location is built from it.
	ExternalURL string
}

// API serves the Cloud Foundry and UAA endpoints.
type API struct {
	store       *store.Store
	auth        *auth.Service
	jobs        *jobs.Runner
	logger      *slog.Logger
	externalURL string
}

// New returns the API and registers its async operations with runner.
func New(st *store.Store, authService *auth.Service, runner *jobs.Runner, logger *slog.Logger, cfg Config) *API {
	a := &API{
		store:       st,
		auth:        authService,
		jobs:        runner,
		logger:      logger,
		externalURL: strings.TrimRight(cfg.ExternalURL, "/"),
	}
	a.registerJobs()
	return a
}

// url joins path parts onto the external URL.
func (a *API) url(parts ...string) string {
	return a.externalURL + strings.Join(parts, "")
}
