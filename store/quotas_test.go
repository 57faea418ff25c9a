package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// quotaDB is a fresh database with helpers that insert tenancy rows
// directly, so quota tests do not depend on the organization and space
// store code.
type quotaDB struct {
	t  *testing.T
	st *store.Store
}

func newQuotaDB(t *testing.T) *quotaDB {
	return &quotaDB{t: t, st: pgtest.NewStore(t)}
}

func (d *quotaDB) exec(query string, args ...any) {
	d.t.Helper()
	if _, err := d.st.DB().ExecContext(context.Background(), query, args...); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
}

func (d *quotaDB) count(query string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.st.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (d *quotaDB) defaultQuotaGUID() string {
	d.t.Helper()
	var guid string
	err := d.st.DB().QueryRowContext(context.Background(), `SELECT guid FROM organization_quotas WHERE name = $1`,
		store.DefaultOrganizationQuota).Scan(&guid)
	if err != nil {
		d.t.Fatal(err)
	}
	return guid
}

func (d *quotaDB) org(name string) string {
	d.t.Helper()
	guid := uuid.NewString()
	d.exec(`INSERT INTO organizations (guid, name, quota_guid) SELECT $1, $2, guid FROM organization_quotas WHERE name = 'default'`, guid, name)
	return guid
}

func (d *quotaDB) space(orgGUID, name string) string {
	d.t.Helper()
	guid := uuid.NewString()
	d.exec(`INSERT INTO spaces (guid, name, organization_guid) VALUES ($1, $2, $3)`, guid, name, orgGUID)
	return guid
}

func (d *quotaDB) user() string {
	d.t.Helper()
	guid := uuid.NewString()
	d.exec(`INSERT INTO users (guid) VALUES ($1)`, guid)
	return guid
}

func (d *quotaDB) grant(userGUID, roleType, orgGUID, spaceGUID string) {
	d.t.Helper()
	d.exec(`INSERT INTO roles (guid, type, user_guid, organization_guid, space_guid) VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''))`,
		uuid.NewString(), roleType, userGUID, orgGUID, spaceGUID)
}

func (d *quotaDB) orgQuota(name string, orgGUIDs ...string) store.OrganizationQuota {
	d.t.Helper()
	q, err := d.st.CreateOrganizationQuota(context.Background(),
		store.OrganizationQuota{GUID: uuid.NewString(), Name: name, Limits: store.DefaultQuotaLimits()},
		orgGUIDs, quotaTestEvent("audit.organization_quota.create"))
	if err != nil {
		d.t.Fatalf("create organization quota %s: %v", name, err)
	}
	return q
}

func quotaTestEvent(eventType string) store.AuditEvent {
	return store.AuditEvent{Type: eventType, ActorGUID: "admin-guid", ActorType: "user", ActorName: "admin"}
}

func int64p(n int64) *int64 { return &n }

func TestOrganizationQuotaStoresLimits(t *testing.T) {
	d := newQuotaDB(t)
	org := d.org("o1")
	limits := store.QuotaLimits{
		TotalMemoryInMB: int64p(10240), PerProcessMemoryInMB: int64p(1024), TotalInstances: int64p(10),
		PerAppTasks: int64p(5), LogRateLimitInBytesPerSecond: int64p(1 << 40), PaidServicesAllowed: false,
		TotalServiceInstances: int64p(3), TotalServiceKeys: int64p(4), TotalRoutes: int64p(8),
		TotalReservedPorts: int64p(2), TotalDomains: int64p(7),
	}
	created, err := d.st.CreateOrganizationQuota(context.Background(),
		store.OrganizationQuota{GUID: uuid.NewString(), Name: "gold", Limits: limits}, []string{org},
		quotaTestEvent("audit.organization_quota.create"))
	if err != nil {
		t.Fatal(err)
	}

	got, err := d.st.OrganizationQuota(context.Background(), created.GUID, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "gold" {
		t.Errorf("name = %q, want gold", got.Name)
	}
	checks := []struct {
		field string
		got   *int64
		want  int64
	}{
		{"total memory", got.Limits.TotalMemoryInMB, 10240},
		{"per process memory", got.Limits.PerProcessMemoryInMB, 1024},
		{"total instances", got.Limits.TotalInstances, 10},
		{"per app tasks", got.Limits.PerAppTasks, 5},
		{"log rate", got.Limits.LogRateLimitInBytesPerSecond, 1 << 40},
		{"service instances", got.Limits.TotalServiceInstances, 3},
		{"service keys", got.Limits.TotalServiceKeys, 4},
		{"routes", got.Limits.TotalRoutes, 8},
		{"reserved ports", got.Limits.TotalReservedPorts, 2},
		{"domains", got.Limits.TotalDomains, 7},
	}
	for _, c := range checks {
		if c.got == nil || *c.got != c.want {
			t.Errorf("%s = %v, want %d", c.field, c.got, c.want)
		}
	}
	if got.Limits.PaidServicesAllowed {
		t.Error("paid services allowed = true, want false")
	}
	if !slices.Equal(got.OrganizationGUIDs, []string{org}) {
		t.Errorf("organizations = %v, want [%s]", got.OrganizationGUIDs, org)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.create' AND target_guid = $1`, created.GUID); n != 1 {
		t.Errorf("create events = %d, want 1", n)
	}
}

func TestOrganizationQuotaNameIsCaseInsensitive(t *testing.T) {
	d := newQuotaDB(t)
	d.orgQuota("Gold")

	_, err := d.st.CreateOrganizationQuota(context.Background(),
		store.OrganizationQuota{GUID: uuid.NewString(), Name: "gold", Limits: store.DefaultQuotaLimits()}, nil,
		quotaTestEvent("audit.organization_quota.create"))
	if !store.IsUnique(err, store.OrganizationQuotaNameConstraint) {
		t.Fatalf("error = %v, want unique violation of %s", err, store.OrganizationQuotaNameConstraint)
	}
}

func TestOrganizationQuotaCreateRollsBackOnUnknownOrg(t *testing.T) {
	d := newQuotaDB(t)
	org := d.org("o1")

	_, err := d.st.CreateOrganizationQuota(context.Background(),
		store.OrganizationQuota{GUID: uuid.NewString(), Name: "gold", Limits: store.DefaultQuotaLimits()},
		[]string{org, "missing-1", "missing-1", "missing-2"}, quotaTestEvent("audit.organization_quota.create"))
	var unknown *store.UnknownGUIDsError
	if !errors.As(err, &unknown) {
		t.Fatalf("error = %v, want *UnknownGUIDsError", err)
	}
	if !slices.Equal(unknown.GUIDs, []string{"missing-1", "missing-2"}) {
		t.Errorf("unknown guids = %v, want [missing-1 missing-2]", unknown.GUIDs)
	}
	if n := d.count(`SELECT count(*) FROM organization_quotas WHERE name = 'gold'`); n != 0 {
		t.Errorf("quotas named gold = %d, want 0", n)
	}
	if n := d.count(`SELECT count(*) FROM organizations o JOIN organization_quotas q ON q.guid = o.quota_guid WHERE q.name = 'default'`); n != 1 {
		t.Errorf("organizations on the default quota = %d, want 1", n)
	}
	if n := d.count(`SELECT count(*) FROM audit_events`); n != 0 {
		t.Errorf("audit events = %d, want 0", n)
	}
}

func TestOrganizationQuotaDelete(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	inUse := d.orgQuota("in-use", d.org("o1"))
	unused := d.orgQuota("unused")
	job := store.Job{GUID: uuid.NewString(), Operation: "organization_quota.delete", ResourceType: "organization_quota", ResourceGUID: unused.GUID}

	err := d.st.DeleteOrganizationQuota(ctx, inUse.GUID, job, quotaTestEvent("audit.organization_quota.delete"))
	if !errors.Is(err, store.ErrQuotaInUse) {
		t.Errorf("delete quota in use: error = %v, want ErrQuotaInUse", err)
	}
	err = d.st.DeleteOrganizationQuota(ctx, d.defaultQuotaGUID(), job, quotaTestEvent("audit.organization_quota.delete"))
	if !errors.Is(err, store.ErrDefaultOrganizationQuota) {
		t.Errorf("delete default quota: error = %v, want ErrDefaultOrganizationQuota", err)
	}
	err = d.st.DeleteOrganizationQuota(ctx, "no-such-quota", job, quotaTestEvent("audit.organization_quota.delete"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete unknown quota: error = %v, want ErrNotFound", err)
	}
	if n := d.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("jobs after failed deletes = %d, want 0", n)
	}

	if err := d.st.DeleteOrganizationQuota(ctx, unused.GUID, job, quotaTestEvent("audit.organization_quota.delete")); err != nil {
		t.Fatalf("delete unused quota: %v", err)
	}
	if n := d.count(`SELECT count(*) FROM organization_quotas WHERE guid = $1`, unused.GUID); n != 0 {
		t.Errorf("deleted quota rows = %d, want 0", n)
	}
	stored, err := d.st.Job(ctx, job.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.State != store.JobComplete {
		t.Errorf("job state = %s, want %s", stored.State, store.JobComplete)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.delete' AND target_name = 'unused'`); n != 1 {
		t.Errorf("delete events = %d, want 1", n)
	}
}

func TestOrganizationQuotaVisibility(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	mine, theirs := d.org("mine"), d.org("theirs")
	shared := d.orgQuota("shared", mine, theirs)
	private := d.orgQuota("private", theirs)
	user := d.user()
	d.grant(user, "space_developer", "", d.space(mine, "dev"))
	vis := store.Visibility{UserGUID: user}

	quotas, total, err := d.st.OrganizationQuotas(ctx, store.OrganizationQuotaFilter{}, store.Page{Number: 1, PerPage: 50}, vis)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(quotas) != 1 || quotas[0].GUID != shared.GUID {
		t.Fatalf("visible quotas = %v (total %d), want only %s", quotas, total, shared.GUID)
	}
	if !slices.Equal(quotas[0].OrganizationGUIDs, []string{mine}) {
		t.Errorf("visible organizations = %v, want [%s]", quotas[0].OrganizationGUIDs, mine)
	}

	if _, err := d.st.OrganizationQuota(ctx, private.GUID, vis); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read invisible quota: error = %v, want ErrNotFound", err)
	}

	f := store.OrganizationQuotaFilter{OrganizationGUIDs: []string{theirs}}
	quotas, _, err = d.st.OrganizationQuotas(ctx, f, store.Page{Number: 1, PerPage: 50}, vis)
	if err != nil {
		t.Fatal(err)
	}
	if len(quotas) != 0 {
		t.Errorf("quotas of an invisible organization = %d, want 0", len(quotas))
	}
}

func TestOrganizationQuotasPageAfterLast(t *testing.T) {
	d := newQuotaDB(t)
	d.orgQuota("a")
	d.orgQuota("b")

	quotas, total, err := d.st.OrganizationQuotas(context.Background(), store.OrganizationQuotaFilter{},
		store.Page{Number: 9, PerPage: 1}, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(quotas) != 0 {
		t.Errorf("quotas on page 9 = %d, want 0", len(quotas))
	}
	if total != 3 {
		t.Errorf("total = %d, want 3 (default, a, b)", total)
	}
}

func TestOrganizationQuotaApply(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	o1, o2, o3 := d.org("o1"), d.org("o2"), d.org("o3")
	q := d.orgQuota("gold", o1)

	all, err := d.st.ApplyOrganizationQuota(ctx, q.GUID, []string{o2, o3}, quotaTestEvent("audit.organization_quota.apply"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all, []string{o1, o2, o3}) {
		t.Errorf("organizations = %v, want [%s %s %s]", all, o1, o2, o3)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.apply' AND data->>'organization_guid' IN ($1, $2)`, o2, o3); n != 2 {
		t.Errorf("apply events = %d, want 2", n)
	}

	other := d.orgQuota("silver")
	_, err = d.st.ApplyOrganizationQuota(ctx, other.GUID, []string{o1, "missing"}, quotaTestEvent("audit.organization_quota.apply"))
	var unknown *store.UnknownGUIDsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.GUIDs, []string{"missing"}) {
		t.Fatalf("error = %v, want unknown guid missing", err)
	}
	if n := d.count(`SELECT count(*) FROM organizations WHERE quota_guid = $1`, other.GUID); n != 0 {
		t.Errorf("organizations on silver after failed apply = %d, want 0", n)
	}

	_, err = d.st.ApplyOrganizationQuota(ctx, "no-such-quota", []string{o1}, quotaTestEvent("audit.organization_quota.apply"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("apply unknown quota: error = %v, want ErrNotFound", err)
	}
}

func TestOrganizationQuotaUpdateRollsBackOnChangeError(t *testing.T) {
	d := newQuotaDB(t)
	q := d.orgQuota("gold")
	boom := errors.New("boom")

	_, err := d.st.UpdateOrganizationQuota(context.Background(), q.GUID, func(q *store.OrganizationQuota) error {
		q.Name = "changed"
		return boom
	}, quotaTestEvent("audit.organization_quota.update"))
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want boom", err)
	}
	if n := d.count(`SELECT count(*) FROM organization_quotas WHERE name = 'gold'`); n != 1 {
		t.Errorf("quotas still named gold = %d, want 1", n)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.organization_quota.update'`); n != 0 {
		t.Errorf("update events = %d, want 0", n)
	}
}
