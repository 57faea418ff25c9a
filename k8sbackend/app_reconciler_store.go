package k8sbackend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ferrycf/ferry/store"
)

// appsPageSize is how many apps one resync query reads.
const appsPageSize = 1000

// StoreDesiredApps reads the desired state of apps from PostgreSQL.
type StoreDesiredApps struct {
	Store *store.Store
}

// DesiredApp reads an app, its space and org names, its current droplet,
// its processes and the running environment variable group. The reads are
// not one transaction, so a change between them reaches the cluster in a
// later reconcile.
func (d StoreDesiredApps) DesiredApp(ctx context.Context, guid string) (AppSpec, error) {
	all := store.Visibility{All: true}
	app, err := d.Store.App(ctx, all, guid)
	if err != nil {
		return AppSpec{}, err
	}
	if app.DropletGUID == "" {
		return AppSpec{GUID: app.GUID, Name: app.Name, SpaceGUID: app.SpaceGUID, OrgGUID: app.OrgGUID}, nil
	}

	space, err := d.Store.Space(ctx, app.SpaceGUID, all)
	if err != nil {
		return AppSpec{}, fmt.Errorf("space of app %s: %w", guid, err)
	}
	org, err := d.Store.Organization(ctx, app.OrgGUID, all)
	if err != nil {
		return AppSpec{}, fmt.Errorf("organization of app %s: %w", guid, err)
	}
	droplet, err := d.Store.Droplet(ctx, all, app.DropletGUID)
	if errors.Is(err, store.ErrNotFound) {
		// The droplet went after the app was read, which clears the app's
		// current droplet too.
		return AppSpec{GUID: app.GUID, Name: app.Name, SpaceGUID: app.SpaceGUID, OrgGUID: app.OrgGUID}, nil
	}
	if err != nil {
		return AppSpec{}, fmt.Errorf("current droplet of app %s: %w", guid, err)
	}
	processes, err := store.AppProcesses(ctx, d.Store.DB(), guid)
	if err != nil {
		return AppSpec{}, err
	}
	running, err := d.Store.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupRunning)
	if err != nil {
		return AppSpec{}, err
	}
	app.EnvironmentVariables = withGroupEnv(running.Variables, app.EnvironmentVariables)
	spec, err := AppSpecFromStore(app, space.Name, org.Name, droplet, processes)
	if err != nil {
		return AppSpec{}, err
	}
	deployment, err := d.Store.ActiveDeployment(ctx, guid)
	switch {
	case err == nil:
		spec.Deployment = DeploymentSpecFromStore(deployment)
	case !errors.Is(err, store.ErrNotFound):
		return AppSpec{}, err
	}
	return spec, nil
}

// DeploymentSpecFromStore returns what the reconciler needs of an active
// deployment.
func DeploymentSpecFromStore(d store.Deployment) *DeploymentSpec {
	return &DeploymentSpec{
		GUID:           d.GUID,
		State:          d.State,
		Strategy:       d.Strategy,
		MaxInFlight:    d.MaxInFlight,
		CanarySteps:    d.CanarySteps,
		CanaryStep:     d.CanaryStep,
		TargetRevision: fmt.Sprint(d.TargetStartCount()),
	}
}

// AdvanceDeployment records a transition of an active deployment from
// state from to to, which is a store deployment state or
// store.DeploymentReasonSuperseded. A deployment that a user changed in
// the meantime is left alone and wraps store.ErrDeploymentState.
func (d StoreDesiredApps) AdvanceDeployment(ctx context.Context, guid, from, to string) error {
	return d.Store.InTx(ctx, func(tx *sql.Tx) error {
		_, err := store.AdvanceDeployment(ctx, tx, guid, from, to)
		return err
	})
}

// FailDeployment cancels a deployment whose new instances cannot run,
// with reason as its status error. A deployment that is no longer
// deploying or paused wraps store.ErrDeploymentState.
func (d StoreDesiredApps) FailDeployment(ctx context.Context, guid, reason string) error {
	return d.Store.InTx(ctx, func(tx *sql.Tx) error {
		_, err := store.CancelDeployment(ctx, tx, guid, reason)
		return err
	})
}

// withGroupEnv merges an environment variable group's variables and an
// app's own into a new map. The app's value wins where both set a name, as
// in Cloud Controller.
func withGroupEnv(group, app map[string]string) map[string]string {
	env := make(map[string]string, len(group)+len(app))
	for name, value := range group {
		env[name] = value
	}
	for name, value := range app {
		env[name] = value
	}
	return env
}

// DesiredAppGUIDs returns every app with a current droplet, reading all
// apps a page at a time.
// TODO: select only apps with a current droplet in SQL once installations
// hold apps in the tens of thousands.
func (d StoreDesiredApps) DesiredAppGUIDs(ctx context.Context) ([]string, error) {
	var guids []string
	for page := 1; ; page++ {
		apps, total, err := d.Store.Apps(ctx, store.AppFilter{OmitEnvironment: true}, store.Page{Number: page, PerPage: appsPageSize},
			store.Visibility{All: true})
		if err != nil {
			return nil, err
		}
		for _, app := range apps {
			if app.DropletGUID != "" {
				guids = append(guids, app.GUID)
			}
		}
		if len(apps) == 0 || page*appsPageSize >= total {
			return guids, nil
		}
	}
}

// AppSpecFromStore returns the desired state of an app from its stored
// rows. A process without a command of its own runs the droplet's
// command for its type.
func AppSpecFromStore(app store.App, spaceName, orgName string, droplet store.Droplet, processes []store.Process) (AppSpec, error) {
	dropletSpec, err := DropletSpecFrom(droplet)
	if err != nil {
		return AppSpec{}, err
	}
	spec := AppSpec{
		GUID:      app.GUID,
		Name:      app.Name,
		SpaceGUID: app.SpaceGUID,
		SpaceName: spaceName,
		OrgGUID:   app.OrgGUID,
		OrgName:   orgName,
		Started:   app.State == store.AppStateStarted,
		Droplet:   &dropletSpec,
		Env:       app.EnvironmentVariables,
		Revision:  AppRevision(app),
		// TODO: fill in the app's routes once routes exist.
		URIs: nil,
	}
	for _, p := range processes {
		command := ""
		if p.Command != nil {
			command = *p.Command
		}
		spec.Processes = append(spec.Processes, ProcessSpec{
			GUID:          p.GUID,
			Type:          p.Type,
			Command:       command,
			Instances:     int32(p.Instances),
			MemoryMB:      p.MemoryMB,
			DiskMB:        p.DiskMB,
			CPUMillicores: int64(p.CPUMillicores),
			LogRateLimit:  p.LogRateLimit,
			HealthCheck:   healthCheckFromStore(p.HealthCheck),
			Readiness:     healthCheckFromStore(p.Readiness),
		})
	}
	return spec, nil
}

// AppRevision returns the revision of an app's latest start: its start
// count, which goes up on every start and restart. The pod template
// carries it, so a restart replaces running pods even when nothing else
// changed.
func AppRevision(app store.App) string { return fmt.Sprint(app.StartCount) }

func healthCheckFromStore(hc store.HealthCheck) HealthCheck {
	return HealthCheck{
		Type:              hc.Type,
		Endpoint:          hc.Endpoint,
		Timeout:           int32(hc.Timeout),
		InvocationTimeout: int32(hc.InvocationTimeout),
		Interval:          int32(hc.Interval),
	}
}
