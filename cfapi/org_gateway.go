package cfapi

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// organizationRoutingJSON is the body of GET and PATCH
// /v3/organizations/:guid/routing, a Ferry extension. DedicatedGateway
// gives the organization its own Gateway: the routes of its private
// domains attach to that Gateway instead of the shared one.
type organizationRoutingJSON struct {
	DedicatedGateway bool            `json:"dedicated_gateway"`
	Links            map[string]link `json:"links"`
}

func (a *API) presentOrganizationRouting(orgGUID string, dedicated bool) organizationRoutingJSON {
	return organizationRoutingJSON{
		DedicatedGateway: dedicated,
		Links: map[string]link{
			"self":         {Href: a.url("/v3/organizations/", orgGUID, "/routing")},
			"organization": {Href: a.url("/v3/organizations/", orgGUID)},
		},
	}
}

// organizationRouting serves GET /v3/organizations/:guid/routing to anyone
// who can read the organization.
func (a *API) organizationRouting(r *http.Request) (*response, error) {
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	dedicated, err := a.store.OrganizationDedicatedGateway(r.Context(), org.GUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Organization")
	}
	if err != nil {
		return nil, err
	}
	return ok(a.presentOrganizationRouting(org.GUID, dedicated)), nil
}

// updateOrganizationRouting serves PATCH /v3/organizations/:guid/routing
// for admins. The body must be exactly {"dedicated_gateway": true|false}.
func (a *API) updateOrganizationRouting(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	org, err := a.visibleOrganization(r)
	if err != nil {
		return nil, err
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}
	dedicated, err := decodeOrganizationRouting(r)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.SetOrganizationDedicatedGateway(ctx, tx, org.GUID, dedicated); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, tenancyEvent(actor, "audit.organization.update", "organization",
			org.GUID, org.Name, org.GUID, "", map[string]any{"routing": map[string]any{"dedicated_gateway": dedicated}}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("Organization")
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("organization gateway changed", "organization_guid", org.GUID, "dedicated_gateway", dedicated)
	return ok(a.presentOrganizationRouting(org.GUID, dedicated)), nil
}

// decodeOrganizationRouting reads the dedicated_gateway of a PATCH body.
// Any other key, or a value that is not a boolean, is a 422 naming it.
func decodeOrganizationRouting(r *http.Request) (bool, error) {
	var fields map[string]json.RawMessage
	if err := decodeBody(r, &fields); err != nil {
		return false, err
	}
	if fields == nil {
		return false, apierr.MessageParseError("the body must be a JSON object")
	}
	value, found := fields["dedicated_gateway"]
	delete(fields, "dedicated_gateway")
	if len(fields) > 0 {
		return false, apierr.UnprocessableEntity("Unknown field(s): " + quoteList(slices.Sorted(maps.Keys(fields))) +
			". The only field of an organization's routing is 'dedicated_gateway'.")
	}
	if !found {
		return false, apierr.UnprocessableEntity("Dedicated_gateway is required: send {\"dedicated_gateway\": true} or false")
	}
	switch string(bytes.TrimSpace(value)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, apierr.UnprocessableEntity("Dedicated_gateway must be a boolean: send true or false")
}
