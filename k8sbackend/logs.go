package k8sbackend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// LogStreamer opens the log of one container. The collector reads every
// log through it, so tests can stand in for the kubelet.
type LogStreamer interface {
	StreamLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// ClientLogStreamer reads container logs through the Kubernetes API, which
// forwards each request to the kubelet of the pod's node.
type ClientLogStreamer struct{ Client kubernetes.Interface }

// StreamLogs sends one GET pods/log request.
func (s ClientLogStreamer) StreamLogs(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return s.Client.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}

// Defaults of LogCollectorOptions.
const (
	// DefaultMaxLogStreams bounds the log requests open at once. Each
	// container being followed keeps one open.
	DefaultMaxLogStreams = 1000
	// DefaultLogBackfillWindow is how far back the collector reads when it
	// starts, so a new leader serves the recent lines of running apps and
	// of staging Jobs that are still kept.
	DefaultLogBackfillWindow = time.Hour
	// DefaultLogBackfillLines is the maximum number of lines read back from
	// each container when the collector starts.
	DefaultLogBackfillLines = 1000
	// DefaultAuditPollInterval is how often the collector reads new audit
	// events for API lines.
	DefaultAuditPollInterval = time.Second
)

const (
	// logDrainTimeout is how long the followers of a deleted pod may still
	// read, so lines written just before the deletion are not cut off.
	logDrainTimeout = 30 * time.Second
	// backfillWorkers is how many apps the collector backfills at once.
	backfillWorkers = 8
	// backfillMaxBytes bounds the bytes read back from one container.
	backfillMaxBytes = 4 << 20
)

// LogCollectorOptions configures NewLogCollector.
type LogCollectorOptions struct {
	Client kubernetes.Interface
	// Streamer opens container logs. Nil reads them through Client.
	Streamer LogStreamer
	Sink     logcache.Sink
	// Store is the source of audit events for API lines. Nil puts none.
	Store        *store.Store
	Installation string
	Logger       *slog.Logger
	// MaxStreams defaults to DefaultMaxLogStreams.
	MaxStreams int
	// BackfillWindow defaults to DefaultLogBackfillWindow. A negative
	// window reads no lines from before the start.
	BackfillWindow time.Duration
	// BackfillLines defaults to DefaultLogBackfillLines.
	BackfillLines int64
	// AuditPollInterval defaults to DefaultAuditPollInterval.
	AuditPollInterval time.Duration
}

func (o *LogCollectorOptions) setDefaults() {
	if o.Streamer == nil {
		o.Streamer = ClientLogStreamer{Client: o.Client}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxLogStreams
	}
	if o.BackfillWindow == 0 {
		o.BackfillWindow = DefaultLogBackfillWindow
	}
	if o.BackfillLines <= 0 {
		o.BackfillLines = DefaultLogBackfillLines
	}
	if o.AuditPollInterval <= 0 {
		o.AuditPollInterval = DefaultAuditPollInterval
	}
}

// LogCollector puts the output of Ferry's staging and app containers, and
// lines about their lifecycle, into a log sink. It watches the pods of one
// installation and follows the log of every container that runs or has
// run, through the Kubernetes API. It also turns new audit events into API
// lines. Its Kubernetes requests are one pod list and watch, one log
// request per container instance, and one backfill read per container
// that exists at the start. Readers of the sink add none.
//
// The logs API returns stdout and stderr as one stream, so every line is
// put as StreamOut. The kubelet's CRI log files keep the two apart, but
// Ferry reads logs only through the API.
type LogCollector struct {
	o        LogCollectorOptions
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	lister   corelisters.PodLister
	// slots contains one token per open log request.
	slots chan struct{}

	// started is when Run began. The backfill reads the lines from before
	// it.
	started time.Time
	// ready is closed when the backfill is done, which followers wait for.
	ready chan struct{}
	// runCtx is the context followers run under. It ends when Run stops.
	runCtx context.Context
	wg     sync.WaitGroup

	mu   sync.Mutex
	pods map[types.UID]*podLogs
	// resume contains where the follower of each container the backfill
	// read starts.
	resume map[containerKey]resumePoint
}

// resumePoint is the position a container's follower starts from.
type resumePoint struct {
	// after is the timestamp of the newest line already put.
	after time.Time
	// done lists the container instances whose logs need no more reads.
	done []string
}

// containerKey names one container of one pod.
type containerKey struct {
	pod       types.UID
	container string
}

// NewLogCollector returns a collector whose informer watches only the
// staging and app pods of the installation.
func NewLogCollector(o LogCollectorOptions) *LogCollector {
	o.setDefaults()
	selector := logPodSelector(o.Installation).String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	pods := factory.Core().V1().Pods()
	c := &LogCollector{
		o: o, factory: factory, informer: pods.Informer(), lister: pods.Lister(),
		slots: make(chan struct{}, o.MaxStreams), ready: make(chan struct{}),
		pods: map[types.UID]*podLogs{}, resume: map[containerKey]resumePoint{},
	}
	// AddEventHandler fails only on a stopped informer (client-go v0.37),
	// and this one has not started yet.
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    c.podAdded,
		UpdateFunc: c.podUpdated,
		DeleteFunc: c.podDeleted,
	})
	return c
}

// logPodSelector selects the staging, app and task pods of installation.
func logPodSelector(installation string) labels.Selector {
	components, _ := labels.NewRequirement(LabelComponent, selection.In, []string{ComponentApp, ComponentStaging, ComponentTask}) // Valid constants.
	selector := labels.Set(ownerLabels(installation, "")).AsSelector()
	return selector.Add(*components)
}

// Run collects until ctx ends. It backfills the recent lines of existing
// containers and audit events first, then follows every container and
// tails the audit events. It returns an error only when the informer
// cache cannot sync.
func (c *LogCollector) Run(ctx context.Context) error {
	c.started = time.Now()
	c.runCtx = ctx
	defer c.wg.Wait()
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return fmt.Errorf("log collector: informer cache did not sync: %w", context.Cause(ctx))
	}

	tail := c.backfill(ctx)
	close(c.ready)
	c.o.Logger.Info("log collector started", "pods", c.podCount(), "max_streams", c.o.MaxStreams)
	if tail != nil {
		c.tailAuditEvents(ctx, tail)
	}
	<-ctx.Done()
	c.o.Logger.Info("log collector stopped")
	return nil
}

func (c *LogCollector) podCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pods)
}

// acquire takes a stream slot, waiting while MaxStreams requests are open.
func (c *LogCollector) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// podLogs is the collector's state for one pod.
type podLogs struct {
	source logSource
	// ctx ends logDrainTimeout after the pod's deletion, or with Run.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// pod is the newest state the informer delivered.
	pod     *corev1.Pod
	deleted bool
	// changed is closed, and replaced, whenever pod or deleted changes.
	changed chan struct{}

	// Lifecycle lines already put, touched only by the event handlers.
	announcedCreate, announcedHealthy, announcedStop bool
}

func (p *podLogs) update(pod *corev1.Pod, deleted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pod, p.deleted = pod, p.deleted || deleted
	close(p.changed)
	p.changed = make(chan struct{})
}

// snapshot returns the newest pod state and a channel closed on the next
// change.
func (p *podLogs) snapshot() (pod *corev1.Pod, deleted bool, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod, p.deleted, p.changed
}

func (c *LogCollector) podAdded(obj any, isInInitialList bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	source, ok := podLogSourceOf(pod, c.o.Installation)
	if !ok {
		return
	}
	c.mu.Lock()
	p, exists := c.pods[pod.UID]
	if !exists {
		ctx, cancel := context.WithCancel(c.runCtx)
		p = &podLogs{source: source, ctx: ctx, cancel: cancel, pod: pod, changed: make(chan struct{})}
		c.pods[pod.UID] = p
	}
	c.mu.Unlock()
	if exists {
		p.update(pod, false)
	}
	if !isInInitialList {
		c.announce(p, nil, pod)
	}
	if !exists {
		c.startFollowers(p, pod)
	}
}

func (c *LogCollector) podUpdated(oldObj, newObj any) {
	before, ok1 := oldObj.(*corev1.Pod)
	after, ok2 := newObj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return
	}
	c.mu.Lock()
	p := c.pods[after.UID]
	c.mu.Unlock()
	if p == nil {
		c.podAdded(after, false)
		return
	}
	p.update(after, false)
	c.announce(p, before, after)
}

func (c *LogCollector) podDeleted(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	p := c.pods[pod.UID]
	delete(c.pods, pod.UID)
	for key := range c.resume {
		if key.pod == pod.UID {
			delete(c.resume, key)
		}
	}
	c.mu.Unlock()
	if p == nil {
		return
	}
	c.announceStop(p, pod)
	p.update(pod, true)
	// Followers that still read finish on their own when the kubelet ends
	// their streams, and the timeout bounds how long they may take.
	time.AfterFunc(logDrainTimeout, p.cancel)
}

// startFollowers starts one follower per container of a new pod.
func (c *LogCollector) startFollowers(p *podLogs, pod *corev1.Pod) {
	for _, name := range containerNames(pod) {
		f := newFollower(c, p, pod, name)
		c.wg.Go(func() { f.run(p.ctx) })
	}
}

// resumePointOf returns where a container's follower starts. A container
// the backfill did not read starts at the beginning of its log.
func (c *LogCollector) resumePointOf(key containerKey) resumePoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resume[key]
}

// put sends a line to the sink.
func (c *LogCollector) put(source logSource, at time.Time, sourceType string, payload []byte) {
	c.o.Sink.Put(logcache.Envelope{
		Timestamp:  at.UnixNano(),
		SourceID:   source.SourceID,
		InstanceID: source.InstanceID,
		SourceType: sourceType,
		Stream:     logcache.StreamOut,
		Payload:    payload,
	})
}
