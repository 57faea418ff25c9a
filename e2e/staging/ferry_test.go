//go:build e2e

package staging

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/lib/pq"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
)

// ferry is a `ferry serve` or `ferry api` process on the local
// environment and an admin token for it. The process can be killed and
// started again on the same address, database and data directory.
type ferry struct {
	url         string
	token       string
	databaseURL string
	// installation is the name in the installation label of every object
	// this Ferry writes.
	installation string
	// routing is the routing part of the configuration the process runs
	// with.
	routing routingConfig

	// role is the command that start runs: serve, or api when the
	// controller runs as a separate process (see startSplitFerry).
	role     string
	bin      string
	config   string
	env      []string
	password string
	logPath  string
	cmd      *exec.Cmd
	logFile  *os.File
}

// startFerry builds cmd/ferry and runs `ferry serve` on a free loopback
// port and a new database of the environment's PostgreSQL, with the test
// builder and the Ferry image. Its installation name, and so its leader
// Lease and the objects it manages, are its own, so it shares the cluster
// with `make run` and other tests without touching their objects.
func startFerry(t *testing.T, env *envtest.Environment) *ferry {
	t.Helper()
	f := newFerry(t, env)
	f.start(t)
	return f
}

// newFerry prepares what startFerry runs, without starting a process:
// the binary, the database, the configuration and the environment.
func newFerry(t *testing.T, env *envtest.Environment) *ferry {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	builder := lastLine(t, root, "bash", "hack/build/builder.sh")
	image := lastLine(t, root, "bash", "hack/build/ferry-image.sh")
	t.Logf("builder %s, staging image %s", builder, image)

	bin := filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ferry: %v\n%s", err, out)
	}

	token := randomToken(t)
	databaseURL := newDatabase(t, env.DatabaseURL, "ferry_e2e_staging_"+token)
	configFile := filepath.Join(dir, "ferry.yaml")
	config := fmt.Sprintf("staging:\n  default_stack: ferry-test\n  builders:\n  - stack: ferry-test\n    image: %q\n", builder)
	routing := newRoutingConfig(env, token)
	config += routing.yaml()
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	leaseNamespace := "ferry-e2e-staging-" + token

	f := &ferry{
		url:          "http://" + addr,
		databaseURL:  databaseURL,
		installation: "e2e-" + token,
		routing:      routing,
		role:         "serve",
		bin:          bin,
		config:       configFile,
		password:     randomToken(t),
		logPath:      filepath.Join(dir, "ferry.log"),
	}
	f.env = append(os.Environ(),
		"FERRY_DATABASE_URL="+databaseURL,
		"FERRY_LISTEN_ADDRESS="+addr,
		"FERRY_EXTERNAL_URL=http://"+addr,
		"FERRY_ADMIN_USERNAME=admin",
		"FERRY_ADMIN_PASSWORD="+f.password,
		"FERRY_LOG_LEVEL=debug",
		"FERRY_DATA_DIR="+filepath.Join(dir, "data"),
		"KUBECONFIG="+env.Kubeconfig,
		"FERRY_REGISTRY="+env.Registry,
		"FERRY_REGISTRY_CLUSTER_ADDRESS="+env.ClusterRegistry,
		"FERRY_STAGING_IMAGE="+image,
		"POD_NAMESPACE="+leaseNamespace,
		"FERRY_INSTALLATION="+f.installation,
	)
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			if log, err := os.ReadFile(f.logPath); err == nil {
				t.Logf("ferry log:\n%s", log)
			}
		}
		deleteNamespace(t, env, leaseNamespace)
	})
	return f
}

// start runs `ferry <role>`, appending to its log, waits until it serves
// HTTP and logs in as admin.
func (f *ferry) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(f.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(f.bin, f.role, "--config", f.config)
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	f.cmd, f.logFile = cmd, logFile

	envtest.WaitFor(t, startTimeout, "ferry to serve on "+f.url, func(context.Context) (bool, string) {
		resp, err := http.Get(f.url + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	f.token = login(t, f.url, f.password)
}

// kill sends SIGKILL to the running `ferry serve`, so it gets no chance
// to clean up, and reaps it.
func (f *ferry) kill(t *testing.T) {
	t.Helper()
	if err := f.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill ferry (pid %d): %v", f.cmd.Process.Pid, err)
	}
	_ = f.cmd.Wait()
	f.logFile.Close()
	f.cmd = nil
}

// stop interrupts the running `ferry serve`, if any, and waits for it.
func (f *ferry) stop() {
	if f.cmd == nil {
		return
	}
	_ = f.cmd.Process.Signal(os.Interrupt)
	_ = f.cmd.Wait()
	f.logFile.Close()
	f.cmd = nil
}

func (f *ferry) create(t *testing.T, path string, body any) string {
	t.Helper()
	var created struct {
		GUID string `json:"guid"`
	}
	f.do(t, http.MethodPost, path, body, http.StatusCreated, &created)
	return created.GUID
}

func (f *ferry) get(t *testing.T, path string, out any) {
	t.Helper()
	f.do(t, http.MethodGet, path, nil, http.StatusOK, out)
}

func (f *ferry) do(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.url+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	f.send(t, req, want, out)
}

// send adds the token, sends req and fails t unless the response has the
// status want. The body is decoded into out when out is not nil.
func (f *ferry) send(t *testing.T, req *http.Request, want int, out any) {
	t.Helper()
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", req.Method, req.URL.Path, data, err)
		}
	}
}

// login gets an admin access token as cf login does.
func login(t *testing.T, base, password string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cf", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("login: status %d, %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// newDatabase creates a database next to the one of baseURL, drops it when
// the test ends, and returns its URL.
func newDatabase(t *testing.T, baseURL, name string) string {
	t.Helper()
	db, err := sql.Open("postgres", baseURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
		db.Close()
	})
	return u.String()
}

// dropletImage reads a droplet's image from Ferry's database, because the
// API shows images only for docker droplets.
func (f *ferry) dropletImage(t *testing.T, droplet string) string {
	t.Helper()
	db, err := sql.Open("postgres", f.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var image string
	if err := db.QueryRow(`SELECT image FROM droplets WHERE guid = $1`, droplet).Scan(&image); err != nil {
		t.Fatalf("droplet %s: %v", droplet, err)
	}
	return image
}

func deleteNamespace(t *testing.T, env *envtest.Environment, namespace string) {
	err := env.Kube.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Logf("delete namespace %s: %v", namespace, err)
	}
}

// lastLine runs a build script in root and returns its last stdout line.
func lastLine(t *testing.T, root string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// routingConfig is the routing section of the configuration of an e2e
// Ferry. Each Ferry gets its own default domain, so its routes never
// collide with those of `make run` or of another test on the shared
// Gateway.
type routingConfig struct {
	defaultDomain          string
	internalDomain         string
	internalRouteNamespace string
	httpsPort              int
	gatewayNamespace       string
	gatewayName            string
	udpGatewayName         string
	// tcpPorts are the ports of the default-tcp router group, the
	// range `make run` leaves to the e2e tests.
	tcpPorts string
	// firstTCPPort is the lowest port of tcpPorts.
	firstTCPPort int
}

// newRoutingConfig returns the routing configuration of the Ferry with the
// token. The HTTPS port is the one the Gateway's https listener uses on
// the local environment, so Traefik serves the listeners Ferry adds there.
func newRoutingConfig(env *envtest.Environment, token string) routingConfig {
	udpGateway := env.UDPGatewayName
	if udpGateway == "" {
		udpGateway = "ferry-udp"
	}
	httpsPort := 8443
	if _, port, err := net.SplitHostPort(env.GatewayHTTPS); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			httpsPort = n
		}
	}
	return routingConfig{
		defaultDomain:          "e2e-" + token + ".ferry.test",
		internalDomain:         "e2e.internal",
		internalRouteNamespace: "ferry-e2e-internal-routes",
		httpsPort:              httpsPort,
		gatewayNamespace:       env.GatewayNamespace,
		gatewayName:            env.GatewayName,
		udpGatewayName:         udpGateway,
		tcpPorts:               "1034-1043",
		firstTCPPort:           1034,
	}
}

// yaml renders the routing section of Ferry's configuration file.
func (c routingConfig) yaml() string {
	var b strings.Builder
	b.WriteString("routing:\n")
	fmt.Fprintf(&b, "  default_domain: %q\n", c.defaultDomain)
	fmt.Fprintf(&b, "  internal_domain: %q\n", c.internalDomain)
	fmt.Fprintf(&b, "  internal_route_namespace: %q\n", c.internalRouteNamespace)
	fmt.Fprintf(&b, "  https_port: %d\n", c.httpsPort)
	fmt.Fprintf(&b, "  gateway_namespace: %q\n", c.gatewayNamespace)
	fmt.Fprintf(&b, "  gateway_name: %q\n", c.gatewayName)
	fmt.Fprintf(&b, "  udp_gateway_namespace: %q\n", c.gatewayNamespace)
	fmt.Fprintf(&b, "  udp_gateway_name: %q\n", c.udpGatewayName)
	fmt.Fprintf(&b, "  tcp_reservable_ports: %q\n", c.tcpPorts)
	return b.String()
}
