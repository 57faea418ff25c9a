package store_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

// deploymentSeed is a started app with a current droplet and a second
// staged droplet.
type deploymentSeed struct {
	st              *store.Store
	app             string
	first, second   string
	firstStartCount int64
}

func newDeploymentSeed(t *testing.T) deploymentSeed {
	t.Helper()
	seed, st := newStagingSeed(t)
	ctx := context.Background()
	app := seed.app(seed.space(seed.org("acme", nil), "dev", nil), "web")
	first := seed.droplet(app, uuid.NewString())
	second := seed.droplet(app, uuid.NewString())
	if _, err := store.SetAppCurrentDroplet(ctx, st.DB(), app, first.GUID); err != nil {
		t.Fatal(err)
	}
	started, err := store.SetAppState(ctx, st.DB(), app, store.AppStateStarted)
	if err != nil {
		t.Fatal(err)
	}
	return deploymentSeed{st: st, app: app, first: first.GUID, second: second.GUID, firstStartCount: started.StartCount}
}

func (s deploymentSeed) create(t *testing.T, c store.DeploymentCreate) store.Deployment {
	t.Helper()
	c.AppGUID = s.app
	if c.Strategy == "" {
		c.Strategy = store.DeploymentStrategyRolling
	}
	var d store.Deployment
	err := s.st.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		d, err = store.CreateDeployment(context.Background(), tx, c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDeploymentLifecycle(t *testing.T) {
	s := newDeploymentSeed(t)
	ctx := context.Background()

	d := s.create(t, store.DeploymentCreate{DropletGUID: s.second, MaxInFlight: 2})
	if d.State != store.DeploymentStateDeploying || !d.Active() || d.StatusReason != store.DeploymentReasonDeploying {
		t.Errorf("new deployment = %s %s/%s", d.State, d.StatusValue, d.StatusReason)
	}
	if d.PreviousStartCount != s.firstStartCount || d.StartCount != s.firstStartCount+1 || d.TargetStartCount() != d.StartCount {
		t.Errorf("start counts = %d -> %d, want %d -> %d", d.PreviousStartCount, d.StartCount, s.firstStartCount, s.firstStartCount+1)
	}
	if d.DropletGUID != s.second || d.PreviousDropletGUID != s.first || d.MaxInFlight != 2 {
		t.Errorf("deployment droplets %s after %s, max in flight %d", d.DropletGUID, d.PreviousDropletGUID, d.MaxInFlight)
	}

	active, err := s.st.ActiveDeployment(ctx, s.app)
	if err != nil || active.GUID != d.GUID {
		t.Fatalf("active deployment = %v, %v; want %s", active.GUID, err, d.GUID)
	}
	// The app still runs the deployment's start count, so it is not stale.
	_, err = store.AdvanceDeployment(ctx, s.st.DB(), d.GUID, store.DeploymentStateDeploying, store.DeploymentReasonSuperseded)
	if !errors.Is(err, store.ErrDeploymentState) {
		t.Errorf("supersede a current deployment: %v, want ErrDeploymentState", err)
	}
	// A paused deployment is not deploying any more.
	if _, err := store.AdvanceDeployment(ctx, s.st.DB(), d.GUID, store.DeploymentStateDeploying, store.DeploymentStatePaused); err != nil {
		t.Fatal(err)
	}
	_, err = store.AdvanceDeployment(ctx, s.st.DB(), d.GUID, store.DeploymentStateDeploying, store.DeploymentStateDeployed)
	if !errors.Is(err, store.ErrDeploymentState) {
		t.Errorf("advance from a state the deployment left: %v, want ErrDeploymentState", err)
	}

	canceled, err := store.CancelDeployment(ctx, s.st.DB(), d.GUID, "new instance 0 crashed 3 times")
	if err != nil {
		t.Fatal(err)
	}
	if canceled.State != store.DeploymentStateCanceling || canceled.StatusError == "" ||
		canceled.TargetStartCount() != s.firstStartCount {
		t.Errorf("canceled deployment = %s error %q target %d", canceled.State, canceled.StatusError, canceled.TargetStartCount())
	}
	app, err := s.st.App(ctx, store.Visibility{All: true}, s.app)
	if err != nil {
		t.Fatal(err)
	}
	if app.DropletGUID != s.first || app.StartCount != s.firstStartCount {
		t.Errorf("app after cancel: droplet %s start count %d", app.DropletGUID, app.StartCount)
	}
	final, err := store.AdvanceDeployment(ctx, s.st.DB(), d.GUID, store.DeploymentStateCanceling, store.DeploymentStateCanceled)
	if err != nil {
		t.Fatal(err)
	}
	if final.Active() || final.StatusReason != store.DeploymentReasonCanceled || final.StatusError != canceled.StatusError {
		t.Errorf("finished cancel = %s/%s error %q", final.StatusValue, final.StatusReason, final.StatusError)
	}
	if _, err := s.st.ActiveDeployment(ctx, s.app); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("active deployment after cancel: %v, want ErrNotFound", err)
	}
}

func TestDeploymentSupersedes(t *testing.T) {
	s := newDeploymentSeed(t)
	ctx := context.Background()
	first := s.create(t, store.DeploymentCreate{DropletGUID: s.second})
	second := s.create(t, store.DeploymentCreate{})

	got, err := s.st.Deployment(ctx, store.Visibility{All: true}, first.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Active() || got.StatusReason != store.DeploymentReasonSuperseded {
		t.Errorf("older deployment = %s/%s, want FINALIZED/SUPERSEDED", got.StatusValue, got.StatusReason)
	}
	if second.DropletGUID != s.second || second.StartCount != first.StartCount+1 {
		t.Errorf("restart deployment droplet %s start count %d", second.DropletGUID, second.StartCount)
	}
	list, total, err := s.st.Deployments(ctx, store.DeploymentFilter{AppGUIDs: []string{s.app},
		StatusValues: []string{store.DeploymentStatusActive}}, store.Page{}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(list) != 1 || list[0].GUID != second.GUID {
		t.Errorf("active deployments = %d %v, want only %s", total, list, second.GUID)
	}

	// Stopping the app makes the active deployment stale.
	if _, err := store.SetAppState(ctx, s.st.DB(), s.app, store.AppStateStopped); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AdvanceDeployment(ctx, s.st.DB(), second.GUID, store.DeploymentStateDeploying,
		store.DeploymentReasonSuperseded); err != nil {
		t.Errorf("supersede the deployment of a stopped app: %v", err)
	}
}

func TestRevisionDescriptions(t *testing.T) {
	s := newDeploymentSeed(t)
	ctx := context.Background()
	if _, err := store.SetAppCurrentDroplet(ctx, s.st.DB(), s.app, s.second); err != nil {
		t.Fatal(err)
	}
	revisions, _, err := s.st.Revisions(ctx, store.RevisionFilter{AppGUIDs: []string{s.app}},
		store.Page{OrderBy: "version"}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(revisions) != 2 {
		t.Fatalf("revisions = %+v, want 2", revisions)
	}
	// Cloud Controller describes an app's first revision as "Initial
	// revision." and a later one by what changed.
	if got := revisions[0].Description; got != "Initial revision." {
		t.Errorf("revision 1 description = %q, want %q", got, "Initial revision.")
	}
	if got := revisions[1].Description; got != "New droplet deployed." {
		t.Errorf("revision 2 description = %q, want %q", got, "New droplet deployed.")
	}
}

func TestCancelRecordsNoRevision(t *testing.T) {
	s := newDeploymentSeed(t)
	ctx := context.Background()
	d := s.create(t, store.DeploymentCreate{DropletGUID: s.second})

	// Cloud Controller's cancel assigns the previous droplet again without
	// recording a revision. A later droplet change in the same transaction
	// records one as usual.
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := store.CancelDeployment(ctx, tx, d.GUID, ""); err != nil {
			return err
		}
		_, err := store.SetAppCurrentDroplet(ctx, tx, s.app, s.second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	revisions, _, err := s.st.Revisions(ctx, store.RevisionFilter{AppGUIDs: []string{s.app}},
		store.Page{OrderBy: "version"}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var droplets []string
	for _, r := range revisions {
		droplets = append(droplets, r.DropletGUID)
	}
	want := []string{s.first, s.second, s.second}
	if !slices.Equal(droplets, want) {
		t.Errorf("revision droplets = %v, want %v (no revision for the cancel)", droplets, want)
	}
}

func TestRevisionsRecordDropletChanges(t *testing.T) {
	s := newDeploymentSeed(t)
	ctx := context.Background()
	if _, err := store.SetAppCurrentDroplet(ctx, s.st.DB(), s.app, s.second); err != nil {
		t.Fatal(err)
	}
	revisions, total, err := s.st.Revisions(ctx, store.RevisionFilter{AppGUIDs: []string{s.app}},
		store.Page{OrderBy: "version"}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || revisions[0].DropletGUID != s.first || revisions[1].DropletGUID != s.second ||
		revisions[0].Version != 1 || revisions[1].Version != 2 {
		t.Fatalf("revisions = %+v", revisions)
	}

	d := s.create(t, store.DeploymentCreate{RevisionGUID: revisions[0].GUID})
	rollback, err := s.st.Revision(ctx, store.Visibility{All: true}, d.RevisionGUID)
	if err != nil {
		t.Fatal(err)
	}
	if rollback.Version != 3 || rollback.DropletGUID != s.first || rollback.Description != "Rolled back to revision 1." {
		t.Errorf("rollback revision = %+v", rollback)
	}
	deployed, _, err := s.st.Revisions(ctx, store.RevisionFilter{AppGUIDs: []string{s.app}, Deployed: true}, store.Page{},
		store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(deployed) != 1 || deployed[0].GUID != rollback.GUID {
		t.Errorf("deployed revisions = %+v, want revision 3", deployed)
	}
	if _, err := store.DeleteDroplet(ctx, s.st.DB(), s.second); err != nil {
		t.Fatal(err)
	}
	gone, err := s.st.Revision(ctx, store.Visibility{All: true}, revisions[1].GUID)
	if err != nil {
		t.Fatal(err)
	}
	if gone.Deployable() {
		t.Errorf("revision of a deleted droplet is deployable")
	}
}
