package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestEnvironmentVariableGroupPatch(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	value := func(s string) *string { return &s }

	for _, name := range []string{store.EnvironmentVariableGroupRunning, store.EnvironmentVariableGroupStaging} {
		g, err := st.EnvironmentVariableGroup(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != name || len(g.Variables) != 0 || g.UpdatedAt.IsZero() {
			t.Errorf("new group %s = %+v, want no variables", name, g)
		}
	}

	first, err := store.PatchEnvironmentVariableGroup(ctx, st.DB(), store.EnvironmentVariableGroupRunning,
		map[string]*string{"A": value("1"), "B": value("2")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := store.PatchEnvironmentVariableGroup(ctx, st.DB(), store.EnvironmentVariableGroupRunning,
		map[string]*string{"B": nil, "C": value("3"), "MISSING": nil})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"A": "1", "C": "3"}, second.Variables); diff != "" {
		t.Errorf("running after two patches (-want +got):\n%s", diff)
	}
	if second.UpdatedAt.Before(first.UpdatedAt) {
		t.Errorf("updated_at went back from %v to %v", first.UpdatedAt, second.UpdatedAt)
	}
	read, err := st.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupRunning)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(second, read); diff != "" {
		t.Errorf("read after patch (-want +got):\n%s", diff)
	}
	staging, err := st.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupStaging)
	if err != nil {
		t.Fatal(err)
	}
	if len(staging.Variables) != 0 {
		t.Errorf("staging = %v, want it untouched", staging.Variables)
	}

	if _, err := st.EnvironmentVariableGroup(ctx, "purple"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read of an unknown group: %v, want ErrNotFound", err)
	}
	if _, err := store.PatchEnvironmentVariableGroup(ctx, st.DB(), "purple", map[string]*string{"A": value("1")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("patch of an unknown group: %v, want ErrNotFound", err)
	}
}
