package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Deployment states, as Cloud Controller names them.
const (
	DeploymentStateDeploying = "DEPLOYING"
	DeploymentStatePaused    = "PAUSED"
	DeploymentStateDeployed  = "DEPLOYED"
	DeploymentStateCanceling = "CANCELING"
	DeploymentStateCanceled  = "CANCELED"
)

// Deployment status values and reasons, as Cloud Controller names them.
const (
	DeploymentStatusActive    = "ACTIVE"
	DeploymentStatusFinalized = "FINALIZED"

	DeploymentReasonDeploying  = "DEPLOYING"
	DeploymentReasonPaused     = "PAUSED"
	DeploymentReasonCanceling  = "CANCELING"
	DeploymentReasonDeployed   = "DEPLOYED"
	DeploymentReasonCanceled   = "CANCELED"
	DeploymentReasonSuperseded = "SUPERSEDED"
)

// Deployment strategies.
const (
	DeploymentStrategyRolling = "rolling"
	DeploymentStrategyCanary  = "canary"
)

// ErrDeploymentState is returned for an action the deployment's state does
// not allow, such as continuing a deployment that is not paused.
var ErrDeploymentState = errors.New("the deployment's state does not allow this action")

// ErrRevisionNotDeployable is returned when a deployment names a revision
// whose droplet was deleted.
var ErrRevisionNotDeployable = errors.New("the revision has no droplet")

// Deployment is a Cloud Controller deployment: a rolling or canary
// replacement of an app's instances.
type Deployment struct {
	GUID    string
	AppGUID string
	// SpaceGUID and OrgGUID are those of the app, read with the
	// deployment.
	SpaceGUID string
	OrgGUID   string
	State     string
	// StatusValue is DeploymentStatusActive or DeploymentStatusFinalized.
	StatusValue  string
	StatusReason string
	// StatusError is the reason the controller canceled the deployment,
	// or "".
	StatusError      string
	LastStatusChange time.Time
	Strategy         string
	MaxInFlight      int
	// CanarySteps are instance weights in percent; empty for rolling
	// deployments.
	CanarySteps []int
	// CanaryStep is the 1-based step a canary deployment is at or moving
	// to. It is len(CanarySteps)+1 after the last step was continued.
	CanaryStep          int
	DropletGUID         string
	PreviousDropletGUID string
	RevisionGUID        string
	// PreviousStartCount and StartCount are the app's start count before
	// and after the deployment.
	PreviousStartCount int64
	StartCount         int64
	Labels             map[string]string
	Annotations        map[string]string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Active reports whether the deployment is still moving instances.
func (d Deployment) Active() bool { return d.StatusValue == DeploymentStatusActive }

// TargetStartCount is the start count the deployment's instances move to:
// the new one while deploying or paused, the previous one while canceling.
func (d Deployment) TargetStartCount() int64 {
	if d.State == DeploymentStateCanceling {
		return d.PreviousStartCount
	}
	return d.StartCount
}

// DeploymentCreate is a request for a deployment. At most one of
// DropletGUID and RevisionGUID is set; with neither, the app's current
// droplet is deployed again, as a rolling restart.
type DeploymentCreate struct {
	GUID         string
	AppGUID      string
	DropletGUID  string
	RevisionGUID string
	Strategy     string
	// MaxInFlight is at least 1.
	MaxInFlight int
	CanarySteps []int
	Labels      map[string]string
	Annotations map[string]string
}

// DeploymentFilter selects deployments. A nil slice does not filter.
type DeploymentFilter struct {
	CommonFilter
	AppGUIDs      []string
	States        []string
	StatusValues  []string
	StatusReasons []string
	LabelSelector LabelSelector
}

const deploymentColumns = `dp.guid, dp.app_guid, a.space_guid, s.organization_guid, dp.state, dp.status_value,
	dp.status_reason, dp.status_error, dp.last_status_change, dp.strategy, dp.max_in_flight, dp.canary_steps,
	dp.canary_step, COALESCE(dp.droplet_guid, ''), COALESCE(dp.previous_droplet_guid, ''),
	COALESCE(dp.revision_guid, ''), dp.previous_start_count, dp.start_count, dp.labels, dp.annotations,
	dp.created_at, dp.updated_at`

const deploymentFrom = ` FROM deployments dp JOIN apps a ON a.guid = dp.app_guid JOIN spaces s ON s.guid = a.space_guid`

var deploymentOrder = map[string]string{
	"created_at": "dp.created_at",
	"updated_at": "dp.updated_at",
}

// canaryStepJSON is the stored form of one canary step.
type canaryStepJSON struct {
	InstanceWeight int `json:"instance_weight"`
}

func scanDeployment(row interface{ Scan(...any) error }, extra ...any) (Deployment, error) {
	var d Deployment
	var steps, labels, annotations []byte
	dest := append([]any{&d.GUID, &d.AppGUID, &d.SpaceGUID, &d.OrgGUID, &d.State, &d.StatusValue, &d.StatusReason,
		&d.StatusError, &d.LastStatusChange, &d.Strategy, &d.MaxInFlight, &steps, &d.CanaryStep, &d.DropletGUID,
		&d.PreviousDropletGUID, &d.RevisionGUID, &d.PreviousStartCount, &d.StartCount, &labels, &annotations,
		&d.CreatedAt, &d.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Deployment{}, mapError(err)
	}
	var stored []canaryStepJSON
	if err := json.Unmarshal(steps, &stored); err != nil {
		return Deployment{}, fmt.Errorf("decode canary steps of deployment %s: %w", d.GUID, err)
	}
	d.CanarySteps = make([]int, len(stored))
	for i, s := range stored {
		d.CanarySteps[i] = s.InstanceWeight
	}
	var err error
	if d.Labels, err = jsonMap(labels); err != nil {
		return Deployment{}, err
	}
	if d.Annotations, err = jsonMap(annotations); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

func canaryStepsJSON(steps []int) []byte {
	stored := make([]canaryStepJSON, len(steps))
	for i, w := range steps {
		stored[i] = canaryStepJSON{InstanceWeight: w}
	}
	raw, _ := json.Marshal(stored) // A slice of structs of ints always encodes.
	return raw
}

// deploymentThrough reads the deployment guid through q with no
// visibility check.
func deploymentThrough(ctx context.Context, q querier, guid string) (Deployment, error) {
	return scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentColumns+deploymentFrom+` WHERE dp.guid = $1`, guid))
}

// CreateDeployment starts a deployment of an app through q, which should
// be a transaction. It locks the app, supersedes the app's active
// deployment, sets the app's current droplet (from c.DropletGUID, from
// c.RevisionGUID's droplet, or unchanged), increments its start count and
// starts it. A droplet change records a revision through the apps_revision
// trigger; a rollback to the current droplet records one here.
//
// A stopped app has no instances to replace, so its deployment is
// finalized as DEPLOYED at once and the app starts the usual way.
//
// It returns ErrNotFound for a missing app, droplet or revision of the
// app, and ErrRevisionNotDeployable for a revision without a droplet.
func CreateDeployment(ctx context.Context, q querier, c DeploymentCreate) (Deployment, error) {
	fail := func(err error) (Deployment, error) {
		return Deployment{}, fmt.Errorf("create deployment of app %s: %w", c.AppGUID, err)
	}
	var prevDroplet sql.NullString
	var prevStartCount int64
	var state string
	err := q.QueryRowContext(ctx, `SELECT current_droplet_guid, start_count, state FROM apps WHERE guid = $1 FOR UPDATE`,
		c.AppGUID).Scan(&prevDroplet, &prevStartCount, &state)
	if err != nil {
		return fail(mapError(err))
	}

	droplet, description, err := deploymentDroplet(ctx, q, c, prevDroplet.String)
	if err != nil {
		return fail(err)
	}
	if err := supersedeDeployments(ctx, q, c.AppGUID); err != nil {
		return fail(err)
	}

	var startCount int64
	err = q.QueryRowContext(ctx, `UPDATE apps SET current_droplet_guid = $2, start_count = start_count + 1,
		state = 'STARTED', updated_at = now() WHERE guid = $1 RETURNING start_count`, c.AppGUID, droplet).Scan(&startCount)
	if err != nil {
		return fail(mapError(err))
	}
	revision, err := deploymentRevision(ctx, q, c.AppGUID, droplet, prevDroplet.String, description)
	if err != nil {
		return fail(err)
	}

	d := Deployment{State: DeploymentStateDeploying, StatusValue: DeploymentStatusActive, StatusReason: DeploymentReasonDeploying}
	if state != AppStateStarted {
		d.State, d.StatusValue, d.StatusReason = DeploymentStateDeployed, DeploymentStatusFinalized, DeploymentReasonDeployed
	}
	if c.GUID == "" {
		c.GUID = uuid.NewString()
	}
	_, err = q.ExecContext(ctx, `INSERT INTO deployments (guid, app_guid, state, status_value, status_reason, strategy,
			max_in_flight, canary_steps, droplet_guid, previous_droplet_guid, revision_guid, previous_start_count,
			start_count, labels, annotations)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.GUID, c.AppGUID, d.State, d.StatusValue, d.StatusReason, c.Strategy, max(c.MaxInFlight, 1),
		canaryStepsJSON(c.CanarySteps), droplet, nullIfEmpty(prevDroplet.String), nullIfEmpty(revision), prevStartCount,
		startCount, metadataJSON(c.Labels), metadataJSON(c.Annotations))
	if err != nil {
		return fail(mapError(err))
	}
	created, err := deploymentThrough(ctx, q, c.GUID)
	if err != nil {
		return fail(err)
	}
	return created, nil
}

// deploymentDroplet returns the droplet a deployment runs and, for a
// rollback, the description of the revision it records.
func deploymentDroplet(ctx context.Context, q querier, c DeploymentCreate, current string) (string, string, error) {
	switch {
	case c.RevisionGUID != "":
		var droplet sql.NullString
		var version int
		err := q.QueryRowContext(ctx, `SELECT droplet_guid, version FROM revisions WHERE guid = $1 AND app_guid = $2`,
			c.RevisionGUID, c.AppGUID).Scan(&droplet, &version)
		if err != nil {
			return "", "", fmt.Errorf("revision %s: %w", c.RevisionGUID, mapError(err))
		}
		if droplet.String == "" {
			return "", "", ErrRevisionNotDeployable
		}
		return droplet.String, fmt.Sprintf("Rolled back to revision %d.", version), nil
	case c.DropletGUID != "":
		var ok bool
		err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM droplets WHERE guid = $1 AND app_guid = $2 AND state = $3)`,
			c.DropletGUID, c.AppGUID, DropletStateStaged).Scan(&ok)
		if err != nil {
			return "", "", mapError(err)
		}
		if !ok {
			return "", "", fmt.Errorf("droplet %s: %w", c.DropletGUID, ErrNotFound)
		}
		return c.DropletGUID, "", nil
	case current == "":
		return "", "", fmt.Errorf("current droplet: %w", ErrNotFound)
	}
	return current, "", nil
}

// deploymentRevision returns the revision a deployment runs: the one the
// apps_revision trigger just recorded for a new droplet, a new one for a
// rollback to the current droplet, or the app's latest one. It returns ""
// when the app has revisions disabled and none exist.
func deploymentRevision(ctx context.Context, q querier, appGUID, droplet, previous, description string) (string, error) {
	if description != "" {
		if droplet == previous {
			var guid string
			err := q.QueryRowContext(ctx, `SELECT ferry_record_revision($1, $2, $3)`, appGUID, droplet, description).Scan(&guid)
			return guid, mapError(err)
		}
	}
	var guid string
	err := q.QueryRowContext(ctx, `SELECT guid FROM revisions WHERE app_guid = $1 ORDER BY version DESC LIMIT 1`,
		appGUID).Scan(&guid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", mapError(err)
	}
	if description != "" {
		_, err = q.ExecContext(ctx, `UPDATE revisions SET description = $2, updated_at = now() WHERE guid = $1`, guid, description)
	}
	return guid, mapError(err)
}

// supersedeDeployments finalizes the app's active deployment as
// SUPERSEDED, as Cloud Controller does when a newer deployment starts.
func supersedeDeployments(ctx context.Context, q querier, appGUID string) error {
	_, err := q.ExecContext(ctx, `UPDATE deployments SET state = $2, status_value = $3, status_reason = $4,
		last_status_change = now(), updated_at = now() WHERE app_guid = $1 AND status_value = $5`,
		appGUID, DeploymentStateDeployed, DeploymentStatusFinalized, DeploymentReasonSuperseded, DeploymentStatusActive)
	return mapError(err)
}

// Deployment returns the deployment guid if vis may see its app's space,
// and ErrNotFound otherwise.
func (s *Store) Deployment(ctx context.Context, vis Visibility, guid string) (Deployment, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE dp.guid = $1 AND `+vis.spaceCondition("a.space_guid", &a), a...)
	d, err := scanDeployment(row)
	if err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: %w", guid, err)
	}
	return d, nil
}

// ActiveDeployment returns the app's active deployment, or ErrNotFound
// when it has none.
func (s *Store) ActiveDeployment(ctx context.Context, appGUID string) (Deployment, error) {
	d, err := scanDeployment(s.db.QueryRowContext(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE dp.app_guid = $1 AND dp.status_value = $2`, appGUID, DeploymentStatusActive))
	if err != nil {
		return Deployment{}, fmt.Errorf("active deployment of app %s: %w", appGUID, err)
	}
	return d, nil
}

// Deployments returns one page of the deployments vis may see that match
// f, and the total number of matches across all pages.
func (s *Store) Deployments(ctx context.Context, f DeploymentFilter, page Page, vis Visibility) ([]Deployment, int, error) {
	var a args
	where := []string{vis.spaceCondition("a.space_guid", &a)}
	where = f.CommonFilter.conditions("dp", &a, where)
	for _, filter := range []struct {
		column string
		values []string
	}{
		{"dp.app_guid", f.AppGUIDs},
		{"dp.state", f.States},
		{"dp.status_value", f.StatusValues},
		{"dp.status_reason", f.StatusReasons},
	} {
		if filter.values != nil {
			where = append(where, filter.column+" = ANY("+a.add(pq.Array(filter.values))+"::text[])")
		}
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("dp.labels", &a))
	}

	from := deploymentFrom + ` WHERE ` + strings.Join(where, " AND ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+deploymentColumns+`, `+listTotal(vis, from)+from+
		page.orderBy(deploymentOrder, "dp.guid")+page.limitOffset(), a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list deployments: %w", mapError(err))
	}
	defer rows.Close()

	deployments := []Deployment{}
	total := 0
	for rows.Next() {
		d, err := scanDeployment(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list deployments: %w", err)
		}
		deployments = append(deployments, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list deployments: %w", mapError(err))
	}
	if len(deployments) == 0 && page.Number > 1 {
		if total, err = countFrom(ctx, s.db, from, a); err != nil {
			return nil, 0, fmt.Errorf("list deployments: %w", err)
		}
	}
	return deployments, total, nil
}

// lockDeployment reads the deployment guid through q, locking it and its
// app for the rest of the transaction.
func lockDeployment(ctx context.Context, q querier, guid string) (Deployment, error) {
	return scanDeployment(q.QueryRowContext(ctx, `SELECT `+deploymentColumns+deploymentFrom+`
		WHERE dp.guid = $1 FOR UPDATE OF dp, a`, guid))
}

// CancelDeployment cancels the deployment guid through q, which should be
// a transaction: the app gets its previous droplet and start count back,
// so the controller scales the previous instances up again and then
// removes the new ones. reason is "" for a user's cancel, or the reason
// the controller gave the deployment up. Only a DEPLOYING or PAUSED deployment
// can be canceled; others return ErrDeploymentState.
func CancelDeployment(ctx context.Context, q querier, guid, reason string) (Deployment, error) {
	d, err := lockDeployment(ctx, q, guid)
	if err != nil {
		return Deployment{}, fmt.Errorf("cancel deployment %s: %w", guid, err)
	}
	if d.State != DeploymentStateDeploying && d.State != DeploymentStatePaused {
		return d, fmt.Errorf("cancel deployment %s in state %s: %w", guid, d.State, ErrDeploymentState)
	}
	// Cloud Controller's cancel (app/actions/deployment_cancel.rb) assigns
	// the previous droplet without recording a revision. So this UPDATE turns
	// the apps_revision trigger off with a transaction-local setting, and the
	// next statement turns it on again for the rest of the transaction.
	_, err = q.ExecContext(ctx, `WITH quiet AS (SELECT set_config('ferry.revision_on_droplet', 'off', true))
		UPDATE apps SET current_droplet_guid = COALESCE($2, current_droplet_guid),
		start_count = $3, updated_at = now() FROM quiet WHERE guid = $1`,
		d.AppGUID, nullIfEmpty(d.PreviousDropletGUID), d.PreviousStartCount)
	if err != nil {
		return Deployment{}, fmt.Errorf("cancel deployment %s: %w", guid, mapError(err))
	}
	if _, err := q.ExecContext(ctx, `SELECT set_config('ferry.revision_on_droplet', 'on', true)`); err != nil {
		return Deployment{}, fmt.Errorf("cancel deployment %s: %w", guid, mapError(err))
	}
	return setDeploymentState(ctx, q, d, DeploymentStateCanceling, DeploymentStatusActive, DeploymentReasonCanceling, reason)
}

// ContinueDeployment moves a paused canary deployment through q to its
// next step; after the last step it deploys the remaining instances. Any
// other state returns ErrDeploymentState.
func ContinueDeployment(ctx context.Context, q querier, guid string) (Deployment, error) {
	d, err := lockDeployment(ctx, q, guid)
	if err != nil {
		return Deployment{}, fmt.Errorf("continue deployment %s: %w", guid, err)
	}
	if d.State != DeploymentStatePaused {
		return d, fmt.Errorf("continue deployment %s in state %s: %w", guid, d.State, ErrDeploymentState)
	}
	_, err = q.ExecContext(ctx, `UPDATE deployments SET canary_step = canary_step + 1 WHERE guid = $1`, guid)
	if err != nil {
		return Deployment{}, fmt.Errorf("continue deployment %s: %w", guid, mapError(err))
	}
	d.CanaryStep++
	return setDeploymentState(ctx, q, d, DeploymentStateDeploying, DeploymentStatusActive, DeploymentReasonDeploying, "")
}

func setDeploymentState(ctx context.Context, q querier, d Deployment, state, value, reason, statusError string) (Deployment, error) {
	_, err := q.ExecContext(ctx, `UPDATE deployments SET state = $2, status_value = $3, status_reason = $4,
		status_error = $5, last_status_change = now(), updated_at = now() WHERE guid = $1`,
		d.GUID, state, value, reason, statusError)
	if err != nil {
		return Deployment{}, fmt.Errorf("set state of deployment %s: %w", d.GUID, mapError(err))
	}
	updated, err := deploymentThrough(ctx, q, d.GUID)
	if err != nil {
		return Deployment{}, fmt.Errorf("set state of deployment %s: %w", d.GUID, err)
	}
	return updated, nil
}

// AdvanceDeployment records the controller's transition of the deployment
// guid through q, which should be a transaction: from state from (a
// DEPLOYING deployment to PAUSED, DEPLOYED or SUPERSEDED, a CANCELING one
// to CANCELED or SUPERSEDED). A deployment no longer in state from is left
// alone and returned with ErrDeploymentState, because a user's action
// changed it since the controller read it. So is a deployment to
// supersede whose app still runs its target start count.
func AdvanceDeployment(ctx context.Context, q querier, guid, from, to string) (Deployment, error) {
	d, err := lockDeployment(ctx, q, guid)
	if err != nil {
		return Deployment{}, fmt.Errorf("advance deployment %s: %w", guid, err)
	}
	if d.State != from || !d.Active() {
		return d, fmt.Errorf("advance deployment %s from %s: it is %s: %w", guid, from, d.State, ErrDeploymentState)
	}
	switch to {
	case DeploymentStatePaused:
		return setDeploymentState(ctx, q, d, DeploymentStatePaused, DeploymentStatusActive, DeploymentReasonPaused, "")
	case DeploymentStateDeployed:
		return setDeploymentState(ctx, q, d, DeploymentStateDeployed, DeploymentStatusFinalized, DeploymentReasonDeployed, "")
	case DeploymentStateCanceled:
		return setDeploymentState(ctx, q, d, DeploymentStateCanceled, DeploymentStatusFinalized, DeploymentReasonCanceled, d.StatusError)
	case DeploymentReasonSuperseded:
		stale, err := deploymentStale(ctx, q, d)
		if err != nil {
			return Deployment{}, fmt.Errorf("advance deployment %s: %w", guid, err)
		}
		if !stale {
			return d, fmt.Errorf("supersede deployment %s: its app still runs it: %w", guid, ErrDeploymentState)
		}
		return setDeploymentState(ctx, q, d, DeploymentStateDeployed, DeploymentStatusFinalized, DeploymentReasonSuperseded, d.StatusError)
	}
	return Deployment{}, fmt.Errorf("advance deployment %s: unknown target %q", guid, to)
}

// deploymentStale reports whether the app of d was stopped, or started or
// restarted without a deployment, since d began: then the app no longer
// runs d's target start count, and d is superseded.
func deploymentStale(ctx context.Context, q querier, d Deployment) (bool, error) {
	var state string
	var startCount int64
	err := q.QueryRowContext(ctx, `SELECT state, start_count FROM apps WHERE guid = $1`, d.AppGUID).Scan(&state, &startCount)
	if err != nil {
		return false, mapError(err)
	}
	return state != AppStateStarted || startCount != d.TargetStartCount(), nil
}

// UpdateDeploymentMetadata applies patch to the labels and annotations of
// the deployment guid through q and returns it, or ErrNotFound.
func UpdateDeploymentMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (Deployment, error) {
	a := args{guid}
	meta, err := metadataAssignments(patch, &a)
	if err != nil {
		return Deployment{}, fmt.Errorf("update deployment %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE deployments SET updated_at = now()`+meta+` WHERE guid = $1`, a...)
	if err := affectedOne(res, err); err != nil {
		return Deployment{}, fmt.Errorf("update deployment %s: %w", guid, err)
	}
	d, err := deploymentThrough(ctx, q, guid)
	if err != nil {
		return Deployment{}, fmt.Errorf("update deployment %s: %w", guid, err)
	}
	return d, nil
}
