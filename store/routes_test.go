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

func TestUDPRoutes(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	org := seed.org("acme", nil)
	dev := seed.space(org, "dev", nil)
	other := seed.space(org, "other", nil)
	dns := seed.app(dev, "dns", nil)

	if err := st.EnsureDefaultRouting(ctx, "apps.ferry.test", "apps.internal", "1024-1033"); err != nil {
		t.Fatal(err)
	}
	groups, err := st.RouterGroups(ctx, store.DefaultTCPRouterGroup)
	if err != nil || len(groups) != 1 {
		t.Fatalf("router groups = %v, %v", groups, err)
	}
	group := groups[0].GUID
	domain, err := store.CreateDomain(ctx, st.DB(), store.Domain{GUID: uuid.NewString(), Name: "tcp.ferry.test", RouterGroupGUID: group})
	if err != nil {
		t.Fatal(err)
	}
	create := func(protocol string, port int, space string) (store.Route, error) {
		return store.CreateRoute(ctx, st.DB(), store.Route{GUID: uuid.NewString(), Protocol: protocol, Port: port,
			DomainGUID: domain.GUID, RouterGroupGUID: group, SpaceGUID: space})
	}

	udp, err := create(store.RouteProtocolUDP, 1024, dev)
	if err != nil {
		t.Fatal(err)
	}
	if udp.Port != 1024 || udp.URL() != "tcp.ferry.test:1024" || !udp.HasPort() {
		t.Errorf("UDP route = %+v, want tcp.ferry.test:1024", udp)
	}
	// A TCP route may take the port of a UDP route, but not a second UDP
	// route.
	tcp, err := create(store.RouteProtocolTCP, 1024, other)
	if err != nil {
		t.Fatalf("TCP route on the UDP route's port: %v", err)
	}
	if _, err := create(store.RouteProtocolUDP, 1024, other); !store.IsUnique(err, store.ConstraintRouteDomainPort) {
		t.Errorf("second UDP route on port 1024: err = %v, want a unique violation on %s", err, store.ConstraintRouteDomainPort)
	}
	udpPorts, err := st.RouterGroupPorts(ctx, group, store.RouteProtocolUDP)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1024}, udpPorts); diff != "" {
		t.Errorf("UDP ports (-want +got):\n%s", diff)
	}

	found, err := store.RouteAt(ctx, st.DB(), store.RouteAddress{DomainGUID: domain.GUID, Port: 1024, Protocol: store.RouteProtocolUDP})
	if err != nil || found.GUID != udp.GUID {
		t.Errorf("RouteAt udp 1024 = %+v, %v, want the UDP route", found, err)
	}
	found, err = store.RouteAt(ctx, st.DB(), store.RouteAddress{DomainGUID: domain.GUID, Port: 1024, Protocol: store.RouteProtocolTCP})
	if err != nil || found.GUID != tcp.GUID {
		t.Errorf("RouteAt tcp 1024 = %+v, %v, want the TCP route", found, err)
	}
	if _, err := store.RouteAt(ctx, st.DB(), store.RouteAddress{DomainGUID: domain.GUID, Port: 1025, Protocol: store.RouteProtocolUDP}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RouteAt on a free port: err = %v, want ErrNotFound", err)
	}

	if err := store.AddDestinations(ctx, st.DB(), udp.GUID, []store.Destination{{GUID: uuid.NewString(), AppGUID: dns.GUID,
		ProcessType: "web", Port: 5353, Protocol: store.DestinationProtocolUDP}}); err != nil {
		t.Fatal(err)
	}
	routes, err := st.DestinationsForSpace(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Protocol != store.RouteProtocolUDP || len(routes[0].Destinations) != 1 ||
		routes[0].Destinations[0].Protocol != store.DestinationProtocolUDP {
		t.Errorf("DestinationsForSpace = %+v, want the UDP route with its udp destination", routes)
	}

	mapped, err := store.AppHasDestinations(ctx, st.DB(), dns.GUID)
	if err != nil || !mapped {
		t.Errorf("AppHasDestinations = %v, %v, want true", mapped, err)
	}
	removed, err := store.DeleteAppDestinations(ctx, st.DB(), dns.GUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].RouteGUID != udp.GUID {
		t.Errorf("DeleteAppDestinations = %+v, want the UDP route's destination", removed)
	}
	if mapped, _ := store.AppHasDestinations(ctx, st.DB(), dns.GUID); mapped {
		t.Error("AppHasDestinations after deleting them = true, want false")
	}
	if _, err := st.Route(ctx, udp.GUID, store.Visibility{All: true}); err != nil {
		t.Errorf("UDP route after its destinations went: %v, want it kept", err)
	}

	shared, err := store.RouteSharedWith(ctx, st.DB(), tcp.GUID, dev)
	if err != nil || shared {
		t.Errorf("RouteSharedWith before sharing = %v, %v, want false", shared, err)
	}
	if err := store.ShareRoute(ctx, st.DB(), tcp.GUID, []string{dev}); err != nil {
		t.Fatal(err)
	}
	if shared, _ := store.RouteSharedWith(ctx, st.DB(), tcp.GUID, dev); !shared {
		t.Error("RouteSharedWith after sharing = false, want true")
	}
}
