package cfapi

import (
	"context"
	"net/http"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// Role types as Cloud Controller names them.
const (
	roleOrgUser           = "organization_user"
	roleOrgAuditor        = "organization_auditor"
	roleOrgManager        = "organization_manager"
	roleOrgBillingManager = "organization_billing_manager"
	roleSpaceDeveloper    = "space_developer"
	roleSpaceAuditor      = "space_auditor"
	roleSpaceManager      = "space_manager"
	roleSpaceSupporter    = "space_supporter"
)

// actorOf returns the authenticated actor of r. Routes that reach a handler
// without one are public, and their handlers do not call this.
func actorOf(r *http.Request) *auth.Actor {
	return auth.ActorFrom(r.Context())
}

// requireRead fails unless the token may read Cloud Controller resources.
func requireRead(actor *auth.Actor) error {
	if !actor.CanRead() {
		return apierr.NotAuthorized()
	}
	return nil
}

// requireWrite fails unless the token may change Cloud Controller resources
// at all. Read-only admins and global auditors fail here.
func requireWrite(actor *auth.Actor) error {
	if !actor.CanWrite() {
		return apierr.NotAuthorized()
	}
	return nil
}

// requireAdmin fails unless the actor is an admin. Callers have already
// established that the resource is visible (or that there is none).
func requireAdmin(actor *auth.Actor) error {
	if !actor.IsAdmin() {
		return apierr.NotAuthorized()
	}
	return nil
}

// authorizeInOrg checks that actor may perform an action in org (and, when
// spaceGUID is set, in that space) that needs one of allowed. Admins always
// may. Others need a write-capable token and one of the roles. A user with no
// visibility of the target gets notFound (invisible resources are 404),
// one who can see it but lacks the role gets 403. visible reports whether the
// target is visible to the actor: it depends on the resource, so the caller
// computes it.
func (a *API) authorizeInOrg(ctx context.Context, actor *auth.Actor, orgGUID, spaceGUID string, visible bool, notFound error, allowed ...string) error {
	if actor.IsAdmin() {
		return nil
	}
	if !visible {
		return notFound
	}
	if err := requireWrite(actor); err != nil {
		return err
	}
	roles, err := a.store.UserRoles(ctx, actor.UserGUID, orgGUID, spaceGUID)
	if err != nil {
		return err
	}
	if !roles.Has(allowed...) {
		return apierr.NotAuthorized()
	}
	return nil
}

// visibility returns the store visibility of r's actor.
func visibility(r *http.Request) store.Visibility {
	return store.VisibilityFor(actorOf(r))
}
