package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// quotaScene is an organization with its own quota and a space with a
// space quota, all limits unlimited until a test sets them, plus helpers
// that start and scale apps in the space.
type quotaScene struct {
	t                  *testing.T
	st                 *store.Store
	orgGUID, spaceGUID string
	orgQuotaGUID       string
	spaceQuotaGUID     string
}

func newQuotaScene(t *testing.T, st *store.Store) *quotaScene {
	t.Helper()
	s := &quotaScene{t: t, st: st, orgGUID: uuid.NewString(), spaceGUID: uuid.NewString(),
		orgQuotaGUID: uuid.NewString(), spaceQuotaGUID: uuid.NewString()}
	s.exec(`INSERT INTO organization_quotas (guid, name) VALUES ($1, $2)`, s.orgQuotaGUID, "org-quota-"+s.orgQuotaGUID)
	s.exec(`INSERT INTO organizations (guid, name, quota_guid) VALUES ($1, $2, $3)`, s.orgGUID, "org-"+s.orgGUID, s.orgQuotaGUID)
	s.exec(`INSERT INTO space_quotas (guid, name, organization_guid) VALUES ($1, 'space-quota', $2)`, s.spaceQuotaGUID, s.orgGUID)
	s.exec(`INSERT INTO spaces (guid, name, organization_guid, quota_guid) VALUES ($1, 'dev', $2, $3)`, s.spaceGUID, s.orgGUID, s.spaceQuotaGUID)
	return s
}

func (s *quotaScene) exec(query string, args ...any) {
	s.t.Helper()
	if _, err := s.st.DB().ExecContext(context.Background(), query, args...); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
}

// setLimit sets one limit column of the quota of scope.
func (s *quotaScene) setLimit(scope, column string, value int64) {
	s.t.Helper()
	if scope == store.QuotaScopeSpace {
		s.exec(`UPDATE space_quotas SET `+column+` = $2 WHERE guid = $1`, s.spaceQuotaGUID, value)
		return
	}
	s.exec(`UPDATE organization_quotas SET `+column+` = $2 WHERE guid = $1`, s.orgQuotaGUID, value)
}

// app creates an app in spaceGUID whose web process has the given scale,
// in state, and returns its guid, which is also its web process's guid.
func (s *quotaScene) app(spaceGUID, state string, instances int, memoryMB, logRate int64) string {
	s.t.Helper()
	app, err := store.CreateApp(context.Background(), s.st.DB(), store.App{GUID: uuid.NewString(), Name: "app-" + uuid.NewString(),
		SpaceGUID: spaceGUID, State: state, LifecycleType: store.LifecycleBuildpack, Stack: "ferry-test"})
	if err != nil {
		s.t.Fatal(err)
	}
	s.exec(`UPDATE processes SET instances = $2, memory_in_mb = $3, log_rate_limit_in_bytes_per_second = $4 WHERE guid = $1`,
		app.GUID, instances, memoryMB, logRate)
	return app.GUID
}

// change runs update, an SQL statement with the app guid as $1, in a
// transaction checked by CheckAppQuotas, and returns the check's error.
// The transaction commits only when the check passes.
func (s *quotaScene) change(appGUID, update string) error {
	s.t.Helper()
	ctx := context.Background()
	return s.st.InTx(ctx, func(tx *sql.Tx) error {
		before, err := store.ReadAppDemand(ctx, tx, appGUID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, update, appGUID); err != nil {
			return err
		}
		return store.CheckAppQuotas(ctx, tx, before)
	})
}

// demand returns the state and web process scale of the app as stored.
func (s *quotaScene) demand(appGUID string) store.ProcessDemand {
	s.t.Helper()
	d, err := store.ReadAppDemand(context.Background(), s.st.DB(), appGUID)
	if err != nil {
		s.t.Fatal(err)
	}
	return d.Processes[appGUID]
}

// violationsOf returns the violations of a *QuotaExceededError, and fails
// the test for any other non-nil error.
func violationsOf(t *testing.T, err error) []store.QuotaViolation {
	t.Helper()
	if err == nil {
		return nil
	}
	var quotaErr *store.QuotaExceededError
	if !errors.As(err, &quotaErr) {
		t.Fatalf("error = %v, want a *QuotaExceededError", err)
	}
	return quotaErr.Violations
}

const (
	scaleWebTo3 = `UPDATE processes SET instances = 3 WHERE guid = $1`
	startApp    = `UPDATE apps SET state = 'STARTED' WHERE guid = $1`
)

func TestCheckAppQuotasRules(t *testing.T) {
	st := pgtest.NewStore(t)
	cases := []struct {
		name   string
		column string
		limit  int64
		// state, memory and log rate of the app's web process, which has
		// one instance before update.
		state   string
		memory  int64
		logRate int64
		update  string
		want    string
	}{
		{"total memory over", "total_memory_in_mb", 2048, "STARTED", 1024, -1, scaleWebTo3, store.QuotaTotalMemory},
		{"total memory at limit", "total_memory_in_mb", 3072, "STARTED", 1024, -1, scaleWebTo3, ""},
		{"total memory on start", "total_memory_in_mb", 512, "STOPPED", 1024, -1, startApp, store.QuotaTotalMemory},
		{"instance memory over", "per_process_memory_in_mb", 1024, "STARTED", 1024, -1,
			`UPDATE processes SET memory_in_mb = 1025 WHERE guid = $1`, store.QuotaInstanceMemory},
		{"instance memory at limit", "per_process_memory_in_mb", 1024, "STARTED", 512, -1,
			`UPDATE processes SET memory_in_mb = 1024 WHERE guid = $1`, ""},
		{"instance memory on start", "per_process_memory_in_mb", 512, "STOPPED", 1024, -1, startApp, store.QuotaInstanceMemory},
		{"total instances over", "total_instances", 2, "STARTED", 64, -1, scaleWebTo3, store.QuotaTotalInstances},
		{"total instances at limit", "total_instances", 3, "STARTED", 64, -1, scaleWebTo3, ""},
		{"log rate over", "log_rate_limit_in_bytes_per_second", 1000, "STARTED", 64, 400, scaleWebTo3, store.QuotaLogRate},
		{"log rate at limit", "log_rate_limit_in_bytes_per_second", 1200, "STARTED", 64, 400, scaleWebTo3, ""},
		{"log rate raised", "log_rate_limit_in_bytes_per_second", 1000, "STARTED", 64, 400,
			`UPDATE processes SET log_rate_limit_in_bytes_per_second = 1001 WHERE guid = $1`, store.QuotaLogRate},
		{"unlimited log rate on start", "log_rate_limit_in_bytes_per_second", 1000, "STOPPED", 64, -1, startApp, store.QuotaUnlimitedLogRate},
		{"unlimited log rate on scale", "log_rate_limit_in_bytes_per_second", 1000, "STARTED", 64, 400,
			`UPDATE processes SET log_rate_limit_in_bytes_per_second = -1 WHERE guid = $1`, store.QuotaUnlimitedLogRate},
		{"stopped app scales freely", "total_memory_in_mb", 512, "STOPPED", 1024, -1, scaleWebTo3, ""},
	}
	for _, scope := range []string{store.QuotaScopeSpace, store.QuotaScopeOrganization} {
		for _, tt := range cases {
			t.Run(scope+" "+tt.name, func(t *testing.T) {
				s := newQuotaScene(t, st)
				app := s.app(s.spaceGUID, tt.state, 1, tt.memory, tt.logRate)
				s.setLimit(scope, tt.column, tt.limit)
				before := s.demand(app)

				got := violationsOf(t, s.change(app, tt.update))

				var want []store.QuotaViolation
				if tt.want != "" {
					name := "dev"
					if scope == store.QuotaScopeOrganization {
						name = "org-" + s.orgGUID
					}
					want = []store.QuotaViolation{{Scope: scope, Limit: tt.want, Name: name}}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("violations (-want +got):\n%s", diff)
				}
				if after := s.demand(app); tt.want != "" && after != before {
					t.Errorf("process after a rejected write = %+v, want it unchanged: %+v", after, before)
				}
			})
		}
	}
}

func TestCheckAppQuotasReportsEveryViolationInOrder(t *testing.T) {
	s := newQuotaScene(t, pgtest.NewStore(t))
	for _, scope := range []string{store.QuotaScopeSpace, store.QuotaScopeOrganization} {
		s.setLimit(scope, "total_memory_in_mb", 1024)
		s.setLimit(scope, "per_process_memory_in_mb", 1024)
		s.setLimit(scope, "total_instances", 1)
		s.setLimit(scope, "log_rate_limit_in_bytes_per_second", 1000)
	}
	app := s.app(s.spaceGUID, "STOPPED", 2, 2048, -1)

	got := violationsOf(t, s.change(app, startApp))

	org := "org-" + s.orgGUID
	want := []store.QuotaViolation{
		{Scope: "space", Limit: store.QuotaTotalMemory, Name: "dev"},
		{Scope: "organization", Limit: store.QuotaTotalMemory, Name: org},
		{Scope: "organization", Limit: store.QuotaInstanceMemory, Name: org},
		{Scope: "space", Limit: store.QuotaInstanceMemory, Name: "dev"},
		{Scope: "organization", Limit: store.QuotaTotalInstances, Name: org},
		{Scope: "space", Limit: store.QuotaTotalInstances, Name: "dev"},
		{Scope: "space", Limit: store.QuotaUnlimitedLogRate, Name: "dev"},
		{Scope: "organization", Limit: store.QuotaUnlimitedLogRate, Name: org},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
	if d := s.demand(app); d.Started {
		t.Errorf("app started despite the violations: %+v", d)
	}
}

func TestCheckAppQuotasCountsOnlyStartedApps(t *testing.T) {
	s := newQuotaScene(t, pgtest.NewStore(t))
	s.setLimit(store.QuotaScopeOrganization, "total_memory_in_mb", 2048)
	s.setLimit(store.QuotaScopeSpace, "total_instances", 2)
	big := s.app(s.spaceGUID, "STOPPED", 10, 1024, -1)
	small := s.app(s.spaceGUID, "STOPPED", 2, 1024, -1)

	if err := s.change(small, startApp); err != nil {
		t.Fatalf("starting an app that fits next to a stopped one: %v", err)
	}
	got := violationsOf(t, s.change(big, startApp))
	org := "org-" + s.orgGUID
	want := []store.QuotaViolation{
		{Scope: "organization", Limit: store.QuotaTotalMemory, Name: org},
		{Scope: "space", Limit: store.QuotaTotalInstances, Name: "dev"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations starting the big app (-want +got):\n%s", diff)
	}

	if err := s.change(small, `UPDATE apps SET state = 'STOPPED' WHERE guid = $1`); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if err := s.change(big, `UPDATE processes SET instances = 2 WHERE guid = $1`); err != nil {
		t.Fatalf("scaling the stopped big app: %v", err)
	}
	if err := s.change(big, startApp); err != nil {
		t.Errorf("starting the big app after the small one stopped freed its memory: %v", err)
	}
}

func TestCheckAppQuotasCountsOtherSpacesInOrganization(t *testing.T) {
	s := newQuotaScene(t, pgtest.NewStore(t))
	other := uuid.NewString()
	s.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, 'other', $2)`, other, s.orgGUID)
	s.app(other, "STARTED", 2, 1024, -1)
	s.setLimit(store.QuotaScopeOrganization, "total_memory_in_mb", 3072)
	s.setLimit(store.QuotaScopeSpace, "total_memory_in_mb", 2048)
	app := s.app(s.spaceGUID, "STOPPED", 2, 512, -1)

	if err := s.change(app, startApp); err != nil {
		t.Fatalf("start within both quotas: %v", err)
	}
	got := violationsOf(t, s.change(app, scaleWebTo3))
	want := []store.QuotaViolation{{Scope: "organization", Limit: store.QuotaTotalMemory, Name: "org-" + s.orgGUID}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations (-want +got):\n%s", diff)
	}
}

func TestCheckAppQuotasAllowsChangesThatRaiseNothing(t *testing.T) {
	s := newQuotaScene(t, pgtest.NewStore(t))
	app := s.app(s.spaceGUID, "STARTED", 4, 1024, 500)
	// The quotas were lowered below what the app already uses.
	for _, scope := range []string{store.QuotaScopeSpace, store.QuotaScopeOrganization} {
		s.setLimit(scope, "total_memory_in_mb", 1024)
		s.setLimit(scope, "per_process_memory_in_mb", 512)
		s.setLimit(scope, "total_instances", 1)
		s.setLimit(scope, "log_rate_limit_in_bytes_per_second", 100)
	}

	for _, tt := range []struct{ name, update string }{
		{"scale down", `UPDATE processes SET instances = 3, memory_in_mb = 768, log_rate_limit_in_bytes_per_second = 400 WHERE guid = $1`},
		{"restart", startApp},
		{"disk change", `UPDATE processes SET disk_in_mb = 4096 WHERE guid = $1`},
		{"stop", `UPDATE apps SET state = 'STOPPED' WHERE guid = $1`},
	} {
		if err := s.change(app, tt.update); err != nil {
			t.Errorf("%s over lowered quotas: %v", tt.name, err)
		}
	}
	if err := s.change(app, startApp); err == nil {
		t.Error("starting again over lowered quotas passed, want a violation")
	}
}

func TestCheckAppQuotasIgnoresProcessesWithoutInstances(t *testing.T) {
	s := newQuotaScene(t, pgtest.NewStore(t))
	app := s.app(s.spaceGUID, "STOPPED", 1, 256, 100)
	worker := uuid.NewString()
	s.exec(`INSERT INTO processes (guid, app_guid, type, instances, memory_in_mb, disk_in_mb, version)
		VALUES ($1, $2, 'worker', 0, 4096, 1024, 'v1')`, worker, app)
	s.setLimit(store.QuotaScopeOrganization, "per_process_memory_in_mb", 512)
	s.setLimit(store.QuotaScopeSpace, "log_rate_limit_in_bytes_per_second", 1000)

	if err := s.change(app, startApp); err != nil {
		t.Fatalf("start with an idle worker without limits: %v", err)
	}
	got := violationsOf(t, s.change(app, `UPDATE processes SET instances = 1 WHERE type = 'worker' AND app_guid = $1`))
	want := []store.QuotaViolation{
		{Scope: "organization", Limit: store.QuotaInstanceMemory, Name: "org-" + s.orgGUID},
		{Scope: "space", Limit: store.QuotaUnlimitedLogRate, Name: "dev"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("violations scaling the worker up (-want +got):\n%s", diff)
	}
}

func TestCheckAppQuotasMissingApp(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	err := st.InTx(ctx, func(tx *sql.Tx) error {
		return store.CheckAppQuotas(ctx, tx, store.AppDemand{AppGUID: "no-such-app"})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("error = %v, want ErrNotFound", err)
	}
}

// TestCheckAppQuotasSerialisesConcurrentScales holds one checked scale
// open while a second scale in another space of the same organization
// runs its check. The second check must wait for the first transaction
// and then count its change.
func TestCheckAppQuotasSerialisesConcurrentScales(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	s := newQuotaScene(t, st)
	other := uuid.NewString()
	s.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, 'other', $2)`, other, s.orgGUID)
	s.setLimit(store.QuotaScopeOrganization, "total_memory_in_mb", 3072)
	first := s.app(s.spaceGUID, "STARTED", 1, 1024, -1)
	second := s.app(other, "STARTED", 1, 1024, -1)
	const scaleTo2 = `UPDATE processes SET instances = 2 WHERE guid = $1`

	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	before, err := store.ReadAppDemand(ctx, tx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, scaleTo2, first); err != nil {
		t.Fatal(err)
	}
	if err := store.CheckAppQuotas(ctx, tx, before); err != nil {
		t.Fatalf("first scale: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- s.change(second, scaleTo2) }()
	waitForLockWait(t, st, done)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	got := violationsOf(t, <-done)
	want := []store.QuotaViolation{{Scope: "organization", Limit: store.QuotaTotalMemory, Name: "org-" + s.orgGUID}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("second scale violations (-want +got):\n%s", diff)
	}
	if n := s.demand(first).Instances; n != 2 {
		t.Errorf("first app instances = %d, want 2", n)
	}
	if n := s.demand(second).Instances; n != 1 {
		t.Errorf("second app instances = %d, want 1", n)
	}
}

// waitForLockWait polls until a session of the test database waits for a
// lock. It fails the test when done delivers first, because the second
// check then ran without waiting for the first transaction.
func waitForLockWait(t *testing.T, st *store.Store, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("second scale finished (error %v) while the first transaction held the organization", err)
		default:
		}
		var waiting int
		err := st.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("second scale never waited for the organization lock")
}

func TestCheckStagingQuotas(t *testing.T) {
	st := pgtest.NewStore(t)
	cases := []struct {
		name    string
		column  string
		limit   int64
		demand  store.StagingDemand
		wantLim string
	}{
		{"memory left", "total_memory_in_mb", 2048, store.StagingDemand{MemoryMB: 1024, LogRateLimit: -1}, ""},
		{"memory short", "total_memory_in_mb", 2048, store.StagingDemand{MemoryMB: 1025, LogRateLimit: -1}, store.QuotaStagingMemory},
		{"memory not checked", "total_memory_in_mb", 512, store.StagingDemand{MemoryMB: 0, LogRateLimit: -1}, ""},
		{"log rate left", "log_rate_limit_in_bytes_per_second", 1000, store.StagingDemand{MemoryMB: 64, LogRateLimit: 600}, ""},
		{"log rate short", "log_rate_limit_in_bytes_per_second", 1000, store.StagingDemand{MemoryMB: 64, LogRateLimit: 601}, store.QuotaStagingLogRate},
		{"log rate unlimited", "log_rate_limit_in_bytes_per_second", 1000, store.StagingDemand{MemoryMB: 64, LogRateLimit: -1}, ""},
	}
	for _, scope := range []string{store.QuotaScopeSpace, store.QuotaScopeOrganization} {
		for _, tt := range cases {
			t.Run(scope+" "+tt.name, func(t *testing.T) {
				ctx := context.Background()
				s := newQuotaScene(t, st)
				// A started app uses 1024 MB and 400 bytes per second. A
				// stopped one counts for nothing.
				s.app(s.spaceGUID, "STARTED", 1, 1024, 400)
				s.app(s.spaceGUID, "STOPPED", 8, 1024, 400)
				app := s.app(s.spaceGUID, "STOPPED", 1, 1024, -1)
				s.setLimit(scope, tt.column, tt.limit)

				err := st.InTx(ctx, func(tx *sql.Tx) error { return store.CheckStagingQuotas(ctx, tx, app, tt.demand) })

				var want []store.QuotaViolation
				if tt.wantLim != "" {
					name, requested := "dev", tt.demand.MemoryMB
					if scope == store.QuotaScopeOrganization {
						name = "org-" + s.orgGUID
					}
					if tt.wantLim == store.QuotaStagingLogRate {
						requested = tt.demand.LogRateLimit
					}
					want = []store.QuotaViolation{{Scope: scope, Limit: tt.wantLim, Name: name, Requested: requested}}
				}
				if diff := cmp.Diff(want, violationsOf(t, err)); diff != "" {
					t.Errorf("violations (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestUsageCountsStartedProcesses(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	s := newQuotaScene(t, st)
	other := uuid.NewString()
	s.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, 'other', $2)`, other, s.orgGUID)
	started := s.app(s.spaceGUID, "STARTED", 2, 512, -1)
	s.exec(`INSERT INTO processes (guid, app_guid, type, instances, memory_in_mb, disk_in_mb, version)
		VALUES ($1, $2, 'worker', 3, 256, 1024, 'v1')`, uuid.NewString(), started)
	s.app(s.spaceGUID, "STOPPED", 5, 1024, -1)
	s.app(other, "STARTED", 1, 128, -1)

	space, err := st.SpaceUsage(ctx, s.spaceGUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Usage{StartedInstances: 5, MemoryInMB: 1792}, space); diff != "" {
		t.Errorf("space usage (-want +got):\n%s", diff)
	}
	org, err := st.OrganizationUsage(ctx, s.orgGUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Usage{StartedInstances: 6, MemoryInMB: 1920}, org); diff != "" {
		t.Errorf("organization usage (-want +got):\n%s", diff)
	}
	empty, err := st.SpaceUsage(ctx, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if empty != (store.Usage{}) {
		t.Errorf("usage of a space without apps = %+v, want zero", empty)
	}
}
