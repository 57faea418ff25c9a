// Package k8stest runs a private etcd and kube-apiserver for tests, so every
// object Ferry writes is validated, defaulted and stored by a real API server.
//
// One server serves a whole test binary: call Main from TestMain, then
// NewNamespace(t) in each test for a fresh namespace, and Shared(t) for the
// server's clients. Start and Stop serve callers that manage a server
// themselves.
//
// The server listens only on 127.0.0.1, authenticates clients by
// certificates from a throwaway CA, and authorizes with RBAC. Only the API
// server runs: no controller manager, scheduler or kubelet, so workloads
// create no pods, objects keep the status their writer gave them, a deleted
// namespace stays Terminating, and the aggregated ClusterRoles (admin, edit,
// view) have no rules.
//
// Binaries: kube-apiserver from FERRY_KUBE_BIN_DIR, or from the build cache
// that hack/k8s-build.sh fills; etcd from FERRY_ETCD_BIN or PATH. When
// kube-apiserver is missing the tests fail, unless FERRY_K8STEST_OPTIONAL=1,
// which makes them skip. Set FERRY_K8STEST_KEEP=1 to keep the server's
// directory (logs, certificates, etcd data) after Stop.
package k8stest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	envOptional = "FERRY_K8STEST_OPTIONAL"
	envKeep     = "FERRY_K8STEST_KEEP"

	// serviceClusterIPRange is the range the API server allocates Service
	// ClusterIPs from. It matches the local environment's, but no traffic
	// goes to these addresses because no kube-proxy or pod exists here.
	serviceClusterIPRange = "10.96.0.0/16"
	// kubernetesServiceIP is the first address of serviceClusterIPRange,
	// which the API server gives to the default/kubernetes Service.
	kubernetesServiceIP = "10.96.0.1"

	adminUser  = "k8stest-admin"
	adminGroup = "system:masters"

	// maxStartAttempts bounds the retries after losing a free port to
	// another process between picking it and the component binding it.
	maxStartAttempts = 3
)

// Server is a running etcd and kube-apiserver pair.
type Server struct {
	dir       string
	bins      binaries
	ca        *certAuthority
	adminCert keyPair

	etcd      *process
	apiserver *process
	host      string

	admin     *rest.Config
	clientset *kubernetes.Clientset
	dynamic   *dynamic.DynamicClient
	startup   time.Duration

	crdMu         sync.Mutex
	installedCRDs map[string]bool

	stopOnce sync.Once
}

// Start starts etcd and kube-apiserver on free 127.0.0.1 ports, with data,
// certificates and logs in a new temporary directory, and returns once the
// API server's /readyz succeeds. An error names the component that failed
// and quotes its log. After a failure the directory stays for inspection.
// Errors wrap ErrBinariesNotFound when the kube-apiserver binary is missing.
func Start() (*Server, error) {
	begin := time.Now()
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-k8stest-")
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s := &Server{dir: dir, bins: bins, installedCRDs: map[string]bool{}}
	if err := s.writePKI(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		err = s.startComponents()
		if err == nil {
			break
		}
		s.stopComponents()
		if !errors.Is(err, errPortInUse) || attempt == maxStartAttempts {
			return nil, fmt.Errorf("start etcd and kube-apiserver in %s: %w", dir, err)
		}
	}

	if err := s.buildClients(); err != nil {
		s.Stop()
		return nil, err
	}
	s.startup = time.Since(begin)
	return s, nil
}

// Stop stops kube-apiserver and then etcd, each by its PID, and removes the
// server's directory unless FERRY_K8STEST_KEEP=1. Later calls do nothing.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stopComponents()
		if os.Getenv(envKeep) == "1" {
			fmt.Fprintf(os.Stderr, "k8stest: kept server directory %s\n", s.dir)
			return
		}
		os.RemoveAll(s.dir)
	})
}

// RESTConfig returns a new copy of the cluster-admin client configuration
// (a client certificate in group system:masters), so callers may change it.
func (s *Server) RESTConfig() *rest.Config {
	return rest.CopyConfig(s.admin)
}

// Clientset returns a cluster-admin clientset, safe for concurrent use.
func (s *Server) Clientset() *kubernetes.Clientset {
	return s.clientset
}

// DynamicClient returns a cluster-admin dynamic client, safe for concurrent
// use, for custom resources without a typed client.
func (s *Server) DynamicClient() *dynamic.DynamicClient {
	return s.dynamic
}

// UserRESTConfig returns a client configuration that authenticates as user
// in groups with a client certificate from the server's CA, so tests can
// check what RBAC lets that identity do. Unlike RESTConfig, it has no
// permissions until a RoleBinding or ClusterRoleBinding grants them.
func (s *Server) UserRESTConfig(user string, groups ...string) (*rest.Config, error) {
	pair, err := s.ca.clientCert(user, groups)
	if err != nil {
		return nil, err
	}
	return s.restConfig(pair), nil
}

// StartupDuration returns how long Start took, from looking up the binaries
// to a ready API server.
func (s *Server) StartupDuration() time.Duration {
	return s.startup
}

// Dir returns the server's directory, which contains etcd.log and
// kube-apiserver.log.
func (s *Server) Dir() string {
	return s.dir
}

func (s *Server) path(name string) string {
	return filepath.Join(s.dir, name)
}

func (s *Server) writePKI() error {
	ca, err := newCertAuthority()
	if err != nil {
		return err
	}
	serving, err := ca.servingCert()
	if err != nil {
		return err
	}
	admin, err := ca.clientCert(adminUser, []string{adminGroup})
	if err != nil {
		return err
	}
	saPrivate, saPublic, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	s.ca = ca
	s.adminCert = admin

	files := map[string][]byte{
		"ca.crt":        ca.certPEM,
		"apiserver.crt": serving.certPEM,
		"apiserver.key": serving.keyPEM,
		"sa.key":        saPrivate,
		"sa.pub":        saPublic,
	}
	for name, data := range files {
		if err := os.WriteFile(s.path(name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// startComponents starts etcd and kube-apiserver on newly picked ports and
// waits until both are ready.
func (s *Server) startComponents() error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	if err := s.startEtcd(etcdURL, "http://127.0.0.1:"+strconv.Itoa(ports[1])); err != nil {
		return err
	}
	return s.startAPIServer(etcdURL, ports[2])
}

func (s *Server) startEtcd(clientURL, peerURL string) error {
	// A retry must not reuse a member directory that records other ports.
	dataDir := s.path("etcd-data")
	if err := os.RemoveAll(dataDir); err != nil {
		return fmt.Errorf("clear etcd data directory: %w", err)
	}
	args := []string{
		"--name=k8stest",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=k8stest=" + peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-level=warn",
	}
	if s.bins.etcdNoFsync {
		args = append(args, "--unsafe-no-fsync")
	}
	p, err := startProcess("etcd", s.path("etcd.log"), s.bins.etcd, args, etcdEnv())
	if err != nil {
		return err
	}
	s.etcd = p
	return p.waitReady("GET "+clientURL+"/health", func() error { return checkEtcdHealth(clientURL) })
}

// etcdEnv returns the environment without ETCD_* variables, because etcd
// reads its flags from them too and exits when one repeats a flag.
func etcdEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func checkEtcdHealth(clientURL string) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(clientURL + "/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func (s *Server) startAPIServer(etcdURL string, port int) error {
	s.host = "https://127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		// The lease endpoint reconciler rejects a loopback advertise
		// address, and no pod exists to reach the default/kubernetes
		// Service through endpoints anyway.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + s.path("apiserver.crt"),
		"--tls-private-key-file=" + s.path("apiserver.key"),
		"--client-ca-file=" + s.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + s.path("sa.pub"),
		"--service-account-signing-key-file=" + s.path("sa.key"),
		"--service-cluster-ip-range=" + serviceClusterIPRange,
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
	}
	p, err := startProcess("kube-apiserver", s.path("kube-apiserver.log"), s.bins.kubeAPIServer, args, os.Environ())
	if err != nil {
		return err
	}
	s.apiserver = p

	client, err := s.adminHTTPClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	return p.waitReady("GET "+s.host+"/readyz", func() error { return checkReadyz(client, s.host) })
}

func (s *Server) adminHTTPClient() (*http.Client, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.ca.certPEM)
	cert, err := tls.X509KeyPair(s.adminCert.certPEM, s.adminCert.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load admin client certificate: %w", err)
	}
	transport := &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: transport}, nil
}

func checkReadyz(client *http.Client, host string) error {
	resp, err := client.Get(host + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func (s *Server) stopComponents() {
	if s.apiserver != nil {
		s.apiserver.stop()
	}
	if s.etcd != nil {
		s.etcd.stop()
	}
}

func (s *Server) buildClients() error {
	s.admin = s.restConfig(s.adminCert)
	clientset, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(s.RESTConfig())
	if err != nil {
		return fmt.Errorf("create dynamic client: %w", err)
	}
	s.clientset = clientset
	s.dynamic = dyn
	return nil
}

// restConfig returns a configuration for this server with a client
// certificate. Its QPS and burst are far above client-go's defaults (5 and
// 10) because client-side throttling would only slow tests down.
func (s *Server) restConfig(pair keyPair) *rest.Config {
	return &rest.Config{
		Host: s.host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.ca.certPEM,
			CertData: pair.certPEM,
			KeyData:  pair.keyPEM,
		},
		UserAgent: "ferry-k8stest",
		QPS:       500,
		Burst:     1000,
	}
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free when
// picked. Another process may take one before etcd or kube-apiserver binds
// it, so Start retries when a component reports the port in use.
func freePorts(n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port on 127.0.0.1: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitContext returns a context for the server's own waits, such as CRDs
// becoming established.
func waitContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), readyTimeout)
}
