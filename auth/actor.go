// Package auth owns identity: the UAA-compatible token issuer and verifier,
// password hashing, OAuth clients, and the Actor that every API request runs as.
package auth

import (
	"context"
	"slices"
	"time"
)

// Scopes Cloud Controller and UAA grant meaning to.
const (
	ScopeAdmin         = "cloud_controller.admin"
	ScopeAdminReadOnly = "cloud_controller.admin_read_only"
	ScopeGlobalAuditor = "cloud_controller.global_auditor"
	ScopeRead          = "cloud_controller.read"
	ScopeWrite         = "cloud_controller.write"
	ScopeOpenID        = "openid"
	ScopeSCIMRead      = "scim.read"
	ScopeSCIMWrite     = "scim.write"
	ScopeUAAAdmin      = "uaa.admin"
	ScopePasswordWrite = "password.write"
)

// Actor is the identity a request runs as, taken from a verified token.
// For client_credentials tokens UserGUID is the client id, as in Cloud
// Controller, and UserName is empty.
type Actor struct {
	UserGUID string
	UserName string
	Origin   string
	ClientID string
	TokenID  string
	Scopes   []string
	// ExpiresAt is when the token expires.
	ExpiresAt time.Time
}

// HasScope reports whether the token carries scope s.
func (a *Actor) HasScope(s string) bool { return slices.Contains(a.Scopes, s) }

// IsAdmin reports whether the actor has full read and write access.
func (a *Actor) IsAdmin() bool { return a.HasScope(ScopeAdmin) }

// ReadsAll reports whether the actor may read every resource regardless of
// roles: admins, read-only admins and global auditors.
func (a *Actor) ReadsAll() bool {
	return a.IsAdmin() || a.HasScope(ScopeAdminReadOnly) || a.HasScope(ScopeGlobalAuditor)
}

// CanRead reports whether the token permits Cloud Controller reads at all.
func (a *Actor) CanRead() bool { return a.ReadsAll() || a.HasScope(ScopeRead) }

// CanWrite reports whether the token permits Cloud Controller writes at all.
// Roles still decide which resources the actor may change.
func (a *Actor) CanWrite() bool { return a.IsAdmin() || a.HasScope(ScopeWrite) }

// IsClient reports whether the token was issued to a client, not a user.
func (a *Actor) IsClient() bool { return a.UserName == "" }

// DisplayName is the name audit events show for the actor.
func (a *Actor) DisplayName() string {
	if a.UserName != "" {
		return a.UserName
	}
	return a.ClientID
}

type actorKey struct{}

// WithActor returns a context carrying the actor.
func WithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the request's actor, or nil for unauthenticated requests.
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}
