package cfapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/ferrycf/ferry/appbits"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/registry"
)

// packageFixture is an app fixture with an in-process registry, a data
// directory, a buildpack app and a docker app.
type packageFixture struct {
	*appFixture
	registry *registry.Client
	dataDir  string
	// appGUID is a buildpack app and dockerAppGUID a docker app, both in
	// the fixture's space.
	appGUID, dockerAppGUID string
}

func newPackageFixture(t *testing.T) *packageFixture {
	t.Helper()
	f := &packageFixture{appFixture: newAppFixture(t), dataDir: t.TempDir()}
	server := httptest.NewServer(ggcrregistry.New())
	t.Cleanup(server.Close)
	f.registry = registry.New(config.Registry{Address: strings.TrimPrefix(server.URL, "http://"), Repository: "ferry"})
	f.env.api.registry = f.registry
	f.env.api.uploads = newUploadConfig(f.dataDir, appbits.Limits{})

	f.appGUID = f.app(appBody("web", f.spaceGUID))["guid"].(string)
	f.enableFlag(flagDiegoDocker, true)
	docker := appBody("img", f.spaceGUID)
	docker["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{}}
	f.dockerAppGUID = f.app(docker)["guid"].(string)
	return f
}

func packageBody(packageType, appGUID string) map[string]any {
	return map[string]any{
		"type":          packageType,
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}},
	}
}

// createPackage creates a package as admin and returns it.
func (f *packageFixture) createPackage(body map[string]any) packageView {
	f.t.Helper()
	var p packageView
	f.env.do(http.MethodPost, "/v3/packages", f.admin, body).expect(http.StatusCreated).decode(&p)
	return p
}

// packageView is the package JSON as the tests read it.
type packageView struct {
	GUID  string `json:"guid"`
	Type  string `json:"type"`
	State string `json:"state"`
	Data  struct {
		Checksum *struct {
			Type  string  `json:"type"`
			Value *string `json:"value"`
		} `json:"checksum"`
		Error    *string `json:"error"`
		Image    string  `json:"image"`
		Username *string `json:"username"`
		Password *string `json:"password"`
	} `json:"data"`
}

func (f *packageFixture) getPackage(guid string) packageView {
	f.t.Helper()
	var p packageView
	f.env.do(http.MethodGet, "/v3/packages/"+guid, f.admin, nil).expect(http.StatusOK).decode(&p)
	return p
}

func TestPackageCreateBitsJSON(t *testing.T) {
	f := newPackageFixture(t)

	resp := f.env.do(http.MethodPost, "/v3/packages", f.developer, map[string]any{
		"type":          "bits",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": f.appGUID}}},
		"metadata":      map[string]any{"labels": map[string]any{"tier": "web"}},
	}).expect(http.StatusCreated)
	got := resp.object()
	guid := got["guid"].(string)
	base := f.env.server.URL
	want := map[string]any{
		"guid":          guid,
		"created_at":    got["created_at"],
		"updated_at":    got["updated_at"],
		"type":          "bits",
		"data":          map[string]any{"checksum": map[string]any{"type": "sha256", "value": nil}, "error": nil},
		"state":         "AWAITING_UPLOAD",
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": f.appGUID}}},
		"metadata":      map[string]any{"labels": map[string]any{"tier": "web"}, "annotations": map[string]any{}},
		"links": map[string]any{
			"self":     map[string]any{"href": base + "/v3/packages/" + guid},
			"upload":   map[string]any{"href": base + "/v3/packages/" + guid + "/upload", "method": "POST"},
			"download": map[string]any{"href": base + "/v3/packages/" + guid + "/download"},
			"app":      map[string]any{"href": base + "/v3/apps/" + f.appGUID},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("package JSON (-want +got):\n%s", diff)
	}

	events := f.events(f.appGUID)
	last := events[len(events)-1]
	if last.Type != "audit.app.package.create" || last.Data["package_guid"] != guid || last.TargetType != "app" || last.ActorName != "developer" {
		t.Errorf("last audit event = %+v, want audit.app.package.create of the package by developer", last)
	}
}

func TestPackageCreateDockerHidesPassword(t *testing.T) {
	f := newPackageFixture(t)
	const secret = "registry-s3cret-value"

	body := packageBody("docker", f.dockerAppGUID)
	body["data"] = map[string]any{"image": "registry.example.com/team/app:1.0", "username": "robot", "password": secret}
	resp := f.env.do(http.MethodPost, "/v3/packages", f.developer, body).expect(http.StatusCreated)
	got := resp.object()
	if diff := cmp.Diff(map[string]any{"image": "registry.example.com/team/app:1.0", "username": "robot", "password": "***"}, got["data"]); diff != "" {
		t.Errorf("docker data (-want +got):\n%s", diff)
	}
	if got["state"] != "READY" {
		t.Errorf("state = %v, want READY", got["state"])
	}
	links := got["links"].(map[string]any)
	if _, ok := links["upload"]; ok {
		t.Error("a docker package has an upload link")
	}
	if _, ok := links["download"]; ok {
		t.Error("a docker package has a download link")
	}

	plain := packageBody("docker", f.dockerAppGUID)
	plain["data"] = map[string]any{"image": "nginx"}
	data := f.env.do(http.MethodPost, "/v3/packages", f.developer, plain).expect(http.StatusCreated).object()["data"]
	if diff := cmp.Diff(map[string]any{"image": "nginx", "username": nil, "password": nil}, data); diff != "" {
		t.Errorf("docker data without credentials (-want +got):\n%s", diff)
	}

	events := f.events(f.dockerAppGUID)
	request := events[len(events)-2].Data["request"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"image": "registry.example.com/team/app:1.0", "username": "robot", "password": "***"}, request["data"]); diff != "" {
		t.Errorf("audit request data (-want +got):\n%s", diff)
	}
	if n := f.count(`SELECT count(*) FROM audit_events WHERE data::text LIKE '%' || $1 || '%'`, secret); n != 0 {
		t.Errorf("%d audit events contain the password", n)
	}
	if strings.Contains(f.env.logs.String(), secret) {
		t.Error("the logs contain the password")
	}
	list := f.env.do(http.MethodGet, "/v3/packages", f.developer, nil).expect(http.StatusOK)
	if strings.Contains(string(list.Body), secret) {
		t.Error("the package list contains the password")
	}
}

func TestPackageCreateRejects(t *testing.T) {
	f := newPackageFixture(t)
	withData := func(packageType, appGUID string, data map[string]any) map[string]any {
		b := packageBody(packageType, appGUID)
		b["data"] = data
		return b
	}

	tests := []struct {
		name   string
		token  string
		body   any
		status int
		detail string
	}{
		{"unknown type", f.developer, packageBody("zip", f.appGUID), 422, "Type must be one of 'bits', 'docker'"},
		{"no app", f.developer, map[string]any{"type": "bits"}, 422,
			"Relationships.app is required: send relationships.app.data.guid with the guid of the package's app"},
		{"missing app", f.developer, packageBody("bits", "no-such-app"), 422, "App is invalid. Ensure it exists and you have access to it."},
		{"invisible app", f.stranger, packageBody("bits", f.appGUID), 422, "App is invalid. Ensure it exists and you have access to it."},
		{"bits with data", f.developer, withData("bits", f.appGUID, map[string]any{"image": "nginx"}), 422,
			"Data must be empty if provided for bits packages"},
		{"docker without image", f.developer, withData("docker", f.dockerAppGUID, map[string]any{}), 422,
			"Data.image is required for docker packages: send data.image with an image reference such as 'nginx:1.25'"},
		{"bad image reference", f.developer, withData("docker", f.dockerAppGUID, map[string]any{"image": "Not A/Valid:ref!"}), 422,
			"Data.image 'Not A/Valid:ref!' is not a valid image reference: use a form such as 'nginx:1.25' or 'registry.example.com/team/app@sha256:…'"},
		{"username without password", f.developer, withData("docker", f.dockerAppGUID, map[string]any{"image": "nginx", "username": "u"}), 422,
			"Data.username and data.password must be given together, for a private registry, or both omitted"},
		{"bits for docker app", f.developer, packageBody("bits", f.dockerAppGUID), 422, "Cannot create bits package for a Docker app."},
		{"docker for buildpack app", f.developer, withData("docker", f.appGUID, map[string]any{"image": "nginx"}), 422,
			"Cannot create Docker package for a buildpack app."},
		{"unknown field", f.developer, map[string]any{"type": "bits", "color": "red"}, 422, "Unknown field(s): 'color'"},
		{"auditor", f.auditor, packageBody("bits", f.appGUID), 403, "You are not authorized to perform the requested action"},
		{"space manager", f.spaceManager, packageBody("bits", f.appGUID), 403, "You are not authorized to perform the requested action"},
		{"global auditor", f.globalAuditor, packageBody("bits", f.appGUID), 403, "You are not authorized to perform the requested action"},
		{"read-only admin", f.readOnlyAdmin, packageBody("bits", f.appGUID), 403, "You are not authorized to perform the requested action"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/packages", tc.token, tc.body).expect(tc.status)
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM packages`); n != 0 {
		t.Errorf("%d packages exist after rejected requests", n)
	}
}

func TestPackageReadPermissions(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))

	for _, tc := range []struct {
		name         string
		token        string
		read, delete int
	}{
		{"auditor", f.auditor, http.StatusOK, http.StatusForbidden},
		{"supporter", f.supporter, http.StatusOK, http.StatusForbidden},
		{"space manager", f.spaceManager, http.StatusOK, http.StatusForbidden},
		{"org manager", f.orgManager, http.StatusOK, http.StatusForbidden},
		{"global auditor", f.globalAuditor, http.StatusOK, http.StatusForbidden},
		{"read-only admin", f.readOnlyAdmin, http.StatusOK, http.StatusForbidden},
		{"org user", f.orgUser, http.StatusNotFound, http.StatusNotFound},
		{"stranger", f.stranger, http.StatusNotFound, http.StatusNotFound},
		{"developer", f.developer, http.StatusOK, http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodGet, "/v3/packages/"+pkg.GUID, tc.token, nil).expect(tc.read)
			if tc.read == http.StatusNotFound {
				if _, _, detail := resp.cfError(); detail != "Package not found" {
					t.Errorf("detail = %q, want %q", detail, "Package not found")
				}
			}
			f.env.do(http.MethodDelete, "/v3/packages/"+pkg.GUID, tc.token, nil).expect(tc.delete)
		})
	}
}

func TestPackageList(t *testing.T) {
	f := newPackageFixture(t)
	first := f.createPackage(packageBody("bits", f.appGUID))
	second := f.createPackage(packageBody("bits", f.appGUID))
	dockerBody := packageBody("docker", f.dockerAppGUID)
	dockerBody["data"] = map[string]any{"image": "nginx"}
	docker := f.createPackage(dockerBody)

	otherSpace := f.space(f.orgGUID, "other")
	otherApp := f.app(appBody("other", otherSpace))["guid"].(string)
	hidden := f.createPackage(packageBody("bits", otherApp))

	tests := []struct {
		name  string
		path  string
		token string
		want  []string
	}{
		{"all as admin", "/v3/packages", f.admin, []string{first.GUID, second.GUID, docker.GUID, hidden.GUID}},
		{"visible to developer", "/v3/packages", f.developer, []string{first.GUID, second.GUID, docker.GUID}},
		{"none for stranger", "/v3/packages", f.stranger, []string{}},
		{"types", "/v3/packages?types=docker", f.admin, []string{docker.GUID}},
		{"states", "/v3/packages?states=READY", f.admin, []string{docker.GUID}},
		{"app guids", "/v3/packages?app_guids=" + otherApp, f.admin, []string{hidden.GUID}},
		{"space guids", "/v3/packages?space_guids=" + otherSpace, f.admin, []string{hidden.GUID}},
		{"organization guids", "/v3/packages?organization_guids=" + f.orgGUID + "&types=bits", f.admin, []string{first.GUID, second.GUID, hidden.GUID}},
		{"guids", "/v3/packages?guids=" + second.GUID + "," + hidden.GUID, f.developer, []string{second.GUID}},
		{"newest first", "/v3/packages?order_by=-created_at&types=bits&app_guids=" + f.appGUID, f.admin, []string{second.GUID, first.GUID}},
		{"page two", "/v3/packages?per_page=2&page=2", f.admin, []string{docker.GUID, hidden.GUID}},
		{"app packages", "/v3/apps/" + f.appGUID + "/packages", f.developer, []string{first.GUID, second.GUID}},
		{"app packages by state", "/v3/apps/" + f.appGUID + "/packages?states=READY", f.developer, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body struct {
				Pagination struct {
					TotalResults int `json:"total_results"`
				} `json:"pagination"`
				Resources []packageView `json:"resources"`
			}
			f.env.do(http.MethodGet, tc.path, tc.token, nil).expect(http.StatusOK).decode(&body)
			got := []string{}
			for _, p := range body.Resources {
				got = append(got, p.GUID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("packages (-want +got):\n%s", diff)
			}
		})
	}

	for _, tc := range []struct {
		path, token string
		status      int
		detail      string
	}{
		{"/v3/apps/" + f.appGUID + "/packages?app_guids=x", f.developer, http.StatusBadRequest,
			"The query parameter is invalid: Unknown query parameter(s): 'app_guids'. Valid parameters are: 'page', 'per_page', 'order_by', 'guids', 'states', 'types', 'label_selector', 'created_ats', 'updated_ats', 'created_ats[lt]', 'created_ats[lte]', 'created_ats[gt]', 'created_ats[gte]', 'updated_ats[lt]', 'updated_ats[lte]', 'updated_ats[gt]', 'updated_ats[gte]'"},
		{"/v3/apps/" + f.appGUID + "/packages", f.stranger, http.StatusNotFound, "App not found"},
		{"/v3/packages?order_by=name", f.developer, http.StatusBadRequest, "The query parameter is invalid: Order by can only be: 'created_at', 'updated_at'"},
	} {
		resp := f.env.do(http.MethodGet, tc.path, tc.token, nil).expect(tc.status)
		if _, _, detail := resp.cfError(); detail != tc.detail {
			t.Errorf("GET %s: detail = %q, want %q", tc.path, detail, tc.detail)
		}
	}
}

func TestPackageUpdate(t *testing.T) {
	f := newPackageFixture(t)
	bits := f.createPackage(packageBody("bits", f.appGUID))
	dockerBody := packageBody("docker", f.dockerAppGUID)
	dockerBody["data"] = map[string]any{"image": "nginx"}
	docker := f.createPackage(dockerBody)

	got := f.env.do(http.MethodPatch, "/v3/packages/"+bits.GUID, f.developer, map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"release": "v1"}, "annotations": map[string]any{"note": "first"}},
	}).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"labels": map[string]any{"release": "v1"}, "annotations": map[string]any{"note": "first"}}, got["metadata"]); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}

	got = f.env.do(http.MethodPatch, "/v3/packages/"+docker.GUID, f.developer, map[string]any{"username": "robot", "password": "pw"}).
		expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"image": "nginx", "username": "robot", "password": "***"}, got["data"]); diff != "" {
		t.Errorf("docker data (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name, guid, token string
		body              any
		status            int
		detail            string
	}{
		{"credentials of bits", bits.GUID, f.developer, map[string]any{"username": "u"}, 422, "Cannot update Docker credentials for a buildpack app."},
		{"bad label", bits.GUID, f.developer, map[string]any{"metadata": map[string]any{"labels": map[string]any{"-bad": "x"}}}, 422,
			"Metadata label key '-bad' is invalid: the name must start and end with a letter or digit"},
		{"auditor", bits.GUID, f.auditor, map[string]any{}, 403, "You are not authorized to perform the requested action"},
		{"stranger", bits.GUID, f.stranger, map[string]any{}, 404, "Package not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPatch, "/v3/packages/"+tc.guid, tc.token, tc.body).expect(tc.status)
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
}

func TestPackageDelete(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))
	uploaded := f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	var ready packageView
	uploaded.decode(&ready)
	image := f.imageOf(pkg.GUID)

	resp := f.env.do(http.MethodDelete, "/v3/packages/"+pkg.GUID, f.developer, nil).expect(http.StatusAccepted)
	if !strings.HasPrefix(resp.Header.Get("Location"), f.env.server.URL+"/v3/jobs/") {
		t.Errorf("Location = %q, want a job URL", resp.Header.Get("Location"))
	}
	f.env.runner.RunPending(context.Background())

	f.env.do(http.MethodGet, "/v3/packages/"+pkg.GUID, f.admin, nil).expect(http.StatusNotFound)
	if _, err := f.registry.ConfigFile(context.Background(), image); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("package image after delete: error = %v, want ErrNotFound", err)
	}
	events := f.events(f.appGUID)
	if last := events[len(events)-1]; last.Type != "audit.app.package.delete" || last.Data["package_guid"] != pkg.GUID {
		t.Errorf("last audit event = %+v, want audit.app.package.delete", last)
	}
}

func TestPackageDeleteAppPackageImages(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	image := f.imageOf(pkg.GUID)

	if err := f.env.api.deleteAppPackageImages(context.Background(), f.appGUID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.registry.ConfigFile(context.Background(), image); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("package image after deleting the app's images: error = %v, want ErrNotFound", err)
	}
}

func TestPackageCopy(t *testing.T) {
	f := newPackageFixture(t)
	source := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, source.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	target := f.app(appBody("target", f.spaceGUID))["guid"].(string)
	copyBody := map[string]any{"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": target}}}}

	var copied packageView
	f.env.do(http.MethodPost, "/v3/packages?source_guid="+source.GUID, f.developer, copyBody).expect(http.StatusCreated).decode(&copied)
	if copied.State != "READY" || copied.Type != "bits" {
		t.Fatalf("copy = %+v, want a READY bits package", copied)
	}
	sourceImage, copyImage := f.imageOf(source.GUID), f.imageOf(copied.GUID)
	if !strings.HasPrefix(copyImage, f.registry.PackageRepository(copied.GUID)+"@") {
		t.Errorf("copy image %q is not in the copy's own repository", copyImage)
	}
	_, sourceDigest, _ := strings.Cut(sourceImage, "@")
	_, copyDigest, _ := strings.Cut(copyImage, "@")
	if sourceDigest != copyDigest {
		t.Errorf("copy digest %s, want the source's %s", copyDigest, sourceDigest)
	}
	events := f.events(target)
	if last := events[len(events)-1]; last.Type != "audit.app.package.create" ||
		last.Data["request"].(map[string]any)["source_package_guid"] != source.GUID {
		t.Errorf("last audit event of the target = %+v, want a package create naming the source", last)
	}

	dockerBody := packageBody("docker", f.dockerAppGUID)
	dockerBody["data"] = map[string]any{"image": "nginx:1.25", "username": "u", "password": "p"}
	docker := f.createPackage(dockerBody)
	otherDocker := appBody("img2", f.spaceGUID)
	otherDocker["lifecycle"] = map[string]any{"type": "docker", "data": map[string]any{}}
	dockerTarget := f.app(otherDocker)["guid"].(string)
	var dockerCopy packageView
	f.env.do(http.MethodPost, "/v3/packages?source_guid="+docker.GUID, f.developer, map[string]any{
		"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": dockerTarget}}},
	}).expect(http.StatusCreated).decode(&dockerCopy)
	if dockerCopy.State != "READY" || dockerCopy.Data.Image != "nginx:1.25" || dockerCopy.Data.Password == nil || *dockerCopy.Data.Password != "***" {
		t.Errorf("docker copy = %+v, want READY with the source's image and credentials", dockerCopy)
	}

	awaiting := f.createPackage(packageBody("bits", f.appGUID))
	for _, tc := range []struct {
		name, source, token string
		body                any
		status              int
		detail              string
	}{
		{"same app", source.GUID, f.developer, map[string]any{"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": f.appGUID}}}},
			422, "Source and destination app cannot be the same"},
		{"source not ready", awaiting.GUID, f.developer, copyBody, 422, "Source package is in state AWAITING_UPLOAD: only READY packages can be copied"},
		{"missing source", "no-such-package", f.developer, copyBody, 422, "Source package is invalid. Ensure it exists and you have access to it."},
		{"no app", source.GUID, f.developer, map[string]any{}, 422,
			"Relationships.app is required: send relationships.app.data.guid with the guid of the app to copy the package to"},
		{"auditor", source.GUID, f.auditor, copyBody, 403, "You are not authorized to perform the requested action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/packages?source_guid="+tc.source, tc.token, tc.body).expect(tc.status)
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
}

// imageOf returns the stored image reference of a package.
func (f *packageFixture) imageOf(guid string) string {
	f.t.Helper()
	var image string
	if err := f.env.store.DB().QueryRowContext(context.Background(), `SELECT image FROM packages WHERE guid = $1`, guid).Scan(&image); err != nil {
		f.t.Fatal(err)
	}
	return image
}

// spoolEntries lists what is left in the upload spool directory.
func (f *packageFixture) spoolEntries() []string {
	f.t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.dataDir, "uploads"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// cachedFiles lists the SHA-1 keys in the resource cache.
func (f *packageFixture) cachedFiles() []string {
	f.t.Helper()
	var keys []string
	err := filepath.WalkDir(filepath.Join(f.dataDir, "resource-cache"), func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			keys = append(keys, d.Name())
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return keys
}
