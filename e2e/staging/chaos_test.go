//go:build e2e

package staging

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

const (
	// chaosAppCount is how many apps the test pushes at once.
	chaosAppCount = 20
	// chaosMemoryMB is the memory of each app's web process. With Cloud
	// Foundry's default of 1 GiB, twenty apps would request the node's
	// whole CPU (100 millicores per GiB) and some would stay Pending.
	chaosMemoryMB = 128
	// cfPollInterval is how often the cf CLI polls packages and builds.
	cfPollInterval = 3 * time.Second
	// Deadlines for waiting only: twenty builds share two cores with other
	// tests, and every controller restart waits for the killed
	// controller's Lease to expire.
	chaosPushTimeout     = 20 * time.Minute
	chaosConvergeTimeout = 20 * time.Minute
)

// chaosFixtures are the apps the test pushes in turn: staticfile has a web
// process only, procfile a web and a worker process.
var chaosFixtures = []string{"staticfile", "procfile"}

// chaosApp is one app the test pushes and what its push created.
type chaosApp struct {
	name    string
	fixture string
	files   []appFile

	guid    string
	build   string
	droplet string
	// image is the droplet's image as the kubelet pulls it.
	image string
	err   error
}

// TestControllerKilledDuringPushes pushes 20 apps at once while it
// SIGKILLs `ferry controller` at random moments and starts it again. The
// API runs as its own process and stays up, so the pushes must succeed.
// Afterwards every app must run its one droplet on exactly the objects it
// needs, with nothing lost and nothing made twice. FERRY_CHAOS_SEED
// repeats the kill schedule of an earlier run.
func TestControllerKilledDuringPushes(t *testing.T) {
	began := time.Now()
	env := envtest.Get(t)
	f, controller := startSplitFerry(t, env)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-chaos-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("chaos seed %d; rerun this kill schedule with FERRY_CHAOS_SEED=%d", seed, seed)

	fixtureFiles := map[string][]appFile{}
	for _, fixture := range chaosFixtures {
		fixtureFiles[fixture] = readAppDir(t, fixtureDir(t, fixture))
	}
	apps := make([]*chaosApp, chaosAppCount)
	for i := range apps {
		fixture := chaosFixtures[i%len(chaosFixtures)]
		apps[i] = &chaosApp{name: fmt.Sprintf("chaos-%02d", i), fixture: fixture, files: fixtureFiles[fixture]}
	}

	// Push every app in its own goroutine, as twenty cf push commands would.
	pushStart := time.Now()
	var pushed atomic.Int32
	var wg sync.WaitGroup
	for _, app := range apps {
		wg.Go(func() {
			app.err = f.pushApp(t.Context(), space, app)
			pushed.Add(1)
		})
	}
	var pushTime time.Duration
	pushesDone := make(chan struct{})
	go func() {
		wg.Wait()
		pushTime = time.Since(pushStart)
		close(pushesDone)
	}()

	killController(t, env, controller, rng, &pushed)
	<-pushesDone
	for _, app := range apps {
		if app.err != nil {
			t.Errorf("push %s (%s): %v", app.name, app.fixture, app.err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("all %d pushes done after %s", len(apps), pushTime.Round(time.Second))
	for _, app := range apps {
		app.image = f.dropletImage(t, app.droplet)
	}

	// A round sends about a dozen requests per app, so rounds start at the
	// cf CLI's poll interval rather than at WaitFor's.
	convergeStart := time.Now()
	var lastRound time.Time
	var lastDetail string
	envtest.WaitFor(t, chaosConvergeTimeout, "every app to converge", func(ctx context.Context) (bool, string) {
		if time.Since(lastRound) < cfPollInterval {
			return false, lastDetail
		}
		lastRound = time.Now()
		if ok, err := controller.running(); !ok {
			t.Fatalf("ferry controller is not running: %v", err)
		}
		var problems []string
		for _, app := range apps {
			problems = append(problems, convergenceProblems(ctx, env, f, space, app)...)
		}
		lastDetail = fmt.Sprintf("%d problems: %s", len(problems), strings.Join(problems, "; "))
		return len(problems) == 0, lastDetail
	})
	convergeTime := time.Since(convergeStart)

	checkNothingLostOrDuplicated(t, env, f, space, apps)
	t.Logf("TIMING chaos: pushes %s, convergence after the pushes and kills %s, whole test %s",
		pushTime.Round(time.Second), convergeTime.Round(time.Second), time.Since(began).Round(time.Second))
}

// chaosSeed returns FERRY_CHAOS_SEED, or a new seed when it is unset.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	value := os.Getenv("FERRY_CHAOS_SEED")
	if value == "" {
		return rand.Uint64()
	}
	seed, err := strconv.ParseUint(value, 10, 64)
	if err != nil {
		t.Fatalf("FERRY_CHAOS_SEED=%q is not an unsigned integer: %v", value, err)
	}
	return seed
}

// killController SIGKILLs the controller three to five times and starts
// it again after a random pause of up to five seconds. Each kill comes at
// a random moment in the first 10 seconds after the controller took the
// leader Lease, which spreads the kills over cache syncs, Job creation,
// staging, the recording of droplets and the apps' first reconciles.
// Kills after the last push still hit the reconciles of started apps.
func killController(t *testing.T, env *envtest.Environment, controller *controllerProcess, rng *rand.Rand, pushed *atomic.Int32) {
	kills := 3 + rng.IntN(3)
	previous := ""
	for i := range kills {
		delay := time.Duration(rng.Int64N(int64(10 * time.Second)))
		pause := time.Duration(rng.Int64N(int64(5 * time.Second)))
		previous = controller.awaitNewLeader(t, env, previous)
		time.Sleep(delay)
		controller.kill(t)
		t.Logf("controller killed (%d of %d) %s after it took the Lease, with %d of %d pushes done; restarting in %s",
			i+1, kills, delay.Round(time.Millisecond), pushed.Load(), chaosAppCount, pause.Round(time.Millisecond))
		time.Sleep(pause)
		controller.start(t)
	}
}

// pushApp pushes app with the cf CLI's requests. It creates the app and
// sets its web memory, which `cf push -m` sends in its manifest. It
// uploads a package, stages it, polls the build every three seconds, sets
// the droplet and restarts the app. It returns errors instead of failing
// a test, because it runs outside the test's goroutine.
func (f *ferry) pushApp(ctx context.Context, space string, app *chaosApp) error {
	ctx, cancel := context.WithTimeout(ctx, chaosPushTimeout)
	defer cancel()

	var created struct {
		GUID string `json:"guid"`
	}
	err := f.call(ctx, http.MethodPost, "/v3/apps", map[string]any{"name": app.name,
		"relationships": map[string]any{"space": map[string]any{"data": map[string]any{"guid": space}}}},
		http.StatusCreated, &created)
	if err != nil {
		return err
	}
	app.guid = created.GUID
	err = f.call(ctx, http.MethodPost, "/v3/apps/"+app.guid+"/processes/web/actions/scale",
		map[string]any{"memory_in_mb": chaosMemoryMB}, http.StatusAccepted, nil)
	if err != nil {
		return err
	}

	pkg, err := f.uploadPackage(ctx, app)
	if err != nil {
		return err
	}
	var build buildView
	err = f.call(ctx, http.MethodPost, "/v3/builds", map[string]any{"package": map[string]any{"guid": pkg}},
		http.StatusCreated, &build)
	if err != nil {
		return err
	}
	app.build = build.GUID
	err = poll(ctx, "build "+build.GUID+" to leave STAGING", func() (bool, error) {
		err := f.call(ctx, http.MethodGet, "/v3/builds/"+build.GUID, nil, http.StatusOK, &build)
		return build.State != "STAGING", err
	})
	if err != nil {
		return err
	}
	if build.State != "STAGED" || build.Droplet == nil {
		return fmt.Errorf("build %s is %s with error %v, want STAGED with a droplet", build.GUID, build.State, build.Error)
	}
	app.droplet = build.Droplet.GUID

	err = f.call(ctx, http.MethodPatch, "/v3/apps/"+app.guid+"/relationships/current_droplet",
		map[string]any{"data": map[string]any{"guid": app.droplet}}, http.StatusOK, nil)
	if err != nil {
		return err
	}
	return f.call(ctx, http.MethodPost, "/v3/apps/"+app.guid+"/actions/restart", nil, http.StatusOK, nil)
}

// uploadPackage creates a bits package for app, matches its files against
// Ferry's resource cache, uploads the unmatched ones and polls the package
// until it is READY.
func (f *ferry) uploadPackage(ctx context.Context, app *chaosApp) (string, error) {
	var pkg struct {
		GUID  string `json:"guid"`
		State string `json:"state"`
	}
	err := f.call(ctx, http.MethodPost, "/v3/packages", map[string]any{"type": "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app.guid}}}},
		http.StatusCreated, &pkg)
	if err != nil {
		return "", err
	}

	var all []resource
	for _, file := range app.files {
		if !file.dir {
			all = append(all, resourceOf(file))
		}
	}
	var matches struct {
		Resources []resource `json:"resources"`
	}
	err = f.call(ctx, http.MethodPost, "/v3/resource_matches", map[string]any{"resources": all}, http.StatusCreated, &matches)
	if err != nil {
		return "", err
	}
	matched := map[string]bool{}
	for _, m := range matches.Resources {
		matched[m.Path] = true
	}
	bits, err := zipUnmatched(app.files, matched)
	if err != nil {
		return "", err
	}
	resources, err := json.Marshal(matches.Resources)
	if err != nil {
		return "", err
	}
	if err := f.uploadBits(ctx, pkg.GUID, string(resources), bits, &pkg); err != nil {
		return "", err
	}

	err = poll(ctx, "package "+pkg.GUID+" to be READY", func() (bool, error) {
		if pkg.State == "READY" {
			return true, nil
		}
		if pkg.State == "FAILED" || pkg.State == "EXPIRED" {
			return false, fmt.Errorf("package %s is %s", pkg.GUID, pkg.State)
		}
		return false, f.call(ctx, http.MethodGet, "/v3/packages/"+pkg.GUID, nil, http.StatusOK, &pkg)
	})
	return pkg.GUID, err
}

// uploadBits sends the upload in the cf CLI's multipart format and decodes
// the package it returns into out.
func (f *ferry) uploadBits(ctx context.Context, pkg, resources string, bits []byte, out any) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", resources); err != nil {
		return err
	}
	part, err := mw.CreateFormFile("bits", "package.zip")
	if err != nil {
		return err
	}
	if _, err := part.Write(bits); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+"/v3/packages/"+pkg+"/upload", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return f.sendRequest(req, http.StatusOK, out)
}

// zipUnmatched writes package.zip as zipApp does, with every directory and
// the files whose paths are not in matched.
func zipUnmatched(files []appFile, matched map[string]bool) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		if !f.dir && matched[f.path] {
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
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// poll calls check every cfPollInterval until it reports done or fails,
// and fails when ctx ends first.
func poll(ctx context.Context, what string, check func() (bool, error)) error {
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-time.After(cfPollInterval):
		}
	}
}

// call sends a JSON request as do does, and returns an error instead of
// failing a test when the request fails or its status is not want.
func (f *ferry) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.url+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return f.sendRequest(req, want, out)
}

// sendRequest sends req as send does and returns its failure instead of
// failing a test.
func (f *ferry) sendRequest(req *http.Request, want int, out any) error {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read the response: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", req.Method, req.URL.Path, data, err)
		}
	}
	return nil
}

// processView is the part of the process JSON the test reads.
type processView struct {
	GUID      string `json:"guid"`
	Type      string `json:"type"`
	Instances int    `json:"instances"`
}

// convergenceProblems returns what keeps app from its converged state,
// or nothing once it has converged. A converged app has a STAGED build
// and is STARTED on the build's droplet, with every instance RUNNING. It
// has exactly the StatefulSets, Service, env Secret and pods its
// processes need, and no staging env Secret is left.
func convergenceProblems(ctx context.Context, env *envtest.Environment, f *ferry, space string, app *chaosApp) []string {
	var problems []string
	problem := func(format string, args ...any) {
		problems = append(problems, app.name+": "+fmt.Sprintf(format, args...))
	}

	var build buildView
	if err := f.call(ctx, http.MethodGet, "/v3/builds/"+app.build, nil, http.StatusOK, &build); err != nil {
		problem("%v", err)
		return problems
	}
	if build.State != "STAGED" || build.Droplet == nil || build.Droplet.GUID != app.droplet {
		problem("build %s is %s with droplet %v, want STAGED with droplet %s", build.GUID, build.State, build.Droplet, app.droplet)
	}
	var appView struct {
		State string `json:"state"`
	}
	if err := f.call(ctx, http.MethodGet, "/v3/apps/"+app.guid, nil, http.StatusOK, &appView); err != nil {
		problem("%v", err)
	} else if appView.State != "STARTED" {
		problem("app is %s, want STARTED", appView.State)
	}
	var current struct {
		Data struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	if err := f.call(ctx, http.MethodGet, "/v3/apps/"+app.guid+"/relationships/current_droplet", nil, http.StatusOK, &current); err != nil {
		problem("%v", err)
	} else if current.Data.GUID != app.droplet {
		problem("current droplet is %q, want %s", current.Data.GUID, app.droplet)
	}

	var processes struct {
		Resources []processView `json:"resources"`
	}
	if err := f.call(ctx, http.MethodGet, "/v3/apps/"+app.guid+"/processes", nil, http.StatusOK, &processes); err != nil {
		problem("%v", err)
		return problems
	}
	var types []string
	for _, p := range processes.Resources {
		types = append(types, p.Type)
		problems = append(problems, instanceProblems(ctx, f, app, p)...)
	}
	slices.Sort(types)
	if want := fixtureProcessTypes(app.fixture); !slices.Equal(types, want) {
		problem("process types %v, want %v", types, want)
	}
	return append(problems, objectProblems(ctx, env, space, app, processes.Resources)...)
}

// fixtureProcessTypes returns the sorted process types of a chaos fixture.
func fixtureProcessTypes(fixture string) []string {
	for _, sample := range sampleApps {
		if sample.fixture == fixture {
			return sample.processTypes
		}
	}
	return nil
}

// instanceProblems compares the stats of process p with its instance
// count and returns what is not RUNNING yet.
func instanceProblems(ctx context.Context, f *ferry, app *chaosApp, p processView) []string {
	var stats struct {
		Resources []struct {
			Index int    `json:"index"`
			State string `json:"state"`
		} `json:"resources"`
	}
	if err := f.call(ctx, http.MethodGet, "/v3/processes/"+p.GUID+"/stats", nil, http.StatusOK, &stats); err != nil {
		return []string{app.name + ": " + err.Error()}
	}
	var problems []string
	if len(stats.Resources) != p.Instances {
		problems = append(problems, fmt.Sprintf("%s: process %s has %d instances in its stats, want %d",
			app.name, p.Type, len(stats.Resources), p.Instances))
	}
	for _, s := range stats.Resources {
		if s.State != "RUNNING" {
			problems = append(problems, fmt.Sprintf("%s: process %s instance %d is %s", app.name, p.Type, s.Index, s.State))
		}
	}
	return problems
}

// objectProblems compares app's objects in the cluster with what its
// processes need. Listing by the app label finds objects under any name,
// so a duplicate shows up as an extra object.
func objectProblems(ctx context.Context, env *envtest.Environment, space string, app *chaosApp, processes []processView) []string {
	var problems []string
	problem := func(format string, args ...any) {
		problems = append(problems, app.name+": "+fmt.Sprintf(format, args...))
	}
	namespace := k8sbackend.SpaceNamespace(space)
	appObjects := metav1.ListOptions{LabelSelector: labels.Set{
		k8sbackend.LabelAppGUID: app.guid, k8sbackend.LabelComponent: k8sbackend.ComponentApp}.String()}

	sets, err := env.Kube.AppsV1().StatefulSets(namespace).List(ctx, appObjects)
	if err != nil {
		problem("list StatefulSets: %v", err)
		return problems
	}
	wantSets := map[string]int32{}
	var wantPods, wantServices []string
	for _, p := range processes {
		wantSets[k8sbackend.ProcessWorkloadName(p.GUID)] = int32(p.Instances)
		for i := range p.Instances {
			wantPods = append(wantPods, k8sbackend.InstancePodName(p.GUID, i))
		}
		if p.Type == "web" {
			wantServices = append(wantServices, k8sbackend.ProcessServiceName(p.GUID))
		}
	}
	gotSets := map[string]int32{}
	for _, s := range sets.Items {
		gotSets[s.Name] = ptr.Deref(s.Spec.Replicas, -1)
		for _, c := range s.Spec.Template.Spec.Containers {
			if c.Name == k8sbackend.AppContainer && c.Image != app.image {
				problem("StatefulSet %s runs image %s, want the droplet's %s", s.Name, c.Image, app.image)
			}
		}
	}
	if !maps.Equal(gotSets, wantSets) {
		problem("StatefulSets with replicas %v, want %v", gotSets, wantSets)
	}

	services, err := env.Kube.CoreV1().Services(namespace).List(ctx, appObjects)
	if err != nil {
		problem("list Services: %v", err)
		return problems
	}
	if got := objectNames(services.Items); !slices.Equal(got, sortedCopy(wantServices)) {
		problem("Services %v, want %v", got, wantServices)
	}

	secrets, err := env.Kube.CoreV1().Secrets(namespace).List(ctx, appObjects)
	if err != nil {
		problem("list Secrets: %v", err)
		return problems
	}
	if got, want := objectNames(secrets.Items), []string{k8sbackend.AppEnvSecretName(app.guid)}; !slices.Equal(got, want) {
		problem("env Secrets %v, want %v", got, want)
	}
	stagingSecrets, err := env.Kube.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{k8sbackend.LabelBuildGUID: app.build}.String()})
	if err != nil {
		problem("list staging Secrets: %v", err)
		return problems
	}
	if got := objectNames(stagingSecrets.Items); len(got) != 0 {
		problem("staging env Secrets %v outlived the build", got)
	}

	pods, err := env.Kube.CoreV1().Pods(namespace).List(ctx, appObjects)
	if err != nil {
		problem("list pods: %v", err)
		return problems
	}
	if got := objectNames(pods.Items); !slices.Equal(got, sortedCopy(wantPods)) {
		problem("pods %v, want %v", got, wantPods)
	}
	return problems
}

// checkNothingLostOrDuplicated checks, once every app has converged, the
// records and objects that must exist exactly once. The space lists every
// app. Each app has one build, one droplet, at most one staging Job, one
// audit event for its build and one for its droplet, and no crash event.
// No object in the space belongs to an app the test did not push.
func checkNothingLostOrDuplicated(t *testing.T, env *envtest.Environment, f *ferry, space string, apps []*chaosApp) {
	t.Helper()
	var listed struct {
		Resources []struct {
			GUID string `json:"guid"`
			Name string `json:"name"`
		} `json:"resources"`
	}
	f.get(t, "/v3/apps?space_guids="+space+"&per_page=100", &listed)
	var gotApps, wantApps []string
	for _, a := range listed.Resources {
		gotApps = append(gotApps, a.Name+"="+a.GUID)
	}
	known := map[string]bool{}
	for _, app := range apps {
		wantApps = append(wantApps, app.name+"="+app.guid)
		known[app.guid] = true
	}
	slices.Sort(gotApps)
	slices.Sort(wantApps)
	if !slices.Equal(gotApps, wantApps) {
		t.Errorf("the space lists apps %v, want %v", gotApps, wantApps)
	}

	namespace := k8sbackend.SpaceNamespace(space)
	for _, app := range apps {
		checkAppRecords(t, f, app)
		jobs, err := env.Kube.BatchV1().Jobs(namespace).List(t.Context(), metav1.ListOptions{LabelSelector: labels.Set{
			k8sbackend.LabelAppGUID: app.guid, k8sbackend.LabelComponent: k8sbackend.ComponentStaging}.String()})
		if err != nil {
			t.Fatal(err)
		}
		// A finished Job stays until its TTL, an hour by default, ends.
		got := objectNames(jobs.Items)
		if len(got) > 1 || len(got) == 1 && got[0] != k8sbackend.BuildJobName(app.build) {
			t.Errorf("%s: staging Jobs %v, want at most %s", app.name, got, k8sbackend.BuildJobName(app.build))
		}
	}

	var crashes struct {
		Resources []struct {
			Target struct {
				Name string `json:"name"`
			} `json:"target"`
		} `json:"resources"`
	}
	f.get(t, "/v3/audit_events?types=audit.app.process.crash&space_guids="+space, &crashes)
	for _, c := range crashes.Resources {
		t.Errorf("audit.app.process.crash event for app %s", c.Target.Name)
	}

	checkNoStrayObjects(t, env, namespace, known)
}

// checkAppRecords checks that app has exactly one build and one droplet,
// both STAGED, and one audit event for each of them.
func checkAppRecords(t *testing.T, f *ferry, app *chaosApp) {
	t.Helper()
	var builds struct {
		Resources []buildView `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app.guid+"/builds", &builds)
	if len(builds.Resources) != 1 || builds.Resources[0].GUID != app.build || builds.Resources[0].State != "STAGED" {
		t.Errorf("%s: builds %+v, want only build %s STAGED", app.name, builds.Resources, app.build)
	}
	var droplets struct {
		Resources []struct {
			GUID  string `json:"guid"`
			State string `json:"state"`
		} `json:"resources"`
	}
	f.get(t, "/v3/apps/"+app.guid+"/droplets", &droplets)
	if len(droplets.Resources) != 1 || droplets.Resources[0].GUID != app.droplet || droplets.Resources[0].State != "STAGED" {
		t.Errorf("%s: droplets %+v, want only droplet %s STAGED", app.name, droplets.Resources, app.droplet)
	}
	for _, eventType := range []string{"audit.app.build.staged", "audit.app.droplet.create"} {
		var events struct {
			Pagination struct {
				TotalResults int `json:"total_results"`
			} `json:"pagination"`
		}
		f.get(t, "/v3/audit_events?types="+eventType+"&target_guids="+app.guid, &events)
		if events.Pagination.TotalResults != 1 {
			t.Errorf("%s: %d %s audit events, want 1", app.name, events.Pagination.TotalResults, eventType)
		}
	}
}

// checkNoStrayObjects checks that every StatefulSet, Service, Secret, Job
// and pod in namespace that has an app label belongs to a known app.
func checkNoStrayObjects(t *testing.T, env *envtest.Environment, namespace string, known map[string]bool) {
	t.Helper()
	ctx := t.Context()
	all := metav1.ListOptions{LabelSelector: k8sbackend.LabelAppGUID}
	stray := func(kind string, objects []metav1.Object) {
		for _, o := range objects {
			if !known[o.GetLabels()[k8sbackend.LabelAppGUID]] {
				t.Errorf("%s %s belongs to no pushed app (labels %v)", kind, o.GetName(), o.GetLabels())
			}
		}
	}
	sets, err := env.Kube.AppsV1().StatefulSets(namespace).List(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	stray("StatefulSet", metaOf(sets.Items))

	services, err := env.Kube.CoreV1().Services(namespace).List(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	stray("Service", metaOf(services.Items))

	secrets, err := env.Kube.CoreV1().Secrets(namespace).List(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	stray("Secret", metaOf(secrets.Items))

	jobs, err := env.Kube.BatchV1().Jobs(namespace).List(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	stray("Job", metaOf(jobs.Items))

	pods, err := env.Kube.CoreV1().Pods(namespace).List(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	stray("pod", metaOf(pods.Items))
}

// metaOf returns pointers to the metadata of objects, for generic checks.
func metaOf[T any, P interface {
	*T
	metav1.Object
}](objects []T) []metav1.Object {
	out := make([]metav1.Object, len(objects))
	for i := range objects {
		out[i] = P(&objects[i])
	}
	return out
}

// objectNames returns the sorted names of objects.
func objectNames[T any, P interface {
	*T
	metav1.Object
}](objects []T) []string {
	names := []string{}
	for _, o := range metaOf[T, P](objects) {
		names = append(names, o.GetName())
	}
	slices.Sort(names)
	return names
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}
