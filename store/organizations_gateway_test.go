package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestOrganizationDedicatedGateway(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	first := seed.org("first", nil)
	second := seed.org("second", nil)

	if dedicated, err := st.OrganizationDedicatedGateway(ctx, first); err != nil || dedicated {
		t.Errorf("new organization: dedicated = %v, %v, want false", dedicated, err)
	}
	if orgs, err := st.DedicatedGatewayOrgs(ctx); err != nil || len(orgs) != 0 {
		t.Errorf("DedicatedGatewayOrgs before any flag = %v, %v, want none", orgs, err)
	}

	for _, org := range []string{first, second} {
		if err := store.SetOrganizationDedicatedGateway(ctx, st.DB(), org, true); err != nil {
			t.Fatal(err)
		}
	}
	if dedicated, err := st.OrganizationDedicatedGateway(ctx, first); err != nil || !dedicated {
		t.Errorf("after setting: dedicated = %v, %v, want true", dedicated, err)
	}
	want := []string{first, second}
	if second < first {
		want = []string{second, first}
	}
	orgs, err := st.DedicatedGatewayOrgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, orgs); diff != "" {
		t.Errorf("DedicatedGatewayOrgs (-want +got):\n%s", diff)
	}

	if err := store.SetOrganizationDedicatedGateway(ctx, st.DB(), first, false); err != nil {
		t.Fatal(err)
	}
	if orgs, _ := st.DedicatedGatewayOrgs(ctx); !cmp.Equal([]string{second}, orgs) {
		t.Errorf("DedicatedGatewayOrgs after clearing first = %v, want [%s]", orgs, second)
	}

	missing := uuid.NewString()
	if err := store.SetOrganizationDedicatedGateway(ctx, st.DB(), missing, true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("setting a missing organization: err = %v, want ErrNotFound", err)
	}
	if _, err := st.OrganizationDedicatedGateway(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading a missing organization: err = %v, want ErrNotFound", err)
	}
}
