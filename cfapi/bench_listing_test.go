package cfapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// listingData sizes the data set of the listing benchmarks. The target
// organization is named bench-org, and its space space-0001 holds the
// target apps. Background organizations, spaces, apps and roles exist so
// that the queries do not run over near-empty tables.
type listingData struct {
	apps   int // apps in the target space, each STARTED with a web process and a current droplet
	spaces int // spaces in the target organization, the target space included

	otherOrgs           int
	otherSpacesPerOrg   int
	otherAppsPerSpace   int
	instancesPerProcess int // desired instances of every web process
}

// benchListing is the data set the benchmarks measure against.
var benchListing = listingData{
	apps:                1000,
	spaces:              1000,
	otherOrgs:           200,
	otherSpacesPerOrg:   5,
	otherAppsPerSpace:   20,
	instancesPerProcess: 1,
}

// listingSeed identifies the seeded rows the requests name.
type listingSeed struct {
	url           string
	orgGUID       string
	spaceGUID     string
	developerGUID string
}

var (
	benchSeedOnce sync.Once
	benchSeed     listingSeed
	benchSeedErr  error
)

// benchListingEnv returns an API over real HTTP on a database seeded once
// per test binary with benchListing.
func benchListingEnv(b *testing.B) (*testEnv, listingSeed) {
	b.Helper()
	benchSeedOnce.Do(func() {
		dbURL := pgtest.NewURL(b)
		start := time.Now()
		benchSeed, benchSeedErr = seedListing(dbURL, benchListing)
		b.Logf("seeded the listing data set in %v", time.Since(start))
	})
	if benchSeedErr != nil {
		b.Fatal(benchSeedErr)
	}
	return newListingEnv(b, benchSeed.url), benchSeed
}

// newListingEnv serves an API on the database at dbURL, like newTestEnv,
// but with an InstanceReporter and a logger that formats each access-log
// line at Info, as production runs, and then discards it.
func newListingEnv(t testing.TB, dbURL string) *testEnv {
	t.Helper()
	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))

	env := &testEnv{t: t, store: st}
	env.server = httptest.NewUnstartedServer(nil)
	serverURL := "http://" + env.server.Listener.Addr().String()
	env.auth = auth.NewService(signingKey(t), "test-key", auth.Config{
		Issuer:              serverURL + "/oauth/token",
		Revocations:         st,
		WeakPasswordHashing: true,
	})
	env.runner = jobs.NewRunner(st, logger)
	env.api = New(st, env.auth, env.runner, logger, Config{
		ExternalURL: serverURL,
		Instances:   memoryInstances{since: time.Now().Add(-time.Hour)},
	})
	env.server.Config.Handler = env.api.Handler()
	env.server.Start()
	t.Cleanup(env.server.Close)
	return env
}

// memoryInstances reports every desired instance of a process as RUNNING
// with one usage sample, computed in memory. It replaces the cluster, so
// the figures leave out the time the Kubernetes API takes to respond.
type memoryInstances struct{ since time.Time }

func (m memoryInstances) Instances(_ context.Context, _ store.App, p store.Process) ([]InstanceStatus, error) {
	routable := true
	out := make([]InstanceStatus, p.Instances)
	for i := range out {
		out[i] = InstanceStatus{
			Index:        i,
			State:        InstanceRunning,
			Since:        m.since,
			Routable:     &routable,
			InstanceGUID: fmt.Sprintf("%s-%d", p.GUID, i),
			Host:         "10.88.0.10",
			InternalIP:   "10.88.0.10",
			Ports:        []InstancePort{{External: 8080, Internal: 8080}},
			Usage:        &InstanceUsage{Time: m.since, CPU: 0.02, MemBytes: 96 << 20, DiskBytes: 180 << 20},
		}
	}
	return out, nil
}

// seedListing inserts the data set with set-based INSERT … SELECT
// statements and returns the guids the requests need. Every app gets a
// READY bits package, a STAGED build and droplet, and a web process whose
// guid is the app's, as Ferry creates them.
func seedListing(dbURL string, d listingData) (listingSeed, error) {
	ctx := context.Background()
	seed := listingSeed{url: dbURL, developerGUID: "bench-developer"}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return seed, err
	}
	defer st.Close()

	statements := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO organizations (guid, name, quota_guid, created_at, updated_at)
		SELECT gen_random_uuid()::text, CASE WHEN i = 0 THEN 'bench-org' ELSE 'org-' || lpad(i::text, 4, '0') END, q.guid,
			now() - i * interval '1 hour', now() - i * interval '1 hour'
		FROM generate_series(0, $1::int) AS i, (SELECT guid FROM organization_quotas WHERE name = 'default') AS q`,
			[]any{d.otherOrgs}},
		{`INSERT INTO spaces (guid, name, organization_guid, created_at, updated_at)
		SELECT gen_random_uuid()::text, 'space-' || lpad(n::text, 4, '0'), o.guid,
			o.created_at + n * interval '1 second', o.created_at + n * interval '1 second'
		FROM organizations o,
			generate_series(1, CASE WHEN o.name = 'bench-org' THEN $1::int ELSE $2::int END) AS n
		WHERE o.name = 'bench-org' OR o.name LIKE 'org-%'`,
			[]any{d.spaces, d.otherSpacesPerOrg}},
		{`INSERT INTO apps (guid, name, space_guid, state, lifecycle_type, lifecycle_stack, environment_variables,
			created_at, updated_at)
		SELECT gen_random_uuid()::text, 'app-' || lpad(n::text, 4, '0'), s.guid, 'STARTED', 'buildpack', 'cflinuxfs4',
			'{"LOG_LEVEL": "info"}', s.created_at + n * interval '1 millisecond', s.created_at + n * interval '1 millisecond'
		FROM spaces s JOIN organizations o ON o.guid = s.organization_guid,
			generate_series(1, CASE WHEN o.name <> 'bench-org' THEN $2::int WHEN s.name = 'space-0001' THEN $1::int ELSE 0 END) AS n`,
			[]any{d.apps, d.otherAppsPerSpace}},
		{`INSERT INTO packages (guid, app_guid, type, state, image, checksum, created_at, updated_at)
		SELECT md5(a.guid || '/package')::uuid::text, a.guid, 'bits', 'READY',
			'127.0.0.1:5000/ferry/packages/' || a.guid || '@sha256:' || encode(sha256(convert_to(a.guid, 'UTF8')), 'hex'),
			encode(sha256(convert_to(a.guid, 'UTF8')), 'hex'), a.created_at, a.created_at
		FROM apps a`, nil},
		{`INSERT INTO builds (guid, app_guid, package_guid, state, lifecycle_type, lifecycle_stack,
			staging_memory_in_mb, staging_disk_in_mb, created_at, updated_at)
		SELECT md5(a.guid || '/build')::uuid::text, a.guid, md5(a.guid || '/package')::uuid::text, 'STAGED', 'buildpack',
			'cflinuxfs4', 1024, 4096, a.created_at, a.created_at
		FROM apps a`, nil},
		{`INSERT INTO droplets (guid, app_guid, package_guid, build_guid, state, lifecycle_type, image, process_types,
			buildpacks, stack, created_at, updated_at)
		SELECT md5(a.guid || '/droplet')::uuid::text, a.guid, md5(a.guid || '/package')::uuid::text,
			md5(a.guid || '/build')::uuid::text, 'STAGED', 'buildpack',
			'127.0.0.1:5000/ferry/droplets/' || a.guid || '@sha256:' || encode(sha256(convert_to(a.guid || '/droplet', 'UTF8')), 'hex'),
			'{"web": "python app.py"}',
			'[{"name": "python_buildpack", "buildpack_name": "python", "detect_output": "python", "version": "1.8.0"}]',
			'cflinuxfs4', a.created_at, a.created_at
		FROM apps a`, nil},
		{`UPDATE builds SET droplet_guid = md5(app_guid || '/droplet')::uuid::text`, nil},
		{`UPDATE apps SET current_droplet_guid = md5(guid || '/droplet')::uuid::text`, nil},
		{`INSERT INTO processes (guid, app_guid, type, instances, memory_in_mb, disk_in_mb, health_check_type,
			readiness_health_check_type, version, created_at, updated_at)
		SELECT a.guid, a.guid, 'web', $1::int, 1024, 1024, 'port', 'process', md5(a.guid || '/version'),
			a.created_at, a.created_at
		FROM apps a`, []any{d.instancesPerProcess}},
		// The developer is a member of bench-org and a space developer in
		// each of its spaces. Every other space has a developer of its own.
		{`INSERT INTO users (guid) VALUES ($1)`, []any{seed.developerGUID}},
		{`INSERT INTO roles (guid, type, user_guid, organization_guid)
		SELECT gen_random_uuid()::text, 'organization_user', $1, guid FROM organizations WHERE name = 'bench-org'`,
			[]any{seed.developerGUID}},
		{`INSERT INTO roles (guid, type, user_guid, space_guid)
		SELECT gen_random_uuid()::text, 'space_developer', $1, s.guid
		FROM spaces s JOIN organizations o ON o.guid = s.organization_guid WHERE o.name = 'bench-org'`,
			[]any{seed.developerGUID}},
		{`INSERT INTO users (guid)
		SELECT 'user-' || s.guid FROM spaces s JOIN organizations o ON o.guid = s.organization_guid WHERE o.name <> 'bench-org'`, nil},
		{`INSERT INTO roles (guid, type, user_guid, space_guid)
		SELECT gen_random_uuid()::text, 'space_developer', 'user-' || s.guid, s.guid
		FROM spaces s JOIN organizations o ON o.guid = s.organization_guid WHERE o.name <> 'bench-org'`, nil},
		{`ANALYZE`, nil},
	}
	for _, stmt := range statements {
		if _, err := st.DB().ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			return seed, fmt.Errorf("seed listing data: %w\n%s", err, stmt.sql)
		}
	}

	err = st.DB().QueryRowContext(ctx, `
		SELECT o.guid, s.guid FROM organizations o JOIN spaces s ON s.organization_guid = o.guid
		WHERE o.name = 'bench-org' AND s.name = 'space-0001'`).Scan(&seed.orgGUID, &seed.spaceGUID)
	if err != nil {
		return seed, fmt.Errorf("read seeded guids: %w", err)
	}
	return seed, nil
}

// developerToken signs a token with the scopes UAA gives an ordinary user.
func developerToken(e *testEnv, userGUID string) string {
	return e.token(auth.Actor{UserGUID: userGUID, UserName: "developer", Origin: "uaa", ClientID: "cf",
		Scopes: []string{auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID}})
}

// cliClient sends requests one at a time over one keep-alive connection,
// with the headers the cf CLI sends. It counts them and adds up their
// round trips, from sending a request to reading the last byte of its
// body, so the totals leave out the client's own JSON decoding.
type cliClient struct {
	http      *http.Client
	baseURL   string
	token     string
	requests  int
	roundTrip time.Duration
	bodyBytes int
	// body is reused for every response, so reading a long list leaves no
	// garbage to collect while the server handles the next request.
	body bytes.Buffer
}

func newCLIClient(e *testEnv, token string) *cliClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 1
	return &cliClient{http: &http.Client{Transport: transport}, baseURL: e.server.URL, token: token}
}

// reset zeroes the counters for the next sequence. The connection stays
// open.
func (c *cliClient) reset() {
	c.requests, c.roundTrip, c.bodyBytes = 0, 0, 0
}

// get sends GET for target, a path or an absolute URL, and decodes the
// JSON body into v. Any status but 200 is an error.
func (c *cliClient) get(target string, v any) error {
	body, err := c.getBody(target)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// getBody sends GET for target and returns the body of a 200 response,
// which stays valid until the next request.
func (c *cliClient) getBody(target string) ([]byte, error) {
	if !strings.HasPrefix(target, "http") {
		target = c.baseURL + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}

	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cf/8.9.1 (go1.26.8; amd64 linux)")
	req.Header.Set("Authorization", "bearer "+c.token)

	c.requests++
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	c.roundTrip += time.Since(start)
	body := c.body.Bytes()
	c.bodyBytes += len(body)
	if err != nil {
		return nil, err
	}

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", target, resp.StatusCode, body)
	}
	return body, nil
}

// listPage is the part of a v3 list response the cf CLI reads.
type listPage[T any] struct {
	Pagination struct {
		Next *struct {
			Href string `json:"href"`
		} `json:"next"`
	} `json:"pagination"`
	Resources []T `json:"resources"`
}

// listAll reads every page of a list, following pagination.next.href as
// the cf CLI does.
func listAll[T any](c *cliClient, path string) ([]T, error) {
	var all []T
	for target := path; target != ""; {
		var page listPage[T]
		if err := c.get(target, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Resources...)
		target = ""
		if page.Pagination.Next != nil {
			target = page.Pagination.Next.Href
		}
	}
	return all, nil
}

// listByGUIDs reads a list filtered by filter=guids in batches of 200
// guids, as the cf CLI batches app_guids.
func listByGUIDs[T any](c *cliClient, path, filter string, guids []string) ([]T, error) {
	const batchSize = 200
	var all []T
	for batch := range slices.Chunk(guids, batchSize) {
		q := url.Values{filter: {strings.Join(batch, ",")}}
		items, err := listAll[T](c, path+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
	}
	return all, nil
}

type cliApp struct {
	GUID string `json:"guid"`
	Name string `json:"name"`
}

type cliProcess struct {
	GUID          string `json:"guid"`
	Type          string `json:"type"`
	Relationships struct {
		App struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"app"`
	} `json:"relationships"`
	ProcessInstances []cliInstance `json:"process_instances"`
}

type cliInstance struct {
	Index int    `json:"index"`
	State string `json:"state"`
}

type cliRoute struct {
	GUID         string `json:"guid"`
	Destinations []struct {
		App struct {
			GUID string `json:"guid"`
		} `json:"app"`
	} `json:"destinations"`
}

// appsSummary is what cf apps prints, reduced to counts.
type appsSummary struct {
	apps, processes, running, routes int
}

// cfApps sends the requests of `cf apps` for spaceGUID and summarises the
// responses. Below API 3.211.0 the cf CLI reads processes by app_guids and
// then each process's stats; from 3.211.0 on it reads the space's
// processes with embed=process_instances. Both versions end by reading
// the apps' routes.
func cfApps(c *cliClient, spaceGUID string, embedInstances bool) (appsSummary, error) {
	var sum appsSummary
	q := url.Values{"order_by": {"name"}, "per_page": {"5000"}, "space_guids": {spaceGUID}}
	apps, err := listAll[cliApp](c, "/v3/apps?"+q.Encode())
	if err != nil {
		return sum, err
	}
	sum.apps = len(apps)
	appGUIDs := make([]string, len(apps))
	for i, app := range apps {
		appGUIDs[i] = app.GUID
	}

	var processes []cliProcess
	if embedInstances {
		q := url.Values{"embed": {"process_instances"}, "space_guids": {spaceGUID}}
		processes, err = listAll[cliProcess](c, "/v3/processes?"+q.Encode())
	} else {
		processes, err = listByGUIDs[cliProcess](c, "/v3/processes", "app_guids", appGUIDs)
	}
	if err != nil {
		return sum, err
	}
	sum.processes = len(processes)
	for _, p := range processes {
		instances := p.ProcessInstances
		if !embedInstances {
			var stats struct {
				Resources []cliInstance `json:"resources"`
			}
			if err := c.get("/v3/processes/"+p.GUID+"/stats", &stats); err != nil {
				return sum, err
			}
			instances = stats.Resources
		}
		for _, instance := range instances {
			if instance.State == InstanceRunning {
				sum.running++
			}
		}
	}

	routes, err := listByGUIDs[cliRoute](c, "/v3/routes", "app_guids", appGUIDs)
	if err != nil {
		return sum, err
	}
	sum.routes = len(routes)
	return sum, nil
}

// cfSpaces sends the requests of `cf spaces` for orgGUID: one list
// ordered by name, at the default page size, following every next link.
func cfSpaces(c *cliClient, orgGUID string) (int, error) {
	q := url.Values{"order_by": {"name"}, "organization_guids": {orgGUID}}
	spaces, err := listAll[cliApp](c, "/v3/spaces?"+q.Encode())
	return len(spaces), err
}

// advertisedV3Version returns the v3 version of the root document, which
// picks the `cf apps` sequence.
func advertisedV3Version(c *cliClient) (string, error) {
	var root struct {
		Links struct {
			CloudControllerV3 struct {
				Meta struct {
					Version string `json:"version"`
				} `json:"meta"`
			} `json:"cloud_controller_v3"`
		} `json:"links"`
	}
	err := c.get("/", &root)
	return root.Links.CloudControllerV3.Meta.Version, err
}

// benchActors returns the two callers every benchmark runs as: an admin,
// whose queries skip the visibility condition, and a space developer in
// every space of bench-org, whose queries apply it.
func benchActors(e *testEnv, seed listingSeed) []struct{ name, token string } {
	return []struct{ name, token string }{
		{"admin", e.adminToken()},
		{"developer", developerToken(e, seed.developerGUID)},
	}
}

// sequenceStats collects, over a benchmark's iterations, the HTTP time of
// each iteration's requests and the CPU time of all of them.
type sequenceStats struct {
	durations []time.Duration
	requests  int
	bodyBytes int

	clock    cpuClock
	startCPU cpuReading
}

// start begins the CPU clock of the iterations.
func (s *sequenceStats) start(clock cpuClock) {
	s.clock = clock
	s.startCPU = clock.read()
}

// add records the requests one iteration sent through c.
func (s *sequenceStats) add(c *cliClient) {
	s.durations = append(s.durations, c.roundTrip)
	s.requests = c.requests
	s.bodyBytes = c.bodyBytes
}

// report reports the median and 99th percentile of the iterations' HTTP
// time in milliseconds, the CPU time of one iteration, and its requests
// and response kilobytes. ns/op also counts the client's JSON decoding.
func (s *sequenceStats) report(b *testing.B) {
	if len(s.durations) == 0 {
		return
	}
	goCPU, postgresCPU := s.clock.read().since(s.startCPU)
	perIteration := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / 1000 / float64(len(s.durations))
	}
	b.ReportMetric(perIteration(goCPU), "go-cpu-ms/op")
	b.ReportMetric(perIteration(postgresCPU), "pg-cpu-ms/op")

	slices.Sort(s.durations)
	at := func(p int) float64 {
		i := min(len(s.durations)*p/100, len(s.durations)-1)
		return float64(s.durations[i].Microseconds()) / 1000
	}
	b.ReportMetric(at(50), "p50-ms")
	b.ReportMetric(at(99), "p99-ms")
	b.ReportMetric(float64(s.requests), "requests/op")
	b.ReportMetric(float64(s.bodyBytes)/1000, "resp-kB/op")
}

// cpuClock reads the CPU time of this test process, which runs both the
// client and the API, and of the backends of the PostgreSQL server that the
// store uses. On a machine shared with other work, wall-clock time grows
// with the load, and CPU time per iteration grows far less. The PostgreSQL
// share comes from /proc, and is zero where /proc or the server's pid file
// cannot be read.
type cpuClock struct{ postmaster int }

func newCPUClock(b *testing.B, st *store.Store) cpuClock {
	b.Helper()
	var dataDir string
	if err := st.DB().QueryRowContext(context.Background(), `SHOW data_directory`).Scan(&dataDir); err != nil {
		b.Fatal(err)
	}
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		b.Logf("PostgreSQL CPU time is not measured: %v", err)
		return cpuClock{}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	return cpuClock{postmaster: pid}
}

// cpuReading is the CPU time used so far by this process and by each
// PostgreSQL backend, by pid.
type cpuReading struct {
	process  time.Duration
	backends map[int]time.Duration
}

// since returns the CPU time used between start and r. A backend that
// exited in between is left out, and one that started counts in full.
func (r cpuReading) since(start cpuReading) (process, postgres time.Duration) {
	for pid, cpu := range r.backends {
		postgres += cpu - start.backends[pid]
	}
	return r.process - start.process, postgres
}

// read returns the CPU time used so far.
func (c cpuClock) read() cpuReading {
	r := cpuReading{backends: map[int]time.Duration{}}
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err == nil {
		r.process = time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
	}
	if c.postmaster == 0 {
		return r
	}
	entries, _ := os.ReadDir("/proc")
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		parent, cpu, ok := readProcStat("/proc/" + entry.Name() + "/stat")
		if ok && parent == c.postmaster {
			r.backends[pid] = cpu
		}
	}
	return r
}

// readProcStat returns the parent pid and the user and system CPU time of
// a process from its /proc/PID/stat file.
func readProcStat(path string) (parent int, cpu time.Duration, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// The fields after the parenthesised command name start with the state,
	// so ppid is field 1 and utime and stime are fields 11 and 12, counted
	// in clock ticks of 1/100 s.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return 0, 0, false
	}
	parent, _ = strconv.Atoi(fields[1])
	utime, _ := strconv.Atoi(fields[11])
	stime, _ := strconv.Atoi(fields[12])
	return parent, time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// BenchmarkCFApps times the whole request sequence of `cf apps` for a
// space with 1,000 started apps, in both forms the cf CLI sends.
func BenchmarkCFApps(b *testing.B) {
	env, seed := benchListingEnv(b)
	clock := newCPUClock(b, env.store)
	version, err := advertisedV3Version(newCLIClient(env, ""))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("Ferry advertises v3 API %s; the cf CLI switches to embed=process_instances at 3.211.0", version)

	want := appsSummary{apps: benchListing.apps, processes: benchListing.apps,
		running: benchListing.apps * benchListing.instancesPerProcess}
	for _, sequence := range []struct {
		name  string
		embed bool
	}{
		{"per-process-stats", false},
		{"embedded-instances", true},
	} {
		for _, actor := range benchActors(env, seed) {
			b.Run(sequence.name+"/"+actor.name, func(b *testing.B) {
				var stats sequenceStats
				c := newCLIClient(env, actor.token)
				stats.start(clock)
				for b.Loop() {
					c.reset()
					got, err := cfApps(c, seed.spaceGUID, sequence.embed)
					if err != nil {
						b.Fatal(err)
					}
					if got != want {
						b.Fatalf("cf apps read %+v, want %+v", got, want)
					}
					stats.add(c)
				}
				stats.report(b)
			})
		}
	}
}

// BenchmarkListAppsOfSpace times one GET /v3/apps for the 1,000 apps of a
// space on one page. The first response is decoded and checked; later
// ones must have the same length. Decoding every 1.8 MB response would
// leave garbage whose collection overlaps the next request in this same
// process.
func BenchmarkListAppsOfSpace(b *testing.B) {
	env, seed := benchListingEnv(b)
	clock := newCPUClock(b, env.store)
	path := "/v3/apps?" + url.Values{"space_guids": {seed.spaceGUID}, "per_page": {"5000"}}.Encode()
	for _, actor := range benchActors(env, seed) {
		b.Run(actor.name, func(b *testing.B) {
			c := newCLIClient(env, actor.token)
			var page listPage[cliApp]
			if err := c.get(path, &page); err != nil {
				b.Fatal(err)
			}
			if len(page.Resources) != benchListing.apps {
				b.Fatalf("read %d apps, want %d", len(page.Resources), benchListing.apps)
			}
			wantBytes := c.bodyBytes

			var stats sequenceStats
			stats.start(clock)
			for b.Loop() {
				c.reset()
				if _, err := c.getBody(path); err != nil {
					b.Fatal(err)
				}
				if c.bodyBytes != wantBytes {
					b.Fatalf("response of %d bytes, want %d like the first", c.bodyBytes, wantBytes)
				}
				stats.add(c)
			}
			stats.report(b)
		})
	}
}

// BenchmarkCFSpaces times the request sequence of `cf spaces` for an
// organization with 1,000 spaces.
func BenchmarkCFSpaces(b *testing.B) {
	env, seed := benchListingEnv(b)
	clock := newCPUClock(b, env.store)
	for _, actor := range benchActors(env, seed) {
		b.Run(actor.name, func(b *testing.B) {
			var stats sequenceStats
			c := newCLIClient(env, actor.token)
			stats.start(clock)
			for b.Loop() {
				c.reset()
				n, err := cfSpaces(c, seed.orgGUID)
				if err != nil {
					b.Fatal(err)
				}
				if n != benchListing.spaces {
					b.Fatalf("cf spaces read %d spaces, want %d", n, benchListing.spaces)
				}
				stats.add(c)
			}
			stats.report(b)
		})
	}
}

// TestListingSequences runs the benchmarks' request sequences once over a
// small data set: 250 apps cross the 200-guid batch boundary and the
// default page size of 50, so the counts check the batching and paging.
func TestListingSequences(t *testing.T) {
	small := listingData{apps: 250, spaces: 120, otherOrgs: 3, otherSpacesPerOrg: 2, otherAppsPerSpace: 3, instancesPerProcess: 2}
	seed, err := seedListing(pgtest.NewURL(t), small)
	if err != nil {
		t.Fatal(err)
	}
	env := newListingEnv(t, seed.url)

	for _, actor := range benchActors(env, seed) {
		t.Run(actor.name, func(t *testing.T) {
			want := appsSummary{apps: 250, processes: 250, running: 500}
			for _, tc := range []struct {
				name         string
				embed        bool
				wantRequests int
			}{
				// apps; processes: 4 pages for the first 200 guids and 1 for
				// the other 50; 250 stats; routes: one per batch.
				{"per-process-stats", false, 1 + 5 + 250 + 2},
				// apps; 5 pages of embedded processes; routes.
				{"embedded-instances", true, 1 + 5 + 2},
			} {
				c := newCLIClient(env, actor.token)
				got, err := cfApps(c, seed.spaceGUID, tc.embed)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if got != want {
					t.Errorf("%s: cf apps read %+v, want %+v", tc.name, got, want)
				}
				if c.requests != tc.wantRequests {
					t.Errorf("%s: cf apps sent %d requests, want %d", tc.name, c.requests, tc.wantRequests)
				}
			}

			c := newCLIClient(env, actor.token)
			n, err := cfSpaces(c, seed.orgGUID)
			if err != nil {
				t.Fatal(err)
			}
			if n != small.spaces {
				t.Errorf("cf spaces read %d spaces, want %d", n, small.spaces)
			}
			if c.requests != 3 {
				t.Errorf("cf spaces sent %d requests, want 3 pages of 50", c.requests)
			}
		})
	}
}
