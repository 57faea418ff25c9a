package auth

import "slices"

// Scopes UAA grants to ordinary users, and the scope of a client that was
// configured without any.
const (
	ScopeSCIMMe  = "scim.me"
	ScopeUAAUser = "uaa.user"
	ScopeUAANone = "uaa.none"
	// ScopeSCIMCreate lets a client create users without reading or
	// changing them.
	ScopeSCIMCreate = "scim.create"
)

// AdminGroups are the groups of the bootstrap admin user.
var AdminGroups = []string{ScopeAdmin, ScopeSCIMRead, ScopeSCIMWrite, ScopeUAAAdmin}

var (
	adminScopes = []string{ScopeAdmin, ScopeRead, ScopeWrite, ScopeOpenID, ScopeSCIMRead, ScopeSCIMWrite,
		ScopeUAAAdmin, ScopePasswordWrite}
	userScopes = []string{ScopeRead, ScopeWrite, ScopeOpenID, ScopePasswordWrite, ScopeSCIMMe, ScopeUAAUser}
)

// UserScopes returns the scopes of a user token for a user in groups. Members
// of cloud_controller.admin get the admin scopes, and everyone else gets the
// ordinary user scopes. Both get their groups on top. Read-only admins and
// global auditors (who are not also admins) lose cloud_controller.write,
// because Cloud Controller lets them read everything and change nothing.
func UserScopes(groups []string) []string {
	base := userScopes
	if slices.Contains(groups, ScopeAdmin) {
		base = adminScopes
	}
	scopes := slices.Clone(base)
	for _, g := range groups {
		if !slices.Contains(scopes, g) {
			scopes = append(scopes, g)
		}
	}
	readOnly := slices.Contains(groups, ScopeAdminReadOnly) || slices.Contains(groups, ScopeGlobalAuditor)
	if readOnly && !slices.Contains(groups, ScopeAdmin) {
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == ScopeWrite })
	}
	return scopes
}

// IntersectScopes returns the scopes of granted that are also in current,
// in granted's order. A refresh uses it so that a token never gains scopes
// the user did not have at login, and loses those removed since.
func IntersectScopes(granted, current []string) []string {
	var out []string
	for _, s := range granted {
		if slices.Contains(current, s) {
			out = append(out, s)
		}
	}
	return out
}
