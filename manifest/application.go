package manifest

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits Cloud Controller enforces on manifest values.
const (
	maxInstances         = 2_000_000
	maxStringValueLength = 4096
)

var (
	// uriPath is an absolute URI path without blanks, Cloud Controller's
	// test for health check endpoints: "/" or "/" then a character other
	// than "/", then anything but blanks.
	uriPath = regexp.MustCompile(`^(?:/|/[^\s/]\S*)$`)
	// integerText is a whole number written as text, which numeric
	// fields accept as Rails' numericality check does.
	integerText = regexp.MustCompile(`^[+-]?\d+$`)
)

// problems collects the messages of one application.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// parseApplication validates one entry of the applications list.
func parseApplication(raw any) (Application, problems) {
	var errs problems
	original, isMap := raw.(map[string]any)
	if !isMap {
		errs.add("Application must be an object of manifest keys")
		return Application{}, errs
	}
	h := normalizeKeys(original)
	app := Application{Raw: original}

	switch name := h["name"].(type) {
	case nil:
		errs.add("Name must not be empty")
	case string:
		if strings.TrimSpace(name) == "" {
			errs.add("Name must not be empty")
		}
		app.Name = name
	default:
		errs.add("Name must be a string")
	}

	parseLifecycle(h, &app, &errs)
	if env, found := h["env"]; found && env != nil {
		parseEnv(env, &app, &errs)
	}
	if metadata, found := h["metadata"]; found && metadata != nil {
		app.Metadata = parseMetadata(metadata, &errs)
	}
	if features, found := h["features"]; found {
		app.Features = parseFeatures(features, &errs)
	}
	app.Processes = parseProcesses(h, &errs)
	app.Routes = parseRoutes(h, &errs)
	if services, found := h["services"]; found && services != nil {
		app.Services = parseServices(services, &errs)
	}
	if scheduled, found := h["scheduled_tasks"]; found && scheduled != nil {
		app.ScheduledTasks = parseScheduledTasks(scheduled, &errs)
	}
	if sidecars, found := h["sidecars"]; found && sidecars != nil {
		list, isList := sidecars.([]any)
		switch {
		case !isList:
			errs.add("Sidecars must be an array of sidecar configurations")
		case len(list) > 0:
			errs.add("Sidecars are not supported: remove the sidecars or leave the list empty")
		}
	}
	return app, errs
}

// parseLifecycle reads lifecycle, docker, buildpack, buildpacks and stack.
func parseLifecycle(h map[string]any, app *Application, errs *problems) {
	_, hasBuildpack := h["buildpack"]
	_, hasBuildpacks := h["buildpacks"]
	_, hasDocker := h["docker"]

	if lifecycle, found := h["lifecycle"]; found && lifecycle != nil {
		switch lifecycle {
		case LifecycleBuildpack, LifecycleDocker:
			app.Lifecycle = lifecycle.(string)
		case "cnb":
			errs.add("Lifecycle 'cnb' is not supported: Ferry stages buildpack apps with Cloud Native Buildpacks, so use 'buildpack'")
		default:
			errs.add("Lifecycle must be 'buildpack' or 'docker'")
		}
	}
	if hasDocker {
		if app.Lifecycle == LifecycleBuildpack {
			errs.add("Docker cannot be used with lifecycle 'buildpack'")
		}
		app.Lifecycle = LifecycleDocker
		app.Docker = parseDocker(h["docker"], errs)
	}
	if hasBuildpack && hasBuildpacks {
		errs.add("Buildpack and Buildpacks fields cannot be used together.")
	}
	if (hasBuildpack || hasBuildpacks) && (hasDocker || app.Lifecycle == LifecycleDocker) {
		errs.add("Cannot specify both buildpack(s) and docker keys")
	}

	if hasBuildpack {
		switch bp := h["buildpack"].(type) {
		case nil:
			app.Buildpacks = &[]string{}
		case string:
			if bp == "default" || bp == "null" {
				app.Buildpacks = &[]string{}
			} else if checkLength("Buildpack", bp, errs) {
				app.Buildpacks = &[]string{bp}
			}
		default:
			errs.add("Buildpack must be a string")
		}
	}
	if hasBuildpacks && h["buildpacks"] != nil {
		app.Buildpacks = parseBuildpacks(h["buildpacks"], errs)
	}
	if stack, found := h["stack"]; found && stack != nil {
		s, isString := stack.(string)
		if !isString {
			errs.add("Stack must be a string")
		} else if checkLength("Stack", s, errs) {
			app.Stack = &s
		}
	}
}

// checkLength reports whether s has 1 to maxStringValueLength characters,
// and adds a problem naming field when it has not.
func checkLength(field, s string, errs *problems) bool {
	if strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > maxStringValueLength {
		errs.add("%s must be between 1 and %d characters", field, maxStringValueLength)
		return false
	}
	return true
}

func parseBuildpacks(raw any, errs *problems) *[]string {
	list, isList := raw.([]any)
	if !isList {
		errs.add("Buildpacks must be an array")
		return nil
	}
	buildpacks := []string{}
	for _, item := range list {
		s, isString := item.(string)
		if !isString {
			errs.add("Buildpacks can only contain strings")
			return nil
		}
		if !checkLength("Buildpacks entries", s, errs) {
			return nil
		}
		buildpacks = append(buildpacks, s)
	}
	return &buildpacks
}

func parseDocker(raw any, errs *problems) *Docker {
	h, isMap := raw.(map[string]any)
	if !isMap {
		errs.add("Docker must be an object with an image and an optional username")
		return &Docker{}
	}
	d := &Docker{}
	for _, field := range []struct {
		key   string
		label string
		dest  *string
	}{{"image", "Docker image", &d.Image}, {"username", "Docker username", &d.Username}} {
		switch v := h[field.key].(type) {
		case nil:
		case string:
			*field.dest = v
		default:
			errs.add("%s must be a string", field.label)
		}
	}
	return d
}

// parseEnv stringifies env values, as Cloud Controller does: a manifest
// may contain "PORT_COUNT: 3" for the string "3".
func parseEnv(raw any, app *Application, errs *problems) {
	h, isMap := raw.(map[string]any)
	if !isMap {
		errs.add("Env must be an object of keys and values")
		return
	}
	app.Env = make(map[string]string, len(h))
	for key, value := range h {
		app.Env[key] = stringify(value)
	}
}

func parseMetadata(raw any, errs *problems) *Metadata {
	h, isMap := raw.(map[string]any)
	if !isMap {
		errs.add("Metadata must be an object with labels and annotations")
		return nil
	}
	m := &Metadata{}
	for _, part := range []struct {
		key  string
		dest *map[string]*string
	}{{"labels", &m.Labels}, {"annotations", &m.Annotations}} {
		value, found := h[part.key]
		if !found || value == nil {
			continue
		}
		entries, isMap := value.(map[string]any)
		if !isMap {
			errs.add("Metadata %s must be an object", part.key)
			continue
		}
		*part.dest = make(map[string]*string, len(entries))
		for key, v := range entries {
			switch s := v.(type) {
			case nil:
				(*part.dest)[key] = nil
			case string:
				(*part.dest)[key] = &s
			default:
				errs.add("Metadata %s value of key '%s' must be a string or null", strings.TrimSuffix(part.key, "s"), key)
			}
		}
	}
	return m
}

func parseFeatures(raw any, errs *problems) map[string]bool {
	const message = "Features must be a map of valid feature names to booleans (true = enabled, false = disabled)"
	h, isMap := raw.(map[string]any)
	if !isMap || len(h) == 0 {
		errs.add(message)
		return nil
	}
	features := make(map[string]bool, len(h))
	for name, value := range h {
		enabled, isBool := value.(bool)
		if !isBool || !slices.Contains(FeatureNames, name) {
			errs.add(message)
			return nil
		}
		features[name] = enabled
	}
	return features
}

func parseServices(raw any, errs *problems) []Service {
	const message = "Services must be a list of service instances"
	list, isList := raw.([]any)
	if !isList {
		errs.add(message)
		return nil
	}
	services := []Service{}
	for _, item := range list {
		switch s := item.(type) {
		case string:
			services = append(services, Service{Name: s})
		case map[string]any:
			service, ok := parseServiceBinding(s)
			if !ok {
				errs.add(message)
				return nil
			}
			services = append(services, service)
		default:
			errs.add(message)
			return nil
		}
	}
	return services
}

// parseServiceBinding reads {name, parameters, binding_name}, and reports
// false for any other shape.
func parseServiceBinding(h map[string]any) (Service, bool) {
	var s Service
	for key, value := range h {
		switch key {
		case "name":
			name, isString := value.(string)
			if !isString {
				return Service{}, false
			}
			s.Name = name
		case "parameters":
			params, isMap := value.(map[string]any)
			if !isMap {
				return Service{}, false
			}
			s.Parameters = params
		case "binding_name":
			name, isString := value.(string)
			if !isString {
				return Service{}, false
			}
			s.BindingName = name
		default:
			return Service{}, false
		}
	}
	return s, s.Name != ""
}

// integerValue converts a numeric manifest value as Rails' numericality
// check does: integers and whole numbers written as text are numbers, and
// fractions are not integers. It returns the problem, or "".
func integerValue(v any) (int64, string) {
	switch t := v.(type) {
	case int64:
		return t, ""
	case float64:
		return 0, "must be an integer"
	case string:
		s := strings.TrimSpace(t)
		if integerText.MatchString(s) {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, "must be less than or equal to " + strconv.FormatInt(math.MaxInt64, 10)
			}
			return n, ""
		}
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return 0, "must be an integer"
		}
	}
	return 0, "is not a number"
}
