// Package store is Ferry's PostgreSQL persistence: the desired state users
// asked for, identities, jobs and audit events. Every query takes a context;
// unique violations surface as *UniqueError so callers never check before
// inserting.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned by single-row reads and by updates or deletes that
// matched no row the caller may see.
var ErrNotFound = errors.New("not found")

// UniqueError reports a unique-constraint violation; Constraint is the name
// of the violated constraint or unique index, so callers can tell which
// uniqueness rule was broken.
type UniqueError struct {
	Constraint string
	Err        error
}

func (e *UniqueError) Error() string { return "unique violation on " + e.Constraint }
func (e *UniqueError) Unwrap() error { return e.Err }

// ForeignKeyError reports a foreign-key violation, e.g. a relationship to a
// row that does not exist or was deleted concurrently.
type ForeignKeyError struct {
	Constraint string
	Err        error
}

func (e *ForeignKeyError) Error() string { return "foreign key violation on " + e.Constraint }
func (e *ForeignKeyError) Unwrap() error { return e.Err }

// IsUnique reports whether err is a unique violation of the named constraint.
func IsUnique(err error, constraint string) bool {
	var u *UniqueError
	return errors.As(err, &u) && u.Constraint == constraint
}

// Store is the handle the rest of Ferry uses for PostgreSQL.
type Store struct {
	db *sql.DB
	// statements contains the statements preparedRow prepared, keyed by
	// query text.
	statements sync.Map
}

// Open connects to PostgreSQL at url (a lib/pq URL or DSN) and checks the
// connection. It does not migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &Store{db: db}, nil
}

// New wraps an existing connection pool.
func New(db *sql.DB) *Store { return &Store{db: db} }

// DB returns the underlying pool, for tests and benchmarks.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// preparedRow runs a query that returns at most one row through a
// statement prepared once per query text, which PostgreSQL parses and
// plans once per connection. An unprepared query is parsed and planned on
// every call, and for a lookup by primary key that joins a few tables that
// costs several times the execution. Only queries with a fixed text may use
// it, because every text stays prepared until the pool closes.
func (s *Store) preparedRow(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
	stmt, err := s.statement(ctx, query)
	if err != nil {
		return errorRow{err: fmt.Errorf("prepare statement: %w", err)}
	}
	return stmt.QueryRowContext(ctx, args...)
}

// statement returns the prepared statement of query, preparing it on first
// use. database/sql prepares it again on each connection that runs it.
func (s *Store) statement(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.statements.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if existing, loaded := s.statements.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return existing.(*sql.Stmt), nil
	}
	return stmt, nil
}

// errorRow is a row whose Scan returns err.
type errorRow struct{ err error }

func (r errorRow) Scan(...any) error { return r.err }

// Migrate applies every embedded migration not yet applied. Concurrent
// callers are serialised by a PostgreSQL advisory lock, so several API
// replicas may start at once.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()

	const lockID = 7310_2026
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID)

	provider, err := goose.NewProvider(goose.DialectPostgres, s.db, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling
// back otherwise. The commit error is returned, never dropped.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", mapError(err))
	}
	defer tx.Rollback()

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// mapError turns PostgreSQL errors callers act on into Ferry's error types.
// Every store method passes its database errors through it.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505":
			return &UniqueError{Constraint: pqErr.Constraint, Err: err}
		case "23503":
			return &ForeignKeyError{Constraint: pqErr.Constraint, Err: err}
		}
	}
	return err
}

// querier is what *sql.DB and *sql.Tx have in common, so store functions can
// run inside or outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
