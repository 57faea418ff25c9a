package k8sbackend

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/store"
)

const (
	testOrg   = "0e6a4f6e-0000-4000-8000-00000000000a"
	testSpace = "5b0c6f4e-0000-4000-8000-00000000000b"
	testApp   = "a1b2c3d4-0000-4000-8000-00000000000c"
	testBuild = "b0b0b0b0-0000-4000-8000-00000000000d"
	testPkg   = "9a9a9a9a-0000-4000-8000-00000000000e"
	testImage = "127.0.0.1:5000/ferry/packages/" + testPkg + "@sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

func testConfig() Config {
	return Config{
		RegistryAddress:        "127.0.0.1:5000",
		RegistryClusterAddress: "10.88.0.1:5000",
		Repository:             "ferry",
		FerryImage:             "10.88.0.1:5000/ferry/ferry:abc",
		Builders:               map[string]string{"ferry-test": "10.88.0.1:5000/ferry/builder:test"},
		DefaultStack:           "ferry-test",
		BuildpackAliases:       map[string]string{"staticfile_buildpack": "ferry/staticfile"},
		StagingTimeout:         15 * time.Minute,
		BuildJobTTL:            time.Hour,
		UnschedulableTimeout:   5 * time.Minute,
		APIURL:                 "http://127.0.0.1:9022",
	}
}

func testPlan() BuildPlan {
	return BuildPlan{
		Build: store.Build{GUID: testBuild, AppGUID: testApp, PackageGUID: testPkg, PackageImage: testImage,
			SpaceGUID: testSpace, OrgGUID: testOrg, State: store.BuildStateStaging, LifecycleType: store.LifecycleBuildpack,
			StagingMemoryMB: 1024, StagingDiskMB: 4096, StagingLogRateLimit: -1},
		App: store.App{GUID: testApp, Name: "my app", SpaceGUID: testSpace, OrgGUID: testOrg,
			LifecycleType: store.LifecycleBuildpack, EnvironmentVariables: map[string]string{"GREETING": "hello"}},
		SpaceName: "dev",
		OrgName:   "acme",
	}
}

func stagingLabelsForTest() map[string]string {
	return map[string]string{
		"app.kubernetes.io/managed-by":        "ferry",
		"ferry.cloudfoundry.org/installation": "ferry",
		"app.kubernetes.io/component":         "staging",
		"cloudfoundry.org/org_guid":           testOrg,
		"cloudfoundry.org/space_guid":         testSpace,
		"cloudfoundry.org/app_guid":           testApp,
		"cloudfoundry.org/build_guid":         testBuild,
		"cloudfoundry.org/source_type":        "STG",
	}
}

// wantJob is the Job of testPlan under testConfig, written out in full.
func wantJob() *batchv1.Job {
	annotations := map[string]string{
		"cloudfoundry.org/org_name":   "acme",
		"cloudfoundry.org/space_name": "dev",
		"cloudfoundry.org/app_name":   "my app",
	}
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("4Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("4Gi")},
	}
	mounts := []corev1.VolumeMount{
		{Name: "workspace", MountPath: "/workspace"},
		{Name: "layers", MountPath: "/layers"},
		{Name: "platform", MountPath: "/platform"},
	}
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        "build-" + testBuild,
			Namespace:   "cf-space-" + testSpace,
			Labels:      stagingLabelsForTest(),
			Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To[int64](900),
			TTLSecondsAfterFinished: ptr.To[int32](3600),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: stagingLabelsForTest(), Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					ActiveDeadlineSeconds:         ptr.To[int64](960),
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), FSGroup: ptr.To[int64](1000),
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					InitContainers: []corev1.Container{{
						Name:    "fetch",
						Image:   "10.88.0.1:5000/ferry/ferry:abc",
						Command: []string{"/ferry"},
						Args: []string{"stage-fetch",
							"--image", "10.88.0.1:5000/ferry/packages/" + testPkg + "@sha256:1111111111111111111111111111111111111111111111111111111111111111",
							"--dir", "/workspace",
							"--env-file", "/var/run/ferry/staging-env/env.json",
							"--platform-dir", "/platform"},
						Resources:                resources,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						ImagePullPolicy:          corev1.PullIfNotPresent,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(true),
						},
						VolumeMounts: append(append([]corev1.VolumeMount{}, mounts...),
							corev1.VolumeMount{Name: "staging-env", MountPath: "/var/run/ferry/staging-env", ReadOnly: true}),
					}},
					Containers: []corev1.Container{{
						Name:    "build",
						Image:   "10.88.0.1:5000/ferry/builder:test",
						Command: []string{"/cnb/lifecycle/creator"},
						Args: []string{
							"-app=/workspace",
							"-layers=/layers",
							"-platform=/platform",
							"-cache-image=10.88.0.1:5000/ferry/cache/" + testApp,
							"-log-level=info",
							"10.88.0.1:5000/ferry/droplets/" + testApp + ":" + testBuild,
						},
						Env:             []corev1.EnvVar{{Name: "CNB_PLATFORM_API", Value: "0.14"}, {Name: "CNB_NO_COLOR", Value: "true"}},
						Resources:       resources,
						ImagePullPolicy: corev1.PullIfNotPresent,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(false),
						},
						VolumeMounts: mounts,
					}},
					Volumes: []corev1.Volume{
						{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "layers", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "platform", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "staging-env", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName: "build-" + testBuild + "-env", DefaultMode: ptr.To[int32](0o440)}}},
					},
				},
			},
		},
	}
}

func TestMakeBuildJob(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   func(*BuildPlan)
		config func(*Config)
		want   func(*batchv1.Job)
	}{
		{name: "auto-detect", want: func(*batchv1.Job) {}},
		{
			name: "requested buildpacks",
			plan: func(p *BuildPlan) {
				p.Buildpacks = []BuildpackRef{{ID: "ferry/python", Version: "0.1.0"}, {ID: "ferry/procfile", Version: "0.2.0"}}
			},
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				pod.InitContainers[0].Args = append(pod.InitContainers[0].Args, "--order-file", "/layers/order.toml",
					"--buildpack", "ferry/python@0.1.0", "--buildpack", "ferry/procfile@0.2.0")
				args := pod.Containers[0].Args
				pod.Containers[0].Args = append(append(args[:5:5], "-order=/layers/order.toml"), args[5:]...)
			},
		},
		{
			name:   "run image and insecure registry",
			plan:   func(p *BuildPlan) { p.RunImage = "127.0.0.1:5000/ferry/run:1" },
			config: func(c *Config) { c.RegistryInsecure = true },
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				pod.InitContainers[0].Args = append(pod.InitContainers[0].Args, "--insecure-registry", "10.88.0.1:5000")
				args := pod.Containers[0].Args
				pod.Containers[0].Args = append(append(args[:5:5], "-run-image=10.88.0.1:5000/ferry/run:1",
					"-insecure-registry=10.88.0.1:5000"), args[5:]...)
			},
		},
		{
			name: "previous droplet image",
			plan: func(p *BuildPlan) {
				p.PreviousImage = "127.0.0.1:5000/ferry/droplets/" + testApp + "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
			},
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				args := pod.Containers[0].Args
				pod.Containers[0].Args = append(append(args[:5:5],
					"-previous-image=10.88.0.1:5000/ferry/droplets/"+testApp+"@sha256:2222222222222222222222222222222222222222222222222222222222222222"),
					args[5:]...)
			},
		},
		{
			name: "every creator option",
			plan: func(p *BuildPlan) {
				p.Buildpacks = []BuildpackRef{{ID: "ferry/python", Version: "0.1.0"}}
				p.RunImage = "10.88.0.1:5000/ferry/run:1"
				p.PreviousImage = "10.88.0.1:5000/ferry/droplets/" + testApp + "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
			},
			config: func(c *Config) { c.RegistryInsecure = true },
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				pod.InitContainers[0].Args = append(pod.InitContainers[0].Args, "--order-file", "/layers/order.toml",
					"--buildpack", "ferry/python@0.1.0", "--insecure-registry", "10.88.0.1:5000")
				args := pod.Containers[0].Args
				pod.Containers[0].Args = append(append(args[:5:5],
					"-order=/layers/order.toml",
					"-run-image=10.88.0.1:5000/ferry/run:1",
					"-previous-image=10.88.0.1:5000/ferry/droplets/"+testApp+"@sha256:2222222222222222222222222222222222222222222222222222222222222222",
					"-insecure-registry=10.88.0.1:5000"), args[5:]...)
			},
		},
		{
			name:   "registry credentials",
			config: func(c *Config) { c.RegistryUsername, c.RegistryPassword = "ferry", "s3cret" },
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "ferry-registry"}}
				env := corev1.EnvVar{Name: "DOCKER_CONFIG", Value: "/var/run/ferry/registry-auth"}
				mount := corev1.VolumeMount{Name: "registry-auth", MountPath: "/var/run/ferry/registry-auth", ReadOnly: true}
				pod.InitContainers[0].Env = []corev1.EnvVar{env}
				pod.InitContainers[0].VolumeMounts = append(pod.InitContainers[0].VolumeMounts, mount)
				pod.Containers[0].Env = append(pod.Containers[0].Env, env)
				pod.Containers[0].VolumeMounts = append(pod.Containers[0].VolumeMounts, mount)
				pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "registry-auth", VolumeSource: corev1.VolumeSource{
					Secret: &corev1.SecretVolumeSource{SecretName: "ferry-registry",
						Items:       []corev1.KeyToPath{{Key: ".dockerconfigjson", Path: "config.json"}},
						DefaultMode: ptr.To[int32](0o440)}}})
			},
		},
		{
			name:   "no timeout or ttl",
			config: func(c *Config) { c.StagingTimeout, c.BuildJobTTL = 0, 0 },
			want: func(j *batchv1.Job) {
				j.Spec.ActiveDeadlineSeconds, j.Spec.TTLSecondsAfterFinished = nil, nil
				j.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](86400)
			},
		},
		{
			name: "other stack and sizes",
			plan: func(p *BuildPlan) {
				p.Build.Stack, p.Build.StagingMemoryMB, p.Build.StagingDiskMB = "big", 512, 100
			},
			config: func(c *Config) { c.Builders["big"] = "127.0.0.1:5000/ferry/builder:big" },
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				pod.Containers[0].Image = "10.88.0.1:5000/ferry/builder:big"
				for _, c := range []*corev1.Container{&pod.InitContainers[0], &pod.Containers[0]} {
					for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
						list[corev1.ResourceMemory] = resource.MustParse("512Mi")
						list[corev1.ResourceEphemeralStorage] = resource.MustParse("100Mi")
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, cfg := testPlan(), testConfig()
			if tc.plan != nil {
				tc.plan(&plan)
			}
			if tc.config != nil {
				tc.config(&cfg)
			}
			want := wantJob()
			tc.want(want)
			got, err := MakeBuildJob(plan, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("MakeBuildJob (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeBuildJobRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   func(*BuildPlan)
		config func(*Config)
		want   string
	}{
		{"docker build", func(p *BuildPlan) { p.Build.LifecycleType = store.LifecycleDocker }, nil,
			`staging is not possible: build ` + testBuild + ` has lifecycle "docker", and only buildpack builds run a staging Job`},
		{"unknown stack", func(p *BuildPlan) { p.Build.Stack = "cflinuxfs4" }, nil,
			`staging is not possible: no builder is configured for stack "cflinuxfs4"`},
		{"no staging image", nil, func(c *Config) { c.FerryImage = "" },
			"staging is not possible: the staging image is not configured: set staging.ferry_image or FERRY_STAGING_IMAGE"},
		{"no package image", func(p *BuildPlan) { p.Build.PackageImage = "" }, nil,
			"staging is not possible: build " + testBuild + " has no package image"},
		{"no memory", func(p *BuildPlan) { p.Build.StagingMemoryMB = 0 }, nil,
			"staging is not possible: staging memory must be at least 1 MB, not 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, cfg := testPlan(), testConfig()
			if tc.plan != nil {
				tc.plan(&plan)
			}
			if tc.config != nil {
				tc.config(&cfg)
			}
			_, err := MakeBuildJob(plan, cfg)
			if !errors.Is(err, ErrPlan) {
				t.Fatalf("error = %v, want ErrPlan", err)
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q, want %q", err, tc.want)
			}
		})
	}
}

func TestMakeSpaceNamespace(t *testing.T) {
	got := MakeSpaceNamespace(store.Space{GUID: testSpace, Name: "dev", OrganizationGUID: testOrg}, "acme", "")
	want := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "cf-space-" + testSpace,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by":        "ferry",
				"ferry.cloudfoundry.org/installation": "ferry",
				"app.kubernetes.io/component":         "space",
				"cloudfoundry.org/org_guid":           testOrg,
				"cloudfoundry.org/space_guid":         testSpace,
			},
			Annotations: map[string]string{"cloudfoundry.org/org_name": "acme", "cloudfoundry.org/space_name": "dev"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MakeSpaceNamespace (-want +got):\n%s", diff)
	}
}

func TestMakeStagingEnvSecret(t *testing.T) {
	job := wantJob()
	job.UID = types.UID("job-uid")
	got, err := MakeStagingEnvSecret(testPlan(), job, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal(got.Data["env.json"], &env); err != nil {
		t.Fatal(err)
	}
	vcap := env["VCAP_APPLICATION"]
	delete(env, "VCAP_APPLICATION")
	if diff := cmp.Diff(map[string]string{"GREETING": "hello", "VCAP_SERVICES": "{}", "CF_STACK": "ferry-test",
		"MEMORY_LIMIT": "1024m"}, env); diff != "" {
		t.Errorf("staging environment (-want +got):\n%s", diff)
	}
	var app map[string]any
	if err := json.Unmarshal([]byte(vcap), &app); err != nil {
		t.Fatalf("VCAP_APPLICATION %q: %v", vcap, err)
	}
	if app["application_id"] != testApp || app["space_name"] != "dev" || app["organization_name"] != "acme" ||
		app["cf_api"] != "http://127.0.0.1:9022" {
		t.Errorf("VCAP_APPLICATION = %v", app)
	}

	got.Data = nil
	want := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "build-" + testBuild + "-env",
			Namespace: "cf-space-" + testSpace,
			Labels:    stagingLabelsForTest(),
			Annotations: map[string]string{"cloudfoundry.org/org_name": "acme", "cloudfoundry.org/space_name": "dev",
				"cloudfoundry.org/app_name": "my app"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "build-" + testBuild,
				UID: "job-uid", BlockOwnerDeletion: ptr.To(true)}},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MakeStagingEnvSecret (-want +got):\n%s", diff)
	}

	unowned, err := MakeStagingEnvSecret(testPlan(), nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if unowned.OwnerReferences != nil {
		t.Errorf("owner references without a Job = %v", unowned.OwnerReferences)
	}
}

func TestMakeRegistrySecret(t *testing.T) {
	cfg := testConfig()
	cfg.RegistryUsername, cfg.RegistryPassword = "ferry", "s3cret"
	got, err := MakeRegistrySecret("cf-space-x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(got.Data[".dockerconfigjson"], &doc); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"10.88.0.1:5000", "127.0.0.1:5000"} {
		entry := doc.Auths[host]
		if entry.Username != "ferry" || entry.Password != "s3cret" || entry.Auth != "ZmVycnk6czNjcmV0" {
			t.Errorf("auths[%s] = %+v", host, entry)
		}
	}
	if got.Type != corev1.SecretTypeDockerConfigJson || got.Name != "ferry-registry" || got.Namespace != "cf-space-x" ||
		got.Labels["app.kubernetes.io/managed-by"] != "ferry" || got.Annotations[AnnotationSpecHash] == "" {
		t.Errorf("secret metadata = %+v, type %s", got.ObjectMeta, got.Type)
	}

	cfg.RegistryPassword = "rotated"
	rotated, err := MakeRegistrySecret("cf-space-x", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Annotations[AnnotationSpecHash] == got.Annotations[AnnotationSpecHash] {
		t.Error("a new password does not change the spec hash")
	}
}

func TestConfigReferences(t *testing.T) {
	cfg := testConfig()
	for _, tc := range []struct{ name, got, want string }{
		{"cluster ref of own image", cfg.ClusterRef("127.0.0.1:5000/ferry/x@sha256:1"), "10.88.0.1:5000/ferry/x@sha256:1"},
		{"cluster ref of other image", cfg.ClusterRef("docker.io/library/nginx:1"), "docker.io/library/nginx:1"},
		{"cluster ref of prefix lookalike", cfg.ClusterRef("127.0.0.1:50001/x"), "127.0.0.1:50001/x"},
		{"host ref", cfg.HostRef("10.88.0.1:5000/ferry/b:test"), "127.0.0.1:5000/ferry/b:test"},
		{"droplet tag", cfg.DropletTag("app", "build"), "10.88.0.1:5000/ferry/droplets/app:build"},
		{"cache image", cfg.CacheImage("app"), "10.88.0.1:5000/ferry/cache/app"},
		{"default stack", cfg.Stack(""), "ferry-test"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	same := cfg
	same.RegistryClusterAddress = same.RegistryAddress
	if got := same.ClusterRef("127.0.0.1:5000/ferry/x"); got != "127.0.0.1:5000/ferry/x" {
		t.Errorf("ClusterRef with one address = %q", got)
	}
	noRepo := cfg
	noRepo.Repository = ""
	if got := noRepo.DropletTag("a", "b"); got != "10.88.0.1:5000/droplets/a:b" {
		t.Errorf("DropletTag without a repository = %q", got)
	}
}

func TestConfigFrom(t *testing.T) {
	c := config.Default()
	c.Registry.ClusterAddress = ""
	c.Registry.Repository = "/ferry/"
	c.Staging.Builders = []config.Builder{{Stack: "ferry-test", Image: "b:1"}}
	got := ConfigFrom(c)
	if got.RegistryClusterAddress != c.Registry.Address || got.Repository != "ferry" ||
		got.Builders["ferry-test"] != "b:1" || got.StagingTimeout != 15*time.Minute || got.BuildJobTTL != DefaultBuildJobTTL {
		t.Errorf("ConfigFrom = %+v", got)
	}
}

func TestReusableDropletImage(t *testing.T) {
	const image = "10.88.0.1:5000/ferry/droplets/" + testApp + "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
	staged := store.Droplet{State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Stack: "ferry-test", Image: image}
	for _, tc := range []struct {
		name    string
		droplet func(*store.Droplet)
		want    string
	}{
		{name: "staged buildpack droplet", want: image},
		{name: "docker droplet", droplet: func(d *store.Droplet) { d.LifecycleType = store.LifecycleDocker }},
		{name: "other stack", droplet: func(d *store.Droplet) { d.Stack = "cflinuxfs4" }},
		{name: "failed droplet", droplet: func(d *store.Droplet) { d.State = store.DropletStateFailed }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := staged
			if tc.droplet != nil {
				tc.droplet(&d)
			}
			if got := reusableDropletImage(d, "ferry-test"); got != tc.want {
				t.Errorf("reusableDropletImage = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPlanPreviousImage checks that a build's plan names the app's current
// droplet image only once the app has a current droplet.
func TestPlanPreviousImage(t *testing.T) {
	e := newReconcilerEnv(t)
	first := e.newBuild()

	plan, err := e.r.plan(e.ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if plan.PreviousImage != "" {
		t.Errorf("previous image of an app without a droplet = %q, want none", plan.PreviousImage)
	}

	image := e.cfg.DropletRepository(first.AppGUID) + "@sha256:" + strings.Repeat("3", 64)
	droplet := store.Droplet{GUID: uuid.NewString(), AppGUID: first.AppGUID, PackageGUID: first.PackageGUID,
		BuildGUID: first.GUID, State: store.DropletStateStaged, LifecycleType: store.LifecycleBuildpack, Image: image,
		Stack: "ferry-test"}
	if err := e.store.CompleteBuild(e.ctx, first.GUID, droplet); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetAppCurrentDroplet(e.ctx, e.store.DB(), first.AppGUID, droplet.GUID); err != nil {
		t.Fatal(err)
	}
	second := first
	second.GUID = uuid.NewString()
	if second, err = store.CreateBuild(e.ctx, e.store.DB(), second); err != nil {
		t.Fatal(err)
	}

	plan, err = e.r.plan(e.ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if plan.PreviousImage != image {
		t.Errorf("previous image = %q, want the current droplet's %q", plan.PreviousImage, image)
	}
	job, err := MakeBuildJob(plan, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if args := job.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "-previous-image="+image) {
		t.Errorf("creator arguments %q have no -previous-image=%s", args, image)
	}
}
