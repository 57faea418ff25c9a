package cfapi

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// maxTaskCommandLength is Cloud Controller's limit on a task's command.
const maxTaskCommandLength = 4096

// flagTaskCreation is the feature flag that lets non-admins create tasks.
const flagTaskCreation = "task_creation"

func (a *API) taskRoutes() []route {
	const base = "/v3/tasks"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listTasks},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getTask},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateTask},
		{method: http.MethodPost, path: base + "/{guid}/actions/cancel", handler: a.cancelTask},
		// Cloud Controller serves the cancel action under this path too,
		// and cf terminate-task (cf CLI v7 and v8) sends PUT to it.
		{method: http.MethodPut, path: base + "/{guid}/cancel", handler: a.cancelTask},
		{method: http.MethodGet, path: "/v3/apps/{guid}/tasks", handler: a.listAppTasks},
		{method: http.MethodPost, path: "/v3/apps/{guid}/tasks", handler: a.createTask},
	}
}

func errTaskNotFound() error { return apierr.NotFound("Task") }

// errTaskNeedsDroplet is Cloud Controller's 422 for a task of an app
// without a current droplet. cf run-task matches this detail and prints
// "App is not staged." instead.
func errTaskNeedsDroplet() error {
	return apierr.UnprocessableEntity("Task must have a droplet. Specify droplet or assign current droplet to app.")
}

// errTaskNotCancelable is Cloud Controller's 422 for canceling a task that
// has already finished.
func errTaskNotCancelable(state string) error {
	return &apierr.Error{Status: http.StatusUnprocessableEntity, Code: 10008, Title: "CF-UnprocessableEntity",
		Detail: "Task state is " + state + " and therefore cannot be canceled"}
}

// taskCreatePayload is the body of POST /v3/apps/:guid/tasks.
type taskCreatePayload struct {
	Command      *string `json:"command"`
	Name         *string `json:"name"`
	MemoryInMB   *int64  `json:"memory_in_mb"`
	DiskInMB     *int64  `json:"disk_in_mb"`
	LogRateLimit *int64  `json:"log_rate_limit_in_bytes_per_second"`
	DropletGUID  *string `json:"droplet_guid"`
	Template     *struct {
		Process *struct {
			GUID *string `json:"guid"`
		} `json:"process"`
	} `json:"template"`
	Metadata *metadataPayload `json:"metadata"`
}

// taskUpdatePayload is the body of PATCH /v3/tasks/:guid.
type taskUpdatePayload struct {
	Metadata *metadataPayload `json:"metadata"`
}

type taskJSON struct {
	GUID       string `json:"guid"`
	SequenceID int64  `json:"sequence_id"`
	Name       string `json:"name"`
	// Command is left out for actors who may not read the app's
	// environment, as Cloud Controller leaves it out. The cf CLI then
	// prints "[hidden]".
	Command       *string           `json:"command,omitempty"`
	State         string            `json:"state"`
	MemoryInMB    int64             `json:"memory_in_mb"`
	DiskInMB      int64             `json:"disk_in_mb"`
	LogRateLimit  int64             `json:"log_rate_limit_in_bytes_per_second"`
	Result        taskResultJSON    `json:"result"`
	DropletGUID   *string           `json:"droplet_guid"`
	Relationships taskRelationships `json:"relationships"`
	Metadata      metadataJSON      `json:"metadata"`
	CreatedAt     string            `json:"created_at"`
	UpdatedAt     string            `json:"updated_at"`
	Links         taskLinks         `json:"links"`
}

type taskResultJSON struct {
	FailureReason *string `json:"failure_reason"`
}

type taskRelationships struct {
	App toOne `json:"app"`
}

type taskLinks struct {
	Self    link  `json:"self"`
	App     link  `json:"app"`
	Cancel  link  `json:"cancel"`
	Droplet *link `json:"droplet,omitempty"`
}

// presentTask renders a task as Cloud Controller does. showCommand is
// whether the actor may read the app's environment.
func (a *API) presentTask(t store.Task, showCommand bool) taskJSON {
	body := taskJSON{
		GUID:          t.GUID,
		SequenceID:    t.SequenceID,
		Name:          t.Name,
		State:         t.State,
		MemoryInMB:    t.MemoryMB,
		DiskInMB:      t.DiskMB,
		LogRateLimit:  t.LogRateLimit,
		Result:        taskResultJSON{FailureReason: nullable(t.FailureReason)},
		DropletGUID:   nullable(t.DropletGUID),
		Relationships: taskRelationships{App: relTo(t.AppGUID)},
		Metadata:      presentMetadata(t.Labels, t.Annotations),
		CreatedAt:     timestamp(t.CreatedAt),
		UpdatedAt:     timestamp(t.UpdatedAt),
		Links: taskLinks{
			Self:   link{Href: a.url("/v3/tasks/", t.GUID)},
			App:    link{Href: a.url("/v3/apps/", t.AppGUID)},
			Cancel: link{Href: a.url("/v3/tasks/", t.GUID, "/actions/cancel"), Method: http.MethodPost},
		},
	}
	if showCommand {
		command := t.Command
		body.Command = &command
	}
	if t.DropletGUID != "" {
		body.Links.Droplet = &link{Href: a.url("/v3/droplets/", t.DropletGUID)}
	}
	return body
}

// commandVisibility reports, per space GUID, whether the actor of r may
// read the commands of tasks there: admins, read-only admins, and the
// space's developers and supporters, like the app's environment.
type commandVisibility struct {
	api     *API
	actor   *auth.Actor
	bySpace map[string]bool
}

func (a *API) commandVisibility(r *http.Request) *commandVisibility {
	return &commandVisibility{api: a, actor: actorOf(r), bySpace: map[string]bool{}}
}

func (c *commandVisibility) visible(ctx context.Context, t store.Task) (bool, error) {
	if seen, ok := c.bySpace[t.SpaceGUID]; ok {
		return seen, nil
	}
	allowed, err := c.api.hasGlobalSecretsOrSpaceRole(ctx, c.actor,
		store.App{GUID: t.AppGUID, SpaceGUID: t.SpaceGUID, OrgGUID: t.OrgGUID}, roleSpaceDeveloper, roleSpaceSupporter)
	if err != nil {
		return false, err
	}
	c.bySpace[t.SpaceGUID] = allowed
	return allowed, nil
}

// presentVisibleTask renders t with its command shown when the actor of r
// may read it.
func (a *API) presentVisibleTask(r *http.Request, t store.Task) (taskJSON, error) {
	show, err := a.commandVisibility(r).visible(r.Context(), t)
	if err != nil {
		return taskJSON{}, err
	}
	return a.presentTask(t, show), nil
}

var taskListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "states", "app_guids", "space_guids", "organization_guids", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

var appTaskListSpec = withCommonFilters(listSpec{
	filters: []string{"names", "states", "sequence_ids", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

func (a *API) listTasks(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, taskListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := taskFilterOf(q)
	if err != nil {
		return nil, err
	}
	return a.taskList(r, q, filter)
}

// listAppTasks serves GET /v3/apps/:guid/tasks, which cf tasks and cf
// terminate-task (with sequence_ids) read.
func (a *API) listAppTasks(r *http.Request) (*response, error) {
	q, err := parseListQuery(r, appTaskListSpec)
	if err != nil {
		return nil, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	filter, err := taskFilterOf(q)
	if err != nil {
		return nil, err
	}
	filter.AppGUIDs = []string{app.GUID}
	return a.taskList(r, q, filter)
}

func taskFilterOf(q *listQuery) (store.TaskFilter, error) {
	selector, err := labelSelectorOf(q)
	if err != nil {
		return store.TaskFilter{}, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return store.TaskFilter{}, err
	}
	f := store.TaskFilter{
		CommonFilter:      common,
		Names:             q.filter("names"),
		States:            q.filter("states"),
		AppGUIDs:          q.filter("app_guids"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
		LabelSelector:     selector,
	}
	if q.has("sequence_ids") {
		f.SequenceIDs = []int64{}
		for _, v := range q.filter("sequence_ids") {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return store.TaskFilter{}, apierr.BadQueryParameter("Sequence ids must be integers, not '" + shorten(v) + "'")
			}
			f.SequenceIDs = append(f.SequenceIDs, n)
		}
	}
	return f, nil
}

func (a *API) taskList(r *http.Request, q *listQuery, filter store.TaskFilter) (*response, error) {
	ctx := r.Context()
	tasks, total, err := a.store.Tasks(ctx, filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	commands := a.commandVisibility(r)
	resources := make([]taskJSON, len(tasks))
	for i, t := range tasks {
		show, err := commands.visible(ctx, t)
		if err != nil {
			return nil, err
		}
		resources[i] = a.presentTask(t, show)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// visibleTask reads the task of the path. An invisible task is a 404.
func (a *API) visibleTask(r *http.Request) (store.Task, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Task{}, err
	}
	t, err := a.store.Task(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Task{}, errTaskNotFound()
	}
	return t, err
}

func (a *API) getTask(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	t, err := a.visibleTask(r)
	if err != nil {
		return nil, err
	}
	body, err := a.presentVisibleTask(r, t)
	if err != nil {
		return nil, err
	}
	return ok(body), nil
}

// updateTask serves PATCH /v3/tasks/:guid, which changes metadata only,
// for admins and space developers.
func (a *API) updateTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return nil, err
	}
	t, err := a.visibleTask(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actorOf(r), t.OrgGUID, t.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}

	var p taskUpdatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}

	updated, err := store.UpdateTaskMetadata(ctx, a.store.DB(), t.GUID, metadataPatch(p.Metadata))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errTaskNotFound()
	}
	if err != nil {
		return nil, err
	}
	body, err := a.presentVisibleTask(r, updated)
	if err != nil {
		return nil, err
	}
	return ok(body), nil
}

// cancelTask serves POST /v3/tasks/:guid/actions/cancel and PUT
// /v3/tasks/:guid/cancel for admins and space developers. The task becomes CANCELING at once; the controller
// stops its pod and then marks it FAILED with "task was cancelled". A
// task that has finished cannot be canceled, and canceling a CANCELING
// task again changes nothing.
func (a *API) cancelTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	t, err := a.visibleTask(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, t.OrgGUID, t.SpaceGUID, roleSpaceDeveloper); err != nil {
		return nil, err
	}
	if t.State == store.TaskStateCanceling {
		return a.acceptedTask(r, t)
	}

	app := store.App{GUID: t.AppGUID, SpaceGUID: t.SpaceGUID, OrgGUID: t.OrgGUID}
	if current, err := a.store.App(ctx, store.Visibility{All: true}, t.AppGUID); err == nil {
		app = current
	}
	event := appEvent(actor, "audit.app.task.cancel", app, map[string]any{"task_guid": t.GUID, "request": map[string]any{}})
	updated, err := a.store.SetTaskState(ctx, t.GUID, store.TaskStateCanceling, "", event)
	var stateErr *store.TaskStateError
	switch {
	case errors.As(err, &stateErr) && stateErr.Current == store.TaskStateCanceling:
		updated, err = a.store.Task(ctx, visibility(r), t.GUID)
		if err != nil {
			return nil, err
		}
	case errors.As(err, &stateErr):
		return nil, errTaskNotCancelable(stateErr.Current)
	case errors.Is(err, store.ErrNotFound):
		return nil, errTaskNotFound()
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("task canceling", "task_guid", t.GUID, "app_guid", t.AppGUID)
	return a.acceptedTask(r, updated)
}

// acceptedTask is the 202 of a create or cancel, with the task as its body.
func (a *API) acceptedTask(r *http.Request, t store.Task) (*response, error) {
	body, err := a.presentVisibleTask(r, t)
	if err != nil {
		return nil, err
	}
	return &response{status: http.StatusAccepted, body: body}, nil
}

// createTask serves POST /v3/apps/:guid/tasks for admins and space
// developers. The task runs the app's current droplet, and the controller
// starts it as a Job.
func (a *API) createTask(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForWrite(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	if !actor.IsAdmin() {
		if err := a.requireFlag(ctx, flagTaskCreation); err != nil {
			return nil, err
		}
	}
	var p taskCreatePayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateTaskPayload(p); err != nil {
		return nil, err
	}

	t, err := a.newTask(ctx, p, app, actor)
	if err != nil {
		return nil, err
	}
	event := appEvent(actor, "audit.app.task.create", app, map[string]any{
		"task_guid": t.GUID, "request": map[string]any{"name": t.Name, "memory_in_mb": t.MemoryMB}})
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := checkTaskQuotas(ctx, tx, t); err != nil {
			return err
		}
		var err error
		if t, err = store.CreateTask(ctx, tx, t); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, event)
	})
	var fkErr *store.ForeignKeyError
	switch {
	case errors.As(err, &fkErr) && fkErr.Constraint == store.ConstraintTaskApp:
		return nil, errAppNotFound()
	case errors.As(err, &fkErr):
		// The droplet was deleted after it was read.
		return nil, errTaskNeedsDroplet()
	case errors.Is(err, store.ErrNotFound):
		return nil, errAppNotFound()
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("task created", "task_guid", t.GUID, "app_guid", app.GUID,
		"sequence_id", t.SequenceID)
	// Cloud Controller returns 202 for a new task, because the task runs
	// later.
	return a.acceptedTask(r, t)
}

// validateTaskPayload checks the body fields that need no lookup.
func validateTaskPayload(p taskCreatePayload) error {
	hasTemplate := p.Template != nil && p.Template.Process != nil && p.Template.Process.GUID != nil
	if p.Template != nil && !hasTemplate {
		return apierr.UnprocessableEntity("Template process guid can't be blank: send template.process.guid")
	}
	if p.Command == nil && !hasTemplate {
		return apierr.UnprocessableEntity("The request body must contain command or template.process.guid")
	}
	if p.Command != nil && *p.Command == "" {
		return apierr.UnprocessableEntity("Command can't be blank")
	}
	if p.Command != nil && len(*p.Command) > maxTaskCommandLength {
		return apierr.UnprocessableEntity(fmt.Sprintf("Command must be at most %d characters", maxTaskCommandLength))
	}
	if p.MemoryInMB != nil && *p.MemoryInMB < 1 {
		return apierr.UnprocessableEntity("Memory in mb must be greater than 0")
	}
	if p.DiskInMB != nil && *p.DiskInMB < 1 {
		return apierr.UnprocessableEntity("Disk in mb must be greater than 0")
	}
	if p.LogRateLimit != nil && *p.LogRateLimit < -1 {
		return apierr.UnprocessableEntity("Log rate limit in bytes per second must be greater than or equal to -1")
	}
	if p.DropletGUID != nil {
		// NOTE: Cloud Controller runs a task from another staged droplet
		// of the app when droplet_guid is given; Ferry runs only the
		// current droplet.
		return apierr.UnprocessableEntity("Droplet guid is not supported: tasks run the app's current droplet")
	}
	return validateMetadata(p.Metadata)
}

// newTask returns the task to insert: the command and sizes of the request,
// else of the template process, else Cloud Controller's defaults.
func (a *API) newTask(ctx context.Context, p taskCreatePayload, app store.App, actor *auth.Actor) (store.Task, error) {
	droplet, err := a.store.CurrentDroplet(ctx, store.Visibility{All: true}, app.GUID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Task{}, errTaskNeedsDroplet()
	}
	if err != nil {
		return store.Task{}, err
	}

	t := store.Task{
		GUID:          uuid.NewString(),
		AppGUID:       app.GUID,
		State:         store.TaskStatePending,
		MemoryMB:      store.DefaultProcessMemoryMB,
		DiskMB:        store.DefaultProcessDiskMB,
		LogRateLimit:  store.DefaultProcessLogRateLimit,
		DropletGUID:   droplet.GUID,
		CreatedByGUID: actor.UserGUID,
	}
	if p.Template != nil && p.Template.Process != nil && p.Template.Process.GUID != nil {
		proc, err := a.store.Process(ctx, store.Visibility{All: true}, *p.Template.Process.GUID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && proc.AppGUID != app.GUID) {
			return store.Task{}, apierr.UnprocessableEntity("Template process '" + shorten(*p.Template.Process.GUID) +
				"' does not exist or is not a process of this app")
		}
		if err != nil {
			return store.Task{}, err
		}
		if proc.Command != nil {
			t.Command = *proc.Command
		}
		if t.Command == "" {
			t.Command = droplet.ProcessTypes[proc.Type]
		}
		t.MemoryMB, t.DiskMB, t.LogRateLimit = proc.MemoryMB, proc.DiskMB, proc.LogRateLimit
	}

	if p.Command != nil {
		t.Command = *p.Command
	}
	if t.Command == "" {
		return store.Task{}, apierr.UnprocessableEntity("Command can't be blank: the template process has no command")
	}
	t.MemoryMB = valueOr(p.MemoryInMB, t.MemoryMB)
	t.DiskMB = valueOr(p.DiskInMB, t.DiskMB)
	t.LogRateLimit = valueOr(p.LogRateLimit, t.LogRateLimit)
	if p.Name != nil && *p.Name != "" {
		t.Name = *p.Name
	} else {
		t.Name = randomTaskName()
	}
	t.Labels, t.Annotations = metadataValues(p.Metadata)
	return t, nil
}

// randomTaskName returns 8 random hexadecimal digits, Cloud Controller's
// name for a task created without one.
func randomTaskName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error.
	return hex.EncodeToString(b)
}

// checkTaskQuotas checks, in tx, that the space and organization of the
// task's app have the task's memory and log rate left over their started
// processes, and turns a violation into a 422.
//
// NOTE: running tasks do not count as usage in later checks, and the
// organization's and space's app_task_limit is not enforced.
func checkTaskQuotas(ctx context.Context, tx *sql.Tx, t store.Task) error {
	err := store.CheckStagingQuotas(ctx, tx, t.AppGUID, store.StagingDemand{MemoryMB: t.MemoryMB, LogRateLimit: t.LogRateLimit})
	var quotaErr *store.QuotaExceededError
	if !errors.As(err, &quotaErr) {
		return err
	}
	v := quotaErr.Violations[0]
	if v.Limit == store.QuotaStagingLogRate {
		return apierr.UnprocessableEntity("log_rate_limit exceeds " + v.Scope + " log rate quota")
	}
	return apierr.UnprocessableEntity(pick(v.Scope == store.QuotaScopeSpace,
		"memory_in_mb exceeds space memory quota", "memory_in_mb exceeds organization memory quota"))
}
