package k8sbackend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestStoreDesiredSpaces(t *testing.T) {
	ctx := t.Context()
	st := pgtest.NewStore(t)
	desired := StoreDesiredApps{Store: st}
	event := store.AuditEvent{Type: "audit.organization_quota.create", ActorGUID: "admin-guid", ActorType: "user", ActorName: "admin"}

	small := store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](4096), PerProcessMemoryInMB: ptr.To[int64](512),
		TotalInstances: ptr.To[int64](8), PaidServicesAllowed: true}
	orgQuota, err := st.CreateOrganizationQuota(ctx, store.OrganizationQuota{GUID: uuid.NewString(), Name: "small", Limits: small}, nil, event)
	if err != nil {
		t.Fatal(err)
	}
	defaultOrg, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "default-quota"})
	if err != nil {
		t.Fatal(err)
	}
	smallOrg, err := store.CreateOrganization(ctx, st.DB(), store.Organization{GUID: uuid.NewString(), Name: "small-quota",
		QuotaGUID: orgQuota.GUID})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: defaultOrg.GUID})
	if err != nil {
		t.Fatal(err)
	}
	limited, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "prod", OrganizationGUID: smallOrg.GUID})
	if err != nil {
		t.Fatal(err)
	}
	spaceLimits := store.QuotaLimits{TotalMemoryInMB: ptr.To[int64](1024), TotalInstances: ptr.To[int64](-1), PaidServicesAllowed: true}
	event.Type = "audit.space_quota.create"
	if _, err := st.CreateSpaceQuota(ctx, store.SpaceQuota{GUID: uuid.NewString(), Name: "tiny", OrganizationGUID: smallOrg.GUID,
		Limits: spaceLimits}, []string{limited.GUID}, event); err != nil {
		t.Fatal(err)
	}
	defaultQuota, err := st.OrganizationQuota(ctx, defaultOrg.QuotaGUID, store.Visibility{All: true})
	if err != nil {
		t.Fatal(err)
	}

	missing := uuid.NewString()
	got, err := desired.DesiredSpaces(ctx, []string{plain.GUID, limited.GUID, missing})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SpaceSpec{
		plain.GUID:   {GUID: plain.GUID, OrgGUID: defaultOrg.GUID, OrgQuota: defaultQuota.Limits},
		limited.GUID: {GUID: limited.GUID, OrgGUID: smallOrg.GUID, SpaceQuota: spaceLimits, OrgQuota: small},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DesiredSpaces (-want +got):\n%s", diff)
	}

	if err := store.DeleteSpace(ctx, st.DB(), plain.GUID); err != nil {
		t.Fatal(err)
	}
	got, err = desired.DesiredSpaces(ctx, []string{plain.GUID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("DesiredSpaces of a deleted space = %v, want none", got)
	}
}

func TestJoinSpacesMissingRows(t *testing.T) {
	space := store.Space{GUID: "s1", OrganizationGUID: "o1", QuotaGUID: "sq1"}
	orgQuotas := []store.OrganizationQuota{{GUID: "oq1"}}
	spaceQuotas := []store.SpaceQuota{{GUID: "sq1"}}
	for _, tc := range []struct {
		name        string
		orgQuotaOf  map[string]string
		orgQuotas   []store.OrganizationQuota
		spaceQuotas []store.SpaceQuota
	}{
		{name: "organization", orgQuotaOf: map[string]string{}, orgQuotas: orgQuotas, spaceQuotas: spaceQuotas},
		{name: "organization quota", orgQuotaOf: map[string]string{"o1": "oq1"}, spaceQuotas: spaceQuotas},
		{name: "space quota", orgQuotaOf: map[string]string{"o1": "oq1"}, orgQuotas: orgQuotas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := joinSpaces([]store.Space{space}, tc.orgQuotaOf, tc.orgQuotas, tc.spaceQuotas)
			if err == nil {
				t.Errorf("joinSpaces = %v, want an error rather than a missing space", got)
			}
		})
	}
}
