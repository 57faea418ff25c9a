package envtest

import (
	"context"
	"testing"
	"time"
)

// PollInterval is how often WaitFor checks its condition.
const PollInterval = 500 * time.Millisecond

// WaitFor calls check every PollInterval until it reports done, and fails
// the test when timeout passes first. The failure names what was awaited
// and the detail from the last check, such as a pod's waiting reason. The
// timeout is a deadline for waiting only, never an assertion about speed,
// so callers should choose it generously.
func WaitFor(t testing.TB, timeout time.Duration, what string, check func(ctx context.Context) (done bool, detail string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	var detail string
	for {
		var done bool
		done, detail = check(ctx)
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, detail)
		case <-ticker.C:
		}
	}
}
