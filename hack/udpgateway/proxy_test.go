package main

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// echoBackend replies to each datagram on 127.0.0.1 with name + ": " +
// payload, until the test ends.
func echoBackend(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, addr, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			conn.WriteToUDPAddrPort(append([]byte(name+": "), buf[:n]...), addr)
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func startProxy(t *testing.T, opts ProxyOptions) *Proxy {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := Listen(0, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func client(t *testing.T, proxy *Proxy) *net.UDPConn {
	t.Helper()
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(proxy.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exchange sends payload and returns the first reply. The deadline only
// keeps a broken proxy from hanging the test.
func exchange(t *testing.T, conn *net.UDPConn, payload string) string {
	t.Helper()
	if _, err := conn.Write([]byte(payload)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no reply to %q: %v", payload, err)
	}
	return string(buf[:n])
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

func TestProxySessions(t *testing.T) {
	one, two := echoBackend(t, "one"), echoBackend(t, "two")
	p := startProxy(t, ProxyOptions{MaxSessions: 10, IdleTimeout: time.Minute, AllowedCIDR: loopback})
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{one, two}}})
	a, b := client(t, p), client(t, p)

	if got := exchange(t, a, "hi"); got != "one: hi" {
		t.Errorf("first client got %q, want %q", got, "one: hi")
	}
	if got := exchange(t, b, "hi"); got != "two: hi" {
		t.Errorf("second client got %q, want %q", got, "two: hi")
	}
	if got := exchange(t, a, "again"); got != "one: again" {
		t.Errorf("first client's second datagram got %q, want the same backend", got)
	}
	if got := p.Sessions(); got != 2 {
		t.Errorf("sessions = %d, want 2", got)
	}

	// Removing backend one ends the first client's session, so its next
	// datagram starts a session with backend two.
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{two}}})
	if got := exchange(t, a, "moved"); got != "two: moved" {
		t.Errorf("after removing backend one, got %q, want %q", got, "two: moved")
	}
}

func TestProxyLargeDatagram(t *testing.T) {
	backend := echoBackend(t, "big")
	p := startProxy(t, ProxyOptions{MaxSessions: 10, IdleTimeout: time.Minute, AllowedCIDR: loopback})
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{backend}}})
	payload := strings.Repeat("x", 1400)

	got := exchange(t, client(t, p), payload)

	if !bytes.Equal([]byte(got), []byte("big: "+payload)) {
		t.Errorf("reply has %d bytes, want %d", len(got), len("big: "+payload))
	}
}

func TestProxyIdleSessionsExpire(t *testing.T) {
	backend := echoBackend(t, "one")
	p := startProxy(t, ProxyOptions{MaxSessions: 10, IdleTimeout: 200 * time.Millisecond, AllowedCIDR: loopback})
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{backend}}})

	exchange(t, client(t, p), "hi")

	eventually(t, "the idle session to expire", func() bool { return p.Sessions() == 0 })
}

func TestProxyMaxSessions(t *testing.T) {
	backend := echoBackend(t, "one")
	p := startProxy(t, ProxyOptions{MaxSessions: 1, IdleTimeout: time.Minute, AllowedCIDR: loopback})
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{backend}}})
	exchange(t, client(t, p), "first")

	if _, err := client(t, p).Write([]byte("second")); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the second client's datagram to be dropped", func() bool { return p.Dropped() == 1 })
	if got := p.Sessions(); got != 1 {
		t.Errorf("sessions = %d, want 1", got)
	}
}

func TestProxyRejectsBackendOutsideAllowedCIDR(t *testing.T) {
	backend := echoBackend(t, "one")
	p := startProxy(t, ProxyOptions{MaxSessions: 10, IdleTimeout: time.Minute, AllowedCIDR: netip.MustParsePrefix("10.88.0.0/16")})
	p.SetBackends([]BackendGroup{{Weight: 1, Endpoints: []netip.AddrPort{backend}}})

	if _, err := client(t, p).Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}

	eventually(t, "the datagram to be dropped", func() bool { return p.Dropped() == 1 })
	if got := p.Sessions(); got != 0 {
		t.Errorf("sessions = %d, want 0", got)
	}
}

func TestProxyListensOnLoopbackOnly(t *testing.T) {
	p := startProxy(t, ProxyOptions{MaxSessions: 1, IdleTimeout: time.Minute, AllowedCIDR: loopback})
	if got := p.Addr().Addr(); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("listening on %s, want 127.0.0.1", got)
	}
}
