//go:build loadtest

package logcache

// The read load test: many tailing cf CLIs against one busy app, over real
// HTTP with real token verification and authorization. It is behind the
// loadtest build tag, so `go test ./...` and `make test` never run it:
//
//	go test -tags loadtest -run 'TestReadLoad$' -v ./logcache/
//
// The server runs in a child process (this test binary again, running
// TestReadLoadServer), so its CPU time and memory are measured apart from
// the pollers'.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

var (
	loadPollers  = flag.Int("loadtest.pollers", 200, "number of concurrent tailing clients")
	loadDuration = flag.Duration("loadtest.duration", 20*time.Second, "how long the clients poll")
	loadRate     = flag.Int("loadtest.rate", 1000, "lines per second the server writes to the app")
)

// Environment of the server child process.
const (
	loadEnvServer   = "FERRY_LOADTEST_SERVER"
	loadEnvDatabase = "FERRY_LOADTEST_DATABASE_URL"
	loadEnvKey      = "FERRY_LOADTEST_KEY_FILE"
	loadEnvApp      = "FERRY_LOADTEST_APP"
	loadEnvRate     = "FERRY_LOADTEST_RATE"
	loadEnvLifetime = "FERRY_LOADTEST_LIFETIME"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/<pid>/stat. It is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

func TestReadLoad(t *testing.T) {
	env := newAPIEnv(t)
	tokens := make([]string, *loadPollers)
	for i := range tokens {
		tokens[i] = env.token(env.userWithRole("space_developer"), auth.ScopeRead, auth.ScopeWrite, auth.ScopeOpenID)
	}
	server := startLoadServer(t, env)

	stats := newLoadStats()
	before, clientBefore := server.cpuTicks(t), ownCPU()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *loadDuration)
	defer cancel()
	var wg sync.WaitGroup
	for _, token := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tail(ctx, server.url, env.app, token, stats)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := float64(server.cpuTicks(t)-before) / clockTicks
	clientCPU := (ownCPU() - clientBefore).Seconds()
	rss, peak := server.memory(t)

	stats.report(t, elapsed, cpu, rss, peak)
	t.Logf("pollers' CPU (this process) %.1f s (%.2f cores)", clientCPU, clientCPU/elapsed.Seconds())
}

// ownCPU returns the user plus system CPU time of this process.
func ownCPU() time.Duration {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// loadServer is the child process serving the read API.
type loadServer struct {
	url   string
	pid   int
	stdin io.Closer
}

// startLoadServer starts this test binary as the server and waits for its
// address. The child stops when its stdin closes, and by itself after
// loadtest.duration plus a minute, so it never outlives the test for long.
func startLoadServer(t *testing.T, env *apiEnv) *loadServer {
	t.Helper()
	keyFile := t.TempDir() + "/key.pem"
	pemBytes, err := auth.EncodeKey(signingKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestReadLoadServer$")
	cmd.Env = append(os.Environ(),
		loadEnvServer+"=1",
		loadEnvDatabase+"="+env.databaseURL,
		loadEnvKey+"="+keyFile,
		loadEnvApp+"="+env.app,
		loadEnvRate+"="+strconv.Itoa(*loadRate),
		loadEnvLifetime+"="+(*loadDuration+time.Minute).String(),
	)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "LISTENING "); ok {
			go io.Copy(io.Discard, stdout)
			return &loadServer{url: "http://" + addr, pid: cmd.Process.Pid, stdin: stdin}
		}
	}
	t.Fatalf("server process exited before listening: %v", lines.Err())
	return nil
}

// cpuTicks returns the user plus system CPU time of the server so far.
func (s *loadServer) cpuTicks(t *testing.T) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// memory returns the server's resident set size and its peak, in bytes.
func (s *loadServer) memory(t *testing.T) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		name, value, _ := strings.Cut(l, ":")
		kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = kib << 10
		case "VmHWM":
			peak = kib << 10
		}
	}
	return rss, peak
}

// TestReadLoadServer is the server half of TestReadLoad; it does nothing
// unless TestReadLoad started it. It writes rate lines per second to the
// app, numbered from 1 in the payload, and serves the read API.
func TestReadLoadServer(t *testing.T) {
	if os.Getenv(loadEnvServer) == "" {
		t.Skip("runs only as TestReadLoad's child process")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv(loadEnvDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pemBytes, err := os.ReadFile(os.Getenv(loadEnvKey))
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.DecodeKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	tokens := auth.NewService(key, "test-key", auth.Config{Revocations: st})
	rate, _ := strconv.Atoi(os.Getenv(loadEnvRate))
	lifetime, _ := time.ParseDuration(os.Getenv(loadEnvLifetime))

	logs := NewStore(Limits{})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(logs, NewAccess(tokens, st, 0), logger)}
	go srv.Serve(listener)
	defer srv.Close()

	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	fmt.Printf("LISTENING %s\n", listener.Addr())
	writeLines(logs, os.Getenv(loadEnvApp), rate, stop, time.After(lifetime))
}

// writeLines puts rate lines per second into source, in batches every 10
// ms, until stop closes or timeout fires.
func writeLines(logs *Store, source string, rate int, stop <-chan struct{}, timeout <-chan time.Time) {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	start := time.Now()
	written := 0
	for {
		select {
		case <-stop:
			return
		case <-timeout:
			return
		case now := <-ticker.C:
			due := int(now.Sub(start).Seconds() * float64(rate))
			for ; written < due; written++ {
				logs.Put(Envelope{Timestamp: now.UnixNano(), SourceID: source, InstanceID: "0",
					SourceType: "APP/PROC/WEB", Stream: StreamOut,
					Payload: []byte("line " + strconv.Itoa(written+1) + " " + string(benchPayload))})
			}
		}
	}
}

// tail polls like `cf logs APP` (cf CLI v8 with go-log-cache): fetch the
// info document, poll for the newest line every 250 ms until there is
// one, then walk forward from a second before it. Each walk request reads
// LOG envelopes from the last timestamp seen plus one. Lines newer than two
// seconds are left for a later request, and an empty result waits 250 ms.
func tail(ctx context.Context, baseURL, app, token string, stats *loadStats) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(query string) ([]loadEnvelope, bool) {
		return stats.get(ctx, client, baseURL+"/api/v1/read/"+app+"?"+query, token)
	}
	if _, ok := stats.get(ctx, client, baseURL+"/api/v1/info", token); !ok {
		return
	}

	var start int64
	for ctx.Err() == nil {
		batch, ok := get("descending=true&limit=1&start_time=" + cliStartTime)
		if ok && len(batch) > 0 {
			start = batch[0].timestamp - int64(time.Second)
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}

	last := -1
	for ctx.Err() == nil {
		batch, ok := get("envelope_types=LOG&start_time=" + strconv.FormatInt(start, 10))
		if !ok {
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		cutoff := time.Now().Add(-2 * time.Second).UnixNano()
		for len(batch) > 0 && batch[len(batch)-1].timestamp > cutoff {
			batch = batch[:len(batch)-1]
		}
		if len(batch) == 0 {
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		last = stats.visit(batch, last)
		start = batch[len(batch)-1].timestamp + 1
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type loadEnvelope struct {
	timestamp int64
	number    int
}

// loadStats collects the results of all pollers.
type loadStats struct {
	mu         sync.Mutex
	latencies  []time.Duration
	failures   map[string]int
	lines      int
	gaps       int
	outOfOrder int
}

func newLoadStats() *loadStats { return &loadStats{failures: map[string]int{}} }

// get sends one request and records its latency. It returns the decoded
// batch of a read, and false for any failure.
func (s *loadStats) get(ctx context.Context, client *http.Client, url, token string) ([]loadEnvelope, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		s.fail(err.Error())
		return nil, false
	}
	req.Header.Set("Authorization", "bearer "+token)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.fail(err.Error())
		}
		return nil, false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	latency := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		if ctx.Err() == nil {
			s.fail(fmt.Sprintf("status %d", resp.StatusCode))
		}
		return nil, false
	}
	s.mu.Lock()
	s.latencies = append(s.latencies, latency)
	s.mu.Unlock()
	return decodeLoadBatch(body), true
}

// decodeLoadBatch extracts each envelope's timestamp and line number from a
// read response. It scans the bytes instead of decoding the JSON, because
// the pollers share the machine with the server and full decoding would
// take most of its CPU.
func decodeLoadBatch(body []byte) []loadEnvelope {
	var out []loadEnvelope
	for {
		i := bytes.Index(body, []byte(`"timestamp":"`))
		if i < 0 {
			return out
		}
		body = body[i+len(`"timestamp":"`):]
		end := bytes.IndexByte(body, '"')
		ts, _ := strconv.ParseInt(string(body[:end]), 10, 64)

		i = bytes.Index(body, []byte(`"payload":"`))
		body = body[i+len(`"payload":"`):]
		// 24 base64 characters are 18 bytes: "line " and up to 13 digits.
		prefix := make([]byte, 18)
		n, _ := base64.StdEncoding.Decode(prefix, body[:min(24, bytes.IndexByte(body, '"'))])
		fields := strings.Fields(string(prefix[:n]))
		number := 0
		if len(fields) > 1 {
			number, _ = strconv.Atoi(fields[1])
		}
		out = append(out, loadEnvelope{timestamp: ts, number: number})
	}
}

func (s *loadStats) fail(reason string) {
	s.mu.Lock()
	s.failures[reason]++
	s.mu.Unlock()
}

// visit counts a poller's lines and checks that their numbers follow last
// without gaps or repeats. It returns the number of the batch's last line.
func (s *loadStats) visit(batch []loadEnvelope, last int) int {
	gaps, outOfOrder := 0, 0
	for _, e := range batch {
		switch {
		case last >= 0 && e.number <= last:
			outOfOrder++
		case last >= 0 && e.number > last+1:
			gaps++
		}
		last = e.number
	}
	s.mu.Lock()
	s.lines += len(batch)
	s.gaps += gaps
	s.outOfOrder += outOfOrder
	s.mu.Unlock()
	return last
}

func (s *loadStats) report(t *testing.T, elapsed time.Duration, cpuSeconds float64, rss, peak int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.latencies)
	quantile := func(q float64) time.Duration {
		if len(s.latencies) == 0 {
			return 0
		}
		return s.latencies[int(math.Ceil(q*float64(len(s.latencies))))-1]
	}

	t.Logf("pollers %d, duration %v, server writes %d lines/s", *loadPollers, elapsed.Round(time.Millisecond), *loadRate)
	t.Logf("requests %d (%.0f/s), failures %v", len(s.latencies), float64(len(s.latencies))/elapsed.Seconds(), s.failures)
	t.Logf("latency p50 %v, p90 %v, p99 %v, max %v", quantile(0.50), quantile(0.90), quantile(0.99), quantile(1))
	t.Logf("lines delivered %d (%.0f per poller per second), gaps %d, out of order %d",
		s.lines, float64(s.lines)/float64(*loadPollers)/elapsed.Seconds(), s.gaps, s.outOfOrder)
	t.Logf("server CPU %.1f s (%.2f cores), RSS %.1f MiB, peak RSS %.1f MiB",
		cpuSeconds, cpuSeconds/elapsed.Seconds(), float64(rss)/(1<<20), float64(peak)/(1<<20))

	if len(s.failures) > 0 {
		t.Errorf("requests failed: %v", s.failures)
	}
	if s.outOfOrder > 0 {
		t.Errorf("%d lines arrived out of order or twice", s.outOfOrder)
	}
	if s.lines == 0 {
		t.Error("no lines delivered")
	}
}
