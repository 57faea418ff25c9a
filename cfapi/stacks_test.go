package cfapi

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeCatalog serves builder contents from memory; a stack missing from
// builders fails as an unreadable builder image would.
type fakeCatalog struct {
	builders map[string]BuilderInfo
}

func newFakeCatalog() *fakeCatalog {
	created := time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC)
	return &fakeCatalog{builders: map[string]BuilderInfo{
		"ferry-test": {Image: "builder:test", Description: "Ferry's test builder", RunImage: "run:test", Created: created,
			Buildpacks: []BuildpackInfo{{"ferry/python", "0.1.0"}, {"ferry/staticfile", "0.2.0"}}},
		"other-stack": {Image: "builder:other", RunImage: "run:other", Created: created.Add(time.Hour),
			Buildpacks: []BuildpackInfo{{"ferry/python", "0.1.1"}}},
	}}
}

func (c *fakeCatalog) Builder(_ context.Context, stack string) (BuilderInfo, error) {
	b, ok := c.builders[stack]
	if !ok {
		return BuilderInfo{}, errors.New("read builder image: connection refused")
	}
	return b, nil
}

type stackView struct {
	GUID             string  `json:"guid"`
	CreatedAt        string  `json:"created_at"`
	Name             string  `json:"name"`
	Description      string  `json:"description"`
	State            string  `json:"state"`
	StateReason      *string `json:"state_reason"`
	RunRootfsImage   string  `json:"run_rootfs_image"`
	BuildRootfsImage string  `json:"build_rootfs_image"`
	Default          bool    `json:"default"`
	Links            struct {
		Self struct {
			Href string `json:"href"`
		} `json:"self"`
	} `json:"links"`
}

type buildpackView struct {
	GUID      string  `json:"guid"`
	Name      string  `json:"name"`
	Stack     string  `json:"stack"`
	State     string  `json:"state"`
	Filename  *string `json:"filename"`
	Position  int     `json:"position"`
	Lifecycle string  `json:"lifecycle"`
	Enabled   bool    `json:"enabled"`
	Locked    bool    `json:"locked"`
}

func TestStacks(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env

	var list struct {
		Pagination struct {
			TotalResults int `json:"total_results"`
		} `json:"pagination"`
		Resources []stackView `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/stacks", f.orgUser, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 2 || list.Pagination.TotalResults != 2 {
		t.Fatalf("stacks = %+v", list)
	}
	test := list.Resources[0]
	want := stackView{GUID: stackGUID("ferry-test"), CreatedAt: "1980-01-01T00:00:01Z", Name: "ferry-test",
		Description: "Ferry's test builder", State: "ACTIVE", RunRootfsImage: "run:test", BuildRootfsImage: "builder:test", Default: true}
	want.Links.Self.Href = env.server.URL + "/v3/stacks/" + want.GUID
	if diff := cmp.Diff(want, test); diff != "" {
		t.Errorf("stack (-want +got):\n%s", diff)
	}
	if other := list.Resources[1]; other.Name != "other-stack" || other.Default || other.Description != "Cloud Native Buildpacks builder builder:other" {
		t.Errorf("second stack = %+v", other)
	}
	if stackGUID("ferry-test") != test.GUID || test.GUID == list.Resources[1].GUID {
		t.Error("stack GUIDs are not stable and distinct")
	}

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?names=other-stack", []string{"other-stack"}},
		{"?default=true", []string{"ferry-test"}},
		{"?default=false", []string{"other-stack"}},
		{"?order_by=-name", []string{"other-stack", "ferry-test"}},
		{"?guids=" + test.GUID, []string{"ferry-test"}},
		{"?label_selector=!tier", []string{"ferry-test", "other-stack"}},
		{"?label_selector=tier=web", []string{}},
		{"?per_page=1&page=2", []string{"other-stack"}},
		{"?per_page=1&page=3", []string{}},
	} {
		var got struct {
			Resources []stackView `json:"resources"`
		}
		env.do(http.MethodGet, "/v3/stacks"+tc.query, f.developer, nil).expect(http.StatusOK).decode(&got)
		names := []string{}
		for _, s := range got.Resources {
			names = append(names, s.Name)
		}
		if diff := cmp.Diff(tc.want, names); diff != "" {
			t.Errorf("stacks%s (-want +got):\n%s", tc.query, diff)
		}
	}

	var one stackView
	env.do(http.MethodGet, "/v3/stacks/"+test.GUID, f.stranger, nil).expect(http.StatusOK).decode(&one)
	if one.Name != "ferry-test" {
		t.Errorf("stack = %+v", one)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/stacks/"+stackGUID("cflinuxfs4"), f.developer, nil), 404, 10010, "Stack not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/stacks?default=yes", f.developer, nil), 400, 10005,
		"The query parameter is invalid: Default must be a boolean: 'true' or 'false'")
	env.do(http.MethodGet, "/v3/stacks", "", nil).expect(http.StatusUnauthorized)
}

func TestStacksWithUnreadableBuilder(t *testing.T) {
	f := newStagingFixture(t)
	delete(f.catalog.builders, "other-stack")

	var stacks struct {
		Resources []stackView `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/stacks", f.developer, nil).expect(http.StatusOK).decode(&stacks)
	if len(stacks.Resources) != 2 || stacks.Resources[1].BuildRootfsImage != "builder:other" || stacks.Resources[1].CreatedAt != "1970-01-01T00:00:00Z" {
		t.Errorf("stacks with one unreadable builder = %+v", stacks.Resources)
	}
	var buildpacks struct {
		Resources []buildpackView `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/buildpacks", f.developer, nil).expect(http.StatusOK).decode(&buildpacks)
	if len(buildpacks.Resources) != 2 {
		t.Errorf("buildpacks with one unreadable builder = %+v", buildpacks.Resources)
	}
}

func TestBuildpacks(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env

	var list struct {
		Resources []buildpackView `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/buildpacks", f.auditor, nil).expect(http.StatusOK).decode(&list)
	want := []buildpackView{
		{GUID: buildpackGUID("ferry-test", "ferry/python"), Name: "ferry/python", Stack: "ferry-test", State: "READY",
			Filename: new("ferry/python@0.1.0"), Position: 1, Lifecycle: "cnb", Enabled: true},
		{GUID: buildpackGUID("ferry-test", "ferry/staticfile"), Name: "ferry/staticfile", Stack: "ferry-test", State: "READY",
			Filename: new("ferry/staticfile@0.2.0"), Position: 2, Lifecycle: "cnb", Enabled: true},
		{GUID: buildpackGUID("other-stack", "ferry/python"), Name: "ferry/python", Stack: "other-stack", State: "READY",
			Filename: new("ferry/python@0.1.1"), Position: 3, Lifecycle: "cnb", Enabled: true},
	}
	if diff := cmp.Diff(want, list.Resources); diff != "" {
		t.Errorf("buildpacks (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		query string
		want  []int
	}{
		{"?names=ferry/python", []int{1, 3}},
		{"?stacks=other-stack", []int{3}},
		{"?lifecycle=cnb", []int{1, 2, 3}},
		{"?lifecycle=buildpack", []int{}},
		{"?order_by=-position", []int{3, 2, 1}},
		{"?per_page=2&page=2", []int{3}},
		{"?guids=" + want[1].GUID, []int{2}},
	} {
		var got struct {
			Resources []buildpackView `json:"resources"`
		}
		env.do(http.MethodGet, "/v3/buildpacks"+tc.query, f.developer, nil).expect(http.StatusOK).decode(&got)
		positions := []int{}
		for _, bp := range got.Resources {
			positions = append(positions, bp.Position)
		}
		if diff := cmp.Diff(tc.want, positions); diff != "" {
			t.Errorf("buildpacks%s (-want +got):\n%s", tc.query, diff)
		}
	}

	var one buildpackView
	env.do(http.MethodGet, "/v3/buildpacks/"+want[2].GUID, f.stranger, nil).expect(http.StatusOK).decode(&one)
	if diff := cmp.Diff(want[2], one); diff != "" {
		t.Errorf("buildpack (-want +got):\n%s", diff)
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/buildpacks/"+buildpackGUID("x", "y"), f.developer, nil), 404, 10010, "Buildpack not found")
	assertTenancyError(t, env.do(http.MethodGet, "/v3/buildpacks?lifecycle=docker", f.developer, nil), 400, 10005,
		`The query parameter is invalid: Lifecycle must be either "buildpack" or "cnb"`)
}

func TestBuildpacksWithoutCatalog(t *testing.T) {
	f := newStagingFixture(t)
	f.env.api.builders = nil
	var list struct {
		Resources []buildpackView `json:"resources"`
	}
	f.env.do(http.MethodGet, "/v3/buildpacks", f.developer, nil).expect(http.StatusOK).decode(&list)
	if list.Resources == nil || len(list.Resources) != 0 {
		t.Errorf("buildpacks without a catalog = %#v, want an empty list", list.Resources)
	}
}
