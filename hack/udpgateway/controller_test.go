package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int32 {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return int32(conn.LocalAddr().(*net.UDPAddr).Port)
}

func TestControllerForwardsAndWritesStatus(t *testing.T) {
	backend := echoBackend(t, "pod")
	port := freeUDPPort(t)

	slice := endpointSlice("space-a", "echo", backend.Addr().String())
	slice.Ports[0].Port = ptr(int32(backend.Port()))
	kube := kubefake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "space-a"}},
		udpService("space-a", "echo", 7001),
		slice,
	)
	// In gateway-api v1.6.3 the fake NewClientset rejects Gateways ("no
	// matches for ... gateways"), and both constructors store the objects
	// they are given under the guessed resource "gatewaies". So the test
	// uses NewSimpleClientset and creates the objects through typed clients.
	gateways := gatewayfake.NewSimpleClientset()
	setup := context.Background()
	if _, err := gateways.GatewayV1().GatewayClasses().Create(setup, &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: "ferry-udp"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: testController},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := gateways.GatewayV1().Gateways("ferry-system").Create(setup,
		gateway("ferry-udp", "ferry-udp", 0, udpListener("udp", port, gatewayv1.NamespacesFromAll)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := gateways.GatewayV1alpha2().UDPRoutes("space-a").Create(setup,
		udpRoute("space-a", "r1", []parent{{gateway: "ferry-udp", section: "udp"}}, backendRef("echo", 7001, nil)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := ProxyOptions{MaxSessions: 10, IdleTimeout: time.Minute, AllowedCIDR: loopback, Logger: slog.New(slog.DiscardHandler)}
	c := NewController(kube, gateways, testController, opts, time.Minute, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	eventually(t, "the Gateway to be Programmed", func() bool {
		gw, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, "ferry-udp", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(gw.Status.Conditions, "Programmed")
	})
	eventually(t, "the UDPRoute to be Accepted", func() bool {
		r, err := gateways.GatewayV1alpha2().UDPRoutes("space-a").Get(ctx, "r1", metav1.GetOptions{})
		return err == nil && len(r.Status.Parents) == 1 && meta.IsStatusConditionTrue(r.Status.Parents[0].Conditions, "Accepted")
	})

	class, err := gateways.GatewayV1().GatewayClasses().Get(ctx, "ferry-udp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(class.Status.Conditions, "Accepted") {
		t.Errorf("GatewayClass conditions = %+v, want Accepted", class.Status.Conditions)
	}
	route, err := gateways.GatewayV1alpha2().UDPRoutes("space-a").Get(ctx, "r1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(route.Status.Parents[0].Conditions, "ResolvedRefs") {
		t.Errorf("UDPRoute parent conditions = %+v, want ResolvedRefs", route.Status.Parents[0].Conditions)
	}
	gw, err := gateways.GatewayV1().Gateways("ferry-system").Get(ctx, "ferry-udp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gw.Status.Listeners) != 1 || gw.Status.Listeners[0].AttachedRoutes != 1 {
		t.Errorf("listener status = %+v, want one listener with 1 attached route", gw.Status.Listeners)
	}

	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(bindAddress, uint16(port))))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := exchange(t, conn, "hi"); got != "pod: hi" {
		t.Errorf("reply = %q, want %q", got, "pod: hi")
	}
}

func TestResolveSkipsEndpointsOutsideCIDR(t *testing.T) {
	w := baseWorld()
	w.EndpointSlices = []*discoveryv1.EndpointSlice{endpointSlice("space-a", "echo", "127.0.0.1")}
	w.Gateways = []*gatewayv1.Gateway{gateway("ferry-udp", "ferry-udp", 0, udpListener("udp-1040", 1040, gatewayv1.NamespacesFromAll))}
	w.Routes = []*gatewayv1alpha2.UDPRoute{udpRoute("space-a", "r1", []parent{{gateway: "ferry-udp"}}, backendRef("echo", 7001, nil))}

	plan := resolve(w)

	if got := plan.Listeners[1040].Backends; len(got) != 0 {
		t.Errorf("backends = %v, want none for an endpoint outside 10.88.0.0/16", got)
	}
}
