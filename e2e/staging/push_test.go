//go:build e2e

package staging

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferrycf/ferry/e2e/envtest"
)

// appFile is one file or directory of an app directory, as the cf CLI
// collects them before a push.
type appFile struct {
	path string // slash-separated, relative to the app directory
	mode fs.FileMode
	data []byte
	dir  bool
}

// resource is a file in the JSON of POST /v3/resource_matches and of the
// upload's resources field. The cf CLI sends the mode as an octal string.
type resource struct {
	Checksum struct {
		Value string `json:"value"`
	} `json:"checksum"`
	SizeInBytes int64  `json:"size_in_bytes"`
	Path        string `json:"path"`
	Mode        string `json:"mode"`
}

// pushed is what one push sent: the resources Ferry matched and the
// names of the files (not directories) in the uploaded package.zip.
type pushed struct {
	app, pkg  string
	matched   []resource
	zipFiles  []string
	uploadLen int
}

// buildView is the part of the build JSON the cf CLI reads.
type buildView struct {
	GUID      string  `json:"guid"`
	State     string  `json:"state"`
	Error     *string `json:"error"`
	CreatedAt string  `json:"created_at"`
	UpdatedAt string  `json:"updated_at"`
	Droplet   *struct {
		GUID string `json:"guid"`
	} `json:"droplet"`
}

// readAppDir collects the files and directories under dir, sorted by path.
func readAppDir(t *testing.T, dir string) []appFile {
	t.Helper()
	var files []appFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := appFile{path: filepath.ToSlash(rel), mode: info.Mode(), dir: d.IsDir()}
		if !f.dir {
			if f.data, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func fixtureDir(t *testing.T, fixture string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "fixtures", "apps", fixture)
}

// copyAppDir copies the regular files and directories of src into a new
// temporary directory, keeping their modes, and returns it.
func copyAppDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	for _, f := range readAppDir(t, src) {
		path := filepath.Join(dst, filepath.FromSlash(f.path))
		var err error
		if f.dir {
			err = os.MkdirAll(path, f.mode.Perm()|0o700)
		} else {
			err = os.WriteFile(path, f.data, f.mode.Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// goBinaryApp returns a copy of the go-binary fixture with its server
// built as a static executable, as the fixture's comment requires.
func goBinaryApp(t *testing.T) string {
	t.Helper()
	return buildGoFixture(t, "go-binary")
}

// buildGoFixture returns a copy of a fixture app. When the fixture is a Go
// module, the copy also contains its program built as the static
// executable "server", which the binary buildpack runs.
func buildGoFixture(t *testing.T, fixture string) string {
	t.Helper()
	dir := copyAppDir(t, fixtureDir(t, fixture))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return dir
	}
	build := exec.Command("go", "build", "-trimpath", "-o", "server", ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", fixture, err, out)
	}
	return dir
}

func resourceOf(f appFile) resource {
	sum := sha1.Sum(f.data)
	var r resource
	r.Checksum.Value = hex.EncodeToString(sum[:])
	r.SizeInBytes = int64(len(f.data))
	r.Path = f.path
	r.Mode = fmt.Sprintf("%#o", f.mode.Perm())
	return r
}

// zipApp writes package.zip as the cf CLI does: relative paths, an entry
// for each directory, unix modes in the external attributes, and only the
// files for which keep returns true.
func zipApp(t *testing.T, files []appFile, keep func(appFile) bool) ([]byte, []string) {
	t.Helper()
	var buf bytes.Buffer
	var names []string
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		if !f.dir && !keep(f) {
			continue
		}
		hdr := &zip.FileHeader{Name: f.path, Method: zip.Deflate, Modified: time.Unix(0, 0).UTC()}
		hdr.SetMode(f.mode)
		if f.dir {
			hdr.Name += "/"
			hdr.Method = zip.Store
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if f.dir {
			continue
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatal(err)
		}
		names = append(names, f.path)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), names
}

// push creates an app and pushes dir to a new bits package the way cf push
// does: create the app and a package, ask which files Ferry already has,
// and upload the matched resources and a zip of the rest. lifecycle is
// the app's lifecycle, or nil for the default.
func (f *ferry) push(t *testing.T, space, appName, dir string, lifecycle map[string]any) pushed {
	t.Helper()
	body := map[string]any{"name": appName,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}}
	if lifecycle != nil {
		body["lifecycle"] = lifecycle
	}
	app := f.create(t, "/v3/apps", body)
	return f.pushPackage(t, app, dir)
}

// pushPackage pushes dir as a new bits package of an existing app and
// waits until the package is READY.
func (f *ferry) pushPackage(t *testing.T, app, dir string) pushed {
	t.Helper()
	pkg := f.create(t, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}}})

	files := readAppDir(t, dir)
	var all []resource
	for _, file := range files {
		if !file.dir {
			all = append(all, resourceOf(file))
		}
	}
	var matches struct {
		Resources []resource `json:"resources"`
	}
	f.do(t, http.MethodPost, "/v3/resource_matches", map[string]any{"resources": all}, http.StatusCreated, &matches)
	matchedPaths := map[string]bool{}
	for _, m := range matches.Resources {
		matchedPaths[m.Path] = true
	}

	bits, names := zipApp(t, files, func(file appFile) bool { return !matchedPaths[file.path] })
	resources, err := json.Marshal(matches.Resources)
	if err != nil {
		t.Fatal(err)
	}
	f.upload(t, pkg, string(resources), bits, http.StatusOK)

	envtest.WaitFor(t, stagingTimeout, "package "+pkg+" READY", func(context.Context) (bool, string) {
		var p struct {
			State string `json:"state"`
		}
		f.get(t, "/v3/packages/"+pkg, &p)
		return p.State == "READY", p.State
	})
	return pushed{app: app, pkg: pkg, matched: matches.Resources, zipFiles: names, uploadLen: len(bits)}
}

// upload sends the package bits in the cf CLI's multipart format: the
// resources field first, then the bits file named package.zip, and fails
// t unless the response has the status want.
func (f *ferry) upload(t *testing.T, pkg, resources string, bits []byte, want int) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", resources); err != nil {
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
	f.send(t, req, want, nil)
}

// startBuild posts a build with only the package guid, as the cf CLI does.
func (f *ferry) startBuild(t *testing.T, pkg string) buildView {
	t.Helper()
	var build buildView
	f.do(t, http.MethodPost, "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}}, http.StatusCreated, &build)
	if build.State != "STAGING" {
		t.Fatalf("new build %s is %s, want STAGING", build.GUID, build.State)
	}
	return build
}

// awaitBuild polls the build until it leaves STAGING.
func (f *ferry) awaitBuild(t *testing.T, guid string) buildView {
	t.Helper()
	var build buildView
	envtest.WaitFor(t, stagingTimeout, "build "+guid+" to leave STAGING", func(context.Context) (bool, string) {
		f.get(t, "/v3/builds/"+guid, &build)
		return build.State != "STAGING", build.State
	})
	t.Logf("build %s %s", guid, build.State)
	return build
}

// stage pushes dir as a new app and stages its package.
func (f *ferry) stage(t *testing.T, space, appName, dir string, lifecycle map[string]any) (pushed, buildView) {
	t.Helper()
	p := f.push(t, space, appName, dir, lifecycle)
	build := f.startBuild(t, p.pkg)
	return p, f.awaitBuild(t, build.GUID)
}

func sortedPaths(resources []resource) []string {
	var paths []string
	for _, r := range resources {
		paths = append(paths, r.Path)
	}
	slices.Sort(paths)
	return paths
}
