package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Constraints whose violation means "the user already has this role".
const (
	RoleOrgUniqueConstraint   = "roles_org_user_type_key"
	RoleSpaceUniqueConstraint = "roles_space_user_type_key"
)

// Role is one org or space role of a user. Exactly one of OrganizationGUID
// and SpaceGUID is set.
type Role struct {
	GUID             string
	Type             string
	UserGUID         string
	OrganizationGUID string
	SpaceGUID        string
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// RoleFilter selects roles; a nil slice does not filter.
type RoleFilter struct {
	CommonFilter
	Types             []string
	OrganizationGUIDs []string
	SpaceGUIDs        []string
	UserGUIDs         []string
}

const roleColumns = `r.guid, r.type, r.user_guid, COALESCE(r.organization_guid, ''), COALESCE(r.space_guid, ''), r.created_at, r.updated_at`

func scanRole(row interface{ Scan(...any) error }, extra ...any) (Role, error) {
	var r Role
	dest := []any{&r.GUID, &r.Type, &r.UserGUID, &r.OrganizationGUID, &r.SpaceGUID, &r.CreatedAt, &r.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Role{}, mapError(err)
	}
	return r, nil
}

// roleCondition restricts roles to those the actor may read, as Cloud
// Controller does: org roles of orgs the actor can see and space roles of
// spaces the actor can see.
func (v Visibility) roleCondition(a *args) string {
	if v.All {
		return "TRUE"
	}
	return "(" + v.orgCondition("r.organization_guid", a) + " OR " + v.spaceCondition("r.space_guid", a) + ")"
}

var roleOrder = map[string]string{"created_at": "r.created_at", "updated_at": "r.updated_at"}

// Roles returns one page of the roles visible under vis and the total number
// of matching roles.
func (s *Store) Roles(ctx context.Context, vis Visibility, f RoleFilter, page Page) ([]Role, int, error) {
	var a args
	where := []string{vis.roleCondition(&a)}
	where = f.conditions("r", &a, where)
	for _, in := range []struct {
		column string
		values []string
	}{
		{"r.type", f.Types},
		{"r.organization_guid", f.OrganizationGUIDs},
		{"r.space_guid", f.SpaceGUIDs},
		{"r.user_guid", f.UserGUIDs},
	} {
		if in.values != nil {
			where = append(where, in.column+" = ANY("+a.add(pq.Array(in.values))+")")
		}
	}

	query := `SELECT ` + roleColumns + `, COUNT(*) OVER() FROM roles r WHERE ` + strings.Join(where, " AND ") +
		page.orderBy(roleOrder, "r.guid") + page.limitOffset()
	rows, err := s.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list roles: %w", mapError(err))
	}
	defer rows.Close()

	roles := []Role{}
	total := 0
	for rows.Next() {
		r, err := scanRole(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list roles: %w", err)
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list roles: %w", mapError(err))
	}
	if len(roles) == 0 && page.Number > 1 {
		total, err = s.countRows(ctx, "roles r", where, a)
	}
	return roles, total, err
}

// Role returns one role, or ErrNotFound when it does not exist or vis may not
// read it.
func (s *Store) Role(ctx context.Context, vis Visibility, guid string) (Role, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles r WHERE r.guid = $1 AND `+vis.roleCondition(&a), a...)
	r, err := scanRole(row)
	if err != nil {
		return Role{}, fmt.Errorf("role %s: %w", guid, err)
	}
	return r, nil
}

// CreateRole inserts r through q. A duplicate role is a *UniqueError on
// RoleOrgUniqueConstraint or RoleSpaceUniqueConstraint; a user, org or space
// that no longer exists is a *ForeignKeyError.
func CreateRole(ctx context.Context, q querier, r Role) (Role, error) {
	row := q.QueryRowContext(ctx, `
		INSERT INTO roles AS r (guid, type, user_guid, organization_guid, space_guid)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))
		RETURNING `+roleColumns,
		r.GUID, r.Type, r.UserGUID, r.OrganizationGUID, r.SpaceGUID)
	created, err := scanRole(row)
	if err != nil {
		return Role{}, fmt.Errorf("create %s role for user %s: %w", r.Type, r.UserGUID, err)
	}
	return created, nil
}

// LockRole returns the role and holds a row lock on it until q's transaction
// ends, or returns ErrNotFound when the role is gone.
func LockRole(ctx context.Context, q querier, guid string) (Role, error) {
	row := q.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM roles r WHERE r.guid = $1 FOR UPDATE`, guid)
	r, err := scanRole(row)
	if err != nil {
		return Role{}, fmt.Errorf("lock role %s: %w", guid, err)
	}
	return r, nil
}

// DeleteRole deletes a role through q; a role that is already gone is not
// an error, so job retries stay idempotent.
func DeleteRole(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM roles WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete role %s: %w", guid, mapError(err))
	}
	return nil
}

// LockOrgUserRole reports whether userGUID holds the organization_user role
// in orgGUID and, when it does, keeps that role from being deleted until q's
// transaction ends. Cloud Controller allows space roles only to org users,
// and the lock keeps a concurrent delete of the org_user role from leaving a
// space role behind without it.
func LockOrgUserRole(ctx context.Context, q querier, userGUID, orgGUID string) (bool, error) {
	var guid string
	err := q.QueryRowContext(ctx, `SELECT guid FROM roles
		WHERE user_guid = $1 AND organization_guid = $2 AND type = 'organization_user' FOR SHARE`,
		userGUID, orgGUID).Scan(&guid)
	if errors.Is(mapError(err), ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("organization_user role of %s in %s: %w", userGUID, orgGUID, mapError(err))
	}
	return true, nil
}

// HasSpaceRolesInOrg reports whether userGUID holds any role in a space of
// orgGUID.
func HasSpaceRolesInOrg(ctx context.Context, q querier, userGUID, orgGUID string) (bool, error) {
	var found bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM roles r JOIN spaces s ON s.guid = r.space_guid
		WHERE r.user_guid = $1 AND s.organization_guid = $2)`, userGUID, orgGUID).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("space roles of %s in %s: %w", userGUID, orgGUID, mapError(err))
	}
	return found, nil
}

// RoleTarget is the org, and for a space role the space, a role applies
// to, with the names role messages and audit events show.
type RoleTarget struct {
	OrganizationGUID      string
	OrganizationName      string
	OrganizationSuspended bool
	SpaceGUID             string
	SpaceName             string
	SpaceSuspended        bool
}

const (
	orgTargetColumns   = `o.name, o.suspended`
	spaceTargetColumns = `s.name, s.suspended, o.guid, o.name, o.suspended`
)

func (t *RoleTarget) orgDest() []any { return []any{&t.OrganizationName, &t.OrganizationSuspended} }

func (t *RoleTarget) spaceDest() []any {
	return []any{&t.SpaceName, &t.SpaceSuspended, &t.OrganizationGUID, &t.OrganizationName, &t.OrganizationSuspended}
}

// OrganizationRoleTarget returns the target of a role in org guid, or
// ErrNotFound when the org does not exist or vis cannot see it.
func (s *Store) OrganizationRoleTarget(ctx context.Context, vis Visibility, guid string) (RoleTarget, error) {
	a := args{guid}
	t := RoleTarget{OrganizationGUID: guid}
	err := s.db.QueryRowContext(ctx, `SELECT `+orgTargetColumns+` FROM organizations o WHERE o.guid = $1 AND `+
		vis.orgCondition("o.guid", &a), a...).Scan(t.orgDest()...)
	if err != nil {
		return RoleTarget{}, fmt.Errorf("organization %s: %w", guid, mapError(err))
	}
	return t, nil
}

// SpaceRoleTarget returns the target of a role in space guid, or
// ErrNotFound when the space does not exist or vis cannot see it.
func (s *Store) SpaceRoleTarget(ctx context.Context, vis Visibility, guid string) (RoleTarget, error) {
	a := args{guid}
	t := RoleTarget{SpaceGUID: guid}
	err := s.db.QueryRowContext(ctx, `SELECT `+spaceTargetColumns+` FROM spaces s JOIN organizations o ON o.guid = s.organization_guid
		WHERE s.guid = $1 AND `+vis.spaceCondition("s.guid", &a), a...).Scan(t.spaceDest()...)
	if err != nil {
		return RoleTarget{}, fmt.Errorf("space %s: %w", guid, mapError(err))
	}
	return t, nil
}

// RoleTargetOf returns the target of an existing role, whoever may see it.
func RoleTargetOf(ctx context.Context, q querier, r Role) (RoleTarget, error) {
	var t RoleTarget
	var err error
	if r.SpaceGUID != "" {
		t.SpaceGUID = r.SpaceGUID
		err = q.QueryRowContext(ctx, `SELECT `+spaceTargetColumns+` FROM spaces s JOIN organizations o ON o.guid = s.organization_guid
			WHERE s.guid = $1`, r.SpaceGUID).Scan(t.spaceDest()...)
	} else {
		t.OrganizationGUID = r.OrganizationGUID
		err = q.QueryRowContext(ctx, `SELECT `+orgTargetColumns+` FROM organizations o WHERE o.guid = $1`, r.OrganizationGUID).Scan(t.orgDest()...)
	}
	if err != nil {
		return RoleTarget{}, fmt.Errorf("target of role %s: %w", r.GUID, mapError(err))
	}
	return t, nil
}
