//go:build e2e

package smoke

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/e2e/envtest"
)

// Deadlines for waiting only. The environment pulls the image and starts
// the pod in seconds, so these leave room for a loaded machine.
const (
	rolloutTimeout = 3 * time.Minute
	routeTimeout   = 2 * time.Minute
	deleteTimeout  = 3 * time.Minute
)

func TestSmoke(t *testing.T) {
	env := envtest.Get(t)
	ctx := t.Context()
	routes, err := gatewayclient.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatalf("gateway API client: %v", err)
	}

	token := randomToken(t)
	app := "smoke-" + token
	namespace := "ferry-e2e-" + app
	host := app + "." + env.AppsDomain
	wantBody := "ferry smoke " + token + "\n"
	labels := map[string]string{"app": app, "ferry.e2e/test": "smoke"}

	image := pushSmokeImage(t, env, app)
	t.Logf("pushed %s", image)

	createNamespace(t, env, namespace, labels)
	// Pods name images by the registry's bridge address, as Ferry does.
	podImage := env.ClusterRegistry + "/" + image.RepositoryStr() + "@" + image.DigestStr()
	createDeployment(t, env, namespace, app, podImage, token, labels)
	createService(t, env, namespace, app, labels)
	createHTTPRoute(t, env, routes, namespace, app, host, labels)

	waitDeploymentAvailable(t, env, namespace, app)

	plain := gatewayClient(t, "")
	waitForBody(t, plain, "http://"+env.GatewayHTTP+"/", host, wantBody)

	secure := gatewayClient(t, env.CAFile)
	waitForBody(t, secure, "https://"+env.GatewayHTTPS+"/", host, wantBody)

	// From inside the pod: cluster DNS, the app's own Service (the reply
	// comes back to the same pod, so this also covers hairpin traffic), and
	// the API server through the kubernetes Service.
	serviceURL := "http://" + app + "." + namespace + ".svc.cluster.local/"
	waitForBody(t, plain, "http://"+env.GatewayHTTP+"/fetch?url="+url.QueryEscape(serviceURL), host, wantBody)
	apiURL := "https://kubernetes.default.svc.cluster.local/readyz"
	waitForBody(t, plain, "http://"+env.GatewayHTTP+"/fetch?url="+url.QueryEscape(apiURL), host, "ok")

	if status := getStatus(t, plain, "http://"+env.GatewayHTTP+"/", "unknown-"+host); status != http.StatusNotFound {
		t.Errorf("gateway returned %d for a host without a route; want 404", status)
	}

	// Delete in the order a user would, each step checked on its own.
	if err := routes.GatewayV1().HTTPRoutes(namespace).Delete(ctx, app, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete HTTPRoute: %v", err)
	}
	envtest.WaitFor(t, routeTimeout, "the gateway to drop the route for "+host, func(context.Context) (bool, string) {
		status, err := tryGetStatus(plain, "http://"+env.GatewayHTTP+"/", host)
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusNotFound, fmt.Sprintf("status %d", status)
	})

	foreground := metav1.DeletePropagationForeground
	if err := env.Kube.CoreV1().Services(namespace).Delete(ctx, app, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete Service: %v", err)
	}
	if err := env.Kube.AppsV1().Deployments(namespace).Delete(ctx, app, metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
		t.Fatalf("delete Deployment: %v", err)
	}
	envtest.WaitFor(t, deleteTimeout, "the smoke pods to be deleted", func(ctx context.Context) (bool, string) {
		pods, err := env.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
	})
	if err := env.Kube.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	envtest.WaitFor(t, deleteTimeout, "namespace "+namespace+" to be deleted", func(ctx context.Context) (bool, string) {
		ns, err := env.Kube.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, "phase " + string(ns.Status.Phase)
	})
	if err := remote.Delete(image, remote.WithContext(ctx), remote.WithTransport(localTransport())); err != nil {
		t.Fatalf("delete image %s: %v", image, err)
	}

	assertNothingLeft(t, env, routes, app, image)
}

// assertNothingLeft looks in every namespace, since a leak could sit
// anywhere the test's labels were copied.
func assertNothingLeft(t *testing.T, env *envtest.Environment, routes gatewayclient.Interface, app string, image name.Digest) {
	ctx := t.Context()
	selector := metav1.ListOptions{LabelSelector: "app=" + app}

	pods, err := env.Kube.CoreV1().Pods("").List(ctx, selector)
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	if len(pods.Items) != 0 {
		t.Errorf("%d pods labelled app=%s left after deletion", len(pods.Items), app)
	}
	services, err := env.Kube.CoreV1().Services("").List(ctx, selector)
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	if len(services.Items) != 0 {
		t.Errorf("%d services labelled app=%s left after deletion", len(services.Items), app)
	}
	deployments, err := env.Kube.AppsV1().Deployments("").List(ctx, selector)
	if err != nil {
		t.Fatalf("list deployments: %v", err)
	}
	if len(deployments.Items) != 0 {
		t.Errorf("%d deployments labelled app=%s left after deletion", len(deployments.Items), app)
	}
	httpRoutes, err := routes.GatewayV1().HTTPRoutes("").List(ctx, selector)
	if err != nil {
		t.Fatalf("list HTTPRoutes: %v", err)
	}
	if len(httpRoutes.Items) != 0 {
		t.Errorf("%d HTTPRoutes labelled app=%s left after deletion", len(httpRoutes.Items), app)
	}

	_, err = remote.Head(image, remote.WithContext(ctx), remote.WithTransport(localTransport()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD %s after deletion returned %v; want a 404 error", image, err)
	}
}

func randomToken(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b)
}

// localTransport is an HTTP transport that never uses a proxy, so every
// request goes straight to the local addresses the test names.
func localTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	return tr
}

// pushSmokeImage compiles testdata/smokeserver as a static Linux binary,
// puts it as the only layer on an empty image, pushes the image, and
// returns its reference by digest.
func pushSmokeImage(t *testing.T, env *envtest.Environment, app string) name.Digest {
	t.Helper()
	binary := filepath.Join(t.TempDir(), "server")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, ".")
	build.Dir = filepath.Join("testdata", "smokeserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH,
		"GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build smoke server: %v\n%s", err, out)
	}
	content, err := os.ReadFile(binary)
	if err != nil {
		t.Fatalf("read smoke server binary: %v", err)
	}

	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	header := &tar.Header{Name: "server", Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(header); err != nil {
		t.Fatalf("write layer: %v", err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatalf("write layer: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("write layer: %v", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("create layer: %v", err)
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatalf("append layer: %v", err)
	}
	config, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("read image config: %v", err)
	}
	config = config.DeepCopy()
	config.OS = "linux"
	config.Architecture = runtime.GOARCH
	config.Config.Entrypoint = []string{"/server"}
	config.Config.User = "65534:65534"
	config.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	img, err = mutate.ConfigFile(img, config)
	if err != nil {
		t.Fatalf("set image config: %v", err)
	}

	tag, err := name.NewTag(env.Registry+"/ferry-e2e/"+app+":latest", name.Insecure)
	if err != nil {
		t.Fatalf("image tag: %v", err)
	}
	if err := remote.Write(tag, img, remote.WithContext(t.Context()), remote.WithTransport(localTransport())); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("image digest: %v", err)
	}
	return tag.Context().Digest(digest.String())
}

func createNamespace(t *testing.T, env *envtest.Environment, namespace string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, Labels: labels}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// Removes everything on failure too; on success the namespace is gone
	// already and NotFound is expected.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := env.Kube.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("cleanup: delete namespace %s: %v", namespace, err)
		}
	})
}

func createDeployment(t *testing.T, env *envtest.Environment, namespace, app, image, token string, labels map[string]string) {
	t.Helper()
	replicas := int32(1)
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name:            "server",
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Env:             []corev1.EnvVar{{Name: "SMOKE_TOKEN", Value: token}},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := env.Kube.AppsV1().Deployments(namespace).Create(t.Context(), deployment, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Deployment: %v", err)
	}
}

func createService(t *testing.T, env *envtest.Environment, namespace, app string, labels map[string]string) {
	t.Helper()
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := env.Kube.CoreV1().Services(namespace).Create(t.Context(), service, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service: %v", err)
	}
}

func createHTTPRoute(t *testing.T, env *envtest.Environment, routes gatewayclient.Interface, namespace, app, host string, labels map[string]string) {
	t.Helper()
	gatewayNamespace := gatewayv1.Namespace(env.GatewayNamespace)
	port := gatewayv1.PortNumber(80)
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: app, Labels: labels},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{
				ParentRefs: []gatewayv1.ParentReference{{Namespace: &gatewayNamespace, Name: gatewayv1.ObjectName(env.GatewayName)}},
			},
			Hostnames: []gatewayv1.Hostname{gatewayv1.Hostname(host)},
			Rules: []gatewayv1.HTTPRouteRule{{
				BackendRefs: []gatewayv1.HTTPBackendRef{{
					BackendRef: gatewayv1.BackendRef{
						BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(app), Port: &port},
					},
				}},
			}},
		},
	}
	if _, err := routes.GatewayV1().HTTPRoutes(namespace).Create(t.Context(), route, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create HTTPRoute: %v", err)
	}
}

func waitDeploymentAvailable(t *testing.T, env *envtest.Environment, namespace, app string) {
	t.Helper()
	envtest.WaitFor(t, rolloutTimeout, "Deployment "+namespace+"/"+app+" to be available", func(ctx context.Context) (bool, string) {
		d, err := env.Kube.AppsV1().Deployments(namespace).Get(ctx, app, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == 1 {
			return true, ""
		}
		return false, podStates(ctx, env, namespace, app)
	})
}

// podStates describes why the app's pods are not ready yet.
func podStates(ctx context.Context, env *envtest.Environment, namespace, app string) string {
	pods, err := env.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return err.Error()
	}
	if len(pods.Items) == 0 {
		return "no pods yet"
	}
	var states []string
	for _, pod := range pods.Items {
		state := fmt.Sprintf("%s phase=%s", pod.Name, pod.Status.Phase)
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				state += fmt.Sprintf(" waiting=%s %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
			}
			if cs.State.Terminated != nil {
				state += fmt.Sprintf(" terminated=%s exit=%d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
			}
		}
		states = append(states, state)
	}
	return strings.Join(states, "; ")
}

// gatewayClient returns an HTTP client for the gateway's listeners. With a
// CA file it trusts that CA for HTTPS, and tlsServerName sends the
// request's Host as the SNI name.
func gatewayClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	tr := localTransport()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatalf("read CA file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in CA file %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tlsServerName{tr}, Timeout: 10 * time.Second}
}

// tlsServerName sets the TLS server name (SNI) of each request to its Host
// header, since the URL names the listener's IP address.
type tlsServerName struct{ base *http.Transport }

func (s tlsServerName) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return s.base.RoundTrip(req)
	}
	tr := s.base.Clone()
	config := tr.TLSClientConfig.Clone()
	config.ServerName = req.Host
	tr.TLSClientConfig = config
	defer tr.CloseIdleConnections()
	return tr.RoundTrip(req)
}

func tryGet(client *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

func tryGetStatus(client *http.Client, url, host string) (int, error) {
	status, _, err := tryGet(client, url, host)
	return status, err
}

func getStatus(t *testing.T, client *http.Client, url, host string) int {
	t.Helper()
	status, err := tryGetStatus(client, url, host)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	return status
}

// waitForBody polls until the gateway routes host to the app. Until
// Traefik has read the HTTPRoute it returns 404.
func waitForBody(t *testing.T, client *http.Client, url, host, want string) {
	t.Helper()
	var status int
	var body string
	envtest.WaitFor(t, routeTimeout, fmt.Sprintf("GET %s with Host %s to return 200", url, host), func(context.Context) (bool, string) {
		var err error
		status, body, err = tryGet(client, url, host)
		if err != nil {
			return false, err.Error()
		}
		return status == http.StatusOK, fmt.Sprintf("status %d body %q", status, body)
	})
	if body != want {
		t.Errorf("GET %s with Host %s returned body %q; want %q", url, host, body, want)
	}
}
