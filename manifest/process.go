package manifest

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// parseProcesses returns the processes an application configures: web
// from the top-level keys, and every entry of the processes list. A web
// entry in the list replaces the top-level keys, as in Cloud Controller,
// but the top-level keys are validated all the same.
func parseProcesses(h map[string]any, errs *problems) []Process {
	web, webProblems := parseProcessKeys(h, ProcessTypeWeb)
	addProcessProblems(ProcessTypeWeb, webProblems, errs)

	var list []Process
	webInList := false
	if raw, found := h["processes"]; found && raw != nil {
		items, isList := raw.([]any)
		if !isList {
			errs.add("Processes must be an array of process configurations")
			items = nil
		}
		count := map[string]int{}
		missingType := false
		for _, item := range items {
			entry, isMap := item.(map[string]any)
			if !isMap {
				errs.add("Processes must be an array of process configurations")
				continue
			}
			entry = normalizeKeys(entry)
			processType, _ := entry["type"].(string)
			if strings.TrimSpace(processType) == "" {
				missingType = true
				continue
			}
			count[processType]++
			if count[processType] == 2 {
				errs.add(`Process "%s" may only be present once`, processType)
			}
			if count[processType] > 1 {
				continue
			}

			p, processProblems := parseProcessKeys(entry, processType)
			addProcessProblems(processType, processProblems, errs)
			if processType == ProcessTypeWeb {
				webInList = true
				list = append([]Process{p}, list...)
				continue
			}
			list = append(list, p)
		}
		if missingType {
			errs.add("All Processes must specify a type")
		}
	}
	if !webInList && (web.HasUpdate() || web.HasScale()) {
		list = append([]Process{web}, list...)
	}
	return list
}

func addProcessProblems(processType string, processProblems problems, errs *problems) {
	for _, p := range processProblems {
		errs.add(`Process "%s": %s`, processType, p)
	}
}

// parseProcessKeys reads the process keys of h, which is an entry of a
// processes list or an application's top level. Null values are treated
// as absent, except a null command, which resets it.
func parseProcessKeys(h map[string]any, processType string) (Process, problems) {
	var errs problems
	p := Process{Type: processType}

	if v := h["instances"]; v != nil {
		n, problem := integerValue(v)
		switch {
		case problem != "":
			errs.add("Instances %s", problem)
		case n < 0:
			errs.add("Instances must be greater than or equal to 0")
		case n > maxInstances:
			errs.add("Instances must be less than or equal to %d", maxInstances)
		default:
			instances := int(n)
			p.Instances = &instances
		}
	}
	p.MemoryMB = megabytesField(h["memory"], "Memory", &errs)
	p.DiskMB = megabytesField(h["disk_quota"], "Disk quota", &errs)
	p.LogRateLimit = logRateField(h["log_rate_limit_per_second"], &errs)
	p.CPUMillicores = cpuField(h["cpu"], &errs)
	p.Command = commandField(h, &errs)

	p.HealthCheck = HealthCheck{
		Type:              healthCheckTypeField(h["health_check_type"], "Health check type", &errs),
		Endpoint:          endpointField(h["health_check_http_endpoint"], "Health check http endpoint", &errs),
		Timeout:           durationField(h["timeout"], "Timeout", &errs),
		InvocationTimeout: durationField(h["health_check_invocation_timeout"], "Health check invocation timeout", &errs),
		Interval:          durationField(h["health_check_interval"], "Health check interval", &errs),
	}
	if t := p.HealthCheck.Timeout; t != nil && *t > MaxHealthCheckTimeout {
		errs.add("Timeout must be less than or equal to %d", MaxHealthCheckTimeout)
		p.HealthCheck.Timeout = nil
	}
	if t := p.HealthCheck.Type; t != nil && *t != HealthCheckHTTP && p.HealthCheck.Endpoint != nil {
		errs.add(`Health check type must be "http" to set a health check HTTP endpoint`)
	}

	p.Readiness = HealthCheck{
		Type:              healthCheckTypeField(h["readiness_health_check_type"], "Readiness health check type", &errs),
		Endpoint:          endpointField(h["readiness_health_check_http_endpoint"], "Readiness health check http endpoint", &errs),
		InvocationTimeout: durationField(h["readiness_health_check_invocation_timeout"], "Readiness health check invocation timeout", &errs),
		Interval:          durationField(h["readiness_health_check_interval"], "Readiness health check interval", &errs),
	}
	if t := p.Readiness.Type; t != nil && *t != HealthCheckHTTP && p.Readiness.Endpoint != nil {
		errs.add(`Readiness health check type must be "http" to set a health check HTTP endpoint`)
	}
	return p, errs
}

// megabytesField converts a memory or disk value such as "256M" to
// megabytes. A value under one megabyte is invalid.
func megabytesField(v any, label string, errs *problems) *int64 {
	if v == nil {
		return nil
	}
	mb, err := ParseMegabytes(stringify(v))
	if err != nil {
		errs.add("%s %s", label, err)
		return nil
	}
	if mb <= 0 {
		errs.add("%s must be greater than 0MB", label)
		return nil
	}
	return &mb
}

// logRateField converts a log rate limit such as "1M" to bytes per
// second; -1 is unlimited and 0 allows no logs.
func logRateField(v any, errs *problems) *int64 {
	if v == nil {
		return nil
	}
	s := strings.TrimSpace(stringify(v))
	var rate int64
	switch s {
	case "-1":
		rate = -1
	case "0":
		rate = 0
	default:
		bytes, err := ParseBytes(s)
		if err != nil {
			errs.add("Log rate limit per second %s", err)
			return nil
		}
		rate = bytes
	}
	if rate < -1 {
		errs.add("Log rate limit must be an integer greater than or equal to -1")
		return nil
	}
	return &rate
}

// cpuField reads the cpu key, a Ferry extension: a CPU limit such as 2,
// 0.5 or "500m", or "default" for the limit Ferry derives from memory,
// which it returns as 0.
func cpuField(v any, errs *problems) *int64 {
	var s string
	switch t := v.(type) {
	case nil:
		return nil
	case int64:
		s = strconv.FormatInt(t, 10)
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	case string:
		s = t
	default:
		errs.add("Cpu %s", errCPUSyntax)
		return nil
	}
	if strings.TrimSpace(s) == "default" {
		return new(int64)
	}
	millicores, err := ParseCPU(s)
	if err != nil {
		errs.add("Cpu %s", err)
		return nil
	}
	return &millicores
}

// commandField reads the command key. Null, "null" and "default" reset
// the command to the droplet's.
func commandField(h map[string]any, errs *problems) Command {
	v, found := h["command"]
	if !found {
		return Command{}
	}
	switch c := v.(type) {
	case nil:
		return Command{Set: true, Reset: true}
	case string:
		if c == "null" || c == "default" {
			return Command{Set: true, Reset: true}
		}
		if c == "" || len([]rune(c)) > maxStringValueLength {
			errs.add("Command must be between 1 and %d characters", maxStringValueLength)
			return Command{}
		}
		return Command{Set: true, Value: c}
	}
	errs.add("Command must be a string")
	return Command{}
}

// healthCheckTypes are the health check types a manifest can name. "none"
// is the old name of "process".
var healthCheckTypes = []string{HealthCheckPort, HealthCheckProcess, HealthCheckHTTP}

func healthCheckTypeField(v any, label string, errs *problems) *string {
	if v == nil {
		return nil
	}
	s, _ := v.(string)
	if s == "none" {
		s = HealthCheckProcess
	}
	if !slices.Contains(healthCheckTypes, s) {
		errs.add(`%s must be "port", "process", or "http"`, label)
		return nil
	}
	return &s
}

func endpointField(v any, label string, errs *problems) *string {
	if v == nil {
		return nil
	}
	s, isString := v.(string)
	if !isString || !uriPath.MatchString(s) {
		errs.add("%s must be a valid URI path", label)
		return nil
	}
	return &s
}

// durationField reads a health check duration in seconds, at least 1.
func durationField(v any, label string, errs *problems) *int {
	if v == nil {
		return nil
	}
	n, problem := integerValue(v)
	switch {
	case problem != "":
		errs.add("%s %s", label, problem)
		return nil
	case n < 1:
		errs.add("%s must be greater than or equal to 1", label)
		return nil
	case n > 1<<31-1:
		errs.add("%s must be less than or equal to %d", label, 1<<31-1)
		return nil
	}
	seconds := int(n)
	return &seconds
}

// Route protocols and load-balancing algorithms Cloud Controller accepts,
// and the Ferry extension "udp", which makes a UDP route on a TCP domain.
var (
	routeProtocols          = []string{"http1", "http2", "tcp", "udp"}
	loadBalancingAlgorithms = []string{"round-robin", "least-connection"}
)

// parseRoutes reads routes, no-route, random-route and default-route. It
// returns nil when the application has none of them.
func parseRoutes(h map[string]any, errs *problems) *Routes {
	r := &Routes{}
	present := false
	for _, flag := range []struct {
		key, label string
		dest       **bool
	}{
		{"no_route", "No-route", &r.NoRoute},
		{"random_route", "Random-route", &r.RandomRoute},
		{"default_route", "Default-route", &r.DefaultRoute},
	} {
		v, found := h[flag.key]
		if !found {
			continue
		}
		present = true
		if v == nil {
			continue
		}
		b, isBool := v.(bool)
		if !isBool {
			errs.add("%s must be a boolean", flag.label)
			continue
		}
		*flag.dest = &b
	}
	if r.RandomRoute != nil && *r.RandomRoute && r.DefaultRoute != nil && *r.DefaultRoute {
		errs.add("Random-route and default-route may not be used together")
	}

	if raw, found := h["routes"]; found {
		present = true
		r.RoutesSet = true
		r.Routes = parseRouteList(raw, errs)
	}
	if !present {
		return nil
	}
	return r
}

func parseRouteList(raw any, errs *problems) []Route {
	items, isList := raw.([]any)
	if !isList {
		errs.add("Routes must be a list of route objects")
		return nil
	}
	routes := make([]Route, 0, len(items))
	for _, item := range items {
		entry, isMap := item.(map[string]any)
		if !isMap || entry["route"] == nil || strings.TrimSpace(stringify(entry["route"])) == "" {
			errs.add("Routes must be a list of route objects")
			return nil
		}
		routes = append(routes, Route{Route: stringify(entry["route"])})
	}

	for i, item := range items {
		entry := item.(map[string]any)
		route := &routes[i]
		if !validRoute(route.Route) {
			errs.add("The route '%s' is not a properly formed URL", route.Route)
		}
		if protocol, found := entry["protocol"]; found && protocol != nil {
			s, _ := protocol.(string)
			if !slices.Contains(routeProtocols, s) {
				errs.add("Route protocol must be 'http1', 'http2', 'tcp' or 'udp'.")
			}
			route.Protocol = s
		}
		if options, found := entry["options"]; found {
			route.Options = parseRouteOptions(route.Route, options, errs)
		}
	}
	return routes
}

func parseRouteOptions(route string, raw any, errs *problems) map[string]string {
	h, isMap := raw.(map[string]any)
	if !isMap {
		errs.add("Route '%s': options must be an object", route)
		return nil
	}
	options := map[string]string{}
	valid := "'" + strings.Join(loadBalancingAlgorithms, ", ") + "'"
	for key, value := range h {
		if key != "loadbalancing" {
			errs.add("Route '%s' contains invalid route option '%s'. Valid keys: 'loadbalancing'", route, key)
			continue
		}
		s, isString := value.(string)
		switch {
		case !isString:
			errs.add("Invalid value for 'loadbalancing' for Route '%s'; Valid values are: %s", route, valid)
		case !slices.Contains(loadBalancingAlgorithms, s):
			errs.add("Cannot use loadbalancing value '%s' for Route '%s'; Valid values are: %s", s, route, valid)
		default:
			options[key] = s
		}
	}
	return options
}

// validRoute reports whether route is a host with an optional port and
// path. A port needs the tcp scheme or none; otherwise the scheme may be
// http, https or none.
func validRoute(route string) bool {
	s := route
	if !strings.Contains(s, "://") {
		s = "unspecified://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	if port := u.Port(); port != "" {
		if _, err := strconv.Atoi(port); err != nil {
			return false
		}
		return scheme == "tcp" || scheme == "unspecified"
	}
	return scheme == "http" || scheme == "https" || scheme == "unspecified"
}
