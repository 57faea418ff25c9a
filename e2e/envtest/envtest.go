// Package envtest connects end-to-end tests to the local all-in-one
// environment that hack/env.sh runs: it brings the environment up, or reuses
// the running one, and hands tests its Kubernetes clients, registry, gateway
// and database addresses. When a test fails, it copies the component logs
// and a snapshot of the cluster into the test's artifact directory.
package envtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment is a running local environment. Its fields are read-only.
type Environment struct {
	// RepoRoot is the checkout that contains hack/env.sh.
	RepoRoot string
	// Kubeconfig is the path of a cluster-admin kubeconfig.
	Kubeconfig string
	RESTConfig *rest.Config
	Kube       kubernetes.Interface
	Dynamic    dynamic.Interface

	// Registry is the plain-HTTP OCI registry as host:port. Images pushed
	// there can be pulled by the kubelet under the same name.
	Registry string
	// ClusterRegistry is the same registry as pods reach it (host:port on
	// the bridge). The kubelet pulls under this name too.
	ClusterRegistry string
	// GatewayHTTP and GatewayHTTPS are host:port addresses of the Gateway's
	// listeners. Requests select a route by their Host header (and SNI).
	GatewayHTTP  string
	GatewayHTTPS string
	// GatewayNamespace and GatewayName name the Gateway that HTTPRoutes use
	// as their parent.
	GatewayNamespace string
	GatewayName      string
	// UDPGatewayName names the Gateway in GatewayNamespace that serves
	// UDPRoutes, or is empty when the environment has none.
	UDPGatewayName string
	// AppsDomain is the domain the HTTPS listener has a certificate for
	// (*.AppsDomain), signed by the CA in CAFile.
	AppsDomain string
	CAFile     string
	// GatewayCA is the PEM file of the CA that signed the Gateway's own
	// certificate. It is CAFile when the environment names no other file.
	GatewayCA string
	// DatabaseURL is a lib/pq URL of the ferry database, whose role may
	// create further databases.
	DatabaseURL string
	// LogDir contains one log file per component.
	LogDir string
}

var (
	startOnce sync.Once
	started   *Environment
	startErr  error
)

// Get returns the environment, starting it on the first call in a test
// binary, and registers a cleanup that saves component logs to the test's
// artifact directory when the test fails. It stops the test when the
// environment cannot start. Set FERRY_E2E_NO_UP=1 to skip `hack/env.sh up`
// and use the environment as it runs.
func Get(t testing.TB) *Environment {
	t.Helper()
	startOnce.Do(func() {
		started, startErr = Start(context.Background())
	})
	if startErr != nil {
		t.Fatalf("local environment: %v", startErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			started.SaveLogs(t)
		}
	})
	return started
}

// Start runs `hack/env.sh up` (unless FERRY_E2E_NO_UP=1), reads the
// environment's settings from `hack/env.sh env --plain` and builds
// Kubernetes clients from its admin kubeconfig.
func Start(ctx context.Context) (*Environment, error) {
	root, err := findRepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "hack", "env.sh")

	if os.Getenv("FERRY_E2E_NO_UP") != "1" {
		var output bytes.Buffer
		cmd := exec.CommandContext(ctx, script, "up")
		cmd.Dir = root
		cmd.Stdout = &output
		cmd.Stderr = &output
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("hack/env.sh up failed: %w\n%s", err, output.String())
		}
	}

	cmd := exec.CommandContext(ctx, script, "env", "--plain")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/env.sh env --plain failed: %w", err)
	}
	settings, err := parseSettings(out)
	if err != nil {
		return nil, err
	}
	return newEnvironment(root, settings)
}

// parseSettings reads NAME=VALUE lines. Values run to the end of the line
// and are not quoted.
func parseSettings(out []byte) (map[string]string, error) {
	settings := make(map[string]string)
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("hack/env.sh env --plain printed an invalid line %q: expected NAME=VALUE", line)
		}
		settings[name] = value
	}
	return settings, scanner.Err()
}

// settingAliases are newer names of settings that an environment may print
// in place of, or besides, the names newEnvironment requires. A value under
// the newer name wins.
var settingAliases = map[string]string{
	"FERRY_GATEWAY_HTTP_ADDR":  "FERRY_GATEWAY_HTTP",
	"FERRY_GATEWAY_HTTPS_ADDR": "FERRY_GATEWAY_HTTPS",
}

// applyAliases copies the value of each newer setting name that is set to
// the name it replaces.
func applyAliases(settings map[string]string) {
	for newer, name := range settingAliases {
		if v := settings[newer]; v != "" {
			settings[name] = v
		}
	}
}

func newEnvironment(root string, settings map[string]string) (*Environment, error) {
	applyAliases(settings)
	required := []string{
		"KUBECONFIG", "FERRY_REGISTRY", "FERRY_REGISTRY_CLUSTER_ADDRESS", "FERRY_GATEWAY_HTTP", "FERRY_GATEWAY_HTTPS",
		"FERRY_GATEWAY_NAMESPACE", "FERRY_GATEWAY_NAME", "FERRY_APPS_DOMAIN",
		"FERRY_ENV_CA_FILE", "FERRY_DATABASE_URL", "FERRY_ENV_LOG_DIR",
	}
	var missing []string
	for _, name := range required {
		if settings[name] == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("hack/env.sh env --plain did not set %s; is the environment up?", strings.Join(missing, ", "))
	}

	config, err := clientcmd.BuildConfigFromFlags("", settings["KUBECONFIG"])
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", settings["KUBECONFIG"], err)
	}
	config.UserAgent = "ferry-e2e"
	kube, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	gatewayCA := settings["FERRY_GATEWAY_CA"]
	if gatewayCA == "" {
		gatewayCA = settings["FERRY_ENV_CA_FILE"]
	}
	return &Environment{
		RepoRoot:         root,
		Kubeconfig:       settings["KUBECONFIG"],
		RESTConfig:       config,
		Kube:             kube,
		Dynamic:          dyn,
		Registry:         settings["FERRY_REGISTRY"],
		ClusterRegistry:  settings["FERRY_REGISTRY_CLUSTER_ADDRESS"],
		GatewayHTTP:      settings["FERRY_GATEWAY_HTTP"],
		GatewayHTTPS:     settings["FERRY_GATEWAY_HTTPS"],
		GatewayNamespace: settings["FERRY_GATEWAY_NAMESPACE"],
		GatewayName:      settings["FERRY_GATEWAY_NAME"],
		UDPGatewayName:   settings["FERRY_UDP_GATEWAY_NAME"],
		AppsDomain:       settings["FERRY_APPS_DOMAIN"],
		CAFile:           settings["FERRY_ENV_CA_FILE"],
		GatewayCA:        gatewayCA,
		DatabaseURL:      settings["FERRY_DATABASE_URL"],
		LogDir:           settings["FERRY_ENV_LOG_DIR"],
	}, nil
}

// findRepoRoot walks up from the working directory, which go test sets to
// the package directory, to the directory that contains hack/env.sh.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "env.sh")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/env.sh not found in the working directory or any parent")
		}
		dir = parent
	}
}
