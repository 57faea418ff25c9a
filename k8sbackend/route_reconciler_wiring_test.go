package k8sbackend

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// TestRunControllerRouting checks that the controller runs the route
// reconciler when routing is enabled.
func TestRunControllerRouting(t *testing.T) {
	f := newRouteFixture(t)
	route := f.route(t, f.space, "shop", "", f.app1)
	client, gateways := fake.NewClientset(), gatewayfake.NewSimpleClientset()
	namespace := SpaceNamespace(f.space)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace,
		Labels: map[string]string{LabelManagedBy: ManagedByFerry, LabelInstallation: DefaultInstallation, LabelSpaceGUID: f.space}}}
	if _, err := client.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.RoutingEnabled = true
	cfg.Gateway = GatewayRef{Namespace: "ferry-system", Name: "ferry"}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunController(ctx, ControllerOptions{Store: f.st, Client: client, Gateways: gateways,
			Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Identity: "test", Resync: time.Second})
	}()
	defer func() {
		cancel()
		<-done
	}()

	waitForHTTPRoute(t, gateways, namespace, RouteObjectName(route))
}
