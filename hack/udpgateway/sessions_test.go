package main

import (
	"net/netip"
	"testing"
	"time"
)

func TestPickerWeights(t *testing.T) {
	p := newPicker([]BackendGroup{
		{Weight: 3, Endpoints: []netip.AddrPort{ep("10.88.0.20:9000"), ep("10.88.0.21:9000")}},
		{Weight: 1, Endpoints: []netip.AddrPort{ep("10.88.0.40:9000")}},
		{Weight: 0, Endpoints: []netip.AddrPort{ep("10.88.0.50:9000")}},
		{Weight: 5},
	})

	counts := map[netip.AddrPort]int{}
	for range 400 {
		e, ok := p.pick()
		if !ok {
			t.Fatal("pick found no endpoint")
		}
		counts[e]++
	}

	want := map[netip.AddrPort]int{ep("10.88.0.20:9000"): 150, ep("10.88.0.21:9000"): 150, ep("10.88.0.40:9000"): 100}
	for e, n := range want {
		if counts[e] != n {
			t.Errorf("endpoint %s picked %d times, want %d", e, counts[e], n)
		}
	}
	if counts[ep("10.88.0.50:9000")] != 0 {
		t.Errorf("endpoint of a zero-weight group was picked")
	}
}

func TestPickerEmpty(t *testing.T) {
	if _, ok := newPicker(nil).pick(); ok {
		t.Error("pick on no backends succeeded")
	}
}

func TestSessionTableExpire(t *testing.T) {
	table := newSessionTable[string](10)
	a, b := ep("127.0.0.1:40000"), ep("127.0.0.1:40001")
	table.add(a, ep("10.88.0.20:9000"), "a", t0)
	table.add(b, ep("10.88.0.20:9000"), "b", t0)
	table.touch(b, t0.Add(50*time.Second))

	expired := table.expire(t0.Add(60*time.Second), 60*time.Second)

	if len(expired) != 1 || expired[0] != "a" {
		t.Errorf("expired = %v, want [a]", expired)
	}
	if _, ok := table.get(b, t0.Add(61*time.Second)); !ok {
		t.Error("session b was expired although it was active 10 s before")
	}
	if _, ok := table.get(a, t0.Add(61*time.Second)); ok {
		t.Error("session a is still in the table")
	}
}

func TestSessionTableFull(t *testing.T) {
	table := newSessionTable[int](2)
	table.add(ep("127.0.0.1:1"), ep("10.88.0.20:9000"), 1, t0)
	if table.full() {
		t.Error("table with 1 of 2 sessions is full")
	}
	table.add(ep("127.0.0.1:2"), ep("10.88.0.20:9000"), 2, t0)
	if !table.full() {
		t.Error("table with 2 of 2 sessions is not full")
	}
	if _, ok := table.remove(ep("127.0.0.1:1")); !ok {
		t.Error("remove of an existing session failed")
	}
	if table.full() {
		t.Error("table is full after a remove")
	}
}

func TestSessionTableRemoveUnless(t *testing.T) {
	table := newSessionTable[string](10)
	table.add(ep("127.0.0.1:1"), ep("10.88.0.20:9000"), "stays", t0)
	table.add(ep("127.0.0.1:2"), ep("10.88.0.21:9000"), "goes", t0)

	removed := table.removeUnless(func(backend netip.AddrPort) bool { return backend == ep("10.88.0.20:9000") })

	if len(removed) != 1 || removed[0] != "goes" {
		t.Errorf("removed = %v, want [goes]", removed)
	}
	if table.len() != 1 {
		t.Errorf("table has %d sessions, want 1", table.len())
	}
}
