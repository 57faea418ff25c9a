package k8sbackend

import "strconv"

// Labels on the objects that run apps, in addition to the common ones.
const (
	LabelProcessGUID = "cloudfoundry.org/process_guid"
	// LabelProcessType is set only when the process type is a valid label
	// value; AnnotationProcessType always carries it.
	LabelProcessType = "cloudfoundry.org/process_type"
	// LabelRevision on a pod is the app revision its template was made
	// from. A new revision rolls the pods.
	LabelRevision = "cloudfoundry.org/revision"
	// LabelSlot is on the pods of a process's SlotSecondary StatefulSet
	// and in its selector, so that StatefulSet never selects the primary's
	// pods. The primary's selector predates slots and matches both, but the
	// StatefulSet controller adopts only pods named after its StatefulSet.
	LabelSlot = "ferry.cloudfoundry.org/slot"
	// ComponentApp is the LabelComponent value of every object that runs
	// an app: StatefulSets, their pods, Services and env Secrets.
	ComponentApp = "app"
)

// Annotations on the objects that run apps.
const (
	AnnotationProcessType = "cloudfoundry.org/process_type"
	// AnnotationStartError on a StatefulSet is the reason its process
	// cannot start, in words for the app's developer. Such a StatefulSet has no
	// replicas, and its instances are reported CRASHED with this text.
	AnnotationStartError = "ferry.cloudfoundry.org/start-error"
	// AnnotationLogRateLimit is the process's log rate limit in bytes per
	// second, -1 for none. Kubernetes does not enforce it; the log reader
	// and the stats endpoint read it.
	AnnotationLogRateLimit = "ferry.cloudfoundry.org/log-rate-limit"
	// AnnotationReportedCrashes on a pod is how many crashes of its app
	// container Ferry has recorded audit events for.
	AnnotationReportedCrashes = "ferry.cloudfoundry.org/reported-crashes"
	// AnnotationSkippedEnv on an env Secret lists, comma-separated, the
	// app's variable names that cannot be Secret keys and so are missing
	// from the app's environment.
	AnnotationSkippedEnv = "ferry.cloudfoundry.org/skipped-env"
)

// AppContainer is the name of the container that runs a process.
const AppContainer = "app"

// AppPortName names the container port a process listens on and the
// Service port in front of it.
const AppPortName = "http"

// ProcessWorkloadName is the name of a process's StatefulSet. Its pods
// are named after it with the instance index appended. The StatefulSet
// controller derives a label value from this name plus 11 characters, so
// it stays under 52 characters.
func ProcessWorkloadName(processGUID string) string { return "proc-" + processGUID }

// The two StatefulSets a process can have. A deployment brings the new
// revision up in the slot the old revision does not use, and the process
// stays in that slot afterwards.
const (
	SlotPrimary   = "a"
	SlotSecondary = "b"
)

// SlotWorkloadName is the name of a process's StatefulSet in slot:
// ProcessWorkloadName for SlotPrimary, and that name with "-b" appended
// for SlotSecondary, still under 52 characters.
func SlotWorkloadName(processGUID, slot string) string {
	if slot == SlotSecondary {
		return ProcessWorkloadName(processGUID) + "-" + SlotSecondary
	}
	return ProcessWorkloadName(processGUID)
}

// ProcessServiceName is the name of a web process's Service. Service
// names must start with a letter, and a GUID may start with a digit.
func ProcessServiceName(processGUID string) string { return "proc-" + processGUID }

// InstancePodName is the name of the pod that runs one instance of a
// process.
func InstancePodName(processGUID string, index int) string {
	return ProcessWorkloadName(processGUID) + "-" + strconv.Itoa(index)
}

// AppEnvSecretName is the name of the Secret with an app's environment
// variables.
func AppEnvSecretName(appGUID string) string { return "app-" + appGUID + "-env" }
