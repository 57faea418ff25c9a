package k8sbackend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxLogLineBytes is the largest payload of one envelope. A longer line is
// split into several envelopes with the same timestamp.
const maxLogLineBytes = 64 << 10

// Delays between the log requests of one container.
const (
	// followPause is how long a follower waits, unless the pod changes
	// first, after a stream of a running container ended. The kubelet ends
	// a stream when the container exits, and the pod status saying so
	// usually arrives within this time.
	followPause = time.Second
	// maxLogRetryDelay caps the delay after failed or empty requests.
	maxLogRetryDelay = 30 * time.Second
)

// follower reads the log of one container of one pod, one container
// instance after another, and puts each line once.
type follower struct {
	c         *LogCollector
	p         *podLogs
	namespace string
	pod       string
	uid       types.UID
	container string
	// after is the timestamp of the newest line put. Every request reads
	// the lines since then and skips those at or before it, so a reconnect
	// or a read of the next instance sends no line twice.
	after time.Time
	// ended contains the container IDs whose log was read to its end.
	ended map[string]bool
	// done contains the exited container IDs that need no more reads.
	done map[string]bool
	// limiter enforces the app instance's log rate limit. It is nil when
	// the instance has none.
	limiter  *logRateLimiter
	failures int
}

// logRead is one log request of a follower.
type logRead struct {
	containerID string
	// previous reads the instance before the current one.
	previous bool
	// follow keeps the request open for new lines of a running container.
	follow bool
}

func newFollower(c *LogCollector, p *podLogs, pod *corev1.Pod, container string) *follower {
	f := &follower{
		c: c, p: p, namespace: pod.Namespace, pod: pod.Name, uid: pod.UID, container: container,
		ended: map[string]bool{}, done: map[string]bool{},
	}
	if p.source.RateLimit >= 0 {
		f.limiter = &logRateLimiter{limit: p.source.RateLimit}
	}
	return f
}

// run reads the container's log until the pod is deleted and its last
// instance is read, or ctx ends.
func (f *follower) run(ctx context.Context) {
	select {
	case <-f.c.ready:
	case <-ctx.Done():
		return
	}
	resume := f.c.resumePointOf(containerKey{pod: f.uid, container: f.container})
	f.after = resume.after
	for _, id := range resume.done {
		f.done[id] = true
	}
	idle := 0
	for {
		pod, deleted, changed := f.p.snapshot()
		read, ok := f.next(pod)
		if !ok {
			if deleted || !waitForChange(ctx, changed, 0) {
				return
			}
			continue
		}

		lines, err := f.read(ctx, read)
		if ctx.Err() != nil {
			return
		}
		pod, deleted, changed = f.p.snapshot()
		switch {
		case err != nil:
			f.logFailure(read, err)
			if deleted || !waitForChange(ctx, changed, retryDelay(f.failures)) {
				return
			}
		case read.follow:
			f.failures = 0
			if lines > 0 {
				idle = 0
			} else {
				idle++
			}
			if deleted {
				return
			}
			// A stream that ended while the status still shows the same
			// instance running broke, or the status lags behind the exit,
			// so the follower waits for the status before reconnecting.
			if stillRunning(pod, f.container, read.containerID) &&
				!waitForChange(ctx, changed, min(followPause<<min(idle, 5), maxLogRetryDelay)) {
				return
			}
		default:
			f.failures = 0
		}
	}
}

// stillRunning reports whether a pod's status shows the container instance
// id running.
func stillRunning(pod *corev1.Pod, container, id string) bool {
	cs := containerStatusOf(pod, container)
	return cs != nil && cs.State.Running != nil && cs.ContainerID == id
}

// next returns the next read the container needs, if any. Instances are
// read in order: the previous one when it exited before its log was read
// to the end, then the current one.
func (f *follower) next(pod *corev1.Pod) (logRead, bool) {
	cs := containerStatusOf(pod, f.container)
	if cs == nil {
		return logRead{}, false
	}
	f.forgetOld(cs)
	if last := cs.LastTerminationState.Terminated; last != nil && f.pending(last) {
		return logRead{containerID: last.ContainerID, previous: true}, true
	}
	if t := cs.State.Terminated; t != nil {
		if f.pending(t) {
			return logRead{containerID: t.ContainerID}, true
		}
		return logRead{}, false
	}
	if cs.State.Running != nil && cs.ContainerID != "" {
		return logRead{containerID: cs.ContainerID, follow: true}, true
	}
	return logRead{}, false
}

// pending reports whether the log of an exited instance needs a read. An
// instance whose log was read to its end is done, and gets its exit line.
// NOTE: a stream that broke cleanly just before its container exited
// counts as read to the end, so lines written in between are lost.
func (f *follower) pending(t *corev1.ContainerStateTerminated) bool {
	id := t.ContainerID
	if id == "" || f.done[id] {
		return false
	}
	if !f.ended[id] {
		return true
	}
	f.done[id] = true
	f.c.put(f.p.source, time.Now(), f.p.source.SourceType, []byte("Exit status "+strconv.Itoa(int(t.ExitCode))))
	return false
}

// forgetOld drops the IDs of instances the pod status no longer names.
func (f *follower) forgetOld(cs *corev1.ContainerStatus) {
	keep := map[string]bool{cs.ContainerID: true}
	if t := cs.State.Terminated; t != nil {
		keep[t.ContainerID] = true
	}
	if t := cs.LastTerminationState.Terminated; t != nil {
		keep[t.ContainerID] = true
	}
	for _, ids := range []map[string]bool{f.ended, f.done} {
		for id := range ids {
			if !keep[id] {
				delete(ids, id)
			}
		}
	}
}

// read sends one log request and puts the lines newer than f.after. It
// returns how many lines it put, and nil when the stream reached its end.
func (f *follower) read(ctx context.Context, r logRead) (int, error) {
	release, err := f.c.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer release()

	opts := &corev1.PodLogOptions{Container: f.container, Follow: r.follow, Previous: r.previous, Timestamps: true}
	if !f.after.IsZero() {
		// The API has second precision, so the first lines returned may be
		// at or before f.after, and the loop below skips them.
		opts.SinceTime = &metav1.Time{Time: f.after}
	}
	stream, err := f.c.o.Streamer.StreamLogs(ctx, f.namespace, f.pod, opts)
	if err != nil {
		return 0, err
	}
	defer stream.Close()

	lines, keep := 0, false
	err = scanLogLines(stream, func(at time.Time, payload []byte, first bool) {
		if first {
			keep = at.After(f.after)
			if keep {
				f.after = at
				lines++
			}
		}
		if keep {
			f.putLine(at, payload)
		}
	})
	if err != nil {
		return lines, err
	}
	f.ended[r.containerID] = true
	return lines, nil
}

// putLine puts one line of the container's output, unless it exceeds the
// instance's log rate limit.
func (f *follower) putLine(at time.Time, payload []byte) {
	source := f.p.source
	if f.limiter != nil && !f.limiter.allow(at, len(payload)) {
		if f.limiter.shouldReport(at) {
			text := fmt.Sprintf("app instance exceeded log rate limit (%d bytes/sec)", f.limiter.limit)
			f.c.put(source, at, source.SourceType, []byte(text))
		}
		return
	}
	f.c.put(source, at, source.SourceType, payload)
}

// logFailure logs a failed request: the first of a series and every tenth,
// with names only, never log contents.
func (f *follower) logFailure(r logRead, err error) {
	f.failures++
	if f.failures == 1 || f.failures%10 == 0 {
		f.c.o.Logger.Warn("reading a container log failed; retrying", "namespace", f.namespace, "pod", f.pod,
			"container", f.container, "previous", r.previous, "failures", f.failures, "error", err)
	}
}

// retryDelay is the delay after the nth failure in a row: 1 s, doubling,
// at most maxLogRetryDelay.
func retryDelay(failures int) time.Duration {
	return min(time.Second<<min(max(failures-1, 0), 5), maxLogRetryDelay)
}

// waitForChange waits until changed is closed, d passes (when positive) or
// ctx ends, and reports whether ctx is still live.
func waitForChange(ctx context.Context, changed <-chan struct{}, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-changed:
	case <-timeout:
	}
	return true
}

// containerStatusOf returns the status of a pod's container or init
// container, or nil.
func containerStatusOf(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// scanLogLines reads log output that the kubelet prefixed with timestamps
// and calls fn per line, without the line's timestamp and newline. A line
// longer than maxLogLineBytes comes in pieces: first is false for the
// later ones, which carry the line's timestamp. A line whose timestamp
// does not parse gets the previous line's, or the current time. It returns
// nil at the end of r.
func scanLogLines(r io.Reader, fn func(at time.Time, payload []byte, first bool)) error {
	reader := bufio.NewReaderSize(r, maxLogLineBytes)
	var at time.Time
	first := true
	for {
		chunk, err := reader.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			payload := bytes.TrimSuffix(chunk, []byte("\n"))
			if first {
				at, payload = splitLogTimestamp(payload, at)
			}
			fn(at, bytes.Clone(payload), first)
			first = complete
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

// splitLogTimestamp splits the RFC 3339 timestamp the kubelet puts before
// each line from the line.
func splitLogTimestamp(line []byte, previous time.Time) (time.Time, []byte) {
	if i := bytes.IndexByte(line, ' '); i > 0 {
		if at, err := time.Parse(time.RFC3339Nano, string(line[:i])); err == nil {
			return at, line[i+1:]
		}
	}
	if previous.IsZero() {
		previous = time.Now()
	}
	return previous, line
}

// logRateLimiter is a token bucket of bytes per second, filled at the
// pace of the lines' timestamps, so a backlog read at once is limited as
// it was written.
type logRateLimiter struct {
	limit    int64
	tokens   float64
	last     time.Time
	reported time.Time
}

// allow reports whether a payload of n bytes written at at fits the limit,
// and takes its bytes from the bucket if so.
func (l *logRateLimiter) allow(at time.Time, n int) bool {
	switch {
	case l.last.IsZero():
		l.tokens, l.last = float64(l.limit), at
	case at.After(l.last):
		l.tokens = min(float64(l.limit), l.tokens+at.Sub(l.last).Seconds()*float64(l.limit))
		l.last = at
	}
	if l.tokens < float64(n) {
		return false
	}
	l.tokens -= float64(n)
	return true
}

// shouldReport reports whether a dropped line at at gets the rate limit
// line: at most one per second.
func (l *logRateLimiter) shouldReport(at time.Time) bool {
	if !l.reported.IsZero() && at.Sub(l.reported) < time.Second {
		return false
	}
	l.reported = at
	return true
}
