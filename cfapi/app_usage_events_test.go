package cfapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

// usageEventList is a page of GET /v3/app_usage_events as the tests read it.
type usageEventList struct {
	Pagination paginationJSON   `json:"pagination"`
	Resources  []map[string]any `json:"resources"`
}

// usageEvents lists app usage events as token with the query q.
func (f *appFixture) usageEvents(token, q string) usageEventList {
	f.t.Helper()
	var list usageEventList
	f.env.do(http.MethodGet, "/v3/app_usage_events"+q, token, nil).expect(http.StatusOK).decode(&list)
	return list
}

// usageChange is the part of a usage event the state tests compare.
type usageChange struct {
	State, Previous                   string
	Instances, PreviousInstances      float64
	MemoryMB, PreviousMemoryMB        float64
	ProcessType, AppGUID, ProcessGUID string
}

func usageChangeOf(ev map[string]any) usageChange {
	pair := func(key string) (any, any) {
		m, _ := ev[key].(map[string]any)
		return m["current"], m["previous"]
	}
	state, previous := pair("state")
	instances, previousInstances := pair("instance_count")
	memory, previousMemory := pair("memory_in_mb_per_instance")
	app, _ := ev["app"].(map[string]any)
	process, _ := ev["process"].(map[string]any)
	out := usageChange{}
	out.State, _ = state.(string)
	out.Previous, _ = previous.(string)
	out.Instances, _ = instances.(float64)
	out.PreviousInstances, _ = previousInstances.(float64)
	out.MemoryMB, _ = memory.(float64)
	out.PreviousMemoryMB, _ = previousMemory.(float64)
	out.ProcessType, _ = process["type"].(string)
	out.ProcessGUID, _ = process["guid"].(string)
	out.AppGUID, _ = app["guid"].(string)
	return out
}

// stagedDroplet creates a staged buildpack droplet of appGUID, built by two
// buildpacks on the ferry-test stack, and makes it the app's current one.
func (f *appFixture) stagedDroplet(appGUID string) {
	f.t.Helper()
	ctx := context.Background()
	droplet, err := store.CreateDroplet(ctx, f.env.store.DB(), store.Droplet{
		GUID: uuid.NewString(), AppGUID: appGUID, State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		Image: "registry.local/droplet@sha256:" + strings.Repeat("a", 64), Stack: "ferry-test",
		ProcessTypes: map[string]string{"web": "node server.js"},
		Buildpacks: []store.DropletBuildpack{
			{Name: "paketo-buildpacks/node-engine", BuildpackName: "paketo-buildpacks/node-engine", Version: "1.0.0"},
			{Name: "paketo-buildpacks/npm-start", BuildpackName: "paketo-buildpacks/npm-start", Version: "2.0.0"},
		},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(ctx, f.env.store.DB(), appGUID, droplet.GUID); err != nil {
		f.t.Fatal(err)
	}
}

func TestAppUsageEventShape(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.stagedDroplet(guid)
	env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.developer, nil).expect(http.StatusOK)

	list := f.usageEvents(f.admin, "")
	if len(list.Resources) != 1 || list.Pagination.TotalResults != 1 {
		t.Fatalf("events after start = %+v, want one", list)
	}
	got := list.Resources[0]
	eventGUID, _ := got["guid"].(string)
	createdAt, _ := got["created_at"].(string)
	if _, err := time.Parse(time.RFC3339, createdAt); err != nil || got["updated_at"] != createdAt {
		t.Errorf("created_at %v, updated_at %v: want one RFC 3339 time", got["created_at"], got["updated_at"])
	}
	buildpack := "paketo-buildpacks/npm-start"
	want := map[string]any{
		"guid":                      eventGUID,
		"created_at":                createdAt,
		"updated_at":                createdAt,
		"state":                     map[string]any{"current": "STARTED", "previous": "STOPPED"},
		"app":                       map[string]any{"guid": guid, "name": "web"},
		"process":                   map[string]any{"guid": guid, "type": "web"},
		"space":                     map[string]any{"guid": f.spaceGUID, "name": "dev"},
		"organization":              map[string]any{"guid": f.orgGUID},
		"buildpack":                 map[string]any{"guid": buildpackGUID("ferry-test", buildpack), "name": buildpack},
		"task":                      map[string]any{"guid": nil, "name": nil},
		"memory_in_mb_per_instance": map[string]any{"current": 1024.0, "previous": 1024.0},
		"instance_count":            map[string]any{"current": 1.0, "previous": 1.0},
		"links":                     map[string]any{"self": map[string]any{"href": env.server.URL + "/v3/app_usage_events/" + eventGUID}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("usage event (-want +got):\n%s", diff)
	}

	one := env.do(http.MethodGet, "/v3/app_usage_events/"+eventGUID, f.globalAuditor, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(want, one); diff != "" {
		t.Errorf("GET one (-want +got):\n%s", diff)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/app_usage_events/does-not-exist", f.admin, nil),
		http.StatusNotFound, 10010, "App usage event not found")
}

func TestAppUsageEventsRecordStateChanges(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	path := "/v3/apps/" + guid
	f.setDroplet(guid, uuid.NewString())
	seen := 0

	for _, step := range []struct {
		name   string
		method string
		action string
		body   any
		want   []usageChange
	}{
		{"start", http.MethodPost, "/actions/start", nil, []usageChange{{State: "STARTED", Previous: "STOPPED", Instances: 1, PreviousInstances: 1, MemoryMB: 1024, PreviousMemoryMB: 1024}}},
		{"start a started app", http.MethodPost, "/actions/start", nil, nil},
		{"scale instances", http.MethodPost, "/processes/web/actions/scale", map[string]any{"instances": 3},
			[]usageChange{{State: "STARTED", Previous: "STARTED", Instances: 3, PreviousInstances: 1, MemoryMB: 1024, PreviousMemoryMB: 1024}}},
		{"scale memory", http.MethodPost, "/processes/web/actions/scale", map[string]any{"memory_in_mb": 512},
			[]usageChange{{State: "STARTED", Previous: "STARTED", Instances: 3, PreviousInstances: 3, MemoryMB: 512, PreviousMemoryMB: 1024}}},
		{"scale disk only", http.MethodPost, "/processes/web/actions/scale", map[string]any{"disk_in_mb": 2048}, nil},
		{"scale to the same", http.MethodPost, "/processes/web/actions/scale", map[string]any{"instances": 3}, nil},
		{"restart a started app", http.MethodPost, "/actions/restart", nil, []usageChange{
			{State: "STOPPED", Previous: "STARTED", Instances: 3, PreviousInstances: 3, MemoryMB: 512, PreviousMemoryMB: 512},
			{State: "STARTED", Previous: "STOPPED", Instances: 3, PreviousInstances: 3, MemoryMB: 512, PreviousMemoryMB: 512},
		}},
		{"stop", http.MethodPost, "/actions/stop", nil, []usageChange{{State: "STOPPED", Previous: "STARTED", Instances: 3, PreviousInstances: 3, MemoryMB: 512, PreviousMemoryMB: 512}}},
		{"stop a stopped app", http.MethodPost, "/actions/stop", nil, nil},
		{"scale a stopped app", http.MethodPost, "/processes/web/actions/scale", map[string]any{"instances": 2}, nil},
		{"restart a stopped app", http.MethodPost, "/actions/restart", nil, []usageChange{{State: "STARTED", Previous: "STOPPED", Instances: 2, PreviousInstances: 2, MemoryMB: 512, PreviousMemoryMB: 512}}},
	} {
		resp := env.do(step.method, path+step.action, f.developer, step.body)
		if resp.Status != http.StatusOK && resp.Status != http.StatusAccepted {
			t.Fatalf("%s: status %d: %s", step.name, resp.Status, resp.Body)
		}
		list := f.usageEvents(f.admin, "?per_page=100")
		var got []usageChange
		for _, ev := range list.Resources[seen:] {
			change := usageChangeOf(ev)
			if change.AppGUID != guid || change.ProcessGUID != guid || change.ProcessType != "web" {
				t.Errorf("%s: event of app %s, process %s %s; want the web process of %s", step.name, change.AppGUID, change.ProcessType, change.ProcessGUID, guid)
			}
			change.AppGUID, change.ProcessGUID, change.ProcessType = "", "", ""
			got = append(got, change)
		}
		seen = len(list.Resources)
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: new usage events (-want +got):\n%s", step.name, diff)
		}
	}

	// Deleting a started app stops each of its processes.
	ctx := context.Background()
	if _, err := store.EnsureProcessTypes(ctx, env.store.DB(), guid, []string{"worker"}); err != nil {
		t.Fatal(err)
	}
	env.do(http.MethodDelete, path, f.developer, nil).expect(http.StatusAccepted)
	env.runner.RunPending(ctx)
	list := f.usageEvents(f.admin, "?per_page=100")
	var got []string
	for _, ev := range list.Resources[seen:] {
		change := usageChangeOf(ev)
		got = append(got, change.ProcessType+" "+change.State+" from "+change.Previous)
	}
	if diff := cmp.Diff([]string{"web STOPPED from STARTED", "worker STOPPED from STARTED"}, got); diff != "" {
		t.Errorf("usage events of the delete (-want +got):\n%s", diff)
	}
}

func TestAppUsageEventsStayOnRejectedChanges(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)

	// No droplet: the start fails and records nothing.
	env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.developer, nil).expect(http.StatusUnprocessableEntity)
	f.setDroplet(guid, uuid.NewString())
	env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.auditor, nil).expect(http.StatusForbidden)
	env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.developer, nil).expect(http.StatusOK)
	env.do(http.MethodPost, "/v3/apps/"+guid+"/processes/web/actions/scale", f.developer, map[string]any{"instances": -1}).
		expect(http.StatusUnprocessableEntity)

	if list := f.usageEvents(f.admin, ""); len(list.Resources) != 1 {
		t.Errorf("usage events = %d, want only the successful start's", len(list.Resources))
	}
}

func TestAppUsageEventsPermissions(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.setDroplet(guid, uuid.NewString())
	env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.developer, nil).expect(http.StatusOK)
	eventGUID, _ := f.usageEvents(f.admin, "").Resources[0]["guid"].(string)

	for name, token := range map[string]string{"admin": f.admin, "global auditor": f.globalAuditor, "read-only admin": f.readOnlyAdmin} {
		if list := f.usageEvents(token, ""); len(list.Resources) != 1 || list.Pagination.TotalResults != 1 {
			t.Errorf("%s: %d events, total %d; want 1", name, len(list.Resources), list.Pagination.TotalResults)
		}
		env.do(http.MethodGet, "/v3/app_usage_events/"+eventGUID, token, nil).expect(http.StatusOK)
	}
	// Everyone else gets an empty list and a 404 for each event, even in
	// their own space, as in Cloud Controller.
	for name, token := range map[string]string{
		"space developer": f.developer, "space auditor": f.auditor, "space manager": f.spaceManager,
		"org manager": f.orgManager, "stranger": f.stranger,
	} {
		if list := f.usageEvents(token, ""); len(list.Resources) != 0 || list.Pagination.TotalResults != 0 {
			t.Errorf("%s: %d events, total %d; want none", name, len(list.Resources), list.Pagination.TotalResults)
		}
		assertTenancyError(t, env.do(http.MethodGet, "/v3/app_usage_events/"+eventGUID, token, nil),
			http.StatusNotFound, 10010, "App usage event not found")
	}
	env.do(http.MethodGet, "/v3/app_usage_events", "", nil).expect(http.StatusUnauthorized)

	purge := "/v3/app_usage_events/actions/destructively_purge_all_and_reseed"
	for name, token := range map[string]string{
		"global auditor": f.globalAuditor, "read-only admin": f.readOnlyAdmin, "space developer": f.developer,
		"org manager": f.orgManager, "stranger": f.stranger,
	} {
		resp := env.do(http.MethodPost, purge, token, nil)
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s: purge status %d, want 403", name, resp.Status)
		}
	}
	if n := f.count(`SELECT count(*) FROM app_usage_events WHERE guid = $1`, eventGUID); n != 1 {
		t.Errorf("the event is gone after rejected purges")
	}
}

func TestAppUsageEventsPurgeAndReseed(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	ctx := context.Background()
	started, _ := f.app(appBody("started", f.spaceGUID))["guid"].(string)
	stopped, _ := f.app(appBody("stopped", f.spaceGUID))["guid"].(string)
	workers, err := store.EnsureProcessTypes(ctx, env.store.DB(), started, []string{"worker"})
	if err != nil {
		t.Fatal(err)
	}
	f.stagedDroplet(started)
	f.setDroplet(stopped, uuid.NewString())
	for _, guid := range []string{started, stopped} {
		env.do(http.MethodPost, "/v3/apps/"+guid+"/actions/start", f.developer, nil).expect(http.StatusOK)
	}
	env.do(http.MethodPost, "/v3/apps/"+stopped+"/actions/stop", f.developer, nil).expect(http.StatusOK)
	env.do(http.MethodPost, "/v3/apps/"+started+"/processes/worker/actions/scale", f.developer, map[string]any{"instances": 2}).
		expect(http.StatusAccepted)
	if n := len(f.usageEvents(f.admin, "").Resources); n != 5 {
		t.Fatalf("usage events before the purge = %d, want 5", n)
	}

	resp := env.do(http.MethodPost, "/v3/app_usage_events/actions/destructively_purge_all_and_reseed", f.admin, nil).
		expect(http.StatusOK).object()
	if len(resp) != 0 {
		t.Errorf("purge body = %v, want {}", resp)
	}

	list := f.usageEvents(f.admin, "")
	got := map[string]usageChange{}
	for _, ev := range list.Resources {
		change := usageChangeOf(ev)
		if ev["guid"] != change.ProcessGUID {
			t.Errorf("reseeded event guid %v, want the process guid %s", ev["guid"], change.ProcessGUID)
		}
		got[change.ProcessType] = change
	}
	want := map[string]usageChange{
		"web": {State: "STARTED", Previous: "STARTED", Instances: 1, PreviousInstances: 1, MemoryMB: 1024, PreviousMemoryMB: 1024,
			ProcessType: "web", AppGUID: started, ProcessGUID: started},
		"worker": {State: "STARTED", Previous: "STARTED", Instances: 2, PreviousInstances: 2, MemoryMB: 1024, PreviousMemoryMB: 1024,
			ProcessType: "worker", AppGUID: started, ProcessGUID: workers[0].GUID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reseeded events (-want +got):\n%s", diff)
	}
	if len(list.Resources) != 2 {
		t.Errorf("reseeded events = %d, want 2", len(list.Resources))
	}
	for _, ev := range list.Resources {
		bp, _ := ev["buildpack"].(map[string]any)
		if bp["name"] != "paketo-buildpacks/npm-start" {
			t.Errorf("reseeded buildpack = %v", bp)
		}
	}

	// Events recorded after the purge follow the reseeded ones.
	env.do(http.MethodPost, "/v3/apps/"+started+"/actions/stop", f.developer, nil).expect(http.StatusOK)
	if n := len(f.usageEvents(f.admin, "").Resources); n != 4 {
		t.Errorf("usage events after a stop = %d, want 4", n)
	}
}

// seedUsageEvents inserts usage events with the given guids, one second
// apart from 2020-05-26T18:47:01Z, in order.
func seedUsageEvents(t *testing.T, f *appFixture, guids ...string) {
	t.Helper()
	start := time.Date(2020, 5, 26, 18, 47, 1, 0, time.UTC)
	for i, guid := range guids {
		_, err := f.env.store.DB().ExecContext(context.Background(), `INSERT INTO app_usage_events (guid, state,
			instance_count, memory_in_mb_per_instance, app_guid, app_name, space_guid, space_name, organization_guid, created_at)
			VALUES ($1, 'STARTED', 1, 256, 'app', 'app', 'space', 'dev', 'org', $2)`, guid, start.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
	}
}

func usageEventGUIDs(list usageEventList) []string {
	out := []string{}
	for _, ev := range list.Resources {
		guid, _ := ev["guid"].(string)
		out = append(out, guid)
	}
	return out
}

func TestAppUsageEventsListFilters(t *testing.T) {
	f := newAppFixture(t)
	// Inserted out of time order, so insertion order and time order differ.
	seedUsageEvents(t, f, "e1", "e2", "e4", "e3")
	if _, err := f.env.store.DB().ExecContext(context.Background(),
		`UPDATE app_usage_events SET created_at = created_at + CASE guid WHEN 'e4' THEN interval '1 second' WHEN 'e3' THEN interval '-1 second' ELSE interval '0' END`); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"e1", "e2", "e4", "e3"}},
		{"?order_by=created_at", []string{"e1", "e2", "e3", "e4"}},
		{"?order_by=-created_at", []string{"e4", "e3", "e2", "e1"}},
		{"?after_guid=e2", []string{"e4", "e3"}},
		{"?after_guid=e3", []string{}},
		{"?guids=e1,e3", []string{"e1", "e3"}},
		{"?created_ats[lt]=2020-05-26T18:47:03Z", []string{"e1", "e2"}},
		{"?created_ats[gte]=2020-05-26T18:47:03Z&order_by=created_at", []string{"e3", "e4"}},
		{"?created_ats=2020-05-26T18:47:02Z", []string{"e2"}},
		{"?after_guid=e1&created_ats[lte]=2020-05-26T18:47:03Z", []string{"e2", "e3"}},
		{"?per_page=2&page=2", []string{"e4", "e3"}},
	} {
		if diff := cmp.Diff(tc.want, usageEventGUIDs(f.usageEvents(f.admin, tc.query))); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.query, diff)
		}
	}

	page := f.usageEvents(f.admin, "?per_page=2&after_guid=e1")
	if page.Pagination.TotalResults != 3 || page.Pagination.Next == nil {
		t.Fatalf("pagination = %+v, want 3 results and a next link", page.Pagination)
	}
	next, err := url.Parse(page.Pagination.Next.Href)
	if err != nil || next.Query().Get("after_guid") != "e1" {
		t.Errorf("next link %q does not keep after_guid", page.Pagination.Next.Href)
	}
}

func TestAppUsageEventsListRejectsBadQueries(t *testing.T) {
	f := newAppFixture(t)
	seedUsageEvents(t, f, "e1")

	for _, tc := range []struct {
		query  string
		detail string
	}{
		{"?updated_ats[lt]=2020-05-26T18:47:03Z", "Filtering by 'updated_ats' is not allowed on this resource."},
		{"?updated_ats=2020-05-26T18:47:03Z", "Filtering by 'updated_ats' is not allowed on this resource."},
		{"?after_guid=e1,e2", "After guid filter accepts only one guid"},
		{"?after_guid=nope", "After guid filter must be a valid app usage event guid."},
		{"?after_guid=", "After guid filter must be a valid app usage event guid."},
		{"?order_by=name", "Order by can only be: 'created_at'"},
		{"?created_ats[lt]=yesterday", "Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"},
		{"?per_page=0", "Per page must be between 1 and 5000"},
	} {
		assertTenancyError(t, f.env.do(http.MethodGet, "/v3/app_usage_events"+tc.query, f.admin, nil),
			http.StatusUnprocessableEntity, 10008, tc.detail)
	}
	resp := f.env.do(http.MethodGet, "/v3/app_usage_events?garbage=true", f.admin, nil)
	resp.expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); !strings.HasPrefix(detail, "Unknown query parameter(s): 'garbage'. Valid parameters are: ") {
		t.Errorf("detail = %q", detail)
	}
}

func TestAppUsageEventsConcurrentStarts(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.setDroplet(guid, uuid.NewString())

	const starts = 8
	requests := make([]*http.Request, starts)
	for i := range requests {
		req, err := http.NewRequest(http.MethodPost, env.server.URL+"/v3/apps/"+guid+"/actions/start", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "bearer "+f.developer)
		requests[i] = req
	}
	// The goroutines send their statuses back, because only the test's
	// own goroutine may stop the test.
	statuses := make(chan int, starts)
	for _, req := range requests {
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range starts {
		if status := <-statuses; status != http.StatusOK {
			t.Errorf("concurrent start: status %d, want 200", status)
		}
	}

	list := f.usageEvents(f.admin, "")
	if len(list.Resources) != 1 {
		t.Fatalf("usage events after %d concurrent starts = %d, want 1", starts, len(list.Resources))
	}
	if got := usageChangeOf(list.Resources[0]); got.State != "STARTED" || got.Previous != "STOPPED" {
		t.Errorf("event = %+v, want STARTED from STOPPED", got)
	}
}
