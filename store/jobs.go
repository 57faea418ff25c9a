package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Job states as Cloud Controller reports them.
const (
	JobProcessing = "PROCESSING"
	JobComplete   = "COMPLETE"
	JobFailed     = "FAILED"
)

// Job is an async operation behind a 202 + Location response.
type Job struct {
	GUID         string
	Operation    string
	State        string
	ResourceType string
	ResourceGUID string
	UserGUID     string
	Errors       []JobError
	Warnings     []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// JobError is one error of a failed job, in Cloud Controller's v3 shape.
type JobError struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

const jobColumns = `guid, operation, state, resource_type, resource_guid, COALESCE(user_guid, ''), errors, warnings, created_at, updated_at`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var errs, warns []byte
	err := row.Scan(&j.GUID, &j.Operation, &j.State, &j.ResourceType, &j.ResourceGUID, &j.UserGUID, &errs, &warns, &j.CreatedAt, &j.UpdatedAt)
	if err != nil {
		return Job{}, mapError(err)
	}
	if err := json.Unmarshal(errs, &j.Errors); err != nil {
		return Job{}, fmt.Errorf("decode job errors: %w", err)
	}
	if err := json.Unmarshal(warns, &j.Warnings); err != nil {
		return Job{}, fmt.Errorf("decode job warnings: %w", err)
	}
	return j, nil
}

// CreateJob inserts a PROCESSING job through q, normally the transaction
// that also marks the resource for the operation.
func CreateJob(ctx context.Context, q querier, j Job) error {
	_, err := q.ExecContext(ctx, `
		INSERT INTO jobs (guid, operation, resource_type, resource_guid, user_guid)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''))`,
		j.GUID, j.Operation, j.ResourceType, j.ResourceGUID, j.UserGUID)
	if err != nil {
		return fmt.Errorf("create job: %w", mapError(err))
	}
	return nil
}

// Job returns one job.
func (s *Store) Job(ctx context.Context, guid string) (Job, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE guid = $1`, guid)
	j, err := scanJob(row)
	if err != nil {
		return Job{}, fmt.Errorf("job %s: %w", guid, err)
	}
	return j, nil
}

// ClaimJob locks the oldest PROCESSING job no other process holds and runs
// fn on it; the job ends COMPLETE when fn returns nil and FAILED with fn's
// JobError otherwise. The row lock is the claim: if this process dies the
// lock is released and another process runs the job again, so fn must be
// idempotent. It returns false when there was nothing to run.
func (s *Store) ClaimJob(ctx context.Context, fn func(ctx context.Context, j Job) *JobError) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("claim job: %w", mapError(err))
	}
	defer tx.Rollback()

	row := tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE state = 'PROCESSING' ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED`)
	j, err := scanJob(row)
	if err == ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim job: %w", err)
	}

	jobErr := fn(ctx, j)
	if ctx.Err() != nil {
		// Shutting down: leave the job PROCESSING for the next process.
		return true, ctx.Err()
	}
	if err := finishJob(ctx, tx, j.GUID, jobErr); err != nil {
		return true, err
	}
	if err := tx.Commit(); err != nil {
		return true, fmt.Errorf("finish job %s: %w", j.GUID, mapError(err))
	}
	return true, nil
}

func finishJob(ctx context.Context, tx *sql.Tx, guid string, jobErr *JobError) error {
	state, errs := JobComplete, []byte("[]")
	if jobErr != nil {
		state = JobFailed
		raw, err := json.Marshal([]JobError{*jobErr})
		if err != nil {
			return err
		}
		errs = raw
	}
	_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = $2, errors = $3, updated_at = now() WHERE guid = $1`, guid, state, errs)
	if err != nil {
		return fmt.Errorf("finish job %s: %w", guid, mapError(err))
	}
	return nil
}
