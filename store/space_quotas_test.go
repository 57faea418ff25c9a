package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

func (d *quotaDB) spaceQuota(orgGUID, name string, spaceGUIDs ...string) store.SpaceQuota {
	d.t.Helper()
	q, err := d.st.CreateSpaceQuota(context.Background(),
		store.SpaceQuota{GUID: uuid.NewString(), Name: name, OrganizationGUID: orgGUID, Limits: store.DefaultQuotaLimits()},
		spaceGUIDs, quotaTestEvent("audit.space_quota.create"))
	if err != nil {
		d.t.Fatalf("create space quota %s: %v", name, err)
	}
	return q
}

func TestSpaceQuotaNameIsUniquePerOrganization(t *testing.T) {
	d := newQuotaDB(t)
	o1, o2 := d.org("o1"), d.org("o2")
	d.spaceQuota(o1, "small")
	d.spaceQuota(o2, "small")
	d.spaceQuota(o1, "Small")

	_, err := d.st.CreateSpaceQuota(context.Background(),
		store.SpaceQuota{GUID: uuid.NewString(), Name: "small", OrganizationGUID: o1, Limits: store.DefaultQuotaLimits()},
		nil, quotaTestEvent("audit.space_quota.create"))
	if !store.IsUnique(err, store.SpaceQuotaNameConstraint) {
		t.Fatalf("error = %v, want unique violation of %s", err, store.SpaceQuotaNameConstraint)
	}
}

func TestSpaceQuotaCreateChecksSpacesAndOrganization(t *testing.T) {
	d := newQuotaDB(t)
	o1, o2 := d.org("o1"), d.org("o2")
	inside, outside := d.space(o1, "inside"), d.space(o2, "outside")

	_, err := d.st.CreateSpaceQuota(context.Background(),
		store.SpaceQuota{GUID: uuid.NewString(), Name: "small", OrganizationGUID: o1, Limits: store.DefaultQuotaLimits()},
		[]string{inside, outside}, quotaTestEvent("audit.space_quota.create"))
	var unknown *store.UnknownGUIDsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.GUIDs, []string{outside}) {
		t.Fatalf("error = %v, want unknown guid %s", err, outside)
	}
	if n := d.count(`SELECT count(*) FROM space_quotas`); n != 0 {
		t.Errorf("space quotas = %d, want 0", n)
	}
	if n := d.count(`SELECT count(*) FROM spaces WHERE quota_guid IS NOT NULL`); n != 0 {
		t.Errorf("spaces with a quota = %d, want 0", n)
	}

	_, err = d.st.CreateSpaceQuota(context.Background(),
		store.SpaceQuota{GUID: uuid.NewString(), Name: "small", OrganizationGUID: "no-such-org", Limits: store.DefaultQuotaLimits()},
		nil, quotaTestEvent("audit.space_quota.create"))
	var fkErr *store.ForeignKeyError
	if !errors.As(err, &fkErr) {
		t.Errorf("create in unknown organization: error = %v, want *ForeignKeyError", err)
	}
}

func TestSpaceQuotaVisibility(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	org := d.org("o1")
	dev, other := d.space(org, "dev"), d.space(org, "other")
	applied := d.spaceQuota(org, "applied", dev, other)
	unapplied := d.spaceQuota(org, "unapplied")

	manager, developer, auditor := d.user(), d.user(), d.user()
	d.grant(manager, "organization_manager", org, "")
	d.grant(developer, "space_developer", "", dev)
	d.grant(auditor, "organization_auditor", org, "")

	tests := []struct {
		name       string
		user       string
		wantQuotas []string
		wantSpaces []string
	}{
		{"org manager", manager, []string{applied.GUID, unapplied.GUID}, []string{dev, other}},
		{"space developer", developer, []string{applied.GUID}, []string{dev}},
		{"org auditor", auditor, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quotas, total, err := d.st.SpaceQuotas(ctx, store.SpaceQuotaFilter{}, store.Page{Number: 1, PerPage: 50},
				store.Visibility{UserGUID: tt.user})
			if err != nil {
				t.Fatal(err)
			}
			var guids []string
			for _, q := range quotas {
				guids = append(guids, q.GUID)
			}
			if !slices.Equal(guids, tt.wantQuotas) || total != len(tt.wantQuotas) {
				t.Fatalf("quotas = %v (total %d), want %v", guids, total, tt.wantQuotas)
			}
			if len(quotas) > 0 && !slices.Equal(quotas[0].SpaceGUIDs, tt.wantSpaces) {
				t.Errorf("spaces of %s = %v, want %v", quotas[0].Name, quotas[0].SpaceGUIDs, tt.wantSpaces)
			}
		})
	}
}

func TestSpaceQuotaApply(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	o1, o2 := d.org("o1"), d.org("o2")
	s1, s2, foreign := d.space(o1, "s1"), d.space(o1, "s2"), d.space(o2, "foreign")
	q := d.spaceQuota(o1, "small", s1)
	manager := d.user()
	d.grant(manager, "organization_manager", o1, "")
	managerVis := store.Visibility{UserGUID: manager}

	_, err := d.st.ApplySpaceQuota(ctx, q.GUID, []string{s2, foreign}, managerVis, quotaTestEvent("audit.space_quota.apply"))
	var unknown *store.UnknownGUIDsError
	if !errors.As(err, &unknown) || !slices.Equal(unknown.GUIDs, []string{foreign}) {
		t.Errorf("apply to an invisible space: error = %v, want unknown guid %s", err, foreign)
	}

	d.grant(manager, "space_auditor", "", foreign)
	_, err = d.st.ApplySpaceQuota(ctx, q.GUID, []string{s2, foreign}, managerVis, quotaTestEvent("audit.space_quota.apply"))
	if !errors.Is(err, store.ErrQuotaOutsideOrganization) {
		t.Errorf("apply to a space of another organization: error = %v, want ErrQuotaOutsideOrganization", err)
	}
	if n := d.count(`SELECT count(*) FROM spaces WHERE quota_guid = $1`, q.GUID); n != 1 {
		t.Errorf("spaces on the quota after failed applies = %d, want 1", n)
	}

	all, err := d.st.ApplySpaceQuota(ctx, q.GUID, []string{s2}, managerVis, quotaTestEvent("audit.space_quota.apply"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all, []string{s1, s2}) {
		t.Errorf("spaces = %v, want [%s %s]", all, s1, s2)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.apply' AND space_guid = $1 AND data->>'space_name' = 's2'`, s2); n != 1 {
		t.Errorf("apply events for s2 = %d, want 1", n)
	}
}

func TestSpaceQuotaRemoveAndDelete(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	org := d.org("o1")
	sp := d.space(org, "s1")
	q := d.spaceQuota(org, "small", sp)
	job := store.Job{GUID: uuid.NewString(), Operation: "space_quota.delete", ResourceType: "space_quota", ResourceGUID: q.GUID}

	if err := d.st.DeleteSpaceQuota(ctx, q.GUID, job, quotaTestEvent("audit.space_quota.delete")); !errors.Is(err, store.ErrQuotaInUse) {
		t.Errorf("delete quota in use: error = %v, want ErrQuotaInUse", err)
	}

	if err := d.st.RemoveSpaceQuota(ctx, q.GUID, sp, quotaTestEvent("audit.space_quota.remove")); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := d.st.RemoveSpaceQuota(ctx, q.GUID, sp, quotaTestEvent("audit.space_quota.remove")); !errors.Is(err, store.ErrQuotaNotApplied) {
		t.Errorf("remove again: error = %v, want ErrQuotaNotApplied", err)
	}
	if n := d.count(`SELECT count(*) FROM audit_events WHERE type = 'audit.space_quota.remove' AND space_guid = $1`, sp); n != 1 {
		t.Errorf("remove events = %d, want 1", n)
	}

	if err := d.st.DeleteSpaceQuota(ctx, q.GUID, job, quotaTestEvent("audit.space_quota.delete")); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n := d.count(`SELECT count(*) FROM space_quotas`); n != 0 {
		t.Errorf("space quotas = %d, want 0", n)
	}
	if n := d.count(`SELECT count(*) FROM jobs WHERE guid = $1 AND state = 'COMPLETE'`, job.GUID); n != 1 {
		t.Errorf("complete jobs = %d, want 1", n)
	}
	if err := d.st.DeleteSpaceQuota(ctx, q.GUID, job, quotaTestEvent("audit.space_quota.delete")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete again: error = %v, want ErrNotFound", err)
	}
}

func TestSpaceQuotaOwner(t *testing.T) {
	d := newQuotaDB(t)
	ctx := context.Background()
	org := d.org("o1")
	gold := d.orgQuota("gold", org)
	if _, err := d.st.UpdateOrganizationQuota(ctx, gold.GUID, func(q *store.OrganizationQuota) error {
		q.Limits.TotalReservedPorts = int64p(4)
		return nil
	}, quotaTestEvent("audit.organization_quota.update")); err != nil {
		t.Fatal(err)
	}
	d.exec(`UPDATE organizations SET suspended = true WHERE guid = $1`, org)
	stranger := d.user()

	owner, err := d.st.SpaceQuotaOwner(ctx, org, store.Visibility{UserGUID: stranger})
	if err != nil {
		t.Fatal(err)
	}
	if owner.Visible {
		t.Error("visible to a stranger = true, want false")
	}
	if !owner.Suspended {
		t.Error("suspended = false, want true")
	}
	if owner.TotalReservedPorts == nil || *owner.TotalReservedPorts != 4 {
		t.Errorf("reserved ports = %v, want 4", owner.TotalReservedPorts)
	}
	if _, err := d.st.SpaceQuotaOwner(ctx, "no-such-org", store.Visibility{All: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown organization: error = %v, want ErrNotFound", err)
	}
}
