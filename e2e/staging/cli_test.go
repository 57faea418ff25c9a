//go:build e2e

package staging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ferrycf/ferry/e2e/envtest"
)

// yamlContentType is the content type the cf CLI sends manifests with.
const yamlContentType = "application/x-yaml"

// cfAppJSON is the part of the app JSON the cf CLI reads.
type cfAppJSON struct {
	GUID  string `json:"guid"`
	Name  string `json:"name"`
	State string `json:"state"`
}

// cfProcess is the part of the process JSON the cf CLI reads.
type cfProcess struct {
	GUID      string `json:"guid"`
	Type      string `json:"type"`
	Instances int    `json:"instances"`
	MemoryMB  int    `json:"memory_in_mb"`
}

// cfInstance is one entry of GET /v3/processes/:guid/stats.
type cfInstance struct {
	Index        int     `json:"index"`
	State        string  `json:"state"`
	InstanceGUID string  `json:"instance_guid"`
	Details      *string `json:"details"`
}

// cfApp is an app pushed with the cf CLI's request sequence.
type cfApp struct {
	name, guid, space string
	// dir is the app directory the bits came from.
	dir string
	// pkg and droplet are the app's newest package and current droplet.
	pkg, droplet string
}

// exchange sends a request with a raw body, which may be nil, fails t
// unless the response has the status want, and returns the response
// headers and body.
func (f *ferry) exchange(t *testing.T, method, path, contentType string, body []byte, want int) (http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
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
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return resp.Header, data
}

// awaitJob polls the job at location, the Location header of a 202, as
// the cf CLI does, until it is COMPLETE, and fails t when it FAILED.
func (f *ferry) awaitJob(t *testing.T, location string) {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || u.Path == "" {
		t.Fatalf("job location %q is not a URL: %v", location, err)
	}
	var job struct {
		State  string `json:"state"`
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	envtest.WaitFor(t, stagingTimeout, "job "+u.Path, func(context.Context) (bool, string) {
		f.get(t, u.Path, &job)
		return job.State == "COMPLETE" || job.State == "FAILED", job.State
	})
	if job.State == "FAILED" {
		t.Fatalf("job %s FAILED: %+v", u.Path, job.Errors)
	}
}

// appByName looks an app up by name in a space, as every cf CLI command
// that names an app does first.
func (f *ferry) appByName(t *testing.T, space, name string) cfAppJSON {
	t.Helper()
	var list struct {
		Resources []cfAppJSON `json:"resources"`
	}
	f.get(t, "/v3/apps?names="+url.QueryEscape(name)+"&space_guids="+space, &list)
	if len(list.Resources) != 1 {
		t.Fatalf("GET /v3/apps?names=%s: %d apps, want 1", name, len(list.Resources))
	}
	return list.Resources[0]
}

// appProcesses returns the processes of an app.
func (f *ferry) appProcesses(t *testing.T, app string) []cfProcess {
	t.Helper()
	var list struct {
		Resources []cfProcess `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app+"/processes", &list)
	return list.Resources
}

// webProcess returns the web process of an app.
func (f *ferry) webProcess(t *testing.T, app string) cfProcess {
	t.Helper()
	var p cfProcess
	f.get(t, "/v3/apps/"+app+"/processes/web", &p)
	return p
}

// processStats returns the instances in a process's stats.
func (f *ferry) processStats(t *testing.T, process string) []cfInstance {
	t.Helper()
	var stats struct {
		Resources []cfInstance `json:"resources"`
	}
	f.get(t, "/v3/processes/"+process+"/stats", &stats)
	return stats.Resources
}

// cfPush pushes dir as the app name the way cf push does. With a
// manifest, it diffs and applies the manifest and looks the app up.
// Without one, it creates the app with POST /v3/apps and, as a script
// would before the first start, sets the web process's memory to memoryMB.
// Then it pushes the bits, stages the package, makes the droplet current
// and restarts the app. It does not wait for instances.
func (f *ferry) cfPush(t *testing.T, space, name, dir, manifest string, memoryMB int) cfApp {
	t.Helper()
	app := cfApp{name: name, space: space, dir: dir}
	if manifest != "" {
		f.exchange(t, http.MethodPost, "/v3/spaces/"+space+"/manifest_diff", yamlContentType, []byte(manifest), http.StatusCreated)
		header, _ := f.exchange(t, http.MethodPost, "/v3/spaces/"+space+"/actions/apply_manifest", yamlContentType,
			[]byte(manifest), http.StatusAccepted)
		f.awaitJob(t, header.Get("Location"))
		app.guid = f.appByName(t, space, name).GUID
	} else {
		app.guid = f.create(t, "/v3/apps", map[string]any{"name": name,
			"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}})
		f.do(t, http.MethodPost, "/v3/apps/"+app.guid+"/processes/web/actions/scale",
			map[string]any{"memory_in_mb": memoryMB}, http.StatusAccepted, nil)
	}

	app.pkg = f.pushBits(t, app.guid, dir)
	app.droplet = f.stageDroplet(t, app.pkg)
	f.setCurrentDroplet(t, app.guid, app.droplet)
	f.appAction(t, app.guid, "restart")
	return app
}

// pushBits pushes dir to a new bits package of app in the cf CLI's order.
// It matches the non-empty files and creates the package. It uploads the
// matched resources with a zip of the rest, or with no zip when every
// file matched, and waits until the package is READY. It returns the
// package.
func (f *ferry) pushBits(t *testing.T, app, dir string) string {
	t.Helper()
	files := readAppDir(t, dir)
	var nonEmpty []resource
	for _, file := range files {
		if !file.dir && len(file.data) > 0 {
			nonEmpty = append(nonEmpty, resourceOf(file))
		}
	}
	var matches struct {
		Resources []resource `json:"resources"`
	}
	if len(nonEmpty) > 0 {
		f.do(t, http.MethodPost, "/v3/resource_matches", map[string]any{"resources": nonEmpty}, http.StatusCreated, &matches)
	}
	pkg := f.create(t, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}}})

	matched := map[string]bool{}
	for _, m := range matches.Resources {
		matched[m.Path] = true
	}
	var bits []byte
	if len(matches.Resources) < len(nonEmpty) || len(nonEmpty) < countRegularFiles(files) {
		bits, _ = zipApp(t, files, func(file appFile) bool { return !matched[file.path] })
	}
	state := f.uploadMatched(t, pkg, matches.Resources, bits)
	if state != "READY" {
		envtest.WaitFor(t, stagingTimeout, "package "+pkg+" READY", func(context.Context) (bool, string) {
			var p struct {
				State string `json:"state"`
			}
			f.get(t, "/v3/packages/"+pkg, &p)
			return p.State == "READY", p.State
		})
	}
	return pkg
}

func countRegularFiles(files []appFile) int {
	n := 0
	for _, file := range files {
		if !file.dir {
			n++
		}
	}
	return n
}

// uploadMatched uploads a package in the cf CLI's multipart format: the
// resources field first, then package.zip, which the CLI leaves out when
// bits is nil because every file matched. It returns the package state of
// the response.
func (f *ferry) uploadMatched(t *testing.T, pkg string, matched []resource, bits []byte) string {
	t.Helper()
	if matched == nil {
		matched = []resource{}
	}
	resources, err := json.Marshal(matched)
	if err != nil {
		t.Fatal(err)
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", string(resources)); err != nil {
		t.Fatal(err)
	}
	if bits != nil {
		part, err := mw.CreateFormFile("bits", "package.zip")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(bits); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}

	_, data := f.exchange(t, http.MethodPost, "/v3/packages/"+pkg+"/upload", mw.FormDataContentType(), body.Bytes(), http.StatusOK)
	var p struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("upload response %s: %v", data, err)
	}
	return p.State
}

// stageDroplet stages a package as cf push does: create the build, poll
// it until it leaves STAGING, and read its droplet. It fails t unless the
// build is STAGED, and returns the droplet.
func (f *ferry) stageDroplet(t *testing.T, pkg string) string {
	t.Helper()
	build := f.awaitBuild(t, f.startBuild(t, pkg).GUID)
	if build.State != "STAGED" || build.Droplet == nil {
		t.Fatalf("build %s = %s, error %v, want STAGED with a droplet", build.GUID, build.State, build.Error)
	}
	var droplet struct {
		State string `json:"state"`
	}
	f.get(t, "/v3/droplets/"+build.Droplet.GUID, &droplet)
	if droplet.State != "STAGED" {
		t.Fatalf("droplet %s = %s, want STAGED", build.Droplet.GUID, droplet.State)
	}
	return build.Droplet.GUID
}

func (f *ferry) setCurrentDroplet(t *testing.T, app, droplet string) {
	t.Helper()
	var rel struct {
		Data struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	f.do(t, http.MethodPatch, "/v3/apps/"+app+"/relationships/current_droplet",
		map[string]any{"data": map[string]any{"guid": droplet}}, http.StatusOK, &rel)
	if rel.Data.GUID != droplet {
		t.Fatalf("current droplet of app %s = %q, want %s", app, rel.Data.GUID, droplet)
	}
}

// appAction posts actions/start, stop or restart and returns the app.
func (f *ferry) appAction(t *testing.T, app, action string) cfAppJSON {
	t.Helper()
	var view cfAppJSON
	f.do(t, http.MethodPost, "/v3/apps/"+app+"/actions/"+action, nil, http.StatusOK, &view)
	want := "STARTED"
	if action == "stop" {
		want = "STOPPED"
	}
	if view.State != want {
		t.Fatalf("app %s is %s after %s, want %s", app, view.State, action, want)
	}
	return view
}

// newestPackage sends the lookups of cf start and cf restart: the app's
// newest package and whether it has a STAGED droplet. It returns the
// package.
func (f *ferry) newestPackage(t *testing.T, app cfApp) string {
	t.Helper()
	var packages struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.get(t, "/v3/packages?app_guids="+app.guid+"&order_by=-created_at&page=1&per_page=1", &packages)
	if len(packages.Resources) != 1 || packages.Resources[0].GUID != app.pkg {
		t.Fatalf("newest package of app %s = %+v, want %s", app.name, packages.Resources, app.pkg)
	}
	var droplets struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.get(t, "/v3/packages/"+app.pkg+"/droplets?page=1&per_page=1&states=STAGED", &droplets)
	if len(droplets.Resources) != 1 {
		t.Fatalf("package %s has %d STAGED droplets, want 1, so cf start would stage it again", app.pkg, len(droplets.Resources))
	}
	return app.pkg
}

// cfStart sends cf start's requests for a stopped app: look the app and
// its newest package up, then start it. It does not wait for instances.
func (f *ferry) cfStart(t *testing.T, app cfApp) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	f.newestPackage(t, app)
	f.appAction(t, app.guid, "start")
}

// cfRestart sends cf restart's requests for a started app with a staged
// package: lookups, stop, start. It does not wait for instances.
func (f *ferry) cfRestart(t *testing.T, app cfApp) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	f.newestPackage(t, app)
	f.appAction(t, app.guid, "stop")
	f.appAction(t, app.guid, "start")
}

// cfStop sends cf stop's requests.
func (f *ferry) cfStop(t *testing.T, app cfApp) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	f.appAction(t, app.guid, "stop")
}

// cfScale sends cf scale -i's requests. It does not wait for instances.
func (f *ferry) cfScale(t *testing.T, app cfApp, instances int) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	var p cfProcess
	f.do(t, http.MethodPost, "/v3/apps/"+app.guid+"/processes/web/actions/scale",
		map[string]any{"instances": instances}, http.StatusAccepted, &p)
	if p.Instances != instances {
		t.Fatalf("web process of app %s has %d instances after scale, want %d", app.name, p.Instances, instances)
	}
}

// cfRestartInstance sends cf restart-app-instance's requests for the web
// process.
func (f *ferry) cfRestartInstance(t *testing.T, app cfApp, index int) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	f.exchange(t, http.MethodDelete, fmt.Sprintf("/v3/apps/%s/processes/web/instances/%d", app.guid, index), "", nil,
		http.StatusNoContent)
}

// cfSetEnv sends cf set-env's requests.
func (f *ferry) cfSetEnv(t *testing.T, app cfApp, name, value string) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	var env struct {
		Var map[string]string `json:"var"`
	}
	f.do(t, http.MethodPatch, "/v3/apps/"+app.guid+"/environment_variables",
		map[string]any{"var": map[string]string{name: value}}, http.StatusOK, &env)
	if env.Var[name] != value {
		t.Fatalf("environment variable %s of app %s was not set", name, app.name)
	}
}

// cfRestage sends cf restage's requests: look up the newest READY
// package, stage it, then stop the app, make the new droplet current and
// start it. It returns the app with its new droplet and does not wait for
// instances.
func (f *ferry) cfRestage(t *testing.T, app cfApp) cfApp {
	t.Helper()
	f.appByName(t, app.space, app.name)
	var packages struct {
		Resources []struct {
			GUID string `json:"guid"`
		} `json:"resources"`
	}
	f.get(t, "/v3/packages?app_guids="+app.guid+"&order_by=-created_at&page=1&per_page=1&states=READY", &packages)
	if len(packages.Resources) != 1 {
		t.Fatalf("app %s has %d READY packages, want 1", app.name, len(packages.Resources))
	}
	pkg := packages.Resources[0].GUID
	f.appByName(t, app.space, app.name)
	f.get(t, "/v3/packages?app_guids="+app.guid+"&guids="+pkg+"&page=1&per_page=1", &packages)

	build := f.awaitBuild(t, f.startBuild(t, pkg).GUID)
	if build.State != "STAGED" || build.Droplet == nil {
		t.Fatalf("restage build %s = %s, error %v, want STAGED", build.GUID, build.State, build.Error)
	}
	f.appAction(t, app.guid, "stop")
	f.setCurrentDroplet(t, app.guid, build.Droplet.GUID)
	f.appAction(t, app.guid, "start")
	app.pkg, app.droplet = pkg, build.Droplet.GUID
	return app
}

// cfDelete sends cf delete -r -f's requests: look the app and its routes
// up, delete the app and poll the job until it is COMPLETE, then delete
// each of its routes, which no other app is mapped to, and poll those
// jobs. It returns the GUIDs of the deleted routes.
func (f *ferry) cfDelete(t *testing.T, app cfApp) []string {
	t.Helper()
	f.appByName(t, app.space, app.name)
	var routes struct {
		Resources []struct {
			GUID         string `json:"guid"`
			URL          string `json:"url"`
			Destinations []struct {
				App struct {
					GUID string `json:"guid"`
				} `json:"app"`
			} `json:"destinations"`
		} `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app.guid+"/routes", &routes)
	// The cf CLI stops before deleting anything when another app is mapped
	// to one of the routes.
	for _, route := range routes.Resources {
		for _, d := range route.Destinations {
			if d.App.GUID != app.guid {
				t.Fatalf("cf delete -r %s: route %s is mapped to app %s too", app.name, route.URL, d.App.GUID)
			}
		}
	}
	header, _ := f.exchange(t, http.MethodDelete, "/v3/apps/"+app.guid, "", nil, http.StatusAccepted)
	f.awaitJob(t, header.Get("Location"))
	f.exchange(t, http.MethodGet, "/v3/apps/"+app.guid, "", nil, http.StatusNotFound)

	var deleted []string
	for _, route := range routes.Resources {
		f.cfDeleteRoute(t, route.GUID)
		deleted = append(deleted, route.GUID)
	}
	return deleted
}

// cfAppSummary sends the requests of the summary cf push and cf app print
// and fails t if one of them fails.
func (f *ferry) cfAppSummary(t *testing.T, app cfApp) {
	t.Helper()
	f.appByName(t, app.space, app.name)
	for _, p := range f.appProcesses(t, app.guid) {
		f.get(t, "/v3/processes/"+p.GUID+"/sidecars", &struct{}{})
		f.processStats(t, p.GUID)
		f.get(t, "/v3/processes/"+p.GUID, &struct{}{})
	}
	f.get(t, "/v3/apps/"+app.guid+"/routes", &struct{}{})
	var droplet struct {
		GUID string `json:"guid"`
	}
	f.get(t, "/v3/apps/"+app.guid+"/droplets/current", &droplet)
	if droplet.GUID != app.droplet {
		t.Errorf("current droplet of app %s = %s, want %s", app.name, droplet.GUID, app.droplet)
	}
	f.get(t, "/v3/deployments?app_guids="+app.guid+"&order_by=-created_at&page=1&per_page=1&status_values=ACTIVE", &struct{}{})
}

// awaitStats polls as the cf CLI waits for instances, reading the app's
// processes and each one's stats, until done returns true for every
// process. It returns the last stats by process type.
func (f *ferry) awaitStats(t *testing.T, app cfApp, what string, done func(cfProcess, []cfInstance) (bool, string)) map[string][]cfInstance {
	t.Helper()
	var byType map[string][]cfInstance
	envtest.WaitFor(t, runTimeout, "app "+app.name+": "+what, func(context.Context) (bool, string) {
		byType = map[string][]cfInstance{}
		var details []string
		allDone := true
		for _, p := range f.appProcesses(t, app.guid) {
			stats := f.processStats(t, p.GUID)
			byType[p.Type] = stats
			ok, detail := done(p, stats)
			allDone = allDone && ok
			details = append(details, p.Type+": "+detail)
		}
		return allDone, strings.Join(details, "; ")
	})
	return byType
}

// allRunning reports whether a process has as many instances as it
// should, each RUNNING.
func allRunning(p cfProcess, stats []cfInstance) (bool, string) {
	return len(stats) == p.Instances && countState(stats, "RUNNING") == p.Instances, describeStats(stats)
}

// allCrashed reports whether every instance of a process is CRASHED.
func allCrashed(p cfProcess, stats []cfInstance) (bool, string) {
	return len(stats) == p.Instances && countState(stats, "CRASHED") == p.Instances, describeStats(stats)
}

func countState(stats []cfInstance, state string) int {
	n := 0
	for _, s := range stats {
		if s.State == state {
			n++
		}
	}
	return n
}

func describeStats(stats []cfInstance) string {
	if len(stats) == 0 {
		return "no instances"
	}
	parts := make([]string, len(stats))
	for i, s := range stats {
		parts[i] = fmt.Sprintf("%d %s", s.Index, s.State)
		if s.Details != nil {
			parts[i] += " (" + *s.Details + ")"
		}
	}
	return strings.Join(parts, ", ")
}
