package cfapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

// deploymentView is the deployment JSON as the cf CLI and these tests
// read it.
type deploymentView struct {
	GUID   string `json:"guid"`
	State  string `json:"state"`
	Status struct {
		Value   string `json:"value"`
		Reason  string `json:"reason"`
		Details struct {
			LastStatusChange string `json:"last_status_change"`
			Error            string `json:"error"`
		} `json:"details"`
		Canary *struct {
			Steps struct {
				Current int `json:"current"`
				Total   int `json:"total"`
			} `json:"steps"`
		} `json:"canary"`
	} `json:"status"`
	Strategy string `json:"strategy"`
	Options  struct {
		MaxInFlight int `json:"max_in_flight"`
		Canary      *struct {
			Steps []struct {
				InstanceWeight int `json:"instance_weight"`
			} `json:"steps"`
		} `json:"canary"`
	} `json:"options"`
	Droplet         *struct{ GUID string } `json:"droplet"`
	PreviousDroplet *struct{ GUID string } `json:"previous_droplet"`
	Revision        *struct {
		GUID    string `json:"guid"`
		Version int    `json:"version"`
	} `json:"revision"`
	NewProcesses []struct {
		GUID string `json:"guid"`
		Type string `json:"type"`
	} `json:"new_processes"`
	Links map[string]struct {
		Href   string `json:"href"`
		Method string `json:"method"`
	} `json:"links"`
}

type revisionView struct {
	GUID        string `json:"guid"`
	Version     int    `json:"version"`
	Description string `json:"description"`
	Deployable  bool   `json:"deployable"`
	Droplet     struct {
		GUID string `json:"guid"`
	} `json:"droplet"`
}

func deploymentBody(appGUID string, extra map[string]any) map[string]any {
	body := map[string]any{"relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// startedWithDroplet stages a droplet of the fixture's app, assigns it and
// starts the app, returning the droplet.
func (f *stagingFixture) startedWithDroplet() string {
	f.t.Helper()
	_, droplet := f.stagedBuild(f.appGUID)
	f.assignDroplet(f.developer, f.appGUID, droplet).expect(http.StatusOK)
	f.env.do(http.MethodPost, "/v3/apps/"+f.appGUID+"/actions/start", f.developer, nil).expect(http.StatusOK)
	return droplet
}

func (f *stagingFixture) startCount() int64 {
	f.t.Helper()
	app, err := f.env.store.App(context.Background(), store.Visibility{All: true}, f.appGUID)
	if err != nil {
		f.t.Fatal(err)
	}
	return app.StartCount
}

func TestDeploymentRollingWithDroplet(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	first := f.startedWithDroplet()
	startCount := f.startCount()
	_, second := f.stagedBuild(f.appGUID)

	var d deploymentView
	env.do(http.MethodPost, "/v3/deployments", f.developer, deploymentBody(f.appGUID, map[string]any{
		"droplet": map[string]any{"guid": second}, "strategy": "rolling", "options": map[string]any{"max_in_flight": 2},
	})).expect(http.StatusCreated).decode(&d)
	if d.State != "DEPLOYING" || d.Status.Value != "ACTIVE" || d.Status.Reason != "DEPLOYING" {
		t.Errorf("new deployment state = %s %s/%s, want DEPLOYING ACTIVE/DEPLOYING", d.State, d.Status.Value, d.Status.Reason)
	}
	if d.Strategy != "rolling" || d.Options.MaxInFlight != 2 || d.Status.Canary != nil {
		t.Errorf("strategy and options = %s %+v", d.Strategy, d.Options)
	}
	if d.Droplet == nil || d.Droplet.GUID != second || d.PreviousDroplet == nil || d.PreviousDroplet.GUID != first {
		t.Errorf("droplets = %+v, previous %+v, want %s after %s", d.Droplet, d.PreviousDroplet, second, first)
	}
	if d.Revision == nil || d.Revision.Version != 2 {
		t.Errorf("revision = %+v, want version 2", d.Revision)
	}
	if d.Links["cancel"].Method != http.MethodPost || d.Links["continue"].Href != "" {
		t.Errorf("links = %+v, want cancel and no continue", d.Links)
	}
	if got := f.startCount(); got != startCount+1 {
		t.Errorf("start count = %d, want %d", got, startCount+1)
	}
	var app struct {
		Relationships struct {
			CurrentDroplet struct {
				Data struct{ GUID string } `json:"data"`
			} `json:"current_droplet"`
		} `json:"relationships"`
	}
	env.do(http.MethodGet, "/v3/apps/"+f.appGUID, f.developer, nil).expect(http.StatusOK).decode(&app)
	if app.Relationships.CurrentDroplet.Data.GUID != second {
		t.Errorf("current droplet = %s, want %s", app.Relationships.CurrentDroplet.Data.GUID, second)
	}

	var list struct {
		Resources []deploymentView `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/deployments?app_guids="+f.appGUID+"&order_by=-created_at&page=1&per_page=1&status_values=ACTIVE",
		f.auditor, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].GUID != d.GUID {
		t.Errorf("active deployments = %+v, want %s", list.Resources, d.GUID)
	}

	// A newer deployment supersedes the active one.
	var restart deploymentView
	env.do(http.MethodPost, "/v3/deployments", f.supporter, deploymentBody(f.appGUID, nil)).
		expect(http.StatusCreated).decode(&restart)
	var old deploymentView
	env.do(http.MethodGet, "/v3/deployments/"+d.GUID, f.auditor, nil).expect(http.StatusOK).decode(&old)
	if old.Status.Value != "FINALIZED" || old.Status.Reason != "SUPERSEDED" {
		t.Errorf("superseded deployment status = %s/%s", old.Status.Value, old.Status.Reason)
	}
	if restart.Droplet == nil || restart.Droplet.GUID != second || restart.Revision == nil || restart.Revision.Version != 2 {
		t.Errorf("restart deployment droplet %+v revision %+v, want the current droplet's revision 2", restart.Droplet, restart.Revision)
	}
	env.do(http.MethodGet, "/v3/deployments?status_reasons=SUPERSEDED&app_guids="+f.appGUID, f.auditor, nil).
		expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].GUID != d.GUID {
		t.Errorf("superseded deployments = %+v, want %s", list.Resources, d.GUID)
	}

	events := f.events(f.appGUID)
	if last := events[len(events)-1]; last.Type != "audit.app.deployment.create" {
		t.Errorf("last audit event = %s, want audit.app.deployment.create", last.Type)
	}
}

func TestDeploymentCancelRestoresPreviousDroplet(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	first := f.startedWithDroplet()
	startCount := f.startCount()
	_, second := f.stagedBuild(f.appGUID)

	var d deploymentView
	env.do(http.MethodPost, "/v3/deployments", f.developer, deploymentBody(f.appGUID, map[string]any{
		"droplet": map[string]any{"guid": second}})).expect(http.StatusCreated).decode(&d)
	env.do(http.MethodPost, "/v3/deployments/"+d.GUID+"/actions/cancel", f.auditor, nil).expect(http.StatusForbidden)
	env.do(http.MethodPost, "/v3/deployments/"+d.GUID+"/actions/cancel", f.developer, nil).expect(http.StatusOK)

	env.do(http.MethodGet, "/v3/deployments/"+d.GUID, f.developer, nil).expect(http.StatusOK).decode(&d)
	if d.State != "CANCELING" || d.Status.Value != "ACTIVE" || d.Status.Reason != "CANCELING" {
		t.Errorf("canceled deployment = %s %s/%s, want CANCELING ACTIVE/CANCELING", d.State, d.Status.Value, d.Status.Reason)
	}
	app, err := env.store.App(context.Background(), store.Visibility{All: true}, f.appGUID)
	if err != nil {
		t.Fatal(err)
	}
	if app.DropletGUID != first || app.StartCount != startCount {
		t.Errorf("app after cancel: droplet %s start count %d, want %s and %d", app.DropletGUID, app.StartCount, first, startCount)
	}
	resp := env.do(http.MethodPost, "/v3/deployments/"+d.GUID+"/actions/cancel", f.developer, nil)
	assertTenancyError(t, resp, 422, 10008, "Cannot cancel a deployment with status: ACTIVE and reason: CANCELING")
}

func TestDeploymentCanaryPausesAndContinues(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	f.startedWithDroplet()

	var d deploymentView
	env.do(http.MethodPost, "/v3/deployments", f.developer, deploymentBody(f.appGUID, map[string]any{
		"strategy": "canary", "options": map[string]any{"canary": map[string]any{"steps": []any{
			map[string]any{"instance_weight": 20}, map[string]any{"instance_weight": 60}}}},
	})).expect(http.StatusCreated).decode(&d)
	if d.Status.Canary == nil || d.Status.Canary.Steps.Current != 1 || d.Status.Canary.Steps.Total != 2 {
		t.Errorf("canary status = %+v, want step 1 of 2", d.Status.Canary)
	}
	if d.Options.Canary == nil || len(d.Options.Canary.Steps) != 2 || d.Options.Canary.Steps[1].InstanceWeight != 60 {
		t.Errorf("canary options = %+v", d.Options.Canary)
	}
	resp := env.do(http.MethodPost, "/v3/deployments/"+d.GUID+"/actions/continue", f.developer, nil)
	assertTenancyError(t, resp, 422, 10008, "Cannot continue a deployment with status: ACTIVE and reason: DEPLOYING")

	// The controller pauses the deployment once the step's instances run.
	if _, err := store.AdvanceDeployment(context.Background(), env.store.DB(), d.GUID, store.DeploymentStateDeploying,
		store.DeploymentStatePaused); err != nil {
		t.Fatal(err)
	}
	env.do(http.MethodGet, "/v3/deployments/"+d.GUID, f.developer, nil).expect(http.StatusOK).decode(&d)
	if d.State != "PAUSED" || d.Status.Reason != "PAUSED" || d.Links["continue"].Method != http.MethodPost {
		t.Errorf("paused deployment = %s/%s links %+v", d.State, d.Status.Reason, d.Links)
	}
	env.do(http.MethodPost, "/v3/deployments/"+d.GUID+"/actions/continue", f.supporter, nil).expect(http.StatusOK)
	env.do(http.MethodGet, "/v3/deployments/"+d.GUID, f.developer, nil).expect(http.StatusOK).decode(&d)
	if d.State != "DEPLOYING" || d.Status.Canary == nil || d.Status.Canary.Steps.Current != 2 {
		t.Errorf("continued deployment = %s canary %+v, want DEPLOYING at step 2", d.State, d.Status.Canary)
	}
}

func TestDeploymentRejects(t *testing.T) {
	f := newStagingFixture(t)
	f.startedWithDroplet()
	_, other := f.stagedBuild(f.appGUID)
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		detail string
	}{
		{"unknown strategy", deploymentBody(f.appGUID, map[string]any{"strategy": "blue-green"}), 422,
			"Strategy 'blue-green' is not supported: use 'rolling' or 'canary'"},
		{"zero max in flight", deploymentBody(f.appGUID, map[string]any{"options": map[string]any{"max_in_flight": 0}}), 422,
			"Max in flight must be an integer greater than 0"},
		{"text max in flight", deploymentBody(f.appGUID, map[string]any{"options": map[string]any{"max_in_flight": "two"}}), 422,
			"Options.max_in_flight must be a number"},
		{"canary steps on rolling", deploymentBody(f.appGUID, map[string]any{"options": map[string]any{"canary": map[string]any{
			"steps": []any{map[string]any{"instance_weight": 10}}}}}), 422, "Options canary are only valid for the 'canary' strategy"},
		{"weight over 100", deploymentBody(f.appGUID, map[string]any{"strategy": "canary", "options": map[string]any{"canary": map[string]any{
			"steps": []any{map[string]any{"instance_weight": 101}}}}}), 422,
			"Canary steps instance_weight must be an integer between 1 and 100 (inclusive)"},
		{"descending weights", deploymentBody(f.appGUID, map[string]any{"strategy": "canary", "options": map[string]any{"canary": map[string]any{
			"steps": []any{map[string]any{"instance_weight": 50}, map[string]any{"instance_weight": 10}}}}}), 422,
			"Canary steps must be sorted in ascending order of instance_weight"},
		{"droplet and revision", deploymentBody(f.appGUID, map[string]any{"droplet": map[string]any{"guid": other},
			"revision": map[string]any{"guid": "r"}}), 422, "Cannot set both droplet and revision"},
		{"unknown droplet", deploymentBody(f.appGUID, map[string]any{"droplet": map[string]any{"guid": "nope"}}), 422,
			"The droplet does not exist, is not staged or belongs to another app"},
		{"unknown app", deploymentBody("no-such-app", nil), 422,
			"Unable to use app. Ensure that the app exists and you have access to it."},
		{"no app", map[string]any{"strategy": "rolling"}, 422, "Relationships app is required: send relationships.app.data.guid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.env.do(http.MethodPost, "/v3/deployments", f.developer, tc.body).expect(tc.status)
			if _, _, detail := resp.cfError(); !strings.HasPrefix(detail, tc.detail) {
				t.Errorf("detail = %q, want %q", detail, tc.detail)
			}
		})
	}
	f.env.do(http.MethodPost, "/v3/deployments", f.auditor, deploymentBody(f.appGUID, nil)).expect(http.StatusForbidden)
	f.env.do(http.MethodGet, "/v3/deployments?states=DEPLOYING&bogus=1", f.developer, nil).expect(http.StatusBadRequest)
}

func TestRevisionsAndRollback(t *testing.T) {
	f := newStagingFixture(t)
	env := f.env
	first := f.startedWithDroplet()
	_, second := f.stagedBuild(f.appGUID)
	f.assignDroplet(f.developer, f.appGUID, second).expect(http.StatusOK)

	var list struct {
		Resources []revisionView `json:"resources"`
	}
	env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/revisions?order_by=-created_at", f.auditor, nil).expect(http.StatusOK).decode(&list)
	var got []string
	for _, r := range list.Resources {
		got = append(got, r.Droplet.GUID)
	}
	if diff := cmp.Diff([]string{second, first}, got); diff != "" {
		t.Errorf("revision droplets, newest first (-want +got):\n%s", diff)
	}

	// cf rollback --version 1 looks the version up, then deploys it.
	env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/revisions?versions=1", f.developer, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].Version != 1 || !list.Resources[0].Deployable {
		t.Fatalf("revision 1 = %+v", list.Resources)
	}
	var d deploymentView
	env.do(http.MethodPost, "/v3/deployments", f.developer, deploymentBody(f.appGUID, map[string]any{
		"revision": map[string]any{"guid": list.Resources[0].GUID}})).expect(http.StatusCreated).decode(&d)
	if d.Droplet == nil || d.Droplet.GUID != first || d.Revision == nil || d.Revision.Version != 3 {
		t.Errorf("rollback deployment droplet %+v revision %+v, want %s as revision 3", d.Droplet, d.Revision, first)
	}
	var rev revisionView
	env.do(http.MethodGet, "/v3/revisions/"+d.Revision.GUID, f.auditor, nil).expect(http.StatusOK).decode(&rev)
	if rev.Description != "Rolled back to revision 1." {
		t.Errorf("rollback revision description = %q", rev.Description)
	}

	env.do(http.MethodGet, "/v3/apps/"+f.appGUID+"/revisions/deployed", f.auditor, nil).expect(http.StatusOK).decode(&list)
	if len(list.Resources) != 1 || list.Resources[0].Version != 3 {
		t.Errorf("deployed revisions = %+v, want version 3", list.Resources)
	}
	resp := env.do(http.MethodGet, "/v3/revisions/no-such-revision", f.developer, nil)
	assertTenancyError(t, resp, 404, 10010, "Revision not found")
}
