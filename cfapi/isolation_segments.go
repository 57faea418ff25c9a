package cfapi

import (
	"net/http"

	"github.com/ferrycf/ferry/apierr"
)

// Ferry has no isolation segments: every app runs on the cluster Ferry
// manages. The list endpoints exist because `cf org` and `cf space` read
// them and fail on a 404; they validate their query like any list and
// return no resources.
//
// TODO: serve real isolation segments once an app can be placed on a
// dedicated node pool.
func (a *API) isolationSegmentRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/isolation_segments", handler: a.listIsolationSegments},
		{method: http.MethodGet, path: "/v3/isolation_segments/{guid}", handler: a.getIsolationSegment},
	}
}

func (a *API) listIsolationSegments(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, listSpec{
		filters: []string{"guids", "names", "organization_guids", "label_selector"},
		orderBy: []string{"created_at", "updated_at", "name"},
	})
	if err != nil {
		return nil, err
	}
	return ok(a.list(r, q.page, 0, []struct{}{})), nil
}

func (a *API) getIsolationSegment(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	return nil, apierr.NotFound("Isolation segment")
}
