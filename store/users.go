package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// UserPrimaryKey is violated by a second Cloud Controller user with the same
// guid.
const UserPrimaryKey = "users_pkey"

// User is a Cloud Controller user record. Username and Origin come from the
// UAA user with the same guid and are empty when there is none, as for users
// of identity providers whose identities live outside Ferry.
type User struct {
	GUID        string
	Username    string
	Origin      string
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// UserFilter selects users; a nil slice does not filter. Origins applies
// only together with Usernames or PartialUsernames.
type UserFilter struct {
	CommonFilter
	Usernames        []string
	PartialUsernames []string
	Origins          []string
	LabelSelector    LabelSelector
}

const userColumns = `u.guid, COALESCE(uu.username, ''), COALESCE(uu.origin, ''), u.labels, u.annotations, u.created_at, u.updated_at`

// userFrom joins each Cloud Controller user with its UAA identity, if any.
const userFrom = `users u LEFT JOIN uaa_users uu ON uu.id = u.guid`

func scanUser(row interface{ Scan(...any) error }, extra ...any) (User, error) {
	var u User
	var labels, annotations []byte
	dest := []any{&u.GUID, &u.Username, &u.Origin, &labels, &annotations, &u.CreatedAt, &u.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return User{}, mapError(err)
	}
	var err error
	if u.Labels, err = jsonMap(labels); err != nil {
		return User{}, err
	}
	if u.Annotations, err = jsonMap(annotations); err != nil {
		return User{}, err
	}
	return u, nil
}

// userCondition restricts users to those the actor may read, as Cloud
// Controller does: the actor themselves and every user with an org role in
// an org where the actor has an org role.
func (v Visibility) userCondition(a *args) string {
	if v.All {
		return "TRUE"
	}
	u := a.add(v.UserGUID)
	return `(u.guid = ` + u + ` OR u.guid IN (SELECT member.user_guid FROM roles member
		WHERE member.organization_guid IN (SELECT organization_guid FROM roles WHERE user_guid = ` + u + `)))`
}

var userOrder = map[string]string{"created_at": "u.created_at", "updated_at": "u.updated_at"}

// Users returns one page of the users visible under vis and the total number
// of matching users.
func (s *Store) Users(ctx context.Context, vis Visibility, f UserFilter, page Page) ([]User, int, error) {
	var a args
	where := []string{vis.userCondition(&a)}
	where = f.conditions("u", &a, where)
	if f.Usernames != nil {
		where = append(where, "lower(uu.username) = ANY("+a.add(pq.Array(lowerUsernames(f.Usernames)))+")")
	}
	if f.PartialUsernames != nil {
		where = append(where, "lower(uu.username) LIKE ANY("+a.add(pq.Array(containsPatterns(f.PartialUsernames)))+")")
	}
	if f.Origins != nil {
		where = append(where, "uu.origin = ANY("+a.add(pq.Array(f.Origins))+")")
	}
	if len(f.LabelSelector) > 0 {
		where = append(where, f.LabelSelector.condition("u.labels", &a))
	}

	query := `SELECT ` + userColumns + `, COUNT(*) OVER() FROM ` + userFrom + ` WHERE ` + strings.Join(where, " AND ") +
		page.orderBy(userOrder, "u.guid") + page.limitOffset()
	rows, err := s.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", mapError(err))
	}
	defer rows.Close()

	users := []User{}
	total := 0
	for rows.Next() {
		u, err := scanUser(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list users: %w", mapError(err))
	}
	if len(users) == 0 && page.Number > 1 {
		total, err = s.countRows(ctx, userFrom, where, a)
	}
	return users, total, err
}

func lowerUsernames(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.ToLower(v)
	}
	return out
}

// containsPatterns turns substrings into lower-case LIKE patterns, escaping
// LIKE's wildcards so they match literally.
func containsPatterns(values []string) []string {
	escape := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = "%" + escape.Replace(strings.ToLower(v)) + "%"
	}
	return out
}

// User returns one user, or ErrNotFound when it does not exist or vis may
// not read it.
func (s *Store) User(ctx context.Context, vis Visibility, guid string) (User, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM `+userFrom+` WHERE u.guid = $1 AND `+vis.userCondition(&a), a...)
	u, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", guid, err)
	}
	return u, nil
}

// UsersByGUIDs returns the users with the given guids in one query, in no
// particular order. Guids without a user are skipped. It applies no
// visibility: callers pass guids of resources the actor may already read.
func (s *Store) UsersByGUIDs(ctx context.Context, guids []string) ([]User, error) {
	users := []User{}
	if len(guids) == 0 {
		return users, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM `+userFrom+` WHERE u.guid = ANY($1) ORDER BY u.created_at, u.guid`,
		pq.Array(guids))
	if err != nil {
		return nil, fmt.Errorf("users by guid: %w", mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("users by guid: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users by guid: %w", mapError(err))
	}
	return users, nil
}

// CreateUser inserts a Cloud Controller user through q and returns it with
// its UAA identity. A guid that exists already is a *UniqueError on
// UserPrimaryKey.
func CreateUser(ctx context.Context, q querier, guid string, labels, annotations map[string]string) (User, error) {
	labelsJSON, err := json.Marshal(cloneMap(labels))
	if err != nil {
		return User{}, fmt.Errorf("create user %s: encode labels: %w", guid, err)
	}
	annotationsJSON, err := json.Marshal(cloneMap(annotations))
	if err != nil {
		return User{}, fmt.Errorf("create user %s: encode annotations: %w", guid, err)
	}
	_, err = q.ExecContext(ctx, `INSERT INTO users (guid, labels, annotations) VALUES ($1, $2, $3)`,
		guid, labelsJSON, annotationsJSON)
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", guid, mapError(err))
	}
	return UserThrough(ctx, q, guid)
}

// EnsureUser inserts a Cloud Controller user record for guid through q
// unless one exists, as Cloud Controller does when a role is given to a user
// it has no record of yet. It reports whether it inserted one.
func EnsureUser(ctx context.Context, q querier, guid string) (bool, error) {
	res, err := q.ExecContext(ctx, `INSERT INTO users (guid) VALUES ($1) ON CONFLICT DO NOTHING`, guid)
	if err != nil {
		return false, fmt.Errorf("ensure user %s: %w", guid, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("ensure user %s: %w", guid, err)
	}
	return n == 1, nil
}

// UpdateUserMetadata applies patch to user guid through q and returns the
// user; ErrNotFound when it does not exist.
func UpdateUserMetadata(ctx context.Context, q querier, guid string, patch MetadataPatch) (User, error) {
	a := args{guid}
	set, err := metadataAssignments(patch, &a)
	if err != nil {
		return User{}, fmt.Errorf("update user %s: %w", guid, err)
	}
	res, err := q.ExecContext(ctx, `UPDATE users SET updated_at = now()`+set+` WHERE guid = $1`, a...)
	if err != nil {
		return User{}, fmt.Errorf("update user %s: %w", guid, mapError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return User{}, fmt.Errorf("update user %s: %w", guid, err)
	} else if n == 0 {
		return User{}, fmt.Errorf("update user %s: %w", guid, ErrNotFound)
	}
	return UserThrough(ctx, q, guid)
}

// DeleteUser deletes a Cloud Controller user and, through the foreign key,
// all of its roles. A user that is already gone is not an error, so job
// retries stay idempotent. The UAA identity, if any, stays.
func DeleteUser(ctx context.Context, q querier, guid string) error {
	if _, err := q.ExecContext(ctx, `DELETE FROM users WHERE guid = $1`, guid); err != nil {
		return fmt.Errorf("delete user %s: %w", guid, mapError(err))
	}
	return nil
}

// UserThrough returns user guid read through q, whoever may see it, so a
// transaction can read the user it just changed.
func UserThrough(ctx context.Context, q querier, guid string) (User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM `+userFrom+` WHERE u.guid = $1`, guid))
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", guid, err)
	}
	return u, nil
}
