package cfapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// registerJobs registers every async operation the API starts.
func (a *API) registerJobs() {
	for _, group := range []map[string]jobs.Func{
		a.organizationJobs(),
		a.spaceJobs(),
		a.roleJobs(),
		a.userJobs(),
		a.appJobs(),
		a.packageJobs(),
		a.manifestJobs(),
		a.dropletJobs(),
		a.domainJobs(),
		a.routeJobs(),
	} {
		for op, fn := range group {
			a.jobs.Handle(op, fn)
		}
	}
}

// newJob returns a PROCESSING job for operation on a resource, owned by actor.
// Insert it with store.CreateJob in the transaction that starts the
// operation, respond with accepted(a.jobURL(job.GUID), nil), and call
// a.jobs.Wake() after the commit.
func newJob(actor *auth.Actor, operation, resourceType, resourceGUID string) store.Job {
	return store.Job{
		GUID:         uuid.NewString(),
		Operation:    operation,
		ResourceType: resourceType,
		ResourceGUID: resourceGUID,
		UserGUID:     actor.UserGUID,
	}
}

// jobURL is the absolute URL the cf CLI polls for a job.
func (a *API) jobURL(guid string) string { return a.url("/v3/jobs/", guid) }

// startJob inserts job outside any other transaction and wakes the runner.
func (a *API) startJob(ctx context.Context, job store.Job) error {
	if err := store.CreateJob(ctx, a.store.DB(), job); err != nil {
		return err
	}
	a.jobs.Wake()
	return nil
}
