package k8sbackend

// Every Kubernetes object name Ferry writes derives from GUIDs, which never
// change, and never from the mutable Cloud Foundry names. Names go into
// annotations, because a name such as "my app" is not a valid label value.

// Labels Ferry puts on the objects it owns. LabelManagedBy is the ownership
// mark: Ferry never changes or deletes an object without it.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByFerry = "ferry"
	LabelComponent = "app.kubernetes.io/component"
	// LabelInstallation names the Ferry installation that owns an object.
	// Together with LabelManagedBy it is the ownership mark, so several
	// installations, each with its own database, can share a cluster.
	LabelInstallation = "ferry.cloudfoundry.org/installation"

	LabelOrgGUID   = "cloudfoundry.org/org_guid"
	LabelSpaceGUID = "cloudfoundry.org/space_guid"
	LabelAppGUID   = "cloudfoundry.org/app_guid"
	LabelBuildGUID = "cloudfoundry.org/build_guid"
	// LabelSourceType is the log source type of a pod's output, "STG" for
	// staging, as the cf CLI filters staging logs on it.
	LabelSourceType = "cloudfoundry.org/source_type"
)

// Annotations with the human names of an object's Cloud Foundry resources.
const (
	AnnotationOrgName   = "cloudfoundry.org/org_name"
	AnnotationSpaceName = "cloudfoundry.org/space_name"
	AnnotationAppName   = "cloudfoundry.org/app_name"
	// AnnotationSpecHash is a hash of the fields Ferry sets on an object,
	// so a reconcile updates it only when they changed.
	AnnotationSpecHash = "ferry.cloudfoundry.org/spec-hash"
)

// Label values.
const (
	ComponentStaging  = "staging"
	ComponentSpace    = "space"
	SourceTypeStaging = "STG"
)

// Names of containers and objects that do not depend on a GUID.
const (
	// FetchContainer is the init container that fetches the package.
	FetchContainer = "fetch"
	// BuildContainer runs the CNB lifecycle creator.
	BuildContainer = "build"
	// RegistrySecretName is the docker-config Secret with the registry
	// credentials in every space namespace, when credentials are set.
	RegistrySecretName = "ferry-registry"
)

// SpaceNamespace is the namespace of a space's workloads.
func SpaceNamespace(spaceGUID string) string { return "cf-space-" + spaceGUID }

// BuildJobName is the name of a build's staging Job.
func BuildJobName(buildGUID string) string { return "build-" + buildGUID }

// StagingEnvSecretName is the name of the Secret with a build's staging
// environment variables.
func StagingEnvSecretName(buildGUID string) string { return "build-" + buildGUID + "-env" }

// DefaultInstallation is the installation name when none is configured.
const DefaultInstallation = "ferry"

// ownedBy reports whether an object's labels carry the ownership mark of
// installation. Objects of other installations are foreign: they are never
// changed or deleted, and informers never see them.
func ownedBy(labels map[string]string, installation string) bool {
	return labels[LabelManagedBy] == ManagedByFerry && labels[LabelInstallation] == installationOrDefault(installation)
}

// ownerLabels are the ownership mark of installation plus component.
func ownerLabels(installation, component string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: installationOrDefault(installation)}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

func installationOrDefault(installation string) string {
	if installation == "" {
		return DefaultInstallation
	}
	return installation
}
