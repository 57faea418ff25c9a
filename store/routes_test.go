package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func destinationApps(routes []store.Route) map[string][]string {
	out := map[string][]string{}
	for _, r := range routes {
		out[r.Host] = []string{}
		for _, d := range r.Destinations {
			out[r.Host] = append(out[r.Host], d.AppGUID)
		}
	}
	return out
}

func TestRoutesForController(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	web := seed.app(dev, "web", nil)
	api := seed.app(prod, "api", nil)

	if err := st.EnsureDefaultRouting(ctx, "apps.ferry.test", "apps.internal", "1024-1033"); err != nil {
		t.Fatal(err)
	}
	domain, err := store.EnsureDomain(ctx, st.DB(), "apps.ferry.test", false)
	if err != nil {
		t.Fatal(err)
	}
	route := func(host, space string, apps ...string) store.Route {
		t.Helper()
		r, err := store.CreateRoute(ctx, st.DB(), store.Route{GUID: uuid.NewString(), Host: host, Protocol: store.RouteProtocolHTTP,
			DomainGUID: domain.GUID, SpaceGUID: space})
		if err != nil {
			t.Fatal(err)
		}
		var destinations []store.Destination
		for _, app := range apps {
			destinations = append(destinations, store.Destination{GUID: uuid.NewString(), AppGUID: app, ProcessType: "web",
				Port: 8080, Protocol: store.DestinationProtocolHTTP1})
		}
		if err := store.AddDestinations(ctx, st.DB(), r.GUID, destinations); err != nil {
			t.Fatal(err)
		}
		return r
	}
	route("shop", dev, web.GUID)
	route("both", dev, web.GUID, api.GUID)
	route("api", prod, api.GUID)
	route("orphan", dev)

	ofWeb, err := st.RoutesOfApp(ctx, web.GUID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"shop": {web.GUID}, "both": {web.GUID, api.GUID}}
	if diff := cmp.Diff(want, destinationApps(ofWeb)); diff != "" {
		t.Errorf("RoutesOfApp (-want +got):\n%s", diff)
	}
	if ofWeb[0].DomainName != "apps.ferry.test" || ofWeb[0].URL() != "shop.apps.ferry.test" {
		t.Errorf("route of web = %+v, want the domain's name", ofWeb[0])
	}

	ofProd, err := st.DestinationsForSpace(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{"both": {api.GUID}, "api": {api.GUID}}
	if diff := cmp.Diff(want, destinationApps(ofProd)); diff != "" {
		t.Errorf("DestinationsForSpace (-want +got):\n%s", diff)
	}

	// Deleting an app removes its destinations; deleting a space its routes.
	if err := store.DeleteApp(ctx, st.DB(), api.GUID); err != nil {
		t.Fatal(err)
	}
	ofWeb, err = st.RoutesOfApp(ctx, web.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]string{"shop": {web.GUID}, "both": {web.GUID}}, destinationApps(ofWeb)); diff != "" {
		t.Errorf("RoutesOfApp after deleting api (-want +got):\n%s", diff)
	}
	deleted, err := store.DeleteUnmappedRoutes(ctx, st.DB(), prod)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].Host != "api" {
		t.Errorf("unmapped routes deleted in prod = %+v, want the api route", deleted)
	}
}
