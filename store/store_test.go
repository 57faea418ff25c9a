package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/ferrycf/ferry/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateIsIdempotent(t *testing.T) {
	st := pgtest.NewStore(t)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	boom := errors.New("boom")

	err := st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (guid) VALUES ('u1')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v, want boom", err)
	}

	var n int
	if err := st.DB().QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("users after rollback = %d, want 0", n)
	}
}
