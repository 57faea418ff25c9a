package logcache

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testSource = "0f0a5b2e-2a0c-4d43-9f5e-3c0c7d1b8a11"

func line(ts int64, payload string) Envelope {
	return Envelope{Timestamp: ts, SourceID: testSource, InstanceID: "0",
		SourceType: ProcessSourceType("web"), Stream: StreamOut, Payload: []byte(payload)}
}

// payloads returns the payloads of batch as strings, for short diffs.
func payloads(batch []Envelope) []string {
	out := []string{}
	for _, e := range batch {
		out = append(out, string(e.Payload))
	}
	return out
}

func timestamps(batch []Envelope) []int64 {
	out := []int64{}
	for _, e := range batch {
		out = append(out, e.Timestamp)
	}
	return out
}

func putLines(st *Store, n int) {
	for i := 1; i <= n; i++ {
		st.Put(line(int64(i*10), "line "+strconv.Itoa(i)))
	}
}

func TestStoreReadRanges(t *testing.T) {
	st := NewStore(Limits{})
	putLines(st, 5) // timestamps 10, 20, 30, 40, 50

	tests := []struct {
		name  string
		query Query
		want  []string
	}{
		{"everything", Query{Start: math.MinInt64, End: math.MaxInt64, Limit: 100},
			[]string{"line 1", "line 2", "line 3", "line 4", "line 5"}},
		{"start inclusive", Query{Start: 20, End: math.MaxInt64, Limit: 100},
			[]string{"line 2", "line 3", "line 4", "line 5"}},
		{"start between lines", Query{Start: 21, End: math.MaxInt64, Limit: 100},
			[]string{"line 3", "line 4", "line 5"}},
		{"end exclusive", Query{Start: 0, End: 40, Limit: 100},
			[]string{"line 1", "line 2", "line 3"}},
		{"limit keeps the oldest", Query{Start: 0, End: math.MaxInt64, Limit: 2},
			[]string{"line 1", "line 2"}},
		{"descending", Query{Start: 0, End: math.MaxInt64, Limit: 100, Descending: true},
			[]string{"line 5", "line 4", "line 3", "line 2", "line 1"}},
		{"descending limit keeps the newest", Query{Start: 0, End: math.MaxInt64, Limit: 2, Descending: true},
			[]string{"line 5", "line 4"}},
		{"descending latest line", Query{Start: math.MinInt64, End: math.MaxInt64, Limit: 1, Descending: true},
			[]string{"line 5"}},
		{"descending within range", Query{Start: 20, End: 40, Limit: 100, Descending: true},
			[]string{"line 3", "line 2"}},
		{"after the newest", Query{Start: 51, End: math.MaxInt64, Limit: 100}, []string{}},
		{"empty range", Query{Start: 30, End: 30, Limit: 100}, []string{}},
		{"end before start", Query{Start: 40, End: 20, Limit: 100}, []string{}},
		{"zero limit", Query{Start: 0, End: math.MaxInt64, Limit: 0}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := payloads(st.Read(testSource, tt.query))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Read(%+v) (-want +got):\n%s", tt.query, diff)
			}
		})
	}
}

func TestStoreReadUnknownSource(t *testing.T) {
	st := NewStore(Limits{})
	putLines(st, 1)
	if got := st.Read("another-source", Query{Start: 0, End: math.MaxInt64, Limit: 10}); len(got) != 0 {
		t.Errorf("Read(another-source) = %d lines, want 0", len(got))
	}
}

func TestStoreReadReturnsEnvelopeFields(t *testing.T) {
	st := NewStore(Limits{})
	st.Put(Envelope{Timestamp: 7, SourceID: testSource, InstanceID: "3", SourceType: SourceTypeStaging,
		Stream: StreamErr, Payload: []byte("compile failed")})

	got := st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10})
	want := []Envelope{{Timestamp: 7, SourceID: testSource, InstanceID: "3", SourceType: SourceTypeStaging,
		Stream: StreamErr, Payload: []byte("compile failed")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
}

func TestStoreRaisesTimestamps(t *testing.T) {
	st := NewStore(Limits{})
	st.Put(line(100, "a"))
	st.Put(line(100, "b")) // same timestamp
	st.Put(line(50, "c"))  // older than the newest
	st.Put(line(200, "d"))

	got := timestamps(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]int64{100, 101, 102, 200}, got); diff != "" {
		t.Errorf("timestamps (-want +got):\n%s", diff)
	}
}

func TestStoreRaisesTimestampsAfterDrops(t *testing.T) {
	st := NewStore(Limits{MaxEntriesPerSource: 1})
	st.Put(line(100, "a"))
	st.Put(line(90, "b")) // drops "a"; must still come after it

	got := timestamps(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]int64{101}, got); diff != "" {
		t.Errorf("timestamps (-want +got):\n%s", diff)
	}
}

func TestStoreZeroTimestampIsNow(t *testing.T) {
	st := NewStore(Limits{})
	now := time.Unix(1700000000, 5)
	st.now = func() time.Time { return now }
	st.Put(line(0, "a"))

	got := timestamps(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]int64{now.UnixNano()}, got); diff != "" {
		t.Errorf("timestamps (-want +got):\n%s", diff)
	}
}

func TestStoreIgnoresEmptySourceID(t *testing.T) {
	st := NewStore(Limits{})
	st.Put(Envelope{Timestamp: 1, Payload: []byte("x")})
	if got := st.Meta(); len(got) != 0 {
		t.Errorf("Meta() = %v, want no sources", got)
	}
}

func TestStoreCopiesPayload(t *testing.T) {
	st := NewStore(Limits{})
	buf := []byte("original")
	st.Put(Envelope{Timestamp: 1, SourceID: testSource, Payload: buf})
	copy(buf, "MUTATED!")

	got := payloads(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]string{"original"}, got); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
}

func TestStoreMaxEntriesDropsOldest(t *testing.T) {
	st := NewStore(Limits{MaxEntriesPerSource: 3})
	putLines(st, 5)

	got := payloads(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]string{"line 3", "line 4", "line 5"}, got); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	want := SourceMeta{Count: 3, Expired: 2, OldestTimestamp: 30, NewestTimestamp: 50}
	if diff := cmp.Diff(want, st.Meta()[testSource]); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
}

func TestStoreMaxBytesDropsOldest(t *testing.T) {
	st := NewStore(Limits{MaxBytesPerSource: 10})
	st.Put(line(1, "aaaa"))
	st.Put(line(2, "bbbb"))
	st.Put(line(3, "cccc")) // 12 bytes: "aaaa" goes

	got := payloads(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]string{"bbbb", "cccc"}, got); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
	if got := st.Meta()[testSource].Expired; got != 1 {
		t.Errorf("expired = %d, want 1", got)
	}
}

func TestStoreKeepsOversizedNewestLine(t *testing.T) {
	st := NewStore(Limits{MaxBytesPerSource: 4})
	st.Put(line(1, "aa"))
	st.Put(line(2, "much longer than four bytes"))

	got := payloads(st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 10}))
	if diff := cmp.Diff([]string{"much longer than four bytes"}, got); diff != "" {
		t.Errorf("payloads (-want +got):\n%s", diff)
	}
}

func TestStoreRingWrapsAround(t *testing.T) {
	st := NewStore(Limits{MaxEntriesPerSource: 100})
	putLines(st, 1234)

	got := st.Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: 1000})
	if len(got) != 100 {
		t.Fatalf("Read returned %d lines, want 100", len(got))
	}
	for i, e := range got {
		if want := "line " + strconv.Itoa(1135+i); string(e.Payload) != want {
			t.Fatalf("line %d = %q, want %q", i, e.Payload, want)
		}
	}
	middle := st.Read(testSource, Query{Start: 11500, End: 11530, Limit: 1000})
	if diff := cmp.Diff([]string{"line 1150", "line 1151", "line 1152"}, payloads(middle)); diff != "" {
		t.Errorf("range in a wrapped ring (-want +got):\n%s", diff)
	}
}

func TestStoreEvictsLeastRecentlyWrittenSource(t *testing.T) {
	st := NewStore(Limits{MaxSources: 2})
	st.Put(Envelope{Timestamp: 1, SourceID: "a", Payload: []byte("a1")})
	st.Put(Envelope{Timestamp: 1, SourceID: "b", Payload: []byte("b1")})
	st.Put(Envelope{Timestamp: 2, SourceID: "a", Payload: []byte("a2")}) // a is now the most recent
	st.Put(Envelope{Timestamp: 1, SourceID: "c", Payload: []byte("c1")}) // evicts b

	meta := st.Meta()
	if _, ok := meta["b"]; ok {
		t.Errorf("source b still present, want it evicted")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok := meta[id]; !ok {
			t.Errorf("source %s missing, want it kept", id)
		}
	}
	if got := st.EvictedSources(); got != 1 {
		t.Errorf("EvictedSources() = %d, want 1", got)
	}
	if got := st.Read("b", Query{Start: 0, End: math.MaxInt64, Limit: 10}); len(got) != 0 {
		t.Errorf("Read(b) = %d lines, want 0", len(got))
	}
}

func TestStoreMeta(t *testing.T) {
	st := NewStore(Limits{})
	putLines(st, 3)
	st.Put(Envelope{Timestamp: 5, SourceID: "other", Payload: []byte("x")})

	want := map[string]SourceMeta{
		testSource: {Count: 3, OldestTimestamp: 10, NewestTimestamp: 30},
		"other":    {Count: 1, OldestTimestamp: 5, NewestTimestamp: 5},
	}
	if diff := cmp.Diff(want, st.Meta()); diff != "" {
		t.Errorf("Meta() (-want +got):\n%s", diff)
	}
}

func TestStoreDefaults(t *testing.T) {
	want := Limits{MaxEntriesPerSource: DefaultMaxEntriesPerSource, MaxBytesPerSource: DefaultMaxBytesPerSource,
		MaxSources: DefaultMaxSources}
	if diff := cmp.Diff(want, NewStore(Limits{}).Limits()); diff != "" {
		t.Errorf("Limits() (-want +got):\n%s", diff)
	}
}

// TestStoreConcurrentWritesAndReads runs writers of several sources,
// readers and evictions at once; run it with -race. Every read must come
// back in strictly increasing timestamp order with intact payloads.
func TestStoreConcurrentWritesAndReads(t *testing.T) {
	st := NewStore(Limits{MaxEntriesPerSource: 200, MaxBytesPerSource: 4000, MaxSources: 3})
	const writers, linesPerWriter = 4, 2000

	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			source := fmt.Sprintf("source-%d", w)
			for i := 0; i < linesPerWriter; i++ {
				st.Put(Envelope{Timestamp: int64(i), SourceID: source, Payload: []byte(source + ":" + strconv.Itoa(i))})
			}
		}()
	}

	errs := make(chan error, writers)
	for r := 0; r < writers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			source := fmt.Sprintf("source-%d", r)
			prefix := []byte(source + ":")
			for i := 0; i < 500; i++ {
				batch := st.Read(source, Query{Start: math.MinInt64, End: math.MaxInt64, Limit: 1000, Descending: i%2 == 1})
				if err := checkBatch(batch, prefix, i%2 == 1); err != nil {
					errs <- err
					return
				}
				st.Meta()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func checkBatch(batch []Envelope, prefix []byte, descending bool) error {
	for i, e := range batch {
		if !bytes.HasPrefix(e.Payload, prefix) {
			return fmt.Errorf("payload %q does not belong to the source %s", e.Payload, prefix)
		}
		if i == 0 {
			continue
		}
		prev := batch[i-1].Timestamp
		if (!descending && e.Timestamp <= prev) || (descending && e.Timestamp >= prev) {
			return fmt.Errorf("timestamps out of order (descending %v): %d then %d", descending, prev, e.Timestamp)
		}
	}
	return nil
}
