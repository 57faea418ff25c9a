package cfapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// SCIM list limits, as UAA's: 100 users per page by default, and a count
// above 500 is lowered to 500.
const (
	defaultSCIMCount = 100
	maxSCIMCount     = 500
	maxUsernameBytes = 255
)

var scimSchemas = []string{"urn:scim:schemas:core:1.0"}

// scimUserPayload is the body of POST /Users. cf create-user sends userName,
// password, origin ("" unless --origin is given), name and emails. The other
// fields are SCIM's, accepted so that other UAA clients work.
type scimUserPayload struct {
	Schemas     []string         `json:"schemas"`
	ExternalID  string           `json:"externalId"`
	UserName    string           `json:"userName"`
	Password    string           `json:"password"`
	Origin      string           `json:"origin"`
	DisplayName string           `json:"displayName"`
	Name        *scimNamePayload `json:"name"`
	Emails      []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
		Type    string `json:"type"`
	} `json:"emails"`
	Active   *bool `json:"active"`
	Verified *bool `json:"verified"`
}

type scimNamePayload struct {
	GivenName  string `json:"givenName"`
	FamilyName string `json:"familyName"`
	Formatted  string `json:"formatted"`
}

type scimUserJSON struct {
	ID         string          `json:"id"`
	ExternalID string          `json:"externalId"`
	Meta       scimMetaJSON    `json:"meta"`
	UserName   string          `json:"userName"`
	Name       scimNameJSON    `json:"name"`
	Emails     []scimEmailJSON `json:"emails"`
	Groups     []scimGroupJSON `json:"groups"`
	Approvals  []struct{}      `json:"approvals"`
	Active     bool            `json:"active"`
	Verified   bool            `json:"verified"`
	Origin     string          `json:"origin"`
	ZoneID     string          `json:"zoneId"`
	Schemas    []string        `json:"schemas"`
}

type scimMetaJSON struct {
	Version      int64  `json:"version"`
	Created      string `json:"created"`
	LastModified string `json:"lastModified"`
}

type scimNameJSON struct {
	FamilyName string `json:"familyName"`
	GivenName  string `json:"givenName"`
}

type scimEmailJSON struct {
	Value   string `json:"value"`
	Primary bool   `json:"primary"`
}

type scimGroupJSON struct {
	Value   string `json:"value"`
	Display string `json:"display"`
	Type    string `json:"type"`
}

type scimListJSON struct {
	Resources    []scimUserJSON `json:"resources"`
	StartIndex   int            `json:"startIndex"`
	ItemsPerPage int            `json:"itemsPerPage"`
	TotalResults int            `json:"totalResults"`
	Schemas      []string       `json:"schemas"`
}

// presentSCIMUser renders u. Its groups are the scopes its user tokens get.
func presentSCIMUser(u store.UAAUser) scimUserJSON {
	out := scimUserJSON{
		ID: u.ID,
		Meta: scimMetaJSON{
			Version:      u.Generation - 1,
			Created:      timestamp(u.CreatedAt),
			LastModified: timestamp(u.UpdatedAt),
		},
		UserName:  u.Username,
		Name:      scimNameJSON{FamilyName: u.FamilyName, GivenName: u.GivenName},
		Emails:    []scimEmailJSON{},
		Groups:    []scimGroupJSON{},
		Approvals: []struct{}{},
		Active:    true,
		Verified:  true,
		Origin:    u.Origin,
		ZoneID:    "uaa",
		Schemas:   scimSchemas,
	}
	if u.Email != "" {
		out.Emails = append(out.Emails, scimEmailJSON{Value: u.Email, Primary: true})
	}
	for _, scope := range auth.UserScopes(u.Groups) {
		out.Groups = append(out.Groups, scimGroupJSON{Value: scope, Display: scope, Type: "DIRECT"})
	}
	return out
}

// decodeSCIMBody strictly decodes a JSON body and reports problems as UAA
// errors of the given kind.
func decodeSCIMBody(r *http.Request, v any, kind string) error {
	err := decodeBody(r, v)
	var cfErr *apierr.Error
	if errors.As(err, &cfErr) {
		return &apierr.UAAError{Status: http.StatusBadRequest, Kind: kind, Description: cfErr.Detail}
	}
	return err
}

// createSCIMUser creates a UAA user, as cf create-user does before it
// creates the Cloud Controller user with the returned id. Users of origin
// "uaa" (also meant by an empty origin) need a password. Users of other
// origins cannot have one, because they authenticate elsewhere.
func (a *API) createSCIMUser(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	if err := requireScope(actor, auth.ScopeSCIMWrite, auth.ScopeSCIMCreate, auth.ScopeUAAAdmin); err != nil {
		return nil, err
	}

	var payload scimUserPayload
	if err := decodeSCIMBody(r, &payload, "invalid_scim_resource"); err != nil {
		return nil, err
	}
	user, err := a.newUAAUser(payload)
	if err != nil {
		return nil, err
	}

	stored, err := a.store.CreateUAAUser(r.Context(), user)
	if store.IsUnique(err, store.UAAUsernameOriginKey) {
		return nil, apierr.SCIMResourceAlreadyExists("Username already in use: " + user.Username)
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(r.Context(), a.logger).Info("uaa user created", "user_guid", stored.ID, "origin", stored.Origin)
	return created(presentSCIMUser(stored)), nil
}

// newUAAUser validates payload and returns the user to insert, with its
// password hashed.
func (a *API) newUAAUser(payload scimUserPayload) (store.UAAUser, error) {
	username := strings.TrimSpace(payload.UserName)
	if username == "" {
		return store.UAAUser{}, apierr.InvalidSCIMResource("A username must be provided: set \"userName\".")
	}
	if len(username) > maxUsernameBytes {
		return store.UAAUser{}, apierr.InvalidSCIMResource("userName must be at most 255 bytes.")
	}
	if payload.Active != nil && !*payload.Active {
		return store.UAAUser{}, apierr.InvalidSCIMResource("Inactive users are not supported: omit \"active\" or set it to true.")
	}
	origin := payload.Origin
	if origin == "" {
		origin = "uaa"
	}

	user := store.UAAUser{ID: uuid.NewString(), Username: username, Origin: origin}
	if payload.Name != nil {
		user.GivenName, user.FamilyName = payload.Name.GivenName, payload.Name.FamilyName
	}
	for i, e := range payload.Emails {
		if i == 0 || e.Primary {
			user.Email = e.Value
		}
	}

	switch {
	case origin == "uaa" && payload.Password == "":
		return store.UAAUser{}, apierr.InvalidPassword("A password is required for users of origin uaa: set \"password\".")
	case origin != "uaa" && payload.Password != "":
		return store.UAAUser{}, apierr.InvalidSCIMResource("Users of origin '" + origin + "' authenticate with their identity provider: omit \"password\".")
	case origin == "uaa":
		hash, err := a.auth.HashPassword(payload.Password)
		if errors.Is(err, auth.ErrPasswordTooLong) {
			return store.UAAUser{}, apierr.InvalidPassword("Password must be at most 72 bytes.")
		}
		if err != nil {
			return store.UAAUser{}, err
		}
		user.PasswordHash = hash
	}
	return user, nil
}

// listSCIMUsers lists users, as cf create-user does with
// filter=userName eq "U" and origin eq "uaa" to find an existing user.
func (a *API) listSCIMUsers(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	if err := requireScope(actor, auth.ScopeSCIMRead, auth.ScopeUAAAdmin); err != nil {
		return nil, err
	}
	q, err := parseSCIMListQuery(r)
	if err != nil {
		return nil, err
	}

	users, total, err := a.store.UAAUsers(r.Context(), q)
	if err != nil {
		return nil, err
	}
	list := scimListJSON{
		Resources:    make([]scimUserJSON, 0, len(users)),
		StartIndex:   max(q.StartIndex, 1),
		ItemsPerPage: len(users),
		TotalResults: total,
		Schemas:      scimSchemas,
	}
	for _, u := range users {
		list.Resources = append(list.Resources, presentSCIMUser(u))
	}
	return ok(list), nil
}

// scimSortAttributes maps sortBy values (lower case) to store attributes.
var scimSortAttributes = map[string]string{
	"created":      "created",
	"meta.created": "created",
	"id":           "id",
	"username":     "username",
	"origin":       "origin",
	"email":        "email",
	"emails.value": "email",
}

// parseSCIMListQuery reads filter, startIndex, count, sortBy and sortOrder.
// attributes is accepted and ignored: every response carries whole users.
func parseSCIMListQuery(r *http.Request) (store.UAAUserQuery, error) {
	values := r.URL.Query()
	for key := range values {
		switch key {
		case "filter", "startIndex", "count", "sortBy", "sortOrder", "attributes":
		default:
			return store.UAAUserQuery{}, apierr.InvalidRequestUAA("Unknown query parameter '" + key +
				"'. Valid parameters are: filter, startIndex, count, sortBy, sortOrder, attributes.")
		}
	}

	q := store.UAAUserQuery{StartIndex: 1, Count: defaultSCIMCount}
	if f := values.Get("filter"); strings.TrimSpace(f) != "" {
		filter, err := parseSCIMFilter(f)
		if err != nil {
			return store.UAAUserQuery{}, &apierr.UAAError{Status: http.StatusBadRequest, Kind: "invalid_filter",
				Description: "Invalid filter expression: " + err.Error() + `. Example: userName eq "bob" and origin eq "uaa".`}
		}
		q.Filter = filter
	}
	if v := values.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return store.UAAUserQuery{}, apierr.InvalidRequestUAA("startIndex must be an integer, 1 for the first result.")
		}
		q.StartIndex = max(n, 1)
	}
	if v := values.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return store.UAAUserQuery{}, apierr.InvalidRequestUAA("count must be an integer between 1 and 500.")
		}
		q.Count = min(n, maxSCIMCount)
	}
	if v := values.Get("sortBy"); v != "" {
		attr, ok := scimSortAttributes[strings.ToLower(v)]
		if !ok {
			return store.UAAUserQuery{}, apierr.InvalidRequestUAA("sortBy must be one of created, id, userName, origin, emails.value.")
		}
		q.SortBy = attr
	}
	switch strings.ToLower(values.Get("sortOrder")) {
	case "", "ascending":
	case "descending":
		q.Descending = true
	default:
		return store.UAAUserQuery{}, apierr.InvalidRequestUAA("sortOrder must be ascending or descending.")
	}
	return q, nil
}

// scimUserNotFound returns UAA's error for an unknown user id.
func scimUserNotFound(id string) error {
	return apierr.SCIMResourceNotFound("User " + id + " does not exist")
}

// getSCIMUser returns one user: to readers of all users (scim.read or
// uaa.admin) and to the user themself (scim.me).
func (a *API) getSCIMUser(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	id := pathParam(r, "id")
	self := !actor.IsClient() && actor.UserGUID == id && actor.HasScope(auth.ScopeSCIMMe)
	if !self {
		if err := requireScope(actor, auth.ScopeSCIMRead, auth.ScopeUAAAdmin); err != nil {
			return nil, err
		}
	}

	u, err := a.store.UAAUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scimUserNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return ok(presentSCIMUser(u)), nil
}

// deleteSCIMUser deletes a UAA user and with it every refresh token of the
// user, and returns the deleted user, which cf delete-user decodes. The
// Cloud Controller user record is deleted separately through
// DELETE /v3/users/:guid.
func (a *API) deleteSCIMUser(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	if err := requireScope(actor, auth.ScopeSCIMWrite, auth.ScopeUAAAdmin); err != nil {
		return nil, err
	}

	id := pathParam(r, "id")
	deleted, err := a.store.DeleteUAAUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scimUserNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(r.Context(), a.logger).Info("uaa user deleted", "user_guid", deleted.ID, "origin", deleted.Origin)
	return ok(presentSCIMUser(deleted)), nil
}

type passwordChangePayload struct {
	OldPassword string `json:"oldPassword"`
	Password    string `json:"password"`
}

// changePassword sets a user's password. Users change their own with
// password.write and their old password. Admins (uaa.admin) change anyone's
// without it. The change revokes every refresh token of the user.
func (a *API) changePassword(r *http.Request) (*response, error) {
	actor, err := a.uaaActor(r)
	if err != nil {
		return nil, err
	}
	id := pathParam(r, "id")
	isAdmin := actor.HasScope(auth.ScopeUAAAdmin)
	self := !actor.IsClient() && actor.UserGUID == id
	if !isAdmin {
		if !self {
			return nil, apierr.InsufficientScope(auth.ScopeUAAAdmin)
		}
		if err := requireScope(actor, auth.ScopePasswordWrite); err != nil {
			return nil, err
		}
	}

	var payload passwordChangePayload
	if err := decodeSCIMBody(r, &payload, "invalid_request"); err != nil {
		return nil, err
	}
	if payload.Password == "" {
		return nil, apierr.InvalidPassword("The new password must not be empty: set \"password\".")
	}

	ctx := r.Context()
	u, err := a.store.UAAUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scimUserNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	if u.Origin != "uaa" {
		return nil, apierr.InvalidPassword("Users of origin '" + u.Origin + "' change their password with their identity provider.")
	}
	if !isAdmin || payload.OldPassword != "" {
		if !a.auth.CheckPassword(u.PasswordHash, payload.OldPassword) {
			return nil, &apierr.UAAError{Status: http.StatusUnauthorized, Kind: "unauthorized", Description: "Old password is incorrect"}
		}
		if payload.OldPassword == payload.Password {
			return nil, apierr.InvalidPassword("Your new password cannot be the same as the old password.")
		}
	}

	hash, err := a.auth.HashPassword(payload.Password)
	if errors.Is(err, auth.ErrPasswordTooLong) {
		return nil, apierr.InvalidPassword("Password must be at most 72 bytes.")
	}
	if err != nil {
		return nil, err
	}
	if err := a.store.SetUAAUserPassword(ctx, id, hash); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, scimUserNotFound(id)
		}
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("uaa user password changed", "user_guid", id, "by_admin", !self)
	return ok(map[string]string{"status": "ok", "message": "password updated"}), nil
}
