package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

// Role types in the order Cloud Controller lists them in its validation
// message.
var (
	orgRoleTypes   = []string{roleOrgAuditor, roleOrgManager, roleOrgBillingManager, roleOrgUser}
	spaceRoleTypes = []string{roleSpaceAuditor, roleSpaceManager, roleSpaceDeveloper, roleSpaceSupporter}
)

// Messages the cf CLI and Cloud Controller clients see for role requests.
const (
	msgInvalidOrganization = "Invalid organization. Ensure that the organization exists and you have access to it."
	msgInvalidSpace        = "Invalid space. Ensure that the space exists and you have access to it."
	msgSpaceUserNotInOrg   = "Users cannot be assigned roles in a space if they do not have a role in that space's organization."
	msgOrgUserHasSpaces    = "Cannot delete organization_user role while user has roles in spaces in that organization."
)

const (
	operationRoleDelete   = "role.delete"
	featureRolesByName    = "set_roles_by_username"
	guidMaxLength         = 200
	relationshipStructure = `must be structured like this: "%s: {"data": {"guid": "valid-guid"}}"`
)

func (a *API) roleRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/v3/roles", handler: a.createRole},
		{method: http.MethodGet, path: "/v3/roles", handler: a.listRoles},
		{method: http.MethodGet, path: "/v3/roles/{guid}", handler: a.getRole},
		{method: http.MethodDelete, path: "/v3/roles/{guid}", handler: a.deleteRole},
	}
}

func (a *API) roleJobs() map[string]jobs.Func {
	return map[string]jobs.Func{operationRoleDelete: a.runRoleDelete}
}

// rolePayload is the body of POST /v3/roles. The user is named by guid, or
// by username with an optional origin.
type rolePayload struct {
	Type          *string                   `json:"type"`
	Relationships *roleRelationshipsPayload `json:"relationships"`
}

type roleRelationshipsPayload struct {
	User         *roleUserPayload   `json:"user"`
	Organization *roleTargetPayload `json:"organization"`
	Space        *roleTargetPayload `json:"space"`
}

type roleUserPayload struct {
	Data *roleUserData `json:"data"`
}

type roleUserData struct {
	GUID     *string `json:"guid"`
	Username *string `json:"username"`
	Origin   *string `json:"origin"`
}

type roleTargetPayload struct {
	Data *struct {
		GUID *string `json:"guid"`
	} `json:"data"`
}

// guid returns the target's guid, or "" when the structure is not
// {"data": {"guid": …}}.
func (t *roleTargetPayload) guid() (string, bool) {
	if t == nil || t.Data == nil || t.Data.GUID == nil {
		return "", false
	}
	return *t.Data.GUID, true
}

// roleRequest is a validated rolePayload.
type roleRequest struct {
	roleType  string
	orgGUID   string
	spaceGUID string
	userGUID  string
	username  string
	origin    string
	// audit is the request as audit events record it.
	audit map[string]any
}

func (req roleRequest) isSpaceRole() bool { return req.spaceGUID != "" }

// validate checks p as Cloud Controller's role create message does and
// returns every problem in one 422, in Cloud Controller's wording.
func (p rolePayload) validate() (roleRequest, error) {
	var problems []string
	var req roleRequest

	if p.Type == nil || !slices.Contains(slices.Concat(orgRoleTypes, spaceRoleTypes), *p.Type) {
		problems = append(problems, "Type must be one of the allowed types "+rubyList(slices.Concat(orgRoleTypes, spaceRoleTypes)))
	} else {
		req.roleType = *p.Type
	}

	rel := p.Relationships
	switch {
	case rel == nil:
		problems = append(problems, "Relationships 'relationships' is not an object")
	case rel.User == nil && rel.Organization == nil && rel.Space == nil:
		problems = append(problems, "Relationships 'relationships' must include one or more valid relationships")
	default:
		problems = append(problems, req.validateUser(rel.User)...)
		problems = append(problems, req.validateTarget(rel)...)
	}

	if len(problems) > 0 {
		return roleRequest{}, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	req.audit = req.auditRequest()
	return req, nil
}

func (req *roleRequest) validateUser(user *roleUserPayload) []string {
	if user == nil || user.Data == nil {
		return []string{"Relationships User must have a username or guid specified"}
	}
	d := user.Data
	var problems []string
	if d.GUID != nil && d.Username != nil {
		problems = append(problems, "Relationships Username cannot be specified when identifying user by guid")
	}
	if d.GUID != nil && d.Origin != nil {
		problems = append(problems, "Relationships User origin cannot be specified when identifying user by guid")
	}
	if d.Username == nil && d.Origin != nil {
		problems = append(problems, "Relationships User origin cannot be specified without specifying the username")
	}
	if d.GUID == nil && d.Username == nil {
		problems = append(problems, "Relationships User must have a username or guid specified")
	}
	if len(problems) > 0 {
		return problems
	}

	if d.GUID != nil {
		if len(*d.GUID) < 1 || len(*d.GUID) > guidMaxLength {
			return []string{fmt.Sprintf("Relationships User guid must be between 1 and %d characters", guidMaxLength)}
		}
		req.userGUID = *d.GUID
		return nil
	}
	if *d.Username == "" {
		return []string{"Relationships Username must not be empty"}
	}
	req.username = *d.Username
	if d.Origin != nil {
		if *d.Origin == "" {
			return []string{"Relationships User origin must not be empty. Leave it out to look the user up in every origin."}
		}
		req.origin = *d.Origin
	}
	return nil
}

func (req *roleRequest) validateTarget(rel *roleRelationshipsPayload) []string {
	if rel.Space == nil && rel.Organization == nil {
		return []string{"Relationships must specify either a space or an organization."}
	}
	var problems []string
	if rel.Space != nil && slices.Contains(orgRoleTypes, req.roleType) {
		problems = append(problems, "Relationships Space cannot be provided with the organization role type: '"+req.roleType+"'.")
	}
	if rel.Organization != nil && slices.Contains(spaceRoleTypes, req.roleType) {
		problems = append(problems, "Relationships Organization cannot be provided with the space role type: '"+req.roleType+"'.")
	}
	if rel.Space != nil && rel.Organization != nil {
		problems = append(problems, "Relationships cannot specify both an organization and a space.")
	}
	if len(problems) > 0 {
		return problems
	}

	name, target := "organization", rel.Organization
	if rel.Space != nil {
		name, target = "space", rel.Space
	}
	guid, ok := target.guid()
	if !ok {
		return []string{"Relationships " + fieldLabel(name) + " " + fmt.Sprintf(relationshipStructure, name)}
	}
	if len(guid) < 1 || len(guid) > guidMaxLength {
		return []string{fmt.Sprintf("Relationships %s guid must be between 1 and %d characters", fieldLabel(name), guidMaxLength)}
	}
	if name == "space" {
		req.spaceGUID = guid
	} else {
		req.orgGUID = guid
	}
	return nil
}

// auditRequest renders the request as Cloud Controller records it in
// data.request of the role's audit event.
func (req roleRequest) auditRequest() map[string]any {
	user := map[string]any{}
	if req.userGUID != "" {
		user["guid"] = req.userGUID
	} else {
		user["username"] = req.username
		if req.origin != "" {
			user["origin"] = req.origin
		}
	}
	rels := map[string]any{"user": map[string]any{"data": user}}
	if req.isSpaceRole() {
		rels["space"] = map[string]any{"data": map[string]any{"guid": req.spaceGUID}}
	} else {
		rels["organization"] = map[string]any{"data": map[string]any{"guid": req.orgGUID}}
	}
	return map[string]any{"type": req.roleType, "relationships": rels}
}

// rubyList renders values as Ruby prints an array of strings, which Cloud
// Controller's role type message contains.
func rubyList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = `"` + v + `"`
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// createRole serves POST /v3/roles. The cf CLI's create-space and
// set-space-role post organization_user before every space role and take a
// 422 "User 'U' already has 'organization_user' role in organization 'O'."
// as success.
func (a *API) createRole(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)

	var payload rolePayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	req, err := payload.validate()
	if err != nil {
		return nil, err
	}

	target, err := a.authorizeRoleTarget(ctx, actor, visibility(r), req)
	if err != nil {
		return nil, err
	}

	userGUID, err := a.resolveRoleUser(ctx, actor, req)
	if err != nil {
		return nil, err
	}
	if req.isSpaceRole() {
		// Cloud Controller gives space roles only to users the actor can
		// see, which a stranger to the org's members never is.
		if _, err := a.store.User(ctx, visibility(r), userGUID); err != nil {
			return nil, spaceUserError(err)
		}
	}

	role, err := a.insertRole(ctx, actor, req, target, userGUID)
	if err != nil {
		return nil, err
	}
	return created(a.presentRole(role)), nil
}

// authorizeRoleTarget finds the org or space of req and checks that actor
// may manage its roles: admins anywhere, org managers in their org and its
// spaces, space managers in their space. A target the actor cannot see is
// the same 422 as one that does not exist.
func (a *API) authorizeRoleTarget(ctx context.Context, actor *auth.Actor, vis store.Visibility, req roleRequest) (store.RoleTarget, error) {
	var target store.RoleTarget
	var err error
	if req.isSpaceRole() {
		target, err = a.store.SpaceRoleTarget(ctx, vis, req.spaceGUID)
		if errors.Is(err, store.ErrNotFound) {
			return target, apierr.UnprocessableEntity(msgInvalidSpace)
		}
	} else {
		target, err = a.store.OrganizationRoleTarget(ctx, vis, req.orgGUID)
		if errors.Is(err, store.ErrNotFound) {
			return target, apierr.UnprocessableEntity(msgInvalidOrganization)
		}
	}
	if err != nil {
		return target, err
	}

	managers := []string{roleOrgManager}
	if req.isSpaceRole() {
		managers = append(managers, roleSpaceManager)
	}
	if err := a.authorizeInOrg(ctx, actor, target.OrganizationGUID, target.SpaceGUID, true, nil, managers...); err != nil {
		return target, err
	}
	return target, a.requireWritableRoleTarget(ctx, actor, target)
}

// requireWritableRoleTarget applies Cloud Controller's suspension rules to
// role changes: only admins change roles in a suspended org, and only
// admins and org managers in a suspended space.
func (a *API) requireWritableRoleTarget(ctx context.Context, actor *auth.Actor, target store.RoleTarget) error {
	if actor.IsAdmin() {
		return nil
	}
	if target.OrganizationSuspended {
		return errOrgSuspended()
	}
	if target.SpaceGUID == "" || !target.SpaceSuspended {
		return nil
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, target.OrganizationGUID, "")
	if err != nil {
		return err
	}
	if !slices.Contains(roles.Org, roleOrgManager) {
		return errSpaceSuspended()
	}
	return nil
}

// resolveRoleUser returns the guid of the user req names. A username is
// looked up among UAA users: in the given origin, or in the only origin
// that has it.
func (a *API) resolveRoleUser(ctx context.Context, actor *auth.Actor, req roleRequest) (string, error) {
	if req.userGUID != "" {
		return req.userGUID, nil
	}

	if !actor.IsAdmin() {
		enabled, message, err := a.featureEnabled(ctx, featureRolesByName)
		if err != nil {
			return "", err
		}
		if !enabled {
			return "", apierr.FeatureDisabled(featureRolesByName, message)
		}
	}

	notFound := func(detail string) error {
		if req.isSpaceRole() {
			return apierr.UnprocessableEntity(msgSpaceUserNotInOrg)
		}
		return apierr.UnprocessableEntity(detail)
	}

	if req.origin != "" {
		u, err := a.store.UAAUserByName(ctx, req.username, req.origin)
		if errors.Is(err, store.ErrNotFound) {
			return "", notFound(fmt.Sprintf("No user exists with the username '%s' and origin '%s'.", req.username, req.origin))
		}
		if err != nil {
			return "", err
		}
		return u.ID, nil
	}

	users, err := a.store.UAAUsersByName(ctx, req.username)
	if err != nil {
		return "", err
	}
	switch len(users) {
	case 0:
		return "", notFound(fmt.Sprintf("No user exists with the username '%s'.", req.username))
	case 1:
		return users[0].ID, nil
	}
	origins := make([]string, len(users))
	for i, u := range users {
		origins[i] = u.Origin
	}
	slices.Sort(origins)
	return "", apierr.UnprocessableEntity(fmt.Sprintf(
		"Ambiguous user. User with username '%s' exists in the following origins: %s. Specify an origin to disambiguate.",
		req.username, strings.Join(origins, ", ")))
}

func spaceUserError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.UnprocessableEntity(msgSpaceUserNotInOrg)
	}
	return err
}

// insertRole writes the role and its audit event in one transaction. An org
// role creates the Cloud Controller user record when there is none yet. A
// space role needs the user to be an org user of the space's org.
func (a *API) insertRole(ctx context.Context, actor *auth.Actor, req roleRequest, target store.RoleTarget, userGUID string) (store.Role, error) {
	var role store.Role
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		if req.isSpaceRole() {
			isOrgUser, err := store.LockOrgUserRole(ctx, tx, userGUID, target.OrganizationGUID)
			if err != nil {
				return err
			}
			if !isOrgUser {
				return apierr.UnprocessableEntity(msgSpaceUserNotInOrg)
			}
		} else if _, err := store.EnsureUser(ctx, tx, userGUID); err != nil {
			return err
		}
		user, err := store.UserThrough(ctx, tx, userGUID)
		if err != nil {
			return err
		}

		role, err = store.CreateRole(ctx, tx, store.Role{
			GUID:             uuid.NewString(),
			Type:             req.roleType,
			UserGUID:         userGUID,
			OrganizationGUID: req.orgGUID,
			SpaceGUID:        req.spaceGUID,
		})
		if err != nil {
			return roleCreateError(err, req, target, user)
		}

		return store.RecordAuditEvent(ctx, tx, roleAuditEvent(actor.UserGUID, actor.DisplayName(), "_add", role, target, user, req.audit))
	})
	return role, err
}

// roleCreateError translates the store errors of a role insert into Cloud
// Controller's messages.
func roleCreateError(err error, req roleRequest, target store.RoleTarget, user store.User) error {
	if store.IsUnique(err, store.RoleOrgUniqueConstraint) {
		return apierr.UnprocessableEntity(fmt.Sprintf("User '%s' already has '%s' role in organization '%s'.",
			presentationName(user), req.roleType, target.OrganizationName))
	}
	if store.IsUnique(err, store.RoleSpaceUniqueConstraint) {
		return apierr.UnprocessableEntity(fmt.Sprintf("User '%s' already has '%s' role in space '%s'.",
			presentationName(user), req.roleType, target.SpaceName))
	}
	var fk *store.ForeignKeyError
	if errors.As(err, &fk) {
		// The org or space was deleted after it was looked up.
		if req.isSpaceRole() {
			return apierr.UnprocessableEntity(msgInvalidSpace)
		}
		return apierr.UnprocessableEntity(msgInvalidOrganization)
	}
	return err
}

// roleAuditEvent is the audit.user.<type>_add or _remove event of a role.
// Its target is the user who holds the role; an org role's event names the
// org, a space role's event the space and its org.
func roleAuditEvent(actorGUID, actorName, suffix string, role store.Role, target store.RoleTarget, user store.User, request map[string]any) store.AuditEvent {
	data := map[string]any{}
	if request != nil {
		data["request"] = request
	} else {
		data["request"] = map[string]any{}
	}
	return store.AuditEvent{
		Type:             "audit.user." + role.Type + suffix,
		ActorGUID:        actorGUID,
		ActorType:        "user",
		ActorName:        actorName,
		TargetGUID:       user.GUID,
		TargetType:       "user",
		TargetName:       user.Username,
		SpaceGUID:        role.SpaceGUID,
		OrganizationGUID: target.OrganizationGUID,
		Data:             data,
	}
}

type roleJSON struct {
	GUID          string                `json:"guid"`
	CreatedAt     string                `json:"created_at"`
	UpdatedAt     string                `json:"updated_at"`
	Type          string                `json:"type"`
	Relationships roleRelationshipsJSON `json:"relationships"`
	Links         map[string]link       `json:"links"`
}

// roleRelationshipsJSON always has all three relationships; the one that
// does not apply is {"data": null}, as the cf CLI expects.
type roleRelationshipsJSON struct {
	User         toOne `json:"user"`
	Space        toOne `json:"space"`
	Organization toOne `json:"organization"`
}

func (a *API) presentRole(role store.Role) roleJSON {
	out := roleJSON{
		GUID:      role.GUID,
		CreatedAt: timestamp(role.CreatedAt),
		UpdatedAt: timestamp(role.UpdatedAt),
		Type:      role.Type,
		Relationships: roleRelationshipsJSON{
			User:         relTo(role.UserGUID),
			Space:        relTo(role.SpaceGUID),
			Organization: relTo(role.OrganizationGUID),
		},
		Links: map[string]link{
			"self": {Href: a.url("/v3/roles/", role.GUID)},
			"user": {Href: a.url("/v3/users/", url.PathEscape(role.UserGUID))},
		},
	}
	if role.SpaceGUID != "" {
		out.Links["space"] = link{Href: a.url("/v3/spaces/", role.SpaceGUID)}
	} else {
		out.Links["organization"] = link{Href: a.url("/v3/organizations/", role.OrganizationGUID)}
	}
	return out
}

var roleListSpec = withCommonFilters(listSpec{
	filters:  []string{"types", "space_guids", "organization_guids", "user_guids"},
	orderBy:  []string{"created_at", "updated_at"},
	includes: []string{"user", "space", "organization"},
})

// listRoles serves GET /v3/roles. `cf space-users` and `cf org-users` send
// include=user with space_guids or organization_guids and read the names
// from included.users.
func (a *API) listRoles(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, roleListSpec)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}
	filter := store.RoleFilter{
		CommonFilter:      common,
		Types:             q.filter("types"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
		UserGUIDs:         q.filter("user_guids"),
	}

	roles, total, err := a.store.Roles(ctx, visibility(r), filter, q.page)
	if err != nil {
		return nil, err
	}
	resources := make([]roleJSON, len(roles))
	for i, role := range roles {
		resources[i] = a.presentRole(role)
	}

	body := a.list(r, q.page, total, resources)
	if body.Included, err = a.roleIncludes(r, q.include, roles); err != nil {
		return nil, err
	}
	return ok(body), nil
}

// roleShowSpec lists the includes of GET /v3/roles/:guid.
var roleShowSpec = listSpec{includes: []string{"user", "space", "organization"}}

func (a *API) getRole(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	include, err := parseShowIncludes(r, roleShowSpec)
	if err != nil {
		return nil, err
	}

	role, err := a.store.Role(r.Context(), visibility(r), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "Role")
	}

	included, err := a.roleIncludes(r, include, []store.Role{role})
	if err != nil {
		return nil, err
	}
	if included == nil {
		return ok(a.presentRole(role)), nil
	}
	return ok(struct {
		roleJSON
		Included map[string]any `json:"included"`
	}{a.presentRole(role), included}), nil
}

// parseShowIncludes validates the query of a single-resource GET that takes
// only include.
func parseShowIncludes(r *http.Request, spec listSpec) ([]string, error) {
	if err := rejectUnknownParams(r.URL.Query(), []string{"include"}); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, spec)
	if err != nil {
		return nil, err
	}
	return q.include, nil
}

// roleIncludes fetches the resources that include requests, with one query
// per resource type. It returns nil when include is empty.
func (a *API) roleIncludes(r *http.Request, include []string, roles []store.Role) (map[string]any, error) {
	if len(include) == 0 {
		return nil, nil
	}
	ctx := r.Context()
	var userGUIDs, spaceGUIDs, orgGUIDs []string
	for _, role := range roles {
		userGUIDs = appendUnique(userGUIDs, role.UserGUID)
		if role.SpaceGUID != "" {
			spaceGUIDs = appendUnique(spaceGUIDs, role.SpaceGUID)
		} else {
			orgGUIDs = appendUnique(orgGUIDs, role.OrganizationGUID)
		}
	}

	included := map[string]any{}
	if slices.Contains(include, "user") {
		users, err := a.store.UsersByGUIDs(ctx, userGUIDs)
		if err != nil {
			return nil, err
		}
		out := make([]userJSON, len(users))
		for i, u := range users {
			out[i] = a.presentUser(u)
		}
		included["users"] = out
	}
	if slices.Contains(include, "space") {
		spaces, err := a.roleIncludedSpaces(r, spaceGUIDs)
		if err != nil {
			return nil, err
		}
		included["spaces"] = spaces
	}
	if slices.Contains(include, "organization") {
		orgs, err := a.roleIncludedOrganizations(r, orgGUIDs)
		if err != nil {
			return nil, err
		}
		included["organizations"] = orgs
	}
	return included, nil
}

func appendUnique(values []string, v string) []string {
	if slices.Contains(values, v) {
		return values
	}
	return append(values, v)
}

// roleIncludedSpaces returns the spaces with the given guids, as GET
// /v3/spaces presents them, in one query.
func (a *API) roleIncludedSpaces(r *http.Request, guids []string) ([]spaceJSON, error) {
	out := []spaceJSON{}
	if len(guids) == 0 {
		return out, nil
	}
	spaces, _, err := a.store.Spaces(r.Context(), store.SpaceFilter{GUIDs: guids}, store.Page{Number: 1, PerPage: len(guids)}, visibility(r))
	if err != nil {
		return nil, err
	}
	for _, sp := range spaces {
		out = append(out, a.presentSpace(sp))
	}
	return out, nil
}

// roleIncludedOrganizations returns the orgs with the given guids, as GET
// /v3/organizations presents them, in one query.
func (a *API) roleIncludedOrganizations(r *http.Request, guids []string) ([]organizationJSON, error) {
	out := []organizationJSON{}
	if len(guids) == 0 {
		return out, nil
	}
	page := store.Page{Number: 1, PerPage: len(guids)}
	orgs, _, err := a.store.Organizations(r.Context(), store.OrganizationFilter{GUIDs: guids}, page, visibility(r))
	if err != nil {
		return nil, err
	}
	for _, org := range orgs {
		out = append(out, a.presentOrganization(org))
	}
	return out, nil
}

// deleteRole serves DELETE /v3/roles/:guid with a role.delete job. Removing
// organization_user from a user who still has space roles in the org is
// rejected here with 422, as Cloud Controller does, and the job checks again
// in case a space role was added in between.
func (a *API) deleteRole(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}

	role, err := a.store.Role(ctx, visibility(r), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "Role")
	}
	target, err := store.RoleTargetOf(ctx, a.store.DB(), role)
	if err != nil {
		return nil, err
	}
	managers := []string{roleOrgManager}
	if role.SpaceGUID != "" {
		managers = append(managers, roleSpaceManager)
	}
	if err := a.authorizeInOrg(ctx, actor, target.OrganizationGUID, role.SpaceGUID, true, nil, managers...); err != nil {
		return nil, err
	}
	if err := a.requireWritableRoleTarget(ctx, actor, target); err != nil {
		return nil, err
	}

	if role.Type == roleOrgUser {
		hasSpaceRoles, err := store.HasSpaceRolesInOrg(ctx, a.store.DB(), role.UserGUID, role.OrganizationGUID)
		if err != nil {
			return nil, err
		}
		if hasSpaceRoles {
			return nil, apierr.UnprocessableEntity(msgOrgUserHasSpaces)
		}
	}

	job := newJob(actor, operationRoleDelete, "role", role.GUID)
	if err := a.startJob(ctx, job); err != nil {
		return nil, err
	}
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runRoleDelete deletes the job's role and records audit.user.<type>_remove
// in the same transaction. A role that is already gone ends the job
// successfully, so a rerun after a crash is harmless.
func (a *API) runRoleDelete(ctx context.Context, job store.Job) error {
	actorName, err := a.jobActorName(ctx, job.UserGUID)
	if err != nil {
		return err
	}
	return a.store.InTx(ctx, func(tx *sql.Tx) error {
		role, err := store.LockRole(ctx, tx, job.ResourceGUID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if role.Type == roleOrgUser {
			hasSpaceRoles, err := store.HasSpaceRolesInOrg(ctx, tx, role.UserGUID, role.OrganizationGUID)
			if err != nil {
				return err
			}
			if hasSpaceRoles {
				return apierr.UnprocessableEntity(msgOrgUserHasSpaces)
			}
		}

		target, err := store.RoleTargetOf(ctx, tx, role)
		if err != nil {
			return err
		}
		user, err := store.UserThrough(ctx, tx, role.UserGUID)
		if err != nil {
			return err
		}
		if err := store.DeleteRole(ctx, tx, role.GUID); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, roleAuditEvent(job.UserGUID, actorName, "_remove", role, target, user, nil))
	})
}

// jobActorName returns the name audit events show for the actor who started
// a job: the UAA username of a user, or the guid itself for a client, whose
// guid is its client id.
func (a *API) jobActorName(ctx context.Context, guid string) (string, error) {
	users, err := a.store.UAAUsersByIDs(ctx, []string{guid})
	if err != nil {
		return "", err
	}
	if u, ok := users[guid]; ok {
		return u.Username, nil
	}
	return guid, nil
}
