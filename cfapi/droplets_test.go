package cfapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

// dropletView is the droplet JSON as the cf CLI and these tests read it.
type dropletView struct {
	GUID      string  `json:"guid"`
	CreatedAt string  `json:"created_at"`
	State     string  `json:"state"`
	Error     *string `json:"error"`
	Lifecycle struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	} `json:"lifecycle"`
	Checksum   *map[string]string `json:"checksum"`
	Buildpacks []struct {
		Name          string  `json:"name"`
		BuildpackName string  `json:"buildpack_name"`
		DetectOutput  *string `json:"detect_output"`
		Version       *string `json:"version"`
	} `json:"buildpacks"`
	Stack             *string           `json:"stack"`
	Image             *string           `json:"image"`
	ExecutionMetadata string            `json:"execution_metadata"`
	ProcessTypes      map[string]string `json:"process_types"`
	Relationships     struct {
		App struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"app"`
	} `json:"relationships"`
	Links map[string]struct {
		Href   string `json:"href"`
		Method string `json:"method"`
	} `json:"links"`
}

// stagedBuild creates a build of a new READY package of appGUID and
// completes it as the controller would, returning the build and droplet
// GUIDs.
func (f *stagingFixture) stagedBuild(appGUID string) (string, string) {
	f.t.Helper()
	pkg := f.readyPackage(appGUID)
	b := f.createBuild(f.developer, buildBody(pkg))
	build, err := f.env.store.StagingBuild(context.Background(), b.GUID)
	if err != nil {
		f.t.Fatal(err)
	}
	droplet := store.Droplet{GUID: uuid.NewString(), AppGUID: appGUID, PackageGUID: pkg, BuildGUID: b.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack,
		Image:        "10.88.0.1:5000/ferry/droplets/" + appGUID + "@sha256:" + strings.Repeat("d", 64),
		ProcessTypes: map[string]string{"web": "python3 app.py", "worker": "python3 worker.py"},
		Buildpacks:   []store.DropletBuildpack{{Name: "ferry/python", BuildpackName: "ferry/python", Version: "0.1.0"}},
		Stack:        build.Stack}
	if err := f.env.store.CompleteBuild(context.Background(), b.GUID, droplet); err != nil {
		f.t.Fatal(err)
	}
	return b.GUID, droplet.GUID
}

func (f *stagingFixture) assignDroplet(token, appGUID, dropletGUID string) *testResponse {
	f.t.Helper()
	return f.env.do(http.MethodPatch, "/v3/apps/"+appGUID+"/relationships/current_droplet", token,
		map[string]any{"data": map[string]any{"guid": dropletGUID}})
}

func TestDropletOfStagedBuild(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	buildGUID, dropletGUID := f.stagedBuild(f.appGUID)

	var b buildView
	env.do(http.MethodGet, "/v3/builds/"+buildGUID, f.developer, nil).expect(http.StatusOK).decode(&b)
	if b.State != "STAGED" || b.Droplet == nil || b.Droplet.GUID != dropletGUID ||
		b.Links["droplet"].Href != env.server.URL+"/v3/droplets/"+dropletGUID {
		t.Errorf("staged build = %+v", b)
	}

	var d dropletView
	env.do(http.MethodGet, "/v3/droplets/"+dropletGUID, f.developer, nil).expect(http.StatusOK).decode(&d)
	if d.State != "STAGED" || d.Error != nil || d.Lifecycle.Type != "buildpack" || len(d.Lifecycle.Data) != 0 ||
		d.Checksum != nil || d.Image != nil || d.Stack == nil || *d.Stack != "ferry-test" || d.ExecutionMetadata != "" ||
		d.Relationships.App.Data.GUID != f.appGUID {
		t.Errorf("droplet = %+v", d)
	}
	if diff := cmp.Diff(map[string]string{"web": "python3 app.py", "worker": "python3 worker.py"}, d.ProcessTypes); diff != "" {
		t.Errorf("process types (-want +got):\n%s", diff)
	}
	if len(d.Buildpacks) != 1 || d.Buildpacks[0].Name != "ferry/python" || d.Buildpacks[0].DetectOutput != nil ||
		d.Buildpacks[0].Version == nil || *d.Buildpacks[0].Version != "0.1.0" {
		t.Errorf("buildpacks = %+v", d.Buildpacks)
	}
	assign := d.Links["assign_current_droplet"]
	if assign.Href != env.server.URL+"/v3/apps/"+f.appGUID+"/relationships/current_droplet" || assign.Method != "PATCH" {
		t.Errorf("assign link = %+v", assign)
	}

	var hidden dropletView
	env.do(http.MethodGet, "/v3/droplets/"+dropletGUID, f.auditor, nil).expect(http.StatusOK).decode(&hidden)
	if hidden.ProcessTypes["redacted_message"] != "[PRIVATE DATA HIDDEN]" || len(hidden.ProcessTypes) != 1 ||
		hidden.ExecutionMetadata != "[PRIVATE DATA HIDDEN]" {
		t.Errorf("droplet for an auditor = %v %q", hidden.ProcessTypes, hidden.ExecutionMetadata)
	}
	var readOnly dropletView
	env.do(http.MethodGet, "/v3/droplets/"+dropletGUID, f.readOnlyAdmin, nil).expect(http.StatusOK).decode(&readOnly)
	if readOnly.ProcessTypes["web"] != "python3 app.py" {
		t.Errorf("droplet for a read-only admin = %v", readOnly.ProcessTypes)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/droplets/"+dropletGUID, f.stranger, nil), 404, 10010, "Droplet not found")
}

func TestCurrentDroplet(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	current := "/v3/apps/" + f.appGUID + "/droplets/current"
	relationship := "/v3/apps/" + f.appGUID + "/relationships/current_droplet"

	assertTenancyError(t, env.do(http.MethodGet, current, f.developer, nil), 404, 10010, "Droplet not found")
	assertTenancyError(t, env.do(http.MethodGet, relationship, f.developer, nil), 404, 10010, "Droplet not found")

	_, dropletGUID := f.stagedBuild(f.appGUID)
	var rel struct {
		Data  *struct{ GUID string } `json:"data"`
		Links map[string]struct {
			Href string `json:"href"`
		} `json:"links"`
	}
	f.assignDroplet(f.supporter, f.appGUID, dropletGUID).expect(http.StatusOK).decode(&rel)
	if rel.Data == nil || rel.Data.GUID != dropletGUID || rel.Links["self"].Href != env.server.URL+relationship ||
		rel.Links["related"].Href != env.server.URL+current {
		t.Errorf("relationship = %+v", rel)
	}

	var got dropletView
	env.do(http.MethodGet, current, f.auditor, nil).expect(http.StatusOK).decode(&got)
	if got.GUID != dropletGUID {
		t.Errorf("current droplet = %s, want %s", got.GUID, dropletGUID)
	}
	env.do(http.MethodGet, relationship, f.auditor, nil).expect(http.StatusOK).decode(&rel)
	if rel.Data == nil || rel.Data.GUID != dropletGUID {
		t.Errorf("relationship = %+v", rel)
	}
	var app struct {
		Relationships struct {
			CurrentDroplet struct {
				Data struct {
					GUID *string `json:"guid"`
				} `json:"data"`
			} `json:"current_droplet"`
		} `json:"relationships"`
	}
	env.do(http.MethodGet, "/v3/apps/"+f.appGUID, f.developer, nil).expect(http.StatusOK).decode(&app)
	if g := app.Relationships.CurrentDroplet.Data.GUID; g == nil || *g != dropletGUID {
		t.Errorf("app's current droplet = %v", g)
	}
	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.droplet.mapped" || last.ActorName != "supporter" {
		t.Errorf("last audit event = %+v", last)
	}

	// The droplet's worker process type became a process of the app.
	var processes struct {
		Resources []struct {
			Type string `json:"type"`
		} `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/processes", f.developer, nil).expect(http.StatusOK).decode(&processes)
	types := []string{}
	for _, p := range processes.Resources {
		types = append(types, p.Type)
	}
	slices.Sort(types)
	if diff := cmp.Diff([]string{"web", "worker"}, types); diff != "" {
		t.Errorf("process types (-want +got):\n%s", diff)
	}
}

func TestCurrentDropletRejects(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	_, ownDroplet := f.stagedBuild(f.appGUID)
	_, otherDroplet := f.stagedBuild(other)
	failed := store.Droplet{GUID: uuid.NewString(), AppGUID: f.appGUID, State: store.DropletStateFailed,
		LifecycleType: store.LifecycleBuildpack, Error: "StagingError - Staging error: x"}
	if _, err := store.CreateDroplet(context.Background(), env.store.DB(), failed); err != nil {
		t.Fatal(err)
	}
	unassignable := "Unable to assign current droplet. Ensure the droplet exists and belongs to this app."
	path := "/v3/apps/" + f.appGUID + "/relationships/current_droplet"

	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		code   int
		detail string
	}{
		{"another app's droplet", f.developer, map[string]any{"data": map[string]any{"guid": otherDroplet}}, 422, 10008, unassignable},
		{"unknown droplet", f.developer, map[string]any{"data": map[string]any{"guid": uuid.NewString()}}, 422, 10008, unassignable},
		{"failed droplet", f.developer, map[string]any{"data": map[string]any{"guid": failed.GUID}}, 422, 10008, unassignable},
		{"null data", f.developer, map[string]any{"data": nil}, 422, 10008, "Current droplet cannot be removed. Replace it with a preferred droplet."},
		{"auditor", f.auditor, map[string]any{"data": map[string]any{"guid": ownDroplet}}, 403, 10003, "You are not authorized to perform the requested action"},
		{"stranger", f.stranger, map[string]any{"data": map[string]any{"guid": ownDroplet}}, 404, 10010, "App not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPatch, path, tc.token, tc.body), tc.status, tc.code, tc.detail)
		})
	}
	if n := f.count(`SELECT count(*) FROM apps WHERE current_droplet_guid IS NOT NULL`); n != 0 {
		t.Errorf("%d apps got a current droplet from rejected requests", n)
	}
}

func TestDropletLists(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	_, first := f.stagedBuild(f.appGUID)
	_, second := f.stagedBuild(f.appGUID)
	_, third := f.stagedBuild(other)
	f.assignDroplet(f.developer, f.appGUID, second).expect(http.StatusOK)
	pkgOfThird, err := env.store.Droplet(context.Background(), store.Visibility{All: true}, third)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, token string
		want              []string
	}{
		{"all", "/v3/droplets", f.developer, []string{first, second, third}},
		{"newest first", "/v3/droplets?order_by=-created_at", f.developer, []string{third, second, first}},
		{"by app", "/v3/droplets?app_guids=" + other, f.developer, []string{third}},
		{"by space", "/v3/droplets?space_guids=" + f.spaceGUID + "&states=STAGED", f.developer, []string{first, second, third}},
		{"by organization", "/v3/droplets?organization_guids=" + uuid.NewString(), f.developer, []string{}},
		{"app droplets", "/v3/apps/" + f.appGUID + "/droplets", f.auditor, []string{first, second}},
		{"app current droplet", "/v3/apps/" + f.appGUID + "/droplets?current=true", f.auditor, []string{second}},
		{"package droplets as cf start asks", "/v3/packages/" + pkgOfThird.PackageGUID + "/droplets?states=STAGED&per_page=1&page=1",
			f.developer, []string{third}},
		{"package droplets by state", "/v3/packages/" + pkgOfThird.PackageGUID + "/droplets?states=FAILED", f.developer, []string{}},
		{"stranger", "/v3/droplets", f.stranger, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				Resources []dropletView `json:"resources"`
			}
			env.do(http.MethodGet, tc.path, tc.token, nil).expect(http.StatusOK).decode(&body)
			got := []string{}
			for _, d := range body.Resources {
				got = append(got, d.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("droplets (-want +got):\n%s", diff)
			}
		})
	}

	assertTenancyError(t, env.do(http.MethodGet, "/v3/droplets?current=true", f.developer, nil), 400, 10005,
		"The query parameter is invalid: Unknown query parameter(s): 'current'. Valid parameters are: 'page', 'per_page', 'order_by', "+
			"'guids', 'states', 'app_guids', 'space_guids', 'organization_guids', 'label_selector', 'created_ats', 'updated_ats', "+
			"'created_ats[lt]', 'created_ats[lte]', 'created_ats[gt]', 'created_ats[gte]', 'updated_ats[lt]', 'updated_ats[lte]', "+
			"'updated_ats[gt]', 'updated_ats[gte]'")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/droplets?current=false", f.developer, nil), 400, 10005,
		"The query parameter is invalid: Current only accepts the value 'true'")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/packages/"+uuid.NewString()+"/droplets", f.developer, nil), 404, 10010,
		"Package not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/droplets", f.stranger, nil), 404, 10010, "App not found")
}

func TestDropletUpdateAndDelete(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	_, current := f.stagedBuild(f.appGUID)
	_, old := f.stagedBuild(f.appGUID)
	f.assignDroplet(f.developer, f.appGUID, current).expect(http.StatusOK)

	patch := map[string]any{"metadata": map[string]any{"labels": map[string]any{"release": "7"}}}
	var updated struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	env.do(http.MethodPatch, "/v3/droplets/"+old, f.developer, patch).expect(http.StatusOK).decode(&updated)
	if updated.Metadata.Labels["release"] != "7" {
		t.Errorf("labels = %v", updated.Metadata.Labels)
	}
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/droplets/"+old, f.auditor, patch), 403, 10003,
		"You are not authorized to perform the requested action")

	assertTenancyError(t, env.do(http.MethodDelete, "/v3/droplets/"+current, f.developer, nil), 422, 10008,
		`The droplet is currently used by app with guid "`+f.appGUID+`".`)
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/droplets/"+old, f.supporter, nil), 403, 10003,
		"You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodDelete, "/v3/droplets/"+old, f.stranger, nil), 404, 10010, "Droplet not found")

	resp := env.do(http.MethodDelete, "/v3/droplets/"+old, f.developer, nil).expect(http.StatusAccepted)
	jobURL := resp.Header.Get("Location")
	if !strings.HasPrefix(jobURL, env.server.URL+"/v3/jobs/") {
		t.Fatalf("Location = %q", jobURL)
	}
	env.runner.RunPending(context.Background())
	var job struct {
		State string `json:"state"`
	}
	env.do(http.MethodGet, strings.TrimPrefix(jobURL, env.server.URL), f.developer, nil).expect(http.StatusOK).decode(&job)
	if job.State != "COMPLETE" {
		t.Errorf("job state = %s", job.State)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/droplets/"+old, f.developer, nil), 404, 10010, "Droplet not found")
	if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.app.droplet.delete' AND target_guid = $1`, f.appGUID); n != 1 {
		t.Errorf("%d droplet delete events, want 1", n)
	}
}

func TestDropletDeleteJobRefusesCurrentDroplet(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	_, droplet := f.stagedBuild(f.appGUID)

	resp := env.do(http.MethodDelete, "/v3/droplets/"+droplet, f.developer, nil).expect(http.StatusAccepted)
	// The droplet becomes current between the request and the job.
	f.assignDroplet(f.developer, f.appGUID, droplet).expect(http.StatusOK)
	env.runner.RunPending(context.Background())

	var job struct {
		State  string `json:"state"`
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	env.do(http.MethodGet, strings.TrimPrefix(resp.Header.Get("Location"), env.server.URL), f.developer, nil).
		expect(http.StatusOK).decode(&job)
	want := `The droplet is currently used by app with guid "` + f.appGUID + `".`
	if job.State != "FAILED" || len(job.Errors) != 1 || job.Errors[0].Detail != want {
		t.Errorf("job = %+v, want FAILED with %q", job, want)
	}
	env.do(http.MethodGet, "/v3/droplets/"+droplet, f.developer, nil).expect(http.StatusOK)
}
