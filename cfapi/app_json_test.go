package cfapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// appJSONSamples returns apps that exercise every field of appJSON and
// every escaping rule of appendJSONString.
func appJSONSamples() []appJSON {
	api := &API{externalURL: "https://api.example.com"}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	buildpackApp := store.App{
		GUID: "6f1b2c3d-0000-4000-8000-000000000001", Name: "web", SpaceGUID: "space-1", State: store.AppStateStarted,
		LifecycleType: store.LifecycleBuildpack, Buildpacks: []string{"ruby", "https://user:secret@git.example.com/bp.git"},
		Stack: "cflinuxfs4", DropletGUID: "droplet-1", CreatedAt: created, UpdatedAt: created.Add(time.Hour),
		Labels:      map[string]string{"tier": "web", "env": "prod", "a.example.com/team": "x"},
		Annotations: map[string]string{"note": "<b>\"quoted\" & \\ back</b>\n\t\r\b\f\x00\x1f\x7f"},
	}
	oddName := buildpackApp
	oddName.Name = "bad\xffutf8 \u2028\u2029 ünïcödé 😀 </script>"
	oddName.Buildpacks = nil
	oddName.Stack = ""
	dockerApp := store.App{GUID: "docker-1", Name: "img", SpaceGUID: "space-2", State: store.AppStateStopped,
		LifecycleType: store.LifecycleDocker, CreatedAt: created, UpdatedAt: created}

	samples := []appJSON{api.presentApp(buildpackApp), api.presentApp(oddName), api.presentApp(dockerApp)}

	bare := api.presentApp(dockerApp)
	bare.Metadata = metadataJSON{}
	bare.Relationships.Space = toOne{}
	bare.Lifecycle.Data = buildpackLifecycleDataJSON{}
	samples = append(samples, bare)

	otherData := api.presentApp(dockerApp)
	otherData.Lifecycle.Data = map[string]any{"image": "nginx:1.25", "n": 1}
	samples = append(samples, otherData)

	included := api.presentApp(buildpackApp)
	included.Included = map[string]any{"spaces": []guidRef{{GUID: "space-1"}}}
	return append(samples, included)
}

func TestAppJSONMatchesMarshal(t *testing.T) {
	for i, app := range appJSONSamples() {
		want, err := json.Marshal(app)
		if err != nil {
			t.Fatal(err)
		}
		got, err := app.appendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if diff := cmp.Diff("prefix"+string(want), string(got)); diff != "" {
			t.Errorf("sample %d (-json.Marshal +appendJSON):\n%s", i, diff)
		}
	}
}

func TestAppJSONStringEscaping(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{"", all.String(), "\xff\xfe", "a\xc3", "\xed\xa0\x80", "\U0010FFFF"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestAppJSONFields fails when appJSON or a type in it gains, loses or
// renames a field, because appendJSON writes each field by hand.
func TestAppJSONFields(t *testing.T) {
	want := []string{
		"guid", "created_at", "updated_at", "name", "state",
		"lifecycle.type", "lifecycle.data",
		"relationships.space.data.guid", "relationships.current_droplet.data.guid",
		"metadata.labels", "metadata.annotations",
		"links.self.href", "links.self.method",
		"links.environment_variables.href", "links.environment_variables.method",
		"links.space.href", "links.space.method",
		"links.processes.href", "links.processes.method",
		"links.packages.href", "links.packages.method",
		"links.current_droplet.href", "links.current_droplet.method",
		"links.droplets.href", "links.droplets.method",
		"links.tasks.href", "links.tasks.method",
		"links.start.href", "links.start.method",
		"links.stop.href", "links.stop.method",
		"links.revisions.href", "links.revisions.method",
		"links.deployed_revisions.href", "links.deployed_revisions.method",
		"links.features.href", "links.features.method",
		"included",
	}
	if diff := cmp.Diff(want, jsonFieldPaths(reflect.TypeFor[appJSON](), "")); diff != "" {
		t.Errorf("appJSON fields changed: update appendJSON, then this list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"buildpacks", "stack"}, jsonFieldPaths(reflect.TypeFor[buildpackLifecycleDataJSON](), "")); diff != "" {
		t.Errorf("buildpackLifecycleDataJSON fields changed: update appendJSON, then this list (-want +got):\n%s", diff)
	}
}

// jsonFieldPaths lists the JSON names of t's fields, descending into
// structs and pointers to structs.
func jsonFieldPaths(t reflect.Type, prefix string) []string {
	var paths []string
	for field := range t.Fields() {
		name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		inner := field.Type
		if inner.Kind() == reflect.Pointer {
			inner = inner.Elem()
		}
		if inner.Kind() == reflect.Struct {
			paths = append(paths, jsonFieldPaths(inner, prefix+name+".")...)
			continue
		}
		paths = append(paths, prefix+name)
	}
	return paths
}

// BenchmarkAppJSON compares encoding/json with appendJSON on 1,000 apps.
func BenchmarkAppJSON(b *testing.B) {
	sample := appJSONSamples()[0]
	apps := make([]appJSON, 1000)
	for i := range apps {
		apps[i] = sample
	}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			for i := range apps {
				if _, err := json.Marshal(&apps[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			for i := range apps {
				var err error
				if buf, err = apps[i].appendJSON(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
