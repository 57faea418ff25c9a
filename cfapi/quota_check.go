package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// checkAppQuotas runs store.CheckAppQuotas in tx and turns a quota
// violation into Cloud Controller's 422. before is what
// store.ReadAppDemand returned in tx before the write.
func checkAppQuotas(ctx context.Context, tx *sql.Tx, before store.AppDemand) error {
	return quotaAPIError(store.CheckAppQuotas(ctx, tx, before))
}

// checkStagingQuotas runs store.CheckStagingQuotas in tx for the new build
// b and turns a quota violation into Cloud Controller's 422. Cloud
// Controller does not check a staging memory that it raised to the
// configured minimum, so a build staging with the minimum memory is never
// rejected for memory.
func (a *API) checkStagingQuotas(ctx context.Context, tx *sql.Tx, b store.Build) error {
	demand := store.StagingDemand{MemoryMB: b.StagingMemoryMB, LogRateLimit: b.StagingLogRateLimit}
	if b.StagingMemoryMB <= positiveOr(a.staging.MemoryMB, fallbackStagingMemoryMB) {
		demand.MemoryMB = 0
	}
	return quotaAPIError(store.CheckStagingQuotas(ctx, tx, b.AppGUID, demand))
}

// quotaAPIError returns a *store.QuotaExceededError as a 422 whose detail
// joins Cloud Controller's message for each violation with ", ", as Cloud
// Controller joins its validation errors. Other errors are returned as
// they are.
func quotaAPIError(err error) error {
	var quotaErr *store.QuotaExceededError
	if !errors.As(err, &quotaErr) {
		return err
	}
	messages := make([]string, len(quotaErr.Violations))
	for i, v := range quotaErr.Violations {
		messages[i] = quotaViolationMessage(v)
	}
	return apierr.UnprocessableEntity(strings.Join(messages, ", "))
}

// quotaViolationMessage returns Cloud Controller's message for v. The
// process messages are its validation errors: the field, then the error
// name. The cf CLI shows them as they are, and scripts match them.
func quotaViolationMessage(v store.QuotaViolation) string {
	space := v.Scope == store.QuotaScopeSpace
	switch v.Limit {
	case store.QuotaTotalMemory:
		return pick(space, "memory space_quota_exceeded", "memory quota_exceeded")
	case store.QuotaInstanceMemory:
		return pick(space, "memory space_instance_memory_limit_exceeded", "memory instance_memory_limit_exceeded")
	case store.QuotaTotalInstances:
		return pick(space, "app_instance_limit space_app_instance_limit_exceeded", "app_instance_limit app_instance_limit_exceeded")
	case store.QuotaLogRate:
		return "log_rate_limit exceeds " + v.Scope + " log rate quota"
	case store.QuotaUnlimitedLogRate:
		return "log_rate_limit cannot be unlimited in " + v.Scope + " '" + v.Name + "'."
	case store.QuotaStagingMemory:
		return fmt.Sprintf("%s's memory limit exceeded: staging requires %dM memory", v.Scope, v.Requested)
	case store.QuotaStagingLogRate:
		return fmt.Sprintf("%s's log rate limit exceeded: staging requires %d bytes per second", v.Scope, v.Requested)
	}
	return v.Scope + " quota exceeded: " + v.Limit
}

// pick returns ifTrue when cond holds and ifFalse otherwise.
func pick(cond bool, ifTrue, ifFalse string) string {
	if cond {
		return ifTrue
	}
	return ifFalse
}
