package k8stest_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/k8sbackend/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// rbacPropagationTimeout bounds the wait for the RBAC authorizer, which
// reads bindings from an informer cache, to see a new RoleBinding.
const rbacPropagationTimeout = 2 * time.Minute

func TestServerReportsVersion(t *testing.T) {
	s := k8stest.Shared(t)
	t.Logf("etcd and kube-apiserver started in %s", s.StartupDuration().Round(time.Millisecond))

	version, err := s.Clientset().Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("get server version: %v", err)
	}
	if !strings.HasPrefix(version.GitVersion, "v1.") {
		t.Errorf("server version = %q, want a v1.x release", version.GitVersion)
	}
	t.Logf("kube-apiserver %s", version.GitVersion)
}

func TestNewNamespaceCreatesFreshNamespaces(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	first := k8stest.NewNamespace(t)
	second := k8stest.NewNamespace(t)

	if first == second {
		t.Fatalf("NewNamespace returned %q twice", first)
	}
	for _, name := range []string{first, second} {
		if !strings.HasPrefix(name, "testnewnamespacecreatesfreshnamespaces-") {
			t.Errorf("namespace %q does not start with the test name", name)
		}
		ns, err := s.Clientset().CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get namespace %s: %v", name, err)
		}
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Errorf("namespace %s phase = %q, want Active", name, ns.Status.Phase)
		}
	}

	// The ServiceAccount admission plugin rejects pods in a namespace
	// without a "default" ServiceAccount.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "10.88.0.1:5000/ferry/probe:v1"}}},
	}
	created, err := s.Clientset().CoreV1().Pods(first).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if created.Spec.ServiceAccountName != "default" {
		t.Errorf("pod service account = %q, want default", created.Spec.ServiceAccountName)
	}
}

func TestDeploymentAndServiceRoundTrip(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	ns := k8stest.NewNamespace(t)
	client := s.Clientset()
	labels := map[string]string{"app": "web"}

	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "web",
					Image: "10.88.0.1:5000/ferry/web:v1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, deployment, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, service, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}

	gotDeployment, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	if diff := cmp.Diff(deployment.Spec.Template.Spec.Containers[0].Image, gotDeployment.Spec.Template.Spec.Containers[0].Image); diff != "" {
		t.Errorf("deployment image (-want +got):\n%s", diff)
	}
	if got := ptr.Deref(gotDeployment.Spec.Replicas, 0); got != 2 {
		t.Errorf("deployment replicas = %d, want 2", got)
	}
	// Defaults that only the API server fills in.
	if gotDeployment.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("deployment strategy = %q, want the default RollingUpdate", gotDeployment.Spec.Strategy.Type)
	}
	if got := ptr.Deref(gotDeployment.Spec.RevisionHistoryLimit, -1); got != 10 {
		t.Errorf("deployment revisionHistoryLimit = %d, want the default 10", got)
	}
	if got := gotDeployment.Spec.Template.Spec.Containers[0].ImagePullPolicy; got != corev1.PullIfNotPresent {
		t.Errorf("container imagePullPolicy = %q, want the default IfNotPresent", got)
	}

	gotService, err := client.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service: %v", err)
	}
	wantPorts := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromString("http")}}
	if diff := cmp.Diff(wantPorts, gotService.Spec.Ports); diff != "" {
		t.Errorf("service ports (-want +got):\n%s", diff)
	}
	if gotService.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("service type = %q, want the default ClusterIP", gotService.Spec.Type)
	}
	clusterIP, err := netip.ParseAddr(gotService.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix("10.96.0.0/16").Contains(clusterIP) {
		t.Errorf("service clusterIP = %q, want an address allocated from 10.96.0.0/16", gotService.Spec.ClusterIP)
	}
}

func TestInvalidServiceRejected(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	ns := k8stest.NewNamespace(t)

	tests := []struct {
		name      string
		service   corev1.Service
		wantField string
	}{
		{
			name: "port out of range",
			service: corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "big-port"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 70000}}},
			},
			wantField: "spec.ports[0].port",
		},
		{
			name: "name not a DNS label",
			service: corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "Web_App"},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}},
			},
			wantField: "metadata.name",
		},
		{
			name: "cluster IP service without ports",
			service: corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "no-ports"},
			},
			wantField: "spec.ports",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Clientset().CoreV1().Services(ns).Create(ctx, &tt.service, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create service error = %v, want Invalid", err)
			}
			if !hasCauseField(err, tt.wantField) {
				t.Errorf("create service error %v names no cause for field %s", err, tt.wantField)
			}
			_, err = s.Clientset().CoreV1().Services(ns).Get(ctx, tt.service.Name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("get rejected service error = %v, want NotFound", err)
			}
		})
	}
}

func TestHTTPRouteRoundTrip(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	if err := s.InstallGatewayCRDs(); err != nil {
		t.Fatalf("install Gateway API CRDs: %v", err)
	}
	ns := k8stest.NewNamespace(t)
	gateways, err := gatewayclient.NewForConfig(s.RESTConfig())
	if err != nil {
		t.Fatalf("create Gateway API client: %v", err)
	}
	routes := gateways.GatewayV1().HTTPRoutes(ns)

	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name:      "ferry",
				Namespace: ptr.To[gatewayv1.Namespace]("ferry-system"),
			}}},
			Hostnames: []gatewayv1.Hostname{"web.apps.example.test"},
			Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{
						Name: "web",
						Port: ptr.To[gatewayv1.PortNumber](8080),
					},
				}}},
			}},
		},
	}
	if _, err := routes.Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}

	got, err := routes.Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get HTTPRoute: %v", err)
	}
	if diff := cmp.Diff(route.Spec.Hostnames, got.Spec.Hostnames); diff != "" {
		t.Errorf("hostnames (-want +got):\n%s", diff)
	}
	// Defaults from the CRD's OpenAPI schema, applied by the API server.
	wantParent := gatewayv1.ParentReference{
		Group:     ptr.To[gatewayv1.Group]("gateway.networking.k8s.io"),
		Kind:      ptr.To[gatewayv1.Kind]("Gateway"),
		Namespace: ptr.To[gatewayv1.Namespace]("ferry-system"),
		Name:      "ferry",
	}
	if diff := cmp.Diff([]gatewayv1.ParentReference{wantParent}, got.Spec.ParentRefs); diff != "" {
		t.Errorf("parentRefs (-want +got):\n%s", diff)
	}
	if len(got.Spec.Rules) != 1 {
		t.Fatalf("got %d rules, want 1", len(got.Spec.Rules))
	}
	wantMatches := []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{
		Type:  ptr.To(gatewayv1.PathMatchPathPrefix),
		Value: ptr.To("/"),
	}}}
	if diff := cmp.Diff(wantMatches, got.Spec.Rules[0].Matches); diff != "" {
		t.Errorf("rule matches (-want +got):\n%s", diff)
	}
	wantBackend := gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To[gatewayv1.Group](""),
			Kind:  ptr.To[gatewayv1.Kind]("Service"),
			Name:  "web",
			Port:  ptr.To[gatewayv1.PortNumber](8080),
		},
		Weight: ptr.To[int32](1),
	}
	if len(got.Spec.Rules[0].BackendRefs) != 1 {
		t.Fatalf("got %d backendRefs, want 1", len(got.Spec.Rules[0].BackendRefs))
	}
	if diff := cmp.Diff(wantBackend, got.Spec.Rules[0].BackendRefs[0].BackendRef); diff != "" {
		t.Errorf("backendRef (-want +got):\n%s", diff)
	}

	invalid := route.DeepCopy()
	invalid.Name = "bad-hostname"
	invalid.Spec.Hostnames = []gatewayv1.Hostname{"Web_App.example.test"}
	if _, err := routes.Create(ctx, invalid, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("create HTTPRoute with hostname %q error = %v, want Invalid", invalid.Spec.Hostnames[0], err)
	}
}

func TestGatewayCRDsServeTCPRouteV1alpha2(t *testing.T) {
	s := k8stest.Shared(t)
	if err := s.InstallGatewayCRDs(); err != nil {
		t.Fatalf("install Gateway API CRDs: %v", err)
	}
	ns := k8stest.NewNamespace(t)

	tcpRoutes := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1alpha2", Resource: "tcproutes"}
	list, err := s.DynamicClient().Resource(tcpRoutes).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list v1alpha2 TCPRoutes: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("new namespace has %d TCPRoutes, want 0", len(list.Items))
	}
}

const widgetCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.k8stest.ferry.example
spec:
  group: k8stest.ferry.example
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.k8stest.ferry.example
spec:
  group: k8stest.ferry.example
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
`

func TestInstallCRDsFromMultiDocumentYAML(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "widgets.yaml"), widgetCRDs)
	writeFile(t, filepath.Join(dir, "README.md"), "not a manifest")

	if err := s.InstallCRDs(dir); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	if err := s.InstallCRDs(dir); err != nil {
		t.Fatalf("install the same CRDs again: %v", err)
	}

	ns := k8stest.NewNamespace(t)
	widgets := s.DynamicClient().Resource(schema.GroupVersionResource{Group: "k8stest.ferry.example", Version: "v1", Resource: "widgets"}).Namespace(ns)
	widget := func(name string, size int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "k8stest.ferry.example/v1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": name},
			"spec":       map[string]any{"size": size},
		}}
	}
	if _, err := widgets.Create(ctx, widget("small", 1), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create widget: %v", err)
	}
	if _, err := widgets.Create(ctx, widget("empty", 0), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("create widget with size 0 error = %v, want Invalid", err)
	}

	gadgets := s.DynamicClient().Resource(schema.GroupVersionResource{Group: "k8stest.ferry.example", Version: "v1", Resource: "gadgets"})
	if _, err := gadgets.List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list gadgets from the second document: %v", err)
	}
}

func TestInstallCRDsRejectsOtherKinds(t *testing.T) {
	s := k8stest.Shared(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n")

	err := s.InstallCRDs(dir)
	if err == nil || !strings.Contains(err.Error(), "v1 ConfigMap") {
		t.Errorf("install a ConfigMap as CRDs error = %v, want one naming v1 ConfigMap", err)
	}
	if err := s.InstallCRDs(t.TempDir()); err == nil {
		t.Error("install CRDs from an empty directory succeeded, want an error")
	}
}

func TestUserRESTConfigAppliesRBAC(t *testing.T) {
	s := k8stest.Shared(t)
	ctx := context.Background()
	ns := k8stest.NewNamespace(t)
	config, err := s.UserRESTConfig("alice", "developers")
	if err != nil {
		t.Fatalf("issue client certificate: %v", err)
	}
	alice, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatalf("create clientset: %v", err)
	}

	_, err = alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list configmaps without a binding error = %v, want Forbidden", err)
	}

	// A Role of its own, because the built-in view, edit and admin
	// ClusterRoles get their rules from the aggregation controller, which
	// does not run here.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}
	if _, err := s.Clientset().RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developers-configmap-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "developers"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmap-reader"},
	}
	if _, err := s.Clientset().RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role binding: %v", err)
	}
	deadline := time.Now().Add(rbacPropagationTimeout)
	for {
		_, err = alice.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("list configmaps with a read-only role error = %v, want success", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	configMap := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}
	if _, err := alice.CoreV1().ConfigMaps(ns).Create(ctx, configMap, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create configmap with a read-only role error = %v, want Forbidden", err)
	}
}

func hasCauseField(err error, field string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == field {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
