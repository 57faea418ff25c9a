//go:build e2e

// Package staging is the end-to-end test of staging. It runs `ferry serve`
// against the local environment and drives it over HTTP as the cf CLI
// does: it creates apps, matches resources, uploads packages and stages
// them. Good apps end in a STAGED build with a droplet image in the
// registry, bad ones in a FAILED build with Cloud Foundry's error, and
// invalid uploads in a 422. Run it with:
// FERRY_E2E_NO_UP=1 go test -tags e2e ./e2e/staging/ -count=1 -v
package staging

import (
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// Deadlines for waiting only; staging one fixture app takes seconds, and
// a restarted Ferry may wait for its previous leader Lease to expire.
const (
	startTimeout   = 3 * time.Minute
	stagingTimeout = 5 * time.Minute
)

const (
	errNoAppDetected    = "NoAppDetectedError - An app was not successfully detected by any available buildpack"
	errBuildpackCompile = "BuildpackCompileFailed - App staging failed in the buildpack compile phase"
)

// sampleApp is a fixture app that stages, with what its droplet must show.
type sampleApp struct {
	fixture      string
	buildpack    string // the buildpack that must take part
	banner       string // a line that buildpack prints while building
	processTypes []string
}

var sampleApps = []sampleApp{
	{"go-binary", "ferry/binary", "---> Prebuilt executable (ferry/binary", []string{"web"}},
	{"staticfile", "ferry/staticfile", "---> Static files (ferry/staticfile", []string{"web"}},
	{"procfile", "ferry/procfile", "---> Procfile processes (ferry/procfile", []string{"web", "worker"}},
	{"python", "ferry/python", "---> Python (ferry/python", []string{"web"}},
}

func TestStaging(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-staging-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	for _, sample := range sampleApps {
		t.Run(sample.fixture+" stages", func(t *testing.T) {
			dir := fixtureDir(t, sample.fixture)
			if sample.fixture == "go-binary" {
				dir = goBinaryApp(t)
			}
			p, build := f.stage(t, space, sample.fixture, dir, nil)
			if build.State != "STAGED" || build.Droplet == nil {
				t.Fatalf("build = %s, error %v", build.State, build.Error)
			}
			checkDroplet(t, env, f, p.app, build, sample)

			log := buildLog(t, env, space, build.GUID)
			if !strings.Contains(log, sample.banner) {
				t.Errorf("staging log has no %q:\n%s", sample.banner, log)
			}
		})
	}

	t.Run("staged droplet and Job", func(t *testing.T) {
		p, build := f.stage(t, space, "procfile-current", fixtureDir(t, "procfile"), nil)
		if build.State != "STAGED" || build.Droplet == nil {
			t.Fatalf("build = %s, error %v", build.State, build.Error)
		}
		var rel struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		}
		f.do(t, http.MethodPatch, "/v3/apps/"+p.app+"/relationships/current_droplet",
			map[string]any{"data": map[string]any{"guid": build.Droplet.GUID}}, http.StatusOK, &rel)
		if rel.Data.GUID != build.Droplet.GUID {
			t.Errorf("current droplet = %q", rel.Data.GUID)
		}

		// The staging Job and its environment Secret are Ferry's, and the
		// Secret is gone once the build finished.
		job := buildJob(t, env, space, build.GUID)
		if job.Labels[k8sbackend.LabelAppGUID] != p.app || job.Labels[k8sbackend.LabelSourceType] != "STG" {
			t.Errorf("Job labels = %v", job.Labels)
		}
		_, err := env.Kube.CoreV1().Secrets(job.Namespace).Get(t.Context(), k8sbackend.StagingEnvSecretName(build.GUID), metav1.GetOptions{})
		if err == nil {
			t.Error("the staging environment Secret outlived the build")
		}
	})

	t.Run("requested buildpack stages", func(t *testing.T) {
		lifecycle := map[string]any{"type": "buildpack", "data": map[string]any{"buildpacks": []string{"ferry/staticfile"}}}
		_, build := f.stage(t, space, "static-requested", fixtureDir(t, "staticfile"), lifecycle)
		if build.State != "STAGED" {
			t.Fatalf("build = %s, error %v", build.State, build.Error)
		}
	})

	t.Run("no-detect fails with NoAppDetectedError", func(t *testing.T) {
		_, build := f.stage(t, space, "no-detect", fixtureDir(t, "no-detect"), nil)
		if build.State != "FAILED" || build.Error == nil || *build.Error != errNoAppDetected {
			t.Errorf("build = %s, error %v, want FAILED %q", build.State, build.Error, errNoAppDetected)
		}
		if log := buildLog(t, env, space, build.GUID); !strings.Contains(log, "No buildpack groups passed detection") {
			t.Errorf("staging log has no detection failure:\n%s", log)
		}
	})

	t.Run("build-fails fails with BuildpackCompileFailed", func(t *testing.T) {
		_, build := f.stage(t, space, "build-fails", fixtureDir(t, "build-fails"), nil)
		if build.State != "FAILED" || build.Error == nil || *build.Error != errBuildpackCompile {
			t.Errorf("build = %s, error %v, want FAILED %q", build.State, build.Error, errBuildpackCompile)
		}
		want := "ERROR: requirements.txt names packages"
		if log := buildLog(t, env, space, build.GUID); !strings.Contains(log, want) {
			t.Errorf("staging log has no %q:\n%s", want, log)
		}
	})

	t.Run("invalid uploads get 422", func(t *testing.T) {
		testInvalidUploads(t, env, f, space)
	})

	t.Run("build survives a Ferry restart", func(t *testing.T) {
		testRestart(t, env, f, space)
	})
}

// checkDroplet checks the droplet of a STAGED build in the API and its
// image in the registry.
func checkDroplet(t *testing.T, env *envtest.Environment, f *ferry, app string, build buildView, sample sampleApp) {
	t.Helper()
	var droplet struct {
		State        string            `json:"state"`
		Stack        string            `json:"stack"`
		ProcessTypes map[string]string `json:"process_types"`
		Buildpacks   []struct {
			Name string `json:"name"`
		} `json:"buildpacks"`
	}
	f.get(t, "/v3/droplets/"+build.Droplet.GUID, &droplet)
	if droplet.State != "STAGED" || droplet.Stack != "ferry-test" {
		t.Errorf("droplet state %s, stack %s", droplet.State, droplet.Stack)
	}
	var types []string
	for processType, command := range droplet.ProcessTypes {
		types = append(types, processType)
		if command == "" {
			t.Errorf("droplet process type %s has no command", processType)
		}
	}
	slices.Sort(types)
	if !slices.Equal(types, sample.processTypes) {
		t.Errorf("droplet process types = %v, want %v", types, sample.processTypes)
	}
	var buildpacks []string
	for _, bp := range droplet.Buildpacks {
		buildpacks = append(buildpacks, bp.Name)
	}
	if !slices.Contains(buildpacks, sample.buildpack) {
		t.Errorf("droplet buildpacks = %v, want %s among them", buildpacks, sample.buildpack)
	}

	// The droplet image is in the registry, pinned by the digest the
	// droplet row records, with the process types in its label.
	img := remoteImage(t, env.Registry+"/ferry/droplets/"+app+":"+build.GUID)
	imageTypes, digest := imageProcessTypes(t, img)
	if image := f.dropletImage(t, build.Droplet.GUID); image != env.ClusterRegistry+"/ferry/droplets/"+app+"@"+digest {
		t.Errorf("droplet image = %q, want the cluster address pinned to %s", image, digest)
	}
	if !slices.Equal(imageTypes, sample.processTypes) {
		t.Errorf("image process types = %v, want %v", imageTypes, sample.processTypes)
	}
}

// testInvalidUploads sends uploads that Ferry must reject, each to a new
// package, and checks that none of them leaves anything behind. The
// package still awaits its upload and cannot be staged, the registry has no
// image for it, and no staging Job exists for its app.
func testInvalidUploads(t *testing.T, env *envtest.Environment, f *ferry, space string) {
	valid := zipBytes(t, zipEntry{name: "index.html", mode: 0o644, data: "<p>hi</p>"})
	cases := []struct {
		name        string
		bits        []byte
		contentType string // overrides the multipart content type when set
	}{
		{name: "zip slip", bits: zipBytes(t,
			zipEntry{name: "index.html", mode: 0o644, data: "<p>hi</p>"},
			zipEntry{name: "../../escaped.txt", mode: 0o644, data: "outside"})},
		{name: "symlink escape", bits: zipBytes(t,
			zipEntry{name: "index.html", mode: 0o644, data: "<p>hi</p>"},
			zipEntry{name: "passwd", mode: fs.ModeSymlink | 0o777, data: "../../../../etc/passwd"})},
		{name: "absolute path", bits: zipBytes(t,
			zipEntry{name: "index.html", mode: 0o644, data: "<p>hi</p>"},
			zipEntry{name: "/tmp/absolute.txt", mode: 0o644, data: "outside"})},
		{name: "truncated zip", bits: valid[:len(valid)/2]},
		{name: "empty upload", bits: []byte{}},
		{name: "wrong content type", bits: valid, contentType: "application/zip"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := f.create(t, "/v3/apps", map[string]any{"name": "invalid-upload-" + string(rune('a'+i)),
				"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}})
			pkg := f.create(t, "/v3/packages", map[string]any{"type": "bits",
				"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": p}}}})

			if tc.contentType == "" {
				f.upload(t, pkg, "[]", tc.bits, http.StatusUnprocessableEntity)
			} else {
				req, err := http.NewRequest(http.MethodPost, f.url+"/v3/packages/"+pkg+"/upload", bytes.NewReader(tc.bits))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", tc.contentType)
				f.send(t, req, http.StatusUnprocessableEntity, nil)
			}

			var pkgView struct {
				State string `json:"state"`
			}
			f.get(t, "/v3/packages/"+pkg, &pkgView)
			if pkgView.State != "AWAITING_UPLOAD" {
				t.Errorf("package state = %s, want AWAITING_UPLOAD", pkgView.State)
			}
			if tags := repositoryTags(t, env.Registry+"/ferry/packages/"+pkg); len(tags) != 0 {
				t.Errorf("the registry has package image tags %v", tags)
			}
			// Cloud Controller rejects staging a package that is not READY
			// with 400 CF-BadRequest.
			f.do(t, http.MethodPost, "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}}, http.StatusBadRequest, nil)
			jobs, err := env.Kube.BatchV1().Jobs(k8sbackend.SpaceNamespace(space)).List(t.Context(),
				metav1.ListOptions{LabelSelector: k8sbackend.LabelAppGUID + "=" + p})
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs.Items) != 0 {
				t.Errorf("app %s has %d staging Jobs", p, len(jobs.Items))
			}
		})
	}
}

type zipEntry struct {
	name string
	mode fs.FileMode
	data string
}

func zipBytes(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		hdr.SetMode(e.mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testRestart kills `ferry serve` with SIGKILL while a build is STAGING
// and starts it again: the build must still finish, as STAGED for a good
// app and as FAILED for an undetectable one.
func testRestart(t *testing.T, env *envtest.Environment, f *ferry, space string) {
	t.Run("staged", func(t *testing.T) {
		p := f.push(t, space, "restart-static", fixtureDir(t, "staticfile"), nil)
		build := f.startBuild(t, p.pkg)
		f.kill(t)
		f.start(t)
		build = f.awaitBuild(t, build.GUID)
		if build.State != "STAGED" || build.Droplet == nil {
			t.Fatalf("build = %s, error %v, want STAGED", build.State, build.Error)
		}
		checkDroplet(t, env, f, p.app, build, sampleApps[1])
	})

	t.Run("failed detection", func(t *testing.T) {
		p := f.push(t, space, "restart-no-detect", fixtureDir(t, "no-detect"), nil)
		build := f.startBuild(t, p.pkg)
		envtest.WaitFor(t, stagingTimeout, "staging Job of build "+build.GUID, func(ctx context.Context) (bool, string) {
			_, err := env.Kube.BatchV1().Jobs(k8sbackend.SpaceNamespace(space)).Get(ctx, k8sbackend.BuildJobName(build.GUID), metav1.GetOptions{})
			return err == nil, errString(err)
		})
		var current buildView
		f.get(t, "/v3/builds/"+build.GUID, &current)
		t.Logf("build %s is %s when Ferry is killed", build.GUID, current.State)
		f.kill(t)
		f.start(t)
		build = f.awaitBuild(t, build.GUID)
		if build.State != "FAILED" || build.Error == nil || *build.Error != errNoAppDetected {
			t.Errorf("build = %s, error %v, want FAILED %q", build.State, build.Error, errNoAppDetected)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
