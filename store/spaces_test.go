package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func spaceNames(spaces []store.Space) []string {
	names := []string{}
	for _, s := range spaces {
		names = append(names, s.Name)
	}
	return names
}

func TestSpaceCreateConstraints(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	org := seed.org("acme", nil)
	seed.space(org, "Dev", nil)

	_, err := store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "dev", OrganizationGUID: org})
	if !store.IsUnique(err, store.ConstraintSpaceName) {
		t.Errorf("duplicate name: %v, want unique violation of %s", err, store.ConstraintSpaceName)
	}

	_, err = store.CreateSpace(ctx, st.DB(), store.Space{GUID: uuid.NewString(), Name: "x", OrganizationGUID: uuid.NewString()})
	var fk *store.ForeignKeyError
	if !errors.As(err, &fk) || fk.Constraint != store.ConstraintSpaceOrganization {
		t.Errorf("unknown organization: %v, want foreign key violation of %s", err, store.ConstraintSpaceOrganization)
	}
}

func TestSpaceUpdateAndDelete(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	org := seed.org("acme", nil)
	guid := seed.space(org, "dev", map[string]string{"a": "1"})

	name, suspended := "development", true
	sp, err := store.UpdateSpace(ctx, st.DB(), guid, store.SpaceUpdate{Name: &name, Suspended: &suspended,
		Metadata: store.MetadataPatch{Labels: map[string]*string{"a": nil}}})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Name != "development" || !sp.Suspended || len(sp.Labels) != 0 || sp.OrganizationGUID != org || sp.QuotaGUID != "" {
		t.Errorf("updated space = %+v", sp)
	}

	if _, err := store.UpdateSpace(ctx, st.DB(), uuid.NewString(), store.SpaceUpdate{Name: &name}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing space: %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := store.DeleteSpace(ctx, st.DB(), guid); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := st.Space(ctx, guid, store.Visibility{All: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted space: %v, want ErrNotFound", err)
	}
}

func TestSpacesFiltersAndVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	acme, globex := seed.org("acme", nil), seed.org("globex", nil)
	acmeDev := seed.space(acme, "dev", map[string]string{"env": "dev"})
	seed.space(acme, "prod", map[string]string{"env": "prod"})
	seed.space(globex, "Dev", nil)
	globexQA := seed.space(globex, "qa", nil)

	seed.role("dev-user", "space_developer", "", acmeDev)
	seed.role("dev-user", "space_auditor", "", globexQA)
	seed.role("manager", "organization_manager", globex, "")
	seed.role("org-user", "organization_user", acme, "")

	page := store.Page{Number: 1, PerPage: 50, OrderBy: "name"}
	all := store.Visibility{All: true}
	tests := []struct {
		name   string
		filter store.SpaceFilter
		vis    store.Visibility
		want   []string
	}{
		{"all", store.SpaceFilter{}, all, []string{"dev", "Dev", "prod", "qa"}},
		{"names ignore case", store.SpaceFilter{Names: []string{"DEV"}}, all, []string{"dev", "Dev"}},
		{"organization", store.SpaceFilter{OrganizationGUIDs: []string{acme}}, all, []string{"dev", "prod"}},
		{"guids", store.SpaceFilter{GUIDs: []string{globexQA, "missing"}}, all, []string{"qa"}},
		{"empty guids", store.SpaceFilter{GUIDs: []string{""}}, all, []string{}},
		{"labels", store.SpaceFilter{LabelSelector: store.LabelSelector{{Key: "env", Operator: store.LabelNotIn, Values: []string{"dev"}}}}, all,
			[]string{"Dev", "prod", "qa"}},
		{"space roles", store.SpaceFilter{}, store.Visibility{UserGUID: "dev-user"}, []string{"dev", "qa"}},
		{"org manager", store.SpaceFilter{}, store.Visibility{UserGUID: "manager"}, []string{"Dev", "qa"}},
		{"org user sees no spaces", store.SpaceFilter{}, store.Visibility{UserGUID: "org-user"}, []string{}},
		{"filters and visibility", store.SpaceFilter{Names: []string{"qa", "prod"}}, store.Visibility{UserGUID: "dev-user"}, []string{"qa"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spaces, total, err := st.Spaces(ctx, tt.filter, page, tt.vis)
			if err != nil {
				t.Fatal(err)
			}
			// "dev" and "Dev" sort equal by name, so their order is the
			// guid tiebreaker's: compare the names as a set.
			if diff := cmp.Diff(tt.want, spaceNames(spaces), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("spaces (-want +got):\n%s", diff)
			}
			if total != len(tt.want) {
				t.Errorf("total = %d, want %d", total, len(tt.want))
			}
		})
	}
}
