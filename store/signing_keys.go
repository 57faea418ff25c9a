package store

import (
	"context"
	"fmt"
	"time"
)

// SigningKey is an RSA key that signs access tokens, as PKCS#8 PEM. Anyone
// who can read this table can mint tokens, so database access is as
// sensitive as the key.
type SigningKey struct {
	KID           string
	PrivateKeyPEM string
	// Active marks the one key that signs new tokens.
	Active    bool
	CreatedAt time.Time
}

const signingKeyColumns = `kid, private_key_pem, active, created_at`

func scanSigningKey(row interface{ Scan(...any) error }) (SigningKey, error) {
	var k SigningKey
	if err := row.Scan(&k.KID, &k.PrivateKeyPEM, &k.Active, &k.CreatedAt); err != nil {
		return SigningKey{}, mapError(err)
	}
	return k, nil
}

// ActiveSigningKey returns the key that signs new tokens, or ErrNotFound
// before the first one is stored.
func (s *Store) ActiveSigningKey(ctx context.Context) (SigningKey, error) {
	k, err := scanSigningKey(s.db.QueryRowContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys WHERE active`))
	if err != nil {
		return SigningKey{}, fmt.Errorf("active signing key: %w", err)
	}
	return k, nil
}

// EnsureSigningKey stores candidate as the active key unless an active key
// exists, and returns the active key. When several processes start at once
// with different candidates, the unique index on the active key lets exactly
// one insert win, and every caller gets the winner.
func (s *Store) EnsureSigningKey(ctx context.Context, candidate SigningKey) (SigningKey, error) {
	_, err := s.db.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_key_pem, active) VALUES ($1, $2, true)
		ON CONFLICT DO NOTHING`, candidate.KID, candidate.PrivateKeyPEM)
	if err != nil {
		return SigningKey{}, fmt.Errorf("store signing key: %w", mapError(err))
	}
	return s.ActiveSigningKey(ctx)
}

// SigningKeys returns every stored key, the active one first, then the
// newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY active DESC, created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", mapError(err))
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		k, err := scanSigningKey(rows)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signing keys: %w", mapError(err))
	}
	return keys, nil
}
