package manifest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ScheduledTask is one entry of an application's scheduled-tasks key, a
// Ferry extension. Nil fields are not in the manifest: a new scheduled
// task takes the API's defaults for them, and an existing one keeps its
// values.
type ScheduledTask struct {
	Name     string
	Command  string
	Schedule string
	// TimeZone is an IANA name, and "" clears it.
	TimeZone               *string
	ConcurrencyPolicy      *string
	SuccessfulHistoryLimit *int
	FailedHistoryLimit     *int
	// DeadlineSeconds is the run time limit of one run, and 0 removes it.
	DeadlineSeconds *int64
	// StartingDeadlineSeconds is how late a run may start before it is
	// skipped, and 0 removes it.
	StartingDeadlineSeconds *int64
	Suspended               *bool
	MemoryMB                *int64
	DiskMB                  *int64
}

// MinStartingDeadlineSeconds is the smallest starting deadline accepted.
// The Kubernetes CronJob documentation warns that a deadline under 10
// seconds may keep a CronJob from ever starting a Job.
const MinStartingDeadlineSeconds = 10

// ConcurrencyPolicies are the values of a scheduled task's concurrency
// policy, those of a Kubernetes CronJob's spec.concurrencyPolicy.
var ConcurrencyPolicies = []string{"Allow", "Forbid", "Replace"}

// ScheduleForm describes the schedules ScheduleProblem accepts, for
// messages.
const ScheduleForm = "five fields 'minute hour day-of-month month day-of-week' such as '*/15 * * * *', or a descriptor such as '@hourly' or '@daily'"

// cronParser accepts what Kubernetes accepts in a CronJob's schedule: the
// standard five fields and the @ descriptors, parsed by the same library.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ScheduleProblem returns why schedule is not a valid cron schedule, or ""
// when it is. A time zone prefix is rejected, because the time zone has a
// field of its own and Kubernetes does not support the prefix in a
// CronJob's schedule.
func ScheduleProblem(schedule string) string {
	trimmed := strings.TrimSpace(schedule)
	if trimmed == "" {
		return "must not be empty; use " + ScheduleForm
	}
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return "must not set a time zone; set time_zone instead"
	}
	if _, err := cronParser.Parse(trimmed); err != nil {
		return fmt.Sprintf("'%s' is not a valid cron expression (%v); use %s", schedule, err, ScheduleForm)
	}
	return ""
}

// TimeZoneProblem returns the reason name is not an IANA time zone in
// this machine's time zone database, or "" when it is one. "Local" is rejected because it would mean the
// time zone of whichever machine runs the CronJob controller. The message
// starts with the quoted name, so callers prefix the field's name.
func TimeZoneProblem(name string) string {
	const fix = "; use an IANA name such as 'Europe/Berlin' or 'UTC'"
	if name == "Local" {
		return "'Local' is invalid: unknown time zone" + fix
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Sprintf("'%s' is invalid: unknown time zone%s", name, fix)
	}
	return ""
}

// ConcurrencyPolicyProblem returns why policy is not a concurrency policy,
// or "" when it is.
func ConcurrencyPolicyProblem(policy string) string {
	if slices.Contains(ConcurrencyPolicies, policy) {
		return ""
	}
	return fmt.Sprintf("'%s' is invalid: use one of %s", policy, strings.Join(ConcurrencyPolicies, ", "))
}

// parseScheduledTasks reads the scheduled_tasks key of an application.
func parseScheduledTasks(raw any, errs *problems) []ScheduledTask {
	list, isList := raw.([]any)
	if !isList {
		errs.add("Scheduled-tasks must be a list of scheduled tasks")
		return nil
	}
	tasks := []ScheduledTask{}
	seen := map[string]bool{}
	for i, entry := range list {
		m, isMap := entry.(map[string]any)
		if !isMap {
			errs.add("Scheduled task %d must be an object of scheduled task keys", i+1)
			continue
		}
		task := parseScheduledTask(normalizeKeys(m), i+1, errs)
		if task.Name != "" && seen[task.Name] {
			errs.add("Scheduled task '%s' is listed more than once", task.Name)
		}
		seen[task.Name] = true
		tasks = append(tasks, task)
	}
	return tasks
}

// scheduledTaskKeys are the keys of a scheduled-tasks entry, with dashes
// turned into underscores.
var scheduledTaskKeys = []string{"name", "command", "schedule", "time_zone", "concurrency_policy",
	"successful_history_limit", "failed_history_limit", "deadline_seconds", "starting_deadline_seconds", "suspended",
	"memory", "disk_quota"}

// parseScheduledTask reads one entry. Messages name the entry by its
// position when it has no valid name.
func parseScheduledTask(h map[string]any, position int, errs *problems) ScheduledTask {
	var task ScheduledTask
	label := fmt.Sprintf("Scheduled task %d", position)
	if name, isString := h["name"].(string); isString && strings.TrimSpace(name) != "" {
		task.Name = name
		label = fmt.Sprintf("Scheduled task '%s'", name)
	} else {
		errs.add("%s: name must be a non-empty string", label)
	}
	for _, key := range sortedKeys(h) {
		if !slices.Contains(scheduledTaskKeys, key) {
			errs.add("%s: unknown key '%s'; valid keys are %s", label, key, strings.Join(scheduledTaskKeys, ", "))
		}
	}

	if command, isString := h["command"].(string); isString && strings.TrimSpace(command) != "" {
		task.Command = command
		checkLength(label+": command", command, errs)
	} else {
		errs.add("%s: command must be a non-empty string", label)
	}
	if schedule, isString := h["schedule"].(string); !isString {
		errs.add("%s: schedule must be a string; use %s", label, ScheduleForm)
	} else if problem := ScheduleProblem(schedule); problem != "" {
		errs.add("%s: schedule %s", label, problem)
	} else {
		task.Schedule = strings.TrimSpace(schedule)
	}

	if raw, found := h["time_zone"]; found {
		switch tz := raw.(type) {
		case nil:
			task.TimeZone = ptrTo("")
		case string:
			if problem := TimeZoneProblem(tz); tz != "" && problem != "" {
				errs.add("%s: time-zone %s", label, problem)
			} else {
				task.TimeZone = &tz
			}
		default:
			errs.add("%s: time-zone must be a string", label)
		}
	}
	if raw, found := h["concurrency_policy"]; found {
		if policy, isString := raw.(string); !isString {
			errs.add("%s: concurrency-policy must be one of %s", label, strings.Join(ConcurrencyPolicies, ", "))
		} else if problem := ConcurrencyPolicyProblem(policy); problem != "" {
			errs.add("%s: concurrency-policy %s", label, problem)
		} else {
			task.ConcurrencyPolicy = &policy
		}
	}
	task.SuccessfulHistoryLimit = scheduledTaskInt(h, "successful_history_limit", label+": successful-history-limit", 0, errs)
	task.FailedHistoryLimit = scheduledTaskInt(h, "failed_history_limit", label+": failed-history-limit", 0, errs)
	if deadline := scheduledTaskInt(h, "deadline_seconds", label+": deadline-seconds", 0, errs); deadline != nil {
		task.DeadlineSeconds = ptrTo(int64(*deadline))
	}
	if deadline := scheduledTaskInt(h, "starting_deadline_seconds", label+": starting-deadline-seconds", 0, errs); deadline != nil {
		if *deadline != 0 && *deadline < MinStartingDeadlineSeconds {
			errs.add("%s: starting-deadline-seconds must be 0 or at least %d", label, MinStartingDeadlineSeconds)
		} else {
			task.StartingDeadlineSeconds = ptrTo(int64(*deadline))
		}
	}
	if raw, found := h["suspended"]; found {
		if suspended, isBool := raw.(bool); isBool {
			task.Suspended = &suspended
		} else {
			errs.add("%s: suspended must be true or false", label)
		}
	}
	task.MemoryMB = scheduledTaskMegabytes(h, "memory", label+": memory", errs)
	task.DiskMB = scheduledTaskMegabytes(h, "disk_quota", label+": disk-quota", errs)
	return task
}

// scheduledTaskInt reads a whole number of at least min, or returns nil
// when the key is absent.
func scheduledTaskInt(h map[string]any, key, label string, min int, errs *problems) *int {
	raw, found := h[key]
	if !found {
		return nil
	}
	var n float64
	switch v := raw.(type) {
	case int:
		n = float64(v)
	case int64:
		n = float64(v)
	case float64:
		n = v
	default:
		errs.add("%s must be a whole number", label)
		return nil
	}
	if n != math.Trunc(n) || n > math.MaxInt32 {
		errs.add("%s must be a whole number of at most %d", label, math.MaxInt32)
		return nil
	}
	if n < float64(min) {
		errs.add("%s must be greater than or equal to %d", label, min)
		return nil
	}
	value := int(n)
	return &value
}

// scheduledTaskMegabytes reads a byte quantity such as "256M" as whole
// mebibytes, or returns nil when the key is absent.
func scheduledTaskMegabytes(h map[string]any, key, label string, errs *problems) *int64 {
	raw, found := h[key]
	if !found {
		return nil
	}
	text, isString := raw.(string)
	if !isString {
		errs.add("%s must be a quantity with a unit, such as 256M or 1G", label)
		return nil
	}
	bytes, err := ParseBytes(text)
	if err != nil {
		errs.add("%s %v", label, err)
		return nil
	}
	mb := bytes / megabyte
	if mb < 1 {
		errs.add("%s must be at least 1M", label)
		return nil
	}
	return &mb
}

func ptrTo[T any](v T) *T { return &v }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}
