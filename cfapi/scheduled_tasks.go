package cfapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/manifest"
	"github.com/ferrycf/ferry/store"
)

// Scheduled tasks are a Ferry extension with no Cloud Controller
// counterpart: a command of an app that runs on a cron schedule, each run
// as a task. The controller writes one Kubernetes CronJob per scheduled
// task.

// maxScheduledTaskNameLength bounds names, as Cloud Controller bounds task
// names.
const maxScheduledTaskNameLength = 255

// minStartingDeadline is the smallest starting deadline accepted.
const minStartingDeadline = manifest.MinStartingDeadlineSeconds

func (a *API) scheduledTaskRoutes() []route {
	const single = "/v3/scheduled_tasks/{guid}"
	return []route{
		{method: http.MethodPost, path: "/v3/apps/{guid}/scheduled_tasks", handler: a.createScheduledTask},
		{method: http.MethodGet, path: "/v3/apps/{guid}/scheduled_tasks", handler: a.listAppScheduledTasks},
		{method: http.MethodGet, path: "/v3/scheduled_tasks", handler: a.listScheduledTasks},
		{method: http.MethodGet, path: single, handler: a.getScheduledTask},
		{method: http.MethodPatch, path: single, handler: a.updateScheduledTask},
		{method: http.MethodDelete, path: single, handler: a.deleteScheduledTask},
	}
}

func errScheduledTaskNotFound() error { return apierr.NotFound("Scheduled task") }

func errScheduledTaskNameTaken(name string) error {
	return apierr.UniquenessError(fmt.Sprintf("Scheduled task name '%s' is already taken by another scheduled task of the app", shorten(name)))
}

// scheduledTaskPayload is the body of a create or an update. Numbers and
// nullable values are raw, so each problem is reported with its field's
// name and null can clear time_zone and both deadlines.
type scheduledTaskPayload struct {
	Name                   *string                `json:"name"`
	Command                *string                `json:"command"`
	Template               *scheduledTaskTemplate `json:"template"`
	Schedule               *string                `json:"schedule"`
	TimeZone               json.RawMessage        `json:"time_zone"`
	ConcurrencyPolicy      *string                `json:"concurrency_policy"`
	SuccessfulHistoryLimit json.RawMessage        `json:"successful_history_limit"`
	FailedHistoryLimit     json.RawMessage        `json:"failed_history_limit"`
	DeadlineSeconds        json.RawMessage        `json:"deadline_seconds"`
	StartingDeadline       json.RawMessage        `json:"starting_deadline_seconds"`
	Suspended              *bool                  `json:"suspended"`
	MemoryInMB             json.RawMessage        `json:"memory_in_mb"`
	DiskInMB               json.RawMessage        `json:"disk_in_mb"`
	Metadata               *metadataPayload       `json:"metadata"`
}

// scheduledTaskTemplate is template.process.guid: a process of the app
// whose command and limits a new scheduled task copies.
type scheduledTaskTemplate struct {
	Process *struct {
		GUID string `json:"guid"`
	} `json:"process"`
}

// scheduledTaskChange is a validated payload. Nil fields stay as they are
// on update and take the defaults on create.
type scheduledTaskChange struct {
	Name                   *string
	Command                *string
	TemplateProcessGUID    string
	Schedule               *string
	TimeZone               *string
	ConcurrencyPolicy      *string
	SuccessfulHistoryLimit *int
	FailedHistoryLimit     *int
	DeadlineSeconds        *int64
	StartingDeadline       *int64
	Suspended              *bool
	MemoryMB               *int64
	DiskMB                 *int64
	Metadata               store.MetadataPatch
}

// scheduledTaskChangeOf validates payload and reports every problem in
// one 422. creating allows template, which only a create reads.
func scheduledTaskChangeOf(payload scheduledTaskPayload, creating bool) (scheduledTaskChange, error) {
	var change scheduledTaskChange
	var problems []string

	if payload.Name != nil {
		name := *payload.Name
		if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > maxScheduledTaskNameLength {
			problems = append(problems, fmt.Sprintf("Name must be between 1 and %d characters", maxScheduledTaskNameLength))
		} else {
			change.Name = &name
		}
	}
	if payload.Command != nil {
		command := *payload.Command
		if strings.TrimSpace(command) == "" || utf8.RuneCountInString(command) > maxCommandLength {
			problems = append(problems, fmt.Sprintf("Command must be between 1 and %d characters", maxCommandLength))
		} else {
			change.Command = &command
		}
	}
	if payload.Template != nil {
		switch {
		case !creating:
			problems = append(problems, "Template can only be set when the scheduled task is created")
		case payload.Template.Process == nil || payload.Template.Process.GUID == "":
			problems = append(problems, "Template must be an object with process.guid")
		default:
			change.TemplateProcessGUID = payload.Template.Process.GUID
		}
	}
	if payload.Schedule != nil {
		if problem := manifest.ScheduleProblem(*payload.Schedule); problem != "" {
			problems = append(problems, "Schedule "+problem)
		} else {
			schedule := strings.TrimSpace(*payload.Schedule)
			change.Schedule = &schedule
		}
	}
	problems = timeZoneChange(payload.TimeZone, &change, problems)
	if payload.ConcurrencyPolicy != nil {
		if problem := manifest.ConcurrencyPolicyProblem(*payload.ConcurrencyPolicy); problem != "" {
			problems = append(problems, "Concurrency_policy "+problem)
		} else {
			change.ConcurrencyPolicy = payload.ConcurrencyPolicy
		}
	}
	problems = limitChange(payload.SuccessfulHistoryLimit, "Successful_history_limit", &change.SuccessfulHistoryLimit, problems)
	problems = limitChange(payload.FailedHistoryLimit, "Failed_history_limit", &change.FailedHistoryLimit, problems)
	problems = secondsChange(payload.DeadlineSeconds, "Deadline_seconds", 1, &change.DeadlineSeconds, problems)
	problems = secondsChange(payload.StartingDeadline, "Starting_deadline_seconds", minStartingDeadline,
		&change.StartingDeadline, problems)
	change.Suspended = payload.Suspended
	problems = megabytesChange(payload.MemoryInMB, "Memory_in_mb", &change.MemoryMB, problems)
	problems = megabytesChange(payload.DiskInMB, "Disk_in_mb", &change.DiskMB, problems)

	if err := validateMetadata(payload.Metadata); err != nil {
		return scheduledTaskChange{}, err
	}
	if payload.Metadata != nil {
		change.Metadata = store.MetadataPatch{Labels: payload.Metadata.Labels, Annotations: payload.Metadata.Annotations}
	}
	if len(problems) > 0 {
		return scheduledTaskChange{}, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return change, nil
}

// timeZoneChange reads time_zone. Null or "" clears it.
func timeZoneChange(raw json.RawMessage, change *scheduledTaskChange, problems []string) []string {
	if len(raw) == 0 {
		return problems
	}
	if isJSONNull(raw) {
		change.TimeZone = new(string)
		return problems
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return append(problems, "Time_zone must be a string")
	}
	if name != "" {
		if problem := manifest.TimeZoneProblem(name); problem != "" {
			return append(problems, "Time_zone "+problem)
		}
	}
	change.TimeZone = &name
	return problems
}

// secondsChange reads a nullable number of seconds of at least min. Null
// clears it, which *dst holds as 0.
func secondsChange(raw json.RawMessage, field string, min int64, dst **int64, problems []string) []string {
	if len(raw) == 0 {
		return problems
	}
	if isJSONNull(raw) {
		*dst = new(int64)
		return problems
	}
	v, problem := integerInRange(raw, min, maxDBInteger)
	if problem != "" {
		return append(problems, field+" "+problem)
	}
	*dst = &v
	return problems
}

// limitChange reads a history limit, a whole number of at least 0.
func limitChange(raw json.RawMessage, field string, dst **int, problems []string) []string {
	if len(raw) == 0 {
		return problems
	}
	v, problem := integerInRange(raw, 0, maxDBInteger)
	if problem != "" {
		return append(problems, field+" "+problem)
	}
	n := int(v)
	*dst = &n
	return problems
}

// megabytesChange reads memory_in_mb or disk_in_mb, at least 1.
func megabytesChange(raw json.RawMessage, field string, dst **int64, problems []string) []string {
	if len(raw) == 0 {
		return problems
	}
	v, problem := integerInRange(raw, 1, maxDBInteger)
	if problem != "" {
		return append(problems, field+" "+problem)
	}
	*dst = &v
	return problems
}

// apply merges the change into t.
func (c scheduledTaskChange) apply(t *store.ScheduledTask) {
	for _, s := range []struct {
		dst *string
		src *string
	}{{&t.Name, c.Name}, {&t.Command, c.Command}, {&t.Schedule, c.Schedule}, {&t.TimeZone, c.TimeZone},
		{&t.ConcurrencyPolicy, c.ConcurrencyPolicy}} {
		if s.src != nil {
			*s.dst = *s.src
		}
	}
	if c.SuccessfulHistoryLimit != nil {
		t.SuccessfulHistoryLimit = *c.SuccessfulHistoryLimit
	}
	if c.FailedHistoryLimit != nil {
		t.FailedHistoryLimit = *c.FailedHistoryLimit
	}
	if c.DeadlineSeconds != nil {
		t.DeadlineSeconds = *c.DeadlineSeconds
	}
	if c.StartingDeadline != nil {
		t.StartingDeadlineSeconds = *c.StartingDeadline
	}
	if c.Suspended != nil {
		t.Suspended = *c.Suspended
	}
	if c.MemoryMB != nil {
		t.MemoryMB = *c.MemoryMB
	}
	if c.DiskMB != nil {
		t.DiskMB = *c.DiskMB
	}
}

// newScheduledTask returns the scheduled task a create makes of change
// for app: the defaults, then template's command and limits when a
// template process is given, then the change. Name, command and schedule
// are required.
func newScheduledTask(app store.App, change scheduledTaskChange, template *store.Process) (store.ScheduledTask, error) {
	t := store.ScheduledTask{
		AppGUID: app.GUID, SpaceGUID: app.SpaceGUID, ConcurrencyPolicy: store.ConcurrencyAllow,
		SuccessfulHistoryLimit: store.DefaultSuccessfulHistoryLimit, FailedHistoryLimit: store.DefaultFailedHistoryLimit,
		MemoryMB: store.DefaultProcessMemoryMB, DiskMB: store.DefaultProcessDiskMB,
	}
	if template != nil {
		t.TemplateProcessGUID = template.GUID
		t.Command = template.EffectiveCommand()
		t.MemoryMB, t.DiskMB = template.MemoryMB, template.DiskMB
	}
	change.apply(&t)
	if change.Metadata.Labels != nil || change.Metadata.Annotations != nil {
		t.Labels, t.Annotations = setValues(change.Metadata.Labels), setValues(change.Metadata.Annotations)
	}

	var problems []string
	if t.Name == "" {
		problems = append(problems, "Name is required")
	}
	if t.Command == "" && template != nil {
		problems = append(problems, fmt.Sprintf("Command is required: the template process '%s' has no command until the app has a droplet", template.Type))
	} else if t.Command == "" {
		problems = append(problems, "Command is required, or template.process.guid of a process whose command to run")
	}
	if t.Schedule == "" {
		problems = append(problems, "Schedule is required; use "+manifest.ScheduleForm)
	}
	if len(problems) > 0 {
		return store.ScheduledTask{}, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return t, nil
}

// setValues keeps the keys of a create's metadata that have a value,
// because a null value means nothing on create.
func setValues(patch map[string]*string) map[string]string {
	out := map[string]string{}
	for key, value := range patch {
		if value != nil {
			out[key] = *value
		}
	}
	return out
}

// createScheduledTask serves POST /v3/apps/:guid/scheduled_tasks. Admins
// and space developers may create scheduled tasks.
func (a *API) createScheduledTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForWrite(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	var payload scheduledTaskPayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	change, err := scheduledTaskChangeOf(payload, true)
	if err != nil {
		return nil, err
	}

	var template *store.Process
	if change.TemplateProcessGUID != "" {
		p, err := a.store.Process(ctx, visibility(r), change.TemplateProcessGUID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.AppGUID != app.GUID) {
			return nil, apierr.UnprocessableEntity("Template process '" + shorten(change.TemplateProcessGUID) + "' is not a process of the app")
		}
		if err != nil {
			return nil, err
		}
		template = &p
	}
	// NOTE: no quota is checked here. The namespace's ResourceQuota admits
	// or rejects each run's pod when the run starts.
	scheduled, err := newScheduledTask(app, change, template)
	if err != nil {
		return nil, err
	}

	name := scheduled.Name
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if scheduled, err = store.CreateScheduledTask(ctx, tx, scheduled); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, scheduledTaskEvent(actor, "audit.app.scheduled_task.create", app, scheduled, payload.auditRequest()))
	})
	if store.IsUnique(err, store.ConstraintScheduledTaskName) {
		return nil, errScheduledTaskNameTaken(name)
	}
	var fk *store.ForeignKeyError
	if errors.As(err, &fk) {
		return nil, errAppNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("scheduled task created", "app_guid", app.GUID, "scheduled_task_guid", scheduled.GUID)
	return created(a.presentScheduledTask(scheduled, "")), nil
}

var scheduledTaskListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "app_guids", "space_guids", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "name"},
})

// appScheduledTaskListSpec is scheduledTaskListSpec without the filters
// the app of the path already fixes.
var appScheduledTaskListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "label_selector"},
	orderBy: []string{"created_at", "updated_at", "name"},
})

// listScheduledTasks serves GET /v3/scheduled_tasks.
func (a *API) listScheduledTasks(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, scheduledTaskListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := scheduledTaskFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = q.filter("app_guids")
	filter.SpaceGUIDs = q.filter("space_guids")
	filter.OrganizationGUIDs = q.filter("organization_guids")
	return a.scheduledTaskList(r, q, filter)
}

// listAppScheduledTasks serves GET /v3/apps/:guid/scheduled_tasks.
func (a *API) listAppScheduledTasks(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appScheduledTaskListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := scheduledTaskFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.scheduledTaskList(r, q, filter)
}

func scheduledTaskFilterOf(q *listQuery) (store.ScheduledTaskFilter, error) {
	common, err := commonFilter(q)
	if err != nil {
		return store.ScheduledTaskFilter{}, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.ScheduledTaskFilter{}, err
	}
	return store.ScheduledTaskFilter{CommonFilter: common, Names: q.filter("names"), LabelSelector: selector}, nil
}

// scheduledTaskList renders one page. Commands are hidden in lists, as
// Cloud Controller hides task and process commands there.
func (a *API) scheduledTaskList(r *http.Request, q *listQuery, filter store.ScheduledTaskFilter) (*response, error) {
	tasks, total, err := a.store.ScheduledTasks(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]scheduledTaskJSON, len(tasks))
	for i, t := range tasks {
		resources[i] = a.presentScheduledTask(t, privateDataHiddenInLists)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// scheduledTaskOfPath returns the scheduled task of the path and its app,
// if the actor may see them.
func (a *API) scheduledTaskOfPath(r *http.Request) (store.ScheduledTask, store.App, error) {
	ctx := r.Context()
	if err := requireRead(actorOf(r)); err != nil {
		return store.ScheduledTask{}, store.App{}, err
	}
	t, err := a.store.ScheduledTask(ctx, visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.ScheduledTask{}, store.App{}, errScheduledTaskNotFound()
	}
	if err != nil {
		return store.ScheduledTask{}, store.App{}, err
	}
	app, err := a.store.App(ctx, visibility(r), t.AppGUID)
	if errors.Is(err, store.ErrNotFound) {
		return store.ScheduledTask{}, store.App{}, errScheduledTaskNotFound()
	}
	return t, app, err
}

// scheduledTaskForWrite is scheduledTaskOfPath for admins and space
// developers of the app's space.
func (a *API) scheduledTaskForWrite(r *http.Request) (store.ScheduledTask, store.App, error) {
	t, app, err := a.scheduledTaskOfPath(r)
	if err != nil {
		return store.ScheduledTask{}, store.App{}, err
	}
	if err := a.authorizeSpaceRole(r.Context(), actorOf(r), app.OrgGUID, app.SpaceGUID, roleSpaceDeveloper); err != nil {
		return store.ScheduledTask{}, store.App{}, err
	}
	return t, app, nil
}

// getScheduledTask serves GET /v3/scheduled_tasks/:guid. The command is
// shown to those who may read the app's secrets, as for processes.
func (a *API) getScheduledTask(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	t, app, err := a.scheduledTaskOfPath(r)
	if err != nil {
		return nil, err
	}
	secrets, err := a.canReadAppSecrets(r.Context(), actorOf(r), app)
	if err != nil {
		return nil, err
	}
	hidden := ""
	if !secrets {
		hidden = privateDataHidden
	}
	return ok(a.presentScheduledTask(t, hidden)), nil
}

// updateScheduledTask serves PATCH /v3/scheduled_tasks/:guid. Suspending
// and resuming is a PATCH of suspended.
func (a *API) updateScheduledTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	t, app, err := a.scheduledTaskForWrite(r)
	if err != nil {
		return nil, err
	}
	var payload scheduledTaskPayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	change, err := scheduledTaskChangeOf(payload, false)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		current, err := store.LockScheduledTask(ctx, tx, t.GUID)
		if err != nil {
			return err
		}
		change.apply(&current)
		if t, err = store.SaveScheduledTask(ctx, tx, current, change.Metadata); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, scheduledTaskEvent(actor, "audit.app.scheduled_task.update", app, t, payload.auditRequest()))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errScheduledTaskNotFound()
	}
	if store.IsUnique(err, store.ConstraintScheduledTaskName) && change.Name != nil {
		return nil, errScheduledTaskNameTaken(*change.Name)
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("scheduled task updated", "app_guid", app.GUID, "scheduled_task_guid", t.GUID,
		"suspended", t.Suspended)
	return ok(a.presentScheduledTask(t, "")), nil
}

// deleteScheduledTask serves DELETE /v3/scheduled_tasks/:guid. It deletes
// the row at once and returns 204. The controller then deletes the
// CronJob, and Kubernetes deletes its Jobs. Recorded runs stay as tasks.
func (a *API) deleteScheduledTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	t, app, err := a.scheduledTaskForWrite(r)
	if err != nil {
		return nil, err
	}
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.DeleteScheduledTask(ctx, tx, t.GUID); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, scheduledTaskEvent(actor, "audit.app.scheduled_task.delete", app, t, nil))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errScheduledTaskNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("scheduled task deleted", "app_guid", app.GUID, "scheduled_task_guid", t.GUID)
	return noContent(), nil
}

// auditRequest returns the request for an audit event, with the command
// hidden because it may contain secrets.
func (p scheduledTaskPayload) auditRequest() map[string]any {
	request := map[string]any{}
	if p.Name != nil {
		request["name"] = *p.Name
	}
	if p.Command != nil {
		request["command"] = privateDataHidden
	}
	if p.Schedule != nil {
		request["schedule"] = *p.Schedule
	}
	if p.Suspended != nil {
		request["suspended"] = *p.Suspended
	}
	if p.ConcurrencyPolicy != nil {
		request["concurrency_policy"] = *p.ConcurrencyPolicy
	}
	return request
}

// scheduledTaskEvent builds an audit event on app about its scheduled
// task t, which Ferry records on the app as Cloud Controller records task
// events.
func scheduledTaskEvent(actor *auth.Actor, eventType string, app store.App, t store.ScheduledTask, request map[string]any) store.AuditEvent {
	data := map[string]any{"scheduled_task_guid": t.GUID, "name": t.Name}
	if request != nil {
		data["request"] = request
	}
	return appEvent(actor, eventType, app, data)
}

type scheduledTaskJSON struct {
	GUID                   string                     `json:"guid"`
	CreatedAt              string                     `json:"created_at"`
	UpdatedAt              string                     `json:"updated_at"`
	Name                   string                     `json:"name"`
	Command                string                     `json:"command"`
	Schedule               string                     `json:"schedule"`
	TimeZone               *string                    `json:"time_zone"`
	ConcurrencyPolicy      string                     `json:"concurrency_policy"`
	SuccessfulHistoryLimit int                        `json:"successful_history_limit"`
	FailedHistoryLimit     int                        `json:"failed_history_limit"`
	DeadlineSeconds        *int64                     `json:"deadline_seconds"`
	StartingDeadline       *int64                     `json:"starting_deadline_seconds"`
	Suspended              bool                       `json:"suspended"`
	MemoryInMB             int64                      `json:"memory_in_mb"`
	DiskInMB               int64                      `json:"disk_in_mb"`
	Template               *scheduledTaskTemplateJSON `json:"template"`
	Relationships          scheduledTaskRelationships `json:"relationships"`
	Metadata               metadataJSON               `json:"metadata"`
	Links                  scheduledTaskLinks         `json:"links"`
}

type scheduledTaskTemplateJSON struct {
	Process guidRef `json:"process"`
}

type scheduledTaskRelationships struct {
	App toOne `json:"app"`
}

type scheduledTaskLinks struct {
	Self  link `json:"self"`
	App   link `json:"app"`
	Space link `json:"space"`
	// Tasks lists the app's tasks of the scheduled task's name, which
	// include its runs.
	Tasks link `json:"tasks"`
}

// presentScheduledTask renders t. A non-empty hidden replaces the command.
func (a *API) presentScheduledTask(t store.ScheduledTask, hidden string) scheduledTaskJSON {
	body := scheduledTaskJSON{
		GUID:                   t.GUID,
		CreatedAt:              timestamp(t.CreatedAt),
		UpdatedAt:              timestamp(t.UpdatedAt),
		Name:                   t.Name,
		Command:                t.Command,
		Schedule:               t.Schedule,
		TimeZone:               nullable(t.TimeZone),
		ConcurrencyPolicy:      t.ConcurrencyPolicy,
		SuccessfulHistoryLimit: t.SuccessfulHistoryLimit,
		FailedHistoryLimit:     t.FailedHistoryLimit,
		Suspended:              t.Suspended,
		MemoryInMB:             t.MemoryMB,
		DiskInMB:               t.DiskMB,
		Relationships:          scheduledTaskRelationships{App: relTo(t.AppGUID)},
		Metadata:               presentMetadata(t.Labels, t.Annotations),
		Links: scheduledTaskLinks{
			Self:  link{Href: a.url("/v3/scheduled_tasks/", t.GUID)},
			App:   link{Href: a.url("/v3/apps/", t.AppGUID)},
			Space: link{Href: a.url("/v3/spaces/", t.SpaceGUID)},
			Tasks: link{Href: a.url("/v3/apps/", t.AppGUID, "/tasks?names=", url.QueryEscape(t.Name))},
		},
	}
	if hidden != "" {
		body.Command = hidden
	}
	if t.DeadlineSeconds > 0 {
		deadline := t.DeadlineSeconds
		body.DeadlineSeconds = &deadline
	}
	if t.StartingDeadlineSeconds > 0 {
		deadline := t.StartingDeadlineSeconds
		body.StartingDeadline = &deadline
	}
	if t.TemplateProcessGUID != "" {
		body.Template = &scheduledTaskTemplateJSON{Process: guidRef{GUID: t.TemplateProcessGUID}}
	}
	return body
}

// applyManifestScheduledTasks creates or updates, through tx, each
// scheduled task of the manifest's scheduled-tasks key by name, and
// records their audit events. Scheduled tasks the manifest does not name
// stay as they are.
func (a *API) applyManifestScheduledTasks(ctx context.Context, tx *sql.Tx, actor *auth.Actor, app store.App, tasks []manifest.ScheduledTask) error {
	if len(tasks) == 0 {
		return nil
	}
	existing, err := store.AppScheduledTasks(ctx, tx, app.GUID)
	if err != nil {
		return err
	}
	byName := map[string]store.ScheduledTask{}
	for _, t := range existing {
		byName[t.Name] = t
	}

	for _, mt := range tasks {
		change := scheduledTaskChangeFromManifest(mt)
		request := map[string]any{"name": mt.Name, "schedule": mt.Schedule, "command": privateDataHidden}
		current, found := byName[mt.Name]
		if !found {
			t, err := newScheduledTask(app, change, nil)
			if err != nil {
				return err
			}
			if t, err = store.CreateScheduledTask(ctx, tx, t); err != nil {
				return err
			}
			if err := store.RecordAuditEvent(ctx, tx, scheduledTaskEvent(actor, "audit.app.scheduled_task.create", app, t, request)); err != nil {
				return err
			}
			continue
		}
		locked, err := store.LockScheduledTask(ctx, tx, current.GUID)
		if err != nil {
			return err
		}
		change.apply(&locked)
		saved, err := store.SaveScheduledTask(ctx, tx, locked, store.MetadataPatch{})
		if err != nil {
			return err
		}
		if err := store.RecordAuditEvent(ctx, tx, scheduledTaskEvent(actor, "audit.app.scheduled_task.update", app, saved, request)); err != nil {
			return err
		}
	}
	return nil
}

// scheduledTaskChangeFromManifest turns a validated manifest entry into a
// change. The manifest parser has checked every value.
func scheduledTaskChangeFromManifest(mt manifest.ScheduledTask) scheduledTaskChange {
	return scheduledTaskChange{
		Name: &mt.Name, Command: &mt.Command, Schedule: &mt.Schedule, TimeZone: mt.TimeZone,
		ConcurrencyPolicy: mt.ConcurrencyPolicy, SuccessfulHistoryLimit: mt.SuccessfulHistoryLimit,
		FailedHistoryLimit: mt.FailedHistoryLimit, DeadlineSeconds: mt.DeadlineSeconds,
		StartingDeadline: mt.StartingDeadlineSeconds, Suspended: mt.Suspended,
		MemoryMB: mt.MemoryMB, DiskMB: mt.DiskMB,
	}
}
