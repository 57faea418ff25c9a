package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// bindAddress is the only address the gateway listens on.
var bindAddress = netip.MustParseAddr("127.0.0.1")

// maxDatagram is the largest UDP payload over IPv4.
const maxDatagram = 65507

// ProxyOptions bound one listener's resources.
type ProxyOptions struct {
	// MaxSessions caps the number of clients with a session; datagrams of
	// further clients are dropped until a session expires.
	MaxSessions int
	// IdleTimeout ends a session after no datagram passed either way for
	// that long.
	IdleTimeout time.Duration
	// AllowedCIDR contains every backend address the listener may send to.
	AllowedCIDR netip.Prefix
	Logger      *slog.Logger
}

// Proxy is one UDP listener on 127.0.0.1. Each client address gets a
// session with its own connected socket to one backend endpoint, picked
// when the session starts. Replies on that socket go back to the client.
type Proxy struct {
	conn *net.UDPConn
	opts ProxyOptions
	log  *slog.Logger

	mu       sync.Mutex
	picker   *picker
	sessions *sessionTable[*session]
	// dropped counts datagrams dropped since the last log line about them,
	// droppedTotal all of them.
	dropped      int
	droppedTotal int
	lastLog      time.Time

	done chan struct{}
	wg   sync.WaitGroup
}

type session struct {
	client   netip.AddrPort
	upstream *net.UDPConn
}

// Listen opens a UDP socket on 127.0.0.1:port and starts forwarding. Port
// 0 picks a free port, which Addr returns.
func Listen(port int, opts ProxyOptions) (*Proxy, error) {
	if opts.MaxSessions <= 0 || opts.IdleTimeout <= 0 {
		return nil, fmt.Errorf("invalid proxy options: MaxSessions %d and IdleTimeout %s must be positive", opts.MaxSessions, opts.IdleTimeout)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(bindAddress, uint16(port))))
	if err != nil {
		return nil, fmt.Errorf("listen on UDP %s:%d: %w", bindAddress, port, err)
	}
	p := &Proxy{
		conn:     conn,
		opts:     opts,
		log:      opts.Logger.With("listen", conn.LocalAddr().String()),
		picker:   newPicker(nil),
		sessions: newSessionTable[*session](opts.MaxSessions),
		done:     make(chan struct{}),
	}
	p.wg.Add(2)
	go p.serve()
	go p.reap()
	return p, nil
}

// Addr returns the listening address.
func (p *Proxy) Addr() netip.AddrPort {
	return p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// SetBackends replaces the backends that new sessions pick from. Sessions
// whose endpoint is no longer among them end, so their clients' next
// datagrams start sessions with a current endpoint.
func (p *Proxy) SetBackends(groups []BackendGroup) {
	allowed := make([]BackendGroup, 0, len(groups))
	for _, g := range groups {
		var endpoints []netip.AddrPort
		for _, e := range g.Endpoints {
			if !p.opts.AllowedCIDR.Contains(e.Addr()) {
				p.log.Warn("ignoring backend outside the allowed range", "backend", e.String(), "allowed_cidr", p.opts.AllowedCIDR.String())
				continue
			}
			endpoints = append(endpoints, e)
		}
		allowed = append(allowed, BackendGroup{Weight: g.Weight, Endpoints: endpoints})
	}

	p.mu.Lock()
	p.picker = newPicker(allowed)
	stale := p.sessions.removeUnless(p.picker.contains)
	p.mu.Unlock()
	for _, s := range stale {
		s.upstream.Close()
	}
}

// Sessions returns the number of open sessions.
func (p *Proxy) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sessions.len()
}

// Dropped returns the number of datagrams dropped because no backend was
// available or the session table was full.
func (p *Proxy) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.droppedTotal
}

// Close stops the listener and ends every session.
func (p *Proxy) Close() {
	close(p.done)
	p.conn.Close()
	p.mu.Lock()
	all := p.sessions.removeUnless(func(netip.AddrPort) bool { return false })
	p.mu.Unlock()
	for _, s := range all {
		s.upstream.Close()
	}
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Error("read from client failed", "error", err)
			continue
		}
		s := p.session(client)
		if s == nil {
			continue
		}
		if _, err := s.upstream.Write(buf[:n]); err != nil {
			p.log.Debug("write to backend failed", "client", client.String(), "backend", s.upstream.RemoteAddr().String(), "error", err)
		}
	}
}

// session returns the client's session, starting one when it has none.
// It returns nil, and counts a drop, when no backend is available or the
// table is full.
func (p *Proxy) session(client netip.AddrPort) *session {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.sessions.get(client, now); ok {
		return s
	}
	if p.sessions.full() {
		p.drop(now, "session table full")
		return nil
	}
	backend, ok := p.picker.pick()
	if !ok {
		p.drop(now, "no ready backend")
		return nil
	}
	if !p.opts.AllowedCIDR.Contains(backend.Addr()) {
		p.drop(now, "backend outside the allowed range")
		return nil
	}
	upstream, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(backend))
	if err != nil {
		p.log.Error("open socket to backend failed", "backend", backend.String(), "error", err)
		return nil
	}
	s := &session{client: client, upstream: upstream}
	p.sessions.add(client, backend, s, now)
	p.wg.Add(1)
	go p.relayReplies(s)
	return s
}

// drop counts a dropped datagram and logs the count at most every 10 s.
// The caller holds p.mu.
func (p *Proxy) drop(now time.Time, reason string) {
	p.dropped++
	p.droppedTotal++
	if now.Sub(p.lastLog) < 10*time.Second {
		return
	}
	p.log.Warn("dropped datagrams", "reason", reason, "count", p.dropped)
	p.dropped = 0
	p.lastLog = now
}

// relayReplies sends the backend's datagrams to the session's client
// until the session's socket is closed.
func (p *Proxy) relayReplies(s *session) {
	defer p.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := s.upstream.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP port unreachable from the backend surfaces here as
			// ECONNREFUSED; the session stays until it expires.
			continue
		}
		p.mu.Lock()
		p.sessions.touch(s.client, time.Now())
		p.mu.Unlock()
		if _, err := p.conn.WriteToUDPAddrPort(buf[:n], s.client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("write to client failed", "client", s.client.String(), "error", err)
		}
	}
}

// reap ends idle sessions, checking four times per idle timeout.
func (p *Proxy) reap() {
	defer p.wg.Done()
	ticker := time.NewTicker(p.opts.IdleTimeout / 4)
	defer ticker.Stop()
	for {
		select {
		case <-p.done:
			return
		case now := <-ticker.C:
			p.mu.Lock()
			idle := p.sessions.expire(now, p.opts.IdleTimeout)
			p.mu.Unlock()
			for _, s := range idle {
				s.upstream.Close()
			}
		}
	}
}
