package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Deployments replace a started app's instances without downtime. The API
// records the deployment together with the app's new droplet and start
// count. The controller brings up the new instances before it removes old
// ones, and writes the state transitions back.
func (a *API) deploymentRoutes() []route {
	const base = "/v3/deployments"
	return append([]route{
		{method: http.MethodGet, path: base, handler: a.listDeployments},
		{method: http.MethodPost, path: base, handler: a.createDeployment},
		{method: http.MethodGet, path: base + "/{guid}", handler: a.getDeployment},
		{method: http.MethodPatch, path: base + "/{guid}", handler: a.updateDeployment},
		{method: http.MethodPost, path: base + "/{guid}/actions/cancel", handler: a.cancelDeployment},
		{method: http.MethodPost, path: base + "/{guid}/actions/continue", handler: a.continueDeployment},
	}, a.revisionRoutes()...)
}

// defaultMaxInFlight is Cloud Controller's default: one new instance at a
// time.
const defaultMaxInFlight = 1

// deploymentPayload is the body of POST /v3/deployments.
type deploymentPayload struct {
	Droplet  *guidRef `json:"droplet"`
	Revision *guidRef `json:"revision"`
	Strategy *string  `json:"strategy"`
	Options  *struct {
		MaxInFlight *int `json:"max_in_flight"`
		Canary      *struct {
			Steps []struct {
				InstanceWeight *int `json:"instance_weight"`
			} `json:"steps"`
		} `json:"canary"`
		// The per-deployment scaling options of newer Cloud Controllers
		// are not implemented; they are decoded to reject them by name.
		WebInstances      *int   `json:"web_instances"`
		MemoryInMB        *int64 `json:"memory_in_mb"`
		DiskInMB          *int64 `json:"disk_in_mb"`
		LogRateLimitInBPS *int64 `json:"log_rate_limit_in_bytes_per_second"`
	} `json:"options"`
	Relationships *struct {
		App *toOne `json:"app"`
	} `json:"relationships"`
	Metadata *metadataPayload `json:"metadata"`
}

// deploymentRequest validates p and returns the store request without
// the app's guid, or a 422 that names the invalid field.
func deploymentRequest(p deploymentPayload) (store.DeploymentCreate, error) {
	c := store.DeploymentCreate{Strategy: store.DeploymentStrategyRolling, MaxInFlight: defaultMaxInFlight}
	if p.Strategy != nil {
		if *p.Strategy != store.DeploymentStrategyRolling && *p.Strategy != store.DeploymentStrategyCanary {
			return c, apierr.UnprocessableEntity(fmt.Sprintf("Strategy '%s' is not supported: use 'rolling' or 'canary'", *p.Strategy))
		}
		c.Strategy = *p.Strategy
	}
	if p.Droplet != nil && p.Revision != nil {
		return c, apierr.UnprocessableEntity("Cannot set both droplet and revision")
	}
	if p.Droplet != nil {
		c.DropletGUID = p.Droplet.GUID
	}
	if p.Revision != nil {
		c.RevisionGUID = p.Revision.GUID
	}
	if o := p.Options; o != nil {
		if o.WebInstances != nil || o.MemoryInMB != nil || o.DiskInMB != nil || o.LogRateLimitInBPS != nil {
			return c, apierr.UnprocessableEntity("Options web_instances, memory_in_mb, disk_in_mb and " +
				"log_rate_limit_in_bytes_per_second are not supported: scale the process before or after the deployment")
		}
		if o.MaxInFlight != nil {
			if *o.MaxInFlight < 1 {
				return c, apierr.UnprocessableEntity("Max in flight must be an integer greater than 0")
			}
			c.MaxInFlight = *o.MaxInFlight
		}
		if o.Canary != nil {
			steps, err := canarySteps(c.Strategy, o.Canary.Steps)
			if err != nil {
				return c, err
			}
			c.CanarySteps = steps
		}
	}
	if c.Strategy == store.DeploymentStrategyCanary && len(c.CanarySteps) == 0 {
		// A canary without steps pauses once, with one new instance.
		c.CanarySteps = []int{0}
	}
	return c, nil
}

// canarySteps validates the canary steps of a deployment request: instance
// weights from 1 to 100 percent in ascending order.
func canarySteps(strategy string, steps []struct {
	InstanceWeight *int `json:"instance_weight"`
}) ([]int, error) {
	if strategy != store.DeploymentStrategyCanary {
		return nil, apierr.UnprocessableEntity("Options canary are only valid for the 'canary' strategy")
	}
	weights := make([]int, 0, len(steps))
	for _, s := range steps {
		if s.InstanceWeight == nil || *s.InstanceWeight < 1 || *s.InstanceWeight > 100 {
			return nil, apierr.UnprocessableEntity("Canary steps instance_weight must be an integer between 1 and 100 (inclusive)")
		}
		weights = append(weights, *s.InstanceWeight)
	}
	if !slices.IsSorted(weights) {
		return nil, apierr.UnprocessableEntity("Canary steps must be sorted in ascending order of instance_weight")
	}
	return weights, nil
}

type deploymentJSON struct {
	GUID            string                     `json:"guid"`
	State           string                     `json:"state"`
	Status          deploymentStatusJSON       `json:"status"`
	Strategy        string                     `json:"strategy"`
	Options         deploymentOptionsJSON      `json:"options"`
	Droplet         *guidRef                   `json:"droplet"`
	PreviousDroplet *guidRef                   `json:"previous_droplet"`
	NewProcesses    []deploymentProcessJSON    `json:"new_processes"`
	Revision        *deploymentRevisionJSON    `json:"revision"`
	CreatedAt       string                     `json:"created_at"`
	UpdatedAt       string                     `json:"updated_at"`
	Metadata        metadataJSON               `json:"metadata"`
	Relationships   deploymentRelationshipJSON `json:"relationships"`
	Links           map[string]link            `json:"links"`
}

type deploymentStatusJSON struct {
	Value   string                      `json:"value"`
	Reason  string                      `json:"reason"`
	Details deploymentStatusDetailsJSON `json:"details"`
	Canary  *deploymentCanaryJSON       `json:"canary,omitempty"`
}

type deploymentStatusDetailsJSON struct {
	LastSuccessfulHealthcheck string `json:"last_successful_healthcheck"`
	LastStatusChange          string `json:"last_status_change"`
	// Error is a Ferry extension: why the controller canceled the
	// deployment.
	Error string `json:"error,omitempty"`
}

type deploymentCanaryJSON struct {
	Steps struct {
		Current int `json:"current"`
		Total   int `json:"total"`
	} `json:"steps"`
}

type deploymentOptionsJSON struct {
	MaxInFlight int                        `json:"max_in_flight"`
	Canary      *deploymentCanaryStepsJSON `json:"canary,omitempty"`
}

type deploymentCanaryStepsJSON struct {
	Steps []canaryStepJSON `json:"steps"`
}

type canaryStepJSON struct {
	InstanceWeight int `json:"instance_weight"`
}

type deploymentProcessJSON struct {
	GUID string `json:"guid"`
	Type string `json:"type"`
}

type deploymentRevisionJSON struct {
	GUID    string `json:"guid"`
	Version int    `json:"version"`
}

type deploymentRelationshipJSON struct {
	App toOne `json:"app"`
}

// presentDeployment renders d as Cloud Controller does. Ferry moves the
// app's existing processes to the new droplet, so new_processes lists the
// app's processes themselves. revision may be zero.
func (a *API) presentDeployment(d store.Deployment, processes []store.Process, revision store.Revision) deploymentJSON {
	body := deploymentJSON{
		GUID:  d.GUID,
		State: d.State,
		Status: deploymentStatusJSON{
			Value:  d.StatusValue,
			Reason: d.StatusReason,
			Details: deploymentStatusDetailsJSON{
				LastSuccessfulHealthcheck: timestamp(d.UpdatedAt),
				LastStatusChange:          timestamp(d.LastStatusChange),
				Error:                     d.StatusError,
			},
		},
		Strategy:      d.Strategy,
		Options:       deploymentOptionsJSON{MaxInFlight: d.MaxInFlight},
		NewProcesses:  []deploymentProcessJSON{},
		CreatedAt:     timestamp(d.CreatedAt),
		UpdatedAt:     timestamp(d.UpdatedAt),
		Metadata:      presentMetadata(d.Labels, d.Annotations),
		Relationships: deploymentRelationshipJSON{App: relTo(d.AppGUID)},
		Links: map[string]link{
			"self": {Href: a.url("/v3/deployments/", d.GUID)},
			"app":  {Href: a.url("/v3/apps/", d.AppGUID)},
		},
	}
	if d.DropletGUID != "" {
		body.Droplet = &guidRef{GUID: d.DropletGUID}
	}
	if d.PreviousDropletGUID != "" {
		body.PreviousDroplet = &guidRef{GUID: d.PreviousDropletGUID}
	}
	if revision.GUID != "" {
		body.Revision = &deploymentRevisionJSON{GUID: revision.GUID, Version: revision.Version}
	}
	for _, p := range processes {
		body.NewProcesses = append(body.NewProcesses, deploymentProcessJSON{GUID: p.GUID, Type: p.Type})
	}
	if d.Strategy == store.DeploymentStrategyCanary {
		steps := &deploymentCanaryStepsJSON{Steps: []canaryStepJSON{}}
		for _, w := range d.CanarySteps {
			if w > 0 {
				steps.Steps = append(steps.Steps, canaryStepJSON{InstanceWeight: w})
			}
		}
		body.Options.Canary = steps
		status := &deploymentCanaryJSON{}
		status.Steps.Total = len(d.CanarySteps)
		status.Steps.Current = min(d.CanaryStep, len(d.CanarySteps))
		body.Status.Canary = status
	}
	if d.Active() {
		body.Links["cancel"] = link{Href: a.url("/v3/deployments/", d.GUID, "/actions/cancel"), Method: http.MethodPost}
		if d.State == store.DeploymentStatePaused {
			body.Links["continue"] = link{Href: a.url("/v3/deployments/", d.GUID, "/actions/continue"), Method: http.MethodPost}
		}
	}
	return body
}

// renderDeployment reads what presentDeployment needs besides d.
func (a *API) renderDeployment(r *http.Request, d store.Deployment) (deploymentJSON, error) {
	processes, err := store.AppProcesses(r.Context(), a.store.DB(), d.AppGUID)
	if err != nil {
		return deploymentJSON{}, err
	}
	var revision store.Revision
	if d.RevisionGUID != "" {
		revision, err = a.store.Revision(r.Context(), store.Visibility{All: true}, d.RevisionGUID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return deploymentJSON{}, err
		}
	}
	return a.presentDeployment(d, processes, revision), nil
}

var deploymentListSpec = withCommonFilters(listSpec{
	filters: []string{"app_guids", "states", "status_reasons", "status_values", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

// listDeployments serves GET /v3/deployments. cf app and cf push read
// an app's active deployment from it.
func (a *API) listDeployments(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, deploymentListSpec)
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}
	filter := store.DeploymentFilter{
		CommonFilter:  common,
		AppGUIDs:      q.filter("app_guids"),
		States:        q.filter("states"),
		StatusValues:  q.filter("status_values"),
		StatusReasons: q.filter("status_reasons"),
		LabelSelector: selector,
	}
	deployments, total, err := a.store.Deployments(r.Context(), filter, q.page, visibility(r))
	if err != nil {
		return nil, err
	}
	resources := make([]deploymentJSON, len(deployments))
	for i, d := range deployments {
		if resources[i], err = a.renderDeployment(r, d); err != nil {
			return nil, err
		}
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func errDeploymentNotFound() error { return apierr.NotFound("Deployment") }

// visibleDeployment reads the deployment of the path. An invisible
// deployment is a 404.
func (a *API) visibleDeployment(r *http.Request) (store.Deployment, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return store.Deployment{}, err
	}
	d, err := a.store.Deployment(r.Context(), visibility(r), pathParam(r, "guid"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Deployment{}, errDeploymentNotFound()
	}
	return d, err
}

// getDeployment serves GET /v3/deployments/:guid, which cf push, cf
// restart and cf rollback poll until the deployment is finalized.
func (a *API) getDeployment(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	d, err := a.visibleDeployment(r)
	if err != nil {
		return nil, err
	}
	body, err := a.renderDeployment(r, d)
	if err != nil {
		return nil, err
	}
	return ok(body), nil
}

// createDeployment serves POST /v3/deployments for admins, space
// developers and space supporters.
func (a *API) createDeployment(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireWrite(actor); err != nil {
		return nil, err
	}
	var p deploymentPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if p.Relationships == nil || p.Relationships.App == nil || p.Relationships.App.Data == nil || p.Relationships.App.Data.GUID == "" {
		return nil, apierr.UnprocessableEntity("Relationships app is required: send relationships.app.data.guid")
	}
	c, err := deploymentRequest(p)
	if err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	c.Labels, c.Annotations = metadataValues(p.Metadata)
	app, err := a.appForManage(r, p.Relationships.App.Data.GUID)
	if errors.Is(err, errAppNotFound()) {
		return nil, apierr.UnprocessableEntity("Unable to use app. Ensure that the app exists and you have access to it.")
	}
	if err != nil {
		return nil, err
	}
	if app.LifecycleType == store.LifecycleDocker {
		if err := a.requireFlag(ctx, flagDiegoDocker); err != nil {
			return nil, err
		}
	}
	c.AppGUID = app.GUID

	var d store.Deployment
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		previousState, err := store.LockAppState(ctx, tx, app.GUID)
		if err != nil {
			return err
		}
		before, err := store.ReadAppDemand(ctx, tx, app.GUID)
		if err != nil {
			return err
		}
		if d, err = store.CreateDeployment(ctx, tx, c); err != nil {
			return err
		}
		if err := recordAppStateUsage(ctx, tx, app.GUID, previousState, store.AppStateStarted, true); err != nil {
			return err
		}
		// A deployment starts a stopped app, which then counts against
		// the quotas. The surge instances of a running app are not counted.
		if err := checkAppQuotas(ctx, tx, before); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.deployment.create", app, map[string]any{
			"deployment_guid": d.GUID, "droplet_guid": d.DropletGUID, "revision_guid": d.RevisionGUID,
			"strategy": d.Strategy, "type": d.Strategy,
		}))
	})
	switch {
	case errors.Is(err, store.ErrRevisionNotDeployable):
		return nil, apierr.UnprocessableEntity("The revision's droplet was deleted, so it cannot be deployed")
	case errors.Is(err, store.ErrNotFound) && c.RevisionGUID != "":
		return nil, apierr.UnprocessableEntity("The revision does not exist or belongs to another app")
	case errors.Is(err, store.ErrNotFound) && c.DropletGUID != "":
		return nil, apierr.UnprocessableEntity("The droplet does not exist, is not staged or belongs to another app")
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.UnprocessableEntity("Assign a droplet before deploying this app.")
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("deployment created", "app_guid", app.GUID, "deployment_guid", d.GUID,
		"strategy", d.Strategy, "droplet_guid", d.DropletGUID, "state", d.State)
	body, err := a.renderDeployment(r, d)
	if err != nil {
		return nil, err
	}
	return created(body), nil
}

// deploymentForAction reads the deployment of the path for a user who
// may manage its app.
func (a *API) deploymentForAction(r *http.Request) (store.Deployment, store.App, error) {
	if err := noQuery(r); err != nil {
		return store.Deployment{}, store.App{}, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return store.Deployment{}, store.App{}, err
	}
	d, err := a.visibleDeployment(r)
	if err != nil {
		return store.Deployment{}, store.App{}, err
	}
	app, err := a.appForManage(r, d.AppGUID)
	if errors.Is(err, errAppNotFound()) {
		return store.Deployment{}, store.App{}, errDeploymentNotFound()
	}
	return d, app, err
}

// cancelDeployment serves POST /v3/deployments/:guid/actions/cancel: the
// app returns to its previous droplet, and the controller scales the
// previous instances back up before it removes the new ones.
func (a *API) cancelDeployment(r *http.Request) (*response, error) {
	return a.deploymentAction(r, "audit.app.deployment.cancel", func(ctx context.Context, tx *sql.Tx, guid string) (store.Deployment, error) {
		return store.CancelDeployment(ctx, tx, guid, "")
	})
}

// continueDeployment serves POST /v3/deployments/:guid/actions/continue,
// which moves a paused canary deployment to its next step.
func (a *API) continueDeployment(r *http.Request) (*response, error) {
	return a.deploymentAction(r, "audit.app.deployment.continue", func(ctx context.Context, tx *sql.Tx, guid string) (store.Deployment, error) {
		return store.ContinueDeployment(ctx, tx, guid)
	})
}

func (a *API) deploymentAction(r *http.Request, eventType string,
	action func(ctx context.Context, tx *sql.Tx, guid string) (store.Deployment, error)) (*response, error) {
	ctx := r.Context()
	d, app, err := a.deploymentForAction(r)
	if err != nil {
		return nil, err
	}
	var updated store.Deployment
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if updated, err = action(ctx, tx, d.GUID); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, appEvent(actorOf(r), eventType, app, map[string]any{
			"deployment_guid": d.GUID, "droplet_guid": d.DropletGUID,
		}))
	})
	switch {
	case errors.Is(err, store.ErrDeploymentState):
		return nil, apierr.UnprocessableEntity(fmt.Sprintf("Cannot %s a deployment with status: %s and reason: %s",
			actionName(eventType), updated.StatusValue, updated.StatusReason))
	case errors.Is(err, store.ErrNotFound):
		return nil, errDeploymentNotFound()
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("deployment changed", "app_guid", app.GUID, "deployment_guid", d.GUID, "state", updated.State)
	return ok(struct{}{}), nil
}

func actionName(eventType string) string {
	if eventType == "audit.app.deployment.cancel" {
		return "cancel"
	}
	return "continue"
}

// updateDeployment serves PATCH /v3/deployments/:guid, which changes
// metadata.
func (a *API) updateDeployment(r *http.Request) (*response, error) {
	d, _, err := a.deploymentForAction(r)
	if err != nil {
		return nil, err
	}
	var p struct {
		Metadata *metadataPayload `json:"metadata"`
	}
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if err := validateMetadata(p.Metadata); err != nil {
		return nil, err
	}
	updated, err := store.UpdateDeploymentMetadata(r.Context(), a.store.DB(), d.GUID, metadataPatch(p.Metadata))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errDeploymentNotFound()
	}
	if err != nil {
		return nil, err
	}
	body, err := a.renderDeployment(r, updated)
	if err != nil {
		return nil, err
	}
	return ok(body), nil
}
