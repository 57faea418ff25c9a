package k8sbackend

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/k8sbackend/k8stest"
)

// requestCounter records the requests a client sends.
type requestCounter struct {
	mu       sync.Mutex
	requests []string
}

func (c *requestCounter) RoundTripper(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.requests = append(c.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		c.mu.Unlock()
		return next.RoundTrip(r)
	})
}

func (c *requestCounter) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLogCollectorOnAPIServer runs the collector's informer against a real
// API server, which applies its label selector, and counts the requests
// the collector sends to it. Logs come from the fake kubelet, as this
// server has no nodes.
func TestLogCollectorOnAPIServer(t *testing.T) {
	srv, err := k8stest.Start()
	if err != nil {
		if os.Getenv("FERRY_K8STEST_OPTIONAL") == "1" {
			t.Skipf("kube-apiserver not available and FERRY_K8STEST_OPTIONAL=1: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	admin := srv.Clientset()
	counter := &requestCounter{}
	config := srv.RESTConfig()
	config.Wrap(counter.RoundTripper)
	counted, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}

	e := newLogEnv(t)
	e.client = admin
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: logTestNamespace}}
	if _, err := admin.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller manager creates the namespace's default service
	// account, which pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: logTestNamespace}}
	if _, err := admin.CoreV1().ServiceAccounts(logTestNamespace).Create(e.ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign := appPod("other-0", 0)
	foreign.Labels[LabelInstallation] = "other"
	noComponent := appPod("plain-0", 0)
	delete(noComponent.Labels, LabelComponent)
	for _, pod := range []*corev1.Pod{foreign, noComponent, appPod("web-0", 0)} {
		e.startAPIServerPod(pod)
	}

	e.client = counted
	e.start(nil)
	e.client = admin
	e.waitForLines(logTestApp, 1)
	atStart := len(counter.all())
	staging := stagingPod("build-1")
	staging.Spec.InitContainers = nil
	e.startAPIServerPod(staging)
	e.startAPIServerPod(appPod("web-1", 1))
	e.waitForLines(logTestApp, 5)

	wantKeys := []string{
		logKey(logTestNamespace, "web-0", AppContainer),
		logKey(logTestNamespace, "build-1", BuildContainer),
		logKey(logTestNamespace, "web-1", AppContainer),
	}
	gotKeys := e.kubelet.requestKeys()
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
		t.Errorf("containers read (-want +got):\n%s", diff)
	}

	requests := counter.all()
	t.Logf("API requests of the collector with 3 pods followed: %d", len(requests))
	for _, r := range requests {
		t.Logf("  %s", r)
	}
	// The informer's list and watch are all: client-go first tries a
	// watch that sends the initial list, and falls back to a list and a
	// watch where the server does not serve it. New pods arrive through
	// the watch, and log requests go to the kubelet.
	if len(requests) > 3 || len(requests) != atStart {
		t.Errorf("%d API requests at the start and %d after two more pods, want at most 3 and no more later",
			atStart, len(requests))
	}
	wantSelector := logPodSelector("").String()
	for _, r := range requests {
		_, rawQuery, _ := strings.Cut(r, "?")
		query, _ := url.ParseQuery(rawQuery)
		if got := query.Get("labelSelector"); got != wantSelector {
			t.Errorf("request %s has label selector %q, want %q", r, got, wantSelector)
		}
	}
}

// startAPIServerPod creates pod with a running container status for each
// container, as the kubelet would report, and writes a line to each
// container's log.
func (e *logEnv) startAPIServerPod(pod *corev1.Pod) {
	e.t.Helper()
	created, err := e.client.CoreV1().Pods(pod.Namespace).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	now := metav1.NewTime(time.Now())
	created.Status.Phase = corev1.PodRunning
	for _, ct := range created.Spec.Containers {
		e.kubelet.write(logKey(pod.Namespace, pod.Name, ct.Name), fakeLogLine{at: now.Time, text: "hello from " + pod.Name})
		created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, ImageID: ct.Image, Ready: true, Started: ptr.To(true),
			ContainerID: fmt.Sprintf("containerd://%s-%s", pod.Name, ct.Name),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := e.client.CoreV1().Pods(pod.Namespace).UpdateStatus(e.ctx, created, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}
