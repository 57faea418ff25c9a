package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

func TestInternalRoutes(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	prod := seed.space(org, "prod", nil)
	web := seed.app(dev, "web", nil)
	worker := seed.app(dev, "worker", nil)
	api := seed.app(prod, "api", nil)

	internal, err := store.EnsureDomain(ctx, st.DB(), "apps.internal", true)
	if err != nil {
		t.Fatal(err)
	}
	external, err := store.EnsureDomain(ctx, st.DB(), "apps.ferry.test", false)
	if err != nil {
		t.Fatal(err)
	}
	route := func(domain store.Domain, host, space string, apps ...string) store.Route {
		t.Helper()
		r, err := store.CreateRoute(ctx, st.DB(), store.Route{GUID: uuid.NewString(), Host: host,
			Protocol: store.RouteProtocolHTTP, DomainGUID: domain.GUID, SpaceGUID: space})
		if err != nil {
			t.Fatal(err)
		}
		var destinations []store.Destination
		for _, app := range apps {
			destinations = append(destinations, store.Destination{GUID: uuid.NewString(), AppGUID: app,
				ProcessType: "web", Port: 8080, Protocol: store.DestinationProtocolHTTP1})
		}
		if err := store.AddDestinations(ctx, st.DB(), r.GUID, destinations); err != nil {
			t.Fatal(err)
		}
		return r
	}
	both := route(internal, "both", dev, web.GUID, worker.GUID, api.GUID)
	unmapped := route(internal, "unmapped", prod)
	route(external, "shop", dev, web.GUID)

	got, err := st.InternalRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("InternalRoutes returned %d routes, want the 2 of the internal domain: %+v", len(got), got)
	}

	if got[0].GUID != both.GUID || got[1].GUID != unmapped.GUID {
		t.Errorf("route GUIDs = %s, %s, want %s, %s (oldest first)", got[0].GUID, got[1].GUID, both.GUID, unmapped.GUID)
	}
	if !got[0].DomainInternal || got[0].DomainName != "apps.internal" || got[0].Host != "both" {
		t.Errorf("route = %+v, want host both on the internal domain apps.internal", got[0].Route)
	}
	if got[0].SpaceGUID != dev || got[0].OrgGUID != org {
		t.Errorf("space, org = %s, %s, want %s, %s", got[0].SpaceGUID, got[0].OrgGUID, dev, org)
	}

	wantSpaces := []string{dev, prod}
	slices.Sort(wantSpaces)
	if diff := cmp.Diff(wantSpaces, got[0].DestinationSpaceGUIDs); diff != "" {
		t.Errorf("destination spaces of both (-want +got):\n%s", diff)
	}
	var apps []string
	for _, d := range got[0].Destinations {
		apps = append(apps, d.AppGUID)
	}
	if diff := cmp.Diff([]string{web.GUID, worker.GUID, api.GUID}, apps); diff != "" {
		t.Errorf("destination apps of both (-want +got):\n%s", diff)
	}

	if got[1].DestinationSpaceGUIDs == nil || len(got[1].DestinationSpaceGUIDs) != 0 {
		t.Errorf("destination spaces of unmapped = %#v, want an empty slice", got[1].DestinationSpaceGUIDs)
	}
	if got[1].Destinations == nil || len(got[1].Destinations) != 0 {
		t.Errorf("destinations of unmapped = %#v, want an empty slice", got[1].Destinations)
	}
}
