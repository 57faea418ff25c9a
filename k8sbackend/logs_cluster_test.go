//go:build e2e

package k8sbackend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/logcache"
)

// timedSink keeps every envelope with the time it was put.
type timedSink struct {
	mu        sync.Mutex
	envelopes []logcache.Envelope
	putAt     []time.Time
}

func (s *timedSink) Put(e logcache.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envelopes = append(s.envelopes, e)
	s.putAt = append(s.putAt, time.Now())
}

func (s *timedSink) payloads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.envelopes {
		out = append(out, e.SourceType+"/"+e.InstanceID+" "+string(e.Payload))
	}
	return out
}

// delays returns, for every app output line, how long after the kubelet's
// timestamp it was put.
func (s *timedSink) delays() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i, e := range s.envelopes {
		if strings.HasPrefix(e.SourceType, "APP/") && strings.Contains(string(e.Payload), " ") {
			out = append(out, s.putAt[i].Sub(time.Unix(0, e.Timestamp)))
		}
	}
	return out
}

// TestLogCollectorOnCluster follows a crash-looping pod on the local
// environment's real kubelet and counts the collector's API requests.
func TestLogCollectorOnCluster(t *testing.T) {
	env := envtest.Get(t)
	ctx := t.Context()
	suffix := uuid.NewString()[:8]
	installation := "logs-e2e-" + suffix
	namespace := "ferry-logs-e2e-" + suffix
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := env.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Kube.CoreV1().Namespaces().Delete(context.Background(), namespace, metav1.DeleteOptions{})
	})
	envtest.WaitFor(t, time.Minute, "the default service account", func(ctx context.Context) (bool, string) {
		_, err := env.Kube.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})

	counter := &requestCounter{}
	config := rest.CopyConfig(env.RESTConfig)
	config.Wrap(counter.RoundTripper)
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	sink := &timedSink{}
	collector := NewLogCollector(LogCollectorOptions{Client: client, Sink: sink, Installation: installation,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- collector.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})

	pod := appPod("web-0", 0)
	pod.Namespace = namespace
	pod.UID = ""
	pod.Labels[LabelInstallation] = installation
	pod.Spec.NodeName = ""
	pod.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
	pod.Spec.Containers[0].Image = env.ClusterRegistry + "/ferry/stack:run"
	pod.Spec.Containers[0].Command = []string{"sh", "-c",
		`echo "run start"; i=0; while [ $i -lt 5 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.3; done; exit 3`}
	created, err := env.Kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The kubelet restarts the exited container after a back-off.
	countOf := func(line string) int {
		return len(slices.DeleteFunc(sink.payloads(), func(p string) bool { return p != line }))
	}
	envtest.WaitFor(t, 2*time.Minute, "two runs of the container", func(context.Context) (bool, string) {
		return countOf("APP/PROC/WEB/0 err 4") == 2, strings.Join(sink.payloads(), "\n")
	})
	logRequests := 0
	for _, r := range counter.all() {
		if strings.Contains(r, "/log?") {
			logRequests++
		}
	}
	if err := env.Kube.CoreV1().Pods(namespace).Delete(ctx, created.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	envtest.WaitFor(t, time.Minute, "the stop line", func(context.Context) (bool, string) {
		return countOf("CELL/0 Cell ferry-node stopping instance "+string(created.UID)) == 1, strings.Join(sink.payloads(), "\n")
	})

	for _, line := range []string{"APP/PROC/WEB/0 run start", "APP/PROC/WEB/0 out 0", "APP/PROC/WEB/0 err 4"} {
		if n := countOf(line); n != 2 {
			t.Errorf("%q put %d times, want once per run", line, n)
		}
	}
	if n := countOf("APP/PROC/WEB/0 Exit status 3"); n < 1 {
		t.Errorf("no exit status line of the first run")
	}
	if n := countOf("CELL/0 Cell ferry-node creating container for instance " + string(created.UID)); n != 1 {
		t.Errorf("creating line put %d times, want 1", n)
	}

	requests := counter.all()
	delays := sink.delays()
	slices.Sort(delays)
	t.Logf("API requests: %d in all, %d log requests for 2 container instances", len(requests), logRequests)
	for _, r := range requests {
		t.Logf("  %s", r)
	}
	if len(delays) > 0 {
		t.Logf("delay from the kubelet's timestamp to the sink over %d lines: median %s, max %s",
			len(delays), delays[len(delays)/2], delays[len(delays)-1])
	}
	if logRequests < 2 || logRequests > 4 {
		t.Errorf("%d log requests for 2 container instances, want 2 plus at most a reconnect each", logRequests)
	}
}
