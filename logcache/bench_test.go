package logcache

import (
	"math"
	"strconv"
	"sync/atomic"
	"testing"
)

// benchPayload is a typical app log line of about 100 bytes.
var benchPayload = []byte(`2026-05-01T10:00:00.000Z INFO request completed method=GET path=/api/orders status=200 duration_ms=12`)

// fullStore returns a store whose one source holds n lines, timestamps
// 1000, 2000, ….
func fullStore(n int) *Store {
	st := NewStore(Limits{MaxEntriesPerSource: n})
	for i := 1; i <= n; i++ {
		st.Put(Envelope{Timestamp: int64(i) * 1000, SourceID: testSource, InstanceID: "0",
			SourceType: "APP/PROC/WEB", Stream: StreamOut, Payload: benchPayload})
	}
	return st
}

// BenchmarkPut measures a write to a full source, which also drops its
// oldest line.
func BenchmarkPut(b *testing.B) {
	st := fullStore(DefaultMaxEntriesPerSource)
	e := Envelope{SourceID: testSource, InstanceID: "0", SourceType: "APP/PROC/WEB", Stream: StreamOut, Payload: benchPayload}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Timestamp = int64(DefaultMaxEntriesPerSource+i+1) * 1000
		st.Put(e)
	}
}

// BenchmarkPutManySources spreads writes over 1,000 sources from all
// processors at once.
func BenchmarkPutManySources(b *testing.B) {
	st := NewStore(Limits{})
	sources := make([]string, 1000)
	for i := range sources {
		sources[i] = "source-" + strconv.Itoa(i)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := Envelope{InstanceID: "0", SourceType: "APP/PROC/WEB", Stream: StreamOut, Payload: benchPayload}
		for pb.Next() {
			i := next.Add(1)
			e.SourceID = sources[i%int64(len(sources))]
			e.Timestamp = i
			st.Put(e)
		}
	})
}

// BenchmarkRead reads 100 lines from the middle of a full source, as a
// tailing cf CLI does with the default limit.
func BenchmarkRead(b *testing.B) {
	st := fullStore(DefaultMaxEntriesPerSource)
	q := Query{Start: 5000 * 1000, End: math.MaxInt64, Limit: DefaultReadLimit}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := st.Read(testSource, q); len(got) != DefaultReadLimit {
			b.Fatalf("read %d lines", len(got))
		}
	}
}

// BenchmarkReadLatest is the cf CLI's "latest envelope" poll:
// descending, limit 1.
func BenchmarkReadLatest(b *testing.B) {
	st := fullStore(DefaultMaxEntriesPerSource)
	q := Query{Start: math.MinInt64, End: math.MaxInt64, Limit: 1, Descending: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Read(testSource, q)
	}
}

// BenchmarkReadRecent is `cf logs --recent`: the newest 1,000 lines.
func BenchmarkReadRecent(b *testing.B) {
	st := fullStore(DefaultMaxEntriesPerSource)
	q := Query{Start: math.MinInt64, End: math.MaxInt64, Limit: MaxReadLimit, Descending: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Read(testSource, q)
	}
}

// BenchmarkReadWhileWriting runs 100-line reads on every processor while
// one goroutine writes to the same source without pause.
func BenchmarkReadWhileWriting(b *testing.B) {
	st := fullStore(DefaultMaxEntriesPerSource)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		e := Envelope{SourceID: testSource, InstanceID: "0", SourceType: "APP/PROC/WEB", Stream: StreamOut, Payload: benchPayload}
		for i := int64(DefaultMaxEntriesPerSource + 1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.Timestamp = i * 1000
			st.Put(e)
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		q := Query{Start: math.MinInt64, End: math.MaxInt64, Limit: DefaultReadLimit, Descending: true}
		for pb.Next() {
			st.Read(testSource, q)
		}
	})
	b.StopTimer()
	close(stop)
	<-done
}

// BenchmarkEncodeReadResponse encodes a 100-line batch as JSON.
func BenchmarkEncodeReadResponse(b *testing.B) {
	batch := fullStore(DefaultReadLimit).Read(testSource, Query{Start: 0, End: math.MaxInt64, Limit: DefaultReadLimit})
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = appendReadResponse(buf[:0], batch)
	}
	b.SetBytes(int64(len(buf)))
}
