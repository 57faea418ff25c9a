package k8stest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxNamespacePrefix keeps generated namespace names within the 63
// characters of a DNS label: the API server appends 5 random characters.
const maxNamespacePrefix = 40

// shared is the test binary's server. It starts on the first Shared call, so
// a run whose -run pattern selects no such test starts nothing.
var shared struct {
	mainCalled bool
	once       sync.Once
	server     *Server
	err        error
}

// Main runs the package's tests and then stops the test binary's server if a
// test started it. Call it from TestMain:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
// When the binary dies inside m.Run, for example on a panic or at the
// -timeout limit, Linux kills etcd and kube-apiserver, but their temporary
// directory stays.
func Main(m *testing.M) {
	shared.mainCalled = true
	code := m.Run()
	if shared.server != nil {
		shared.server.Stop()
	}
	os.Exit(code)
}

// Shared returns the test binary's server, starting it on first use and
// logging its start time. It fails the test when the server cannot start,
// and skips it when the kube-apiserver binary is missing and
// FERRY_K8STEST_OPTIONAL=1. The package must call Main from TestMain.
func Shared(t testing.TB) *Server {
	t.Helper()
	if !shared.mainCalled {
		t.Fatal("k8stest: no shared server: call k8stest.Main(m) from TestMain")
	}
	shared.once.Do(func() {
		shared.server, shared.err = Start()
		if shared.err == nil {
			fmt.Fprintf(os.Stderr, "k8stest: etcd and kube-apiserver %s ready in %s\n",
				shared.server.host, shared.server.StartupDuration().Round(time.Millisecond))
		}
	})
	if errors.Is(shared.err, ErrBinariesNotFound) {
		if os.Getenv(envOptional) == "1" {
			t.Skipf("k8stest: skipped because %s=1 and %v", envOptional, shared.err)
		}
		t.Fatalf("k8stest: %v, or set %s=1 to skip tests that need it", shared.err, envOptional)
	}
	if shared.err != nil {
		t.Fatalf("k8stest: %v", shared.err)
	}
	return shared.server
}

// NewNamespace creates a namespace on the test binary's server, named after
// the test with a random suffix, and returns its name. Like a real cluster's
// controller manager would, it also creates the namespace's "default"
// ServiceAccount, without which the ServiceAccount admission plugin rejects
// pods. The namespace stays after the test, because without the namespace
// controller a deleted namespace never goes away.
func NewNamespace(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	ctx := context.Background()

	ns, err := s.clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())},
	}, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		t.Fatalf("k8stest: create namespace: %v", err)
	}
	_, err = s.clientset.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{FieldManager: fieldManager})
	if err != nil {
		t.Fatalf("k8stest: create ServiceAccount default in namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a GenerateName prefix: lower-case
// letters, digits and single hyphens, ending in a hyphen.
func namespacePrefix(testName string) string {
	var b strings.Builder
	hyphen := true // drops leading hyphens
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
		} else if !hyphen {
			b.WriteByte('-')
			hyphen = true
		}
		if b.Len() >= maxNamespacePrefix {
			break
		}
	}
	prefix := strings.TrimRight(b.String(), "-")
	if prefix == "" {
		prefix = "test"
	}
	return prefix + "-"
}
