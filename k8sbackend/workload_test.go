package k8sbackend

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

const (
	runOrg     = "0f0f0f0f-0000-4000-8000-0000000000a1"
	runSpace   = "5c5c5c5c-0000-4000-8000-0000000000b1"
	runApp     = "a7a7a7a7-0000-4000-8000-0000000000c1"
	runWeb     = "e1e1e1e1-0000-4000-8000-0000000000d1"
	runWorker  = "e2e2e2e2-0000-4000-8000-0000000000d2"
	runDroplet = "d1d1d1d1-0000-4000-8000-0000000000e1"
	runImage   = "10.88.0.1:5000/ferry/droplets/" + runApp + "@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func runTestApp() AppSpec {
	return AppSpec{
		GUID: runApp, Name: "my-app", SpaceGUID: runSpace, SpaceName: "dev", OrgGUID: runOrg, OrgName: "acme",
		Started: true,
		Droplet: &DropletSpec{
			GUID: runDroplet, LifecycleType: store.LifecycleBuildpack, Image: runImage,
			ProcessTypes: map[string]string{"web": "busybox httpd -f -p 8080", "worker": "sh worker.sh"},
		},
		Env:       map[string]string{"GREETING": "hello"},
		Processes: []ProcessSpec{runTestWeb()},
		Revision:  "3",
		URIs:      []string{"my-app.apps.example.com"},
	}
}

func runTestWeb() ProcessSpec {
	return ProcessSpec{
		GUID: runWeb, Type: "web", Instances: 2, MemoryMB: 256, DiskMB: 1024, LogRateLimit: -1,
		HealthCheck: HealthCheck{Type: HealthCheckPort},
	}
}

func runTestWorkload() WorkloadConfig {
	return WorkloadConfig{CPULimitPerGiB: 1000, CPURequestPerGiB: 100, APIURL: "http://127.0.0.1:9022"}
}

func runTestLabels(processGUID, processType string) map[string]string {
	l := map[string]string{
		LabelManagedBy:    ManagedByFerry,
		LabelInstallation: DefaultInstallation,
		LabelComponent:    ComponentApp,
		LabelOrgGUID:      runOrg,
		LabelSpaceGUID:    runSpace,
		LabelAppGUID:      runApp,
		LabelProcessGUID:  processGUID,
	}
	if processType != "" {
		l[LabelProcessType] = processType
	}
	return l
}

const runTestVCAP = `{"instance_id":"$(CF_INSTANCE_GUID)","instance_index":$(CF_INSTANCE_INDEX),` +
	`"application_id":"` + runApp + `","application_name":"my-app","application_uris":["my-app.apps.example.com"],` +
	`"application_version":"3","cf_api":"http://127.0.0.1:9022","host":"0.0.0.0",` +
	`"limits":{"disk":1024,"fds":16384,"mem":256},"name":"my-app","organization_id":"` + runOrg + `",` +
	`"organization_name":"acme","process_id":"` + runWeb + `","process_type":"web","space_id":"` + runSpace + `",` +
	`"space_name":"dev","uris":["my-app.apps.example.com"],"users":null,"version":"3"}`

func runTestEnv(port string, memory string, vcap string) []corev1.EnvVar {
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
	}
	return []corev1.EnvVar{
		{Name: "CF_INSTANCE_INDEX", ValueFrom: field("metadata.labels['apps.kubernetes.io/pod-index']")},
		{Name: "CF_INSTANCE_GUID", ValueFrom: field("metadata.uid")},
		{Name: "CF_INSTANCE_IP", ValueFrom: field("status.podIP")},
		{Name: "CF_INSTANCE_INTERNAL_IP", ValueFrom: field("status.podIP")},
		{Name: "CF_INSTANCE_PORT", Value: port},
		{Name: "CF_INSTANCE_ADDR", Value: "$(CF_INSTANCE_IP):" + port},
		{Name: "CF_INSTANCE_PORTS", Value: `[{"external":` + port + `,"internal":` + port + `}]`},
		{Name: "PORT", Value: port},
		{Name: "VCAP_APP_PORT", Value: port},
		{Name: "VCAP_APP_HOST", Value: "0.0.0.0"},
		{Name: "MEMORY_LIMIT", Value: memory},
		{Name: "VCAP_APPLICATION", Value: vcap},
		{Name: "VCAP_SERVICES", Value: "{}"},
	}
}

func tcpProbe(port int32, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}},
		PeriodSeconds:    period,
		TimeoutSeconds:   1,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

// wantWebStatefulSet is MakeStatefulSet's result for runTestApp's web
// process with runTestWorkload.
func wantWebStatefulSet() *appsv1.StatefulSet {
	selector := map[string]string{LabelManagedBy: ManagedByFerry, LabelProcessGUID: runWeb}
	podLabels := runTestLabels(runWeb, "web")
	podLabels[LabelRevision] = "3"
	return &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "proc-" + runWeb,
			Namespace: "cf-space-" + runSpace,
			Labels:    runTestLabels(runWeb, "web"),
			Annotations: map[string]string{
				AnnotationOrgName:      "acme",
				AnnotationSpaceName:    "dev",
				AnnotationAppName:      "my-app",
				AnnotationProcessType:  "web",
				AnnotationLogRateLimit: "-1",
			},
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:             ptr.To[int32](2),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			RevisionHistoryLimit: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: map[string]string{AnnotationProcessType: "web", AnnotationLogRateLimit: "-1"},
				},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            "app",
						Image:           runImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Command:         []string{"/cnb/process/web"},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
						Env:             runTestEnv("8080", "256m", runTestVCAP),
						EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "app-" + runApp + "-env"}}}},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{
								corev1.ResourceMemory:           resource.MustParse("256Mi"),
								corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
								corev1.ResourceCPU:              resource.MustParse("25m"),
							},
							Limits: corev1.ResourceList{
								corev1.ResourceMemory:           resource.MustParse("256Mi"),
								corev1.ResourceEphemeralStorage: resource.MustParse("1Gi"),
								corev1.ResourceCPU:              resource.MustParse("250m"),
							},
						},
						StartupProbe:  tcpProbe(8080, 2, 30),
						LivenessProbe: tcpProbe(8080, 30, 1),
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Sleep: &corev1.SleepAction{Seconds: 5}}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					ShareProcessNamespace:         ptr.To(true),
					TerminationGracePeriodSeconds: ptr.To[int64](15),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
							LabelSelector: &metav1.LabelSelector{MatchLabels: selector}},
						{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
							LabelSelector: &metav1.LabelSelector{MatchLabels: selector}},
					},
				},
			},
		},
	}
}

// ignoreSpecHash leaves the spec hash out of comparisons; specHash has its
// own tests.
var ignoreSpecHash = cmpopts.IgnoreMapEntries(func(k, _ string) bool { return k == AnnotationSpecHash })

func appContainer(s *appsv1.StatefulSet) *corev1.Container {
	return &s.Spec.Template.Spec.Containers[0]
}

func TestMakeStatefulSet(t *testing.T) {
	dockerDroplet := func(a *AppSpec, user string, ports ...int32) {
		a.Droplet = &DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: "10.88.0.1:5000/library/nginx@sha256:" +
			strings.Repeat("3", 64), ProcessTypes: map[string]string{"web": "nginx -g 'daemon off;'"}, User: user, Ports: ports}
	}
	dockerWant := func(s *appsv1.StatefulSet, port int32) {
		c := appContainer(s)
		c.Image = "10.88.0.1:5000/library/nginx@sha256:" + strings.Repeat("3", 64)
		c.Command = nil
		p := strconv.Itoa(int(port))
		c.Env = runTestEnv(p, "256m", runTestVCAP)
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}}
		c.StartupProbe, c.LivenessProbe = tcpProbe(port, 2, 30), tcpProbe(port, 30, 1)
	}
	startError := func(s *appsv1.StatefulSet, msg string) {
		s.Spec.Replicas = ptr.To[int32](0)
		s.Annotations[AnnotationStartError] = msg
	}

	for _, tc := range []struct {
		name string
		app  func(*AppSpec, *ProcessSpec, *WorkloadConfig)
		want func(*appsv1.StatefulSet)
	}{
		{name: "buildpack web process"},
		{
			name: "custom command escapes dollar signs",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.Command = "echo $HOME $(date) && ./run" },
			want: func(s *appsv1.StatefulSet) {
				appContainer(s).Command = []string{"/cnb/lifecycle/launcher", "--", "/bin/sh", "-c", "echo $$HOME $$(date) && ./run"}
			},
		},
		{
			name: "stopped app has no replicas",
			app:  func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { a.Started = false },
			want: func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](0) },
		},
		{
			name: "http health check and readiness check",
			app: func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
				p.HealthCheck = HealthCheck{Type: HealthCheckHTTP, Endpoint: "health", Timeout: 15, InvocationTimeout: 3, Interval: 5}
				p.Readiness = HealthCheck{Type: HealthCheckHTTP, Endpoint: "/ready", InvocationTimeout: 2, Interval: 4}
			},
			want: func(s *appsv1.StatefulSet) {
				get := func(path string) corev1.ProbeHandler {
					return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}}
				}
				c := appContainer(s)
				c.StartupProbe = &corev1.Probe{ProbeHandler: get("/health"), PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 1, FailureThreshold: 8}
				c.LivenessProbe = &corev1.Probe{ProbeHandler: get("/health"), PeriodSeconds: 5, TimeoutSeconds: 3, SuccessThreshold: 1, FailureThreshold: 1}
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: get("/ready"), PeriodSeconds: 4, TimeoutSeconds: 2, SuccessThreshold: 1, FailureThreshold: 1}
			},
		},
		{
			name: "process health check has no probes",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.HealthCheck.Type = HealthCheckProcess },
			want: func(s *appsv1.StatefulSet) { appContainer(s).StartupProbe, appContainer(s).LivenessProbe = nil, nil },
		},
		{
			name: "explicit CPU limit",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.CPUMillicores = 1500 },
			want: func(s *appsv1.StatefulSet) {
				appContainer(s).Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1500m")
			},
		},
		{
			name: "CPU request never exceeds the limit",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.CPUMillicores = 10 },
			want: func(s *appsv1.StatefulSet) {
				appContainer(s).Resources.Limits[corev1.ResourceCPU] = resource.MustParse("10m")
				appContainer(s).Resources.Requests[corev1.ResourceCPU] = resource.MustParse("10m")
			},
		},
		{
			name: "no CPU ratios set no CPU",
			app:  func(_ *AppSpec, _ *ProcessSpec, c *WorkloadConfig) { c.CPULimitPerGiB, c.CPURequestPerGiB = 0, 0 },
			want: func(s *appsv1.StatefulSet) {
				delete(appContainer(s).Resources.Limits, corev1.ResourceCPU)
				delete(appContainer(s).Resources.Requests, corev1.ResourceCPU)
			},
		},
		{
			name: "registry pull secret",
			app:  func(_ *AppSpec, _ *ProcessSpec, c *WorkloadConfig) { c.RegistrySecretName = RegistrySecretName },
			want: func(s *appsv1.StatefulSet) {
				s.Spec.Template.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "ferry-registry"}}
			},
		},
		{
			name: "docker image with a numeric user and exposed ports",
			app:  func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { dockerDroplet(a, "101:101", 9000, 9001) },
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 9000)
				appContainer(s).Ports = append(appContainer(s).Ports, corev1.ContainerPort{ContainerPort: 9001, Protocol: corev1.ProtocolTCP})
			},
		},
		{
			name: "docker image with a start command",
			app: func(a *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
				dockerDroplet(a, "1000")
				p.Command = "nginx -g 'daemon off;' -c $CONF"
			},
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 8080)
				appContainer(s).Command = []string{"/bin/sh", "-c", "nginx -g 'daemon off;' -c $$CONF"}
			},
		},
		{
			name: "docker image running as root is not started",
			app:  func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { dockerDroplet(a, "", 80) },
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 80)
				startError(s, `the docker image runs as root (user ""), and this platform runs apps only as non-root users: `+
					`set a non-root numeric USER in the image, such as USER 1000`)
			},
		},
		{
			name: "docker image running as root when allowed",
			app: func(a *AppSpec, _ *ProcessSpec, c *WorkloadConfig) {
				dockerDroplet(a, "root:root", 80)
				c.AllowRootImages = true
			},
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 80)
				s.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
				appContainer(s).SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}
			},
		},
		{
			name: "docker image with a named user",
			app:  func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) { dockerDroplet(a, "nginx") },
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 8080)
				s.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
			},
		},
		{
			name: "docker image without entrypoint",
			app: func(a *AppSpec, _ *ProcessSpec, _ *WorkloadConfig) {
				dockerDroplet(a, "1000")
				a.Droplet.ProcessTypes = map[string]string{"web": ""}
			},
			want: func(s *appsv1.StatefulSet) {
				dockerWant(s, 8080)
				startError(s, "the docker image has no ENTRYPOINT or CMD: set a start command with `cf push -c` or in the manifest")
			},
		},
		{
			name: "process type the droplet lacks",
			app: func(a *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
				p.Type = "clock"
				a.Droplet.ProcessTypes = map[string]string{"web": "run", "worker": "work"}
			},
			want: func(s *appsv1.StatefulSet) {
				startError(s, `process type "clock" has no start command: the droplet defines the process types web, worker; set a command for the process`)
				s.Labels[LabelProcessType] = "clock"
				s.Annotations[AnnotationProcessType] = "clock"
				s.Spec.Template.Labels[LabelProcessType] = "clock"
				s.Spec.Template.Annotations[AnnotationProcessType] = "clock"
				c := appContainer(s)
				c.Command = nil
				c.Env = runTestEnv("8080", "256m", strings.Replace(runTestVCAP, `"process_type":"web"`, `"process_type":"clock"`, 1))
				// Only web instances wait for the Gateway before they stop.
				c.Lifecycle = nil
				s.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
			},
		},
		{
			name: "unknown health check type",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.HealthCheck.Type = "tcp" },
			want: func(s *appsv1.StatefulSet) {
				startError(s, `health check type "tcp" is not port, http or process`)
				appContainer(s).StartupProbe, appContainer(s).LivenessProbe = nil, nil
			},
		},
		{
			name: "memory below one megabyte",
			app:  func(_ *AppSpec, p *ProcessSpec, _ *WorkloadConfig) { p.MemoryMB = 0 },
			want: func(s *appsv1.StatefulSet) {
				startError(s, "memory must be at least 1 MB, not 0 MB")
				c := appContainer(s)
				c.Resources = corev1.ResourceRequirements{}
				c.Env = runTestEnv("8080", "0m", strings.Replace(runTestVCAP, `"mem":256`, `"mem":0`, 1))
			},
		},
		{
			name: "revision that is not a label value",
			app: func(a *AppSpec, p *ProcessSpec, _ *WorkloadConfig) {
				a.Revision = "restart #4"
				p.Type = "web"
				p.Command = "run"
			},
			want: func(s *appsv1.StatefulSet) {
				s.Spec.Template.Labels[LabelRevision] = labelValue("restart #4")
				c := appContainer(s)
				c.Command = []string{"/cnb/lifecycle/launcher", "--", "/bin/sh", "-c", "run"}
				c.Env = runTestEnv("8080", "256m", strings.ReplaceAll(runTestVCAP, `"3"`, `"restart #4"`))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, proc, cfg := runTestApp(), runTestWeb(), runTestWorkload()
			if tc.app != nil {
				tc.app(&app, &proc, &cfg)
			}
			want := wantWebStatefulSet()
			if tc.want != nil {
				tc.want(want)
			}

			got := MakeStatefulSet(app, proc, cfg)
			if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
				t.Errorf("MakeStatefulSet() mismatch (-want +got):\n%s", diff)
			}
			if got.Annotations[AnnotationSpecHash] == "" {
				t.Error("the StatefulSet has no spec hash")
			}
		})
	}
}

func TestRevisionLabelHashed(t *testing.T) {
	if got := labelValue("restart #4"); len(got) != 16 || got == labelValue("restart #5") {
		t.Errorf("labelValue(%q) = %q, want a distinct 16-character hash", "restart #4", got)
	}
	if got := labelValue("7"); got != "7" {
		t.Errorf("labelValue(%q) = %q, want it unchanged", "7", got)
	}
}

func TestProcessTypeOutsideLabelValues(t *testing.T) {
	app, proc := runTestApp(), runTestWeb()
	proc.Type = "long/type"
	proc.Command = "run"
	got := MakeStatefulSet(app, proc, runTestWorkload())
	if v, ok := got.Labels[LabelProcessType]; ok {
		t.Errorf("process type label = %q, want none for an invalid label value", v)
	}
	if got.Annotations[AnnotationProcessType] != "long/type" {
		t.Errorf("process type annotation = %q, want %q", got.Annotations[AnnotationProcessType], "long/type")
	}
}

// expandEnv expands a container env value the way the kubelet does:
// $(NAME) of a known variable becomes its value and $$ becomes $.
func expandEnv(value string, vars map[string]string) string {
	re := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	return re.ReplaceAllStringFunc(value, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

func TestVCAPApplicationExpandsToJSON(t *testing.T) {
	app, proc := runTestApp(), runTestWeb()
	app.Name = "pay$(PORT)-$$app"
	app.URIs = nil
	value := vcapApplication(app, proc, runTestWorkload())

	expanded := expandEnv(value, map[string]string{"CF_INSTANCE_INDEX": "1", "CF_INSTANCE_GUID": "pod-uid", "PORT": "8080"})
	var got map[string]any
	if err := json.Unmarshal([]byte(expanded), &got); err != nil {
		t.Fatalf("expanded VCAP_APPLICATION is not JSON: %v\n%s", err, expanded)
	}
	for key, want := range map[string]any{
		"instance_index":   float64(1),
		"instance_id":      "pod-uid",
		"name":             "pay$(PORT)-$$app",
		"application_name": "pay$(PORT)-$$app",
		"application_uris": []any{},
		"process_type":     "web",
	} {
		if diff := cmp.Diff(want, got[key]); diff != "" {
			t.Errorf("VCAP_APPLICATION %s mismatch (-want +got):\n%s", key, diff)
		}
	}
}

func TestSpecHashFollowsSpec(t *testing.T) {
	app, proc, cfg := runTestApp(), runTestWeb(), runTestWorkload()
	base := MakeStatefulSet(app, proc, cfg).Annotations[AnnotationSpecHash]
	if again := MakeStatefulSet(app, proc, cfg).Annotations[AnnotationSpecHash]; again != base {
		t.Errorf("spec hash changed between equal inputs: %s, then %s", base, again)
	}

	scaled := proc
	scaled.Instances = 3
	restarted := app
	restarted.Revision = "4"
	renamed := app
	renamed.Name = "other"
	withEnv := app
	withEnv.Env = map[string]string{"GREETING": "changed"}
	for name, got := range map[string]string{
		"instances": MakeStatefulSet(app, scaled, cfg).Annotations[AnnotationSpecHash],
		"revision":  MakeStatefulSet(restarted, proc, cfg).Annotations[AnnotationSpecHash],
		"app name":  MakeStatefulSet(renamed, proc, cfg).Annotations[AnnotationSpecHash],
	} {
		if got == base {
			t.Errorf("spec hash did not change with the %s", name)
		}
	}
	// Env values live in the Secret: they never reach the StatefulSet or
	// its hash.
	if got := MakeStatefulSet(withEnv, proc, cfg).Annotations[AnnotationSpecHash]; got != base {
		t.Errorf("spec hash changed with an env value: %s, want %s", got, base)
	}
}

func TestMakeService(t *testing.T) {
	want := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "proc-" + runWeb,
			Namespace: "cf-space-" + runSpace,
			Labels:    runTestLabels(runWeb, "web"),
			Annotations: map[string]string{
				AnnotationOrgName:     "acme",
				AnnotationSpaceName:   "dev",
				AnnotationAppName:     "my-app",
				AnnotationProcessType: "web",
			},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{LabelManagedBy: ManagedByFerry, LabelProcessGUID: runWeb},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromString("http")},
				{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 8080, TargetPort: intstr.FromInt32(8080)},
			},
		},
	}
	got := MakeService(runTestApp(), runTestWeb())
	if diff := cmp.Diff(want, got, ignoreSpecHash); diff != "" {
		t.Errorf("MakeService() mismatch (-want +got):\n%s", diff)
	}
	if got.Annotations[AnnotationSpecHash] == "" {
		t.Error("the Service has no spec hash")
	}
}

func TestMakeServiceUDPTarget(t *testing.T) {
	tests := []struct {
		name    string
		droplet *DropletSpec
		want    int32
	}{
		{name: "buildpack app", droplet: &DropletSpec{LifecycleType: store.LifecycleBuildpack}, want: AppPort},
		{name: "docker app", droplet: &DropletSpec{LifecycleType: store.LifecycleDocker, Ports: []int32{5353, 8053}}, want: 5353},
		{name: "docker app without ports", droplet: &DropletSpec{LifecycleType: store.LifecycleDocker}, want: AppPort},
		{name: "no droplet", want: AppPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := runTestApp()
			app.Droplet = tt.droplet
			svc := MakeService(app, runTestWeb())
			var udp []corev1.ServicePort
			for _, p := range svc.Spec.Ports {
				if p.Protocol == corev1.ProtocolUDP {
					udp = append(udp, p)
				}
			}
			want := []corev1.ServicePort{{Name: AppUDPPortName, Protocol: corev1.ProtocolUDP, Port: AppPort,
				TargetPort: intstr.FromInt32(tt.want)}}
			if diff := cmp.Diff(want, udp); diff != "" {
				t.Errorf("UDP ports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeEnvSecret(t *testing.T) {
	meta := func(annotations map[string]string) metav1.ObjectMeta {
		all := map[string]string{AnnotationOrgName: "acme", AnnotationSpaceName: "dev", AnnotationAppName: "my-app"}
		for k, v := range annotations {
			all[k] = v
		}
		return metav1.ObjectMeta{
			Name:      "app-" + runApp + "-env",
			Namespace: "cf-space-" + runSpace,
			Labels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelComponent: ComponentApp, LabelOrgGUID: runOrg,
				LabelSpaceGUID: runSpace, LabelAppGUID: runApp},
			Annotations: all,
		}
	}
	for _, tc := range []struct {
		name        string
		env         map[string]string
		want        *corev1.Secret
		wantSkipped []string
	}{
		{
			name: "valid names",
			env:  map[string]string{"GREETING": "hello", "db.url": "postgres://x", "EMPTY": ""},
			want: &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: meta(nil),
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"GREETING": []byte("hello"), "db.url": []byte("postgres://x"), "EMPTY": {}},
			},
		},
		{
			name: "names that cannot be keys",
			env:  map[string]string{"OK": "1", "MY VAR": "2", "a=b": "3"},
			want: &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: meta(map[string]string{AnnotationSkippedEnv: "MY VAR,a=b"}),
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"OK": []byte("1")},
			},
			wantSkipped: []string{"MY VAR", "a=b"},
		},
		{
			name: "no variables",
			want: &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: meta(nil),
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := runTestApp()
			app.Env = tc.env
			got, skipped := MakeEnvSecret(app)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MakeEnvSecret() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSkipped, skipped); diff != "" {
				t.Errorf("skipped names mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDropletSpecFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		droplet store.Droplet
		want    DropletSpec
		wantErr string
	}{
		{
			name: "buildpack",
			droplet: store.Droplet{GUID: runDroplet, LifecycleType: store.LifecycleBuildpack, Image: runImage,
				ProcessTypes: map[string]string{"web": "run"}},
			want: DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleBuildpack, Image: runImage,
				ProcessTypes: map[string]string{"web": "run"}},
		},
		{
			name: "docker keeps TCP ports",
			droplet: store.Droplet{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: runImage,
				ProcessTypes:      map[string]string{"web": "nginx"},
				ExecutionMetadata: `{"user":"101","ports":[{"Port":53,"Protocol":"udp"},{"Port":80,"Protocol":"tcp"},{"Port":443,"Protocol":"tcp"}]}`},
			want: DropletSpec{GUID: runDroplet, LifecycleType: store.LifecycleDocker, Image: runImage,
				ProcessTypes: map[string]string{"web": "nginx"}, User: "101", Ports: []int32{80, 443}},
		},
		{
			name:    "docker with invalid metadata",
			droplet: store.Droplet{GUID: runDroplet, LifecycleType: store.LifecycleDocker, ExecutionMetadata: "{"},
			wantErr: "droplet " + runDroplet + ": decode the execution metadata: unexpected end of JSON input",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DropletSpecFrom(tc.droplet)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DropletSpecFrom() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassifyUser(t *testing.T) {
	for user, want := range map[string]imageUser{
		"": userRoot, "root": userRoot, "0": userRoot, "0:0": userRoot, "root:wheel": userRoot,
		"1000": userNumeric, "1000:1000": userNumeric, "65534:nogroup": userNumeric,
		"nginx": userNamed, "app:app": userNamed, "-1": userNamed,
	} {
		if got := classifyUser(user); got != want {
			t.Errorf("classifyUser(%q) = %d, want %d", user, got, want)
		}
	}
}

func TestWorkloadConfigFrom(t *testing.T) {
	cfg := testConfig()
	if got := WorkloadConfigFrom(cfg); got.RegistrySecretName != "" || got.APIURL != cfg.APIURL ||
		got.CPULimitPerGiB != DefaultCPULimitPerGiB || got.CPURequestPerGiB != DefaultCPURequestPerGiB {
		t.Errorf("WorkloadConfigFrom() = %+v", got)
	}
	cfg.RegistryUsername, cfg.RegistryPassword = "ferry", "s3cret"
	if got := WorkloadConfigFrom(cfg).RegistrySecretName; got != RegistrySecretName {
		t.Errorf("registry Secret = %q with credentials, want %q", got, RegistrySecretName)
	}
}

func TestCovers(t *testing.T) {
	type obj struct {
		Name     string            `json:"name,omitempty"`
		Replicas *int32            `json:"replicas,omitempty"`
		Flag     *bool             `json:"flag,omitempty"`
		Labels   map[string]string `json:"labels,omitempty"`
		Items    []string          `json:"items,omitempty"`
		Mode     string            `json:"mode"`
	}
	for _, tc := range []struct {
		name          string
		want, current obj
		covered       bool
	}{
		{name: "equal", want: obj{Name: "a", Replicas: ptr.To[int32](1)}, current: obj{Name: "a", Replicas: ptr.To[int32](1)}, covered: true},
		{name: "defaults added", want: obj{Name: "a"}, current: obj{Name: "a", Mode: "Default", Labels: map[string]string{"x": "y"}}, covered: true},
		{name: "extra label", want: obj{Labels: map[string]string{"a": "1"}}, current: obj{Labels: map[string]string{"a": "1", "b": "2"}}, covered: true},
		{name: "changed value", want: obj{Name: "a"}, current: obj{Name: "b"}, covered: false},
		{name: "zero replicas count", want: obj{Replicas: ptr.To[int32](0)}, current: obj{Replicas: ptr.To[int32](3)}, covered: false},
		{name: "false counts", want: obj{Flag: ptr.To(false)}, current: obj{Flag: ptr.To(true)}, covered: false},
		{name: "missing flag", want: obj{Flag: ptr.To(false)}, current: obj{}, covered: false},
		{name: "list length", want: obj{Items: []string{"a"}}, current: obj{Items: []string{"a", "b"}}, covered: false},
		{name: "list item", want: obj{Items: []string{"a", "b"}}, current: obj{Items: []string{"a", "c"}}, covered: false},
		{name: "label removed", want: obj{Labels: map[string]string{"a": "1"}}, current: obj{}, covered: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := covers(tc.want, tc.current); got != tc.covered {
				t.Errorf("covers() = %v, want %v", got, tc.covered)
			}
		})
	}
}
