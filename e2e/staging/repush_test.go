//go:build e2e

package staging

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// Lines in the staging log that tell a fresh stdlib-bytecode layer of the
// python buildpack from a reused one. The lifecycle lines are those of
// lifecycle v0.20.8.
const (
	logCompiling         = "compiling the standard library"
	logReusingBytecode   = "reusing cached standard library bytecode"
	logRestoredFromCache = `Restoring data for "ferry/python:stdlib-bytecode" from cache`
	logReusedLayer       = "Reusing layer 'ferry/python:stdlib-bytecode'"
)

// TestRepush pushes the python sample app, stages it and makes the droplet
// current, as cf push does, then pushes it again with app.py changed and
// stages again. The second resource match returns every unchanged file, so
// the second package.zip carries only app.py. The second build gets the
// first droplet as its previous image, restores the python buildpack's
// bytecode layer from the app's cache image instead of compiling it, and
// its droplet shares every layer but the app layer with the first. The
// test logs both builds' durations and asserts nothing about them.
func TestRepush(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)
	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-repush-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	// A random comment in both files keeps the resource match of the first
	// push empty, whatever earlier runs uploaded.
	dir := copyAppDir(t, fixtureDir(t, "python"))
	marker := "\n# push " + randomToken(t) + "\n"
	appendFile(t, filepath.Join(dir, "app.py"), marker)
	appendFile(t, filepath.Join(dir, "requirements.txt"), marker)

	first := f.push(t, space, "repush", dir, nil)
	if len(first.matched) != 0 {
		t.Errorf("first push matched %v, want nothing", sortedPaths(first.matched))
	}
	firstStart := time.Now()
	firstBuild := f.awaitBuild(t, f.startBuild(t, first.pkg).GUID)
	firstObserved := time.Since(firstStart)
	if firstBuild.State != "STAGED" || firstBuild.Droplet == nil {
		t.Fatalf("first build = %s, error %v", firstBuild.State, firstBuild.Error)
	}
	if args := creatorArgs(t, env, space, firstBuild.GUID); slices.ContainsFunc(args, isPreviousImageArg) {
		t.Errorf("first creator arguments %q name a previous image, but the app had no droplet", args)
	}
	firstLog := buildLog(t, env, space, firstBuild.GUID)
	if !strings.Contains(firstLog, logCompiling) {
		t.Errorf("first staging log has no %q:\n%s", logCompiling, firstLog)
	}
	for _, line := range strings.Split(firstLog, "\n") {
		if strings.Contains(line, "bytecode files in") {
			t.Logf("first build: %s", strings.TrimSpace(line))
		}
	}
	f.do(t, http.MethodPatch, "/v3/apps/"+first.app+"/relationships/current_droplet",
		map[string]any{"data": map[string]any{"guid": firstBuild.Droplet.GUID}}, http.StatusOK, nil)

	appendFile(t, filepath.Join(dir, "app.py"), "# changed\n")
	second := f.pushPackage(t, first.app, dir)
	var unchanged []string
	for _, file := range readAppDir(t, dir) {
		if !file.dir && file.path != "app.py" {
			unchanged = append(unchanged, file.path)
		}
	}
	slices.Sort(unchanged)
	if got := sortedPaths(second.matched); !slices.Equal(got, unchanged) {
		t.Errorf("second resource match = %v, want the unchanged files %v", got, unchanged)
	}
	if !slices.Equal(second.zipFiles, []string{"app.py"}) {
		t.Errorf("second package.zip has files %v, want only app.py", second.zipFiles)
	}
	secondStart := time.Now()
	secondBuild := f.awaitBuild(t, f.startBuild(t, second.pkg).GUID)
	secondObserved := time.Since(secondStart)
	if secondBuild.State != "STAGED" {
		t.Fatalf("second build = %s, error %v", secondBuild.State, secondBuild.Error)
	}

	want := "-previous-image=" + f.dropletImage(t, firstBuild.Droplet.GUID)
	if args := creatorArgs(t, env, space, secondBuild.GUID); !slices.Contains(args, want) {
		t.Errorf("second creator arguments %q do not contain %s", args, want)
	}
	secondLog := buildLog(t, env, space, secondBuild.GUID)
	for _, line := range []string{logReusingBytecode, logRestoredFromCache, logReusedLayer} {
		if !strings.Contains(secondLog, line) {
			t.Errorf("second staging log has no %q:\n%s", line, secondLog)
		}
	}
	if strings.Contains(secondLog, logCompiling) {
		t.Errorf("second staging log has %q, want the cached layer reused:\n%s", logCompiling, secondLog)
	}

	// Only the app layer differs: the lifecycle's and the buildpacks'
	// layers of the second droplet are the same blobs as the first's.
	repo := env.Registry + "/ferry/droplets/" + first.app
	firstLayers := layerDigests(t, remoteImage(t, repo+":"+firstBuild.GUID))
	secondLayers := layerDigests(t, remoteImage(t, repo+":"+secondBuild.GUID))
	var fresh []string
	for _, d := range secondLayers {
		if !slices.Contains(firstLayers, d) {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) != 1 {
		t.Errorf("second droplet has %d layers not in the first (%v), want only the app layer", len(fresh), fresh)
	}
	if tags := repositoryTags(t, env.Registry+"/ferry/cache/"+first.app); len(tags) == 0 {
		t.Errorf("the registry has no cache image for app %s", first.app)
	}

	t.Logf("first build export: %s", exportSummary(firstLog))
	t.Logf("second build export: %s", exportSummary(secondLog))
	for _, b := range []struct {
		name     string
		build    buildView
		observed time.Duration
		upload   int
	}{{"first", firstBuild, firstObserved, first.uploadLen}, {"second", secondBuild, secondObserved, second.uploadLen}} {
		job := buildJob(t, env, space, b.build.GUID)
		created, err1 := time.Parse(time.RFC3339, b.build.CreatedAt)
		updated, err2 := time.Parse(time.RFC3339, b.build.UpdatedAt)
		api := "unknown"
		if err1 == nil && err2 == nil {
			api = updated.Sub(created).String()
		}
		t.Logf("TIMING %s build: Job start to completion %s; build created_at to STAGED updated_at %s; POST /v3/builds to STAGED seen by polling %s; package.zip %d bytes",
			b.name, jobDuration(t, job), api, b.observed.Round(10*time.Millisecond), b.upload)
	}
}

// creatorArgs returns the arguments of the creator container in a build's
// staging Job.
func creatorArgs(t *testing.T, env *envtest.Environment, space, build string) []string {
	t.Helper()
	for _, c := range buildJob(t, env, space, build).Spec.Template.Spec.Containers {
		if c.Name == k8sbackend.BuildContainer {
			return c.Args
		}
	}
	t.Fatalf("staging Job of build %s has no %s container", build, k8sbackend.BuildContainer)
	return nil
}

// exportSummary counts the image layers that the creator's export phase
// reused from the previous image and those it added, as its log lines
// "Reusing layer" and "Adding layer" report them.
func exportSummary(log string) string {
	reused := strings.Count(log, "Reusing layer '")
	added := strings.Count(log, "Adding layer '")
	return fmt.Sprintf("%d layers reused from the previous image, %d added", reused, added)
}

func isPreviousImageArg(arg string) bool { return strings.HasPrefix(arg, "-previous-image=") }

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
}
