//go:build e2e

package scheduledtasks

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
	"testing"
	"time"

	_ "github.com/lib/pq"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
)

// Deadlines for waiting only, never assertions about speed.
const (
	startTimeout   = 3 * time.Minute
	stagingTimeout = 5 * time.Minute
)

// ferry is a `ferry serve` process on the local environment with its own
// database and installation name, and an admin token for it.
type ferry struct {
	url   string
	token string
	// installation is the FERRY_INSTALLATION of the process, which its
	// objects carry in their ownership label.
	installation string
}

// startFerry builds cmd/ferry and runs `ferry serve` on a free loopback
// port with a new database of the environment's PostgreSQL, the test
// builder and the Ferry image. The process stops when the test ends.
func startFerry(t *testing.T, env *envtest.Environment) *ferry {
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

	token := randomToken(t)
	databaseURL := newDatabase(t, env.DatabaseURL, "ferry_e2e_scheduled_"+token)
	configFile := filepath.Join(dir, "ferry.yaml")
	config := fmt.Sprintf("staging:\n  default_stack: ferry-test\n  builders:\n  - stack: ferry-test\n    image: %q\n", builder)
	// Its own default domain and the e2e internal domain keep its routes
	// apart from those of make run's installation on the shared Gateway.
	config += fmt.Sprintf("routing:\n  default_domain: %q\n  internal_domain: e2e.internal\n"+
		"  internal_route_namespace: ferry-e2e-internal-routes\n  tcp_reservable_ports: \"1034-1043\"\n",
		"e2e-"+token+".ferry.test")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	password := randomToken(t)
	leaseNamespace := "ferry-e2e-scheduled-" + token
	f := &ferry{url: "http://" + addr, installation: "e2e-" + token}

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
		"FERRY_INSTALLATION="+f.installation,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
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
		deleteNamespace(t, env, leaseNamespace)
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

// do sends a JSON request and fails t unless the response has the status
// want. The body is decoded into out when out is not nil.
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

// stageApp creates an app in space from the fixture app dir, uploads its
// files as one zip, stages the package and makes the droplet current. The
// app is not started: scheduled tasks need only its droplet.
func (f *ferry) stageApp(t *testing.T, space, name, dir string) string {
	t.Helper()
	app := f.create(t, "/v3/apps", map[string]any{"name": name,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}})
	pkg := f.create(t, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}}})

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", "[]"); err != nil {
		t.Fatal(err)
	}
	part, err := mw.CreateFormFile("bits", "package.zip")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(zipDir(t, dir)); err != nil {
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

	var state struct {
		State   string `json:"state"`
		Droplet *struct {
			GUID string `json:"guid"`
		} `json:"droplet"`
		Error *string `json:"error"`
	}
	envtest.WaitFor(t, stagingTimeout, "package "+pkg+" to be READY", func(context.Context) (bool, string) {
		f.get(t, "/v3/packages/"+pkg, &state)
		return state.State == "READY", state.State
	})
	build := f.create(t, "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}})
	envtest.WaitFor(t, stagingTimeout, "build "+build+" to finish", func(context.Context) (bool, string) {
		f.get(t, "/v3/builds/"+build, &state)
		return state.State != "STAGING", state.State
	})
	if state.State != "STAGED" || state.Droplet == nil {
		t.Fatalf("build %s = %s, error %v, want STAGED with a droplet", build, state.State, state.Error)
	}
	f.do(t, http.MethodPatch, "/v3/apps/"+app+"/relationships/current_droplet",
		map[string]any{"data": map[string]any{"guid": state.Droplet.GUID}}, http.StatusOK, nil)
	return app
}

// zipDir returns a zip of the regular files under dir with their modes.
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
		header, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		header.Name = filepath.ToSlash(rel)
		header.Method = zip.Deflate
		w, err := zw.CreateHeader(header)
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
		t.Fatalf("zip %s: %v", dir, err)
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
