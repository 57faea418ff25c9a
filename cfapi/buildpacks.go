package cfapi

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
)

// buildpackLifecycleCNB is the lifecycle of every buildpack Ferry lists:
// they are the Cloud Native Buildpacks inside the stacks' builder images.
const buildpackLifecycleCNB = "cnb"

func buildpackGUID(stack, id string) string {
	return uuid.NewSHA1(catalogNamespace, []byte("buildpack/"+stack+"/"+id)).String()
}

func (a *API) buildpackRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/buildpacks", handler: a.listBuildpacks},
		{method: http.MethodGet, path: "/v3/buildpacks/{guid}", handler: a.getBuildpack},
	}
}

type buildpackJSON struct {
	GUID      string       `json:"guid"`
	CreatedAt string       `json:"created_at"`
	UpdatedAt string       `json:"updated_at"`
	Name      string       `json:"name"`
	Stack     string       `json:"stack"`
	State     string       `json:"state"`
	Filename  *string      `json:"filename"`
	Position  int          `json:"position"`
	Lifecycle string       `json:"lifecycle"`
	Enabled   bool         `json:"enabled"`
	Locked    bool         `json:"locked"`
	Metadata  metadataJSON `json:"metadata"`
	Links     struct {
		Self   link `json:"self"`
		Upload link `json:"upload"`
	} `json:"links"`
}

// buildpacks returns every buildpack of every readable builder. Positions
// run across stacks in configuration order and, within a stack, in the
// builder's detection order, starting at 1 as in Cloud Controller. The
// GUID derives from the stack and the CNB id, so it is stable.
func (a *API) buildpacks(r *http.Request) []buildpackJSON {
	var out []buildpackJSON
	for _, s := range a.stacks(r.Context()) {
		created := s.builder.Created
		if created.IsZero() {
			created = time.Unix(0, 0)
		}
		for _, bp := range s.builder.Buildpacks {
			guid := buildpackGUID(s.name, bp.ID)
			body := buildpackJSON{
				GUID:      guid,
				CreatedAt: timestamp(created),
				UpdatedAt: timestamp(created),
				Name:      bp.ID,
				Stack:     s.name,
				State:     "READY",
				Filename:  nullable(bp.ID + "@" + bp.Version),
				Position:  len(out) + 1,
				Lifecycle: buildpackLifecycleCNB,
				Enabled:   true,
				Metadata:  presentMetadata(nil, nil),
			}
			body.Links.Self = link{Href: a.url("/v3/buildpacks/", guid)}
			body.Links.Upload = link{Href: a.url("/v3/buildpacks/", guid, "/upload"), Method: http.MethodPost}
			out = append(out, body)
		}
	}
	return out
}

var buildpackListSpec = listSpec{
	filters: []string{"guids", "names", "stacks", "lifecycle", "label_selector"},
	orderBy: []string{"position", "created_at", "updated_at"},
}

// listBuildpacks serves GET /v3/buildpacks: the buildpacks in the stacks'
// builder images, read from the images' labels.
func (a *API) listBuildpacks(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, buildpackListSpec)
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}
	if lc := q.filter("lifecycle"); lc != nil && (len(lc) != 1 || (lc[0] != "buildpack" && lc[0] != buildpackLifecycleCNB)) {
		return nil, apierr.BadQueryParameter(`Lifecycle must be either "buildpack" or "cnb"`)
	}

	var matched []buildpackJSON
	for _, bp := range a.buildpacks(r) {
		if !inFilter(q.filter("guids"), bp.GUID) || !inFilter(q.filter("names"), bp.Name) ||
			!inFilter(q.filter("stacks"), bp.Stack) || !inFilter(q.filter("lifecycle"), bp.Lifecycle) ||
			!matchesUnlabelled(selector) {
			continue
		}
		matched = append(matched, bp)
	}
	slices.SortStableFunc(matched, func(x, y buildpackJSON) int {
		switch q.page.OrderBy {
		case "created_at":
			return cmp.Compare(x.CreatedAt, y.CreatedAt)
		case "updated_at":
			return cmp.Compare(x.UpdatedAt, y.UpdatedAt)
		default:
			return cmp.Compare(x.Position, y.Position)
		}
	})
	return ok(a.list(r, q.page, len(matched), pageOf(matched, q.page))), nil
}

func (a *API) getBuildpack(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	guid := pathParam(r, "guid")
	for _, bp := range a.buildpacks(r) {
		if bp.GUID == guid {
			return ok(bp), nil
		}
	}
	return nil, apierr.NotFound("Buildpack")
}
