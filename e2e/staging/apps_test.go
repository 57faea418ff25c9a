//go:build e2e

package staging

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// appMemoryMB is the memory of every instance the test starts. The
// default, 1 GiB, would reserve much of the shared node for nothing.
const appMemoryMB = 128

// TestApps pushes the sample apps with the cf CLI's request sequences and
// runs them on the local environment: every instance reaches RUNNING and
// responds on its pod IP and on its Service's cluster IP. It scales,
// restarts, stops, starts and restages an app, checks a crash-looping app's
// stats and audit events, and checks that deleting an app removes what ran
// it. The subtests run in parallel against one `ferry serve`. Run it with:
// FERRY_E2E_NO_UP=1 go test -tags e2e ./e2e/staging/ -run TestApps -count=1 -v
func TestApps(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-apps-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	for _, sample := range sampleApps {
		t.Run(sample.fixture+" runs", func(t *testing.T) {
			t.Parallel()
			testSampleRuns(t, env, f, space, sample.fixture)
		})
	}
	t.Run("app lifecycle", func(t *testing.T) {
		t.Parallel()
		testLifecycle(t, env, f, space)
	})
	t.Run("crashing app", func(t *testing.T) {
		t.Parallel()
		testCrashingApp(t, env, f, space)
	})
}

// pushManifest is the manifest cf push sends for an app directory with
// --manifest or -p and -m: the CLI adds path and default-route.
func pushManifest(name, dir string, env map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "applications:\n- name: %s\n  path: %s\n  memory: %dM\n  default-route: true\n", name, dir, appMemoryMB)
	if len(env) > 0 {
		b.WriteString("  env:\n")
		names := make([]string, 0, len(env))
		for name := range env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(&b, "    %s: %s\n", name, env[name])
		}
	}
	return b.String()
}

// instanceBody is the response of instance index of a sample app to GET /.
// Every sample but staticfile names the instance's CF_INSTANCE_INDEX.
func instanceBody(fixture string, index int) string {
	if fixture == "staticfile" {
		return "hello from staticfile"
	}
	return fmt.Sprintf("hello from %s (instance %d)", fixture, index)
}

// testSampleRuns pushes a sample app twice, with a manifest and then
// without, runs and requests both, and deletes them. The second push
// matches every file, so, as with the cf CLI, its upload has no zip.
func testSampleRuns(t *testing.T, env *envtest.Environment, f *ferry, space, fixture string) {
	dir := fixtureDir(t, fixture)
	if fixture == "go-binary" {
		dir = goBinaryApp(t)
	}

	start := time.Now()
	withManifest := f.cfPush(t, space, fixture+"-manifest", dir, pushManifest(fixture+"-manifest", dir, nil), 0)
	checkRunning(t, env, f, withManifest, fixture)
	t.Logf("TIMING %s with a manifest: push to every instance responding %s", fixture, time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	withoutManifest := f.cfPush(t, space, fixture, dir, "", appMemoryMB)
	checkRunning(t, env, f, withoutManifest, fixture)
	t.Logf("TIMING %s without a manifest: push to every instance responding %s", fixture, time.Since(start).Round(100*time.Millisecond))

	for _, app := range []cfApp{withManifest, withoutManifest} {
		start = time.Now()
		routes := f.cfDelete(t, app)
		awaitAppGone(t, env, app)
		awaitRouteObjectsGone(t, env, app.space, routes)
		t.Logf("TIMING %s: delete to no objects left %s", app.name, time.Since(start).Round(100*time.Millisecond))
	}
}

// checkRunning waits until every instance of a pushed sample app is
// RUNNING, checks its objects, and requests it at its Service and at each
// pod. It returns the web process's pods.
func checkRunning(t *testing.T, env *envtest.Environment, f *ferry, app cfApp, fixture string) []instancePod {
	t.Helper()
	stats := f.awaitStats(t, app, "every instance RUNNING", allRunning)
	f.cfAppSummary(t, app)
	checkAppObjects(t, env, f, app)

	web := f.webProcess(t, app.guid)
	if web.MemoryMB != appMemoryMB {
		t.Errorf("web process of app %s has %d MB, want %d", app.name, web.MemoryMB, appMemoryMB)
	}
	pods := awaitPods(t, env, app, web.GUID, web.Instances)
	checkInstanceGUIDs(t, stats["web"], pods)
	for _, pod := range pods {
		awaitBody(t, podURL(pod)+"/", instanceBody(fixture, pod.index))
	}
	awaitBody(t, serviceURL(t, env, app, web.GUID)+"/", "hello from "+fixture)
	return pods
}

// testLifecycle runs the procfile app through the cf CLI commands that
// change running instances, checking the stats, the pods and the app's
// responses after each.
func testLifecycle(t *testing.T, env *envtest.Environment, f *ferry, space string) {
	dir := fixtureDir(t, "procfile")
	app := f.cfPush(t, space, "lifecycle", dir, pushManifest("lifecycle", dir, map[string]string{"GREETING": "from-manifest"}), 0)
	pods := checkRunning(t, env, f, app, "procfile")
	web := f.webProcess(t, app.guid)
	service := serviceURL(t, env, app, web.GUID)
	awaitBody(t, service+"/cgi-bin/greeting.cgi", "greeting: from-manifest")

	t.Log("cf scale -i 3")
	f.cfScale(t, app, 3)
	f.awaitStats(t, app, "3 instances RUNNING", allRunning)
	pods = awaitPods(t, env, app, web.GUID, 3)
	for i, pod := range pods {
		if pod.index != i {
			t.Fatalf("pods after scaling to 3 have indexes %v, want 0, 1 and 2", podUIDs(pods))
		}
		awaitBody(t, podURL(pod)+"/", instanceBody("procfile", i))
	}

	t.Log("cf restart-app-instance 1")
	before := podUIDs(pods)
	f.cfRestartInstance(t, app, 1)
	pods = awaitReplaced(t, env, app, web.GUID, 3, before, []int{1})
	for _, index := range []int{0, 2} {
		if pods[index].uid != before[index] {
			t.Errorf("instance %d was replaced when only instance 1 was restarted", index)
		}
	}
	if want := k8sbackend.InstancePodName(web.GUID, 1); pods[1].name != want {
		t.Errorf("restarted instance 1 runs in pod %s, want %s", pods[1].name, want)
	}
	f.awaitStats(t, app, "3 instances RUNNING after restarting instance 1", allRunning)
	awaitBody(t, podURL(pods[1])+"/", instanceBody("procfile", 1))

	t.Log("cf scale -i 1")
	before = podUIDs(pods)
	f.cfScale(t, app, 1)
	f.awaitStats(t, app, "1 instance RUNNING", allRunning)
	pods = awaitPods(t, env, app, web.GUID, 1)
	if pods[0].uid != before[0] {
		t.Errorf("instance 0 was replaced when scaling down")
	}

	// Stats that show RUNNING after a restart must name the new pods,
	// because the cf CLI stops waiting at the first RUNNING instance.
	awaitRestarted := func(what string, before map[int]string) []instancePod {
		t.Helper()
		stats := f.awaitStats(t, app, "RUNNING after "+what, allRunning)
		pods := awaitReplaced(t, env, app, web.GUID, 1, before, []int{0})
		checkInstanceGUIDs(t, stats["web"], pods)
		return pods
	}

	t.Log("cf restart")
	before = podUIDs(pods)
	f.cfRestart(t, app)
	pods = awaitRestarted("cf restart", before)
	awaitBody(t, podURL(pods[0])+"/", instanceBody("procfile", 0))

	t.Log("POST /v3/apps/:guid/actions/restart")
	before = podUIDs(pods)
	revision := pods[0].revision
	f.appAction(t, app.guid, "restart")
	pods = awaitRestarted("actions/restart", before)
	if pods[0].revision == revision {
		t.Errorf("pod revision is still %s after the restart", revision)
	}

	t.Log("cf stop")
	f.cfStop(t, app)
	// Cloud Controller reports every desired instance of a stopped app DOWN.
	if stats := f.processStats(t, web.GUID); len(stats) != 1 || countState(stats, "DOWN") != 1 {
		t.Errorf("stats of the stopped app = %s, want one DOWN instance", describeStats(stats))
	}
	awaitPods(t, env, app, web.GUID, 0)

	t.Log("cf start")
	f.cfStart(t, app)
	stats := f.awaitStats(t, app, "RUNNING after cf start", allRunning)
	pods = awaitPods(t, env, app, web.GUID, 1)
	checkInstanceGUIDs(t, stats["web"], pods)
	awaitBody(t, podURL(pods[0])+"/", instanceBody("procfile", 0))

	t.Log("cf set-env and cf restage")
	greeting := "e2e-" + randomToken(t)
	f.cfSetEnv(t, app, "GREETING", greeting)
	// A running instance keeps the environment it started with.
	awaitBody(t, podURL(pods[0])+"/cgi-bin/greeting.cgi", "greeting: from-manifest")
	before = podUIDs(pods)
	app = f.cfRestage(t, app)
	pods = awaitRestarted("cf restage", before)
	awaitBody(t, podURL(pods[0])+"/cgi-bin/greeting.cgi", "greeting: "+greeting)
	awaitBody(t, service+"/cgi-bin/greeting.cgi", "greeting: "+greeting)
	f.cfAppSummary(t, app)

	t.Log("cf delete")
	f.cfDelete(t, app)
	awaitAppGone(t, env, app)
}

// checkInstanceGUIDs checks that the stats of each pod's instance name
// the pod's UID as instance_guid.
func checkInstanceGUIDs(t *testing.T, stats []cfInstance, pods []instancePod) {
	t.Helper()
	for _, pod := range pods {
		if pod.index >= len(stats) {
			t.Errorf("stats have no instance %d, which pod %s runs", pod.index, pod.name)
			continue
		}
		if got := stats[pod.index].InstanceGUID; got != pod.uid {
			t.Errorf("stats of instance %d have instance_guid %q, want its pod's UID %s", pod.index, got, pod.uid)
		}
	}
}

// awaitReplaced waits until a process has n settled pods and the pods of
// the instances in indexes are new ones, with UIDs other than in before.
// It returns the pods ordered by index.
func awaitReplaced(t *testing.T, env *envtest.Environment, app cfApp, process string, n int, before map[int]string, indexes []int) []instancePod {
	t.Helper()
	var pods []instancePod
	envtest.WaitFor(t, runTimeout, fmt.Sprintf("instances %v of app %s to be replaced", indexes, app.name), func(ctx context.Context) (bool, string) {
		var settled bool
		var detail string
		pods, settled, detail = listPods(ctx, env, app, process, n)
		if !settled {
			return false, detail
		}
		uids := podUIDs(pods)
		for _, index := range indexes {
			if uids[index] == before[index] {
				return false, fmt.Sprintf("instance %d still runs in pod %s", index, before[index])
			}
		}
		return true, ""
	})
	return pods
}

// testCrashingApp pushes an app whose web process exits a second after it
// starts: its instances end up CRASHED, and every crash is an
// audit.app.process.crash event of the app, as cf events shows them.
func testCrashingApp(t *testing.T, env *envtest.Environment, f *ferry, space string) {
	dir := fixtureDir(t, "crash")
	app := f.cfPush(t, space, "crash", dir, pushManifest("crash", dir, nil), 0)
	stats := f.awaitStats(t, app, "every instance CRASHED", allCrashed)
	if web := stats["web"]; len(web) != 1 || web[0].Details == nil || *web[0].Details == "" {
		t.Errorf("crashed web instance = %s, want details of the crash", describeStats(web))
	}

	type auditEvent struct {
		Type  string `json:"type"`
		Actor struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"actor"`
		Data map[string]any `json:"data"`
	}
	var crash *auditEvent
	envtest.WaitFor(t, runTimeout, "an audit.app.process.crash event of app "+app.name, func(context.Context) (bool, string) {
		var events struct {
			Resources []auditEvent `json:"resources"`
		}
		f.get(t, "/v3/audit_events?order_by=-created_at&page=1&target_guids="+app.guid, &events)
		var types []string
		for i, ev := range events.Resources {
			types = append(types, ev.Type)
			if ev.Type == "audit.app.process.crash" {
				crash = &events.Resources[i]
				return true, ""
			}
		}
		return false, "events: " + strings.Join(types, ", ")
	})
	if crash.Actor.Type != "process" || crash.Actor.Name != "web" {
		t.Errorf("crash event actor = %+v, want the web process", crash.Actor)
	}
	if crash.Data["reason"] != "CRASHED" || crash.Data["index"] != float64(0) {
		t.Errorf("crash event data = %v, want reason CRASHED and index 0", crash.Data)
	}
	if desc, _ := crash.Data["exit_description"].(string); !strings.Contains(desc, "Exited with status 1") {
		t.Errorf("crash event exit_description = %q, want it to contain %q", desc, "Exited with status 1")
	}

	f.cfDelete(t, app)
	awaitAppGone(t, env, app)
}
