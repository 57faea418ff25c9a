// Package config loads Ferry's configuration: built-in defaults, then a
// YAML file, then FERRY_* environment variables, then command-line flags,
// each overriding the one before.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Config is Ferry's whole configuration. Every default suits the local
// environment; production settings are documented in docs/configuration.md.
type Config struct {
	// ListenAddress is the host:port the API listens on.
	ListenAddress string `json:"listen_address"`
	// ExternalURL is the URL clients use to reach the API; links and job
	// Locations are built from it.
	ExternalURL string `json:"external_url"`
	// DatabaseURL is the PostgreSQL connection URL.
	DatabaseURL string     `json:"database_url"`
	Admin       Admin      `json:"admin"`
	Auth        Auth       `json:"auth"`
	Log         Log        `json:"log"`
	Registry    Registry   `json:"registry"`
	Kubernetes  Kubernetes `json:"kubernetes"`
	Staging     Staging    `json:"staging"`
	Logs        Logs       `json:"logs"`
	Routing     Routing    `json:"routing"`
	// DataDir holds upload spool files and the resource-match cache.
	DataDir string `json:"data_dir"`
}

// Registry is the OCI registry that holds packages, droplets and build
// caches.
type Registry struct {
	// Address is host[:port] as Ferry reaches the registry.
	Address string `json:"address"`
	// ClusterAddress is host[:port] as pods and the kubelet reach the same
	// registry; empty means Address.
	ClusterAddress string `json:"cluster_address"`
	// Insecure allows plain HTTP. go-containerregistry already uses plain
	// HTTP for loopback and private addresses.
	Insecure bool `json:"insecure"`
	// Repository is the path prefix of every image Ferry pushes.
	Repository string `json:"repository"`
	Username   string `json:"username"`
	Password   string `json:"password"`
}

// Kubernetes is the connection to the cluster Ferry runs apps on.
type Kubernetes struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster configuration.
	Kubeconfig string `json:"kubeconfig"`
	// Installation names this Ferry installation in a label on every object
	// it writes. Installations that share a cluster need distinct names:
	// each one manages only the objects that carry its own.
	Installation string `json:"installation"`
}

// Staging configures buildpack staging.
type Staging struct {
	// Builders maps each stack name to a CNB builder image.
	Builders []Builder `json:"builders"`
	// DefaultStack is the stack of apps that name none.
	DefaultStack string `json:"default_stack"`
	// FerryImage is the image of the staging init container that fetches a
	// package into the build's workspace.
	FerryImage string `json:"ferry_image"`
	// BuildpackAliases maps Cloud Foundry buildpack names such as
	// go_buildpack to CNB buildpack ids.
	BuildpackAliases map[string]string `json:"buildpack_aliases"`
	MemoryMB         int64             `json:"memory_mb"`
	DiskMB           int64             `json:"disk_mb"`
	Timeout          Duration          `json:"timeout"`
}

// Logs configures the in-memory log store and its log-cache read API,
// which the controller serves.
type Logs struct {
	// MaxEntriesPerSource is the number of lines kept per app; older lines
	// are dropped first.
	MaxEntriesPerSource int `json:"max_entries_per_source"`
	// MaxBytesPerSource bounds the payload bytes kept per app.
	MaxBytesPerSource ByteSize `json:"max_bytes_per_source"`
	// MaxSources is the number of apps whose lines are kept. A new app
	// beyond it evicts the app written to least recently.
	MaxSources int `json:"max_sources"`
	// ListenAddress, when set, is a host:port where `ferry controller` (and
	// `ferry serve`, besides its main port) serves the log-cache read API.
	ListenAddress string `json:"listen_address"`
	// ExternalURL is the log-cache URL the root document links to. Empty
	// means external_url, which suits `ferry serve`. With separate `ferry
	// api` and `ferry controller` processes, set it to the URL that reaches
	// the controller's logs.listen_address.
	ExternalURL string `json:"external_url"`
}

// Routing configures domains, routes and their TLS certificates.
type Routing struct {
	// CertificateKey is the base64 encoding of the 32-byte key that
	// encrypts the private keys of uploaded TLS certificates in the
	// database. Empty means a key generated on first start and kept in
	// the file certificate-key under data_dir, which suits one machine
	// only: API replicas must share one configured key.
	CertificateKey string `json:"certificate_key"`
	// DefaultDomain is the shared domain created on start when no domain
	// of that name exists. Every organization reports the oldest shared
	// HTTP domain, normally this one, as its default domain.
	DefaultDomain string `json:"default_domain"`
	// InternalDomain is the internal shared domain created on start when no
	// domain of that name exists, for routes that only apps in the cluster
	// reach.
	InternalDomain string `json:"internal_domain"`
	// TCPReservablePorts are the ports of the default-tcp router group that
	// TCP routes may use: ports and ranges separated by commas, such as
	// "1024-1033,2000". It is applied on every start.
	TCPReservablePorts string `json:"tcp_reservable_ports"`
	// Enabled lets the controller write the routing objects of the routes
	// in the database. Off, routes are only stored.
	Enabled bool `json:"enabled"`
	// Mode is "gateway" (Gateway API objects) or "ingress"
	// (networking.k8s.io Ingress objects, HTTP and HTTPS only, for
	// clusters without Gateway API).
	Mode string `json:"mode"`
	// IngressClass is the spec.ingressClassName of Ingress objects in
	// ingress mode; empty means the cluster's default class.
	IngressClass string `json:"ingress_class"`
	// GatewayNamespace and GatewayName name the Gateway API Gateway that
	// routes attach to.
	GatewayNamespace string `json:"gateway_namespace"`
	GatewayName      string `json:"gateway_name"`
	// UDPGatewayNamespace and UDPGatewayName name the Gateway that UDP
	// routes attach to; empty means the main Gateway. Some Gateway API
	// implementations serve no UDPRoute, so another one may serve UDP.
	UDPGatewayNamespace string `json:"udp_gateway_namespace"`
	UDPGatewayName      string `json:"udp_gateway_name"`
	// ManageListeners lets Ferry add and remove listeners on the Gateways:
	// an HTTPS listener for each domain with a certificate and a listener
	// for each TCP and UDP route's port. Off, routes only attach to the
	// listeners the operator made.
	ManageListeners bool `json:"manage_listeners"`
	// HTTPSPort is the port of the HTTPS listeners Ferry adds.
	HTTPSPort int `json:"https_port"`
	// OrgGatewayClass is the GatewayClass of the Gateways Ferry makes for
	// organizations with a dedicated gateway; empty means the main
	// Gateway's class.
	OrgGatewayClass string `json:"org_gateway_class"`
	// InternalRouteNamespace holds the Services of internal routes.
	InternalRouteNamespace string `json:"internal_route_namespace"`
	// ClusterDomain is the cluster's DNS domain, such as cluster.local.
	ClusterDomain string `json:"cluster_domain"`
}

// Builder is one stack's CNB builder.
type Builder struct {
	Stack string `json:"stack"`
	Image string `json:"image"`
}

// Admin is the user bootstrapped on first start. Ferry never ships a
// default password: with no password configured it generates one.
type Admin struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Auth configures tokens and OAuth clients.
type Auth struct {
	AccessTokenTTL  Duration `json:"access_token_ttl"`
	RefreshTokenTTL Duration `json:"refresh_token_ttl"`
	// Clients are OAuth clients for the client_credentials grant, in
	// addition to the built-in "cf" client with an empty secret.
	Clients []Client `json:"clients"`
}

// Client is an OAuth client allowed the client_credentials grant.
type Client struct {
	ID     string   `json:"id"`
	Secret string   `json:"secret"`
	Scopes []string `json:"scopes"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `json:"level"`
	// Format is json or text.
	Format string `json:"format"`
}

// ByteSize is a number of bytes, written as an integer or as a string with
// a binary unit: "4194304", "4096KiB", "4MiB", "1GiB" (or Ki, Mi, Gi).
type ByteSize int64

// UnmarshalJSON accepts an integer or a size string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	if s == "" || s == "null" {
		*b = 0
		return nil
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize parses an integer number of bytes with an optional binary
// unit: B, KiB, MiB, GiB, or Ki, Mi, Gi.
func ParseByteSize(s string) (ByteSize, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"B", 1}}
	number, factor := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(number, u.suffix) {
			number, factor = strings.TrimSpace(strings.TrimSuffix(number, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/factor {
		return 0, fmt.Errorf("invalid size %q: use a number of bytes, optionally with KiB, MiB or GiB, e.g. 4MiB", s)
	}
	return ByteSize(n * factor), nil
}

// Duration is a time.Duration written as a Go duration string ("20m").
type Duration struct{ time.Duration }

// UnmarshalJSON accepts a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		d.Duration = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a Go duration such as 20m or 720h", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Default returns the built-in defaults: loopback only, a local PostgreSQL.
func Default() Config {
	return Config{
		ListenAddress: "127.0.0.1:9022",
		ExternalURL:   "http://127.0.0.1:9022",
		DatabaseURL:   "postgres://postgres@127.0.0.1:5432/ferry?sslmode=disable",
		Admin:         Admin{Username: "admin"},
		Auth: Auth{
			AccessTokenTTL:  Duration{20 * time.Minute},
			RefreshTokenTTL: Duration{30 * 24 * time.Hour},
		},
		Log: Log{Level: "info", Format: "json"},
		Registry: Registry{
			Address:    "127.0.0.1:5000",
			Repository: "ferry",
		},
		Kubernetes: Kubernetes{Installation: "ferry"},
		Staging: Staging{
			DefaultStack: "ferry-test",
			MemoryMB:     1024,
			DiskMB:       4096,
			Timeout:      Duration{15 * time.Minute},
		},
		Logs: Logs{
			MaxEntriesPerSource: 10000,
			MaxBytesPerSource:   4 << 20,
			MaxSources:          1000,
		},
		Routing: Routing{
			DefaultDomain:          "apps.ferry.test",
			InternalDomain:         "apps.internal",
			TCPReservablePorts:     "1024-1033",
			Enabled:                true,
			Mode:                   RoutingModeGateway,
			GatewayNamespace:       "ferry-system",
			GatewayName:            "ferry",
			ManageListeners:        true,
			HTTPSPort:              443,
			InternalRouteNamespace: "ferry-internal-routes",
			ClusterDomain:          "cluster.local",
		},
	}
}

// Load builds the configuration for a subcommand from args (without the
// subcommand name) and the process environment.
func Load(args []string, getenv func(string) string) (Config, error) {
	cfg := Default()

	fs := flag.NewFlagSet("ferry", flag.ContinueOnError)
	configFile := fs.String("config", getenv("FERRY_CONFIG"), "path of a YAML configuration file (env FERRY_CONFIG)")
	listen := fs.String("listen-address", "", "host:port to listen on (env FERRY_LISTEN_ADDRESS; default 127.0.0.1:9022)")
	external := fs.String("external-url", "", "URL clients use to reach Ferry (env FERRY_EXTERNAL_URL)")
	database := fs.String("database-url", "", "PostgreSQL connection URL (env FERRY_DATABASE_URL)")
	adminUser := fs.String("admin-username", "", "admin user created on first start (env FERRY_ADMIN_USERNAME; default admin)")
	adminPassword := fs.String("admin-password", "", "password of that admin user; prefer the env var FERRY_ADMIN_PASSWORD, since flags are visible to other local users")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (env FERRY_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}

	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return Config{}, fmt.Errorf("read configuration: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("parse configuration %s: %w", *configFile, err)
		}
	}

	override := func(dst *string, env, flagValue string) {
		if v := getenv(env); v != "" {
			*dst = v
		}
		if flagValue != "" {
			*dst = flagValue
		}
	}
	externalSet := getenv("FERRY_EXTERNAL_URL") != "" || *external != "" || cfg.ExternalURL != Default().ExternalURL
	override(&cfg.ListenAddress, "FERRY_LISTEN_ADDRESS", *listen)
	override(&cfg.ExternalURL, "FERRY_EXTERNAL_URL", *external)
	override(&cfg.DatabaseURL, "FERRY_DATABASE_URL", *database)
	override(&cfg.Admin.Username, "FERRY_ADMIN_USERNAME", *adminUser)
	override(&cfg.Admin.Password, "FERRY_ADMIN_PASSWORD", *adminPassword)
	override(&cfg.Log.Level, "FERRY_LOG_LEVEL", *logLevel)
	override(&cfg.Registry.Address, "FERRY_REGISTRY", "")
	override(&cfg.Registry.ClusterAddress, "FERRY_REGISTRY_CLUSTER_ADDRESS", "")
	override(&cfg.Kubernetes.Kubeconfig, "KUBECONFIG", "")
	override(&cfg.Kubernetes.Installation, "FERRY_INSTALLATION", "")
	override(&cfg.Staging.FerryImage, "FERRY_STAGING_IMAGE", "")
	if v := getenv("FERRY_STAGING_BUILDERS"); v != "" {
		builders, err := parseBuilders(v)
		if err != nil {
			return Config{}, err
		}
		cfg.Staging.Builders = builders
	}
	override(&cfg.DataDir, "FERRY_DATA_DIR", "")
	override(&cfg.Routing.CertificateKey, "FERRY_CERTIFICATE_KEY", "")
	if err := overrideLogs(&cfg.Logs, getenv); err != nil {
		return Config{}, err
	}
	if cfg.Registry.ClusterAddress == "" {
		cfg.Registry.ClusterAddress = cfg.Registry.Address
	}
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir(getenv)
	}

	// A changed listen address with no external URL means "reach me there".
	if !externalSet {
		cfg.ExternalURL = "http://" + cfg.ListenAddress
	}
	cfg.ExternalURL = strings.TrimRight(cfg.ExternalURL, "/")

	return cfg, cfg.Validate()
}

// overrideLogs applies the FERRY_LOGS_* environment variables.
func overrideLogs(logs *Logs, getenv func(string) string) error {
	if v := getenv("FERRY_LOGS_LISTEN_ADDRESS"); v != "" {
		logs.ListenAddress = v
	}
	if v := getenv("FERRY_LOGS_EXTERNAL_URL"); v != "" {
		logs.ExternalURL = v
	}
	for _, setting := range []struct {
		env string
		dst *int
	}{
		{"FERRY_LOGS_MAX_ENTRIES_PER_SOURCE", &logs.MaxEntriesPerSource},
		{"FERRY_LOGS_MAX_SOURCES", &logs.MaxSources},
	} {
		v := getenv(setting.env)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%s %q is invalid: use a positive integer", setting.env, v)
		}
		*setting.dst = n
	}
	if v := getenv("FERRY_LOGS_MAX_BYTES_PER_SOURCE"); v != "" {
		size, err := ParseByteSize(v)
		if err != nil {
			return fmt.Errorf("FERRY_LOGS_MAX_BYTES_PER_SOURCE: %w", err)
		}
		logs.MaxBytesPerSource = size
	}
	logs.ExternalURL = strings.TrimRight(logs.ExternalURL, "/")
	return nil
}

// parseBuilders reads FERRY_STAGING_BUILDERS: comma-separated stack=image
// pairs, e.g. "ferry-test=10.88.0.1:5000/ferry/builder:test".
func parseBuilders(v string) ([]Builder, error) {
	var builders []Builder
	for _, pair := range strings.Split(v, ",") {
		stack, image, found := strings.Cut(strings.TrimSpace(pair), "=")
		if !found || stack == "" || image == "" {
			return nil, fmt.Errorf("FERRY_STAGING_BUILDERS entry %q is invalid: use stack=image pairs separated by commas", pair)
		}
		builders = append(builders, Builder{Stack: stack, Image: image})
	}
	return builders, nil
}

// defaultDataDir is $XDG_STATE_HOME/ferry, or ~/.local/state/ferry.
func defaultDataDir(getenv func(string) string) string {
	if dir := getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "ferry")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "state", "ferry")
	}
	return filepath.Join(os.TempDir(), "ferry")
}

// Validate reports the first invalid setting, naming it and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.ListenAddress == "" {
		errs = append(errs, errors.New("listen_address is empty: set host:port, e.g. 127.0.0.1:9022"))
	}
	if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("external_url %q is invalid: use an absolute http or https URL", c.ExternalURL))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("database_url is empty: set FERRY_DATABASE_URL"))
	}
	if c.Admin.Username == "" {
		errs = append(errs, errors.New("admin.username is empty: set FERRY_ADMIN_USERNAME"))
	}
	if msgs := validation.IsDNS1123Label(c.Kubernetes.Installation); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("kubernetes.installation %q is invalid: use lower-case letters, digits and '-', at most 63 characters (%s)",
			c.Kubernetes.Installation, strings.Join(msgs, "; ")))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q is invalid: use debug, info, warn or error", c.Log.Level))
	}
	errs = append(errs, c.Logs.validate()...)
	if err := validateCertificateKey(c.Routing.CertificateKey); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Routing.validate()...)
	for i, cl := range c.Auth.Clients {
		if cl.ID == "" || cl.ID == "cf" {
			errs = append(errs, fmt.Errorf("auth.clients[%d].id must be set and must not be \"cf\"", i))
		}
		if cl.Secret == "" {
			errs = append(errs, fmt.Errorf("auth.clients[%d].secret is empty: client_credentials clients need a secret", i))
		}
	}
	return errors.Join(errs...)
}

func (l Logs) validate() []error {
	var errs []error
	if l.MaxEntriesPerSource < 1 {
		errs = append(errs, fmt.Errorf("logs.max_entries_per_source %d is invalid: use at least 1", l.MaxEntriesPerSource))
	}
	if l.MaxBytesPerSource < 1 {
		errs = append(errs, fmt.Errorf("logs.max_bytes_per_source %d is invalid: use at least 1 byte, e.g. 4MiB", l.MaxBytesPerSource))
	}
	if l.MaxSources < 1 {
		errs = append(errs, fmt.Errorf("logs.max_sources %d is invalid: use at least 1", l.MaxSources))
	}
	if l.ExternalURL != "" {
		if u, err := url.Parse(l.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("logs.external_url %q is invalid: use an absolute http or https URL, or leave it empty", l.ExternalURL))
		}
	}
	return errs
}

// validateCertificateKey checks the form of routing.certificate_key. The
// message never contains the value, which is a secret.
func validateCertificateKey(key string) error {
	if key == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
	if err != nil || len(raw) != 32 {
		return errors.New("routing.certificate_key is invalid: use 32 random bytes in standard base64, e.g. the output of `openssl rand -base64 32`")
	}
	return nil
}
