package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseScheduledTasks(t *testing.T) {
	m := mustParse(t, `applications:
- name: reports
  scheduled-tasks:
  - name: nightly
    command: bin/report --all
    schedule: "0 2 * * *"
    time-zone: Europe/Berlin
    concurrency-policy: Forbid
    successful-history-limit: 5
    failed_history_limit: 0
    deadline-seconds: 600
    starting-deadline-seconds: 30
    suspended: true
    memory: 256M
    disk-quota: 1G
  - name: hourly
    command: bin/sync
    schedule: "@hourly"
`)
	want := []ScheduledTask{
		{
			Name: "nightly", Command: "bin/report --all", Schedule: "0 2 * * *", TimeZone: ptr("Europe/Berlin"),
			ConcurrencyPolicy: ptr("Forbid"), SuccessfulHistoryLimit: ptr(5), FailedHistoryLimit: ptr(0),
			DeadlineSeconds: ptr(int64(600)), StartingDeadlineSeconds: ptr(int64(30)), Suspended: ptr(true), MemoryMB: ptr(int64(256)), DiskMB: ptr(int64(1024)),
		},
		{Name: "hourly", Command: "bin/sync", Schedule: "@hourly"},
	}
	if diff := cmp.Diff(want, m.Applications[0].ScheduledTasks); diff != "" {
		t.Errorf("scheduled tasks (-want +got):\n%s", diff)
	}
}

func TestParseScheduledTasksInvalid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry string
		want  string
	}{
		{"four fields", "{name: a, command: x, schedule: '* * * *'}", "schedule '* * * *' is not a valid cron expression"},
		{"minute out of range", "{name: a, command: x, schedule: '61 * * * *'}", "is not a valid cron expression"},
		{"time zone prefix", "{name: a, command: x, schedule: 'CRON_TZ=UTC 0 * * * *'}", "set time_zone instead"},
		{"unknown time zone", "{name: a, command: x, schedule: '@daily', time-zone: Mars/Olympus}", "time-zone 'Mars/Olympus' is invalid: unknown time zone"},
		{"local time zone", "{name: a, command: x, schedule: '@daily', time-zone: Local}", "time-zone 'Local' is invalid: unknown time zone"},
		{"policy", "{name: a, command: x, schedule: '@daily', concurrency-policy: Never}", "concurrency-policy 'Never' is invalid"},
		{"negative history", "{name: a, command: x, schedule: '@daily', failed-history-limit: -1}", "failed-history-limit must be greater than or equal to 0"},
		{"fractional deadline", "{name: a, command: x, schedule: '@daily', deadline-seconds: 1.5}", "deadline-seconds must be a whole number"},
		{"short starting deadline", "{name: a, command: x, schedule: '@daily', starting-deadline-seconds: 5}", "starting-deadline-seconds must be 0 or at least 10"},
		{"memory without unit", "{name: a, command: x, schedule: '@daily', memory: '256'}", "memory must use a supported unit"},
		{"missing command", "{name: a, schedule: '@daily'}", "command must be a non-empty string"},
		{"missing name", "{command: x, schedule: '@daily'}", "Scheduled task 1: name must be a non-empty string"},
		{"unknown key", "{name: a, command: x, schedule: '@daily', cron: '* * * * *'}", "unknown key 'cron'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("applications:\n- name: reports\n  scheduled-tasks:\n  - " + tc.entry + "\n"))
			var merr *Error
			if !errors.As(err, &merr) {
				t.Fatalf("Parse = %v, want a manifest error", err)
			}
			if !strings.Contains(merr.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", merr.Error(), tc.want)
			}
		})
	}
}

func TestParseScheduledTasksDuplicateName(t *testing.T) {
	_, err := Parse([]byte(`applications:
- name: reports
  scheduled-tasks:
  - {name: a, command: x, schedule: '@daily'}
  - {name: a, command: y, schedule: '@hourly'}
`))
	if err == nil || !strings.Contains(err.Error(), "Scheduled task 'a' is listed more than once") {
		t.Errorf("Parse = %v, want a duplicate name error", err)
	}
}

func TestScheduleProblemAcceptsKubernetesForms(t *testing.T) {
	for _, schedule := range []string{"* * * * *", "*/5 0-6 1,15 JAN-MAR MON-FRI", "@daily", "@every 1h", "0 0 ? * SUN"} {
		if problem := ScheduleProblem(schedule); problem != "" {
			t.Errorf("ScheduleProblem(%q) = %q, want none", schedule, problem)
		}
	}
}
