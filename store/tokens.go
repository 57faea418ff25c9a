package store

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// RefreshToken is the server-side record of an issued refresh token.
type RefreshToken struct {
	JTI string
	// UserID is the uaa_users id, empty for tokens issued to a client alone.
	UserID   string
	ClientID string
	Scopes   []string
	// Generation is the user's generation when the token was issued, so a
	// password change makes it stale.
	Generation int64
	// AccessJTI is the jti of the newest access token issued with it.
	AccessJTI string
	Revoked   bool
	ExpiresAt time.Time
	CreatedAt time.Time
}

const refreshTokenColumns = `jti, COALESCE(user_id, ''), client_id, scopes, generation, access_jti, revoked, expires_at, created_at`

func scanRefreshToken(row interface{ Scan(...any) error }) (RefreshToken, error) {
	var t RefreshToken
	var scopes pq.StringArray
	err := row.Scan(&t.JTI, &t.UserID, &t.ClientID, &scopes, &t.Generation, &t.AccessJTI, &t.Revoked, &t.ExpiresAt, &t.CreatedAt)
	if err != nil {
		return RefreshToken{}, mapError(err)
	}
	t.Scopes = []string(scopes)
	return t, nil
}

// CreateRefreshToken records a newly issued refresh token. It also deletes
// expired refresh tokens, so the table holds live sessions only.
func (s *Store) CreateRefreshToken(ctx context.Context, t RefreshToken) error {
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO refresh_tokens (jti, user_id, client_id, scopes, generation, access_jti, expires_at)
		VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7)`,
		t.JTI, t.UserID, t.ClientID, pq.StringArray(scopes), t.Generation, t.AccessJTI, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create refresh token: %w", mapError(err))
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("delete expired refresh tokens: %w", mapError(err))
	}
	return nil
}

// RefreshToken returns the record of refresh token jti, revoked or not.
func (s *Store) RefreshToken(ctx context.Context, jti string) (RefreshToken, error) {
	t, err := scanRefreshToken(s.db.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE jti = $1`, jti))
	if err != nil {
		return RefreshToken{}, fmt.Errorf("refresh token: %w", err)
	}
	return t, nil
}

// RefreshTokenByAccessJTI returns the refresh token whose newest access
// token is accessJTI.
func (s *Store) RefreshTokenByAccessJTI(ctx context.Context, accessJTI string) (RefreshToken, error) {
	t, err := scanRefreshToken(s.db.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens
		WHERE access_jti = $1 ORDER BY created_at DESC LIMIT 1`, accessJTI))
	if err != nil {
		return RefreshToken{}, fmt.Errorf("refresh token of access token: %w", err)
	}
	return t, nil
}

// SetRefreshTokenAccessJTI records accessJTI as the newest access token of
// refresh token jti. It returns ErrNotFound when the refresh token is
// unknown, revoked or expired by now, so a refresh racing a revocation fails.
func (s *Store) SetRefreshTokenAccessJTI(ctx context.Context, jti, accessJTI string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET access_jti = $2
		WHERE jti = $1 AND NOT revoked AND expires_at > now()`, jti, accessJTI)
	if err != nil {
		return fmt.Errorf("update refresh token: %w", mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update refresh token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("update refresh token: %w", ErrNotFound)
	}
	return nil
}

// RevokeRefreshToken marks refresh token jti revoked. Revoking it again is
// not an error, but an unknown jti is ErrNotFound.
func (s *Store) RevokeRefreshToken(ctx context.Context, jti string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = true WHERE jti = $1`, jti)
	if err != nil {
		return fmt.Errorf("revoke refresh token: %w", mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("revoke refresh token: %w", ErrNotFound)
	}
	return nil
}

// RevokeAccessToken adds access token jti, valid until expiresAt, to the
// revocation list, together with every refresh token whose newest access
// token it is. It also drops list entries whose tokens have expired, since
// their expiry check rejects them anyway.
func (s *Store) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, EXCLUDED.expires_at)`, jti, expiresAt)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", mapError(err))
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked = true WHERE access_jti = $1 AND NOT revoked`, jti); err != nil {
		return fmt.Errorf("revoke refresh tokens of access token: %w", mapError(err))
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM revoked_tokens WHERE expires_at < now()`); err != nil {
		return fmt.Errorf("delete expired revocations: %w", mapError(err))
	}
	return nil
}

// AccessTokenRevoked reports whether access token jti was revoked. It is one
// primary-key lookup, made for every authenticated request.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	err := s.preparedRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)`, jti).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("check token revocation: %w", mapError(err))
	}
	return revoked, nil
}
