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

// routesListener returns a listener on store.RoutesChannel of the database
// url, with the connection established.
func routesListener(t *testing.T, url string) *pq.Listener {
	t.Helper()
	listener := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { listener.Close() })
	if err := listener.Listen(store.RoutesChannel); err != nil {
		t.Fatal(err)
	}
	return listener
}

// nextPayloads drains the notifications of listener until none arrives for
// a second, and returns their payloads in arrival order. The quiet second
// only ends the read; the test never asserts on timing.
func nextPayloads(t *testing.T, listener *pq.Listener) []string {
	t.Helper()
	payloads := []string{}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-listener.Notify:
			if n == nil {
				t.Fatal("the listener reconnected, so notifications may be lost")
			}
			payloads = append(payloads, n.Extra)
		case <-time.After(time.Second):
			if len(payloads) > 0 {
				return payloads
			}
		case <-deadline:
			return payloads
		}
	}
}

func TestRoutesNotify(t *testing.T) {
	url := pgtest.NewURL(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	web := seed.app(dev, "web", nil)
	api := seed.app(prod, "api", nil)
	domain, err := store.EnsureDomain(ctx, st.DB(), "apps.ferry.test", false)
	if err != nil {
		t.Fatal(err)
	}
	route, err := store.CreateRoute(ctx, st.DB(), store.Route{GUID: uuid.NewString(), Host: "shop",
		Protocol: store.RouteProtocolHTTP, DomainGUID: domain.GUID, SpaceGUID: dev})
	if err != nil {
		t.Fatal(err)
	}
	destinations := []store.Destination{
		{GUID: uuid.NewString(), AppGUID: web.GUID, ProcessType: "web", Port: 8080, Protocol: store.DestinationProtocolHTTP1},
		{GUID: uuid.NewString(), AppGUID: api.GUID, ProcessType: "web", Port: 8080, Protocol: store.DestinationProtocolHTTP1},
	}
	if err := store.AddDestinations(ctx, st.DB(), route.GUID, destinations); err != nil {
		t.Fatal(err)
	}

	listener := routesListener(t, url)

	t.Run("destination delete", func(t *testing.T) {
		if _, err := store.DeleteDestination(ctx, st.DB(), route.GUID, destinations[1].GUID); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{prod}, nextPayloads(t, listener)); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
	})

	t.Run("route delete", func(t *testing.T) {
		if err := store.DeleteRoute(ctx, st.DB(), route.GUID); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{dev}, nextPayloads(t, listener)); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
	})

	t.Run("dedicated gateway change", func(t *testing.T) {
		if err := store.SetOrganizationDedicatedGateway(ctx, st.DB(), org, true); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{""}, nextPayloads(t, listener)); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
	})

	t.Run("app delete", func(t *testing.T) {
		if err := store.DeleteApp(ctx, st.DB(), api.GUID); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{prod}, nextPayloads(t, listener)); diff != "" {
			t.Errorf("notifications (-want +got):\n%s", diff)
		}
	})
}

func TestDedicatedGatewayDomains(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := tenancySeed{t, st}
	dedicated := seed.org("dedicated", nil)
	plain := seed.org("plain", nil)
	if err := store.SetOrganizationDedicatedGateway(ctx, st.DB(), dedicated, true); err != nil {
		t.Fatal(err)
	}
	domain := func(name, org string) string {
		t.Helper()
		d, err := store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: name, OrganizationGUID: org})
		if err != nil {
			t.Fatal(err)
		}
		return d.GUID
	}
	own := domain("dedicated.example.com", dedicated)
	other := domain("plain.example.com", plain)
	shared := domain("shared.example.com", "")

	got, err := st.DedicatedGatewayDomains(ctx, []string{own, other, shared, uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{own: dedicated}, got); diff != "" {
		t.Errorf("DedicatedGatewayDomains (-want +got):\n%s", diff)
	}
}

func TestAppSpaceGUID(t *testing.T) {
	st := pgtest.NewStore(t)
	seed := appSeed{tenancySeed{t, st}}
	space := seed.space(seed.org("acme", nil), "dev", nil)
	app := seed.app(space, "web", nil)

	got, err := st.AppSpaceGUID(context.Background(), app.GUID)
	if err != nil || got != space {
		t.Errorf("AppSpaceGUID() = %q, %v, want %q", got, err, space)
	}
	if _, err := st.AppSpaceGUID(context.Background(), uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AppSpaceGUID(unknown) error = %v, want ErrNotFound", err)
	}
}
