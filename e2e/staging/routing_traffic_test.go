//go:build e2e

package staging

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// routeTimeout is a deadline for waiting only: for the gateway to serve a
// route that was just mapped, or to stop serving one that was unmapped.
// The controller writes the objects and the gateway reloads them; neither
// is asserted to be fast.
const routeTimeout = 3 * time.Minute

// awaitRoute calls check like envtest.WaitFor with routeTimeout. A check
// that the deadline cuts short reports only the cancellation, so the
// failure message then also shows the detail of the check before it.
func awaitRoute(t *testing.T, what string, check func(ctx context.Context) (bool, string)) {
	t.Helper()
	var previous string
	envtest.WaitFor(t, routeTimeout, what, func(ctx context.Context) (bool, string) {
		done, detail := check(ctx)
		if !done && ctx.Err() != nil && previous != "" {
			return false, previous + " (then " + detail + ")"
		}
		previous = detail
		return done, detail
	})
}

// gatewayResponse is one response of an app through the gateway.
type gatewayResponse struct {
	status int
	body   string
	// serial is the serial number of the certificate the gateway
	// presented, for HTTPS requests.
	serial *big.Int
}

func (r gatewayResponse) String() string {
	return fmt.Sprintf("status %d, body %q", r.status, excerpt(r.body))
}

// excerpt shortens a response body for a failure message.
func excerpt(body string) string {
	body = strings.TrimSpace(body)
	if len(body) > 300 {
		return body[:300] + "..."
	}
	return body
}

// gatewayClient sends requests to the gateway's HTTP listener on the
// loopback address, naming the route in the Host header as a browser
// would after resolving the route's name to the gateway. It never uses a
// proxy.
type gatewayClient struct {
	addr   string
	client *http.Client
}

func newGatewayClient(addr string) *gatewayClient {
	return &gatewayClient{addr: addr, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, MaxIdleConnsPerHost: 4},
		// A redirect would leave the gateway's address.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// get sends GET path with the Host header host.
func (g *gatewayClient) get(ctx context.Context, host, path string) (gatewayResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.addr+path, nil)
	if err != nil {
		return gatewayResponse{}, err
	}
	req.Host = host
	resp, err := g.client.Do(req)
	if err != nil {
		return gatewayResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return gatewayResponse{}, err
	}
	return gatewayResponse{status: resp.StatusCode, body: string(data)}, nil
}

// awaitRouteBody requests host and path through the gateway until it
// responds 200 with a body that contains want, and returns the response.
func (g *gatewayClient) awaitRouteBody(t *testing.T, host, path, want string) gatewayResponse {
	t.Helper()
	var last gatewayResponse
	what := fmt.Sprintf("GET http://%s%s through the gateway %s to respond 200 with a body containing %q", host, path, g.addr, want)
	awaitRoute(t, what, func(ctx context.Context) (bool, string) {
		resp, err := g.get(ctx, host, path)
		if err != nil {
			return false, err.Error()
		}
		last = resp
		return resp.status == http.StatusOK && strings.Contains(resp.body, want), resp.String()
	})
	return last
}

// routePollInterval is how often awaitRouteStatus requests a route. It is
// shorter than envtest.PollInterval so that the logged time until a route
// changes is close to the real one.
const routePollInterval = 100 * time.Millisecond

// awaitRouteStatus requests host and path through the gateway every
// routePollInterval until it responds with status want, and fails t when
// timeout passes first.
func (g *gatewayClient) awaitRouteStatus(t *testing.T, timeout time.Duration, host, path string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	ticker := time.NewTicker(routePollInterval)
	defer ticker.Stop()
	var last string
	for {
		resp, err := g.get(ctx, host, path)
		if err == nil && resp.status == want {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.String()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for GET http://%s%s through the gateway %s to respond %d; last response: %s",
				timeout, host, path, g.addr, want, last)
		case <-ticker.C:
		}
	}
}

// checkRouteStatus sends one request and fails t unless the gateway
// responds with status want.
func (g *gatewayClient) checkRouteStatus(t *testing.T, host, path string, want int) {
	t.Helper()
	resp, err := g.get(t.Context(), host, path)
	if err != nil {
		t.Errorf("GET http://%s%s through the gateway %s: %v", host, path, g.addr, err)
		return
	}
	if resp.status != want {
		t.Errorf("GET http://%s%s through the gateway %s: %s, want status %d", host, path, g.addr, resp, want)
	}
}

// getHTTPS sends GET path to the gateway's HTTPS listener at addr with
// host as the TLS server name and Host header. The gateway's certificate
// must verify for host against roots.
func getHTTPS(ctx context.Context, addr, host, path string, roots *x509.CertPool) (gatewayResponse, error) {
	transport := &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		TLSClientConfig:   &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		return gatewayResponse{}, err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return gatewayResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return gatewayResponse{}, err
	}
	out := gatewayResponse{status: resp.StatusCode, body: string(data)}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		out.serial = resp.TLS.PeerCertificates[0].SerialNumber
	}
	return out, nil
}

// tcpEcho dials addr, writes line and a newline, and returns the first
// line the server writes back.
func tcpEcho(ctx context.Context, addr, line string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read the reply: %w (got %q)", err, reply)
	}
	return strings.TrimRight(reply, "\r\n"), nil
}

// udpEcho sends payload as one datagram to addr and returns the first
// datagram that comes back within two seconds.
func udpEcho(ctx context.Context, addr, payload string) (string, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "udp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, payload); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(buf[:n]), "\r\n"), nil
}

// testCertificate is a CA and a leaf certificate it signed, in PEM.
type testCertificate struct {
	caPEM   []byte
	certPEM []byte
	keyPEM  []byte
	serial  *big.Int
	roots   *x509.CertPool
}

// newTestCertificate makes a CA and a leaf for domain and *.domain, valid
// from an hour ago for a day, with ECDSA P-256 keys.
func newTestCertificate(t *testing.T, domain string) testCertificate {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "Ferry e2e routing CA", Organization: []string{"Ferry e2e"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain, "*." + domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return testCertificate{
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		serial:  leafTemplate.SerialNumber,
		roots:   roots,
	}
}

// randomSerial returns a positive 127-bit serial number.
func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return serial.Add(serial, big.NewInt(1))
}

// Gateway API resources that the routing artifacts list.
var (
	gatewayResource       = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	httpRouteResource     = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	tcpRouteResource      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1alpha2", Resource: "tcproutes"}
	udpRouteResource      = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1alpha2", Resource: "udproutes"}
	serviceResource       = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	endpointSliceResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// saveRoutingObjects writes the Gateways, and the routes, Services and
// EndpointSlices of the given namespaces, with their status, as YAML into
// t.ArtifactDir(). A failed route can then be traced to the objects the
// controller wrote and to what the gateway reported about them.
func saveRoutingObjects(t *testing.T, env *envtest.Environment, namespaces []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	list := func(gvr schema.GroupVersionResource, namespace string) {
		objects, err := env.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(&b, "# list %s in %s: %v\n", gvr.Resource, namespace, err)
			return
		}
		for _, o := range objects.Items {
			o.SetManagedFields(nil)
			data, err := yaml.Marshal(o.Object)
			if err != nil {
				fmt.Fprintf(&b, "# %s %s/%s: %v\n", gvr.Resource, namespace, o.GetName(), err)
				continue
			}
			fmt.Fprintf(&b, "---\n%s", data)
		}
	}
	list(gatewayResource, env.GatewayNamespace)
	for _, namespace := range namespaces {
		list(httpRouteResource, namespace)
		list(tcpRouteResource, namespace)
		list(udpRouteResource, namespace)
		list(serviceResource, namespace)
		list(endpointSliceResource, namespace)
	}

	path := filepath.Join(t.ArtifactDir(), "routing-objects.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Logf("save routing objects: %v", err)
		return
	}
	t.Logf("saved the Gateways and routes to %s", path)
}

// loopbackAddress returns 127.0.0.1:port, where the local environment's
// gateways listen for TCP and UDP routes.
func loopbackAddress(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// awaitRouteObjectsGone waits until the HTTPRoutes, TCPRoutes and
// UDPRoutes of the given routes are gone from the space's namespace.
func awaitRouteObjectsGone(t *testing.T, env *envtest.Environment, space string, routes []string) {
	t.Helper()
	if len(routes) == 0 {
		return
	}
	namespace := k8sbackend.SpaceNamespace(space)
	envtest.WaitFor(t, routeTimeout, fmt.Sprintf("the objects of deleted routes %v to go", routes), func(ctx context.Context) (bool, string) {
		var left []string
		for _, route := range routes {
			name := k8sbackend.RouteObjectName(route)
			for _, gvr := range []schema.GroupVersionResource{httpRouteResource, tcpRouteResource, udpRouteResource} {
				_, err := env.Dynamic.Resource(gvr).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
				case err != nil:
					left = append(left, fmt.Sprintf("get %s %s: %v", gvr.Resource, name, err))
				default:
					left = append(left, gvr.Resource+" "+name)
				}
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
}
