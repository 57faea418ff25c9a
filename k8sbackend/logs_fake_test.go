package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ferrycf/ferry/logcache"
)

// fakeKubelet serves container logs from memory the way the kubelet does.
// It prefixes every line with its RFC 3339 timestamp and applies SinceTime
// at the second precision the API carries. It honours TailLines, and
// Previous for the instance before the current one. Its Follow streams end
// when their instance exits.
type fakeKubelet struct {
	mu sync.Mutex
	// changed is closed and replaced on every change.
	changed    chan struct{}
	containers map[string][]*fakeInstance
	requests   []fakeLogRequest
	open       int
	maxOpen    int
}

// fakeInstance is one run of a container.
type fakeInstance struct {
	lines  []fakeLogLine
	exited bool
	// breaks counts the times the test broke this instance's streams.
	breaks int
}

type fakeLogLine struct {
	at   time.Time
	text string
}

type fakeLogRequest struct {
	key  string
	opts corev1.PodLogOptions
}

var errStreamBroken = errors.New("stream broken by the test")

func newFakeKubelet() *fakeKubelet {
	return &fakeKubelet{changed: make(chan struct{}), containers: map[string][]*fakeInstance{}}
}

func logKey(namespace, pod, container string) string { return namespace + "/" + pod + "/" + container }

// notify wakes the streams. The caller holds k.mu.
func (k *fakeKubelet) notify() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// current returns the running instance of a container, starting one when
// there is none. The caller holds k.mu.
func (k *fakeKubelet) current(key string) *fakeInstance {
	instances := k.containers[key]
	if len(instances) == 0 {
		instances = append(instances, &fakeInstance{})
		k.containers[key] = instances
	}
	return instances[len(instances)-1]
}

// write appends lines at the given times to the current instance.
func (k *fakeKubelet) write(key string, lines ...fakeLogLine) {
	k.mu.Lock()
	defer k.mu.Unlock()
	inst := k.current(key)
	inst.lines = append(inst.lines, lines...)
	k.notify()
}

// exit ends the current instance, which ends its follow streams.
func (k *fakeKubelet) exit(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current(key).exited = true
	k.notify()
}

// restart starts a new instance of a container.
func (k *fakeKubelet) restart(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current(key).exited = true
	k.containers[key] = append(k.containers[key], &fakeInstance{})
	k.notify()
}

// breakStreams ends the open streams of the current instance with an error.
func (k *fakeKubelet) breakStreams(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current(key).breaks++
	k.notify()
}

func (k *fakeKubelet) requestsFor(key string) []fakeLogRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []fakeLogRequest
	for _, r := range k.requests {
		if r.key == key {
			out = append(out, r)
		}
	}
	return out
}

func (k *fakeKubelet) requestKeys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var keys []string
	for _, r := range k.requests {
		if !slices.Contains(keys, r.key) {
			keys = append(keys, r.key)
		}
	}
	return keys
}

func (k *fakeKubelet) openStreams() (open, maxOpen int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.open, k.maxOpen
}

func (k *fakeKubelet) StreamLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	key := logKey(namespace, pod, opts.Container)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests = append(k.requests, fakeLogRequest{key: key, opts: *opts})
	instances := k.containers[key]
	index := len(instances) - 1
	if opts.Previous {
		index--
	}
	if index < 0 {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q has no log", opts.Container, pod))
	}
	k.open++
	k.maxOpen = max(k.maxOpen, k.open)
	reader, writer := io.Pipe()
	go k.serve(ctx, instances[index], *opts, writer)
	return &fakeStream{PipeReader: reader, kubelet: k}, nil
}

// serve writes an instance's lines to w as the options select.
func (k *fakeKubelet) serve(ctx context.Context, inst *fakeInstance, opts corev1.PodLogOptions, w *io.PipeWriter) {
	var since time.Time
	if opts.SinceTime != nil {
		since = opts.SinceTime.Time.Truncate(time.Second)
	}
	next := -1
	breaks := -1
	for {
		k.mu.Lock()
		if next < 0 {
			next = firstLogLine(inst.lines, since, opts.TailLines)
			breaks = inst.breaks
		}
		pending := slices.Clone(inst.lines[next:])
		next = len(inst.lines)
		finished := !opts.Follow || inst.exited
		broken := inst.breaks != breaks
		changed := k.changed
		k.mu.Unlock()

		for _, line := range pending {
			if _, err := fmt.Fprintf(w, "%s %s\n", line.at.Format(time.RFC3339Nano), line.text); err != nil {
				return
			}
		}
		switch {
		case broken:
			w.CloseWithError(errStreamBroken)
			return
		case finished:
			w.Close()
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			w.CloseWithError(ctx.Err())
			return
		}
	}
}

// firstLogLine returns the index of the first line a request returns.
func firstLogLine(lines []fakeLogLine, since time.Time, tail *int64) int {
	first := 0
	for first < len(lines) && lines[first].at.Before(since) {
		first++
	}
	if tail != nil && int64(len(lines)-first) > *tail {
		first = len(lines) - int(*tail)
	}
	return first
}

type fakeStream struct {
	*io.PipeReader
	kubelet *fakeKubelet
	once    sync.Once
}

func (s *fakeStream) Close() error {
	s.once.Do(func() {
		s.kubelet.mu.Lock()
		s.kubelet.open--
		s.kubelet.mu.Unlock()
	})
	return s.PipeReader.Close()
}

// lineRecorder is a sink that keeps every envelope put.
type lineRecorder struct {
	mu        sync.Mutex
	envelopes []logcache.Envelope
}

func (s *lineRecorder) Put(e logcache.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envelopes = append(s.envelopes, e)
}

// lines returns "<source type>/<instance> <payload>" of every envelope of
// sourceID, in the order they were put.
func (s *lineRecorder) lines(sourceID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.envelopes {
		if e.SourceID == sourceID {
			out = append(out, e.SourceType+"/"+e.InstanceID+" "+string(e.Payload))
		}
	}
	return out
}

func (s *lineRecorder) all() []logcache.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.envelopes)
}

// logEnv is a collector on a fake clientset and a fake kubelet.
type logEnv struct {
	t       *testing.T
	ctx     context.Context
	client  kubernetes.Interface
	kubelet *fakeKubelet
	sink    *lineRecorder
	c       *LogCollector
	base    time.Time
}

const (
	logTestNamespace = "cf-space-logs"
	logTestApp       = "a1a1a1a1-0000-4000-8000-00000000000a"
	logTestNode      = "node-1"
)

func newLogEnv(t *testing.T) *logEnv {
	t.Helper()
	return &logEnv{t: t, ctx: t.Context(), client: fake.NewClientset(), kubelet: newFakeKubelet(),
		sink: &lineRecorder{}, base: time.Now().Truncate(time.Second).Add(-time.Hour / 2)}
}

// start runs a collector with options changed by configure.
func (e *logEnv) start(configure func(*LogCollectorOptions)) {
	e.t.Helper()
	o := LogCollectorOptions{Client: e.client, Streamer: e.kubelet, Sink: e.sink,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AuditPollInterval: 20 * time.Millisecond}
	if configure != nil {
		configure(&o)
	}
	e.c = NewLogCollector(o)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.c.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("collector: %v", err)
		}
	})
	e.waitFor("the backfill", func() bool {
		select {
		case <-e.c.ready:
			return true
		default:
			return false
		}
	})
}

// at returns a line time: the test's base time plus ms milliseconds.
func (e *logEnv) at(ms int) time.Time { return e.base.Add(time.Duration(ms) * time.Millisecond) }

func (e *logEnv) line(ms int, text string) fakeLogLine { return fakeLogLine{at: e.at(ms), text: text} }

// waitFor polls cond until it holds, failing after a generous deadline.
func (e *logEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForLines waits until sourceID has at least n lines and returns them.
func (e *logEnv) waitForLines(sourceID string, n int) []string {
	e.t.Helper()
	var lines []string
	e.waitFor(fmt.Sprintf("%d lines of %s", n, sourceID), func() bool {
		lines = e.sink.lines(sourceID)
		return len(lines) >= n
	})
	return lines
}

// appPod returns a scheduled pod of instance index of the test app's web
// process, with no container started.
func appPod(name string, index int) *corev1.Pod {
	labels := ownerLabels("", ComponentApp)
	labels[LabelAppGUID] = logTestApp
	labels[LabelProcessGUID] = "p1p1p1p1-0000-4000-8000-00000000000p"
	labels[LabelProcessType] = "web"
	labels["apps.kubernetes.io/pod-index"] = fmt.Sprint(index)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: logTestNamespace, UID: types.UID("uid-" + name),
			Labels: labels, Annotations: map[string]string{AnnotationProcessType: "web"}},
		Spec: corev1.PodSpec{NodeName: logTestNode, Containers: []corev1.Container{{Name: AppContainer, Image: "droplet"}}},
	}
}

// stagingPod returns a scheduled staging pod of the test app.
func stagingPod(name string) *corev1.Pod {
	labels := ownerLabels("", ComponentStaging)
	labels[LabelAppGUID] = logTestApp
	labels[LabelBuildGUID] = "b1b1b1b1-0000-4000-8000-00000000000b"
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: logTestNamespace, UID: types.UID("uid-" + name), Labels: labels},
		Spec: corev1.PodSpec{NodeName: logTestNode,
			InitContainers: []corev1.Container{{Name: FetchContainer, Image: "ferry"}},
			Containers:     []corev1.Container{{Name: BuildContainer, Image: "builder"}}},
	}
}

func runningContainer(name, id string, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
}

func exitedContainer(name, id string, code int32, finished time.Time) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, ContainerID: id, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ContainerID: id, ExitCode: code, FinishedAt: metav1.NewTime(finished)}}}
}

func (e *logEnv) createPod(pod *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	created, err := e.client.CoreV1().Pods(pod.Namespace).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

// setStatus replaces a pod's container statuses.
func (e *logEnv) setStatus(pod *corev1.Pod, init []corev1.ContainerStatus, containers ...corev1.ContainerStatus) *corev1.Pod {
	e.t.Helper()
	current, err := e.client.CoreV1().Pods(pod.Namespace).Get(e.ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	current = current.DeepCopy()
	current.Status.InitContainerStatuses = init
	current.Status.ContainerStatuses = containers
	updated, err := e.client.CoreV1().Pods(pod.Namespace).UpdateStatus(e.ctx, current, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return updated
}
