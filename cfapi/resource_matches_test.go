package cfapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResourceMatches(t *testing.T) {
	f := newPackageFixture(t)
	pkg := f.createPackage(packageBody("bits", f.appGUID))
	f.uploadZip(f.developer, pkg.GUID, "[]", cliZip(t)).expect(http.StatusOK)

	cached := resourceOf(appV1[1])
	uppercase := resourceOf(appV1[0])
	uppercase["checksum"] = map[string]any{"value": strings.ToUpper(sha1Hex(appV1[0].body))}
	wrongSize := resourceOf(appV1[3])
	wrongSize["size_in_bytes"] = 999
	noMode := resourceOf(appV1[3])
	delete(noMode, "mode")
	unknown := resourceOf(appFile{name: "new.txt", mode: 0o644, body: "not uploaded yet"})
	empty := resourceOf(appV1[4])

	resp := f.env.do(http.MethodPost, "/v3/resource_matches", f.auditor, map[string]any{
		"resources": []any{cached, uppercase, wrongSize, noMode, unknown, empty},
	}).expect(http.StatusCreated)
	want := map[string]any{"resources": []any{
		map[string]any{"checksum": map[string]any{"value": sha1Hex(appV1[1].body)}, "size_in_bytes": float64(len(appV1[1].body)), "path": "run.sh", "mode": "755"},
		map[string]any{"checksum": map[string]any{"value": strings.ToUpper(sha1Hex(appV1[0].body))}, "size_in_bytes": float64(len(appV1[0].body)), "path": "Procfile", "mode": "644"},
	}}
	if diff := cmp.Diff(want, resp.object()); diff != "" {
		t.Errorf("matches (-want +got):\n%s", diff)
	}

	// A full chunk of 5000 resources with long paths is larger than the
	// 1 MiB limit of other JSON bodies.
	chunk := make([]any, maxResourceMatches)
	for i := range chunk {
		r := resourceOf(appV1[1])
		r["path"] = fmt.Sprintf("node_modules/%s/%04d/index.js", strings.Repeat("deep/", 40), i)
		chunk[i] = r
	}
	var matched struct {
		Resources []any `json:"resources"`
	}
	f.env.do(http.MethodPost, "/v3/resource_matches", f.developer, map[string]any{"resources": chunk}).
		expect(http.StatusCreated).decode(&matched)
	if len(matched.Resources) != maxResourceMatches {
		t.Errorf("%d of %d resources matched in a full chunk", len(matched.Resources), maxResourceMatches)
	}

	f.enableFlag(flagResourceMatching, false)
	resp = f.env.do(http.MethodPost, "/v3/resource_matches", f.developer, map[string]any{"resources": []any{cached}}).expect(http.StatusCreated)
	if diff := cmp.Diff(map[string]any{"resources": []any{}}, resp.object()); diff != "" {
		t.Errorf("matches with resource_matching off (-want +got):\n%s", diff)
	}

	f.enableFlag(flagAppBitsUpload, false)
	resp = f.env.do(http.MethodPost, "/v3/resource_matches", f.developer, map[string]any{"resources": []any{cached}}).expect(http.StatusForbidden)
	if _, _, detail := resp.cfError(); detail != "Feature Disabled: app_bits_upload" {
		t.Errorf("detail = %q", detail)
	}
}

func TestResourceMatchesRejects(t *testing.T) {
	f := newPackageFixture(t)
	valid := resourceOf(appV1[1])
	with := func(key string, value any) map[string]any {
		r := map[string]any{}
		for k, v := range valid {
			r[k] = v
		}
		r[key] = value
		return r
	}
	tooMany := make([]any, maxResourceMatches+1)
	for i := range tooMany {
		tooMany[i] = valid
	}

	for _, tc := range []struct {
		name   string
		body   any
		detail string
	}{
		{"no resources", map[string]any{}, "Resources must be an array"},
		{"empty list", map[string]any{"resources": []any{}}, "Resources must have at least 1 resource"},
		{"too many", map[string]any{"resources": tooMany}, "Resources array can have at most 5000 resources"},
		{"no checksum", map[string]any{"resources": []any{with("checksum", nil)}},
			"Resources array contains at least one resource with a non-object checksum"},
		{"checksum without value", map[string]any{"resources": []any{with("checksum", map[string]any{})}},
			"Resources array contains at least one resource with a non-string checksum value"},
		{"not a SHA-1", map[string]any{"resources": []any{with("checksum", map[string]any{"value": "abc"})}},
			"Resources array contains at least one resource with a non-SHA1 checksum value"},
		{"no size", map[string]any{"resources": []any{with("size_in_bytes", nil)}},
			"Resources array contains at least one resource with a non-integer size_in_bytes"},
		{"negative size", map[string]any{"resources": []any{with("size_in_bytes", -1)}},
			"Resources array contains at least one resource with a negative size_in_bytes"},
		{"bad mode", map[string]any{"resources": []any{with("mode", "rwx")}},
			"Resources array contains at least one resource with an incorrect mode"},
		{"unknown field", map[string]any{"resources": []any{with("color", "red")}}, "Unknown field(s): 'color'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/resource_matches", f.developer, tc.body).expect(http.StatusUnprocessableEntity)
			if _, _, detail := resp.cfError(); detail != tc.detail {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}

	f.env.do(http.MethodPost, "/v3/resource_matches", "", map[string]any{"resources": []any{valid}}).expect(http.StatusUnauthorized)
}
