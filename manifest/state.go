package manifest

import (
	"bytes"
	"slices"

	"go.yaml.in/yaml/v3"
)

// AppState is an app's current settings in manifest terms: what GET
// /v3/apps/:guid/manifest returns and what manifest_diff compares with.
// Empty values are left out of the manifest.
type AppState struct {
	Name string
	// Env holds secrets: render it only for actors who may read them.
	Env        map[string]string
	Lifecycle  string
	Docker     *Docker
	Buildpacks []string
	Stack      string
	// Features maps every feature of FeatureNames to whether it is on.
	Features    map[string]bool
	Services    []string
	Routes      []Route
	Labels      map[string]string
	Annotations map[string]string
	Processes   []ProcessState
}

// ProcessState is a process's current settings. Zero durations and empty
// strings are unset and left out.
type ProcessState struct {
	Type         string
	Instances    int
	MemoryMB     int64
	DiskMB       int64
	LogRateLimit int64
	// CPUMillicores is the process's own CPU limit, or 0 when Ferry
	// derives it from memory.
	CPUMillicores int64
	// Command is the user's command, or nil for the droplet's.
	Command     *string
	HealthCheck struct {
		Type              string
		Endpoint          string
		Timeout           int
		InvocationTimeout int
		Interval          int
	}
	Readiness struct {
		Type              string
		Endpoint          string
		InvocationTimeout int
		Interval          int
	}
}

// entry is one key of an ordered mapping; a nil value is left out.
type entry struct {
	key   string
	value any
}

// orderedMap is a mapping whose keys keep their order in YAML.
type orderedMap []entry

func (m orderedMap) set(key string, value any) orderedMap { return append(m, entry{key, value}) }

// entries returns the application's keys in the order Cloud Controller
// renders them.
func (s AppState) entries() orderedMap {
	var m orderedMap
	m = m.set("name", s.Name)
	if len(s.Env) > 0 {
		m = m.set("env", stringMap(s.Env))
	}
	m = m.set("lifecycle", s.Lifecycle)
	if s.Lifecycle == LifecycleDocker {
		if s.Docker != nil {
			docker := orderedMap{}.set("image", s.Docker.Image)
			if s.Docker.Username != "" {
				docker = docker.set("username", s.Docker.Username)
			}
			m = m.set("docker", docker)
		}
	} else {
		if len(s.Buildpacks) > 0 {
			m = m.set("buildpacks", stringList(s.Buildpacks))
		}
		if s.Stack != "" {
			m = m.set("stack", s.Stack)
		}
	}
	features := orderedMap{}
	for _, name := range FeatureNames {
		features = features.set(name, s.Features[name])
	}
	m = m.set("features", features)
	if len(s.Services) > 0 {
		m = m.set("services", stringList(s.Services))
	}
	if len(s.Routes) > 0 {
		routes := make([]any, len(s.Routes))
		for i, r := range s.Routes {
			routes[i] = routeEntries(r)
		}
		m = m.set("routes", routes)
	}
	if len(s.Labels) > 0 || len(s.Annotations) > 0 {
		metadata := orderedMap{}
		if len(s.Labels) > 0 {
			metadata = metadata.set("labels", stringMap(s.Labels))
		}
		if len(s.Annotations) > 0 {
			metadata = metadata.set("annotations", stringMap(s.Annotations))
		}
		m = m.set("metadata", metadata)
	}
	processes := make([]any, len(s.Processes))
	for i, p := range s.Processes {
		processes[i] = p.entries()
	}
	return m.set("processes", processes)
}

func routeEntries(r Route) orderedMap {
	m := orderedMap{}.set("route", r.Route)
	if r.Protocol != "" {
		m = m.set("protocol", r.Protocol)
	}
	if len(r.Options) > 0 {
		m = m.set("options", stringMap(r.Options))
	}
	return m
}

// entries returns the process's keys in the order Cloud Controller
// renders them, with Ferry's cpu after the log rate when the process has
// a CPU limit of its own. An unlimited log rate is -1, a number, and other
// rates are sizes such as "1M".
func (p ProcessState) entries() orderedMap {
	m := orderedMap{}.
		set("type", p.Type).
		set("instances", int64(p.Instances)).
		set("memory", FormatMegabytes(p.MemoryMB)).
		set("disk_quota", FormatMegabytes(p.DiskMB))
	if p.LogRateLimit == UnlimitedLogRate {
		m = m.set("log-rate-limit-per-second", int64(UnlimitedLogRate))
	} else {
		m = m.set("log-rate-limit-per-second", FormatBytes(p.LogRateLimit))
	}
	if p.CPUMillicores > 0 {
		m = m.set("cpu", FormatCPU(p.CPUMillicores))
	}
	if p.Command != nil {
		m = m.set("command", *p.Command)
	}
	m = m.set("health-check-type", p.HealthCheck.Type)
	m = setIf(m, "health-check-http-endpoint", p.HealthCheck.Endpoint)
	m = setPositive(m, "health-check-invocation-timeout", p.HealthCheck.InvocationTimeout)
	m = setPositive(m, "health-check-interval", p.HealthCheck.Interval)
	m = m.set("readiness-health-check-type", p.Readiness.Type)
	m = setIf(m, "readiness-health-check-http-endpoint", p.Readiness.Endpoint)
	m = setPositive(m, "readiness-health-check-invocation-timeout", p.Readiness.InvocationTimeout)
	m = setPositive(m, "readiness-health-check-interval", p.Readiness.Interval)
	return setPositive(m, "timeout", p.HealthCheck.Timeout)
}

// UnlimitedLogRate is the log rate limit that means no limit.
const UnlimitedLogRate = -1

func setIf(m orderedMap, key, value string) orderedMap {
	if value == "" {
		return m
	}
	return m.set(key, value)
}

func setPositive(m orderedMap, key string, value int) orderedMap {
	if value <= 0 {
		return m
	}
	return m.set(key, int64(value))
}

func stringMap(values map[string]string) orderedMap {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	m := make(orderedMap, 0, len(keys))
	for _, k := range keys {
		m = m.set(k, values[k])
	}
	return m
}

func stringList(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

// Render returns the YAML manifest of apps, as GET
// /v3/apps/:guid/manifest sends it.
func Render(apps ...AppState) ([]byte, error) {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, app := range apps {
		list.Content = append(list.Content, yamlNode(app.entries()))
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "applications"}, list,
	}}
	var buf bytes.Buffer
	buf.WriteString("---\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// yamlNode converts a value built from orderedMap, []any and scalars.
func yamlNode(v any) *yaml.Node {
	switch t := v.(type) {
	case orderedMap:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, e := range t {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e.key}, yamlNode(e.value))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, item := range t {
			n.Content = append(n.Content, yamlNode(item))
		}
		return n
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
	return n
}

// Hash returns the state as plain values keyed as a manifest is: maps,
// []any, strings, int64 and bools. Diffs compare manifests with it.
func (s AppState) Hash() map[string]any {
	return plain(s.entries()).(map[string]any)
}

func plain(v any) any {
	switch t := v.(type) {
	case orderedMap:
		m := make(map[string]any, len(t))
		for _, e := range t {
			m[e.key] = plain(e.value)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, item := range t {
			out[i] = plain(item)
		}
		return out
	}
	return v
}

// AuditYAML renders the application as audit.app.apply_manifest records
// it: a manifest of this one application with the values of env and
// cnb-credentials, which hold secrets, replaced by hidden.
func (a Application) AuditYAML(hidden string) string {
	app := make(map[string]any, len(a.Raw))
	for k, v := range a.Raw {
		app[k] = v
	}
	for _, secret := range []string{"env", "cnb-credentials", "cnb_credentials"} {
		if _, found := app[secret]; found {
			app[secret] = hidden
		}
	}
	raw, err := yaml.Marshal(map[string]any{"applications": []any{app}})
	if err != nil {
		return ""
	}
	return "---\n" + string(raw)
}
