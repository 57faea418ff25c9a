package cfapi

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/manifest"
	"github.com/ferrycf/ferry/store"
)

// Cloud Controller's placeholder for a process command in lists, where it
// is always hidden, as for any secret in a list.
const privateDataHiddenInLists = "[PRIVATE DATA HIDDEN IN LISTS]"

// flagAppScaling gates scaling, as in Cloud Controller.
const flagAppScaling = "app_scaling"

// Limits on process settings that Cloud Controller enforces: at most
// maxHealthCheckTimeout seconds of startup timeout, and endpoints of at
// most maxHealthCheckEndpointLength characters.
const (
	maxHealthCheckTimeout        = manifest.MaxHealthCheckTimeout
	maxHealthCheckEndpointLength = 255
	maxCommandLength             = 4096
	maxDBInteger                 = 1<<31 - 1
)

// healthCheckEndpointPath is an absolute URI path without blanks: "/" or
// "/" then a character other than "/", then anything but blanks.
var healthCheckEndpointPath = regexp.MustCompile(`^(?:/|/[^\s/]\S*)$`)

// defaultHealthCheckEndpoint is the path an http health check requests
// when none is set. Cloud Controller rejects an http check without an
// endpoint, but cf push -u http sends none, so Ferry checks "/", as the cf
// CLI's set-health-check does by default.
const defaultHealthCheckEndpoint = "/"

func (a *API) processRoutes() []route {
	const process = "/v3/processes/{guid}"
	const appProcess = "/v3/apps/{guid}/processes/{type}"
	routes := []route{
		{method: http.MethodGet, path: "/v3/processes", handler: a.listProcesses},
		{method: http.MethodGet, path: "/v3/apps/{guid}/processes", handler: a.listAppProcesses},
		{method: http.MethodGet, path: "/v3/apps/{guid}/sidecars", handler: a.listAppSidecars},
	}
	for _, base := range []string{process, appProcess} {
		routes = append(routes,
			route{method: http.MethodGet, path: base, handler: a.getProcess},
			route{method: http.MethodPatch, path: base, handler: a.updateProcess},
			route{method: http.MethodPost, path: base + "/actions/scale", handler: a.scaleProcess},
			route{method: http.MethodGet, path: base + "/stats", handler: a.processStats},
			route{method: http.MethodGet, path: base + "/sidecars", handler: a.listProcessSidecars},
			route{method: http.MethodDelete, path: base + "/instances/{index}", handler: a.restartProcessInstance},
		)
	}
	return append(routes, a.manifestRoutes()...)
}

// errProcessNotFound is the 404 for a process that does not exist or that
// the actor cannot see. cf apps skips processes whose stats return it.
func errProcessNotFound() error { return apierr.NotFound("Process") }

// processOfPath returns the process the path names, with its app, if the
// actor may see it: /v3/processes/:guid, or /v3/apps/:guid/processes/:type
// where an invisible app is "App not found" and a missing type "Process
// not found".
func (a *API) processOfPath(r *http.Request) (store.App, store.Process, error) {
	ctx := r.Context()
	if err := requireRead(actorOf(r)); err != nil {
		return store.App{}, store.Process{}, err
	}
	vis := visibility(r)

	if processType := pathParam(r, "type"); processType != "" {
		app, err := a.appForRead(r, pathParam(r, "guid"))
		if err != nil {
			return store.App{}, store.Process{}, err
		}
		p, err := a.store.ProcessByType(ctx, vis, app.GUID, processType)
		if errors.Is(err, store.ErrNotFound) {
			return store.App{}, store.Process{}, errProcessNotFound()
		}
		return app, p, err
	}

	p, app, err := a.store.ProcessWithApp(ctx, vis, pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.App{}, store.Process{}, errProcessNotFound()
	}
	return app, p, err
}

// processForManage is processOfPath for the changes Cloud Controller
// allows admins, space developers and space supporters: update, scale and
// restarting an instance.
func (a *API) processForManage(r *http.Request) (store.App, store.Process, error) {
	app, p, err := a.processOfPath(r)
	if err != nil {
		return store.App{}, store.Process{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), app.OrgGUID, app.SpaceGUID, roleSpaceDeveloper, roleSpaceSupporter); err != nil {
		return store.App{}, store.Process{}, err
	}
	return app, p, nil
}

// embedProcessInstances is the one value of the embed parameter.
const embedProcessInstances = "process_instances"

var processListSpec = withCommonFilters(listSpec{
	filters: []string{"types", "app_guids", "space_guids", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
	extra:   []string{"embed"},
})

// appProcessListSpec is processListSpec without the filters the app of
// the path already fixes.
var appProcessListSpec = withCommonFilters(listSpec{
	filters: []string{"types", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
	extra:   []string{"embed"},
})

var processGetSpec = listSpec{extra: []string{"embed"}}

// embedsInstances reports whether q requests embed=process_instances, and
// rejects any other embed.
func embedsInstances(q *listQuery) (bool, error) {
	if !q.has("embed") {
		return false, nil
	}
	for _, embed := range splitList(q.values.Get("embed")) {
		if embed != embedProcessInstances {
			return false, apierr.BadQueryParameter("Invalid embed: '" + shorten(embed) + "'. The only valid embed is '" + embedProcessInstances + "'")
		}
	}
	return true, nil
}

// listProcesses serves GET /v3/processes. cf apps sends app_guids, and the
// cf CLI v9 sends space_guids with embed=process_instances.
func (a *API) listProcesses(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, processListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := processFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = q.filter("app_guids")
	filter.SpaceGUIDs = q.filter("space_guids")
	filter.OrganizationGUIDs = q.filter("organization_guids")
	return a.processList(r, q, filter)
}

// listAppProcesses serves GET /v3/apps/:guid/processes, which cf app and
// the start and push waits poll.
func (a *API) listAppProcesses(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appProcessListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := processFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.processList(r, q, filter)
}

// processFilterOf parses the filters both process lists accept.
func processFilterOf(q *listQuery) (store.ProcessFilter, error) {
	common, err := commonFilter(q)
	if err != nil {
		return store.ProcessFilter{}, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.ProcessFilter{}, err
	}
	return store.ProcessFilter{CommonFilter: common, Types: q.filter("types"), LabelSelector: selector}, nil
}

// processList renders one page of processes. Commands are hidden in
// lists, as Cloud Controller hides them.
func (a *API) processList(r *http.Request, q *listQuery, filter store.ProcessFilter) (*response, error) {
	ctx := r.Context()
	embed, err := embedsInstances(q)
	if err != nil {
		return nil, err
	}
	processes, total, err := a.store.Processes(ctx, filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}

	var instances map[string][]processInstanceJSON
	if embed {
		if instances, err = a.embeddedInstances(ctx, r, processes); err != nil {
			return nil, err
		}
	}
	resources := make([]processJSON, len(processes))
	for i, p := range processes {
		resources[i] = a.presentProcess(p, privateDataHiddenInLists)
		if embed {
			list := instances[p.GUID]
			resources[i].ProcessInstances = &list
		}
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// getProcess serves GET /v3/processes/:guid and GET
// /v3/apps/:guid/processes/:type. The command is shown to those who may
// read the app's secrets and hidden from the others.
func (a *API) getProcess(r *http.Request) (*response, error) {
	ctx := r.Context()
	q, err := parseListQuery(r, processGetSpec)
	if err != nil {
		return nil, err
	}
	embed, err := embedsInstances(q)
	if err != nil {
		return nil, err
	}
	app, p, err := a.processOfPath(r)
	if err != nil {
		return nil, err
	}
	secrets, err := a.canReadAppSecrets(ctx, actorOf(r), app)
	if err != nil {
		return nil, err
	}

	hidden := ""
	if !secrets {
		hidden = privateDataHidden
	}
	body := a.presentProcess(p, hidden)
	if embed {
		instances, err := a.embeddedInstances(ctx, r, []store.Process{p})
		if err != nil {
			return nil, err
		}
		list := instances[p.GUID]
		body.ProcessInstances = &list
	}
	return ok(body), nil
}

// processUpdatePayload is the body of PATCH /v3/processes/:guid. Command
// is raw because null resets it to the droplet's command.
type processUpdatePayload struct {
	Command              json.RawMessage     `json:"command"`
	HealthCheck          *healthCheckPayload `json:"health_check"`
	ReadinessHealthCheck *healthCheckPayload `json:"readiness_health_check"`
	Metadata             *metadataPayload    `json:"metadata"`
}

// healthCheckPayload is a health_check or readiness_health_check object.
// The data values are raw because null clears them.
type healthCheckPayload struct {
	Type *string `json:"type"`
	Data *struct {
		Timeout           json.RawMessage `json:"timeout"`
		InvocationTimeout json.RawMessage `json:"invocation_timeout"`
		Interval          json.RawMessage `json:"interval"`
		Endpoint          json.RawMessage `json:"endpoint"`
	} `json:"data"`
}

// healthCheckChange is a validated health check change. Nil fields stay
// as they are; a set field holding 0 or "" clears the value.
type healthCheckChange struct {
	Type              *string
	Timeout           *int
	InvocationTimeout *int
	Interval          *int
	Endpoint          *string
}

// processChange is a validated PATCH of a process.
type processChange struct {
	// CommandSet reports whether the command changes; Command nil then
	// resets it to the droplet's.
	CommandSet  bool
	Command     *string
	HealthCheck healthCheckChange
	Readiness   healthCheckChange
	Metadata    store.MetadataPatch
}

// updateProcess serves PATCH /v3/processes/:guid and PATCH
// /v3/apps/:guid/processes/:type: command, health checks and metadata.
// cf set-health-check sends the health check here.
func (a *API) updateProcess(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, p, err := a.processForManage(r)
	if err != nil {
		return nil, err
	}
	var payload processUpdatePayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	change, err := processChangeOf(payload)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		current, err := store.LockProcess(ctx, tx, p.GUID)
		if err != nil {
			return err
		}
		change.apply(&current)
		if p, err = store.SaveProcess(ctx, tx, current, change.Metadata); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, processEvent(actor, "audit.app.process.update", app, p, payload.auditRequest()))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProcessNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("process updated", "app_guid", app.GUID, "process_guid", p.GUID)
	return ok(a.presentProcess(p, "")), nil
}

// processChangeOf validates a PATCH payload and reports every problem in
// one 422, with Cloud Controller's messages.
func processChangeOf(payload processUpdatePayload) (processChange, error) {
	change := processChange{}
	var problems []string
	if len(payload.Command) > 0 {
		change.CommandSet = true
		if !isJSONNull(payload.Command) {
			var command string
			switch {
			case json.Unmarshal(payload.Command, &command) != nil:
				problems = append(problems, "Command must be a string")
			case command == "" || len([]rune(command)) > maxCommandLength:
				problems = append(problems, fmt.Sprintf("Command must be between 1 and %d characters", maxCommandLength))
			default:
				change.Command = &command
			}
		}
	}
	change.HealthCheck, problems = healthCheckChangeOf(payload.HealthCheck, "Health check", true, problems)
	change.Readiness, problems = healthCheckChangeOf(payload.ReadinessHealthCheck, "Readiness health check", false, problems)
	if err := validateMetadata(payload.Metadata); err != nil {
		return processChange{}, err
	}
	change.Metadata = metadataPatch(payload.Metadata)
	if len(problems) > 0 {
		return processChange{}, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return change, nil
}

// healthCheckChangeOf validates a health check object. label starts its
// messages. Only liveness checks have a timeout.
func healthCheckChangeOf(p *healthCheckPayload, label string, withTimeout bool, problems []string) (healthCheckChange, []string) {
	var change healthCheckChange
	if p == nil {
		return change, problems
	}
	if p.Type != nil {
		switch *p.Type {
		case store.HealthCheckPort, store.HealthCheckProcess, store.HealthCheckHTTP:
			change.Type = p.Type
		default:
			problems = append(problems, label+` type must be "port", "process", or "http"`)
		}
	}
	if p.Data == nil {
		return change, problems
	}

	seconds := []struct {
		raw   json.RawMessage
		name  string
		dest  **int
		limit int
	}{
		{p.Data.InvocationTimeout, "invocation timeout", &change.InvocationTimeout, maxDBInteger},
		{p.Data.Interval, "interval", &change.Interval, maxDBInteger},
	}
	if withTimeout {
		seconds = append(seconds, struct {
			raw   json.RawMessage
			name  string
			dest  **int
			limit int
		}{p.Data.Timeout, "timeout", &change.Timeout, maxHealthCheckTimeout})
	} else if len(p.Data.Timeout) > 0 {
		problems = append(problems, "Unknown field(s): 'timeout'")
	}
	for _, s := range seconds {
		if len(s.raw) == 0 {
			continue
		}
		n, problem := secondsValue(s.raw, s.limit)
		if problem != "" {
			problems = append(problems, label+" "+s.name+" "+problem)
			continue
		}
		*s.dest = &n
	}

	if len(p.Data.Endpoint) > 0 {
		endpoint := ""
		if !isJSONNull(p.Data.Endpoint) {
			err := json.Unmarshal(p.Data.Endpoint, &endpoint)
			switch {
			case err != nil:
				problems = append(problems, label+" endpoint must be a string")
			case len(endpoint) > maxHealthCheckEndpointLength:
				problems = append(problems, fmt.Sprintf("%s endpoint is too long (maximum is %d characters)", label, maxHealthCheckEndpointLength))
			case !healthCheckEndpointPath.MatchString(endpoint):
				problems = append(problems, label+" endpoint must be a valid URI path")
			}
		}
		change.Endpoint = &endpoint
	}
	return change, problems
}

// secondsValue reads a duration in whole seconds from 1 to limit. null is
// 0, which clears the value. It returns the problem, or "".
func secondsValue(raw json.RawMessage, limit int) (int, string) {
	if isJSONNull(raw) {
		return 0, ""
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return 0, "is not a number"
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	switch {
	case err != nil && strings.ContainsAny(n.String(), ".eE"):
		return 0, "must be an integer"
	case err != nil:
		return 0, fmt.Sprintf("must be less than or equal to %d", limit)
	case v < 1:
		return 0, "must be greater than or equal to 1"
	case v > int64(limit):
		return 0, fmt.Sprintf("must be less than or equal to %d", limit)
	}
	return int(v), ""
}

// apply merges the change into p as Cloud Controller does: a new type
// other than http drops the endpoint, and an http check without an
// endpoint checks defaultHealthCheckEndpoint.
func (c processChange) apply(p *store.Process) {
	if c.CommandSet {
		p.Command = c.Command
	}
	c.HealthCheck.apply(&p.HealthCheck)
	c.Readiness.apply(&p.Readiness)
}

func (c healthCheckChange) apply(h *store.HealthCheck) {
	if c.Type != nil {
		h.Type = *c.Type
		if h.Type != store.HealthCheckHTTP {
			h.Endpoint = ""
		}
	}
	if c.Endpoint != nil && (c.Type == nil || *c.Type == store.HealthCheckHTTP) {
		h.Endpoint = *c.Endpoint
	}
	if c.Timeout != nil {
		h.Timeout = *c.Timeout
	}
	if c.InvocationTimeout != nil {
		h.InvocationTimeout = *c.InvocationTimeout
	}
	if c.Interval != nil {
		h.Interval = *c.Interval
	}
	if h.Type == store.HealthCheckHTTP && h.Endpoint == "" {
		h.Endpoint = defaultHealthCheckEndpoint
	}
}

// auditRequest is the data.request of audit.app.process.update, with the
// command hidden as Cloud Controller hides it.
func (p processUpdatePayload) auditRequest() map[string]any {
	request := map[string]any{}
	if len(p.Command) > 0 {
		request["command"] = privateDataHidden
	}
	for key, check := range map[string]*healthCheckPayload{"health_check": p.HealthCheck, "readiness_health_check": p.ReadinessHealthCheck} {
		if check == nil {
			continue
		}
		entry := map[string]any{}
		if check.Type != nil {
			entry["type"] = *check.Type
		}
		if check.Data != nil {
			data := map[string]any{}
			for name, raw := range map[string]json.RawMessage{"timeout": check.Data.Timeout,
				"invocation_timeout": check.Data.InvocationTimeout, "interval": check.Data.Interval, "endpoint": check.Data.Endpoint} {
				if len(raw) > 0 {
					data[name] = raw
				}
			}
			entry["data"] = data
		}
		request[key] = entry
	}
	if p.Metadata != nil {
		request["metadata"] = metadataRequest(p.Metadata)
	}
	return request
}

// processScalePayload is the body of the scale action. Every field is
// optional. The values are raw so problems get Cloud Controller's
// messages.
type processScalePayload struct {
	Instances    json.RawMessage `json:"instances"`
	MemoryInMB   json.RawMessage `json:"memory_in_mb"`
	DiskInMB     json.RawMessage `json:"disk_in_mb"`
	LogRateLimit json.RawMessage `json:"log_rate_limit_in_bytes_per_second"`
}

// processScale is a validated scale request. Nil fields stay as they are.
type processScale struct {
	Instances    *int64
	MemoryMB     *int64
	DiskMB       *int64
	LogRateLimit *int64
	// CPUMillicores comes only from a manifest's cpu key, a Ferry
	// extension; 0 derives the CPU limit from memory again.
	CPUMillicores *int64
}

// scaleProcess serves POST /v3/processes/:guid/actions/scale and POST
// /v3/apps/:guid/processes/:type/actions/scale, which cf scale sends. It
// returns 202 with the process, as Cloud Controller does, because the
// runtime converges on the new scale afterwards.
func (a *API) scaleProcess(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, p, err := a.processForManage(r)
	if err != nil {
		return nil, err
	}
	if err := a.requireFlag(ctx, flagAppScaling); err != nil {
		return nil, err
	}
	var payload processScalePayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	scale, request, err := processScaleOf(payload)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		current, err := store.LockProcess(ctx, tx, p.GUID)
		if err != nil {
			return err
		}
		before, err := store.ReadAppDemand(ctx, tx, app.GUID)
		if err != nil {
			return err
		}
		previous := current
		scale.apply(&current)
		if p, err = store.SaveProcess(ctx, tx, current, store.MetadataPatch{}); err != nil {
			return err
		}
		if err := recordScaleUsage(ctx, tx, previous, p); err != nil {
			return err
		}
		if err := checkAppQuotas(ctx, tx, before); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, processEvent(actor, "audit.app.process.scale", app, p, request))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProcessNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("process scaled", "app_guid", app.GUID, "process_guid", p.GUID, "instances", p.Instances)
	return &response{status: http.StatusAccepted, body: a.presentProcess(p, "")}, nil
}

// processScaleOf validates a scale payload with Cloud Controller's rules
// and messages, and returns the scale and its audit data.request.
func processScaleOf(payload processScalePayload) (processScale, map[string]any, error) {
	var scale processScale
	request := map[string]any{}
	var problems []string
	for _, field := range []struct {
		raw   json.RawMessage
		name  string
		label string
		min   int64
		max   int64
		dest  **int64
	}{
		{payload.Instances, "instances", "Instances", 0, maxDBInteger, &scale.Instances},
		{payload.MemoryInMB, "memory_in_mb", "Memory in mb", 1, maxDBInteger, &scale.MemoryMB},
		{payload.DiskInMB, "disk_in_mb", "Disk in mb", 1, maxDBInteger, &scale.DiskMB},
		{payload.LogRateLimit, "log_rate_limit_in_bytes_per_second", "Log rate limit in bytes per second", -1, 1<<63 - 1, &scale.LogRateLimit},
	} {
		if len(field.raw) == 0 || isJSONNull(field.raw) {
			continue
		}
		n, problem := integerInRange(field.raw, field.min, field.max)
		if problem != "" {
			problems = append(problems, field.label+" "+problem)
			continue
		}
		*field.dest = &n
		request[field.name] = n
	}
	if len(problems) > 0 {
		return processScale{}, nil, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return scale, request, nil
}

// integerInRange reads a JSON integer from min to max and returns Rails'
// numericality message for anything else.
func integerInRange(raw json.RawMessage, min, max int64) (int64, string) {
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		return 0, "is not a number"
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	switch {
	case err != nil && strings.ContainsAny(n.String(), ".eE"):
		return 0, "must be an integer"
	case err != nil || v > max:
		return 0, fmt.Sprintf("must be less than or equal to %d", max)
	case v < min && min == 1:
		return 0, "must be greater than 0"
	case v < min:
		return 0, fmt.Sprintf("must be greater than or equal to %d", min)
	}
	return v, ""
}

func (s processScale) apply(p *store.Process) {
	if s.Instances != nil {
		p.Instances = int(*s.Instances)
	}
	if s.MemoryMB != nil {
		p.MemoryMB = *s.MemoryMB
	}
	if s.DiskMB != nil {
		p.DiskMB = *s.DiskMB
	}
	if s.LogRateLimit != nil {
		p.LogRateLimit = *s.LogRateLimit
	}
	if s.CPUMillicores != nil {
		p.CPUMillicores = int(*s.CPUMillicores)
	}
}

// listProcessSidecars serves GET /v3/processes/:guid/sidecars, which cf
// app reads for every process. Ferry runs no sidecars, so the list is
// empty.
func (a *API) listProcessSidecars(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, listSpec{orderBy: []string{"created_at", "updated_at"}})
	if err != nil {
		return nil, err
	}
	if _, _, err := a.processOfPath(r); err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []any{})), nil
}

// listAppSidecars serves GET /v3/apps/:guid/sidecars: an empty list, as
// for processes.
func (a *API) listAppSidecars(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, listSpec{orderBy: []string{"created_at", "updated_at"}})
	if err != nil {
		return nil, err
	}
	if _, err := a.appForRead(r, pathParam(r, "guid")); err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []any{})), nil
}

// processEvent builds an audit event of actor on the process p of app.
// Cloud Controller records process events on the app, with the process in
// the data. request becomes data.request when it is not nil.
func processEvent(actor *auth.Actor, eventType string, app store.App, p store.Process, request map[string]any) store.AuditEvent {
	data := map[string]any{"process_guid": p.GUID, "process_type": p.Type}
	if request != nil {
		data["request"] = request
	}
	return appEvent(actor, eventType, app, data)
}

type processJSON struct {
	GUID                 string                 `json:"guid"`
	CreatedAt            string                 `json:"created_at"`
	UpdatedAt            string                 `json:"updated_at"`
	Version              string                 `json:"version"`
	Type                 string                 `json:"type"`
	Command              *string                `json:"command"`
	Instances            int                    `json:"instances"`
	MemoryInMB           int64                  `json:"memory_in_mb"`
	DiskInMB             int64                  `json:"disk_in_mb"`
	LogRateLimit         int64                  `json:"log_rate_limit_in_bytes_per_second"`
	CPUInMillicores      *int                   `json:"cpu_in_millicores"`
	HealthCheck          healthCheckJSON        `json:"health_check"`
	ReadinessHealthCheck readinessCheckJSON     `json:"readiness_health_check"`
	ProcessInstances     *[]processInstanceJSON `json:"process_instances,omitempty"`
	Relationships        processRelationships   `json:"relationships"`
	Metadata             metadataJSON           `json:"metadata"`
	Links                processLinks           `json:"links"`
}

type healthCheckJSON struct {
	Type string                `json:"type"`
	Data livenessCheckDataJSON `json:"data"`
}

type readinessCheckJSON struct {
	Type string                 `json:"type"`
	Data readinessCheckDataJSON `json:"data"`
}

// livenessCheckDataJSON holds the settings of a liveness health check.
// Unset durations are null, and only http checks have an endpoint.
type livenessCheckDataJSON struct {
	Timeout           *int    `json:"timeout"`
	InvocationTimeout *int    `json:"invocation_timeout"`
	Interval          *int    `json:"interval"`
	Endpoint          *string `json:"endpoint,omitempty"`
}

// readinessCheckDataJSON is livenessCheckDataJSON without a timeout:
// readiness is checked for as long as an instance runs.
type readinessCheckDataJSON struct {
	InvocationTimeout *int    `json:"invocation_timeout"`
	Interval          *int    `json:"interval"`
	Endpoint          *string `json:"endpoint,omitempty"`
}

type processRelationships struct {
	App toOne `json:"app"`
}

type processLinks struct {
	Self  link `json:"self"`
	Scale link `json:"scale"`
	App   link `json:"app"`
	Space link `json:"space"`
	Stats link `json:"stats"`
}

// presentProcess renders p. A non-empty hidden replaces the command, for
// lists and for actors who may not read the app's secrets. Its
// cpu_in_millicores, a Ferry extension, is the process's own CPU limit,
// or null when Ferry derives it from memory. A process
// without a command of its own shows its droplet's, and null when the app
// has no droplet yet.
func (a *API) presentProcess(p store.Process, hidden string) processJSON {
	self := a.url("/v3/processes/", p.GUID)
	body := processJSON{
		GUID:            p.GUID,
		CreatedAt:       timestamp(p.CreatedAt),
		UpdatedAt:       timestamp(p.UpdatedAt),
		Version:         p.Version,
		Type:            p.Type,
		Command:         nullable(p.EffectiveCommand()),
		Instances:       p.Instances,
		MemoryInMB:      p.MemoryMB,
		DiskInMB:        p.DiskMB,
		LogRateLimit:    p.LogRateLimit,
		CPUInMillicores: nullableInt(p.CPUMillicores),
		HealthCheck: healthCheckJSON{Type: p.HealthCheck.Type, Data: livenessCheckDataJSON{
			Timeout:           nullableInt(p.HealthCheck.Timeout),
			InvocationTimeout: nullableInt(p.HealthCheck.InvocationTimeout),
			Interval:          nullableInt(p.HealthCheck.Interval),
		}},
		ReadinessHealthCheck: readinessCheckJSON{Type: p.Readiness.Type, Data: readinessCheckDataJSON{
			InvocationTimeout: nullableInt(p.Readiness.InvocationTimeout),
			Interval:          nullableInt(p.Readiness.Interval),
		}},
		Relationships: processRelationships{App: relTo(p.AppGUID)},
		Metadata:      presentMetadata(p.Labels, p.Annotations),
		Links: processLinks{
			Self:  link{Href: self},
			Scale: link{Href: self + "/actions/scale", Method: http.MethodPost},
			App:   link{Href: a.url("/v3/apps/", p.AppGUID)},
			Space: link{Href: a.url("/v3/spaces/", p.SpaceGUID)},
			Stats: link{Href: self + "/stats"},
		},
	}
	if hidden != "" {
		body.Command = &hidden
	}
	if p.HealthCheck.Type == store.HealthCheckHTTP {
		body.HealthCheck.Data.Endpoint = &p.HealthCheck.Endpoint
	}
	if p.Readiness.Type == store.HealthCheckHTTP {
		body.ReadinessHealthCheck.Data.Endpoint = &p.Readiness.Endpoint
	}
	return body
}

// nullableInt returns nil for 0, so JSON renders null.
func nullableInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
