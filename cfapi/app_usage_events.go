package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

func (a *API) appUsageEventRoutes() []route {
	const base = "/v3/app_usage_events"
	return []route{
		{method: http.MethodGet, path: base, handler: a.listAppUsageEvents},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getAppUsageEvent},
		{method: http.MethodPost, path: base + "/actions/destructively_purge_all_and_reseed", handler: a.purgeAndReseedAppUsageEvents},
	}
}

// usageGUIDName is the {guid, name} object of an app usage event's app,
// space, buildpack and task. Unknown values are null.
type usageGUIDName struct {
	GUID *string `json:"guid"`
	Name *string `json:"name"`
}

type appUsageEventJSON struct {
	GUID      string `json:"guid"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	State     struct {
		Current  string  `json:"current"`
		Previous *string `json:"previous"`
	} `json:"state"`
	App     usageGUIDName `json:"app"`
	Process struct {
		GUID *string `json:"guid"`
		Type *string `json:"type"`
	} `json:"process"`
	Space        usageGUIDName `json:"space"`
	Organization struct {
		GUID *string `json:"guid"`
	} `json:"organization"`
	Buildpack             usageGUIDName `json:"buildpack"`
	Task                  usageGUIDName `json:"task"`
	MemoryInMBPerInstance struct {
		Current  int64  `json:"current"`
		Previous *int64 `json:"previous"`
	} `json:"memory_in_mb_per_instance"`
	InstanceCount struct {
		Current  int  `json:"current"`
		Previous *int `json:"previous"`
	} `json:"instance_count"`
	Links struct {
		Self link `json:"self"`
	} `json:"links"`
}

// presentAppUsageEvent renders ev. Usage events never change, so
// updated_at is created_at, as in Cloud Controller.
func (a *API) presentAppUsageEvent(ev store.AppUsageEvent) appUsageEventJSON {
	var out appUsageEventJSON
	out.GUID = ev.GUID
	out.CreatedAt = timestamp(ev.CreatedAt)
	out.UpdatedAt = out.CreatedAt
	out.State.Current = ev.State
	out.State.Previous = nullable(ev.PreviousState)
	out.App = usageGUIDName{GUID: nullable(ev.AppGUID), Name: nullable(ev.AppName)}
	out.Process.GUID = nullable(ev.ProcessGUID)
	out.Process.Type = nullable(ev.ProcessType)
	out.Space = usageGUIDName{GUID: nullable(ev.SpaceGUID), Name: nullable(ev.SpaceName)}
	out.Organization.GUID = nullable(ev.OrgGUID)
	out.Buildpack = usageGUIDName{GUID: nullable(ev.BuildpackGUID), Name: nullable(ev.BuildpackName)}
	out.Task = usageGUIDName{GUID: nullable(ev.TaskGUID), Name: nullable(ev.TaskName)}
	out.MemoryInMBPerInstance.Current = ev.MemoryMB
	out.MemoryInMBPerInstance.Previous = ev.PreviousMemoryMB
	out.InstanceCount.Current = ev.InstanceCount
	out.InstanceCount.Previous = ev.PreviousInstanceCount
	out.Links.Self = link{Href: a.url("/v3/app_usage_events/", ev.GUID)}
	return out
}

// appUsageEventListSpec accepts updated_ats only to reject it with Cloud
// Controller's message, because usage events never change.
var appUsageEventListSpec = func() listSpec {
	spec := listSpec{
		filters: []string{"guids", "created_ats", "after_guid"},
		orderBy: []string{"created_at"},
		extra:   []string{"updated_ats"},
	}
	for _, op := range timeOperators {
		spec.extra = append(spec.extra, "created_ats["+op+"]", "updated_ats["+op+"]")
	}
	return spec
}()

// unprocessableQuery turns a query parameter error into the 422 that Cloud
// Controller sends for every invalid query of the usage event list.
func unprocessableQuery(err error) error {
	prefix := apierr.BadQueryParameter("").Detail
	var apiErr *apierr.Error
	if errors.As(err, &apiErr) && strings.HasPrefix(apiErr.Detail, prefix) {
		return apierr.UnprocessableEntity(strings.TrimPrefix(apiErr.Detail, prefix))
	}
	return err
}

// appUsageEventFilterOf validates the filters of a usage event list.
func appUsageEventFilterOf(q *listQuery) (store.AppUsageEventFilter, error) {
	for key := range q.values {
		if key == "updated_ats" || strings.HasPrefix(key, "updated_ats[") {
			return store.AppUsageEventFilter{}, apierr.UnprocessableEntity("Filtering by 'updated_ats' is not allowed on this resource.")
		}
	}
	var f store.AppUsageEventFilter
	f.GUIDs = q.filter("guids")
	var err error
	if f.CreatedAts, err = timeFilter(q, "created_ats"); err != nil {
		return f, unprocessableQuery(err)
	}
	if after := q.filter("after_guid"); after != nil {
		if len(after) != 1 {
			return f, apierr.UnprocessableEntity("After guid filter accepts only one guid")
		}
		if after[0] == "" {
			return f, errUnknownAfterGUID()
		}
		f.AfterGUID = after[0]
	}
	return f, nil
}

func errUnknownAfterGUID() error {
	return apierr.UnprocessableEntity("After guid filter must be a valid app usage event guid.")
}

// listAppUsageEvents serves GET /v3/app_usage_events, which billing
// services poll with after_guid. Only admins, read-only admins and global
// auditors see events, and everyone else gets an empty list, as in Cloud
// Controller. Invalid queries are a 422, not a 400, because Cloud
// Controller sends a 422 for this list. Without order_by, events come in
// the order they were recorded.
func (a *API) listAppUsageEvents(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, appUsageEventListSpec)
	if err != nil {
		return nil, unprocessableQuery(err)
	}
	filter, err := appUsageEventFilterOf(q)
	if err != nil {
		return nil, err
	}
	if !q.has("order_by") {
		q.page.OrderBy = "id"
	}
	if !actor.ReadsAll() {
		return ok(a.list(r, q.page, 0, []appUsageEventJSON{})), nil
	}

	events, total, err := a.store.AppUsageEvents(r.Context(), filter, q.page)
	if errors.Is(err, store.ErrUnknownAfterGUID) {
		return nil, errUnknownAfterGUID()
	}
	if err != nil {
		return nil, err
	}
	resources := make([]appUsageEventJSON, len(events))
	for i, ev := range events {
		resources[i] = a.presentAppUsageEvent(ev)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

// getAppUsageEvent serves GET /v3/app_usage_events/:guid for admins,
// read-only admins and global auditors. To everyone else every event is
// invisible.
func (a *API) getAppUsageEvent(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if !actor.ReadsAll() {
		return nil, apierr.NotFound("App usage event")
	}
	ev, err := a.store.AppUsageEvent(r.Context(), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "App usage event")
	}
	return ok(a.presentAppUsageEvent(ev)), nil
}

// purgeAndReseedAppUsageEvents serves POST
// /v3/app_usage_events/actions/destructively_purge_all_and_reseed for
// admins. In one transaction it deletes every usage event and records one
// STARTED event for each process of each started app, whose guid is the
// process's guid, as in Cloud Controller. Billing services call it to
// restart their count from the present.
func (a *API) purgeAndReseedAppUsageEvents(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := requireAdmin(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}

	var events []store.AppUsageEvent
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.PurgeAppUsageEvents(ctx, tx); err != nil {
			return err
		}
		footprints, err := store.StartedProcessFootprints(ctx, tx)
		if err != nil {
			return err
		}
		for _, fp := range footprints {
			ev := usageEvent(fp, store.AppStateStarted, store.AppStateStarted)
			ev.GUID = fp.ProcessGUID
			events = append(events, ev)
		}
		return store.CreateAppUsageEvents(ctx, tx, events)
	})
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("app usage events purged and reseeded", "events", len(events))
	return ok(map[string]any{}), nil
}

// usageEvent returns the usage event of the process fp moving from the
// state previous to state. The previous instance count and memory are the
// current ones, so callers that changed them overwrite them.
func usageEvent(fp store.ProcessFootprint, state, previous string) store.AppUsageEvent {
	instances, memory := fp.Instances, fp.MemoryMB
	ev := store.AppUsageEvent{
		GUID:                  uuid.NewString(),
		State:                 state,
		PreviousState:         previous,
		InstanceCount:         fp.Instances,
		PreviousInstanceCount: &instances,
		MemoryMB:              fp.MemoryMB,
		PreviousMemoryMB:      &memory,
		AppGUID:               fp.AppGUID,
		AppName:               fp.AppName,
		ProcessGUID:           fp.ProcessGUID,
		ProcessType:           fp.ProcessType,
		SpaceGUID:             fp.SpaceGUID,
		SpaceName:             fp.SpaceName,
		OrgGUID:               fp.OrgGUID,
		// NOTE: a CNB droplet records every buildpack of its group and no
		// detected one, so usage events name the last buildpack where
		// Cloud Controller names the detected one.
		BuildpackName: fp.Buildpack,
	}
	if fp.Buildpack != "" && fp.Stack != "" {
		ev.BuildpackGUID = buildpackGUID(fp.Stack, fp.Buildpack)
	}
	return ev
}

// stateChange is a process state change: to State from Previous.
type stateChange struct{ State, Previous string }

// appStateChanges lists the process state changes of an app moving from
// previous to state. A restart of a started app stops and starts every
// process, as Cloud Controller's does. Setting the state an app already
// has changes nothing.
func appStateChanges(previous, state string, restart bool) []stateChange {
	switch {
	case restart && previous == store.AppStateStarted:
		return []stateChange{{store.AppStateStopped, store.AppStateStarted}, {store.AppStateStarted, store.AppStateStopped}}
	case previous != state:
		return []stateChange{{state, previous}}
	}
	return nil
}

// recordAppStateUsage records through tx one usage event per process of
// the app guid and per process state change of moving the app from the
// state previous to state. restart marks an app restart. Callers read
// previous with store.LockAppState in tx before they change the state, so
// concurrent starts and stops record each change once.
func recordAppStateUsage(ctx context.Context, tx *sql.Tx, guid, previous, state string, restart bool) error {
	changes := appStateChanges(previous, state, restart)
	if len(changes) == 0 {
		return nil
	}
	footprints, err := store.AppProcessFootprints(ctx, tx, guid)
	if err != nil {
		return err
	}
	var events []store.AppUsageEvent
	for _, change := range changes {
		for _, fp := range footprints {
			events = append(events, usageEvent(fp, change.State, change.Previous))
		}
	}
	return store.CreateAppUsageEvents(ctx, tx, events)
}

// recordAppDeleteUsage records through tx that every process of the app
// guid stops, when the app is started and about to be deleted, as Cloud
// Controller does when it deletes a started process. An app that is gone
// records nothing.
func recordAppDeleteUsage(ctx context.Context, tx *sql.Tx, guid string) error {
	state, err := store.LockAppState(ctx, tx, guid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return recordAppStateUsage(ctx, tx, guid, state, store.AppStateStopped, false)
}

// recordScaleUsage records through tx the usage event of a process scaled
// from before to after. Only started apps use resources, so a scale of a
// stopped app's process records nothing, and neither does a scale that
// keeps the instance count and memory.
func recordScaleUsage(ctx context.Context, tx *sql.Tx, before, after store.Process) error {
	if before.Instances == after.Instances && before.MemoryMB == after.MemoryMB {
		return nil
	}
	footprints, err := store.AppProcessFootprints(ctx, tx, after.AppGUID)
	if err != nil {
		return err
	}
	for _, fp := range footprints {
		if fp.ProcessGUID != after.GUID || fp.AppState != store.AppStateStarted {
			continue
		}
		ev := usageEvent(fp, store.AppStateStarted, store.AppStateStarted)
		previousInstances, previousMemory := before.Instances, before.MemoryMB
		ev.PreviousInstanceCount, ev.PreviousMemoryMB = &previousInstances, &previousMemory
		return store.CreateAppUsageEvents(ctx, tx, []store.AppUsageEvent{ev})
	}
	return nil
}
