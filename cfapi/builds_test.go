package cfapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/registry"
	"github.com/ferrycf/ferry/store"
)

// stagingFixture is a package fixture with staging sizes, a builder
// catalog and a docker stager, for builds and droplets.
type stagingFixture struct {
	*packageFixture
	catalog *fakeCatalog
}

func newStagingFixture(t *testing.T) *stagingFixture {
	t.Helper()
	f := &stagingFixture{packageFixture: newPackageFixture(t), catalog: newFakeCatalog()}
	f.env.api.staging.MemoryMB, f.env.api.staging.DiskMB = 512, 2048
	f.env.api.builders = f.catalog
	f.env.api.docker = fakeDockerStager{f.registry}
	return f
}

// readyPackage creates a bits package of appGUID and marks it READY with
// an image, as a finished upload would.
func (f *stagingFixture) readyPackage(appGUID string) string {
	f.t.Helper()
	guid := f.createPackage(packageBody("bits", appGUID)).GUID
	_, err := store.TransitionPackage(context.Background(), f.env.store.DB(), guid, []string{store.PackageAwaitingUpload},
		store.PackageResult{State: store.PackageReady, Image: "127.0.0.1:5000/ferry/packages/" + guid + "@sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		f.t.Fatal(err)
	}
	return guid
}

func buildBody(packageGUID string) map[string]any {
	return map[string]any{"package": map[string]any{"guid": packageGUID}}
}

// buildView is the build JSON as the cf CLI and these tests read it.
type buildView struct {
	GUID                string  `json:"guid"`
	CreatedAt           string  `json:"created_at"`
	UpdatedAt           string  `json:"updated_at"`
	State               string  `json:"state"`
	StagingMemoryInMB   int64   `json:"staging_memory_in_mb"`
	StagingDiskInMB     int64   `json:"staging_disk_in_mb"`
	StagingLogRateLimit int64   `json:"staging_log_rate_limit_bytes_per_second"`
	Error               *string `json:"error"`
	Lifecycle           struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	} `json:"lifecycle"`
	Package struct {
		GUID string `json:"guid"`
	} `json:"package"`
	Droplet *struct {
		GUID string `json:"guid"`
	} `json:"droplet"`
	CreatedBy struct {
		GUID  string `json:"guid"`
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"created_by"`
	Relationships struct {
		App struct {
			Data struct {
				GUID string `json:"guid"`
			} `json:"data"`
		} `json:"app"`
	} `json:"relationships"`
	Metadata struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Links map[string]struct {
		Href string `json:"href"`
	} `json:"links"`
}

func (f *stagingFixture) createBuild(token string, body map[string]any) buildView {
	f.t.Helper()
	var b buildView
	f.env.do(http.MethodPost, "/v3/builds", token, body).expect(http.StatusCreated).decode(&b)
	return b
}

func (f *stagingFixture) buildCount() int {
	return f.count(`SELECT count(*) FROM builds`)
}

func TestBuildCreateForBitsPackage(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	pkg := f.readyPackage(f.appGUID)

	b := f.createBuild(f.developer, buildBody(pkg))
	if b.State != "STAGING" || b.Error != nil || b.Droplet != nil || b.Package.GUID != pkg ||
		b.Relationships.App.Data.GUID != f.appGUID {
		t.Errorf("build = %+v", b)
	}
	if b.Lifecycle.Type != "buildpack" || fmt.Sprint(b.Lifecycle.Data) != "map[buildpacks:[] stack:ferry-test]" {
		t.Errorf("lifecycle = %+v", b.Lifecycle)
	}
	// The web process's 1024 MB of memory is above the configured minimum
	// of 512 MB, and its 1024 MB of disk below the minimum of 2048 MB.
	if b.StagingMemoryInMB != 1024 || b.StagingDiskInMB != 2048 || b.StagingLogRateLimit != -1 {
		t.Errorf("staging sizes = %d MB, %d MB, %d B/s", b.StagingMemoryInMB, b.StagingDiskInMB, b.StagingLogRateLimit)
	}
	if b.CreatedBy.Name != "developer" || b.CreatedBy.GUID == "" {
		t.Errorf("created_by = %+v", b.CreatedBy)
	}
	if b.Links["self"].Href != env.server.URL+"/v3/builds/"+b.GUID || b.Links["app"].Href != env.server.URL+"/v3/apps/"+f.appGUID {
		t.Errorf("links = %v", b.Links)
	}
	if _, ok := b.Links["droplet"]; ok {
		t.Errorf("a STAGING build links a droplet: %v", b.Links)
	}

	var got buildView
	env.do(http.MethodGet, "/v3/builds/"+b.GUID, f.auditor, nil).expect(http.StatusOK).decode(&got)
	if diff := cmp.Diff(b, got); diff != "" {
		t.Errorf("GET build (-want +got):\n%s", diff)
	}

	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.build.create" || last.ActorName != "developer" || last.Data["build_guid"] != b.GUID ||
		last.Data["package_guid"] != pkg {
		t.Errorf("last audit event = %+v", last)
	}

	stored, err := env.store.StagingBuild(context.Background(), b.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PackageImage, "127.0.0.1:5000/ferry/packages/"+pkg+"@sha256:") {
		t.Errorf("stored package image = %q", stored.PackageImage)
	}

	assertTenancyError(t, env.do(http.MethodPost, "/v3/builds", f.developer, buildBody(pkg)),
		http.StatusUnprocessableEntity, 170017, "Only one build can be STAGING at a time per application.")
}

func TestBuildCreateLifecycleOverride(t *testing.T) {
	f := newStagingFixture(t)
	pkg := f.readyPackage(f.appGUID)
	body := buildBody(pkg)
	body["lifecycle"] = map[string]any{"type": "buildpack", "data": map[string]any{
		"buildpacks": []string{"ferry/python", "https://user:secret@git.example.com/bp.git"}, "stack": "other-stack"}}
	body["staging_memory_in_mb"] = 3000
	body["staging_disk_in_mb"] = 5000
	body["metadata"] = map[string]any{"labels": map[string]string{"tier": "web"}}

	b := f.createBuild(f.supporter, body)
	data := b.Lifecycle.Data
	if fmt.Sprint(data["buildpacks"]) != "[ferry/python https://***:***@git.example.com/bp.git]" || data["stack"] != "other-stack" {
		t.Errorf("lifecycle data = %v", data)
	}
	if b.StagingMemoryInMB != 3000 || b.StagingDiskInMB != 5000 || b.Metadata.Labels["tier"] != "web" {
		t.Errorf("build = %+v", b)
	}
	stored, err := f.env.store.StagingBuild(context.Background(), b.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Buildpacks[1] != "https://user:secret@git.example.com/bp.git" {
		t.Errorf("stored buildpacks = %v, want the URL as requested", stored.Buildpacks)
	}

	// Requested sizes below the configured minimums are raised to them.
	other := f.app(appBody("small", f.spaceGUID))["guid"].(string)
	small := buildBody(f.readyPackage(other))
	small["staging_memory_in_mb"], small["staging_disk_in_mb"] = 64, 64
	if b := f.createBuild(f.developer, small); b.StagingMemoryInMB != 512 || b.StagingDiskInMB != 2048 {
		t.Errorf("small build sizes = %d MB, %d MB, want the minimums 512 MB, 2048 MB", b.StagingMemoryInMB, b.StagingDiskInMB)
	}
}

func TestBuildCreateRejects(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	ready := f.readyPackage(f.appGUID)
	awaiting := f.createPackage(packageBody("bits", f.appGUID)).GUID

	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   int
		detail string
	}{
		{"no package", map[string]any{}, 422, 10008, "Package guid can't be blank: send package.guid with the guid of a READY package"},
		{"unknown package", buildBody(uuid.NewString()), 422, 10008, "Unable to use package. Ensure that the package exists and you have access to it."},
		{"package not ready", buildBody(awaiting), 400, 1004, "Bad request: Cannot stage package whose state is not ready."},
		{"zero memory", map[string]any{"package": map[string]any{"guid": ready}, "staging_memory_in_mb": 0}, 422, 10008,
			"Staging memory in mb must be greater than 0"},
		{"negative disk", map[string]any{"package": map[string]any{"guid": ready}, "staging_disk_in_mb": -5}, 422, 10008,
			"Staging disk in mb must be greater than 0"},
		{"log rate below -1", map[string]any{"package": map[string]any{"guid": ready}, "staging_log_rate_limit_bytes_per_second": -2},
			422, 10008, "Staging log rate limit bytes per second must be greater than or equal to -1"},
		{"unknown field", map[string]any{"package": map[string]any{"guid": ready}, "droplet": "x"}, 422, 10008, "Unknown field(s): 'droplet'"},
		{"unknown stack", map[string]any{"package": map[string]any{"guid": ready},
			"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{"stack": "cflinuxfs4"}}}, 422, 10008,
			"Stack must be an existing stack: 'cflinuxfs4' is not one of 'ferry-test', 'other-stack'"},
		{"docker lifecycle for bits", map[string]any{"package": map[string]any{"guid": ready},
			"lifecycle": map[string]any{"type": "docker", "data": map[string]any{}}}, 422, 10008,
			"Lifecycle type 'docker' does not match the package: bits packages stage with the buildpack lifecycle"},
		{"bad metadata", map[string]any{"package": map[string]any{"guid": ready}, "metadata": map[string]any{"labels": map[string]string{"a/b/c": "x"}}},
			422, 10008, "Metadata label key 'a/b/c' is invalid: a key has at most one '/', between its prefix and its name"},
		{"not JSON", "{", 400, 1001, "Request invalid due to parse error: the body is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPost, "/v3/builds", f.developer, tc.body), tc.status, tc.code, tc.detail)
		})
	}
	if n := f.buildCount(); n != 0 {
		t.Errorf("%d builds stored by rejected requests", n)
	}
}

func TestBuildCreatePermissions(t *testing.T) {
	f := newStagingFixture(t)
	unusable := "Unable to use package. Ensure that the package exists and you have access to it."
	for _, tc := range []struct {
		name   string
		token  string
		status int
		code   int
		detail string
	}{
		{"auditor", f.auditor, 422, 10008, unusable},
		{"space manager", f.spaceManager, 422, 10008, unusable},
		{"org manager", f.orgManager, 422, 10008, unusable},
		{"stranger", f.stranger, 422, 10008, unusable},
		{"global auditor", f.globalAuditor, 403, 10003, "You are not authorized to perform the requested action"},
		{"read-only admin", f.readOnlyAdmin, 403, 10003, "You are not authorized to perform the requested action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkg := f.readyPackage(f.appGUID)
			assertTenancyError(t, f.env.do(http.MethodPost, "/v3/builds", tc.token, buildBody(pkg)), tc.status, tc.code, tc.detail)
		})
	}
	if n := f.buildCount(); n != 0 {
		t.Errorf("%d builds stored by refused requests", n)
	}
	f.createBuild(f.admin, buildBody(f.readyPackage(f.appGUID)))
}

func TestBuildListAndFilters(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	other := f.app(appBody("other", f.spaceGUID))["guid"].(string)
	pkgA := f.readyPackage(f.appGUID)
	first := f.createBuild(f.developer, buildBody(pkgA))
	if err := env.store.FailBuild(context.Background(), first.GUID, "StagingError - Staging error: x",
		store.AuditEvent{Type: "audit.app.build.failed", ActorType: "user", TargetGUID: f.appGUID, TargetType: "app"}); err != nil {
		t.Fatal(err)
	}
	second := f.createBuild(f.developer, buildBody(pkgA))
	third := f.createBuild(f.developer, buildBody(f.readyPackage(other)))

	for _, tc := range []struct {
		name, path, token string
		want              []string
	}{
		{"all, oldest first", "/v3/builds", f.developer, []string{first.GUID, second.GUID, third.GUID}},
		{"newest first", "/v3/builds?order_by=-created_at", f.developer, []string{third.GUID, second.GUID, first.GUID}},
		{"by state", "/v3/builds?states=FAILED", f.developer, []string{first.GUID}},
		{"by states", "/v3/builds?states=STAGING,STAGED", f.developer, []string{second.GUID, third.GUID}},
		{"by app", "/v3/builds?app_guids=" + other, f.developer, []string{third.GUID}},
		{"by package", "/v3/builds?package_guids=" + pkgA, f.developer, []string{first.GUID, second.GUID}},
		{"by guid", "/v3/builds?guids=" + second.GUID, f.developer, []string{second.GUID}},
		{"app builds", "/v3/apps/" + f.appGUID + "/builds", f.auditor, []string{first.GUID, second.GUID}},
		{"app builds by state", "/v3/apps/" + f.appGUID + "/builds?states=STAGING", f.auditor, []string{second.GUID}},
		{"stranger", "/v3/builds", f.stranger, []string{}},
		{"global auditor", "/v3/builds?per_page=2&page=2", f.globalAuditor, []string{third.GUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				Pagination struct {
					TotalResults int `json:"total_results"`
				} `json:"pagination"`
				Resources []buildView `json:"resources"`
			}
			env.do(http.MethodGet, tc.path, tc.token, nil).expect(http.StatusOK).decode(&body)
			got := []string{}
			for _, b := range body.Resources {
				got = append(got, b.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("builds (-want +got):\n%s", diff)
			}
		})
	}

	assertTenancyError(t, env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/builds", f.stranger, nil), 404, 10010, "App not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/builds?order_by=name", f.developer, nil), 400, 10005,
		"The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/builds?space_guids=x", f.developer, nil), 400, 10005,
		"The query parameter is invalid: Unknown query parameter(s): 'space_guids'. Valid parameters are: 'page', 'per_page', 'order_by', "+
			"'guids', 'app_guids', 'package_guids', 'states', 'label_selector', 'created_ats', 'updated_ats', 'created_ats[lt]', "+
			"'created_ats[lte]', 'created_ats[gt]', 'created_ats[gte]', 'updated_ats[lt]', 'updated_ats[lte]', 'updated_ats[gt]', 'updated_ats[gte]'")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/builds/"+first.GUID, f.stranger, nil), 404, 10010, "Build not found")

	var failed buildView
	env.do(http.MethodGet, "/v3/builds/"+first.GUID, f.developer, nil).expect(http.StatusOK).decode(&failed)
	if failed.State != "FAILED" || failed.Error == nil || *failed.Error != "StagingError - Staging error: x" {
		t.Errorf("failed build = %s %v", failed.State, failed.Error)
	}
}

func TestBuildUpdateMetadata(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	b := f.createBuild(f.developer, buildBody(f.readyPackage(f.appGUID)))

	patch := map[string]any{"metadata": map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{"note": "x"}}}
	var got buildView
	env.do(http.MethodPatch, "/v3/builds/"+b.GUID, f.developer, patch).expect(http.StatusOK).decode(&got)
	if got.Metadata.Labels["tier"] != "web" || got.Metadata.Annotations["note"] != "x" {
		t.Errorf("metadata = %+v", got.Metadata)
	}

	assertTenancyError(t, env.do(http.MethodPatch, "/v3/builds/"+b.GUID, f.auditor, patch), 403, 10003,
		"You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/builds/"+b.GUID, f.supporter, patch), 403, 10003,
		"You are not authorized to perform the requested action")
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/builds/"+b.GUID, f.stranger, patch), 404, 10010, "Build not found")
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/builds/"+b.GUID, f.developer, map[string]any{"state": "STAGED"}), 422, 10008,
		"Unknown field(s): 'state'")
}

func TestBuildCreateForDockerPackage(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	image := f.pushDockerImage("team/web:1", v1.Config{Entrypoint: []string{"/srv"}, ExposedPorts: map[string]struct{}{"9000/tcp": {}}})
	body := packageBody("docker", f.dockerAppGUID)
	body["data"] = map[string]any{"image": image}
	pkg := f.createPackage(body).GUID

	b := f.createBuild(f.developer, buildBody(pkg))
	if b.State != "STAGED" || b.Droplet == nil || b.Lifecycle.Type != "docker" || len(b.Lifecycle.Data) != 0 {
		t.Fatalf("docker build = %+v", b)
	}
	if b.Links["droplet"].Href != env.server.URL+"/v3/droplets/"+b.Droplet.GUID {
		t.Errorf("droplet link = %v", b.Links["droplet"])
	}
	var d dropletView
	env.do(http.MethodGet, "/v3/droplets/"+b.Droplet.GUID, f.developer, nil).expect(http.StatusOK).decode(&d)
	pinned := f.registry.ClusterReference(strings.TrimSuffix(image, ":1")) + "@sha256:"
	if d.Image == nil || !strings.HasPrefix(*d.Image, pinned) || d.Stack != nil || d.Buildpacks != nil ||
		d.ProcessTypes["web"] != "/srv" || d.ExecutionMetadata != `{"entrypoint":["/srv"]}` {
		t.Errorf("docker droplet = %+v", d)
	}
	types := []string{}
	for _, ev := range f.events(f.dockerAppGUID) {
		types = append(types, ev.Type)
	}
	if joined := strings.Join(types, ","); !strings.HasSuffix(joined, "audit.app.build.create,audit.app.droplet.create") {
		t.Errorf("audit events = %s", joined)
	}

	missing := packageBody("docker", f.dockerAppGUID)
	missing["data"] = map[string]any{"image": strings.TrimSuffix(image, "web:1") + "nothing:here"}
	missingPkg := f.createPackage(missing).GUID
	assertTenancyError(t, env.do(http.MethodPost, "/v3/builds", f.developer, buildBody(missingPkg)), 422, 10008,
		"Docker image '"+strings.TrimSuffix(image, "web:1")+"nothing:here' was not found: check the image name and tag")

	f.enableFlag(flagDiegoDocker, false)
	assertTenancyError(t, env.do(http.MethodPost, "/v3/builds", f.developer, buildBody(pkg)), 403, 330002,
		"Feature Disabled: diego_docker")
}

// pushDockerImage pushes an image with cfg to the fixture's registry and
// returns its reference there.
func (f *stagingFixture) pushDockerImage(repoTag string, cfg v1.Config) string {
	f.t.Helper()
	ref := strings.TrimSuffix(f.registry.Repository(), "/ferry") + "/" + repoTag
	tag, err := name.NewTag(ref)
	if err != nil {
		f.t.Fatal(err)
	}
	img, err := random.Image(32, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		f.t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		f.t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		f.t.Fatal(err)
	}
	return ref
}

// fakeDockerStager pins docker images through the fixture's registry. The
// droplet's process types and execution metadata come from k8sbackend in
// Ferry; its tests cover them, and this fake renders only the entrypoint
// and command.
type fakeDockerStager struct{ images *registry.Client }

func (s fakeDockerStager) DockerDroplet(ctx context.Context, pkg store.Package, b store.Build) (store.Droplet, error) {
	pinned, err := s.images.Resolve(ctx, pkg.Image)
	if err != nil {
		return store.Droplet{}, err
	}
	cf, err := s.images.ConfigFile(ctx, pinned)
	if err != nil {
		return store.Droplet{}, err
	}
	command := append(slices.Clone(cf.Config.Entrypoint), cf.Config.Cmd...)
	meta, err := json.Marshal(struct {
		Cmd        []string `json:"cmd,omitempty"`
		Entrypoint []string `json:"entrypoint,omitempty"`
	}{cf.Config.Cmd, cf.Config.Entrypoint})
	if err != nil {
		return store.Droplet{}, err
	}
	return store.Droplet{GUID: uuid.NewString(), AppGUID: b.AppGUID, PackageGUID: b.PackageGUID, BuildGUID: b.GUID,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleDocker, Image: s.images.ClusterReference(pinned),
		ProcessTypes: map[string]string{"web": strings.Join(command, " ")}, ExecutionMetadata: string(meta)}, nil
}
