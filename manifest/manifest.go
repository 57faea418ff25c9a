// Package manifest parses and validates Cloud Foundry application
// manifests: the YAML documents cf push sends to apply_manifest and
// manifest_diff, and the one GET /v3/apps/:guid/manifest returns. It is
// pure: it reads nothing but the document, so checks that need the
// database, such as whether a stack exists, belong to the caller.
//
// Keys follow Cloud Controller: dashes and underscores are the same
// ("disk-quota" is "disk_quota"), unknown keys such as "path" are ignored,
// and every message is worded as Cloud Controller words it, so scripts that
// match on them keep working.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxSize is the largest manifest Cloud Controller accepts, in bytes.
const MaxSize = 1 << 20

// Lifecycle types a manifest can ask for.
const (
	LifecycleBuildpack = "buildpack"
	LifecycleDocker    = "docker"
)

// Health check types a process can have.
const (
	HealthCheckPort    = "port"
	HealthCheckProcess = "process"
	HealthCheckHTTP    = "http"
)

// ProcessTypeWeb is the process that a manifest's top-level process keys
// (instances, memory, command, health-check-type, ...) configure.
const ProcessTypeWeb = "web"

// MaxHealthCheckTimeout is Cloud Controller's default
// maximum_health_check_timeout, in seconds.
const MaxHealthCheckTimeout = 180

// FeatureNames are the app features a manifest's features map can switch,
// in Cloud Controller's order.
var FeatureNames = []string{"ssh", "revisions", "service-binding-k8s", "file-based-vcap-services"}

// Manifest is a parsed, validated manifest.
type Manifest struct {
	Applications []Application
}

// Application is one entry of a manifest's applications list. Nil
// pointers, nil maps and nil slices are keys the manifest does not have,
// which leave the app's current settings as they are.
type Application struct {
	Name string
	// Lifecycle is LifecycleBuildpack, LifecycleDocker, or "" when the
	// manifest has neither a lifecycle nor a docker key. A docker key means
	// LifecycleDocker.
	Lifecycle string
	// Buildpacks replaces the app's buildpacks. An empty list, from
	// "buildpack: default" or "buildpack: null", means auto-detection.
	Buildpacks *[]string
	Stack      *string
	Docker     *Docker
	// Env holds the variables to set, every value turned into a string:
	// 42 is "42", true is "true" and null is "". Variables the manifest
	// does not name stay as they are. The values are secrets.
	Env      map[string]string
	Metadata *Metadata
	Features map[string]bool
	// Processes lists the web process first when the manifest configures
	// it, then the others in manifest order.
	Processes []Process
	Routes    *Routes
	Services  []Service
	// ScheduledTasks is the scheduled-tasks key, a Ferry extension: the
	// scheduled tasks to create or update by name. Scheduled tasks the
	// manifest does not name stay as they are.
	ScheduledTasks []ScheduledTask
	// Raw is the application's mapping as decoded, for diffs and audit
	// events. It holds the env values too.
	Raw map[string]any
}

// Docker is the docker key of an application. The image is the one cf
// push puts in the app's docker package. The server reads only the key's
// presence, which makes the app a docker app.
type Docker struct {
	Image    string
	Username string
}

// Metadata holds labels and annotations to set, and to delete where the
// value is nil.
type Metadata struct {
	Labels      map[string]*string
	Annotations map[string]*string
}

// Command is a start command in a manifest. Set reports whether the
// manifest has the key. Reset requests the droplet's command, which a
// manifest writes as null, "null" or "default".
type Command struct {
	Set   bool
	Reset bool
	Value string
}

// Process is the configuration of one process type. Nil fields are not
// in the manifest.
type Process struct {
	Type      string
	Command   Command
	Instances *int
	MemoryMB  *int64
	DiskMB    *int64
	// LogRateLimit is bytes per second; -1 is unlimited.
	LogRateLimit *int64
	// CPUMillicores is the absolute CPU limit of the cpu key, a Ferry
	// extension. 0, from "cpu: default", derives the limit from memory.
	CPUMillicores *int64
	HealthCheck   HealthCheck
	Readiness     HealthCheck
}

// HealthCheck is a liveness or readiness check in a manifest. Readiness
// checks have no Timeout.
type HealthCheck struct {
	Type              *string
	Endpoint          *string
	Timeout           *int
	InvocationTimeout *int
	Interval          *int
}

// HasUpdate reports whether p changes anything but the scale: the command
// or a health check.
func (p Process) HasUpdate() bool {
	return p.Command.Set || !p.HealthCheck.isEmpty() || !p.Readiness.isEmpty()
}

// HasScale reports whether p sets instances, memory, disk, log rate or
// CPU.
func (p Process) HasScale() bool {
	return p.Instances != nil || p.MemoryMB != nil || p.DiskMB != nil || p.LogRateLimit != nil || p.CPUMillicores != nil
}

func (h HealthCheck) isEmpty() bool {
	return h.Type == nil && h.Endpoint == nil && h.Timeout == nil && h.InvocationTimeout == nil && h.Interval == nil
}

// Routes holds an application's route keys. RoutesSet reports whether the
// routes key is present.
type Routes struct {
	Routes       []Route
	RoutesSet    bool
	NoRoute      *bool
	RandomRoute  *bool
	DefaultRoute *bool
}

// Route is one entry of a routes list: a URL such as
// "app.example.com/path" or "tcp.example.com:1234".
type Route struct {
	Route    string
	Protocol string
	Options  map[string]string
}

// Service is one entry of a services list: a service instance name, with
// optional binding name and parameters.
type Service struct {
	Name        string
	BindingName string
	Parameters  map[string]any
}

// ErrorKind selects how an HTTP layer reports an Error.
type ErrorKind int

const (
	// ErrorSyntax is a body that is not a YAML mapping. Cloud Controller
	// returns 400 CF-MessageParseError "invalid request body".
	ErrorSyntax ErrorKind = iota
	// ErrorAliases is a document with anchors or aliases, a 400.
	ErrorAliases
	// ErrorInvalid is a manifest that breaks a rule, a 422 with one
	// message per problem.
	ErrorInvalid
)

// Error reports why a manifest was rejected. Messages never quote
// environment variable values.
type Error struct {
	Kind     ErrorKind
	Messages []string
}

func (e *Error) Error() string { return strings.Join(e.Messages, "; ") }

func invalid(messages ...string) *Error { return &Error{Kind: ErrorInvalid, Messages: messages} }

// Parse decodes and validates a manifest. It returns an *Error listing
// every problem it finds. Messages about an application start with "For
// application 'NAME': ", or "For application at index N: " when it has no
// name.
func Parse(data []byte) (*Manifest, error) {
	doc, err := decodeYAML(data)
	if errors.Is(err, errAliases) {
		return nil, &Error{Kind: ErrorAliases, Messages: []string{"Manifest does not support Anchors and Aliases"}}
	}
	top, isMap := doc.(map[string]any)
	if err != nil || !isMap {
		return nil, &Error{Kind: ErrorSyntax, Messages: []string{"invalid request body"}}
	}

	if version, found := top["version"]; found && version != nil && version != int64(1) {
		return nil, invalid("Unsupported manifest schema version. Currently supported versions: [1].")
	}
	apps, _ := top["applications"].([]any)
	if len(apps) == 0 {
		return nil, invalid("Cannot parse manifest with no 'applications' field.")
	}

	m := &Manifest{}
	var messages []string
	seen := map[string]bool{}
	for i, raw := range apps {
		app, problems := parseApplication(raw)
		label := fmt.Sprintf("For application at index %d: ", i)
		if app.Name != "" {
			label = "For application '" + app.Name + "': "
			folded := strings.ToLower(app.Name)
			if seen[folded] {
				problems = append(problems, "Application name '"+app.Name+"' appears more than once in the manifest")
			}
			seen[folded] = true
		}
		for _, p := range problems {
			messages = append(messages, label+p)
		}
		m.Applications = append(m.Applications, app)
	}
	if len(messages) > 0 {
		return nil, invalid(messages...)
	}
	return m, nil
}

// normalizeKeys returns m with every key's dashes turned into underscores,
// the form Cloud Controller reads keys in. When a manifest has both forms
// of a key, the one with underscores wins.
func normalizeKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if strings.Contains(k, "-") {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	for k, v := range m {
		if !strings.Contains(k, "-") {
			out[k] = v
		}
	}
	return out
}

// compactJSON renders a decoded YAML value as one line of JSON.
func compactJSON(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}
