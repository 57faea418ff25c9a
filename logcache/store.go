package logcache

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Limits. With them a full store holds at most about
// DefaultMaxSources × (DefaultMaxBytesPerSource + DefaultMaxEntriesPerSource
// × 80 bytes of bookkeeping), an estimated 4.7 GiB, but a source takes
// memory only for the lines it has.
const (
	DefaultMaxEntriesPerSource = 10000
	DefaultMaxBytesPerSource   = 4 << 20
	DefaultMaxSources          = 1000
)

// Limits bound the memory of a Store. Zero fields take the defaults.
type Limits struct {
	// MaxEntriesPerSource is the number of lines kept per source.
	MaxEntriesPerSource int
	// MaxBytesPerSource bounds the payload bytes kept per source. The newest
	// line is always kept, even when it alone is larger.
	MaxBytesPerSource int64
	// MaxSources is the number of sources kept. A new source beyond it
	// evicts the source that was written least recently, with all its lines.
	MaxSources int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntriesPerSource <= 0 {
		l.MaxEntriesPerSource = DefaultMaxEntriesPerSource
	}
	if l.MaxBytesPerSource <= 0 {
		l.MaxBytesPerSource = DefaultMaxBytesPerSource
	}
	if l.MaxSources <= 0 {
		l.MaxSources = DefaultMaxSources
	}
	return l
}

// Query selects lines of one source, as a log-cache read request does.
type Query struct {
	// Start is the first timestamp included, in Unix nanoseconds.
	Start int64
	// End is the first timestamp excluded. Reads return nothing when End is
	// not after Start.
	End int64
	// Limit is the maximum number of lines returned; values below 1 return
	// nothing.
	Limit int
	// Descending returns the newest lines first. The limit then keeps the
	// newest lines of the range instead of the oldest.
	Descending bool
}

// SourceMeta describes what a Store holds for one source, as log-cache's
// /api/v1/meta reports it.
type SourceMeta struct {
	// Count is the number of lines held.
	Count int64
	// Expired is the number of lines dropped to stay within the limits.
	Expired int64
	// OldestTimestamp and NewestTimestamp are the timestamps of the oldest
	// line held and of the newest line ever written, in Unix nanoseconds.
	OldestTimestamp int64
	NewestTimestamp int64
}

// Store keeps the recent lines of each source in memory. It implements Sink.
// Every method is safe for concurrent use. Writers and readers of different
// sources contend only while a new source is added, and a reader holds a
// source's lock only while it copies at most one read's worth of lines.
type Store struct {
	limits Limits
	now    func() time.Time

	// mu guards sources. Put holds it for reading except when it adds a
	// source. Lock order is mu, then a source's mu.
	mu      sync.RWMutex
	sources map[string]*source

	// writes numbers Put calls, so that a source's lastWrite orders sources
	// by their latest write.
	writes  atomic.Int64
	evicted atomic.Int64
}

// NewStore returns an empty store bounded by limits.
func NewStore(limits Limits) *Store {
	return &Store{limits: limits.withDefaults(), now: time.Now, sources: map[string]*source{}}
}

// Limits returns the store's limits with defaults applied.
func (s *Store) Limits() Limits { return s.limits }

// EvictedSources returns how many sources were evicted to stay within
// MaxSources.
func (s *Store) EvictedSources() int64 { return s.evicted.Load() }

// Put stores a copy of e. A zero Timestamp means now. A timestamp that is not
// after the source's newest one is raised to newest+1, because log-cache
// clients walk a source by asking for timestamps after the last one they saw.
// Envelopes without a SourceID are ignored.
func (s *Store) Put(e Envelope) {
	if e.SourceID == "" {
		return
	}
	if e.Timestamp == 0 {
		e.Timestamp = s.now().UnixNano()
	}
	payload := make([]byte, len(e.Payload))
	copy(payload, e.Payload)
	e.Payload = payload

	for {
		src := s.sourceFor(e.SourceID)
		src.mu.Lock()
		if src.evicted {
			// Evicted between the lookup and the lock: look it up again,
			// which creates a new source.
			src.mu.Unlock()
			continue
		}
		src.append(e, s.limits)
		src.mu.Unlock()
		src.lastWrite.Store(s.writes.Add(1))
		return
	}
}

// Read returns the lines of sourceID that q selects, oldest first unless
// q.Descending. Payloads are shared with the store: callers must not modify
// them.
func (s *Store) Read(sourceID string, q Query) []Envelope {
	if q.Limit < 1 || q.End <= q.Start {
		return nil
	}
	s.mu.RLock()
	src := s.sources[sourceID]
	s.mu.RUnlock()
	if src == nil {
		return nil
	}

	src.mu.RLock()
	defer src.mu.RUnlock()
	return src.read(sourceID, q)
}

// Meta returns what the store holds for each source.
func (s *Store) Meta() map[string]SourceMeta {
	s.mu.RLock()
	sources := make(map[string]*source, len(s.sources))
	for id, src := range s.sources {
		sources[id] = src
	}
	s.mu.RUnlock()

	meta := make(map[string]SourceMeta, len(sources))
	for id, src := range sources {
		src.mu.RLock()
		if !src.evicted {
			meta[id] = src.meta()
		}
		src.mu.RUnlock()
	}
	return meta
}

// sourceFor returns the source with id, creating it, and evicting the least
// recently written source when the store is full.
func (s *Store) sourceFor(id string) *source {
	s.mu.RLock()
	src := s.sources[id]
	s.mu.RUnlock()
	if src != nil {
		return src
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if src := s.sources[id]; src != nil {
		return src
	}
	for len(s.sources) >= s.limits.MaxSources {
		s.evictLeastRecentlyWritten()
	}
	src = &source{}
	src.lastWrite.Store(s.writes.Add(1))
	s.sources[id] = src
	return src
}

// evictLeastRecentlyWritten removes the source whose latest write is the
// oldest. The caller holds s.mu for writing. It scans every source, but
// only when a new source arrives at a full store.
func (s *Store) evictLeastRecentlyWritten() {
	var victimID string
	var victim *source
	for id, src := range s.sources {
		if victim == nil || src.lastWrite.Load() < victim.lastWrite.Load() {
			victimID, victim = id, src
		}
	}
	if victim == nil {
		return
	}
	victim.mu.Lock()
	victim.evicted = true
	victim.entries = nil
	victim.count, victim.bytes = 0, 0
	victim.mu.Unlock()
	delete(s.sources, victimID)
	s.evicted.Add(1)
}

// entry is one stored line. The source ID is the map key, so it is not
// repeated per line.
type entry struct {
	timestamp  int64
	payload    []byte
	instanceID string
	sourceType string
	stream     string
}

// source is the ring buffer of one source's lines, ordered by timestamp,
// which strictly increases from head to the newest entry.
type source struct {
	mu sync.RWMutex
	// entries is the ring. It grows by doubling up to MaxEntriesPerSource,
	// so a quiet source takes little memory.
	entries []entry
	head    int // index of the oldest entry
	count   int
	bytes   int64
	// newest is the newest timestamp ever stored, kept after its entry is
	// dropped so later lines still come after it.
	newest  int64
	written bool
	expired int64
	evicted bool

	lastWrite atomic.Int64
}

// at returns the i-th oldest entry, 0 <= i < count.
func (src *source) at(i int) *entry {
	i += src.head
	if i >= len(src.entries) {
		i -= len(src.entries)
	}
	return &src.entries[i]
}

func (src *source) append(e Envelope, limits Limits) {
	if src.written && e.Timestamp <= src.newest {
		e.Timestamp = src.newest + 1
	}
	src.newest, src.written = e.Timestamp, true

	if src.count > 0 {
		// Consecutive lines usually share these strings: keep one copy.
		last := src.at(src.count - 1)
		if e.SourceType == last.sourceType {
			e.SourceType = last.sourceType
		}
		if e.InstanceID == last.instanceID {
			e.InstanceID = last.instanceID
		}
	}

	if src.count == limits.MaxEntriesPerSource {
		src.dropOldest()
	}
	for src.count > 0 && src.bytes+int64(len(e.Payload)) > limits.MaxBytesPerSource {
		src.dropOldest()
	}
	if src.count == len(src.entries) {
		src.grow(limits.MaxEntriesPerSource)
	}

	*src.at(src.count) = entry{
		timestamp:  e.Timestamp,
		payload:    e.Payload,
		instanceID: e.InstanceID,
		sourceType: e.SourceType,
		stream:     e.Stream,
	}
	src.count++
	src.bytes += int64(len(e.Payload))
}

func (src *source) dropOldest() {
	oldest := src.at(0)
	src.bytes -= int64(len(oldest.payload))
	*oldest = entry{}
	src.head++
	if src.head == len(src.entries) {
		src.head = 0
	}
	src.count--
	src.expired++
}

// grow doubles the ring, at most to max entries, and moves the oldest entry
// to index 0.
func (src *source) grow(max int) {
	size := 2 * len(src.entries)
	if size < 16 {
		size = 16
	}
	if size > max {
		size = max
	}
	grown := make([]entry, size)
	for i := 0; i < src.count; i++ {
		grown[i] = *src.at(i)
	}
	src.entries = grown
	src.head = 0
}

// firstAtOrAfter returns the index of the first entry with a timestamp at
// or after ts, or src.count when there is none.
func (src *source) firstAtOrAfter(ts int64) int {
	return sort.Search(src.count, func(i int) bool { return src.at(i).timestamp >= ts })
}

func (src *source) read(sourceID string, q Query) []Envelope {
	from := src.firstAtOrAfter(q.Start)
	to := src.firstAtOrAfter(q.End)
	n := to - from
	if n <= 0 {
		return nil
	}
	if n > q.Limit {
		n = q.Limit
	}

	out := make([]Envelope, n)
	for i := range out {
		index := from + i
		if q.Descending {
			index = to - 1 - i
		}
		e := src.at(index)
		out[i] = Envelope{
			Timestamp:  e.timestamp,
			SourceID:   sourceID,
			InstanceID: e.instanceID,
			SourceType: e.sourceType,
			Stream:     e.stream,
			Payload:    e.payload,
		}
	}
	return out
}

func (src *source) meta() SourceMeta {
	m := SourceMeta{Count: int64(src.count), Expired: src.expired, NewestTimestamp: src.newest}
	if src.count > 0 {
		m.OldestTimestamp = src.at(0).timestamp
	}
	return m
}
