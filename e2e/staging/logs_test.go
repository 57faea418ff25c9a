//go:build e2e

package staging

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// The cf CLI's log-cache polling (cf CLI v8.9.1 with go-log-cache v2.0.7).
const (
	// cliMinStartTime is the start_time of the CLI's reads that want every
	// line the server holds.
	cliMinStartTime = "-6795364578871345152"
	// cliPollInterval is how long the CLI waits after an empty batch.
	cliPollInterval = 250 * time.Millisecond
	// cliWalkDelay is how old a line must be before the CLI prints it: it
	// waits for lines from other sources that may still arrive.
	cliWalkDelay = 2 * time.Second
	// cliMaxErrors consecutive failed reads stop the CLI's tail.
	cliMaxErrors = 5
)

// logsTimeout is a deadline for waiting only: for lines to be readable and
// for crashes to be recorded.
const logsTimeout = 3 * time.Minute

// lineLatencyPoll is how often the latency measurement reads the log
// cache, and so the resolution of the figure it reports.
const lineLatencyPoll = 50 * time.Millisecond

// oomMemory is the memory limit of the out-of-memory app's instances.
const oomMemory = "64M"

// TestLogs pushes apps with the cf CLI's request sequences and reads their
// logs from the log-cache read API as the cf CLI does. It tails the
// staging output during a push, reads the stdout and stderr lines of each
// instance after the start and reports how long a new line takes to become
// readable. It crashes an app by running it out of memory and checks that
// its crash event, its stats and its log show it, and that its lines stay
// readable after its pods are gone. Run it with:
// go test -tags e2e ./e2e/staging/ -run TestLogs -count=1 -v
func TestLogs(t *testing.T) {
	env := envtest.Get(t)
	f := startFerry(t, env)
	lc := f.logCache(t)

	org := f.create(t, "/v3/organizations", map[string]any{"name": "e2e-logs-" + randomToken(t)})
	space := f.create(t, "/v3/spaces", map[string]any{"name": "dev",
		"relationships": map[string]any{"organization": map[string]any{"data": map[string]any{"guid": org}}}})
	t.Cleanup(func() { deleteNamespace(t, env, k8sbackend.SpaceNamespace(space)) })

	t.Run("staging and app output", func(t *testing.T) {
		t.Parallel()
		testAppOutput(t, env, f, lc, space)
	})
	t.Run("out of memory", func(t *testing.T) {
		t.Parallel()
		testOutOfMemory(t, env, f, lc, space)
	})
}

// logCache is the log-cache read API of a Ferry, at the URL the root
// document names, with Ferry's token.
type logCache struct {
	url   string
	token string
}

// logCache reads the log-cache URL from the root document and checks
// /api/v1/info as the cf CLI does: a version of at least 2.0.0 selects the
// /api/v1/read paths.
func (f *ferry) logCache(t *testing.T) *logCache {
	t.Helper()
	var root struct {
		Links struct {
			LogCache struct {
				Href string `json:"href"`
			} `json:"log_cache"`
		} `json:"links"`
	}
	f.get(t, "/", &root)
	if root.Links.LogCache.Href == "" {
		t.Fatal("the root document has no log_cache link")
	}
	lc := &logCache{url: strings.TrimSuffix(root.Links.LogCache.Href, "/"), token: f.token}

	resp, err := http.Get(lc.url + "/api/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/v1/info: status %d, %v", lc.url, resp.StatusCode, err)
	}
	major, _, _ := strings.Cut(info.Version, ".")
	if n, err := strconv.Atoi(major); err != nil || n < 2 {
		t.Fatalf("log-cache version %q, want at least 2.0.0 so the cf CLI reads /api/v1", info.Version)
	}
	return lc
}

// envelope is a log envelope as the cf CLI decodes it.
type envelope struct {
	Timestamp  int64
	SourceID   string
	InstanceID string
	SourceType string
	Type       string
	Payload    string
}

func (e envelope) String() string {
	return fmt.Sprintf("[%s/%s] %s %s", e.SourceType, e.InstanceID, e.Type, e.Payload)
}

// envelopeJSON is the envelope JSON of a read. The CLI decodes it with
// protojson, which rejects unknown fields, so the test does as well.
type envelopeJSON struct {
	Timestamp  json.RawMessage   `json:"timestamp"`
	SourceID   string            `json:"source_id"`
	InstanceID string            `json:"instance_id"`
	Tags       map[string]string `json:"tags"`
	Log        *struct {
		Payload []byte `json:"payload"`
		Type    string `json:"type"`
	} `json:"log"`
}

// read sends GET /api/v1/read/<source> with query and returns the batch.
func (lc *logCache) read(ctx context.Context, source string, query url.Values) ([]envelope, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lc.url+"/api/v1/read/"+source+"?"+query.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "bearer "+lc.token)

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", req.URL.Path, resp.StatusCode, data)
	}

	var body struct {
		Envelopes struct {
			Batch []envelopeJSON `json:"batch"`
		} `json:"envelopes"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("decode read response %s: %w", data, err)
	}

	batch := make([]envelope, 0, len(body.Envelopes.Batch))
	for _, e := range body.Envelopes.Batch {
		// protojson accepts an int64 as a string or a number.
		ts, err := strconv.ParseInt(strings.Trim(string(e.Timestamp), `"`), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("envelope timestamp %s: %w", e.Timestamp, err)
		}
		env := envelope{Timestamp: ts, SourceID: e.SourceID, InstanceID: e.InstanceID, SourceType: e.Tags["source_type"]}
		if e.Log != nil {
			env.Type, env.Payload = e.Log.Type, strings.TrimRight(string(e.Log.Payload), "\n")
		}
		batch = append(batch, env)
	}
	return batch, nil
}

// readSince returns every log line of source from since on, in the
// server's ascending order, reading page after page with start_time.
func (lc *logCache) readSince(ctx context.Context, source string, since time.Time) ([]envelope, error) {
	var all []envelope
	start := since.UnixNano()
	for {
		batch, err := lc.read(ctx, source, url.Values{"envelope_types": {"LOG"}, "limit": {"1000"},
			"start_time": {strconv.FormatInt(start, 10)}})
		if err != nil {
			return nil, err
		}
		all = append(all, batch...)
		if len(batch) < 1000 {
			return all, nil
		}
		start = batch[len(batch)-1].Timestamp + 1
	}
}

// awaitLines reads source's lines from since on until every check finds a
// line, and returns the lines of the last read. Each check is named in
// the failure.
func (lc *logCache) awaitLines(t *testing.T, source string, since time.Time, checks map[string]func(envelope) bool) []envelope {
	t.Helper()
	var lines []envelope
	envtest.WaitFor(t, logsTimeout, "log lines of "+source, func(ctx context.Context) (bool, string) {
		var err error
		lines, err = lc.readSince(ctx, source, since)
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for name, check := range checks {
			if !slices.ContainsFunc(lines, check) {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, fmt.Sprintf("missing %s in %d lines:\n%s", strings.Join(missing, "; "), len(lines),
			describeLines(lines))
	})
	return lines
}

// describeLines prints the last lines of a read for failure messages.
func describeLines(lines []envelope) string {
	var b strings.Builder
	for _, l := range lines[max(len(lines)-40, 0):] {
		b.WriteString(l.String())
		b.WriteString("\n")
	}
	return b.String()
}

// lineOf matches a line of sourceType and instance whose payload contains
// text. An empty instance matches any.
func lineOf(sourceType, instance, text string) func(envelope) bool {
	return func(e envelope) bool {
		return e.SourceType == sourceType && (instance == "" || e.InstanceID == instance) && strings.Contains(e.Payload, text)
	}
}

// receivedEnvelope is a line the tail printed and when it got it.
type receivedEnvelope struct {
	envelope
	at time.Time
}

// cliTail follows a source's log as the cf CLI tails it during cf push and
// cf logs: it polls for the newest line every 250 ms until there is one,
// then walks forward from a second before it with envelope_types=LOG,
// keeps only lines at least 2 s old, and reads on from the last line kept.
// Five failed reads in a row stop it.
type cliTail struct {
	lc     *logCache
	source string
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	received []receivedEnvelope
	err      error
}

func (lc *logCache) tail(source string) *cliTail {
	ctx, cancel := context.WithCancel(context.Background())
	c := &cliTail{lc: lc, source: source, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		if err := c.run(ctx); err != nil && ctx.Err() == nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
	}()
	return c
}

// stop ends the tail, as the CLI does when the build leaves STAGING, and
// returns what it printed and the error that stopped it early, if any.
func (c *cliTail) stop() ([]receivedEnvelope, error) {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.received), c.err
}

func (c *cliTail) run(ctx context.Context) error {
	failures := 0
	retry := func(err error) error {
		failures++
		if failures >= cliMaxErrors {
			return err
		}
		return sleep(ctx, cliPollInterval)
	}

	var start int64
	for {
		batch, err := c.lc.read(ctx, c.source, url.Values{"descending": {"true"}, "limit": {"1"},
			"start_time": {cliMinStartTime}})
		if err != nil {
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		failures = 0
		if len(batch) > 0 {
			start = batch[0].Timestamp - int64(time.Second)
			break
		}
		if err := sleep(ctx, cliPollInterval); err != nil {
			return err
		}
	}

	for {
		batch, err := c.lc.read(ctx, c.source, url.Values{"envelope_types": {"LOG"},
			"start_time": {strconv.FormatInt(start, 10)}})
		if err != nil {
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		failures = 0
		cutoff := time.Now().Add(-cliWalkDelay).UnixNano()
		printed := 0
		for _, e := range batch {
			if e.Timestamp > cutoff {
				break
			}
			if e.Timestamp < start {
				return fmt.Errorf("read with start_time %d returned a line at %d: %s", start, e.Timestamp, e)
			}
			c.mu.Lock()
			c.received = append(c.received, receivedEnvelope{envelope: e, at: time.Now()})
			c.mu.Unlock()
			start = e.Timestamp + 1
			printed++
		}
		if printed == 0 {
			if err := sleep(ctx, cliPollInterval); err != nil {
				return err
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// testAppOutput pushes the python sample while tailing its log as cf push
// does, then runs two instances and reads their stdout and stderr lines.
func testAppOutput(t *testing.T, env *envtest.Environment, f *ferry, lc *logCache, space string) {
	dir := fixtureDir(t, "python")
	app := cfApp{name: "logs-python", space: space, dir: dir}
	manifest := []byte(pushManifest(app.name, dir, nil))
	f.exchange(t, http.MethodPost, "/v3/spaces/"+space+"/manifest_diff", yamlContentType, manifest, http.StatusCreated)
	header, _ := f.exchange(t, http.MethodPost, "/v3/spaces/"+space+"/actions/apply_manifest", yamlContentType, manifest,
		http.StatusAccepted)
	f.awaitJob(t, header.Get("Location"))
	app.guid = f.appByName(t, space, app.name).GUID
	app.pkg = f.pushBits(t, app.guid, dir)

	app.droplet = stageWhileTailing(t, f, lc, app)

	f.setCurrentDroplet(t, app.guid, app.droplet)
	started := time.Now()
	f.appAction(t, app.guid, "restart")
	f.cfScale(t, app, 2)
	f.awaitStats(t, app, "2 instances RUNNING", allRunning)
	web := f.webProcess(t, app.guid)
	pods := awaitPods(t, env, app, web.GUID, 2)

	// The sample prints its port on stdout when it starts.
	lc.awaitLines(t, app.guid, started, map[string]func(envelope) bool{
		"instance 0 stdout": lineOf("APP/PROC/WEB", "0", "python listening on :8080"),
		"instance 1 stdout": lineOf("APP/PROC/WEB", "1", "python listening on :8080"),
	})

	// http.server logs every request on stderr, with its path.
	var latencies []time.Duration
	for round := range 3 {
		for _, pod := range pods {
			latencies = append(latencies, requestLineLatency(t, lc, app, pod, round))
		}
	}
	slices.Sort(latencies)
	t.Logf("TIMING new app line readable from the log cache: min %s, median %s, max %s over %d requests "+
		"(the target is within 2 s; read every %s)", latencies[0], latencies[len(latencies)/2], latencies[len(latencies)-1],
		len(latencies), lineLatencyPoll)

	checkRecentRead(t, lc, app)
	f.cfDelete(t, app)
	awaitAppGone(t, env, app)
}

// stageWhileTailing stages app's package as cf push does while its tail
// of the app's log runs: it polls the build every second until it leaves
// STAGING and then stops the tail. It checks that the tail printed the
// buildpack's output as STG lines before the build was STAGED, and
// returns the droplet.
func stageWhileTailing(t *testing.T, f *ferry, lc *logCache, app cfApp) string {
	t.Helper()
	tail := lc.tail(app.guid)
	created := time.Now()
	build := f.startBuild(t, app.pkg)
	var staged time.Time
	envtest.WaitFor(t, stagingTimeout, "build "+build.GUID+" to leave STAGING", func(context.Context) (bool, string) {
		f.get(t, "/v3/builds/"+build.GUID, &build)
		if build.State != "STAGING" {
			staged = time.Now()
		}
		return build.State != "STAGING", build.State
	})
	received, err := tail.stop()
	if err != nil {
		t.Errorf("the tail stopped early: %v", err)
	}
	if build.State != "STAGED" || build.Droplet == nil {
		t.Fatalf("build %s = %s, error %v, want STAGED with a droplet", build.GUID, build.State, build.Error)
	}

	var staging []receivedEnvelope
	var last int64
	for _, r := range received {
		if r.SourceID != app.guid {
			t.Errorf("the tail of app %s printed a line of source %s: %s", app.guid, r.SourceID, r.envelope)
		}
		if r.Timestamp <= last {
			t.Errorf("line at %d after one at %d: timestamps of a source must increase: %s", r.Timestamp, last, r.envelope)
		}
		last = r.Timestamp
		if r.SourceType == "STG" {
			staging = append(staging, r)
		}
	}
	if len(staging) == 0 {
		t.Fatalf("the tail printed no STG lines while staging; it printed:\n%s", describeReceived(received))
	}
	for _, want := range []string{"---> Python (ferry/python", "web: python3 app.py"} {
		if !slices.ContainsFunc(staging, func(r receivedEnvelope) bool { return strings.Contains(r.Payload, want) }) {
			t.Errorf("the tail printed no STG line with %q; it printed:\n%s", want, describeReceived(staging))
		}
	}
	if first := staging[0].at; !first.Before(staged) {
		t.Errorf("the first STG line reached the tail at %s, after the build was STAGED at %s", first, staged)
	}
	t.Logf("TIMING staging: %d STG lines printed by the tail; the first %s after the build was created, the build STAGED after %s",
		len(staging), staging[0].at.Sub(created).Round(10*time.Millisecond), staged.Sub(created).Round(10*time.Millisecond))
	return build.Droplet.GUID
}

func describeReceived(received []receivedEnvelope) string {
	var b strings.Builder
	for _, r := range received {
		b.WriteString(r.envelope.String())
		b.WriteString("\n")
	}
	return b.String()
}

// requestLineLatency requests a new path of one instance, reads the log
// cache until the instance's request line with that path is there, and
// returns how long that took from the request.
func requestLineLatency(t *testing.T, lc *logCache, app cfApp, pod instancePod, round int) time.Duration {
	t.Helper()
	path := fmt.Sprintf("/logs-%d-%d-%s", pod.index, round, randomToken(t))
	requested := time.Now()
	resp, err := appClient.Get(podURL(pod) + path)
	if err != nil {
		t.Fatalf("GET %s on instance %d: %v", path, pod.index, err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(t.Context(), logsTimeout)
	defer cancel()
	since := requested.Add(-time.Second)
	for {
		lines, err := lc.readSince(ctx, app.guid, since)
		if err != nil && ctx.Err() == nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(lines, func(e envelope) bool { return strings.Contains(e.Payload, path) })
		if i >= 0 {
			latency := time.Since(requested)
			if line := lines[i]; line.SourceType != "APP/PROC/WEB" || line.InstanceID != strconv.Itoa(pod.index) {
				t.Errorf("request line of instance %d = %s, want source type APP/PROC/WEB and instance %d", pod.index, line, pod.index)
			}
			return latency
		}
		if err := sleep(ctx, lineLatencyPoll); err != nil {
			t.Fatalf("the request line of %s on instance %d was not readable after %s", path, pod.index, logsTimeout)
		}
	}
}

// checkRecentRead reads as cf logs --recent does and checks that the
// newest lines come first.
func checkRecentRead(t *testing.T, lc *logCache, app cfApp) {
	t.Helper()
	lines, err := lc.read(t.Context(), app.guid, url.Values{"descending": {"true"}, "envelope_types": {"LOG"},
		"limit": {"1000"}, "start_time": {cliMinStartTime}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("cf logs --recent read no lines")
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Timestamp >= lines[i-1].Timestamp {
			t.Fatalf("cf logs --recent read line %d at %d after line %d at %d, want newest first", i, lines[i].Timestamp,
				i-1, lines[i-1].Timestamp)
		}
	}
}

// oomManifest is the manifest cf push sends for the out-of-memory app.
func oomManifest(name, dir string) string {
	return fmt.Sprintf("applications:\n- name: %s\n  path: %s\n  memory: %s\n  default-route: true\n", name, dir, oomMemory)
}

// testOutOfMemory pushes an app whose instances exceed their memory limit
// and checks that the crash event reports out of memory, that stats show
// OOMKilled, that the log has the app's lines, the crash and the
// Kubernetes back-off as a CELL line, that PostgreSQL keeps the back-off
// event, and that the lines stay readable after the app is stopped and
// its pods are gone.
func testOutOfMemory(t *testing.T, env *envtest.Environment, f *ferry, lc *logCache, space string) {
	dir := fixtureDir(t, "oom")
	pushed := time.Now()
	app := f.cfPush(t, space, "logs-oom", dir, oomManifest("logs-oom", dir), 0)

	f.awaitStats(t, app, "the instance CRASHED with details OOMKilled", func(p cfProcess, stats []cfInstance) (bool, string) {
		return len(stats) == 1 && stats[0].State == "CRASHED" && stats[0].Details != nil && *stats[0].Details == "OOMKilled",
			describeStats(stats)
	})
	crash := awaitCrashEvent(t, f, app)
	if want := "APP/PROC/WEB: Exited with status 137 (out of memory)"; crash.Data["exit_description"] != want {
		t.Errorf("crash event exit_description = %v, want %q", crash.Data["exit_description"], want)
	}
	if crash.Data["reason"] != "CRASHED" || crash.Data["index"] != float64(0) {
		t.Errorf("crash event data = %v, want reason CRASHED and index 0", crash.Data)
	}

	checks := map[string]func(envelope) bool{
		"the app's first line":    lineOf("APP/PROC/WEB", "0", "oom: started"),
		"the app's allocations":   lineOf("APP/PROC/WEB", "0", "oom: holding"),
		"the crash":               func(e envelope) bool { return strings.Contains(e.Payload, "out of memory") },
		"the back-off as a CELL":  lineOf("CELL", "0", "BackOff: "),
		"the staging output, STG": lineOf("STG", "", "---> Python (ferry/python"),
	}
	before := lc.awaitLines(t, app.guid, pushed, checks)
	for _, line := range before {
		if line.SourceID != app.guid {
			t.Errorf("read of app %s returned a line of source %s: %s", app.guid, line.SourceID, line)
		}
	}
	checkStoredBackOff(t, f, app)

	t.Log("cf stop: the crashed instance's pod goes, its lines stay")
	f.cfStop(t, app)
	awaitPods(t, env, app, f.webProcess(t, app.guid).GUID, 0)
	after, err := lc.readSince(t.Context(), app.guid, pushed)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range before {
		if line.SourceType == "APP/PROC/WEB" && !slices.Contains(after, line) {
			t.Errorf("line %s was readable while the pod ran and is gone after it stopped", line)
		}
	}

	f.cfDelete(t, app)
	awaitAppGone(t, env, app)
}

// crashEvent is the part of an audit event the test reads.
type crashEvent struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// awaitCrashEvent waits for an audit.app.process.crash event of app and
// returns the newest one.
func awaitCrashEvent(t *testing.T, f *ferry, app cfApp) crashEvent {
	t.Helper()
	var crash crashEvent
	envtest.WaitFor(t, logsTimeout, "an audit.app.process.crash event of app "+app.name, func(context.Context) (bool, string) {
		var events struct {
			Resources []crashEvent `json:"resources"`
		}
		f.get(t, "/v3/audit_events?order_by=-created_at&target_guids="+app.guid, &events)
		var types []string
		for _, ev := range events.Resources {
			if ev.Type == "audit.app.process.crash" {
				crash = ev
				return true, ""
			}
			types = append(types, ev.Type)
		}
		return false, "events: " + strings.Join(types, ", ")
	})
	return crash
}

// checkStoredBackOff checks that PostgreSQL keeps the kubelet's BackOff
// event of the app's instance 0.
func checkStoredBackOff(t *testing.T, f *ferry, app cfApp) {
	t.Helper()
	db, err := sql.Open("postgres", f.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	envtest.WaitFor(t, logsTimeout, "a stored BackOff event of app "+app.name, func(ctx context.Context) (bool, string) {
		var count int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM kube_events
			WHERE app_guid = $1 AND reason = 'BackOff' AND type = 'Warning' AND instance_index = 0
				AND involved_object_kind = 'Pod' AND process_guid IS NOT NULL`, app.guid).Scan(&count)
		if err != nil {
			return false, err.Error()
		}
		return count > 0, fmt.Sprintf("%d stored BackOff events", count)
	})
}
