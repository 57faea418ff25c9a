package cfapi

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// networkPolicyRoutes serve Cloud Foundry's policy server external API v1,
// which cf add-network-policy, network-policies and remove-network-policy
// call. Its errors are not in Cloud Controller's format: every error body
// is {"error": message}, and the cf CLI prints the message.
func (a *API) networkPolicyRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/networking/v1/external/policies", handler: a.policyAPI(a.createNetworkPolicies)},
		{method: http.MethodGet, path: "/networking/v1/external/policies", handler: a.policyAPI(a.listNetworkPolicies)},
		{method: http.MethodPost, path: "/networking/v1/external/policies/delete", handler: a.policyAPI(a.deleteNetworkPolicies)},
	}
}

// policyError is an error of the policy server API: an HTTP status and the
// message the client shows.
type policyError struct {
	status  int
	message string
}

func (e *policyError) Error() string { return e.message }

func policyBadRequest(format string, v ...any) error {
	return &policyError{status: http.StatusBadRequest, message: fmt.Sprintf(format, v...)}
}

func policyForbidden(format string, v ...any) error {
	return &policyError{status: http.StatusForbidden, message: fmt.Sprintf(format, v...)}
}

// policyAPI renders the errors of h as the policy server does. Cloud
// Controller errors keep their status and send their detail. Any other error
// is logged and sent as a 500 with a fixed message, so internal text never
// reaches a client.
func (a *API) policyAPI(h handlerFunc) handlerFunc {
	return func(r *http.Request) (*response, error) {
		resp, err := h(r)
		if err == nil {
			return resp, nil
		}
		logger := loggerFrom(r.Context(), a.logger)
		var policyErr *policyError
		var apiErr *apierr.Error
		switch {
		case errors.As(err, &policyErr):
		case errors.As(err, &apiErr):
			policyErr = &policyError{status: apiErr.Status, message: apiErr.Detail}
		default:
			logger.Error("network policy request failed", "error", err)
			policyErr = &policyError{status: http.StatusInternalServerError,
				message: "the network policy request failed on the server; retry it, and tell the platform operator if it fails again"}
		}
		if apiErr != nil && apiErr.Status >= http.StatusInternalServerError {
			logger.Error("network policy request failed", "status", apiErr.Status, "error", err)
		} else if policyErr.status < http.StatusInternalServerError {
			logger.Info("request rejected", "status", policyErr.status, "error", policyErr.message)
		}
		return &response{status: policyErr.status, body: map[string]string{"error": policyErr.message}}, nil
	}
}

// networkPolicyListJSON is the body of a policy list, and of create and
// delete requests. The cf CLI leaves total_policies out of requests, and
// Ferry ignores it there.
type networkPolicyListJSON struct {
	TotalPolicies *int                `json:"total_policies,omitempty"`
	Policies      []networkPolicyJSON `json:"policies"`
}

type networkPolicyJSON struct {
	Source      *policySourceJSON      `json:"source"`
	Destination *policyDestinationJSON `json:"destination"`
}

type policySourceJSON struct {
	ID string `json:"id"`
}

type policyDestinationJSON struct {
	ID       string           `json:"id"`
	Protocol string           `json:"protocol"`
	Ports    *policyPortsJSON `json:"ports"`
}

type policyPortsJSON struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

func presentNetworkPolicy(p store.NetworkPolicy) networkPolicyJSON {
	return networkPolicyJSON{
		Source: &policySourceJSON{ID: p.SourceAppGUID},
		Destination: &policyDestinationJSON{ID: p.DestinationAppGUID, Protocol: p.Protocol,
			Ports: &policyPortsJSON{Start: p.StartPort, End: p.EndPort}},
	}
}

// listNetworkPolicies serves GET /networking/v1/external/policies. With
// ?id=guid,guid it returns the policies whose source or destination is one
// of the apps; without it, every policy the caller may see. A policy is
// visible when the caller may see the space of either app.
func (a *API) listNetworkPolicies(r *http.Request) (*response, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := rejectUnknownPolicyParams(r, "id"); err != nil {
		return nil, err
	}
	var appGUIDs []string
	if r.URL.Query().Has("id") {
		appGUIDs = []string{}
		for _, guid := range strings.Split(r.URL.Query().Get("id"), ",") {
			if guid = strings.TrimSpace(guid); guid != "" {
				appGUIDs = append(appGUIDs, guid)
			}
		}
	}

	policies, err := a.store.NetworkPolicies(r.Context(), visibility(r), appGUIDs)
	if err != nil {
		return nil, err
	}

	total := len(policies)
	body := networkPolicyListJSON{TotalPolicies: &total, Policies: make([]networkPolicyJSON, len(policies))}
	for i, p := range policies {
		body.Policies[i] = presentNetworkPolicy(p)
	}
	return ok(body), nil
}

// createNetworkPolicies serves POST /networking/v1/external/policies. The
// caller must be allowed to change both apps of every policy. Creating a
// policy that exists succeeds and changes nothing. Either every policy of
// the request is stored or none is.
func (a *API) createNetworkPolicies(r *http.Request) (*response, error) {
	policies, err := a.networkPoliciesForWrite(r)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(r.Context(), func(tx *sql.Tx) error {
		return store.CreateNetworkPolicies(r.Context(), tx, policies)
	})
	var fkErr *store.ForeignKeyError
	if errors.Is(err, store.ErrNotFound) || errors.As(err, &fkErr) {
		// An app was deleted after the authorization check.
		return nil, policyForbidden("an app of the policies was deleted while they were being created; check the apps with cf apps and retry")
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(r.Context(), a.logger).Info("network policies created", "count", len(policies))
	return ok(struct{}{}), nil
}

// deleteNetworkPolicies serves POST /networking/v1/external/policies/delete.
// It needs the same permissions as creating the policies. Policies that do
// not exist are skipped, so a repeated delete succeeds.
func (a *API) deleteNetworkPolicies(r *http.Request) (*response, error) {
	policies, err := a.networkPoliciesForWrite(r)
	if err != nil {
		return nil, err
	}

	var deleted int
	err = a.store.InTx(r.Context(), func(tx *sql.Tx) error {
		var err error
		deleted, err = store.DeleteNetworkPolicies(r.Context(), tx, policies)
		return err
	})
	if err != nil {
		return nil, err
	}
	loggerFrom(r.Context(), a.logger).Info("network policies deleted", "requested", len(policies), "deleted", deleted)
	return ok(struct{}{}), nil
}

// networkPoliciesForWrite decodes and validates the policies of a create or
// delete request, and checks that the caller may change every app in them.
func (a *API) networkPoliciesForWrite(r *http.Request) ([]store.NetworkPolicy, error) {
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := rejectUnknownPolicyParams(r); err != nil {
		return nil, err
	}
	policies, apps, err := decodeNetworkPolicies(r)
	if err != nil {
		return nil, err
	}
	if err := a.authorizePolicyApps(r, apps); err != nil {
		return nil, err
	}
	return policies, nil
}

// rejectUnknownPolicyParams fails with a 400 when the query has a key
// outside valid.
func rejectUnknownPolicyParams(r *http.Request, valid ...string) error {
	if err := rejectUnknownParams(r.URL.Query(), valid); err != nil {
		var apiErr *apierr.Error
		if errors.As(err, &apiErr) {
			return policyBadRequest("%s", apiErr.Detail)
		}
		return err
	}
	return nil
}

// policyApp is an app GUID of a request and the first field that names it,
// for error messages.
type policyApp struct {
	guid  string
	field string
}

// decodeNetworkPolicies strictly decodes a body of policies and validates
// each. It returns the policies and every distinct app GUID in them. Each
// error is a 400 that names the field and states the fix.
func decodeNetworkPolicies(r *http.Request) ([]store.NetworkPolicy, []policyApp, error) {
	var body networkPolicyListJSON
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, nil, policyDecodeError(err)
	}
	if dec.More() {
		return nil, nil, policyBadRequest("the request body has data after the JSON object; send one object")
	}
	if len(body.Policies) == 0 {
		return nil, nil, policyBadRequest("policies is missing or empty; send at least one policy")
	}

	policies := make([]store.NetworkPolicy, 0, len(body.Policies))
	var apps []policyApp
	seen := map[string]bool{}
	addApp := func(guid, field string) {
		if !seen[guid] {
			seen[guid] = true
			apps = append(apps, policyApp{guid: guid, field: field})
		}
	}
	for i, p := range body.Policies {
		policy, err := validateNetworkPolicy(fmt.Sprintf("policies[%d]", i), p)
		if err != nil {
			return nil, nil, err
		}
		addApp(policy.SourceAppGUID, fmt.Sprintf("policies[%d].source.id", i))
		addApp(policy.DestinationAppGUID, fmt.Sprintf("policies[%d].destination.id", i))
		policies = append(policies, policy)
	}
	return policies, apps, nil
}

// validateNetworkPolicy checks one decoded policy; field is its path in the
// body.
func validateNetworkPolicy(field string, p networkPolicyJSON) (store.NetworkPolicy, error) {
	if p.Source == nil || strings.TrimSpace(p.Source.ID) == "" {
		return store.NetworkPolicy{}, policyBadRequest("%s.source.id is missing; set it to the source app's GUID (cf app NAME --guid)", field)
	}
	if p.Destination == nil || strings.TrimSpace(p.Destination.ID) == "" {
		return store.NetworkPolicy{}, policyBadRequest("%s.destination.id is missing; set it to the destination app's GUID (cf app NAME --guid)", field)
	}
	d := p.Destination
	if d.Protocol != store.NetworkPolicyProtocolTCP && d.Protocol != store.NetworkPolicyProtocolUDP {
		return store.NetworkPolicy{}, policyBadRequest("%s.destination.protocol %q is invalid; use \"tcp\" or \"udp\"", field, d.Protocol)
	}
	if d.Ports == nil {
		return store.NetworkPolicy{}, policyBadRequest("%s.destination.ports is missing; set start and end, each from 1 to 65535", field)
	}
	for _, port := range []struct {
		name  string
		value int
	}{{"start", d.Ports.Start}, {"end", d.Ports.End}} {
		if port.value < 1 || port.value > 65535 {
			return store.NetworkPolicy{}, policyBadRequest("%s.destination.ports.%s %d is invalid; use a port from 1 to 65535", field, port.name, port.value)
		}
	}
	if d.Ports.Start > d.Ports.End {
		return store.NetworkPolicy{}, policyBadRequest("%s.destination.ports.start %d is greater than end %d; set start to at most end", field, d.Ports.Start, d.Ports.End)
	}
	return store.NetworkPolicy{
		SourceAppGUID: strings.TrimSpace(p.Source.ID), DestinationAppGUID: strings.TrimSpace(d.ID),
		Protocol: d.Protocol, StartPort: d.Ports.Start, EndPort: d.Ports.End,
	}, nil
}

// policyDecodeError turns a JSON decoding error into a 400 that names the
// field where it can.
func policyDecodeError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return policyBadRequest("the request body is empty; send a JSON object with policies")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return policyBadRequest("the request body is not valid JSON")
	case errors.As(err, &maxErr):
		return policyBadRequest("the request body exceeds %d bytes; send fewer policies per request", maxBodyBytes)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return policyBadRequest("the request body must be a JSON object with policies")
		}
		return policyBadRequest("%s must be %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return policyBadRequest("unknown field %q; a policy has source.id and destination.id, protocol and ports", field)
	default:
		return policyBadRequest("the request body is not valid JSON")
	}
}

// authorizePolicyApps checks that the caller may change the network
// policies of every app in apps: admins may, and so may space developers of
// the app's space, as Cloud Foundry's policy server checks both the source
// and the destination app. An app that does not exist or that the caller
// cannot see is a 403 too, as on Cloud Foundry, so the response does not
// reveal whether an invisible app exists.
func (a *API) authorizePolicyApps(r *http.Request, apps []policyApp) error {
	actor := actorOf(r)
	if !actor.CanWrite() {
		return policyForbidden("the token lacks the cloud_controller.write scope that changing network policies needs; log in again with cf login")
	}
	for _, app := range apps {
		found, err := a.store.App(r.Context(), visibility(r), app.guid)
		if errors.Is(err, store.ErrNotFound) {
			return policyForbidden("%s %q: no app with this GUID exists that you can see; use the GUID of an app in a space where you are a space developer (cf app NAME --guid)",
				app.field, app.guid)
		}
		if err != nil {
			return err
		}
		err = a.authorizeSpaceRole(r.Context(), actor, found.OrgGUID, found.SpaceGUID, roleSpaceDeveloper)
		if errors.Is(err, apierr.NotAuthorized()) {
			return policyForbidden("%s: changing the network policies of app %q needs the SpaceDeveloper role in its space; ask a space manager for it",
				app.field, found.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
