package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Scopes of a quota violation: the kind of row whose quota a write exceeds.
const (
	QuotaScopeSpace        = "space"
	QuotaScopeOrganization = "organization"
)

// Limits a write can exceed, as QuotaViolation.Limit names them.
const (
	// QuotaTotalMemory is the memory of every started process instance.
	QuotaTotalMemory = "total_memory"
	// QuotaInstanceMemory is the memory of one process instance.
	QuotaInstanceMemory = "instance_memory"
	// QuotaTotalInstances is the number of started process instances.
	QuotaTotalInstances = "total_instances"
	// QuotaLogRate is the log rate of every started process instance.
	QuotaLogRate = "log_rate"
	// QuotaUnlimitedLogRate is a started process without a log rate limit
	// under a quota that has one.
	QuotaUnlimitedLogRate = "unlimited_log_rate"
	// QuotaStagingMemory is the memory a build stages with, compared with
	// the memory the started processes leave.
	QuotaStagingMemory = "staging_memory"
	// QuotaStagingLogRate is the log rate a build stages with, compared with
	// the log rate the started processes leave.
	QuotaStagingLogRate = "staging_log_rate"
)

// QuotaViolation is one limit that a write exceeds.
type QuotaViolation struct {
	// Scope is QuotaScopeSpace or QuotaScopeOrganization.
	Scope string
	// Limit is one of the Quota* limit names, such as QuotaTotalMemory.
	Limit string
	// Name is the name of the space or organization.
	Name string
	// Requested is the staging memory in MB or the staging log rate in
	// bytes per second of a staging violation, and 0 otherwise.
	Requested int64
}

// QuotaExceededError reports the limits a write exceeds, in the order
// Cloud Controller validates them. The caller rolls its transaction back.
type QuotaExceededError struct {
	Violations []QuotaViolation
}

func (e *QuotaExceededError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.Scope + " " + v.Limit
	}
	return "quota exceeded: " + strings.Join(parts, ", ")
}

// ProcessDemand is the part of one process that quotas count.
type ProcessDemand struct {
	// Started reports whether the process's app is STARTED. Only started
	// processes count.
	Started      bool
	Instances    int
	MemoryMB     int64
	LogRateLimit int64
}

// active reports whether the process runs instances, the only case in
// which it counts against any limit.
func (d ProcessDemand) active() bool { return d.Started && d.Instances > 0 }

// AppDemand is the quota demand of each process of one app, keyed by
// process guid.
type AppDemand struct {
	AppGUID   string
	Processes map[string]ProcessDemand
}

// ReadAppDemand returns, through q, what the processes of the app appGUID
// count against quotas. An app that does not exist has no processes. Read
// it in a write's transaction before the write, and pass it to
// CheckAppQuotas after the write.
func ReadAppDemand(ctx context.Context, q querier, appGUID string) (AppDemand, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT p.guid, a.state = 'STARTED', p.instances, p.memory_in_mb, p.log_rate_limit_in_bytes_per_second
		FROM processes p JOIN apps a ON a.guid = p.app_guid WHERE p.app_guid = $1`, appGUID)
	if err != nil {
		return AppDemand{}, fmt.Errorf("quota demand of app %s: %w", appGUID, mapError(err))
	}
	defer rows.Close()

	demand := AppDemand{AppGUID: appGUID, Processes: map[string]ProcessDemand{}}
	for rows.Next() {
		var guid string
		var d ProcessDemand
		if err := rows.Scan(&guid, &d.Started, &d.Instances, &d.MemoryMB, &d.LogRateLimit); err != nil {
			return AppDemand{}, fmt.Errorf("quota demand of app %s: %w", appGUID, mapError(err))
		}
		demand.Processes[guid] = d
	}
	if err := rows.Err(); err != nil {
		return AppDemand{}, fmt.Errorf("quota demand of app %s: %w", appGUID, mapError(err))
	}
	return demand, nil
}

// quotaScope is the space and organization of an app with the limits of
// their quotas. A space without a quota has all limits nil.
type quotaScope struct {
	spaceGUID, spaceName string
	orgGUID, orgName     string
	space, org           QuotaLimits
}

// lockQuotaScope locks, through tx, the organization of the app appGUID
// until tx ends and returns the app's quota scope. The lock is on the
// organization row, so it serialises every quota-checked write in the
// organization and in each of its spaces: a check that runs after it
// counts every write committed before it. It returns ErrNotFound when the
// app does not exist.
func lockQuotaScope(ctx context.Context, tx *sql.Tx, appGUID string) (quotaScope, error) {
	var sc quotaScope
	err := tx.QueryRowContext(ctx, `
		SELECT o.guid FROM organizations o
		JOIN spaces s ON s.organization_guid = o.guid JOIN apps a ON a.space_guid = s.guid
		WHERE a.guid = $1 FOR NO KEY UPDATE OF o`, appGUID).Scan(&sc.orgGUID)
	if err != nil {
		return quotaScope{}, fmt.Errorf("lock quotas of app %s: %w", appGUID, mapError(err))
	}

	// A statement after the lock reads every write committed before the
	// lock was granted, because each statement of a READ COMMITTED
	// transaction takes a new snapshot.
	dest := []any{&sc.spaceGUID, &sc.spaceName, &sc.orgName}
	dest = append(dest, scopeLimitsDest(&sc.org)...)
	dest = append(dest, scopeLimitsDest(&sc.space)...)
	err = tx.QueryRowContext(ctx, `
		SELECT s.guid, s.name, o.name,
			oq.total_memory_in_mb, oq.per_process_memory_in_mb, oq.total_instances, oq.log_rate_limit_in_bytes_per_second,
			sq.total_memory_in_mb, sq.per_process_memory_in_mb, sq.total_instances, sq.log_rate_limit_in_bytes_per_second
		FROM apps a JOIN spaces s ON s.guid = a.space_guid JOIN organizations o ON o.guid = s.organization_guid
		JOIN organization_quotas oq ON oq.guid = o.quota_guid LEFT JOIN space_quotas sq ON sq.guid = s.quota_guid
		WHERE a.guid = $1`, appGUID).Scan(dest...)
	if err != nil {
		return quotaScope{}, fmt.Errorf("read quotas of app %s: %w", appGUID, mapError(err))
	}
	return sc, nil
}

// scopeLimitsDest returns the scan destinations of the four app limits
// lockQuotaScope reads for one quota.
func scopeLimitsDest(l *QuotaLimits) []any {
	return []any{&l.TotalMemoryInMB, &l.PerProcessMemoryInMB, &l.TotalInstances, &l.LogRateLimitInBytesPerSecond}
}

// startedUsage is the sum over the started process instances of a space
// or organization. logRate counts only processes with a log rate limit.
type startedUsage struct {
	instances int64
	memoryMB  int64
	logRate   int64
}

// usageOfStarted sums, through q, the started process instances of the
// apps that match condition, a condition on apps a and spaces s with one
// placeholder, $1.
func usageOfStarted(ctx context.Context, q querier, condition string, arg any) (startedUsage, error) {
	var u startedUsage
	err := q.QueryRowContext(ctx, `
		SELECT COALESCE(SUM(p.instances), 0), COALESCE(SUM(p.memory_in_mb * p.instances), 0),
			COALESCE(SUM(p.log_rate_limit_in_bytes_per_second * p.instances)
				FILTER (WHERE p.log_rate_limit_in_bytes_per_second <> -1), 0)
		FROM processes p JOIN apps a ON a.guid = p.app_guid JOIN spaces s ON s.guid = a.space_guid
		WHERE a.state = 'STARTED' AND `+condition, arg).Scan(&u.instances, &u.memoryMB, &u.logRate)
	if err != nil {
		return startedUsage{}, mapError(err)
	}
	return u, nil
}

// processUsage returns the started usage of the space or organization, as
// Usage reports it: tasks, routes, services and domains are not counted
// yet.
func processUsage(ctx context.Context, q querier, condition string, arg any) (Usage, error) {
	u, err := usageOfStarted(ctx, q, condition, arg)
	if err != nil {
		return Usage{}, err
	}
	return Usage{StartedInstances: int(u.instances), MemoryInMB: int(u.memoryMB)}, nil
}

// appGrowth is the set of processes of one app whose quota demand a
// write raised.
type appGrowth struct {
	// memory, instances and logRate are the processes whose demand on
	// that limit grew. Each is active after the write.
	memory, instances, logRate []ProcessDemand
}

func (g appGrowth) none() bool {
	return len(g.memory) == 0 && len(g.instances) == 0 && len(g.logRate) == 0
}

// growthOf compares each process of after with the same process in
// before. A process missing from before asked for nothing. A process
// grows on a limit when it becomes active, or when it stays active and
// raises what the limit counts. Other changes never fail a check, so an
// organization over a lowered quota can still scale down, restart and
// change settings. Cloud Controller instead checks the final total after
// any scale of a started process, which rejects a scale down that leaves
// the total over the limit.
func growthOf(before, after AppDemand) appGrowth {
	var g appGrowth
	for guid, now := range after.Processes {
		if !now.active() {
			continue
		}
		was, existed := before.Processes[guid]
		started := !existed || !was.active()
		moreInstances := started || now.Instances > was.Instances
		if moreInstances || now.MemoryMB > was.MemoryMB {
			g.memory = append(g.memory, now)
		}
		if moreInstances {
			g.instances = append(g.instances, now)
		}
		if moreInstances || logRateAbove(now.LogRateLimit, was.LogRateLimit) {
			g.logRate = append(g.logRate, now)
		}
	}
	return g
}

// logRateAbove reports whether log rate limit a allows more than b, where
// UnlimitedLogRate allows the most.
func logRateAbove(a, b int64) bool {
	if b == UnlimitedLogRate {
		return false
	}
	return a == UnlimitedLogRate || a > b
}

// limitOf returns the limit and whether it is set. Nil and negative
// limits are unlimited.
func limitOf(limit *int64) (int64, bool) {
	if limit == nil || *limit < 0 {
		return 0, false
	}
	return *limit, true
}

// CheckAppQuotas checks, in tx after a write that may start, scale or add
// processes of the app before.AppGUID, the limits of the space and
// organization quotas on their started processes. before is what
// ReadAppDemand returned in tx before the write. It locks the
// organization until tx ends, so concurrent writes in one organization
// are checked one after the other and cannot both pass. A write that
// raises nothing is not checked.
//
// The limits are Cloud Controller's for processes: total memory, memory
// per instance, started instances, and log rate, where a quota with a log
// rate limit also rejects a started process without one. A process with
// no instances counts against none of them. A violation is a
// *QuotaExceededError listing every limit exceeded, space and
// organization, and the caller rolls back.
//
// NOTE: Cloud Controller also counts running and pending tasks against
// total memory and log rate. Ferry has no tasks yet, so only processes
// count.
func CheckAppQuotas(ctx context.Context, tx *sql.Tx, before AppDemand) error {
	sc, err := lockQuotaScope(ctx, tx, before.AppGUID)
	if err != nil {
		return err
	}
	after, err := ReadAppDemand(ctx, tx, before.AppGUID)
	if err != nil {
		return err
	}
	growth := growthOf(before, after)
	if growth.none() {
		return nil
	}

	spaceUsage, err := usageOfStarted(ctx, tx, "a.space_guid = $1", sc.spaceGUID)
	if err != nil {
		return fmt.Errorf("check quotas of space %s: %w", sc.spaceGUID, err)
	}
	orgUsage, err := usageOfStarted(ctx, tx, "s.organization_guid = $1", sc.orgGUID)
	if err != nil {
		return fmt.Errorf("check quotas of organization %s: %w", sc.orgGUID, err)
	}

	space := scopeCheck{scope: QuotaScopeSpace, name: sc.spaceName, limits: sc.space, usage: spaceUsage}
	org := scopeCheck{scope: QuotaScopeOrganization, name: sc.orgName, limits: sc.org, usage: orgUsage}
	var violations []QuotaViolation
	for _, step := range []struct {
		check  scopeCheck
		verify func(scopeCheck, appGrowth) []QuotaViolation
	}{
		{space, scopeCheck.totalMemory},
		{org, scopeCheck.totalMemory},
		{org, scopeCheck.instanceMemory},
		{space, scopeCheck.instanceMemory},
		{org, scopeCheck.totalInstances},
		{space, scopeCheck.totalInstances},
		{space, scopeCheck.logRate},
		{org, scopeCheck.logRate},
	} {
		violations = append(violations, step.verify(step.check, growth)...)
	}
	if len(violations) > 0 {
		return &QuotaExceededError{Violations: violations}
	}
	return nil
}

// scopeCheck is one quota with the usage of its space or organization
// after the write.
type scopeCheck struct {
	scope, name string
	limits      QuotaLimits
	usage       startedUsage
}

func (c scopeCheck) violation(limit string) QuotaViolation {
	return QuotaViolation{Scope: c.scope, Limit: limit, Name: c.name}
}

func (c scopeCheck) totalMemory(g appGrowth) []QuotaViolation {
	limit, set := limitOf(c.limits.TotalMemoryInMB)
	if !set || len(g.memory) == 0 || c.usage.memoryMB <= limit {
		return nil
	}
	return []QuotaViolation{c.violation(QuotaTotalMemory)}
}

func (c scopeCheck) instanceMemory(g appGrowth) []QuotaViolation {
	limit, set := limitOf(c.limits.PerProcessMemoryInMB)
	if !set {
		return nil
	}
	for _, p := range g.memory {
		if p.MemoryMB > limit {
			return []QuotaViolation{c.violation(QuotaInstanceMemory)}
		}
	}
	return nil
}

func (c scopeCheck) totalInstances(g appGrowth) []QuotaViolation {
	limit, set := limitOf(c.limits.TotalInstances)
	if !set || len(g.instances) == 0 || c.usage.instances <= limit {
		return nil
	}
	return []QuotaViolation{c.violation(QuotaTotalInstances)}
}

// logRate rejects a grown process without a log rate limit, and a total
// log rate over the limit when a process with a limit grew. The total
// leaves out processes without a limit, which the first rule rejects.
func (c scopeCheck) logRate(g appGrowth) []QuotaViolation {
	limit, set := limitOf(c.limits.LogRateLimitInBytesPerSecond)
	if !set {
		return nil
	}
	var unlimited, limited bool
	for _, p := range g.logRate {
		if p.LogRateLimit == UnlimitedLogRate {
			unlimited = true
		} else {
			limited = true
		}
	}
	var violations []QuotaViolation
	if unlimited {
		violations = append(violations, c.violation(QuotaUnlimitedLogRate))
	}
	if limited && c.usage.logRate > limit {
		violations = append(violations, c.violation(QuotaLogRate))
	}
	return violations
}

// StagingDemand is the memory and log rate a build stages with.
type StagingDemand struct {
	// MemoryMB is the staging memory to check, or 0 to check none.
	MemoryMB int64
	// LogRateLimit is the staging log rate limit in bytes per second; -1
	// is unlimited.
	LogRateLimit int64
}

// CheckStagingQuotas checks, in tx, that the space and organization of
// the app appGUID have the memory and log rate of demand left over their
// started processes, as Cloud Controller checks a new build. It locks the
// organization until tx ends, like CheckAppQuotas. It returns a
// *QuotaExceededError with the first violation, checking space memory,
// organization memory, space log rate and organization log rate in that
// order, and ErrNotFound when the app does not exist. Staging builds do
// not count as usage, so one build never makes another one fail.
//
// A demand of -1 for the log rate, unlimited, passes unless the space or
// organization is already more than 1 byte per second over its limit,
// because Cloud Controller compares the requested number with what is
// left.
func CheckStagingQuotas(ctx context.Context, tx *sql.Tx, appGUID string, demand StagingDemand) error {
	sc, err := lockQuotaScope(ctx, tx, appGUID)
	if err != nil {
		return err
	}
	spaceUsage, err := usageOfStarted(ctx, tx, "a.space_guid = $1", sc.spaceGUID)
	if err != nil {
		return fmt.Errorf("check staging quotas of space %s: %w", sc.spaceGUID, err)
	}
	orgUsage, err := usageOfStarted(ctx, tx, "s.organization_guid = $1", sc.orgGUID)
	if err != nil {
		return fmt.Errorf("check staging quotas of organization %s: %w", sc.orgGUID, err)
	}

	for _, c := range []struct {
		scope, name, limit string
		max                *int64
		used, requested    int64
	}{
		{QuotaScopeSpace, sc.spaceName, QuotaStagingMemory, sc.space.TotalMemoryInMB, spaceUsage.memoryMB, demand.MemoryMB},
		{QuotaScopeOrganization, sc.orgName, QuotaStagingMemory, sc.org.TotalMemoryInMB, orgUsage.memoryMB, demand.MemoryMB},
		{QuotaScopeSpace, sc.spaceName, QuotaStagingLogRate, sc.space.LogRateLimitInBytesPerSecond, spaceUsage.logRate, demand.LogRateLimit},
		{QuotaScopeOrganization, sc.orgName, QuotaStagingLogRate, sc.org.LogRateLimitInBytesPerSecond, orgUsage.logRate, demand.LogRateLimit},
	} {
		if c.limit == QuotaStagingMemory && demand.MemoryMB == 0 {
			continue
		}
		limit, set := limitOf(c.max)
		if set && limit-c.used < c.requested {
			return &QuotaExceededError{Violations: []QuotaViolation{
				{Scope: c.scope, Limit: c.limit, Name: c.name, Requested: c.requested},
			}}
		}
	}
	return nil
}
