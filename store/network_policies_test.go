package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// networkPolicyFixture is two organizations: acme with spaces dev and prod,
// and other with one space, and an app in each space.
type networkPolicyFixture struct {
	st                *store.Store
	dev, prod, others string
	web, api, foreign store.App
}

func newNetworkPolicyFixture(t *testing.T) networkPolicyFixture {
	t.Helper()
	st := pgtest.NewStore(t)
	seed := appSeed{tenancySeed{t, st}}
	acme := seed.org("acme", nil)
	other := seed.org("other", nil)
	f := networkPolicyFixture{st: st}
	f.dev = seed.space(acme, "dev", nil)
	f.prod = seed.space(acme, "prod", nil)
	f.others = seed.space(other, "main", nil)
	f.web = seed.app(f.dev, "web", nil)
	f.api = seed.app(f.prod, "api", nil)
	f.foreign = seed.app(f.others, "foreign", nil)
	return f
}

func TestNetworkPoliciesCreateListDelete(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	ctx := context.Background()
	webToAPI := store.NetworkPolicy{SourceAppGUID: f.web.GUID, DestinationAppGUID: f.api.GUID, Protocol: "tcp", StartPort: 8080, EndPort: 8080}
	apiToWebUDP := store.NetworkPolicy{SourceAppGUID: f.api.GUID, DestinationAppGUID: f.web.GUID, Protocol: "udp", StartPort: 5000, EndPort: 5010}
	foreignToAPI := store.NetworkPolicy{SourceAppGUID: f.foreign.GUID, DestinationAppGUID: f.api.GUID, Protocol: "tcp", StartPort: 9000, EndPort: 9000}

	for _, p := range []store.NetworkPolicy{webToAPI, apiToWebUDP, foreignToAPI} {
		if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{p}); err != nil {
			t.Fatalf("CreateNetworkPolicies(%+v) = %v", p, err)
		}
	}
	// A repeated create is a no-op, not a uniqueness error.
	if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{webToAPI}); err != nil {
		t.Fatalf("repeated CreateNetworkPolicies = %v, want nil", err)
	}

	all, err := f.st.NetworkPolicies(ctx, store.Visibility{All: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.NetworkPolicy{webToAPI, apiToWebUDP, foreignToAPI}, all); diff != "" {
		t.Errorf("NetworkPolicies(all) (-want +got):\n%s", diff)
	}

	byID, err := f.st.NetworkPolicies(ctx, store.Visibility{All: true}, []string{f.web.GUID})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.NetworkPolicy{webToAPI, apiToWebUDP}, byID); diff != "" {
		t.Errorf("NetworkPolicies(id=web) (-want +got):\n%s", diff)
	}

	none, err := f.st.NetworkPolicies(ctx, store.Visibility{All: true}, []string{uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if len(none) != 0 {
		t.Errorf("NetworkPolicies(unknown id) = %+v, want none", none)
	}

	deleted, err := store.DeleteNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{webToAPI, webToAPI})
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 1 {
		t.Errorf("DeleteNetworkPolicies deleted %d, want 1", deleted)
	}
	all, err = f.st.NetworkPolicies(ctx, store.Visibility{All: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.NetworkPolicy{apiToWebUDP, foreignToAPI}, all); diff != "" {
		t.Errorf("NetworkPolicies after delete (-want +got):\n%s", diff)
	}
}

func TestNetworkPoliciesVisibility(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	ctx := context.Background()
	seed := tenancySeed{t, f.st}
	webToAPI := store.NetworkPolicy{SourceAppGUID: f.web.GUID, DestinationAppGUID: f.api.GUID, Protocol: "tcp", StartPort: 8080, EndPort: 8080}
	foreignToForeign := store.NetworkPolicy{SourceAppGUID: f.foreign.GUID, DestinationAppGUID: f.foreign.GUID, Protocol: "tcp", StartPort: 1, EndPort: 65535}
	if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{webToAPI, foreignToForeign}); err != nil {
		t.Fatal(err)
	}

	// A developer of dev can list the policy whose source is in dev, and an
	// auditor of prod can list it through its destination. A member of the
	// other organization can list only that organization's policy.
	devUser, prodAuditor, otherUser := uuid.NewString(), uuid.NewString(), uuid.NewString()
	seed.role(devUser, "space_developer", "", f.dev)
	seed.role(prodAuditor, "space_auditor", "", f.prod)
	seed.role(otherUser, "space_developer", "", f.others)
	for _, tc := range []struct {
		user string
		want []store.NetworkPolicy
	}{
		{devUser, []store.NetworkPolicy{webToAPI}},
		{prodAuditor, []store.NetworkPolicy{webToAPI}},
		{otherUser, []store.NetworkPolicy{foreignToForeign}},
		{uuid.NewString(), []store.NetworkPolicy{}},
	} {
		got, err := f.st.NetworkPolicies(ctx, store.Visibility{UserGUID: tc.user}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("NetworkPolicies for user %s (-want +got):\n%s", tc.user, diff)
		}
	}
}

func TestNetworkPoliciesCascadeAndSpace(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	ctx := context.Background()
	webToAPI := store.NetworkPolicy{SourceAppGUID: f.web.GUID, DestinationAppGUID: f.api.GUID, Protocol: "tcp", StartPort: 8080, EndPort: 8090}
	foreignToAPI := store.NetworkPolicy{SourceAppGUID: f.foreign.GUID, DestinationAppGUID: f.api.GUID, Protocol: "udp", StartPort: 53, EndPort: 53}
	apiToWeb := store.NetworkPolicy{SourceAppGUID: f.api.GUID, DestinationAppGUID: f.web.GUID, Protocol: "tcp", StartPort: 8080, EndPort: 8080}
	if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{webToAPI, foreignToAPI, apiToWeb}); err != nil {
		t.Fatal(err)
	}

	inProd, err := f.st.SpaceNetworkPolicies(ctx, f.prod)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.SpaceNetworkPolicy{
		{NetworkPolicy: webToAPI, SourceSpaceGUID: f.dev, DestinationSpaceGUID: f.prod},
		{NetworkPolicy: foreignToAPI, SourceSpaceGUID: f.others, DestinationSpaceGUID: f.prod},
	}
	if diff := cmp.Diff(want, inProd); diff != "" {
		t.Errorf("SpaceNetworkPolicies(prod) (-want +got):\n%s", diff)
	}

	// Deleting the source app of one policy and the destination of another
	// deletes both.
	if err := store.DeleteApp(ctx, f.st.DB(), f.web.GUID); err != nil {
		t.Fatal(err)
	}
	all, err := f.st.NetworkPolicies(ctx, store.Visibility{All: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.NetworkPolicy{foreignToAPI}, all); diff != "" {
		t.Errorf("NetworkPolicies after deleting the app web (-want +got):\n%s", diff)
	}
}

func TestNetworkPoliciesCreateUnknownApps(t *testing.T) {
	f := newNetworkPolicyFixture(t)
	ctx := context.Background()
	missingDestination := store.NetworkPolicy{SourceAppGUID: f.web.GUID, DestinationAppGUID: uuid.NewString(), Protocol: "tcp", StartPort: 80, EndPort: 80}
	if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{missingDestination}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("create with an unknown destination = %v, want ErrNotFound", err)
	}
	missingSource := store.NetworkPolicy{SourceAppGUID: uuid.NewString(), DestinationAppGUID: f.web.GUID, Protocol: "tcp", StartPort: 80, EndPort: 80}
	var fkErr *store.ForeignKeyError
	if err := store.CreateNetworkPolicies(ctx, f.st.DB(), []store.NetworkPolicy{missingSource}); !errors.As(err, &fkErr) {
		t.Errorf("create with an unknown source = %v, want a ForeignKeyError", err)
	}
}

// TestNetworkPoliciesNotify checks that a policy change is announced on
// the routing channel with the destination app's space GUID, including
// when deleting the source app removes the policy.
func TestNetworkPoliciesNotify(t *testing.T) {
	url := pgtest.NewURL(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev, prod := seed.space(org, "dev", nil), seed.space(org, "prod", nil)
	web, api := seed.app(dev, "web", nil), seed.app(prod, "api", nil)
	ctx := context.Background()

	listener := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	defer listener.Close()
	if err := listener.Listen(store.RoutesChannel); err != nil {
		t.Fatal(err)
	}
	// waitFor reads notifications until one carries want. Other spaces may
	// be announced too, by the triggers on apps.
	waitFor := func(t *testing.T, want string) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			select {
			case n := <-listener.Notify:
				if n == nil {
					t.Fatal("the listener reconnected and may have lost notifications")
				}
				if n.Extra == want {
					return
				}
			case <-deadline:
				t.Fatalf("no notification with payload %s on %s", want, store.RoutesChannel)
			}
		}
	}

	webToAPI := store.NetworkPolicy{SourceAppGUID: web.GUID, DestinationAppGUID: api.GUID, Protocol: "tcp", StartPort: 8080, EndPort: 8080}
	if err := store.CreateNetworkPolicies(ctx, st.DB(), []store.NetworkPolicy{webToAPI}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, prod)
	if err := store.DeleteApp(ctx, st.DB(), web.GUID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, prod)
}
