//go:build e2e

// Package deployments tests rolling and canary deployments end to end: a
// Ferry process on the local environment runs a one-instance app behind a
// route while requests flow through the Gateway. Run it with:
// FERRY_E2E_NO_UP=1 go test -tags e2e ./e2e/deployments/ -count=1 -v
package deployments

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

const (
	startTimeout   = 3 * time.Minute
	stagingTimeout = 5 * time.Minute
	// deployTimeout bounds one deployment, including the crash loop that
	// ends a deployment of a crashing droplet.
	deployTimeout = 5 * time.Minute
	// requestRate is how many requests per second the load sends through
	// the Gateway while a deployment runs.
	requestRate = 50
	// maxRequests bounds the requests of one load run.
	maxRequests = 15000
)

// ferry is a `ferry serve` process with an admin token.
type ferry struct {
	url    string
	token  string
	domain string
}

// deploymentTest is one Ferry with an org, a space and a one-instance app
// behind a route.
type deploymentTest struct {
	env     *envtest.Environment
	f       *ferry
	gateway *http.Client
	space   string
	app     string
	pkg     string
	host    string
}

// TestDeployments pushes the go-binary app with APP_VERSION v1 and maps a
// route to it. Requests flow through the Gateway during a rolling
// restart, a rolling push of v2, a canary deployment of v3, a canceled
// deployment of v4 and a deployment whose instances crash. Every request
// must succeed and come from the old or the new version.
func TestDeployments(t *testing.T) {
	env := envtest.Get(t)
	token := randomToken(t)
	f := startFerry(t, env, token)
	dt := &deploymentTest{env: env, f: f, gateway: gatewayClient(env.GatewayHTTP)}

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-deployments-" + token})
	dt.space = f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(env, k8sbackend.SpaceNamespace(dt.space)) })

	dt.pushApp(t)
	v1 := dt.stage(t)
	dt.setVersion(t, "v1")
	f.do(t, http.MethodPatch, "/v3/apps/"+dt.app+"/relationships/current_droplet",
		map[string]any{"data": map[string]any{"guid": v1}}, http.StatusOK, nil)
	f.do(t, http.MethodPost, "/v3/apps/"+dt.app+"/actions/start", nil, http.StatusOK, nil)
	dt.mapRoute(t)
	dt.awaitBody(t, "go-binary v1")

	t.Run("rolling restart", func(t *testing.T) {
		load := dt.startLoad()
		d := dt.deploy(t, map[string]any{"strategy": "rolling"})
		dt.awaitDeployment(t, d, "FINALIZED", "DEPLOYED")
		load.stop(t, "go-binary v1")
	})

	t.Run("rolling push of a new version", func(t *testing.T) {
		dt.setVersion(t, "v2")
		droplet := dt.stage(t)
		load := dt.startLoad()
		d := dt.deploy(t, map[string]any{"strategy": "rolling", "droplet": map[string]any{"guid": droplet}})
		dt.awaitDeployment(t, d, "FINALIZED", "DEPLOYED")
		load.stop(t, "go-binary v1", "go-binary v2")
		dt.awaitBody(t, "go-binary v2")
	})

	t.Run("canary pauses until continued", func(t *testing.T) {
		dt.setVersion(t, "v3")
		droplet := dt.stage(t)
		load := dt.startLoad()
		d := dt.deploy(t, map[string]any{"strategy": "canary", "droplet": map[string]any{"guid": droplet}})
		dt.awaitDeployment(t, d, "ACTIVE", "PAUSED")
		dt.awaitBody(t, "go-binary v3")
		dt.awaitBody(t, "go-binary v2")
		f.do(t, http.MethodPost, "/v3/deployments/"+d+"/actions/continue", nil, http.StatusOK, nil)
		dt.awaitDeployment(t, d, "FINALIZED", "DEPLOYED")
		load.stop(t, "go-binary v2", "go-binary v3")
	})

	t.Run("cancel returns to the old version", func(t *testing.T) {
		dt.setVersion(t, "v4")
		droplet := dt.stage(t)
		load := dt.startLoad()
		d := dt.deploy(t, map[string]any{"strategy": "canary", "droplet": map[string]any{"guid": droplet}})
		dt.awaitDeployment(t, d, "ACTIVE", "PAUSED")
		f.do(t, http.MethodPost, "/v3/deployments/"+d+"/actions/cancel", nil, http.StatusOK, nil)
		dt.awaitDeployment(t, d, "FINALIZED", "CANCELED")
		load.stop(t, "go-binary v3", "go-binary v4")
		dt.awaitBody(t, "go-binary v3")
	})

	t.Run("crashing instances keep the old ones", func(t *testing.T) {
		droplet := dt.stageCrashing(t)
		load := dt.startLoad()
		d := dt.deploy(t, map[string]any{"strategy": "rolling", "droplet": map[string]any{"guid": droplet}})
		status := dt.awaitDeployment(t, d, "FINALIZED", "CANCELED")
		load.stop(t, "go-binary v3")
		if !strings.Contains(status.Details.Error, "crashed") {
			t.Errorf("status error = %q, want the crashed instance", status.Details.Error)
		}
	})
}

// pushApp creates the app, uploads the go-binary fixture as its package
// and waits until the package is READY.
func (dt *deploymentTest) pushApp(t *testing.T) {
	t.Helper()
	f := dt.f
	dt.app = f.create(t, "/v3/apps", map[string]any{"name": "rolling",
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": dt.space}}}})
	dt.pkg = f.create(t, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": dt.app}}}})
	f.upload(t, dt.pkg, zipDir(t, goBinaryApp(t)))
	dt.awaitPackage(t)
}

// stageCrashing uploads a package whose server exits at once and stages
// it, leaving the app's package for the other steps.
func (dt *deploymentTest) stageCrashing(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	files := map[string]string{
		"go.mod":  "module crasher\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "server"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build crasher: %v\n%s", err, out)
	}
	appPackage := dt.pkg
	defer func() { dt.pkg = appPackage }()
	dt.pkg = dt.f.create(t, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": dt.app}}}})
	dt.f.upload(t, dt.pkg, zipDir(t, dir))
	dt.awaitPackage(t)
	return dt.stage(t)
}

// awaitPackage waits until the package is READY.
func (dt *deploymentTest) awaitPackage(t *testing.T) {
	t.Helper()
	envtest.WaitFor(t, stagingTimeout, "package "+dt.pkg+" READY", func(context.Context) (bool, string) {
		var p struct {
			State string `json:"state"`
		}
		dt.f.get(t, "/v3/packages/"+dt.pkg, &p)
		return p.State == "READY", p.State
	})
}

// stage builds the package and returns the droplet.
func (dt *deploymentTest) stage(t *testing.T) string {
	t.Helper()
	var build struct {
		GUID    string `json:"guid"`
		State   string `json:"state"`
		Error   string `json:"error"`
		Droplet *struct {
			GUID string `json:"guid"`
		} `json:"droplet"`
	}
	dt.f.do(t, http.MethodPost, "/v3/builds", map[string]any{"package": map[string]any{"guid": dt.pkg}}, http.StatusCreated, &build)
	envtest.WaitFor(t, stagingTimeout, "build "+build.GUID+" to leave STAGING", func(context.Context) (bool, string) {
		dt.f.get(t, "/v3/builds/"+build.GUID, &build)
		return build.State != "STAGING", build.State
	})
	if build.State != "STAGED" || build.Droplet == nil {
		t.Fatalf("build %s is %s: %s", build.GUID, build.State, build.Error)
	}
	return build.Droplet.GUID
}

// setVersion sets APP_VERSION, which new instances print.
func (dt *deploymentTest) setVersion(t *testing.T, version string) {
	t.Helper()
	dt.f.do(t, http.MethodPatch, "/v3/apps/"+dt.app+"/environment_variables",
		map[string]any{"var": map[string]any{"APP_VERSION": version}}, http.StatusOK, nil)
}

// mapRoute creates the route rolling.<default domain> with the app as its
// destination.
func (dt *deploymentTest) mapRoute(t *testing.T) {
	t.Helper()
	var domains struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	dt.f.get(t, "/v3/domains?names="+url.QueryEscape(dt.f.domain), &domains)
	if len(domains.Resources) != 1 {
		t.Fatalf("domain %s not found", dt.f.domain)
	}
	route := dt.f.create(t, "/v3/routes", map[string]any{"host": "rolling", "relationships": map[string]any{
		"space":  map[string]any{"data": map[string]any{"guid": dt.space}},
		"domain": map[string]any{"data": map[string]any{"guid": domains.Resources[0].GUID}},
	}})
	dt.f.do(t, http.MethodPost, "/v3/routes/"+route+"/destinations",
		map[string]any{"destinations": []any{map[string]any{"app": map[string]any{"guid": dt.app}}}}, http.StatusOK, nil)
	dt.host = "rolling." + dt.f.domain
}

// awaitBody waits until a request through the Gateway returns a body
// that contains want.
func (dt *deploymentTest) awaitBody(t *testing.T, want string) {
	t.Helper()
	envtest.WaitFor(t, deployTimeout, "a response from "+want+" at "+dt.host, func(ctx context.Context) (bool, string) {
		status, body, err := dt.request(ctx)
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK && strings.Contains(body, want), fmt.Sprintf("%d %q", status, body)
	})
}

func (dt *deploymentTest) request(ctx context.Context) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dt.env.GatewayHTTP+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = dt.host
	resp, err := dt.gateway.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// deploy posts a deployment of the app with extra fields and returns it.
func (dt *deploymentTest) deploy(t *testing.T, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": dt.app}}}}
	for k, v := range extra {
		body[k] = v
	}
	return dt.f.create(t, "/v3/deployments", body)
}

type deploymentStatus struct {
	Value   string `json:"value"`
	Reason  string `json:"reason"`
	Details struct {
		Error string `json:"error"`
	} `json:"details"`
}

// awaitDeployment polls the deployment as cf push does until its status
// is value and reason, and fails when it is finalized otherwise.
func (dt *deploymentTest) awaitDeployment(t *testing.T, guid, value, reason string) deploymentStatus {
	t.Helper()
	var d struct {
		Status deploymentStatus `json:"status"`
	}
	envtest.WaitFor(t, deployTimeout, "deployment "+guid+" "+value+"/"+reason, func(context.Context) (bool, string) {
		dt.f.get(t, "/v3/deployments/"+guid, &d)
		if d.Status.Value == "FINALIZED" && d.Status.Reason != reason {
			t.Fatalf("deployment %s finalized as %s (%s), want %s", guid, d.Status.Reason, d.Status.Details.Error, reason)
		}
		return d.Status.Value == value && d.Status.Reason == reason, d.Status.Value + "/" + d.Status.Reason
	})
	return d.Status
}

// load sends requestRate requests per second through the Gateway until
// stopped, and counts the responses by body.
type load struct {
	dt     *deploymentTest
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	bodies   map[string]int
	failures []string
}

func (dt *deploymentTest) startLoad() *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{dt: dt, cancel: cancel, done: make(chan struct{}), bodies: map[string]int{}}
	go l.run(ctx)
	return l
}

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	ticker := time.NewTicker(time.Second / requestRate)
	defer ticker.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for range maxRequests {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			reqCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			status, body, err := l.dt.request(reqCtx)
			l.mu.Lock()
			defer l.mu.Unlock()
			switch {
			case err != nil:
				l.failures = append(l.failures, err.Error())
			case status != http.StatusOK:
				l.failures = append(l.failures, fmt.Sprintf("status %d: %q", status, body))
			default:
				l.bodies[versionOf(body)]++
			}
		}()
	}
}

// versionOf drops the instance index from a go-binary response.
func versionOf(body string) string {
	if i := strings.Index(body, " (instance"); i >= 0 {
		return body[:i]
	}
	return body
}

// stop ends the load and fails t for any failed request or any response
// from another version than versions.
func (l *load) stop(t *testing.T, versions ...string) {
	t.Helper()
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	total := len(l.failures)
	for _, n := range l.bodies {
		total += n
	}
	t.Logf("%d requests: %v, %d failed", total, l.bodies, len(l.failures))
	if len(l.failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %s", len(l.failures), total, l.failures[0])
	}
	for body, n := range l.bodies {
		known := false
		for _, v := range versions {
			known = known || strings.HasPrefix(body, "hello from "+v)
		}
		if !known {
			t.Errorf("%d responses %q, want only %v", n, body, versions)
		}
	}
}

func gatewayClient(addr string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
	}
}

// startFerry builds cmd/ferry and runs `ferry serve` on a free loopback
// port with a database, installation and default domain of its own.
func startFerry(t *testing.T, env *envtest.Environment, token string) *ferry {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	builder := lastLine(t, root, "bash", "hack/build/builder.sh")
	image := lastLine(t, root, "bash", "hack/build/ferry-image.sh")
	bin := filepath.Join(dir, "ferry")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ferry")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ferry: %v\n%s", err, out)
	}

	f := &ferry{domain: "e2e-" + token + ".ferry.test"}
	httpsPort := "8443"
	if _, port, err := net.SplitHostPort(env.GatewayHTTPS); err == nil {
		httpsPort = port
	}
	config := fmt.Sprintf("staging:\n  default_stack: ferry-test\n  builders:\n  - stack: ferry-test\n    image: %q\n", builder) +
		fmt.Sprintf("routing:\n  default_domain: %q\n  https_port: %s\n  gateway_namespace: %q\n  gateway_name: %q\n",
			f.domain, httpsPort, env.GatewayNamespace, env.GatewayName) +
		"  internal_domain: e2e.internal\n  internal_route_namespace: ferry-e2e-internal-routes\n" +
		"  tcp_reservable_ports: \"1034-1043\"\n"
	configFile := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	f.url = "http://" + addr
	password := randomToken(t)
	leaseNamespace := "ferry-e2e-deployments-" + token
	databaseURL := newDatabase(t, env.DatabaseURL, "ferry_e2e_deployments_"+token)

	logPath := filepath.Join(dir, "ferry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", configFile)
	cmd.Env = append(os.Environ(),
		"FERRY_DATABASE_URL="+databaseURL,
		"FERRY_LISTEN_ADDRESS="+addr,
		"FERRY_EXTERNAL_URL=http://"+addr,
		"FERRY_ADMIN_USERNAME=admin",
		"FERRY_ADMIN_PASSWORD="+password,
		"FERRY_LOG_LEVEL=debug",
		"FERRY_DATA_DIR="+filepath.Join(dir, "data"),
		"KUBECONFIG="+env.Kubeconfig,
		"FERRY_REGISTRY="+env.Registry,
		"FERRY_REGISTRY_CLUSTER_ADDRESS="+env.ClusterRegistry,
		"FERRY_STAGING_IMAGE="+image,
		"POD_NAMESPACE="+leaseNamespace,
		"FERRY_INSTALLATION=e2e-"+token,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("ferry log:\n%s", log)
			}
		}
		deleteNamespace(env, leaseNamespace)
	})

	envtest.WaitFor(t, startTimeout, "ferry to serve on "+f.url, func(context.Context) (bool, string) {
		resp, err := http.Get(f.url + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	f.token = login(t, f.url, password)
	return f
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

// upload sends a package's bits as the cf CLI does, with no matched
// resources.
func (f *ferry) upload(t *testing.T, pkg string, bits []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", "[]"); err != nil {
		t.Fatal(err)
	}
	part, err := mw.CreateFormFile("bits", "package.zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(bits); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.url+"/v3/packages/"+pkg+"/upload", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	f.send(t, req, http.StatusOK, nil)
}

// goBinaryApp returns a directory with the go-binary fixture and its
// server built as a static executable.
func goBinaryApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "server"), ".")
	build.Dir = filepath.Join(repoRoot(t), "fixtures", "apps", "go-binary")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build go-binary: %v\n%s", err, out)
	}
	return dir
}

// zipDir returns a zip of the regular files in dir with their modes.
func zipDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Deflate, Modified: time.Unix(0, 0).UTC()}
		hdr.SetMode(info.Mode())
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
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

// newDatabase creates a database next to the one of baseURL, drops it
// when the test ends, and returns its URL.
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

func deleteNamespace(env *envtest.Environment, namespace string) {
	_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
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
