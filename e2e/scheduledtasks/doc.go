// Package scheduledtasks is the end-to-end test of scheduled tasks. It runs
// `ferry serve` against the local environment, whose kube-controller-manager
// runs CronJobs, and stages a fixture app. It checks that scheduled runs
// happen, that Forbid skips an overlapping run, and that the history limits
// bound the Jobs kept. Its tests need the e2e build tag and take a few
// minutes: FERRY_E2E_NO_UP=1 go test -tags e2e ./e2e/scheduledtasks -count=1 -v
package scheduledtasks
