package cfapi

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// BuilderCatalog reports the contents of the stacks' builder images.
// Reading an image may reach the registry, so implementations cache.
type BuilderCatalog interface {
	// Builder returns the builder of stack, or an error when its image
	// cannot be read.
	Builder(ctx context.Context, stack string) (BuilderInfo, error)
}

// BuilderInfo describes a stack's builder image.
type BuilderInfo struct {
	// Image is the builder image as configured.
	Image       string
	Description string
	RunImage    string
	// Created is the builder image's creation time.
	Created time.Time
	// Buildpacks are in the builder's detection order.
	Buildpacks []BuildpackInfo
}

// BuildpackInfo is one CNB buildpack in a builder.
type BuildpackInfo struct {
	ID      string
	Version string
}

// catalogNamespace is the UUID namespace of the GUIDs Ferry derives for
// stacks and buildpacks, which exist only in the configuration and in
// builder images. The same name always yields the same GUID, on every
// replica and after every restart.
var catalogNamespace = uuid.MustParse("6f0e1c7a-3b1d-4f5e-9a57-2f4d9c1b8e21")

func stackGUID(name string) string {
	return uuid.NewSHA1(catalogNamespace, []byte("stack/"+name)).String()
}

func (a *API) stackRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/stacks", handler: a.listStacks},
		{method: http.MethodGet, path: "/v3/stacks/{guid}", handler: a.getStack},
	}
}

type stackJSON struct {
	GUID             string       `json:"guid"`
	CreatedAt        string       `json:"created_at"`
	UpdatedAt        string       `json:"updated_at"`
	Name             string       `json:"name"`
	Description      string       `json:"description"`
	State            string       `json:"state"`
	StateReason      *string      `json:"state_reason"`
	RunRootfsImage   string       `json:"run_rootfs_image"`
	BuildRootfsImage string       `json:"build_rootfs_image"`
	Default          bool         `json:"default"`
	Metadata         metadataJSON `json:"metadata"`
	Links            struct {
		Self link `json:"self"`
	} `json:"links"`
}

// catalogStack is a configured stack with its builder image's details.
type catalogStack struct {
	name      string
	isDefault bool
	builder   BuilderInfo
}

// stacks returns the configured stacks in configuration order. A builder
// image that cannot be read leaves its stack with the configured facts
// only; the error is logged.
func (a *API) stacks(ctx context.Context) []catalogStack {
	var stacks []catalogStack
	for _, b := range a.staging.Builders {
		s := catalogStack{name: b.Stack, isDefault: b.Stack == a.staging.DefaultStack, builder: BuilderInfo{Image: b.Image}}
		if a.builders != nil {
			read, err := a.builders.Builder(ctx, b.Stack)
			if err != nil {
				loggerFrom(ctx, a.logger).Warn("builder image unreadable", "stack", b.Stack, "error", err)
			} else {
				s.builder = read
			}
		}
		stacks = append(stacks, s)
	}
	return stacks
}

func (a *API) presentStack(s catalogStack) stackJSON {
	created := s.builder.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	description := s.builder.Description
	if description == "" {
		description = "Cloud Native Buildpacks builder " + s.builder.Image
	}
	guid := stackGUID(s.name)
	body := stackJSON{
		GUID:             guid,
		CreatedAt:        timestamp(created),
		UpdatedAt:        timestamp(created),
		Name:             s.name,
		Description:      description,
		State:            "ACTIVE",
		RunRootfsImage:   s.builder.RunImage,
		BuildRootfsImage: s.builder.Image,
		Default:          s.isDefault,
		Metadata:         presentMetadata(nil, nil),
	}
	body.Links.Self = link{Href: a.url("/v3/stacks/", guid)}
	return body
}

var stackListSpec = listSpec{
	filters: []string{"guids", "names", "default", "label_selector"},
	orderBy: []string{"name", "created_at", "updated_at"},
}

// listStacks serves GET /v3/stacks: the stacks of the configured builders.
// Stacks carry no labels, so a label selector matches only through
// requirements that an unlabelled resource meets.
func (a *API) listStacks(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, stackListSpec)
	if err != nil {
		return nil, err
	}
	selector, err := labelSelectorOf(q)
	if err != nil {
		return nil, err
	}
	wantDefault, err := boolFilter(q, "default")
	if err != nil {
		return nil, err
	}

	var matched []stackJSON
	for _, s := range a.stacks(r.Context()) {
		body := a.presentStack(s)
		if !inFilter(q.filter("guids"), body.GUID) || !inFilter(q.filter("names"), body.Name) ||
			(wantDefault != nil && *wantDefault != body.Default) || !matchesUnlabelled(selector) {
			continue
		}
		matched = append(matched, body)
	}
	slices.SortStableFunc(matched, func(x, y stackJSON) int {
		switch q.page.OrderBy {
		case "created_at":
			return cmp.Compare(x.CreatedAt, y.CreatedAt)
		case "updated_at":
			return cmp.Compare(x.UpdatedAt, y.UpdatedAt)
		default:
			return cmp.Compare(x.Name, y.Name)
		}
	})
	return ok(a.list(r, q.page, len(matched), pageOf(matched, q.page))), nil
}

func (a *API) getStack(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	guid := pathParam(r, "guid")
	for _, s := range a.stacks(r.Context()) {
		if stackGUID(s.name) == guid {
			return ok(a.presentStack(s)), nil
		}
	}
	return nil, apierr.NotFound("Stack")
}

// inFilter reports whether v passes a list filter; a nil filter passes all.
func inFilter(filter []string, v string) bool {
	return filter == nil || slices.Contains(filter, v)
}

// boolFilter parses a "true" or "false" filter; absent is nil.
func boolFilter(q *listQuery, name string) (*bool, error) {
	if !q.has(name) {
		return nil, nil
	}
	switch q.values.Get(name) {
	case "true":
		return new(true), nil
	case "false":
		return new(false), nil
	}
	return nil, apierr.BadQueryParameter(fieldLabel(name) + " must be a boolean: 'true' or 'false'")
}

// matchesUnlabelled reports whether a resource without labels meets every
// requirement of selector.
func matchesUnlabelled(selector store.LabelSelector) bool {
	for _, req := range selector {
		if req.Operator == store.LabelExists || req.Operator == store.LabelIn {
			return false
		}
	}
	return true
}

// pageOf returns the items of page, in the order given. Past the end it
// returns an empty slice, because the cf CLI needs a resources array.
func pageOf[T any](items []T, page store.Page) []T {
	start := (page.Number - 1) * page.PerPage
	if start >= len(items) {
		return []T{}
	}
	end := min(start+page.PerPage, len(items))
	if page.Descending {
		reversed := slices.Clone(items)
		slices.Reverse(reversed)
		return reversed[start:end]
	}
	return items[start:end]
}
