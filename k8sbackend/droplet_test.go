package k8sbackend

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ferrycf/ferry/store"
)

const testBuildMetadata = `{"buildpacks":[{"id":"ferry/python","version":"0.1.0"},{"id":"ferry/procfile","version":"0.2.0","homepage":"https://example.com"}],
 "launcher":{"version":"0.20.8"},
 "processes":[{"type":"web","command":["python3","app.py"],"args":["--port","8080"],"direct":true,"buildpackID":"ferry/python"},
   {"type":"worker","command":["sh","-c","echo $HOME; sleep 1"],"args":null,"direct":false,"buildpackID":"ferry/procfile"}],
 "buildpack-default-process-type":"web"}`

func TestBuildpackDroplet(t *testing.T) {
	b := testPlan().Build
	image := "10.88.0.1:5000/ferry/droplets/" + testApp + "@sha256:2222"
	got, err := BuildpackDroplet("droplet-guid", b, image, map[string]string{BuildMetadataLabel: testBuildMetadata}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := store.Droplet{
		GUID: "droplet-guid", AppGUID: testApp, PackageGUID: testPkg, BuildGUID: testBuild,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Image: image,
		ProcessTypes: map[string]string{"web": "python3 app.py --port 8080", "worker": `sh -c 'echo $HOME; sleep 1'`},
		Buildpacks: []store.DropletBuildpack{
			{Name: "ferry/python", BuildpackName: "ferry/python", Version: "0.1.0"},
			{Name: "ferry/procfile", BuildpackName: "ferry/procfile", Version: "0.2.0"},
		},
		Stack: "ferry-test",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BuildpackDroplet (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"no label", map[string]string{}, "has no io.buildpacks.build.metadata label"},
		{"bad label", map[string]string{BuildMetadataLabel: "{"}, "decode the io.buildpacks.build.metadata label"},
	} {
		_, err := BuildpackDroplet("d", b, image, tc.labels, testConfig())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestDockerDroplet(t *testing.T) {
	b := testPlan().Build
	b.LifecycleType = store.LifecycleDocker
	image := "10.88.0.1:5000/team/web@sha256:3333"
	got, err := DockerDroplet("d", b, image, v1.Config{
		Entrypoint: []string{"/bin/server"}, Cmd: []string{"--listen", ":8080"}, User: "1000", WorkingDir: "/srv",
		ExposedPorts: map[string]struct{}{"9090/TCP": {}, "8080/tcp": {}, "53/udp": {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := store.Droplet{
		GUID: "d", AppGUID: testApp, PackageGUID: testPkg, BuildGUID: testBuild,
		State: store.DropletStateStaged, LifecycleType: store.LifecycleDocker, Image: image,
		ProcessTypes: map[string]string{"web": "/bin/server --listen :8080"},
		ExecutionMetadata: `{"cmd":["--listen",":8080"],"entrypoint":["/bin/server"],"workdir":"/srv","user":"1000",` +
			`"ports":[{"Port":53,"Protocol":"udp"},{"Port":8080,"Protocol":"tcp"},{"Port":9090,"Protocol":"tcp"}]}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DockerDroplet (-want +got):\n%s", diff)
	}

	bare, err := DockerDroplet("d", b, image, v1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if bare.ExecutionMetadata != "{}" || bare.ProcessTypes["web"] != "" {
		t.Errorf("image without config: metadata %q, process types %v", bare.ExecutionMetadata, bare.ProcessTypes)
	}

	if _, err := DockerDroplet("d", b, image, v1.Config{ExposedPorts: map[string]struct{}{"http/tcp": {}}}); err == nil {
		t.Error("an exposed port that is not a number was accepted")
	}
}

func TestShellJoin(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"busybox", "httpd", "-f", "-p", "8080"}, "busybox httpd -f -p 8080"},
		{[]string{"sh", "-c", "it's $HOME"}, `sh -c 'it'\''s $HOME'`},
		{[]string{"echo", ""}, "echo ''"},
		{nil, ""},
	} {
		if got := shellJoin(tc.words); got != tc.want {
			t.Errorf("shellJoin(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

const testBuilderMetadata = `{"description":"test builder","stack":{"runImage":{"image":"10.88.0.1:5000/ferry/run:old"}},
 "images":[{"image":"10.88.0.1:5000/ferry/run:test"}],
 "buildpacks":[{"id":"ferry/staticfile","version":"0.1.0"},{"id":"ferry/python","version":"0.1.0"},
   {"id":"ferry/unordered","version":"1.0.0"},{"id":"ferry/binary","version":"0.3.0","homepage":"https://example.com/binary"}],
 "lifecycle":{"version":"0.20.8"},"createdBy":{"name":"Pack CLI","version":"0.38.2"}}`

const testBuilderOrder = `[{"group":[{"id":"ferry/python","version":"0.1.0"}]},{"group":[{"id":"ferry/staticfile","version":"0.1.0"}]},
 {"group":[{"id":"ferry/binary","version":"0.3.0","optional":true},{"id":"ferry/python","version":"0.1.0"}]}]`

func testBuilderConfig() *v1.ConfigFile {
	return &v1.ConfigFile{
		Created: v1.Time{Time: time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC)},
		Config: v1.Config{Labels: map[string]string{
			builderMetadataLabel: testBuilderMetadata,
			buildpackOrderLabel:  testBuilderOrder,
		}},
	}
}

func TestParseBuilder(t *testing.T) {
	got, err := ParseBuilder("ferry-test", "10.88.0.1:5000/ferry/builder:test", testBuilderConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := Builder{
		Stack: "ferry-test", Image: "10.88.0.1:5000/ferry/builder:test", Description: "test builder",
		RunImage: "10.88.0.1:5000/ferry/run:test",
		Buildpacks: []BuildpackInfo{
			{ID: "ferry/python", Version: "0.1.0"},
			{ID: "ferry/staticfile", Version: "0.1.0"},
			{ID: "ferry/binary", Version: "0.3.0", Homepage: "https://example.com/binary"},
			{ID: "ferry/unordered", Version: "1.0.0"},
		},
		Created: time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseBuilder (-want +got):\n%s", diff)
	}

	if _, err := ParseBuilder("s", "img", &v1.ConfigFile{}); err == nil || !strings.Contains(err.Error(), "pack builder create") {
		t.Errorf("image without builder label: %v", err)
	}
}

func TestResolveBuildpacks(t *testing.T) {
	builder, err := ParseBuilder("ferry-test", "img", testBuilderConfig())
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]string{"python_buildpack": "ferry/python", "binary_buildpack": "ferry/binary@0.3.0"}
	got, err := builder.ResolveBuildpacks([]string{"python_buildpack", "ferry/staticfile", "binary_buildpack", "ferry/unordered@1.0.0"}, aliases)
	if err != nil {
		t.Fatal(err)
	}
	want := []BuildpackRef{{"ferry/python", "0.1.0"}, {"ferry/staticfile", "0.1.0"}, {"ferry/binary", "0.3.0"}, {"ferry/unordered", "1.0.0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ResolveBuildpacks (-want +got):\n%s", diff)
	}

	_, err = builder.ResolveBuildpacks([]string{"go_buildpack", "ferry/python@9.9.9", "ferry/python"}, aliases)
	var unknown *UnknownBuildpacksError
	if !errors.As(err, &unknown) {
		t.Fatalf("error = %v, want *UnknownBuildpacksError", err)
	}
	if msg := `buildpack(s) 'go_buildpack', 'ferry/python@9.9.9' not found in the builder of stack "ferry-test"`; err.Error() != msg {
		t.Errorf("error = %q, want %q", err, msg)
	}
}
