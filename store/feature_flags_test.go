package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestFeatureFlagDefaultsAreSorted(t *testing.T) {
	names := make([]string, len(store.FeatureFlagDefaults))
	for i, d := range store.FeatureFlagDefaults {
		names[i] = d.Name
	}
	if !slices.IsSorted(names) {
		t.Errorf("FeatureFlagDefaults are not sorted by name: %v", names)
	}
	if len(slices.Compact(names)) != len(store.FeatureFlagDefaults) {
		t.Errorf("FeatureFlagDefaults has duplicates: %v", names)
	}
}

func TestFeatureFlagUpdate(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()

	flag, err := st.FeatureFlag(ctx, "route_creation")
	if err != nil || !flag.Enabled || !flag.UpdatedAt.IsZero() || flag.CustomErrorMessage != "" {
		t.Fatalf("default route_creation = %+v, %v", flag, err)
	}

	off, msg := false, "routes are frozen"
	flag, err = store.UpdateFeatureFlag(ctx, st.DB(), "route_creation", store.FeatureFlagUpdate{Enabled: &off, SetMessage: true, Message: &msg})
	if err != nil || flag.Enabled || flag.CustomErrorMessage != msg || flag.UpdatedAt.IsZero() {
		t.Fatalf("after disabling = %+v, %v", flag, err)
	}

	// Only the message changes; enabled stays false.
	other := "ask the platform team"
	flag, err = store.UpdateFeatureFlag(ctx, st.DB(), "route_creation", store.FeatureFlagUpdate{SetMessage: true, Message: &other})
	if err != nil || flag.Enabled || flag.CustomErrorMessage != other {
		t.Fatalf("after message change = %+v, %v", flag, err)
	}
	// Neither field set: nothing but updated_at changes.
	flag, err = store.UpdateFeatureFlag(ctx, st.DB(), "route_creation", store.FeatureFlagUpdate{})
	if err != nil || flag.Enabled || flag.CustomErrorMessage != other {
		t.Fatalf("after empty update = %+v, %v", flag, err)
	}
	flag, err = store.UpdateFeatureFlag(ctx, st.DB(), "route_creation", store.FeatureFlagUpdate{SetMessage: true})
	if err != nil || flag.CustomErrorMessage != "" {
		t.Fatalf("after clearing the message = %+v, %v", flag, err)
	}

	// A first update that sets only the message keeps the default value.
	flag, err = store.UpdateFeatureFlag(ctx, st.DB(), "diego_docker", store.FeatureFlagUpdate{SetMessage: true, Message: &msg})
	if err != nil || flag.Enabled {
		t.Fatalf("diego_docker after message = %+v, %v; want the default false", flag, err)
	}

	flags, total, err := st.FeatureFlags(ctx, store.Page{Number: 1, PerPage: 100, OrderBy: "name"})
	if err != nil || total != len(store.FeatureFlagDefaults) || len(flags) != total {
		t.Fatalf("list = %d of %d, %v", len(flags), total, err)
	}
	for _, f := range flags {
		changed := f.Name == "route_creation" || f.Name == "diego_docker"
		if changed == f.UpdatedAt.IsZero() {
			t.Errorf("%s: updated_at %v", f.Name, f.UpdatedAt)
		}
		if f.Name == "route_creation" && f.Enabled {
			t.Errorf("route_creation listed as enabled")
		}
	}

	if _, err := st.FeatureFlag(ctx, "warp_drive"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown flag: %v, want ErrNotFound", err)
	}
	if _, err := store.UpdateFeatureFlag(ctx, st.DB(), "warp_drive", store.FeatureFlagUpdate{Enabled: &off}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of an unknown flag: %v, want ErrNotFound", err)
	}
}
