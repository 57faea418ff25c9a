package cfapi

import (
	"net/http"
	"strings"

	"github.com/ferrycf/ferry/store"
)

func (a *API) jobRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/jobs/{guid}", handler: a.getJob},
	}
}

type jobJSON struct {
	GUID      string           `json:"guid"`
	CreatedAt string           `json:"created_at"`
	UpdatedAt string           `json:"updated_at"`
	Operation string           `json:"operation"`
	State     string           `json:"state"`
	Errors    []store.JobError `json:"errors"`
	Warnings  []jobWarningJSON `json:"warnings"`
	Links     map[string]link  `json:"links"`
}

type jobWarningJSON struct {
	Detail string `json:"detail"`
}

// getJob serves GET /v3/jobs/:guid, which the cf CLI polls after every 202.
// Only the job's creator and actors who read everything may see a job. Any
// other actor gets the same 404 as for a job that does not exist.
func (a *API) getJob(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}

	job, err := a.store.Job(r.Context(), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "Job")
	}
	if !actor.ReadsAll() && job.UserGUID != actor.UserGUID {
		return nil, notFoundAs(store.ErrNotFound, "Job")
	}
	return ok(a.presentJob(job)), nil
}

func (a *API) presentJob(job store.Job) jobJSON {
	out := jobJSON{
		GUID:      job.GUID,
		CreatedAt: timestamp(job.CreatedAt),
		UpdatedAt: timestamp(job.UpdatedAt),
		Operation: job.Operation,
		State:     job.State,
		Errors:    []store.JobError{},
		Warnings:  []jobWarningJSON{},
		Links:     map[string]link{"self": {Href: a.jobURL(job.GUID)}},
	}
	if job.State != store.JobComplete && job.Errors != nil {
		out.Errors = job.Errors
	}
	for _, w := range job.Warnings {
		out.Warnings = append(out.Warnings, jobWarningJSON{Detail: w})
	}
	if jobResourceRemains(job) {
		out.Links[job.ResourceType] = link{Href: a.url("/v3/", job.ResourceType, "s/", job.ResourceGUID)}
	}
	return out
}

// jobResourceRemains reports whether the job's resource should still exist,
// so the job links to it as Cloud Controller does: every job except a
// completed delete.
func jobResourceRemains(job store.Job) bool {
	if job.ResourceType == "" || job.ResourceGUID == "" {
		return false
	}
	return !(job.State == store.JobComplete && strings.HasSuffix(job.Operation, ".delete"))
}
