package k8sbackend

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// corednsBinary returns FERRY_COREDNS_BIN, or the CoreDNS binary of the
// local environment, which hack/build/coredns.sh reuses from its cache
// or builds from the github.com/coredns/coredns module.
func corednsBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("FERRY_COREDNS_BIN"); bin != "" {
		return bin
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", filepath.Join("..", "hack", "build", "coredns.sh"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/build/coredns.sh failed: %v\n%s\nset FERRY_COREDNS_BIN to a CoreDNS v1.15 binary instead", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func writeKubeconfig(t *testing.T, path string, config *rest.Config) {
	t.Helper()
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["test"] = &clientcmdapi.Cluster{Server: config.Host, CertificateAuthorityData: config.CAData}
	kubeconfig.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: config.CertData, ClientKeyData: config.KeyData}
	kubeconfig.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kubeconfig.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kubeconfig, path); err != nil {
		t.Fatalf("write kubeconfig: %v", err)
	}
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free when picked.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// TestInternalRouteResolvesInCoreDNS runs CoreDNS with the kubernetes
// plugin against a real API server and the rewrite rules of
// RenderCoreDNSRewrites, and resolves an internal route to the ready
// addresses of its EndpointSlice.
func TestInternalRouteResolvesInCoreDNS(t *testing.T) {
	srv := startRoutingAPIServer(t)
	client := srv.Clientset()
	ctx := context.Background()
	createNamespaces(t, client, DefaultInternalRouteNamespace)

	route := testInternalRoute()
	route.Host = "9-backend"
	svc, err := MakeInternalRouteService(route, InternalRouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Service: %v", err)
	}
	source := []discoveryv1.EndpointSlice{{AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{
		{Addresses: []string{"10.88.0.20"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		{Addresses: []string{"10.88.0.21"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		{Addresses: []string{"10.88.0.22"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
	}}}
	slice, err := MakeInternalRouteEndpointSlice(route, InternalRouteConfig{}, route.Destinations[0], source)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices(slice.Namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create EndpointSlice: %v", err)
	}

	dir := t.TempDir()
	writeKubeconfig(t, filepath.Join(dir, "kubeconfig"), srv.RESTConfig())
	rewrites, err := RenderCoreDNSRewrites([]string{"apps.internal"}, InternalRouteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// No forward plugin: names outside the cluster zone are never sent on.
	port := freeUDPPort(t)
	corefile := fmt.Sprintf(".:%d {\n    bind 127.0.0.1\n    errors\n    %s    kubernetes cluster.local {\n        kubeconfig %s\n    }\n}\n",
		port, strings.ReplaceAll(rewrites, "\n", "\n    "), filepath.Join(dir, "kubeconfig"))
	if err := os.WriteFile(filepath.Join(dir, "Corefile"), []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "coredns.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	coredns := exec.Command(corednsBinary(t), "-conf", filepath.Join(dir, "Corefile"))
	coredns.Stdout, coredns.Stderr = logFile, logFile
	if err := coredns.Start(); err != nil {
		t.Fatalf("start CoreDNS: %v", err)
	}
	t.Cleanup(func() {
		_ = coredns.Process.Kill()
		_ = coredns.Wait()
	})

	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	}}
	// CoreDNS answers once it listens and the kubernetes plugin has
	// synced, which takes a few seconds on a busy machine.
	var addrs []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		addrs, err = resolver.LookupHost(ctx, "9-backend.apps.internal")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("resolve 9-backend.apps.internal: %v\nCorefile:\n%s\nCoreDNS output:\n%s", err, corefile, log)
	}
	slices.Sort(addrs)
	if want := []string{"10.88.0.20", "10.88.0.21"}; !slices.Equal(addrs, want) {
		t.Errorf("9-backend.apps.internal resolves to %v, want the ready addresses %v", addrs, want)
	}

	upper, err := resolver.LookupHost(ctx, "9-Backend.Apps.Internal")
	slices.Sort(upper)
	if err != nil || !slices.Equal(upper, addrs) {
		t.Errorf("9-Backend.Apps.Internal resolves to %v, %v; want %v", upper, err, addrs)
	}
	if other, err := resolver.LookupHost(ctx, "nobody.apps.internal"); err == nil {
		t.Errorf("nobody.apps.internal resolves to %v, want no such host", other)
	}
}
