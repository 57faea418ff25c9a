package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestEnsureSigningKeyKeepsFirst(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()

	if _, err := st.ActiveSigningKey(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("fresh database: error = %v, want ErrNotFound", err)
	}

	const callers = 8
	var wg sync.WaitGroup
	kids := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := st.EnsureSigningKey(ctx, store.SigningKey{KID: fmt.Sprintf("kid-%d", i), PrivateKeyPEM: fmt.Sprintf("pem-%d", i)})
			kids[i], errs[i] = k.KID, err
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if kids[i] != kids[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, kids[i], kids[0])
		}
	}

	keys, err := st.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Active || keys[0].KID != kids[0] || keys[0].PrivateKeyPEM != "pem-"+kids[0][len("kid-"):] {
		t.Errorf("stored keys = %+v, want only %s", keys, kids[0])
	}
}
