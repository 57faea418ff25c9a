package k8sbackend

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// CNBPlatformAPI is the CNB platform API version the staging container
// requests from the lifecycle. Lifecycle v0.20.8 supports 0.7 to 0.14.
const CNBPlatformAPI = "0.14"

// stagingUID and stagingGID are the user and group staging runs as. CNB
// build images must declare them as CNB_USER_ID and CNB_GROUP_ID, and the
// test builder uses 1000.
const (
	stagingUID = 1000
	stagingGID = 1000
)

// Paths inside the staging pod.
const (
	workspaceDir     = "/workspace"
	layersDir        = "/layers"
	platformDir      = "/platform"
	stagingEnvDir    = "/var/run/ferry/staging-env"
	registryAuthDir  = "/var/run/ferry/registry-auth"
	stagingEnvKey    = "env.json"
	orderFile        = layersDir + "/order.toml"
	creatorPath      = "/cnb/lifecycle/creator"
	ferryBinaryPath  = "/ferry"
	dockerConfigFile = "config.json"
)

// ErrPlan marks a build that cannot be staged as configured. Retrying does
// not help, so the controller fails the build with the error's message.
var ErrPlan = errors.New("staging is not possible")

// BuildpackRef is a CNB buildpack pinned to a version.
type BuildpackRef struct {
	ID      string
	Version string
}

// BuildPlan is everything a build's staging objects are made from: the
// build, its app, and what the controller resolved from the builder.
type BuildPlan struct {
	Build     store.Build
	App       store.App
	SpaceName string
	OrgName   string
	// StagingGroup is the staging environment variable group's variables.
	// The values are secrets.
	StagingGroup map[string]string
	// Buildpacks are the buildpacks to run, in order. Empty runs the
	// builder's own order, which detects them.
	Buildpacks []BuildpackRef
	// RunImage overrides the builder's run image; "" keeps the builder's.
	RunImage string
	// PreviousImage is the image of the app's current droplet, pinned by
	// digest, or "" when the build must not reuse one. The creator restores
	// layer metadata from it, and the exporter reuses its unchanged layers.
	PreviousImage string
}

// stagingLabels are the labels of a build's Job, its pod and its Secret.
func stagingLabels(b store.Build, installation string) map[string]string {
	labels := ownerLabels(installation, ComponentStaging)
	labels[LabelOrgGUID] = b.OrgGUID
	labels[LabelSpaceGUID] = b.SpaceGUID
	labels[LabelAppGUID] = b.AppGUID
	labels[LabelBuildGUID] = b.GUID
	labels[LabelSourceType] = SourceTypeStaging
	return labels
}

func stagingAnnotations(p BuildPlan) map[string]string {
	return map[string]string{
		AnnotationOrgName:   p.OrgName,
		AnnotationSpaceName: p.SpaceName,
		AnnotationAppName:   p.App.Name,
	}
}

// MakeSpaceNamespace returns the namespace of a space's workloads, owned
// by installation.
func MakeSpaceNamespace(space store.Space, orgName, installation string) *corev1.Namespace {
	labels := ownerLabels(installation, ComponentSpace)
	labels[LabelOrgGUID] = space.OrganizationGUID
	labels[LabelSpaceGUID] = space.GUID
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   SpaceNamespace(space.GUID),
			Labels: labels,
			Annotations: map[string]string{
				AnnotationOrgName:   orgName,
				AnnotationSpaceName: space.Name,
			},
		},
	}
}

// MakeBuildJob returns the staging Job of a build. Its init container runs
// `ferry stage-fetch` from the Ferry image to unpack the package into an
// emptyDir. Its main container then runs the CNB lifecycle creator from
// the stack's builder image, which exports the droplet image to the
// registry. The Job has no owner, because Ferry finds it by name and
// labels.
func MakeBuildJob(p BuildPlan, cfg Config) (*batchv1.Job, error) {
	b := p.Build
	if b.LifecycleType != store.LifecycleBuildpack {
		return nil, fmt.Errorf("%w: build %s has lifecycle %q, and only buildpack builds run a staging Job", ErrPlan, b.GUID, b.LifecycleType)
	}
	stack := cfg.Stack(b.Stack)
	builder := cfg.Builders[stack]
	if builder == "" {
		return nil, fmt.Errorf("%w: no builder is configured for stack %q", ErrPlan, stack)
	}
	if cfg.FerryImage == "" {
		return nil, fmt.Errorf("%w: the staging image is not configured: set staging.ferry_image or FERRY_STAGING_IMAGE", ErrPlan)
	}
	if b.PackageImage == "" {
		return nil, fmt.Errorf("%w: build %s has no package image", ErrPlan, b.GUID)
	}
	memory, err := megabytes(b.StagingMemoryMB, "staging memory")
	if err != nil {
		return nil, err
	}
	disk, err := megabytes(b.StagingDiskMB, "staging disk")
	if err != nil {
		return nil, err
	}
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: memory, corev1.ResourceEphemeralStorage: disk},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: memory, corev1.ResourceEphemeralStorage: disk},
	}

	labels := stagingLabels(b, cfg.Installation)
	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](10),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsUser:      ptr.To[int64](stagingUID),
			RunAsGroup:     ptr.To[int64](stagingGID),
			FSGroup:        ptr.To[int64](stagingGID),
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		InitContainers: []corev1.Container{{
			Name:            FetchContainer,
			Image:           cfg.ClusterRef(cfg.FerryImage),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{ferryBinaryPath},
			Args:            fetchArgs(p, cfg),
			Env:             registryEnv(cfg),
			// The last line of the fetch log names what failed; the build
			// error quotes it.
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			Resources:                resources,
			SecurityContext:          restrictedContainer(true),
			VolumeMounts: append([]corev1.VolumeMount{
				{Name: "workspace", MountPath: workspaceDir},
				{Name: "layers", MountPath: layersDir},
				{Name: "platform", MountPath: platformDir},
				{Name: "staging-env", MountPath: stagingEnvDir, ReadOnly: true},
			}, registryMounts(cfg)...),
		}},
		Containers: []corev1.Container{{
			Name:            BuildContainer,
			Image:           cfg.ClusterRef(builder),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{creatorPath},
			Args:            creatorArgs(p, cfg),
			// CNB_NO_COLOR keeps ANSI colour codes out of the staging lines
			// the cf CLI prints.
			Env: append([]corev1.EnvVar{{Name: "CNB_PLATFORM_API", Value: CNBPlatformAPI}, {Name: "CNB_NO_COLOR", Value: "true"}},
				registryEnv(cfg)...),
			Resources:       resources,
			SecurityContext: restrictedContainer(false),
			VolumeMounts: append([]corev1.VolumeMount{
				{Name: "workspace", MountPath: workspaceDir},
				{Name: "layers", MountPath: layersDir},
				{Name: "platform", MountPath: platformDir},
			}, registryMounts(cfg)...),
		}},
		Volumes: append([]corev1.Volume{
			{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "layers", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "platform", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "staging-env", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: StagingEnvSecretName(b.GUID), DefaultMode: ptr.To[int32](0o440)}}},
		}, registryVolumes(cfg)...),
	}
	if cfg.HasRegistryCredentials() {
		pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: RegistrySecretName}}
	}

	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        BuildJobName(b.GUID),
			Namespace:   SpaceNamespace(b.SpaceGUID),
			Labels:      labels,
			Annotations: stagingAnnotations(p),
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: stagingAnnotations(p)},
				Spec:       pod,
			},
		},
	}
	// The pod's own deadline makes the space's ResourceQuota, which counts
	// only pods without one, leave staging out. It is later than the
	// Job's, so a staging timeout still ends the Job with DeadlineExceeded.
	podDeadline := stagingPodDeadlineFallback
	if cfg.StagingTimeout > 0 {
		job.Spec.ActiveDeadlineSeconds = ptr.To(int64(cfg.StagingTimeout.Seconds()))
		podDeadline = cfg.StagingTimeout + stagingPodDeadlineMargin
	}
	job.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To(int64(podDeadline.Seconds()))
	if cfg.BuildJobTTL > 0 {
		job.Spec.TTLSecondsAfterFinished = ptr.To(int32(cfg.BuildJobTTL.Seconds()))
	}
	return job, nil
}

// megabytes returns n MiB as a quantity, or an ErrPlan for n < 1.
func megabytes(n int64, what string) (resource.Quantity, error) {
	if n < 1 {
		return resource.Quantity{}, fmt.Errorf("%w: %s must be at least 1 MB, not %d", ErrPlan, what, n)
	}
	return resource.MustParse(strconv.FormatInt(n, 10) + "Mi"), nil
}

// restrictedContainer is a container security context that meets the
// "restricted" Pod Security Standard.
func restrictedContainer(readOnlyRoot bool) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(readOnlyRoot),
	}
}

// fetchArgs are the arguments of `ferry stage-fetch` in the init container.
func fetchArgs(p BuildPlan, cfg Config) []string {
	args := []string{"stage-fetch",
		"--image", cfg.ClusterRef(p.Build.PackageImage),
		"--dir", workspaceDir,
		"--env-file", path.Join(stagingEnvDir, stagingEnvKey),
		"--platform-dir", platformDir,
	}
	if len(p.Buildpacks) > 0 {
		args = append(args, "--order-file", orderFile)
		for _, bp := range p.Buildpacks {
			args = append(args, "--buildpack", bp.ID+"@"+bp.Version)
		}
	}
	if cfg.RegistryInsecure {
		args = append(args, "--insecure-registry", cfg.RegistryClusterAddress)
	}
	return args
}

// creatorArgs are the arguments of the CNB lifecycle creator. The droplet
// is exported to a tag named after the build, so a rebuild of the same
// build overwrites its own image and never another build's. That tag never
// names an earlier droplet, so layers are reused only through
// -previous-image.
func creatorArgs(p BuildPlan, cfg Config) []string {
	b := p.Build
	args := []string{
		"-app=" + workspaceDir,
		"-layers=" + layersDir,
		"-platform=" + platformDir,
		"-cache-image=" + cfg.CacheImage(b.AppGUID),
		"-log-level=info",
	}
	if len(p.Buildpacks) > 0 {
		args = append(args, "-order="+orderFile)
	}
	if p.RunImage != "" {
		args = append(args, "-run-image="+cfg.ClusterRef(p.RunImage))
	}
	if p.PreviousImage != "" {
		args = append(args, "-previous-image="+cfg.ClusterRef(p.PreviousImage))
	}
	if cfg.RegistryInsecure {
		args = append(args, "-insecure-registry="+cfg.RegistryClusterAddress)
	}
	return append(args, cfg.DropletTag(b.AppGUID, b.GUID))
}

// registryEnv points go-containerregistry and the lifecycle at the mounted
// docker config, when there are registry credentials.
func registryEnv(cfg Config) []corev1.EnvVar {
	if !cfg.HasRegistryCredentials() {
		return nil
	}
	return []corev1.EnvVar{{Name: "DOCKER_CONFIG", Value: registryAuthDir}}
}

func registryMounts(cfg Config) []corev1.VolumeMount {
	if !cfg.HasRegistryCredentials() {
		return nil
	}
	return []corev1.VolumeMount{{Name: "registry-auth", MountPath: registryAuthDir, ReadOnly: true}}
}

func registryVolumes(cfg Config) []corev1.Volume {
	if !cfg.HasRegistryCredentials() {
		return nil
	}
	return []corev1.Volume{{Name: "registry-auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName:  RegistrySecretName,
		Items:       []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: dockerConfigFile}},
		DefaultMode: ptr.To[int32](0o440),
	}}}}
}

// MakeStagingEnvSecret returns the Secret with a build's staging
// environment, which `ferry stage-fetch` writes into the CNB platform
// directory. When job has a UID the Secret is owned by it, so Kubernetes
// deletes it with the Job.
func MakeStagingEnvSecret(p BuildPlan, job *batchv1.Job, cfg Config) (*corev1.Secret, error) {
	env, err := json.Marshal(StagingEnvironment(p, cfg))
	if err != nil {
		return nil, fmt.Errorf("encode the staging environment of build %s: %w", p.Build.GUID, err)
	}
	secret := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        StagingEnvSecretName(p.Build.GUID),
			Namespace:   SpaceNamespace(p.Build.SpaceGUID),
			Labels:      stagingLabels(p.Build, cfg.Installation),
			Annotations: stagingAnnotations(p),
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		Data:      map[string][]byte{stagingEnvKey: env},
	}
	if job != nil && job.UID != "" {
		secret.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
			BlockOwnerDeletion: ptr.To(true),
		}}
	}
	return secret, nil
}

// StagingEnvironment is the environment buildpacks see during staging:
// the staging group's variables, the app's variables, which override them
// as in Cloud Controller, and the Cloud Foundry variables a buildpack may
// read. The values are secrets.
func StagingEnvironment(p BuildPlan, cfg Config) map[string]string {
	env := map[string]string{}
	for k, v := range p.StagingGroup {
		env[k] = v
	}
	for k, v := range p.App.EnvironmentVariables {
		env[k] = v
	}
	stack := cfg.Stack(p.Build.Stack)
	vcapApplication, _ := json.Marshal(map[string]any{ // A map of strings and numbers always encodes.
		"application_id":    p.App.GUID,
		"application_name":  p.App.Name,
		"name":              p.App.Name,
		"space_id":          p.Build.SpaceGUID,
		"space_name":        p.SpaceName,
		"organization_id":   p.Build.OrgGUID,
		"organization_name": p.OrgName,
		"cf_api":            cfg.APIURL,
		"limits":            map[string]int64{"mem": p.Build.StagingMemoryMB, "disk": p.Build.StagingDiskMB},
	})
	env["VCAP_APPLICATION"] = string(vcapApplication)
	env["VCAP_SERVICES"] = "{}"
	env["CF_STACK"] = stack
	env["MEMORY_LIMIT"] = strconv.FormatInt(p.Build.StagingMemoryMB, 10) + "m"
	return env
}

// MakeRegistrySecret returns the docker-config Secret with the registry
// credentials for a space namespace. Both registry addresses are listed,
// so the kubelet and go-containerregistry in the pods find them.
func MakeRegistrySecret(namespace string, cfg Config) (*corev1.Secret, error) {
	auth := base64.StdEncoding.EncodeToString([]byte(cfg.RegistryUsername + ":" + cfg.RegistryPassword))
	entry := map[string]string{"username": cfg.RegistryUsername, "password": cfg.RegistryPassword, "auth": auth}
	auths := map[string]any{cfg.RegistryClusterAddress: entry}
	if cfg.RegistryAddress != "" {
		auths[cfg.RegistryAddress] = entry
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return nil, fmt.Errorf("encode registry credentials: %w", err)
	}
	sum := sha256.Sum256(data)
	return &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        RegistrySecretName,
			Namespace:   namespace,
			Labels:      ownerLabels(cfg.Installation, ""),
			Annotations: map[string]string{AnnotationSpecHash: hex.EncodeToString(sum[:8])},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: data},
	}, nil
}
