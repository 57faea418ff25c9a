package k8sbackend

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// webServiceSlice returns an EndpointSlice of a web Service as
// Kubernetes' EndpointSlice controller writes it, with one endpoint per
// address, each ready unless listed in notReady.
func webServiceSlice(namespace, service string, addressType discoveryv1.AddressType, addresses []string,
	notReady ...string) discoveryv1.EndpointSlice {
	labels := ownerLabels("", ComponentApp)
	labels[discoveryv1.LabelServiceName] = service
	labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
	slice := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-" + strings.ToLower(string(addressType)), Namespace: namespace, Labels: labels},
		AddressType: addressType,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(AppPortName), Port: ptr.To[int32](8080)}},
	}
	for _, a := range addresses {
		ready := !slices.Contains(notReady, a)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
		})
	}
	return slice
}

// sliceAddresses returns the addresses of a slice's endpoints, each
// followed by "!" when the endpoint is not ready.
func sliceAddresses(slice *discoveryv1.EndpointSlice) []string {
	var out []string
	for _, e := range slice.Endpoints {
		for _, a := range e.Addresses {
			if e.Conditions.Ready == nil || !*e.Conditions.Ready {
				a += "!"
			}
			out = append(out, a)
		}
	}
	return out
}

func TestMakeInternalRouteSlices(t *testing.T) {
	cfg := InternalRouteConfig{Namespace: "internal"}
	web1, web2 := ProcessServiceName("p1"), ProcessServiceName("p2")
	sources := map[string][]discoveryv1.EndpointSlice{
		SpaceNamespace("dev") + "/" + web1: {
			webServiceSlice(SpaceNamespace("dev"), web1, discoveryv1.AddressTypeIPv4, []string{"10.88.0.12", "10.88.0.11"}, "10.88.0.12"),
			webServiceSlice(SpaceNamespace("dev"), web1, discoveryv1.AddressTypeIPv6, []string{"fd00::1"}),
		},
		SpaceNamespace("prod") + "/" + web2: {
			webServiceSlice(SpaceNamespace("prod"), web2, discoveryv1.AddressTypeIPv4, []string{"10.88.0.21"}),
		},
	}
	lookup := func(namespace, service string) []discoveryv1.EndpointSlice { return sources[namespace+"/"+service] }
	route := func(destinations ...RouteDestination) RouteSpec {
		return RouteSpec{GUID: "r1", Host: "api", Domain: "apps.internal", Protocol: RouteProtocolHTTP, Internal: true,
			SpaceGUID: "dev", OrgGUID: "o1", Destinations: destinations}
	}
	d1 := RouteDestination{AppGUID: "a1", ProcessGUID: "p1", ServiceName: web1}
	d1Again := RouteDestination{AppGUID: "a1", ProcessGUID: "p1", ServiceName: web1, Weight: 3}
	d2 := RouteDestination{AppGUID: "a2", ProcessGUID: "p2", ServiceName: web2}
	serviceName, err := InternalRouteServiceName("api", "apps.internal")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		route InternalRouteSpec
		// want maps each slice name to its addresses.
		want    map[string][]string
		wantErr error
	}{
		{
			name: "destinations in two spaces",
			route: InternalRouteSpec{Route: route(d1, d2),
				DestinationSpaces: map[string]string{"p1": "dev", "p2": "prod"}},
			want: map[string][]string{
				InternalRouteEndpointSliceName(serviceName, "p1"): {"10.88.0.11", "10.88.0.12!"},
				InternalRouteEndpointSliceName(serviceName, "p2"): {"10.88.0.21"},
			},
		},
		{
			name: "one process twice",
			route: InternalRouteSpec{Route: route(d1, d1Again),
				DestinationSpaces: map[string]string{"p1": "dev"}},
			want: map[string][]string{InternalRouteEndpointSliceName(serviceName, "p1"): {"10.88.0.11", "10.88.0.12!"}},
		},
		{
			name: "Service without slices",
			route: InternalRouteSpec{Route: route(d2),
				DestinationSpaces: map[string]string{"p2": "dev"}},
			want: map[string][]string{InternalRouteEndpointSliceName(serviceName, "p2"): nil},
		},
		{
			name:  "no destinations",
			route: InternalRouteSpec{Route: route(), DestinationSpaces: map[string]string{}},
			want:  map[string][]string{},
		},
		{
			name:    "destination without space",
			route:   InternalRouteSpec{Route: route(d1), DestinationSpaces: map[string]string{}},
			wantErr: errors.New("the space of destination process p1 is missing"),
		},
		{
			name: "host not a DNS label",
			route: InternalRouteSpec{Route: RouteSpec{GUID: "r2", Host: "a_b", Domain: "apps.internal", Protocol: RouteProtocolHTTP,
				Internal: true, Destinations: []RouteDestination{d1}}, DestinationSpaces: map[string]string{"p1": "dev"}},
			wantErr: ErrUnsupportedRoute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := makeInternalRouteSlices(tt.route, cfg, lookup)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("makeInternalRouteSlices = %d slices, want error %v", len(got), tt.wantErr)
				}
				if !errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error()) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotAddresses := map[string][]string{}
			for _, s := range got {
				gotAddresses[s.Name] = sliceAddresses(s)
				if s.Namespace != "internal" || s.Labels[discoveryv1.LabelServiceName] != serviceName ||
					s.Labels[LabelRouteGUID] != tt.route.Route.GUID {
					t.Errorf("slice %s in %s has labels %v, want namespace internal, Service %s and route %s",
						s.Name, s.Namespace, s.Labels, serviceName, tt.route.Route.GUID)
				}
			}
			if diff := cmp.Diff(tt.want, gotAddresses); diff != "" {
				t.Errorf("slice addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(slices.Sorted(maps.Keys(tt.want)), slices.Sorted(slices.Values(internalRouteSliceNames(tt.route)))); diff != "" {
				t.Errorf("internalRouteSliceNames (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInternalRouteEnqueueSlice(t *testing.T) {
	r := NewInternalRouteReconciler(InternalRouteReconcilerOptions{Client: fake.NewClientset(),
		Config: InternalRouteConfig{Namespace: "internal"}})
	defer r.queue.ShutDown()
	shared := InternalRouteSpec{
		Route: RouteSpec{GUID: "shared", Destinations: []RouteDestination{
			{ProcessGUID: "p1", ServiceName: ProcessServiceName("p1")},
			{ProcessGUID: "p2", ServiceName: ProcessServiceName("p2")},
		}},
		DestinationSpaces: map[string]string{"p1": "dev", "p2": "prod"},
	}
	single := InternalRouteSpec{
		Route:             RouteSpec{GUID: "single", Destinations: []RouteDestination{{ProcessGUID: "p1", ServiceName: ProcessServiceName("p1")}}},
		DestinationSpaces: map[string]string{"p1": "dev"},
	}
	r.setRoutes(map[string]InternalRouteSpec{"shared": shared, "single": single})

	ownSlice := func(route string) *discoveryv1.EndpointSlice {
		labels := ownerLabels("", ComponentRouting)
		labels[LabelRouteGUID] = route
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "i-x", Namespace: "internal", Labels: labels}}
	}
	source := func(namespace, process string) *discoveryv1.EndpointSlice {
		s := webServiceSlice(namespace, ProcessServiceName(process), discoveryv1.AddressTypeIPv4, nil)
		return &s
	}
	tests := []struct {
		name string
		obj  any
		want []string
	}{
		{name: "source of two routes", obj: source(SpaceNamespace("dev"), "p1"), want: []string{"shared", "single"}},
		{name: "source of one route", obj: source(SpaceNamespace("prod"), "p2"), want: []string{"shared"}},
		{name: "source in another namespace", obj: source(SpaceNamespace("prod"), "p1")},
		{name: "Service of no route", obj: source(SpaceNamespace("dev"), "p9")},
		{name: "own slice", obj: ownSlice("gone"), want: []string{"gone"}},
		{name: "deleted own slice", obj: cache.DeletedFinalStateUnknown{Key: "internal/i-x", Obj: ownSlice("shared")},
			want: []string{"shared"}},
		{name: "slice without a Service", obj: &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "x"}}},
		{name: "not a slice", obj: "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.enqueueSlice(tt.obj)
			var got []string
			for r.queue.Len() > 0 {
				key, _ := r.queue.Get()
				got = append(got, key)
				r.queue.Done(key)
				r.queue.Forget(key)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("queued routes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStoreDesiredInternalRoutes(t *testing.T) {
	f := newRouteFixture(t)
	ctx := t.Context()
	internal, err := store.EnsureDomain(ctx, f.st.DB(), "apps.internal", true)
	if err != nil {
		t.Fatal(err)
	}
	prodApp, err := store.CreateApp(ctx, f.st.DB(), store.App{GUID: uuid.NewString(), Name: "api", SpaceGUID: f.other,
		LifecycleType: store.LifecycleBuildpack})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureProcessTypes(ctx, f.st.DB(), prodApp.GUID, []string{ProcessTypeWeb}); err != nil {
		t.Fatal(err)
	}
	prodProcesses, err := store.AppProcesses(ctx, f.st.DB(), prodApp.GUID)
	if err != nil || len(prodProcesses) != 1 {
		t.Fatalf("processes of app api = %+v, %v, want one web process", prodProcesses, err)
	}
	prodWeb := prodProcesses[0].GUID

	newRoute := func(host string) string {
		r, err := store.CreateRoute(ctx, f.st.DB(), store.Route{GUID: uuid.NewString(), Host: host,
			Protocol: store.RouteProtocolHTTP, DomainGUID: internal.GUID, SpaceGUID: f.space})
		if err != nil {
			t.Fatal(err)
		}
		return r.GUID
	}
	both := newRoute("both")
	f.addDestinations(t, both, ProcessTypeWeb, f.app1, prodApp.GUID)
	f.addDestinations(t, both, "worker", f.app2)
	unmapped := newRoute("unmapped")
	f.route(t, f.space, "shop", "", f.app1)

	specs, err := StoreDesiredRoutes{Store: f.st, Installation: "blue"}.InternalRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("InternalRoutes returned %d routes, want both and unmapped: %+v", len(specs), specs)
	}

	wantBoth := InternalRouteSpec{
		Route: RouteSpec{Installation: "blue", GUID: both, Host: "both", Domain: "apps.internal", Protocol: RouteProtocolHTTP,
			Internal: true, SpaceGUID: f.space, OrgGUID: specs[0].Route.OrgGUID},
		DestinationSpaces: map[string]string{f.webs[f.app1]: f.space, prodWeb: f.other},
	}
	for _, d := range []struct{ app, process string }{{f.app1, f.webs[f.app1]}, {prodApp.GUID, prodWeb}} {
		wantBoth.Route.Destinations = append(wantBoth.Route.Destinations,
			RouteDestination{AppGUID: d.app, ProcessGUID: d.process, ServiceName: ProcessServiceName(d.process)})
	}
	sortDestinations := cmp.Transformer("sort", func(in []RouteDestination) []RouteDestination {
		out := slices.Clone(in)
		slices.SortFunc(out, func(a, b RouteDestination) int { return strings.Compare(a.ProcessGUID, b.ProcessGUID) })
		return out
	})
	if specs[0].Route.OrgGUID == "" {
		t.Errorf("OrgGUID of route both is empty, want the organization of its space")
	}
	if diff := cmp.Diff(wantBoth, specs[0], sortDestinations); diff != "" {
		t.Errorf("route both (-want +got):\n%s", diff)
	}
	if specs[1].Route.GUID != unmapped || len(specs[1].Route.Destinations) != 0 {
		t.Errorf("second route = %+v, want %s without destinations", specs[1].Route, unmapped)
	}
}
