package cfapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Feature flags other handlers consult.
const (
	flagUserOrgCreation = "user_org_creation"
)

// maxFeatureFlagMessageLength is the longest custom error message Cloud
// Controller stores for a feature flag, in characters.
const maxFeatureFlagMessageLength = 250

func (a *API) featureFlagRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/feature_flags", handler: a.listFeatureFlags},
		{method: http.MethodGet, path: "/v3/feature_flags/{name}", handler: a.getFeatureFlag},
		{method: http.MethodPatch, path: "/v3/feature_flags/{name}", handler: a.updateFeatureFlag},
	}
}

// featureEnabled returns whether the feature flag name is enabled and the
// custom error message an admin set for it ("" for none). Handlers gating an
// action on a flag return apierr.FeatureDisabled(name, message) when it is
// disabled.
func (a *API) featureEnabled(ctx context.Context, name string) (bool, string, error) {
	flag, err := a.store.FeatureFlag(ctx, name)
	if err != nil {
		return false, "", err
	}
	return flag.Enabled, flag.CustomErrorMessage, nil
}

type featureFlagJSON struct {
	Name               string          `json:"name"`
	Enabled            bool            `json:"enabled"`
	UpdatedAt          *string         `json:"updated_at"`
	CustomErrorMessage *string         `json:"custom_error_message"`
	Links              map[string]link `json:"links"`
}

func (a *API) presentFeatureFlag(f store.FeatureFlag) featureFlagJSON {
	out := featureFlagJSON{
		Name:    f.Name,
		Enabled: f.Enabled,
		Links:   map[string]link{"self": {Href: a.url("/v3/feature_flags/", f.Name)}},
	}
	if !f.UpdatedAt.IsZero() {
		updated := timestamp(f.UpdatedAt)
		out.UpdatedAt = &updated
	}
	if f.CustomErrorMessage != "" {
		out.CustomErrorMessage = &f.CustomErrorMessage
	}
	return out
}

var featureFlagListSpec = listSpec{orderBy: []string{"name"}}

func (a *API) listFeatureFlags(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, featureFlagListSpec)
	if err != nil {
		return nil, err
	}
	flags, total, err := a.store.FeatureFlags(r.Context(), q.page)
	if err != nil {
		return nil, err
	}
	resources := make([]featureFlagJSON, len(flags))
	for i, f := range flags {
		resources[i] = a.presentFeatureFlag(f)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func (a *API) getFeatureFlag(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	flag, err := a.store.FeatureFlag(r.Context(), pathParam(r, "name"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Feature flag")
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentFeatureFlag(flag)), nil
}

// featureFlagPayload is the body of PATCH /v3/feature_flags/:name.
type featureFlagPayload struct {
	Enabled            *bool          `json:"enabled"`
	CustomErrorMessage nullableString `json:"custom_error_message"`
}

// nullableString distinguishes an absent JSON field from an explicit null.
type nullableString struct {
	Set   bool
	Value *string
}

func (n *nullableString) UnmarshalJSON(data []byte) error {
	n.Set = true
	if string(data) == "null" {
		n.Value = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	n.Value = &s
	return nil
}

// updateFeatureFlag serves PATCH /v3/feature_flags/:name for admins. A
// custom_error_message of null removes the message.
func (a *API) updateFeatureFlag(r *http.Request) (*response, error) {
	ctx := r.Context()
	name := pathParam(r, "name")
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if _, err := a.store.FeatureFlag(ctx, name); errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Feature flag")
	} else if err != nil {
		return nil, err
	}
	if err := requireAdmin(actorOf(r)); err != nil {
		return nil, err
	}

	var p featureFlagPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	if msg := p.CustomErrorMessage.Value; msg != nil {
		if n := utf8.RuneCountInString(*msg); n < 1 || n > maxFeatureFlagMessageLength {
			return nil, apierr.UnprocessableEntity(fmt.Sprintf("Custom error message must be 1 to %d characters; send null to remove it", maxFeatureFlagMessageLength))
		}
	}

	update := store.FeatureFlagUpdate{Enabled: p.Enabled, SetMessage: p.CustomErrorMessage.Set, Message: p.CustomErrorMessage.Value}
	flag, err := store.UpdateFeatureFlag(ctx, a.store.DB(), name, update)
	if err != nil {
		return nil, err
	}
	return ok(a.presentFeatureFlag(flag)), nil
}
