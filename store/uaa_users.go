package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Constraints of uaa_users that callers translate into client errors.
const (
	// UAAUsernameOriginKey is violated by a second user with the same
	// username (compared case-insensitively) in the same origin.
	UAAUsernameOriginKey = "uaa_users_username_origin_key"
	// UAAUserPrimaryKey is violated by a second user with the same id.
	UAAUserPrimaryKey = "uaa_users_pkey"
)

// UAAUser is a login identity of the UAA-compatible endpoints. ID is also
// the guid of the person's Cloud Controller user record, when one exists.
type UAAUser struct {
	ID       string
	Username string
	Origin   string
	// PasswordHash is a bcrypt hash, empty for users of external origins.
	PasswordHash string
	GivenName    string
	FamilyName   string
	Email        string
	// Groups are scopes granted on top of an ordinary user's.
	Groups []string
	// Generation increases with every password change.
	Generation int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const uaaUserColumns = `id, username, origin, COALESCE(password_hash, ''), given_name, family_name, email, groups,
	generation, created_at, updated_at`

func scanUAAUser(row interface{ Scan(...any) error }) (UAAUser, error) {
	var u UAAUser
	var groups pq.StringArray
	err := row.Scan(&u.ID, &u.Username, &u.Origin, &u.PasswordHash, &u.GivenName, &u.FamilyName, &u.Email, &groups,
		&u.Generation, &u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return UAAUser{}, mapError(err)
	}
	u.Groups = []string(groups)
	return u, nil
}

// CreateUAAUser inserts u and returns it as stored. A duplicate username in
// the origin is a *UniqueError on UAAUsernameOriginKey, a duplicate id one on
// UAAUserPrimaryKey.
func (s *Store) CreateUAAUser(ctx context.Context, u UAAUser) (UAAUser, error) {
	created, err := insertUAAUser(ctx, s.db, u)
	if err != nil {
		return UAAUser{}, fmt.Errorf("create uaa user: %w", err)
	}
	return created, nil
}

func insertUAAUser(ctx context.Context, q querier, u UAAUser) (UAAUser, error) {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	row := q.QueryRowContext(ctx, `
		INSERT INTO uaa_users (id, username, origin, password_hash, given_name, family_name, email, groups)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8)
		RETURNING `+uaaUserColumns,
		u.ID, u.Username, u.Origin, u.PasswordHash, u.GivenName, u.FamilyName, u.Email, pq.StringArray(groups))
	return scanUAAUser(row)
}

// EnsureAdminUser creates the bootstrap admin u, together with a Cloud
// Controller user record with the same guid, unless a UAA user with u's
// username and origin exists. It returns the stored user and whether this
// call created it. An existing admin keeps its password and groups, but
// gets its Cloud Controller record back if that was deleted. Concurrent
// callers are safe: exactly one of them creates the user.
func (s *Store) EnsureAdminUser(ctx context.Context, u UAAUser) (UAAUser, bool, error) {
	var stored UAAUser
	var created bool
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		groups := u.Groups
		if groups == nil {
			groups = []string{}
		}
		row := tx.QueryRowContext(ctx, `
			INSERT INTO uaa_users (id, username, origin, password_hash, given_name, family_name, email, groups)
			VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8)
			ON CONFLICT DO NOTHING
			RETURNING `+uaaUserColumns,
			u.ID, u.Username, u.Origin, u.PasswordHash, u.GivenName, u.FamilyName, u.Email, pq.StringArray(groups))
		var err error
		stored, err = scanUAAUser(row)
		switch {
		case err == nil:
			created = true
		case err == ErrNotFound:
			stored, err = scanUAAUser(tx.QueryRowContext(ctx, `SELECT `+uaaUserColumns+` FROM uaa_users
				WHERE lower(username) = lower($1) AND origin = $2`, u.Username, u.Origin))
			if err != nil {
				return err
			}
		default:
			return err
		}

		_, err = tx.ExecContext(ctx, `INSERT INTO users (guid) VALUES ($1) ON CONFLICT DO NOTHING`, stored.ID)
		return mapError(err)
	})
	if err != nil {
		return UAAUser{}, false, fmt.Errorf("ensure admin user %s: %w", u.Username, err)
	}
	return stored, created, nil
}

// UAAUser returns the user with the given id.
func (s *Store) UAAUser(ctx context.Context, id string) (UAAUser, error) {
	u, err := scanUAAUser(s.db.QueryRowContext(ctx, `SELECT `+uaaUserColumns+` FROM uaa_users WHERE id = $1`, id))
	if err != nil {
		return UAAUser{}, fmt.Errorf("uaa user %s: %w", id, err)
	}
	return u, nil
}

// UAAUserByName returns the user of origin whose username matches
// case-insensitively, as UAA compares usernames. It returns ErrNotFound when
// there is none.
func (s *Store) UAAUserByName(ctx context.Context, username, origin string) (UAAUser, error) {
	u, err := scanUAAUser(s.db.QueryRowContext(ctx, `SELECT `+uaaUserColumns+` FROM uaa_users
		WHERE lower(username) = lower($1) AND origin = $2`, username, origin))
	if err != nil {
		return UAAUser{}, fmt.Errorf("uaa user %s in origin %s: %w", username, origin, err)
	}
	return u, nil
}

// UAAUsersByName returns the users of every origin whose username matches
// case-insensitively, ordered by origin.
func (s *Store) UAAUsersByName(ctx context.Context, username string) ([]UAAUser, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+uaaUserColumns+` FROM uaa_users
		WHERE lower(username) = lower($1) ORDER BY origin`, username)
	if err != nil {
		return nil, fmt.Errorf("uaa users named %s: %w", username, mapError(err))
	}
	defer rows.Close()
	var users []UAAUser
	for rows.Next() {
		u, err := scanUAAUser(rows)
		if err != nil {
			return nil, fmt.Errorf("uaa users named %s: %w", username, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("uaa users named %s: %w", username, mapError(err))
	}
	return users, nil
}

// UAAUsersByIDs returns the users with the given ids, keyed by id. Ids
// without a user are absent from the map.
func (s *Store) UAAUsersByIDs(ctx context.Context, ids []string) (map[string]UAAUser, error) {
	users := make(map[string]UAAUser, len(ids))
	if len(ids) == 0 {
		return users, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+uaaUserColumns+` FROM uaa_users WHERE id = ANY($1)`, pq.StringArray(ids))
	if err != nil {
		return nil, fmt.Errorf("uaa users by id: %w", mapError(err))
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUAAUser(rows)
		if err != nil {
			return nil, fmt.Errorf("uaa users by id: %w", err)
		}
		users[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("uaa users by id: %w", mapError(err))
	}
	return users, nil
}

// UAAUserFilter is a parsed SCIM filter over UAA users: either one
// comparison (Attribute, Operator, Value) or a logical Operator ("and",
// "or") over Left and Right.
type UAAUserFilter struct {
	// Operator is "eq", "co", "sw" or "pr" for a comparison, "and" or "or"
	// for a combination.
	Operator string
	// Attribute is a lower-case SCIM attribute name: id, username, origin,
	// email, givenname or familyname.
	Attribute string
	Value     string
	Left      *UAAUserFilter
	Right     *UAAUserFilter
}

// uaaUserFilterColumns maps SCIM attributes to columns. SCIM compares every
// attribute but id case-insensitively, so those comparisons are on lower().
var uaaUserFilterColumns = map[string]string{
	"id":         "id",
	"username":   "username",
	"origin":     "origin",
	"email":      "email",
	"givenname":  "given_name",
	"familyname": "family_name",
}

// UAAUserFilterAttributes lists the attributes a UAAUserFilter may compare.
func UAAUserFilterAttributes() []string {
	return []string{"id", "userName", "origin", "email", "name.givenName", "name.familyName"}
}

// sql renders the filter as a WHERE condition, adding values to a.
func (f *UAAUserFilter) sql(a *args) (string, error) {
	switch f.Operator {
	case "and", "or":
		if f.Left == nil || f.Right == nil {
			return "", fmt.Errorf("filter %q needs two operands", f.Operator)
		}
		left, err := f.Left.sql(a)
		if err != nil {
			return "", err
		}
		right, err := f.Right.sql(a)
		if err != nil {
			return "", err
		}
		return "(" + left + " " + strings.ToUpper(f.Operator) + " " + right + ")", nil
	}

	col, ok := uaaUserFilterColumns[f.Attribute]
	if !ok {
		return "", fmt.Errorf("unknown filter attribute %q", f.Attribute)
	}
	switch {
	case f.Operator == "eq" && col == "id":
		return "id = " + a.add(f.Value), nil
	case f.Operator == "eq":
		return "lower(" + col + ") = lower(" + a.add(f.Value) + ")", nil
	case f.Operator == "co":
		return "strpos(lower(" + col + "), lower(" + a.add(f.Value) + ")) > 0", nil
	case f.Operator == "sw":
		return "starts_with(lower(" + col + "), lower(" + a.add(f.Value) + "))", nil
	case f.Operator == "pr":
		return "(" + col + " IS NOT NULL AND " + col + " <> '')", nil
	}
	return "", fmt.Errorf("unknown filter operator %q", f.Operator)
}

// UAAUserQuery selects a page of UAA users.
type UAAUserQuery struct {
	// Filter restricts the users, or is nil for all users.
	Filter *UAAUserFilter
	// StartIndex is SCIM's 1-based index of the first result.
	StartIndex int
	// Count is the page size.
	Count int
	// SortBy is a lower-case attribute of UAAUserFilter, or "created", which
	// is also the default.
	SortBy     string
	Descending bool
}

// UAAUsers returns one page of the users q selects, and the total number of
// matches.
func (s *Store) UAAUsers(ctx context.Context, q UAAUserQuery) ([]UAAUser, int, error) {
	var a args
	where := "TRUE"
	if q.Filter != nil {
		cond, err := q.Filter.sql(&a)
		if err != nil {
			return nil, 0, fmt.Errorf("uaa users: %w", err)
		}
		where = cond
	}
	sortColumn, ok := uaaUserFilterColumns[q.SortBy]
	if !ok {
		sortColumn = "created_at"
	}
	dir := " ASC"
	if q.Descending {
		dir = " DESC"
	}
	start := max(q.StartIndex, 1)
	query := `SELECT ` + uaaUserColumns + `, COUNT(*) OVER() FROM uaa_users WHERE ` + where +
		` ORDER BY ` + sortColumn + dir + `, id` + dir +
		` LIMIT ` + strconv.Itoa(max(q.Count, 0)) + ` OFFSET ` + strconv.Itoa(start-1)

	rows, err := s.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, 0, fmt.Errorf("uaa users: %w", mapError(err))
	}
	defer rows.Close()

	users := []UAAUser{}
	total := 0
	for rows.Next() {
		var u UAAUser
		var groups pq.StringArray
		err := rows.Scan(&u.ID, &u.Username, &u.Origin, &u.PasswordHash, &u.GivenName, &u.FamilyName, &u.Email, &groups,
			&u.Generation, &u.CreatedAt, &u.UpdatedAt, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("uaa users: %w", mapError(err))
		}
		u.Groups = []string(groups)
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("uaa users: %w", mapError(err))
	}
	if len(users) == 0 {
		// An empty page has no row to carry the window count.
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM uaa_users WHERE `+where, a...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("uaa users: %w", mapError(err))
		}
	}
	return users, total, nil
}

// SetUAAUserPassword stores a new password hash for user id, increases its
// generation and revokes its refresh tokens, in one transaction. It returns
// ErrNotFound for an unknown id.
func (s *Store) SetUAAUserPassword(ctx context.Context, id, passwordHash string) error {
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE uaa_users SET password_hash = $2, generation = generation + 1, updated_at = now()
			WHERE id = $1`, id, passwordHash)
		if err != nil {
			return mapError(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = true WHERE user_id = $1 AND NOT revoked`, id)
		return mapError(err)
	})
	if err != nil {
		return fmt.Errorf("set password of uaa user %s: %w", id, err)
	}
	return nil
}

// DeleteUAAUser deletes user id and its refresh tokens and returns the
// deleted user. The Cloud Controller user record, if any, stays: Cloud
// Controller deletes it separately. It returns ErrNotFound for an unknown id.
func (s *Store) DeleteUAAUser(ctx context.Context, id string) (UAAUser, error) {
	var deleted UAAUser
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		deleted, err = scanUAAUser(tx.QueryRowContext(ctx, `DELETE FROM uaa_users WHERE id = $1 RETURNING `+uaaUserColumns, id))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE user_id = $1`, id)
		return mapError(err)
	})
	if err != nil {
		return UAAUser{}, fmt.Errorf("delete uaa user %s: %w", id, err)
	}
	return deleted, nil
}
