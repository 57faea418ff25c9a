//go:build e2e

// Package staging is the end-to-end test of staging. It runs `ferry serve`
// against the local environment and drives it over HTTP as the cf CLI
// does: it creates apps, uploads packages and stages them. Good apps end
// in a STAGED build with a droplet image in the registry, bad ones in a
// FAILED build with Cloud Foundry's error. Run it with:
// go test -tags e2e ./e2e/staging.
package staging

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

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/lib/pq"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// Deadlines for waiting only; staging one fixture app takes seconds.
const (
	startTimeout   = 3 * time.Minute
	stagingTimeout = 5 * time.Minute
)

// ferry is a running `ferry serve` and an admin token for it.
type ferry struct {
	t           *testing.T
	url         string
	token       string
	databaseURL string
}

func TestStaging(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)

	org := f.create("/v3/organizations", map[string]any{"name": "e2e-staging-" + randomToken(t)})
	space := f.create("/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	t.Run("procfile app stages with two process types", func(t *testing.T) {
		app, build := f.stage(t, space, "procfile", "procfile", nil)
		if build.State != "STAGED" || build.Droplet == nil {
			t.Fatalf("build = %s, error %v", build.State, build.Error)
		}

		var droplet struct {
			State        string            `json:"state"`
			Stack        string            `json:"stack"`
			ProcessTypes map[string]string `json:"process_types"`
			Buildpacks   []struct {
				Name string `json:"name"`
			} `json:"buildpacks"`
		}
		f.get("/v3/droplets/"+build.Droplet.GUID, &droplet)
		if droplet.State != "STAGED" || droplet.Stack != "ferry-test" || droplet.ProcessTypes["web"] == "" ||
			droplet.ProcessTypes["worker"] == "" || len(droplet.Buildpacks) == 0 || droplet.Buildpacks[0].Name != "ferry/procfile" {
			t.Errorf("droplet = %+v", droplet)
		}

		// The droplet image is in the registry, pinned by the digest the
		// droplet row records, with the process types in its label.
		tag := env.Registry + "/ferry/droplets/" + app + ":" + build.GUID
		labels, digest := imageLabels(t, tag)
		if image := f.dropletImage(build.Droplet.GUID); image != env.ClusterRegistry+"/ferry/droplets/"+app+"@"+digest {
			t.Errorf("droplet image = %q, want the cluster address pinned to %s", image, digest)
		}
		var md struct {
			Processes []struct {
				Type string `json:"type"`
			} `json:"processes"`
		}
		if err := json.Unmarshal([]byte(labels[k8sbackend.BuildMetadataLabel]), &md); err != nil {
			t.Fatalf("build metadata label: %v", err)
		}
		types := []string{}
		for _, p := range md.Processes {
			types = append(types, p.Type)
		}
		if strings.Join(types, ",") != "web,worker" {
			t.Errorf("image process types = %v", types)
		}

		var rel struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		}
		f.do(http.MethodPatch, "/v3/apps/"+app+"/relationships/current_droplet",
			map[string]any{"data": map[string]any{"guid": build.Droplet.GUID}}, http.StatusOK, &rel)
		if rel.Data.GUID != build.Droplet.GUID {
			t.Errorf("current droplet = %q", rel.Data.GUID)
		}

		// The staging Job and its environment Secret are Ferry's, and the
		// Secret is gone once the build finished.
		job, err := env.Kube.BatchV1().Jobs(k8sbackend.SpaceNamespace(space)).Get(t.Context(), k8sbackend.BuildJobName(build.GUID), metav1.GetOptions{})
		if err != nil {
			t.Fatalf("staging Job: %v", err)
		}
		if job.Labels[k8sbackend.LabelAppGUID] != app || job.Labels[k8sbackend.LabelSourceType] != "STG" {
			t.Errorf("Job labels = %v", job.Labels)
		}
		_, err = env.Kube.CoreV1().Secrets(job.Namespace).Get(t.Context(), k8sbackend.StagingEnvSecretName(build.GUID), metav1.GetOptions{})
		if err == nil {
			t.Error("the staging environment Secret outlived the build")
		}
	})

	t.Run("requested buildpack stages a static site", func(t *testing.T) {
		lifecycle := map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{"ferry/staticfile"}}}
		_, build := f.stage(t, space, "staticfile", "static", lifecycle)
		if build.State != "STAGED" {
			t.Fatalf("build = %s, error %v", build.State, build.Error)
		}
	})

	t.Run("undetectable app fails with NoAppDetectedError", func(t *testing.T) {
		_, build := f.stage(t, space, "no-detect", "nothing", nil)
		want := "NoAppDetectedError - An app was not successfully detected by any available buildpack"
		if build.State != "FAILED" || build.Error == nil || *build.Error != want {
			t.Errorf("build = %s, error %v, want FAILED %q", build.State, build.Error, want)
		}
	})

	t.Run("failing buildpack fails with BuildpackCompileFailed", func(t *testing.T) {
		_, build := f.stage(t, space, "build-fails", "broken", nil)
		want := "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
		if build.State != "FAILED" || build.Error == nil || *build.Error != want {
			t.Errorf("build = %s, error %v, want FAILED %q", build.State, build.Error, want)
		}
	})
}

// buildView is the part of the build JSON the cf CLI reads.
type buildView struct {
	GUID    string  `json:"guid"`
	State   string  `json:"state"`
	Error   *string `json:"error"`
	Droplet *struct {
		GUID string `json:"guid"`
	} `json:"droplet"`
}

// stage pushes a fixture app the way cf push does after apply_manifest:
// create the app, create a bits package, upload it, create a build and
// poll it until it leaves STAGING.
func (f *ferry) stage(t *testing.T, space, fixture, appName string, lifecycle map[string]any) (string, buildView) {
	t.Helper()
	body := map[string]any{"name": appName,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}}
	if lifecycle != nil {
		body["lifecycle"] = lifecycle
	}
	app := f.create("/v3/apps", body)
	pkg := f.create("/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}}})
	f.upload(pkg, zipFixture(t, fixture))

	envtest.WaitFor(t, stagingTimeout, "package "+pkg+" READY", func(context.Context) (bool, string) {
		var p struct {
			State string `json:"state"`
		}
		f.get("/v3/packages/"+pkg, &p)
		return p.State == "READY", p.State
	})

	var build buildView
	f.do(http.MethodPost, "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}}, http.StatusCreated, &build)
	envtest.WaitFor(t, stagingTimeout, "build "+build.GUID+" of "+fixture+" to finish", func(context.Context) (bool, string) {
		f.get("/v3/builds/"+build.GUID, &build)
		return build.State != "STAGING", build.State
	})
	t.Logf("%s: build %s %s", fixture, build.GUID, build.State)
	return app, build
}

// zipFixture zips fixtures/apps/NAME as the cf CLI does: relative paths,
// directory entries, and unix modes in the external attributes.
func zipFixture(t *testing.T, fixture string) []byte {
	t.Helper()
	root := filepath.Join(repoRoot(t), "fixtures", "apps", fixture)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.Method = zip.Deflate
		if d.IsDir() {
			hdr.Name += "/"
			hdr.Method = zip.Store
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil || d.IsDir() {
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

// upload sends the package bits in the cf CLI's multipart format: the
// resources field first, then the bits file named package.zip.
func (f *ferry) upload(pkg string, bits []byte) {
	f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", "[]"); err != nil {
		f.t.Fatal(err)
	}
	part, err := mw.CreateFormFile("bits", "package.zip")
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := part.Write(bits); err != nil {
		f.t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		f.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.url+"/v3/packages/"+pkg+"/upload", &body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	f.send(req, http.StatusOK, nil)
}

func (f *ferry) create(path string, body any) string {
	f.t.Helper()
	var created struct {
		GUID string `json:"guid"`
	}
	f.do(http.MethodPost, path, body, http.StatusCreated, &created)
	return created.GUID
}

func (f *ferry) get(path string, out any) {
	f.t.Helper()
	f.do(http.MethodGet, path, nil, http.StatusOK, out)
}

func (f *ferry) do(method, path string, body any, want int, out any) {
	f.t.Helper()
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.url+path, reader)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	f.send(req, want, out)
}

func (f *ferry) send(req *http.Request, want int, out any) {
	f.t.Helper()
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != want {
		f.t.Fatalf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: decode %s: %v", req.Method, req.URL.Path, data, err)
		}
	}
}

// startFerry builds cmd/ferry and runs `ferry serve` on a free loopback
// port and a new database of the environment's PostgreSQL, with the test
// builder and the Ferry image. Its leader Lease is its own, so another
// Ferry on the environment cannot hold it.
func startFerry(t *testing.T, env *envtest.Environment) *ferry {
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
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	password := randomToken(t)
	leaseNamespace := "ferry-e2e-staging-" + token

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
	)
	logFile, err := os.Create(filepath.Join(dir, "ferry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			if log, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("ferry log:\n%s", log)
			}
		}
		deleteNamespace(t, env, leaseNamespace)
	})

	f := &ferry{t: t, url: "http://" + addr, databaseURL: databaseURL}
	envtest.WaitFor(t, startTimeout, "ferry to serve on "+addr, func(context.Context) (bool, string) {
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
func (f *ferry) dropletImage(droplet string) string {
	f.t.Helper()
	db, err := sql.Open("postgres", f.databaseURL)
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	var image string
	if err := db.QueryRow(`SELECT image FROM droplets WHERE guid = $1`, droplet).Scan(&image); err != nil {
		f.t.Fatalf("droplet %s: %v", droplet, err)
	}
	return image
}

// imageLabels returns the config labels and digest of the image tag.
func imageLabels(t *testing.T, tag string) (map[string]string, string) {
	t.Helper()
	ref, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("droplet image %s: %v", tag, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config.Labels, digest.String()
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
