package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/jobs"
	"github.com/ferrycf/ferry/store"
)

const operationUserDelete = "user.delete"

func (a *API) userRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/v3/users", handler: a.createUser},
		{method: http.MethodGet, path: "/v3/users", handler: a.listUsers},
		{method: http.MethodGet, path: "/v3/users/{guid}", handler: a.getUser},
		{method: http.MethodPatch, path: "/v3/users/{guid}", handler: a.updateUser},
		{method: http.MethodDelete, path: "/v3/users/{guid}", handler: a.deleteUser},
	}
}

func (a *API) userJobs() map[string]jobs.Func {
	return map[string]jobs.Func{operationUserDelete: a.runUserDelete}
}

// userJSON is a Cloud Controller user. Username and origin are null for a
// user without a UAA identity in Ferry.
type userJSON struct {
	GUID             string       `json:"guid"`
	CreatedAt        string       `json:"created_at"`
	UpdatedAt        string       `json:"updated_at"`
	Username         *string      `json:"username"`
	PresentationName string       `json:"presentation_name"`
	Origin           *string      `json:"origin"`
	Metadata         metadataJSON `json:"metadata"`
	Links            userLinks    `json:"links"`
}

type userLinks struct {
	Self link `json:"self"`
}

func (a *API) presentUser(u store.User) userJSON {
	out := userJSON{
		GUID:             u.GUID,
		CreatedAt:        timestamp(u.CreatedAt),
		UpdatedAt:        timestamp(u.UpdatedAt),
		PresentationName: presentationName(u),
		Metadata:         presentMetadata(u.Labels, u.Annotations),
		Links:            userLinks{Self: link{Href: a.url("/v3/users/", url.PathEscape(u.GUID))}},
	}
	if u.Username != "" {
		out.Username = &u.Username
		out.Origin = &u.Origin
	}
	return out
}

// presentationName returns the name Cloud Controller shows for a user in
// JSON and messages: the username, or the guid for a user without one.
func presentationName(u store.User) string {
	if u.Username != "" {
		return u.Username
	}
	return u.GUID
}

// userCreatePayload is the body of POST /v3/users: a guid, or the username
// and origin of an existing UAA user of a non-uaa origin.
type userCreatePayload struct {
	GUID     *string          `json:"guid"`
	Username *string          `json:"username"`
	Origin   *string          `json:"origin"`
	Metadata *metadataPayload `json:"metadata"`
}

// validate checks p as Cloud Controller's user create message does and
// returns every problem in one 422.
func (p userCreatePayload) validate() error {
	var problems []string
	switch {
	case p.GUID != nil:
		if p.Username != nil {
			problems = append(problems, "Username cannot be provided with 'guid'")
		}
		if p.Origin != nil {
			problems = append(problems, "Origin cannot be provided with 'guid'")
		}
		if len(*p.GUID) < 1 || len(*p.GUID) > guidMaxLength {
			problems = append(problems, fmt.Sprintf("Guid must be between 1 and %d characters", guidMaxLength))
		}
	case p.Username != nil || p.Origin != nil:
		if p.Username == nil {
			problems = append(problems, "Origin can only be provided together with 'username'")
		}
		if p.Origin == nil {
			problems = append(problems, "Username can only be provided together with 'origin'")
		}
		if p.Origin != nil && *p.Origin == "uaa" {
			problems = append(problems, "Origin cannot be 'uaa' when creating a user by username")
		}
	default:
		problems = append(problems, "Guid or 'username' and 'origin' must be provided")
	}
	if len(problems) > 0 {
		return apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return validateMetadata(p.Metadata)
}

// createUser serves POST /v3/users, which `cf create-user` sends with the
// guid of the UAA user it has just created. Only admins may create users.
func (a *API) createUser(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}

	var payload userCreatePayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	if err := payload.validate(); err != nil {
		return nil, err
	}

	guid, duplicate, err := a.newUserGUID(ctx, payload)
	if err != nil {
		return nil, err
	}
	labels, annotations := metadataValues(payload.Metadata)
	request := map[string]any{}
	if payload.GUID != nil {
		request["guid"] = guid
	} else {
		request["username"], request["origin"] = *payload.Username, *payload.Origin
	}
	if payload.Metadata != nil {
		request["metadata"] = metadataRequest(payload.Metadata)
	}

	var user store.User
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		user, err = store.CreateUser(ctx, tx, guid, labels, annotations)
		if store.IsUnique(err, store.UserPrimaryKey) {
			return apierr.UnprocessableEntity(duplicate)
		}
		if err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, userAuditEvent(actor, "audit.user.create", user, request))
	})
	if err != nil {
		return nil, err
	}
	return created(a.presentUser(user)), nil
}

// newUserGUID returns the guid of the user that p requests and the message
// for a user that exists already. A user named by username and origin must
// exist in UAA: Ferry does not create identities for other origins.
func (a *API) newUserGUID(ctx context.Context, p userCreatePayload) (guid, duplicate string, err error) {
	if p.GUID != nil {
		return *p.GUID, fmt.Sprintf("User with guid '%s' already exists.", *p.GUID), nil
	}
	duplicate = fmt.Sprintf("User with username '%s' and origin '%s' already exists.", *p.Username, *p.Origin)
	u, err := a.store.UAAUserByName(ctx, *p.Username, *p.Origin)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", apierr.UnprocessableEntity(fmt.Sprintf(
			"No user exists with the username '%s' and origin '%s'. Create the UAA user first, or give the user's 'guid'.",
			*p.Username, *p.Origin))
	}
	if err != nil {
		return "", "", err
	}
	return u.ID, duplicate, nil
}

// userAuditEvent is an audit event about a Cloud Controller user record.
// Cloud Controller records none for users; Ferry records audit.user.create
// and audit.user.delete-request so admins can trace them.
func userAuditEvent(actor *auth.Actor, eventType string, user store.User, request map[string]any) store.AuditEvent {
	return store.AuditEvent{
		Type:       eventType,
		ActorGUID:  actor.UserGUID,
		ActorType:  "user",
		ActorName:  actor.DisplayName(),
		TargetGUID: user.GUID,
		TargetType: "user",
		TargetName: user.Username,
		Data:       map[string]any{"request": request},
	}
}

var userListSpec = withCommonFilters(listSpec{
	filters: []string{"usernames", "partial_usernames", "origins", "label_selector"},
	orderBy: []string{"created_at", "updated_at"},
})

// listUsers serves GET /v3/users. `cf unset-org-role` and `cf
// unset-space-role` look users up with usernames and, with --origin, origins.
func (a *API) listUsers(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, userListSpec)
	if err != nil {
		return nil, err
	}
	filter, err := userFilter(q)
	if err != nil {
		return nil, err
	}

	users, total, err := a.store.Users(r.Context(), visibility(r), filter, q.page)
	if err != nil {
		return nil, err
	}
	resources := make([]userJSON, len(users))
	for i, u := range users {
		resources[i] = a.presentUser(u)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func userFilter(q *listQuery) (store.UserFilter, error) {
	common, err := commonFilter(q)
	if err != nil {
		return store.UserFilter{}, err
	}
	f := store.UserFilter{
		CommonFilter:     common,
		Usernames:        q.filter("usernames"),
		PartialUsernames: q.filter("partial_usernames"),
		Origins:          q.filter("origins"),
	}
	if f.Origins != nil && f.Usernames == nil && f.PartialUsernames == nil {
		return f, apierr.BadQueryParameter("Origins filter cannot be provided without usernames or partial_usernames filter.")
	}
	if f.Usernames != nil && f.PartialUsernames != nil {
		return f, apierr.BadQueryParameter("Usernames filter cannot be provided with both usernames and partial_usernames filter.")
	}
	if f.LabelSelector, err = labelSelectorOf(q); err != nil {
		return f, err
	}
	return f, nil
}

func (a *API) getUser(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}

	user, err := a.store.User(r.Context(), visibility(r), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "User")
	}
	return ok(a.presentUser(user)), nil
}

// userUpdatePayload is the body of PATCH /v3/users/:guid: only metadata
// changes, because the identity lives in UAA.
type userUpdatePayload struct {
	Metadata *metadataPayload `json:"metadata"`
}

func (a *API) updateUser(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	guid := pathParam(r, "guid")

	if _, err := a.store.User(ctx, visibility(r), guid); err != nil {
		return nil, notFoundAs(err, "User")
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}

	var payload userUpdatePayload
	if err := decodeBody(r, &payload); err != nil {
		return nil, err
	}
	if err := validateMetadata(payload.Metadata); err != nil {
		return nil, err
	}

	var user store.User
	err := a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		user, err = store.UpdateUserMetadata(ctx, tx, guid, metadataPatch(payload.Metadata))
		if err != nil {
			return err
		}
		request := map[string]any{}
		if payload.Metadata != nil {
			request["metadata"] = metadataRequest(payload.Metadata)
		}
		return store.RecordAuditEvent(ctx, tx, userAuditEvent(actor, "audit.user.update", user, request))
	})
	if err != nil {
		return nil, notFoundAs(err, "User")
	}
	return ok(a.presentUser(user)), nil
}

// deleteUser serves DELETE /v3/users/:guid with a user.delete job that
// removes the Cloud Controller user and all of its roles. `cf delete-user`
// deletes the UAA identity separately, through /Users.
func (a *API) deleteUser(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}

	user, err := a.store.User(ctx, visibility(r), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "User")
	}
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}

	job := newJob(actor, operationUserDelete, "user", user.GUID)
	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.CreateJob(ctx, tx, job); err != nil {
			return err
		}
		return store.RecordAuditEvent(ctx, tx, userAuditEvent(actor, "audit.user.delete-request", user, map[string]any{}))
	})
	if err != nil {
		return nil, err
	}
	a.jobs.Wake()
	return accepted(a.jobURL(job.GUID), nil), nil
}

// runUserDelete deletes the job's user and its roles; a user that is
// already gone ends the job successfully.
func (a *API) runUserDelete(ctx context.Context, job store.Job) error {
	return store.DeleteUser(ctx, a.store.DB(), job.ResourceGUID)
}
