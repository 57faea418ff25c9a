package k8sbackend

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// Paths in CNB droplet images. The lifecycle's exporter links every
// process type to the launcher as /cnb/process/<type>.
const (
	cnbProcessDir = "/cnb/process/"
	cnbLauncher   = "/cnb/lifecycle/launcher"
)

// fileDescriptorLimit is the "fds" limit VCAP_APPLICATION reports, Cloud
// Foundry's default. Ferry does not set it; the container runtime does.
const fileDescriptorLimit = 16384

const mebibyte = 1024 * 1024

// makePodSpec returns the pod spec of a process and, when the process
// cannot start as asked, why.
func makePodSpec(app AppSpec, proc ProcessSpec, cfg WorkloadConfig) (corev1.PodSpec, string) {
	droplet := app.Droplet
	port := appPort(droplet)
	command, commandErr := processCommand(droplet, proc)
	podSecurity, containerSecurity, securityErr := securityContexts(droplet, cfg)
	resources, resourceErr := processResources(proc, cfg)
	startup, liveness, readiness, probeErr := processProbes(proc, port)

	container := corev1.Container{
		Name:                     AppContainer,
		Image:                    droplet.Image,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Command:                  command,
		Ports:                    containerPorts(droplet, port),
		Env:                      processEnv(app, proc, cfg, port),
		EnvFrom:                  []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: AppEnvSecretName(app.GUID)}}}},
		Resources:                resources,
		StartupProbe:             startup,
		LivenessProbe:            liveness,
		ReadinessProbe:           readiness,
		SecurityContext:          containerSecurity,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	pod := corev1.PodSpec{
		Containers:                   []corev1.Container{container},
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		// With a shared process namespace the pause container is PID 1, so
		// the app's process gets SIGTERM with the default action and stops
		// at once, as on Cloud Foundry. As PID 1 itself, an app without a
		// SIGTERM handler (a shell, python, httpd) would be killed only
		// after the grace period.
		ShareProcessNamespace:         ptr.To(true),
		TerminationGracePeriodSeconds: ptr.To[int64](terminationGracePeriod),
		SecurityContext:               podSecurity,
		TopologySpreadConstraints:     spreadConstraints(proc),
	}
	if proc.Type == ProcessTypeWeb {
		// The kubelet sleeps before it sends SIGTERM, and the sleep counts
		// against the grace period, so the app keeps its full time to exit.
		pod.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: drainDelay}}}
		pod.TerminationGracePeriodSeconds = ptr.To[int64](terminationGracePeriod + drainDelay)
	}
	if cfg.RegistrySecretName != "" {
		pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: cfg.RegistrySecretName}}
	}
	return pod, firstNonEmpty(commandErr, securityErr, resourceErr, probeErr)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// appPort is the port an app listens on: a docker image's first exposed
// TCP port, or AppPort.
func appPort(d *DropletSpec) int32 {
	if d.LifecycleType == store.LifecycleDocker && len(d.Ports) > 0 {
		return d.Ports[0]
	}
	return AppPort
}

// containerPorts names the app's port AppPortName and lists the other
// ports a docker image exposes.
func containerPorts(d *DropletSpec, port int32) []corev1.ContainerPort {
	ports := []corev1.ContainerPort{{Name: AppPortName, ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	if d.LifecycleType != store.LifecycleDocker {
		return ports
	}
	for _, p := range d.Ports {
		if p != port {
			ports = append(ports, corev1.ContainerPort{ContainerPort: p, Protocol: corev1.ProtocolTCP})
		}
	}
	return ports
}

// processCommand returns the container command of a process, or nil for
// a docker image's own entrypoint, and why the process cannot start.
// Kubernetes expands $(NAME) in commands, so '$' is escaped: the app's
// shell, not Kubernetes, interprets the command.
func processCommand(d *DropletSpec, proc ProcessSpec) ([]string, string) {
	defaultCommand, hasType := d.ProcessTypes[proc.Type]
	if d.LifecycleType == store.LifecycleDocker {
		switch {
		case proc.Command != "":
			return []string{"/bin/sh", "-c", escapeExpansion(proc.Command)}, ""
		case hasType && defaultCommand != "":
			return nil, ""
		case hasType:
			return nil, "the docker image has no ENTRYPOINT or CMD: set a start command with `cf push -c` or in the manifest"
		}
		return nil, fmt.Sprintf("process type %q has no start command: set one with `cf push -c` or in the manifest", proc.Type)
	}

	if proc.Command != "" {
		// Without "--" the launcher runs the command with /bin/bash, which
		// minimal run images lack. With it, the launcher still applies the
		// buildpacks' environment and exec.d, but not their profile.d
		// scripts.
		return []string{cnbLauncher, "--", "/bin/sh", "-c", escapeExpansion(proc.Command)}, ""
	}
	if hasType && proc.Type != "" && !strings.ContainsAny(proc.Type, "/$") && proc.Type != "." && proc.Type != ".." {
		return []string{cnbProcessDir + proc.Type}, ""
	}
	types := slices.Sorted(maps.Keys(d.ProcessTypes))
	return nil, fmt.Sprintf("process type %q has no start command: the droplet defines %s; set a command for the process",
		proc.Type, describeTypes(types))
}

func describeTypes(types []string) string {
	if len(types) == 0 {
		return "no process types"
	}
	return "the process types " + strings.Join(types, ", ")
}

// escapeExpansion escapes '$' so Kubernetes passes the text on unchanged
// instead of expanding $(NAME) references in it.
func escapeExpansion(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// imageUser classifies a docker image's USER.
type imageUser int

const (
	userRoot imageUser = iota
	userNumeric
	userNamed
)

// classifyUser reads a docker USER of the form user[:group]. An empty
// user is root, as in Docker.
func classifyUser(user string) imageUser {
	name, _, _ := strings.Cut(user, ":")
	if name == "" || name == "root" {
		return userRoot
	}
	uid, err := strconv.ParseUint(name, 10, 32)
	switch {
	case err != nil:
		return userNamed
	case uid == 0:
		return userRoot
	}
	return userNumeric
}

// securityContexts returns the pod and container security contexts of a
// process and, for a root image that may not run as root, why it cannot
// start. Every container runs without privilege escalation and under the
// runtime's seccomp profile. Only allowed root images keep the runtime's
// default capabilities, because root images often need them.
func securityContexts(d *DropletSpec, cfg WorkloadConfig) (*corev1.PodSecurityContext, *corev1.SecurityContext, string) {
	pod := &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	restricted := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if d.LifecycleType != store.LifecycleDocker {
		// CNB run images set a numeric non-root user, which the kubelet
		// verifies.
		pod.RunAsNonRoot = ptr.To(true)
		return pod, restricted, ""
	}

	switch classifyUser(d.User) {
	case userNumeric:
		pod.RunAsNonRoot = ptr.To(true)
	case userNamed:
		// NOTE: the kubelet cannot verify that a named user is not root,
		// and refuses to start it under runAsNonRoot, so named users run
		// unverified but without capabilities.
	case userRoot:
		if !cfg.AllowRootImages {
			pod.RunAsNonRoot = ptr.To(true)
			return pod, restricted, fmt.Sprintf("the docker image runs as root (user %q), and this platform runs apps only as "+
				"non-root users: set a non-root numeric USER in the image, such as USER 1000", d.User)
		}
		return pod, &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false)}, ""
	}
	return pod, restricted, ""
}

// processResources returns the container resources of a process: memory
// and ephemeral storage with request equal to limit, an absolute CPU
// limit and a CPU request proportional to memory.
func processResources(proc ProcessSpec, cfg WorkloadConfig) (corev1.ResourceRequirements, string) {
	if proc.MemoryMB < 1 {
		return corev1.ResourceRequirements{}, fmt.Sprintf("memory must be at least 1 MB, not %d MB", proc.MemoryMB)
	}
	if proc.DiskMB < 1 {
		return corev1.ResourceRequirements{}, fmt.Sprintf("disk must be at least 1 MB, not %d MB", proc.DiskMB)
	}
	memory := *resource.NewQuantity(proc.MemoryMB*mebibyte, resource.BinarySI)
	disk := *resource.NewQuantity(proc.DiskMB*mebibyte, resource.BinarySI)
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: memory, corev1.ResourceEphemeralStorage: disk},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: memory, corev1.ResourceEphemeralStorage: disk},
	}

	limit := proc.CPUMillicores
	if limit <= 0 && cfg.CPULimitPerGiB > 0 {
		limit = max(ceilDiv(proc.MemoryMB*cfg.CPULimitPerGiB, 1024), 1)
	}
	request := int64(0)
	if cfg.CPURequestPerGiB > 0 {
		request = max(ceilDiv(proc.MemoryMB*cfg.CPURequestPerGiB, 1024), 1)
	}
	if limit > 0 {
		res.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(limit, resource.DecimalSI)
		request = min(request, limit)
	}
	if request > 0 {
		res.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(request, resource.DecimalSI)
	}
	return res, ""
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// processProbes maps Cloud Foundry health checks to probes. The startup
// probe gives a starting instance the health check timeout to pass. After
// that, as on Cloud Foundry, one failed liveness check restarts the
// instance and one failed readiness check takes it out of its Service.
func processProbes(proc ProcessSpec, port int32) (startup, liveness, readiness *corev1.Probe, startErr string) {
	hc := proc.HealthCheck
	handler, err := probeHandler("health check", cmp.Or(hc.Type, HealthCheckPort), hc.Endpoint, port)
	if err != "" {
		return nil, nil, nil, err
	}
	if handler != nil {
		invocation := positiveOr(hc.InvocationTimeout, defaultInvocationTimeout)
		startup = &corev1.Probe{
			ProbeHandler:     *handler,
			PeriodSeconds:    startupProbePeriod,
			TimeoutSeconds:   invocation,
			SuccessThreshold: 1,
			FailureThreshold: int32(ceilDiv(int64(positiveOr(hc.Timeout, defaultHealthCheckTimeout)), startupProbePeriod)),
		}
		liveness = &corev1.Probe{
			ProbeHandler:     *handler,
			PeriodSeconds:    positiveOr(hc.Interval, defaultLivenessInterval),
			TimeoutSeconds:   invocation,
			SuccessThreshold: 1,
			FailureThreshold: 1,
		}
	}

	rc := proc.Readiness
	handler, err = probeHandler("readiness health check", cmp.Or(rc.Type, HealthCheckProcess), rc.Endpoint, port)
	if err != "" {
		return nil, nil, nil, err
	}
	if handler != nil {
		readiness = &corev1.Probe{
			ProbeHandler:     *handler,
			PeriodSeconds:    positiveOr(rc.Interval, defaultReadinessInterval),
			TimeoutSeconds:   positiveOr(rc.InvocationTimeout, defaultInvocationTimeout),
			SuccessThreshold: 1,
			FailureThreshold: 1,
		}
	}
	return startup, liveness, readiness, ""
}

// positiveOr returns v, or def when v is zero or negative.
func positiveOr(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

// probeHandler returns the probe of a health check type, nil for a
// process check, or why the type is invalid.
func probeHandler(what, checkType, endpoint string, port int32) (*corev1.ProbeHandler, string) {
	switch checkType {
	case HealthCheckProcess:
		return nil, ""
	case HealthCheckPort:
		return &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}}, ""
	case HealthCheckHTTP:
		path := cmp.Or(endpoint, "/")
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		return &corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}}, ""
	}
	return nil, fmt.Sprintf("%s type %q is not port, http or process", what, checkType)
}

// spreadConstraints spread a process's instances over nodes and zones
// where the scheduler can, as Cloud Foundry spreads them over cells.
func spreadConstraints(proc ProcessSpec) []corev1.TopologySpreadConstraint {
	selector := &metav1.LabelSelector{MatchLabels: processSelector(proc)}
	return []corev1.TopologySpreadConstraint{
		{MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: selector},
		{MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: selector},
	}
}

// processEnv returns the Cloud Foundry system variables of a process.
// Variables that differ per instance come from the downward API, and
// later values refer to them as $(NAME), which Kubernetes expands in
// order. The user's variables come from the env Secret, which these
// override, as Cloud Controller reserves PORT and VCAP_* names.
func processEnv(app AppSpec, proc ProcessSpec, cfg WorkloadConfig, port int32) []corev1.EnvVar {
	portText := strconv.Itoa(int(port))
	instancePorts, _ := json.Marshal([]map[string]int32{{"external": port, "internal": port}}) // Integers always encode.
	return []corev1.EnvVar{
		// NOTE: the StatefulSet controller sets the pod index label from
		// Kubernetes 1.28 on; without it the index is empty and
		// VCAP_APPLICATION is not valid JSON.
		{Name: "CF_INSTANCE_INDEX", ValueFrom: fieldRef("metadata.labels['" + appsv1.PodIndexLabel + "']")},
		{Name: "CF_INSTANCE_GUID", ValueFrom: fieldRef("metadata.uid")},
		{Name: "CF_INSTANCE_IP", ValueFrom: fieldRef("status.podIP")},
		{Name: "CF_INSTANCE_INTERNAL_IP", ValueFrom: fieldRef("status.podIP")},
		{Name: "CF_INSTANCE_PORT", Value: portText},
		{Name: "CF_INSTANCE_ADDR", Value: "$(CF_INSTANCE_IP):" + portText},
		{Name: "CF_INSTANCE_PORTS", Value: string(instancePorts)},
		{Name: "PORT", Value: portText},
		{Name: "VCAP_APP_PORT", Value: portText},
		{Name: "VCAP_APP_HOST", Value: "0.0.0.0"},
		{Name: "MEMORY_LIMIT", Value: strconv.FormatInt(proc.MemoryMB, 10) + "m"},
		{Name: "VCAP_APPLICATION", Value: vcapApplication(app, proc, cfg)},
		{Name: "VCAP_SERVICES", Value: "{}"},
	}
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
}

// vcapApplication returns VCAP_APPLICATION as a container env value: the
// instance id and index are $(NAME) references to the variables the
// downward API fills, and every other '$' is escaped.
func vcapApplication(app AppSpec, proc ProcessSpec, cfg WorkloadConfig) string {
	uris := app.URIs
	if uris == nil {
		uris = []string{}
	}
	// A map of strings, numbers and string slices always encodes.
	rest, _ := json.Marshal(map[string]any{
		"application_id":      app.GUID,
		"application_name":    app.Name,
		"application_uris":    uris,
		"application_version": app.Revision,
		"cf_api":              cfg.APIURL,
		"host":                "0.0.0.0",
		"limits":              map[string]int64{"disk": proc.DiskMB, "fds": fileDescriptorLimit, "mem": proc.MemoryMB},
		"name":                app.Name,
		"organization_id":     app.OrgGUID,
		"organization_name":   app.OrgName,
		"process_id":          proc.GUID,
		"process_type":        proc.Type,
		"space_id":            app.SpaceGUID,
		"space_name":          app.SpaceName,
		"uris":                uris,
		"users":               nil,
		"version":             app.Revision,
	})
	return `{"instance_id":"$(CF_INSTANCE_GUID)","instance_index":$(CF_INSTANCE_INDEX),` + escapeExpansion(string(rest[1:]))
}
