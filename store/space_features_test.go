package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestSpaceAllowSSH(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	space := seed.space(seed.org("acme", nil), "dev", nil)

	allowed, err := store.SpaceAllowsSSH(ctx, st.DB(), space)
	if err != nil || !allowed {
		t.Errorf("new space allows SSH = %v, %v; want true", allowed, err)
	}
	if err := store.SetSpaceAllowSSH(ctx, st.DB(), space, false); err != nil {
		t.Fatal(err)
	}
	allowed, err = store.SpaceAllowsSSH(ctx, st.DB(), space)
	if err != nil || allowed {
		t.Errorf("after disallow = %v, %v; want false", allowed, err)
	}
	if err := store.SetSpaceAllowSSH(ctx, st.DB(), "no-such-space", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("set on a missing space: %v, want ErrNotFound", err)
	}
	if _, err := store.SpaceAllowsSSH(ctx, st.DB(), "no-such-space"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read of a missing space: %v, want ErrNotFound", err)
	}
}
