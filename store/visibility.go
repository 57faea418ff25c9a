package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ferrycf/ferry/auth"
)

// Visibility is what an actor may read, applied in SQL so a list query
// returns only visible rows and still costs one query per page.
type Visibility struct {
	// All is true for admins, read-only admins and global auditors.
	All      bool
	UserGUID string
}

// VisibilityFor derives the visibility of an actor.
func VisibilityFor(a *auth.Actor) Visibility {
	if a == nil {
		return Visibility{}
	}
	return Visibility{All: a.ReadsAll(), UserGUID: a.UserGUID}
}

// args collects positional query arguments and hands out $n placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// orgCondition restricts column col (an organization guid) to orgs where the
// actor has any org role or any role in one of the org's spaces, as Cloud
// Controller does.
func (v Visibility) orgCondition(col string, a *args) string {
	if v.All {
		return "TRUE"
	}
	u := a.add(v.UserGUID)
	return col + ` IN (SELECT organization_guid FROM roles WHERE user_guid = ` + u + ` AND organization_guid IS NOT NULL
		UNION SELECT s.organization_guid FROM roles r JOIN spaces s ON s.guid = r.space_guid WHERE r.user_guid = ` + u + `)`
}

// spaceCondition restricts column col (a space guid) to spaces where the
// actor has a space role, or whose org the actor manages.
func (v Visibility) spaceCondition(col string, a *args) string {
	if v.All {
		return "TRUE"
	}
	u := a.add(v.UserGUID)
	return col + ` IN (SELECT space_guid FROM roles WHERE user_guid = ` + u + ` AND space_guid IS NOT NULL
		UNION SELECT s.guid FROM spaces s JOIN roles r ON r.organization_guid = s.organization_guid
		WHERE r.user_guid = ` + u + ` AND r.type = 'organization_manager')`
}

// spaceRowCondition is spaceCondition for a query that reads one row:
// spaceCol and orgCol are the row's space and organization guids. It looks
// up the actor's roles in that space and organization by index, where
// spaceCondition collects every space the actor can see, which costs more
// than the row once the actor has hundreds of roles. The lookups are scalar
// subqueries because PostgreSQL may hash an EXISTS subquery, which again
// reads every role of the actor.
func (v Visibility) spaceRowCondition(spaceCol, orgCol string, a *args) string {
	if v.All {
		return "TRUE"
	}
	u := a.add(v.UserGUID)
	return `COALESCE((SELECT true FROM roles WHERE space_guid = ` + spaceCol + ` AND user_guid = ` + u + ` LIMIT 1),
		(SELECT true FROM roles WHERE organization_guid = ` + orgCol + ` AND user_guid = ` + u + `
			AND type = 'organization_manager' LIMIT 1), false)`
}

// RoleSet is the role types one user holds in one org and, optionally, one
// of its spaces.
type RoleSet struct {
	Org   []string
	Space []string
}

// Has reports whether the set contains any of the given role types.
func (rs RoleSet) Has(types ...string) bool {
	for _, t := range types {
		for _, have := range rs.Org {
			if have == t {
				return true
			}
		}
		for _, have := range rs.Space {
			if have == t {
				return true
			}
		}
	}
	return false
}

// Empty reports whether the user holds no role at all in the org or space.
func (rs RoleSet) Empty() bool { return len(rs.Org) == 0 && len(rs.Space) == 0 }

// UserRoles returns the role types userGUID holds in orgGUID and, when
// spaceGUID is not empty, in that space. For an org-only check it also
// reports whether the user has any space role in the org, as Space, so
// callers can tell "member of the org through a space" from "stranger".
func (s *Store) UserRoles(ctx context.Context, userGUID, orgGUID, spaceGUID string) (RoleSet, error) {
	var rs RoleSet
	rows, err := s.db.QueryContext(ctx, `
		SELECT type, organization_guid IS NOT NULL FROM roles
		WHERE user_guid = $1 AND (organization_guid = $2
			OR space_guid = $3
			OR ($3 = '' AND space_guid IN (SELECT guid FROM spaces WHERE organization_guid = $2)))`,
		userGUID, orgGUID, spaceGUID)
	if err != nil {
		return rs, fmt.Errorf("roles of user %s: %w", userGUID, mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var isOrg bool
		if err := rows.Scan(&typ, &isOrg); err != nil {
			return rs, fmt.Errorf("roles of user %s: %w", userGUID, err)
		}
		if isOrg {
			rs.Org = append(rs.Org, typ)
		} else {
			rs.Space = append(rs.Space, typ)
		}
	}
	if err := rows.Err(); err != nil {
		return rs, fmt.Errorf("roles of user %s: %w", userGUID, err)
	}
	return rs, nil
}
