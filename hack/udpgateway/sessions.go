package main

import (
	"net/netip"
	"slices"
	"time"
)

// picker chooses a backend endpoint for each new session: first a
// backendRef group in proportion to its weight, then the group's endpoints
// in turn. It is not safe for concurrent use.
type picker struct {
	groups      []BackendGroup
	totalWeight int64
	next        int64
	// turns counts the sessions each group has received, for its round robin.
	turns []int
}

func newPicker(groups []BackendGroup) *picker {
	p := &picker{}
	for _, g := range groups {
		if g.Weight <= 0 || len(g.Endpoints) == 0 {
			continue
		}
		p.groups = append(p.groups, g)
		p.totalWeight += int64(g.Weight)
	}
	p.turns = make([]int, len(p.groups))
	return p
}

// pick returns the endpoint for a new session, or false when there is none.
func (p *picker) pick() (netip.AddrPort, bool) {
	if p.totalWeight == 0 {
		return netip.AddrPort{}, false
	}
	slot := p.next % p.totalWeight
	p.next++
	for i, g := range p.groups {
		if slot < int64(g.Weight) {
			e := g.Endpoints[p.turns[i]%len(g.Endpoints)]
			p.turns[i]++
			return e, true
		}
		slot -= int64(g.Weight)
	}
	return netip.AddrPort{}, false
}

// contains reports whether e is one of the picker's endpoints.
func (p *picker) contains(e netip.AddrPort) bool {
	for _, g := range p.groups {
		if slices.Contains(g.Endpoints, e) {
			return true
		}
	}
	return false
}

// sessionTable maps client addresses to sessions and finds idle ones. It
// is not safe for concurrent use, so Proxy guards it with its mutex.
type sessionTable[S any] struct {
	max     int
	entries map[netip.AddrPort]*tableEntry[S]
}

type tableEntry[S any] struct {
	session  S
	backend  netip.AddrPort
	lastSeen time.Time
}

func newSessionTable[S any](max int) *sessionTable[S] {
	return &sessionTable[S]{max: max, entries: map[netip.AddrPort]*tableEntry[S]{}}
}

// get returns the session of client and marks it active at now.
func (t *sessionTable[S]) get(client netip.AddrPort, now time.Time) (S, bool) {
	e, ok := t.entries[client]
	if !ok {
		var zero S
		return zero, false
	}
	e.lastSeen = now
	return e.session, true
}

// touch marks the session of client active at now, if it still exists.
func (t *sessionTable[S]) touch(client netip.AddrPort, now time.Time) {
	if e, ok := t.entries[client]; ok && now.After(e.lastSeen) {
		e.lastSeen = now
	}
}

// full reports whether the table has reached its maximum size.
func (t *sessionTable[S]) full() bool { return len(t.entries) >= t.max }

func (t *sessionTable[S]) add(client, backend netip.AddrPort, s S, now time.Time) {
	t.entries[client] = &tableEntry[S]{session: s, backend: backend, lastSeen: now}
}

// remove deletes the session of client and returns it.
func (t *sessionTable[S]) remove(client netip.AddrPort) (S, bool) {
	e, ok := t.entries[client]
	if !ok {
		var zero S
		return zero, false
	}
	delete(t.entries, client)
	return e.session, true
}

// expire removes and returns the sessions not active since before
// now - idle.
func (t *sessionTable[S]) expire(now time.Time, idle time.Duration) []S {
	var out []S
	for client, e := range t.entries {
		if now.Sub(e.lastSeen) >= idle {
			out = append(out, e.session)
			delete(t.entries, client)
		}
	}
	return out
}

// removeUnless removes and returns the sessions whose backend keep rejects.
func (t *sessionTable[S]) removeUnless(keep func(netip.AddrPort) bool) []S {
	var out []S
	for client, e := range t.entries {
		if !keep(e.backend) {
			out = append(out, e.session)
			delete(t.entries, client)
		}
	}
	return out
}

func (t *sessionTable[S]) len() int { return len(t.entries) }
