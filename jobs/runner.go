// Package jobs runs Ferry's async operations (deletes of orgs, spaces, roles,
// users and, later, apps and routes). Jobs live in PostgreSQL, so any Ferry
// process resumes those a stopped process left unfinished.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Func performs one operation on the job's resource. It must be idempotent:
// a job is run again from the start if the process running it dies.
type Func func(ctx context.Context, job store.Job) error

// Runner polls for PROCESSING jobs and runs the Func registered for each
// job's operation.
type Runner struct {
	store    *store.Store
	logger   *slog.Logger
	handlers map[string]Func
	wake     chan struct{}
	interval time.Duration
}

// NewRunner returns a runner; register operations with Handle before Run.
func NewRunner(st *store.Store, logger *slog.Logger) *Runner {
	return &Runner{
		store:    st,
		logger:   logger,
		handlers: map[string]Func{},
		wake:     make(chan struct{}, 1),
		interval: time.Second,
	}
}

// Handle registers fn for operation.
func (r *Runner) Handle(operation string, fn Func) { r.handlers[operation] = fn }

// Wake makes the runner look for work now instead of at its next poll.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run processes jobs until ctx is done.
func (r *Runner) Run(ctx context.Context) {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	for {
		r.drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-r.wake:
		}
	}
}

// RunPending processes every runnable job once and returns; tests use it to
// run jobs deterministically.
func (r *Runner) RunPending(ctx context.Context) { r.drain(ctx) }

func (r *Runner) drain(ctx context.Context) {
	for ctx.Err() == nil {
		found, err := r.store.ClaimJob(ctx, r.run)
		if err != nil {
			if ctx.Err() == nil {
				r.logger.Error("job run failed", "error", err)
			}
			return
		}
		if !found {
			return
		}
	}
}

func (r *Runner) run(ctx context.Context, job store.Job) *store.JobError {
	logger := r.logger.With("job_guid", job.GUID, "operation", job.Operation, "resource_guid", job.ResourceGUID)
	fn, ok := r.handlers[job.Operation]
	if !ok {
		logger.Error("no handler for job operation")
		return toJobError(fmt.Errorf("no handler for %s", job.Operation))
	}
	start := time.Now()
	if err := fn(ctx, job); err != nil {
		logger.Warn("job failed", "error", err)
		return toJobError(err)
	}
	logger.Info("job complete", "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// toJobError keeps API errors as they are and hides anything else behind
// CF-UnknownError, as responses do.
func toJobError(err error) *store.JobError {
	var apiErr *apierr.Error
	if !errors.As(err, &apiErr) {
		apiErr = apierr.Unknown()
	}
	return &store.JobError{Code: apiErr.Code, Title: apiErr.Title, Detail: apiErr.Detail}
}
