package cfapi

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/appbits"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/registry"
)

// appFile is one file of a test app. A mode with fs.ModeDir is a
// directory entry, one with fs.ModeSymlink a symlink whose body is its
// target.
type appFile struct {
	name string
	mode fs.FileMode
	body string
}

// zipOf builds a zip the way the cf CLI does: directory entries, and Unix
// modes in the external attributes.
func zipOf(t *testing.T, files ...appFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		if f.mode.IsDir() {
			hdr.Method = zip.Store
		}
		hdr.SetMode(f.mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appV1 is the first version of the test app.
var appV1 = []appFile{
	{name: "Procfile", mode: 0o644, body: "web: ./run.sh\n"},
	{name: "run.sh", mode: 0o755, body: "#!/bin/sh\nexec python3 -m http.server $PORT\n"},
	{name: "sub/", mode: fs.ModeDir | 0o755},
	{name: "sub/data.txt", mode: 0o600, body: "some data\n"},
	{name: "sub/empty.txt", mode: 0o644},
	{name: "sub/link", mode: fs.ModeSymlink | 0o777, body: "data.txt"},
}

func cliZip(t *testing.T) []byte { return zipOf(t, appV1...) }

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// resourceOf describes f as the cf CLI does in resource matches and in the
// upload's "resources" field.
func resourceOf(f appFile) map[string]any {
	return map[string]any{
		"path":          f.name,
		"mode":          fmt.Sprintf("%o", uint32(f.mode.Perm())),
		"checksum":      map[string]any{"value": sha1Hex(f.body)},
		"size_in_bytes": len(f.body),
	}
}

// uploadZip uploads in the cf CLI's format: the "resources" field first,
// then, unless zipData is nil, the "bits" file package.zip.
func (f *packageFixture) uploadZip(token, guid, resources string, zipData []byte) *testResponse {
	f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("resources", resources); err != nil {
		f.t.Fatal(err)
	}
	if zipData != nil {
		header := textproto.MIMEHeader{}
		header.Set("Content-Disposition", `form-data; name="bits"; filename="package.zip"`)
		header.Set("Content-Type", "application/zip")
		w, err := mw.CreatePart(header)
		if err != nil {
			f.t.Fatal(err)
		}
		w.Write(zipData)
	}
	if err := mw.Close(); err != nil {
		f.t.Fatal(err)
	}
	return f.uploadRaw(token, guid, mw.FormDataContentType(), body.Bytes())
}

func (f *packageFixture) uploadRaw(token, guid, contentType string, body []byte) *testResponse {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.env.server.URL+"/v3/packages/"+guid+"/upload", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "bearer "+token)
	return f.env.send(req)
}

// layerEntry is one entry of a package image's layer.
type layerEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Body     string
	Linkname string
}

// layerOf reads back the layer of the package's image, checking that every
// entry is owned by 0:0 with the epoch as its time.
func (f *packageFixture) layerOf(guid string) []layerEntry {
	f.t.Helper()
	rc, err := f.registry.OpenLayer(context.Background(), f.imageOf(guid))
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	var entries []layerEntry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			f.t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || !hdr.ModTime.Equal(time.Unix(0, 0)) {
			f.t.Errorf("entry %s: owner %d:%d (%q:%q), time %v; want 0:0 without names at the epoch",
				hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.ModTime)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			f.t.Fatal(err)
		}
		entries = append(entries, layerEntry{Name: hdr.Name, Type: hdr.Typeflag, Mode: hdr.Mode, Body: string(body), Linkname: hdr.Linkname})
	}
}

// v1Layer is the layer of appV1.
var v1Layer = []layerEntry{
	{Name: "Procfile", Type: tar.TypeReg, Mode: 0o644, Body: "web: ./run.sh\n"},
	{Name: "run.sh", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\nexec python3 -m http.server $PORT\n"},
	{Name: "sub/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "sub/data.txt", Type: tar.TypeReg, Mode: 0o600, Body: "some data\n"},
	{Name: "sub/empty.txt", Type: tar.TypeReg, Mode: 0o644},
	{Name: "sub/link", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "data.txt"},
}

func TestPackageUploadCLIFormat(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))

	var got packageView
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK).decode(&got)
	if got.State != "READY" {
		t.Fatalf("state after upload = %s, want READY", got.State)
	}
	image := f.imageOf(pkg.GUID)
	if !strings.HasPrefix(image, f.registry.PackageRepository(pkg.GUID)+"@sha256:") {
		t.Errorf("image = %q, want the package repository pinned by digest", image)
	}
	if got.Data.Checksum == nil || got.Data.Checksum.Value == nil || "sha256:"+*got.Data.Checksum.Value != image[strings.Index(image, "@")+1:] {
		t.Errorf("checksum = %+v, want the image digest of %s", got.Data.Checksum, image)
	}

	if diff := cmp.Diff(v1Layer, f.layerOf(pkg.GUID)); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
	cfg, err := f.registry.ConfigFile(context.Background(), image)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.Labels[labelPackageGUID] != pkg.GUID || cfg.Config.Labels[labelAppGUID] != f.appGUID {
		t.Errorf("labels = %v, want the package and app guids", cfg.Config.Labels)
	}

	if spool := f.spoolEntries(); len(spool) != 0 {
		t.Errorf("spool directory not empty after upload: %v", spool)
	}
	wantCached := []string{sha1Hex("web: ./run.sh\n"), sha1Hex("#!/bin/sh\nexec python3 -m http.server $PORT\n"), sha1Hex("some data\n")}
	if diff := cmp.Diff(sorted(wantCached), sorted(f.cachedFiles())); diff != "" {
		t.Errorf("cached files (-want +got):\n%s", diff)
	}
	events := f.events(f.appGUID)
	if last := events[len(events)-1]; last.Type != "audit.app.package.upload" || last.Data["package_guid"] != pkg.GUID {
		t.Errorf("last audit event = %+v, want audit.app.package.upload", last)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// matchAll posts resources of files to /v3/resource_matches and returns the
// matched ones as the upload's "resources" field.
func (f *packageFixture) matchAll(files []appFile) (string, []string) {
	f.t.Helper()
	var resources []map[string]any
	for _, file := range files {
		if file.mode.IsRegular() && file.body != "" {
			resources = append(resources, resourceOf(file))
		}
	}
	var matched struct {
		Resources []map[string]any `json:"resources"`
	}
	f.env.do(http.MethodPost, "/v3/resource_matches", f.developer, map[string]any{"resources": resources}).
		expect(http.StatusCreated).decode(&matched)
	paths := []string{}
	for _, m := range matched.Resources {
		paths = append(paths, m["path"].(string))
	}
	data, err := json.Marshal(matched.Resources)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(data), paths
}

func TestPackageUploadAllMatched(t *testing.T) {
	f := newPackageFixture(t)
	first := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, first.GUID, "[]", cliZip(t)).expect(http.StatusOK)

	matched, paths := f.matchAll(appV1)
	if diff := cmp.Diff([]string{"Procfile", "run.sh", "sub/data.txt"}, paths); diff != "" {
		t.Fatalf("matched paths (-want +got):\n%s", diff)
	}

	second := f.createPackage(packageBody("bits", f.appGUID))
	var got packageView
	f.uploadZip(f.developer, second.GUID, matched, nil).expect(http.StatusOK).decode(&got)
	if got.State != "READY" {
		t.Fatalf("state = %s, want READY", got.State)
	}
	want := []layerEntry{
		{Name: "Procfile", Type: tar.TypeReg, Mode: 0o644, Body: "web: ./run.sh\n"},
		{Name: "run.sh", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\nexec python3 -m http.server $PORT\n"},
		{Name: "sub/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "sub/data.txt", Type: tar.TypeReg, Mode: 0o600, Body: "some data\n"},
	}
	if diff := cmp.Diff(want, f.layerOf(second.GUID)); diff != "" {
		t.Errorf("layer of the all-matched upload (-want +got):\n%s", diff)
	}
}

func TestPackageUploadRepushChangedFile(t *testing.T) {
	f := newPackageFixture(t)
	first := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, first.GUID, "[]", cliZip(t)).expect(http.StatusOK)

	v2 := append([]appFile(nil), appV1...)
	v2[1] = appFile{name: "run.sh", mode: 0o755, body: "#!/bin/sh\necho version 2\n"}
	matched, paths := f.matchAll(v2)
	if diff := cmp.Diff([]string{"Procfile", "sub/data.txt"}, paths); diff != "" {
		t.Fatalf("matched paths (-want +got):\n%s", diff)
	}

	// The CLI zips what did not match: the changed file, the empty file,
	// the symlink and the directories.
	second := f.createPackage(packageBody("bits", f.appGUID))
	zipData := zipOf(t, v2[1], v2[2], v2[4], v2[5])
	f.uploadZip(f.developer, second.GUID, matched, zipData).expect(http.StatusOK)

	want := append([]layerEntry(nil), v1Layer...)
	want[1].Body = "#!/bin/sh\necho version 2\n"
	if diff := cmp.Diff(want, f.layerOf(second.GUID)); diff != "" {
		t.Errorf("layer after re-push (-want +got):\n%s", diff)
	}
	if !f.env.api.uploads.cache.Has(sha1Hex(v2[1].body), int64(len(v2[1].body))) {
		t.Error("the changed file was not added to the resource cache")
	}
}

func TestPackageUploadRejects(t *testing.T) {
	f := newPackageFixture(t)
	good := appFile{name: "good.txt", mode: 0o644, body: "good content that must not be cached"}
	bomb := appFile{name: "zeros.bin", mode: 0o644, body: string(make([]byte, 4<<20))}
	valid := zipOf(t, good, appFile{name: "other.txt", mode: 0o644, body: strings.Repeat("x", 500)})

	multipartBody := func(resources string, zipData []byte) (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("resources", resources)
		w, _ := mw.CreateFormFile("bits", "package.zip")
		w.Write(zipData)
		mw.Close()
		return mw.FormDataContentType(), body.Bytes()
	}
	truncatedType, truncatedBody := multipartBody("[]", valid)
	extraType, extraBody := func() (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("resources", "[]")
		mw.WriteField("extra", "x")
		mw.Close()
		return mw.FormDataContentType(), body.Bytes()
	}()
	emptyType, emptyBody := func() (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.Close()
		return mw.FormDataContentType(), body.Bytes()
	}()
	missing := resourceOf(appFile{name: "lib/x.js", mode: 0o644, body: "never uploaded"})
	missingJSON, _ := json.Marshal([]any{missing})

	tests := []struct {
		name        string
		contentType string
		body        []byte
		resources   string
		zip         []byte
		detail      string
		prefix      bool
	}{
		{name: "zip slip", resources: "[]", zip: zipOf(t, good, appFile{name: "../evil.sh", mode: 0o755, body: "x"}),
			detail: "The app upload is invalid: entry '../evil.sh': the path contains '..' and would leave the app directory"},
		{name: "symlink escape", resources: "[]", zip: zipOf(t, good, appFile{name: "link", mode: fs.ModeSymlink | 0o777, body: "../../etc/passwd"}),
			detail: "The app upload is invalid: entry 'link': the symlink target '../../etc/passwd' points outside the app directory"},
		{name: "absolute path", resources: "[]", zip: zipOf(t, good, appFile{name: "/etc/cron.d/evil", mode: 0o644, body: "x"}),
			detail: "The app upload is invalid: entry '/etc/cron.d/evil': the path is absolute: paths must be relative to the app directory"},
		{name: "device file", resources: "[]", zip: zipOf(t, good, appFile{name: "dev/sda", mode: fs.ModeDevice | 0o644}),
			detail: "The app upload is invalid: entry 'dev/sda': the entry is a device file: only files, directories and symlinks are allowed"},
		{name: "fifo", resources: "[]", zip: zipOf(t, good, appFile{name: "pipe", mode: fs.ModeNamedPipe | 0o644}),
			detail: "The app upload is invalid: entry 'pipe': the entry is a FIFO: only files, directories and symlinks are allowed"},
		{name: "zip bomb", resources: "[]", zip: zipOf(t, good, bomb),
			detail: "The app upload is invalid: entry 'zeros.bin': the entry expands from ", prefix: true},
		{name: "truncated zip", resources: "[]", zip: valid[:len(valid)-30],
			detail: "The app upload is invalid: the file is not a valid zip archive, or it is truncated"},
		{name: "zero-byte zip", resources: "[]", zip: []byte{},
			detail: "The app upload is invalid: the zip file is empty"},
		{name: "missing cached resource", resources: string(missingJSON), zip: zipOf(t, good),
			detail: "The app upload is invalid: resource 'lib/x.js' with SHA-1 " + sha1Hex("never uploaded") +
				" is not in the resource cache: push again so the file is uploaded"},
		{name: "invalid resources JSON", resources: "[{", zip: valid,
			detail: "Resources must be valid JSON: send an array of objects with path, mode, checksum.value and size_in_bytes"},
		{name: "invalid resource mode", resources: `[{"path":"a","mode":"9z","checksum":{"value":"` + sha1Hex("a") + `"},"size_in_bytes":1}]`,
			zip: valid, detail: "Resources[0] is invalid: mode '9z' must be an octal file mode such as '644'"},
		{name: "wrong content type", contentType: "application/json", body: []byte(`{"bits":"x"}`),
			detail: "The upload must be multipart/form-data with a boundary, not 'application/json': send a 'resources' field and a 'bits' file field"},
		{name: "empty multipart body", contentType: emptyType, body: emptyBody,
			detail: "Upload must include either resources or bits"},
		{name: "zero-byte body", contentType: "multipart/form-data; boundary=xyz", body: []byte{},
			detail: "The app upload is invalid: the multipart body is malformed or truncated"},
		{name: "truncated multipart body", contentType: truncatedType, body: truncatedBody[:len(truncatedBody)-40],
			detail: "The app upload is invalid: the multipart body is malformed or truncated"},
		{name: "unknown field", contentType: extraType, body: extraBody,
			detail: "Unknown field(s): 'extra'. Valid fields are: 'resources', 'bits'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkg := f.createPackage(packageBody("bits", f.appGUID))
			cachedBefore := f.cachedFiles()

			var resp *testResponse
			if tc.contentType != "" {
				resp = f.uploadRaw(f.developer, pkg.GUID, tc.contentType, tc.body)
			} else {
				resp = f.uploadZip(f.developer, pkg.GUID, tc.resources, tc.zip)
			}
			resp.expect(http.StatusUnprocessableEntity)
			code, title, detail := resp.cfError()
			if code != 10008 || title != "CF-UnprocessableEntity" {
				t.Errorf("error = %d %s, want 10008 CF-UnprocessableEntity", code, title)
			}
			if tc.prefix && !strings.HasPrefix(detail, tc.detail) || !tc.prefix && detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}

			if state := f.getPackage(pkg.GUID).State; state != "AWAITING_UPLOAD" {
				t.Errorf("state after a rejected upload = %s, want AWAITING_UPLOAD", state)
			}
			if spool := f.spoolEntries(); len(spool) != 0 {
				t.Errorf("spool directory not empty: %v", spool)
			}
			if diff := cmp.Diff(cachedBefore, f.cachedFiles()); diff != "" {
				t.Errorf("resource cache changed (-before +after):\n%s", diff)
			}
			if _, err := f.registry.Resolve(context.Background(), f.registry.PackageRepository(pkg.GUID)+":latest"); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("package image exists after a rejected upload (error %v)", err)
			}
			if n := f.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.app.package.upload' AND data->>'package_guid' = $1`, pkg.GUID); n != 0 {
				t.Errorf("%d upload events recorded for a rejected upload", n)
			}
		})
	}
}

func TestPackageUploadTooLarge(t *testing.T) {
	f := newPackageFixture(t)
	f.env.api.uploads.limits.MaxZipBytes = 1024
	noise := make([]byte, 4096)
	rand.Read(noise)
	pkg := f.createPackage(packageBody("bits", f.appGUID))

	resp := f.uploadZip(f.developer, pkg.GUID, "[]", zipOf(t, appFile{name: "noise.bin", mode: 0o644, body: string(noise)}))
	resp.expect(http.StatusUnprocessableEntity)
	if _, _, detail := resp.cfError(); detail != "The app upload is invalid: the zip file is larger than the maximum of 1024 bytes" {
		t.Errorf("detail = %q", detail)
	}
	if spool := f.spoolEntries(); len(spool) != 0 {
		t.Errorf("spool directory not empty: %v", spool)
	}
}

func TestPackageUploadRefusals(t *testing.T) {
	f := newPackageFixture(t)
	ready := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, ready.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	dockerBody := packageBody("docker", f.dockerAppGUID)
	dockerBody["data"] = map[string]any{"image": "nginx"}
	docker := f.createPackage(dockerBody)
	awaiting := f.createPackage(packageBody("bits", f.appGUID))

	for _, tc := range []struct {
		name, guid, token string
		status, code      int
		detail            string
	}{
		{"second upload", ready.GUID, f.developer, 400, 150004, "Bits may be uploaded only once. Create a new package to upload different bits."},
		{"docker package", docker.GUID, f.developer, 422, 10008, "Package type must be bits."},
		{"auditor", awaiting.GUID, f.auditor, 403, 10003, "You are not authorized to perform the requested action"},
		{"stranger", awaiting.GUID, f.stranger, 404, 10010, "Package not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.uploadZip(tc.token, tc.guid, "[]", cliZip(t)).expect(tc.status)
			if code, _, detail := resp.cfError(); code != tc.code || detail != tc.detail {
				t.Errorf("error = %d %q, want %d %q", code, detail, tc.code, tc.detail)
			}
		})
	}

	f.enableFlag(flagAppBitsUpload, false)
	resp := f.uploadZip(f.developer, awaiting.GUID, "[]", cliZip(t)).expect(http.StatusForbidden)
	if _, title, detail := resp.cfError(); title != "CF-FeatureDisabled" || detail != "Feature Disabled: app_bits_upload" {
		t.Errorf("error = %s %q, want CF-FeatureDisabled", title, detail)
	}
}

func TestPackageUploadRegistryFailure(t *testing.T) {
	f := newPackageFixture(t)
	// Nothing listens on port 1 of the loopback address.
	f.env.api.registry = registry.New(config.Registry{Address: "127.0.0.1:1", Repository: "ferry"})
	pkg := f.createPackage(packageBody("bits", f.appGUID))

	var got packageView
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK).decode(&got)
	if got.State != "FAILED" {
		t.Errorf("state = %s, want FAILED", got.State)
	}
	if got.Data.Error == nil || *got.Data.Error != "Upload failed: the package image could not be stored in the registry" {
		t.Errorf("data.error = %v", got.Data.Error)
	}
	if spool := f.spoolEntries(); len(spool) != 0 {
		t.Errorf("spool directory not empty: %v", spool)
	}
	if cached := f.cachedFiles(); len(cached) != 0 {
		t.Errorf("files cached for a failed upload: %v", cached)
	}
}

func TestPackageDownload(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)

	resp := f.env.do(http.MethodGet, "/v3/packages/"+pkg.GUID+"/download", f.developer, nil).expect(http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}
	zr, err := zip.NewReader(bytes.NewReader(resp.Body), int64(len(resp.Body)))
	if err != nil {
		t.Fatal(err)
	}
	var got []appFile
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		got = append(got, appFile{name: zf.Name, mode: zf.Mode(), body: string(body)})
	}
	if diff := cmp.Diff(appV1, got, cmp.AllowUnexported(appFile{})); diff != "" {
		t.Errorf("downloaded zip (-uploaded +downloaded):\n%s", diff)
	}
	events := f.events(f.appGUID)
	if last := events[len(events)-1]; last.Type != "audit.app.package.download" {
		t.Errorf("last audit event = %s, want audit.app.package.download", last.Type)
	}

	awaiting := f.createPackage(packageBody("bits", f.appGUID))
	dockerBody := packageBody("docker", f.dockerAppGUID)
	dockerBody["data"] = map[string]any{"image": "nginx"}
	docker := f.createPackage(dockerBody)
	for _, tc := range []struct {
		name, guid, token string
		status            int
		detail            string
	}{
		{"read-only admin", pkg.GUID, f.readOnlyAdmin, 200, ""},
		{"auditor", pkg.GUID, f.auditor, 403, "You are not authorized to perform the requested action"},
		{"space manager", pkg.GUID, f.spaceManager, 403, "You are not authorized to perform the requested action"},
		{"global auditor", pkg.GUID, f.globalAuditor, 403, "You are not authorized to perform the requested action"},
		{"stranger", pkg.GUID, f.stranger, 404, "Package not found"},
		{"no bits yet", awaiting.GUID, f.developer, 422, "Package has no bits to download."},
		{"docker package", docker.GUID, f.developer, 422, "Package type must be bits."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodGet, "/v3/packages/"+tc.guid+"/download", tc.token, nil).expect(tc.status)
			if tc.status == 200 {
				return
			}
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
}

func TestPackageUploadRemovesStaleDirectories(t *testing.T) {
	f := newPackageFixture(t)
	spool := filepath.Join(f.dataDir, "uploads")
	for _, name := range []string{"upload-stale", "upload-recent"} {
		if err := os.MkdirAll(filepath.Join(spool, name, "app"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(filepath.Join(spool, "upload-stale"), old, old); err != nil {
		t.Fatal(err)
	}

	pkg := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)
	if diff := cmp.Diff([]string{"upload-recent"}, f.spoolEntries()); diff != "" {
		t.Errorf("spool directory (-want +got):\n%s", diff)
	}
}

func TestPackageUploadLimitsDefault(t *testing.T) {
	cfg := newUploadConfig("", appbits.Limits{MaxEntries: 7})
	if cfg.limits.MaxEntries != 7 || cfg.limits.MaxZipBytes != appbits.DefaultLimits().MaxZipBytes {
		t.Errorf("limits = %+v, want MaxEntries 7 and defaults elsewhere", cfg.limits)
	}
}
