package k8sbackend

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// Health check types, as Cloud Controller names them.
const (
	HealthCheckPort    = "port"
	HealthCheckHTTP    = "http"
	HealthCheckProcess = "process"
)

// ProcessTypeWeb is the process type that receives HTTP traffic and gets
// a Service.
const ProcessTypeWeb = "web"

// AppPort is the port buildpack apps listen on, given to them in PORT,
// and the port of every web Service.
const AppPort = 8080

// Defaults of WorkloadConfig.
const (
	// DefaultCPULimitPerGiB gives a 1 GiB process one CPU at most.
	DefaultCPULimitPerGiB = 1000
	// DefaultCPURequestPerGiB is the CPU share per GiB of memory. It
	// weighs processes against each other on a busy node, as Cloud
	// Foundry's memory-proportional CPU shares do, and reserves little.
	DefaultCPURequestPerGiB = 100
)

// WorkloadConfig holds the deployment settings the translation of
// processes needs.
type WorkloadConfig struct {
	// CPULimitPerGiB is the CPU limit, in millicores per GiB of memory, of
	// processes that set no CPU of their own.
	CPULimitPerGiB int64
	// CPURequestPerGiB is the CPU request in millicores per GiB of memory.
	// It never exceeds the limit.
	CPURequestPerGiB int64
	// AllowRootImages lets docker images whose user is root run as root.
	// Without it they do not start, and their instances report why.
	AllowRootImages bool
	// RegistrySecretName is the docker-config Secret pods pull droplet
	// images with, or "" when the registry needs no credentials.
	RegistrySecretName string
	// APIURL is Ferry's external URL, given to apps as cf_api.
	APIURL string
}

// WorkloadConfigFrom derives the process translation settings from the
// staging settings and the defaults.
func WorkloadConfigFrom(c Config) WorkloadConfig {
	w := WorkloadConfig{
		CPULimitPerGiB:   DefaultCPULimitPerGiB,
		CPURequestPerGiB: DefaultCPURequestPerGiB,
		APIURL:           c.APIURL,
	}
	if c.HasRegistryCredentials() {
		w.RegistrySecretName = RegistrySecretName
	}
	return w
}

// AppSpec is the desired state of one app, as running it needs it.
type AppSpec struct {
	// Installation is the installation that owns the app's objects; ""
	// means DefaultInstallation. The reconciler sets it from its Config.
	Installation string
	GUID         string
	Name         string
	SpaceGUID    string
	SpaceName    string
	OrgGUID      string
	OrgName      string
	// Started is true when the app's desired state is STARTED.
	Started bool
	// Droplet is the app's current droplet, or nil when it has none.
	Droplet *DropletSpec
	// Env holds the user's variables. The values are secrets: they go
	// into the env Secret only, never into a StatefulSet or a log.
	Env       map[string]string
	Processes []ProcessSpec
	// Revision changes whenever the app is started or restarted, so the
	// pods are replaced even when nothing else changed. It should be a
	// valid label value; other values are hashed into one.
	Revision string
	// URIs are the app's routes as host.domain/path, for
	// VCAP_APPLICATION.
	URIs []string
	// Deployment is the app's active deployment, or nil.
	Deployment *DeploymentSpec
}

// DropletSpec is the image a process runs.
type DropletSpec struct {
	GUID string
	// LifecycleType is store.LifecycleBuildpack or store.LifecycleDocker.
	LifecycleType string
	// Image is pinned by digest, on the registry address pods use.
	Image string
	// ProcessTypes maps each process type to its start command.
	ProcessTypes map[string]string
	// User is a docker image's user ("", "root", "1000", "1000:1000",
	// "nginx"); buildpack droplets leave it "".
	User string
	// Ports are the TCP ports a docker image exposes, in ascending order.
	// The first one receives traffic; without any, the app gets AppPort.
	Ports []int32
}

// ProcessSpec is the desired state of one process of an app.
type ProcessSpec struct {
	GUID string
	Type string
	// Command replaces the droplet's command for this type; "" keeps it.
	Command   string
	Instances int32
	MemoryMB  int64
	DiskMB    int64
	// CPUMillicores is the CPU limit; 0 derives it from MemoryMB.
	CPUMillicores int64
	// LogRateLimit is in bytes per second, -1 for unlimited.
	LogRateLimit int64
	HealthCheck  HealthCheck
	// Readiness decides when an instance receives traffic. Its type
	// HealthCheckProcess, or "", makes a running instance ready.
	Readiness HealthCheck
}

// HealthCheck is a Cloud Foundry health check. Zero durations take
// Cloud Foundry's defaults.
type HealthCheck struct {
	// Type is HealthCheckPort, HealthCheckHTTP or HealthCheckProcess; ""
	// means HealthCheckPort for the liveness check.
	Type string
	// Endpoint is the HTTP path of an http check; "" means "/".
	Endpoint string
	// Timeout is how many seconds a starting instance may fail the check.
	Timeout int32
	// InvocationTimeout bounds one check, in seconds.
	InvocationTimeout int32
	// Interval is the number of seconds between checks of a started
	// instance.
	Interval int32
}

// Cloud Foundry's health check defaults, in seconds.
const (
	defaultHealthCheckTimeout = 60
	defaultInvocationTimeout  = 1
	defaultLivenessInterval   = 30
	defaultReadinessInterval  = 10
	// startupProbePeriod is how often a starting instance is checked.
	startupProbePeriod = 2
)

// terminationGracePeriod is how long an app may take to exit after
// SIGTERM, as on Cloud Foundry.
const terminationGracePeriod = 10

// drainDelay is how many seconds a stopping web instance keeps serving
// before it gets SIGTERM. The Gateway learns of endpoint changes a moment
// after the pod is deleted, and during deployments after the new instance
// turns ready, so the delay lets it move traffic away first. Five seconds
// is an estimate: it removed the failed requests of the deployments e2e
// test on the local environment's Gateway.
const drainDelay = 5

// appLabels are the labels of every object that runs an app.
func appLabels(app AppSpec) map[string]string {
	labels := ownerLabels(app.Installation, ComponentApp)
	labels[LabelOrgGUID] = app.OrgGUID
	labels[LabelSpaceGUID] = app.SpaceGUID
	labels[LabelAppGUID] = app.GUID
	return labels
}

func appAnnotations(app AppSpec) map[string]string {
	return map[string]string{
		AnnotationOrgName:   app.OrgName,
		AnnotationSpaceName: app.SpaceName,
		AnnotationAppName:   app.Name,
	}
}

func processLabels(app AppSpec, proc ProcessSpec) map[string]string {
	labels := appLabels(app)
	labels[LabelProcessGUID] = proc.GUID
	if len(validation.IsValidLabelValue(proc.Type)) == 0 {
		labels[LabelProcessType] = proc.Type
	}
	return labels
}

// processSelector selects the pods of one process. It is immutable in a
// StatefulSet, so it holds nothing that changes.
func processSelector(proc ProcessSpec) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByFerry, LabelProcessGUID: proc.GUID}
}

// MakeStatefulSet returns the StatefulSet that runs one process of an app
// with its current droplet. Pods are managed in parallel, so every
// instance starts at once and keeps a stable index, and a single instance
// can be deleted and comes back with the same index.
//
// A process that cannot start as asked, such as a docker image that runs
// as root when root is not allowed, gets no replicas and an
// AnnotationStartError with the reason. app.Droplet must not be nil.
func MakeStatefulSet(app AppSpec, proc ProcessSpec, cfg WorkloadConfig) *appsv1.StatefulSet {
	return MakeSlotStatefulSet(app, proc, cfg, SlotPrimary)
}

// MakeSlotStatefulSet is MakeStatefulSet for one of the two StatefulSets a
// process can have while a deployment moves its instances from one to the
// other. SlotPrimary's StatefulSet has the name and selector of
// MakeStatefulSet; SlotSecondary's has its own name, and a selector and
// pod label that keep its pods apart.
func MakeSlotStatefulSet(app AppSpec, proc ProcessSpec, cfg WorkloadConfig, slot string) *appsv1.StatefulSet {
	pod, startErr := makePodSpec(app, proc, cfg)

	replicas := int32(0)
	if app.Started && startErr == "" {
		replicas = max(proc.Instances, 0)
	}
	labels := processLabels(app, proc)
	annotations := appAnnotations(app)
	annotations[AnnotationProcessType] = proc.Type
	annotations[AnnotationLogRateLimit] = fmt.Sprint(proc.LogRateLimit)
	if startErr != "" {
		annotations[AnnotationStartError] = startErr
	}
	podLabels := processLabels(app, proc)
	podLabels[LabelRevision] = labelValue(app.Revision)
	selector := processSelector(proc)
	if slot == SlotSecondary {
		podLabels[LabelSlot] = SlotSecondary
		selector[LabelSlot] = SlotSecondary
	}

	sts := &appsv1.StatefulSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        SlotWorkloadName(proc.GUID, slot),
			Namespace:   SpaceNamespace(app.SpaceGUID),
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: appsv1.StatefulSetSpec{
			Replicas:             ptr.To(replicas),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			RevisionHistoryLimit: ptr.To[int32](2),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: podLabels,
					Annotations: map[string]string{
						AnnotationProcessType:  proc.Type,
						AnnotationLogRateLimit: fmt.Sprint(proc.LogRateLimit),
					},
				},
				Spec: pod,
			},
		},
	}
	sts.Annotations[AnnotationSpecHash] = specHash(sts.Labels, sts.Annotations, sts.Spec)
	return sts
}

// AppUDPPortName names the UDP port of web Services, which UDP routes
// send their datagrams to.
const AppUDPPortName = "udp"

// MakeService returns the ClusterIP Service in front of a web process's
// instances. Its port AppPort reaches the port the app listens on, over
// TCP as AppPortName and over UDP as AppUDPPortName. The UDP port targets
// the app's port by number, because the container declares that port for
// TCP only and a named target port must match the Service port's
// protocol.
func MakeService(app AppSpec, proc ProcessSpec) *corev1.Service {
	annotations := appAnnotations(app)
	annotations[AnnotationProcessType] = proc.Type
	target := int32(AppPort)
	if app.Droplet != nil {
		target = appPort(app.Droplet)
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ProcessServiceName(proc.GUID),
			Namespace:   SpaceNamespace(app.SpaceGUID),
			Labels:      processLabels(app, proc),
			Annotations: annotations,
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: processSelector(proc),
			Ports: []corev1.ServicePort{
				{
					Name:       AppPortName,
					Protocol:   corev1.ProtocolTCP,
					Port:       AppPort,
					TargetPort: intstr.FromString(AppPortName),
				},
				{
					Name:       AppUDPPortName,
					Protocol:   corev1.ProtocolUDP,
					Port:       AppPort,
					TargetPort: intstr.FromInt32(target),
				},
			},
		},
	}
	svc.Annotations[AnnotationSpecHash] = specHash(svc.Labels, svc.Annotations, svc.Spec)
	return svc
}

// MakeEnvSecret returns the Secret that holds an app's environment
// variables; every process's container reads it whole. A running
// instance keeps the values it started with, so, as on Cloud Foundry, a
// change reaches the app when it restarts.
//
// Secret keys allow only letters, digits, '-', '_' and '.', so variables
// with other names are left out. They are returned, and listed in
// AnnotationSkippedEnv, so the reconciler can report them.
func MakeEnvSecret(app AppSpec) (*corev1.Secret, []string) {
	data := map[string][]byte{}
	var skipped []string
	for name, value := range app.Env {
		if len(validation.IsConfigMapKey(name)) > 0 {
			skipped = append(skipped, name)
			continue
		}
		data[name] = []byte(value)
	}
	annotations := appAnnotations(app)
	if len(skipped) > 0 {
		slices.Sort(skipped)
		annotations[AnnotationSkippedEnv] = strings.Join(skipped, ",")
	}
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        AppEnvSecretName(app.GUID),
			Namespace:   SpaceNamespace(app.SpaceGUID),
			Labels:      appLabels(app),
			Annotations: annotations,
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, skipped
}

// specHash is a short hash of the parts of an object Ferry sets, so a
// reconcile notices when what it wants has changed. Values that are
// secrets must not be hashed into it.
func specHash(parts ...any) string {
	h := sha256.New()
	for _, part := range parts {
		if m, ok := part.(map[string]string); ok {
			clean := make(map[string]string, len(m))
			for k, v := range m {
				if k != AnnotationSpecHash {
					clean[k] = v
				}
			}
			part = clean
		}
		// The parts are Kubernetes API types and string maps, which
		// always encode.
		b, _ := json.Marshal(part)
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// labelValue returns s when it is a valid label value and a hash of it
// otherwise.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// DropletSpecFrom returns what running needs from a staged droplet:
// for docker droplets, the image's user and exposed TCP ports are read
// from the execution metadata.
func DropletSpecFrom(d store.Droplet) (DropletSpec, error) {
	spec := DropletSpec{
		GUID:          d.GUID,
		LifecycleType: d.LifecycleType,
		Image:         d.Image,
		ProcessTypes:  d.ProcessTypes,
	}
	if d.LifecycleType != store.LifecycleDocker || d.ExecutionMetadata == "" {
		return spec, nil
	}
	var meta DockerExecutionMetadata
	if err := json.Unmarshal([]byte(d.ExecutionMetadata), &meta); err != nil {
		return DropletSpec{}, fmt.Errorf("droplet %s: decode the execution metadata: %w", d.GUID, err)
	}
	spec.User = meta.User
	for _, p := range meta.ExposedPorts {
		if strings.EqualFold(p.Protocol, "tcp") || p.Protocol == "" {
			spec.Ports = append(spec.Ports, int32(p.Port))
		}
	}
	return spec, nil
}
