package k8sbackend

import (
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// logLine is one line waiting to be put.
type logLine struct {
	at         time.Time
	source     logSource
	sourceType string
	payload    []byte
}

// backfill puts the recent lines of the containers that exist when the
// collector starts, and the recent audit events, and records where each
// container's follower resumes. The sink raises a timestamp that is older
// than its source's newest one, so the lines of each app are merged by
// timestamp before they are put. It returns the audit tail to continue
// with, or nil without a store.
func (c *LogCollector) backfill(ctx context.Context) *store.AuditTail {
	pods, _ := c.lister.List(labels.Everything()) // A cache lister returns no error.
	podsBySource := map[string][]*corev1.Pod{}
	for _, pod := range pods {
		if source, ok := podLogSourceOf(pod, c.o.Installation); ok {
			podsBySource[source.SourceID] = append(podsBySource[source.SourceID], pod)
		}
	}
	tail, events := c.backfillAuditEvents(ctx)

	sources := slices.Collect(maps.Keys(podsBySource))
	for id := range events {
		if _, ok := podsBySource[id]; !ok {
			sources = append(sources, id)
		}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range backfillWorkers {
		wg.Go(func() {
			for id := range work {
				c.backfillSource(ctx, podsBySource[id], events[id])
			}
		})
	}
	for _, id := range sources {
		work <- id
	}
	close(work)
	wg.Wait()
	return tail
}

// backfillSource reads back the containers of one app's pods and puts
// their lines and the app's audit event lines in timestamp order.
func (c *LogCollector) backfillSource(ctx context.Context, pods []*corev1.Pod, events []store.AuditEvent) {
	var lines []logLine
	for _, pod := range pods {
		source, _ := podLogSourceOf(pod, c.o.Installation)
		for _, name := range containerNames(pod) {
			lines = append(lines, c.backfillContainer(ctx, pod, source, name)...)
		}
	}
	for _, ev := range events {
		if line, ok := auditLogLine(ev); ok {
			lines = append(lines, line)
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	for _, line := range lines {
		c.put(line.source, line.at, line.sourceType, line.payload)
	}
}

// backfillContainer reads the recent lines of a container's latest
// instance and records where its follower resumes. That is after the
// newest line read, or at the start of the window when there was none. It
// is at the collector's start when the read failed, so that older lines
// are never put out of order. Exited instances count as read: the latest
// one if it exited, and the one before it, which the backfill skips.
func (c *LogCollector) backfillContainer(ctx context.Context, pod *corev1.Pod, source logSource, name string) []logLine {
	key := containerKey{pod: pod.UID, container: name}
	cs := containerStatusOf(pod, name)
	if cs == nil || !hasLog(cs) {
		return nil
	}
	var done []string
	for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
		if t != nil && t.ContainerID != "" {
			done = append(done, t.ContainerID)
		}
	}
	if c.o.BackfillWindow < 0 {
		c.setResume(key, resumePoint{after: c.started, done: done})
		return nil
	}

	since := c.started.Add(-c.o.BackfillWindow)
	var lines []logLine
	err := c.readBack(ctx, pod, name, since, func(at time.Time, payload []byte) {
		lines = append(lines, logLine{at: at, source: source, sourceType: source.SourceType, payload: payload})
	})
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.o.Logger.Warn("reading back a container log failed; its older lines are skipped", "namespace", pod.Namespace,
				"pod", pod.Name, "container", name, "error", err)
		}
		c.setResume(key, resumePoint{after: c.started, done: done})
		return nil
	case len(lines) > 0:
		c.setResume(key, resumePoint{after: lines[len(lines)-1].at, done: done})
	default:
		c.setResume(key, resumePoint{after: since, done: done})
	}
	return lines
}

// readBack sends one request for the latest lines of a container since
// since, without following it.
func (c *LogCollector) readBack(ctx context.Context, pod *corev1.Pod, name string, since time.Time, fn func(time.Time, []byte)) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	opts := &corev1.PodLogOptions{Container: name, Timestamps: true, SinceTime: &metav1.Time{Time: since},
		TailLines: ptr.To(c.o.BackfillLines), LimitBytes: ptr.To(int64(backfillMaxBytes))}
	stream, err := c.o.Streamer.StreamLogs(ctx, pod.Namespace, pod.Name, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	return scanLogLines(stream, func(at time.Time, payload []byte, _ bool) {
		if !at.Before(since) {
			fn(at, payload)
		}
	})
}

// hasLog reports whether a container instance has run, so the kubelet has
// a log for it.
func hasLog(cs *corev1.ContainerStatus) bool {
	if cs.State.Running != nil || (cs.State.Terminated != nil && cs.State.Terminated.ContainerID != "") {
		return true
	}
	last := cs.LastTerminationState.Terminated
	return last != nil && last.ContainerID != ""
}

// containerNames lists a pod's init containers and containers.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, ct := range pod.Spec.InitContainers {
		names = append(names, ct.Name)
	}
	for _, ct := range pod.Spec.Containers {
		names = append(names, ct.Name)
	}
	return names
}

func (c *LogCollector) setResume(key containerKey, point resumePoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resume[key] = point
}
