package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConnCapPerIP: at most MaxConnsPerIP connections of one client key
// negotiate at once; one more is refused at once with resource-constraint
// (on the STARTTLS port; closed on the TLS port), other keys are not
// affected, and the refusal is logged in a summary line without the
// address.
func TestConnCapPerIP(t *testing.T) {
	log := &syncBuffer{}
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.MaxConnsPerIP = 2
		c.Stderr = log
	}))
	for range 2 {
		dialRaw(t, ts.C2S, "127.0.0.2", nil).open(t) // negotiating, held
	}
	over := dialRaw(t, ts.C2S, "127.0.0.2", nil)
	if got := over.streamError(t); got != "resource-constraint" {
		t.Errorf("third connection: stream error %q, want resource-constraint", got)
	}
	if err := over.closed(); err != nil {
		t.Errorf("third connection not closed: %v", err)
	}
	if err := dialRaw(t, ts.C2STLS, "127.0.0.2", nil).closed(); err != nil {
		t.Errorf("third connection on the TLS port not closed: %v", err)
	}
	dialRaw(t, ts.C2S, "127.0.0.3", nil).open(t) // another key
	if err := ts.register("carol", "carol password"); err != nil {
		t.Errorf("registration from 127.0.0.1 refused: %v", err)
	}
	out := log.String()
	if !strings.Contains(out, "c2s connections refused") || !strings.Contains(out, refusedPerKey+"=") {
		t.Errorf("no summary line for the refusal in:\n%s", out)
	}
	if strings.Contains(out, "127.0.0.2") {
		t.Errorf("the log names the refused address:\n%s", out)
	}
}

// TestConnCapBoundNotCounted: bound sessions leave the per-IP count, so
// one address keeps as many sessions as it likes (a household behind one
// IPv4 address).
func TestConnCapBoundNotCounted(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.MaxConnsPerIP = 2 }))
	ts.Register(t, "alice", "alice password")
	for range 5 {
		ts.Login(t, "alice", "alice password")
	}
}

// TestConnCapTotal: at most MaxConns connections are open at once.
func TestConnCapTotal(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.MaxConns = 3 }))
	for _, ip := range []string{"127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		dialRaw(t, ts.C2S, ip, nil).open(t)
	}
	over := dialRaw(t, ts.C2S, "127.0.0.7", nil)
	if got := over.streamError(t); got != "resource-constraint" {
		t.Errorf("fourth connection: stream error %q, want resource-constraint", got)
	}
}

// TestConnLimiter: the caps' bookkeeping.
func TestConnLimiter(t *testing.T) {
	l := newConnLimiter(3, 2)
	a1, r := l.admit("a")
	a2, _ := l.admit("a")
	if a1 == nil || a2 == nil || r != "" {
		t.Fatalf("first two of a refused: %q", r)
	}
	if tk, r := l.admit("a"); tk != nil || r != refusedPerKey {
		t.Fatalf("third of a: %v %q, want %s", tk, r, refusedPerKey)
	}
	a1.bound()
	a1.bound() // idempotent
	a3, r := l.admit("a")
	if a3 == nil {
		t.Fatalf("a after one bound: %q", r)
	}
	if tk, r := l.admit("b"); tk != nil || r != refusedTotal {
		t.Fatalf("b over the total: %v %q, want %s", tk, r, refusedTotal)
	}
	a1.release()
	a1.release() // idempotent
	if open, neg := l.counts("a"); open != 2 || neg != 2 {
		t.Errorf("after releasing a bound one: open %d, negotiating %d; want 2, 2", open, neg)
	}
	b, _ := l.admit("b")
	if b == nil {
		t.Fatal("b refused with room")
	}
	for _, tk := range []*connTicket{a2, a3, b} {
		tk.release()
	}
	if open, neg := l.counts("a"); open != 0 || neg != 0 || len(l.negotiating) != 0 {
		t.Errorf("after all released: open %d, negotiating %d, keys %d", open, neg, len(l.negotiating))
	}
}

// lineLog is an slog.Logger whose lines a test can read.
func lineLog() (*slog.Logger, func() []string) {
	var mu sync.Mutex
	var b bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return b.Write(p) })
	return slog.New(slog.NewTextHandler(w, nil)), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(b.String()), "\n")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestSummaryLog: a flood of events makes one line at once and one more
// when the second is over, with the counts of each kind.
func TestSummaryLog(t *testing.T) {
	log, lines := lineLog()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSummaryLog(log, "refused")
	s.now = func() time.Time { return now }
	for i := range 100 {
		s.add([]string{"x", "y"}[i%2])
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "x=1") {
		t.Fatalf("after the first event: %q", got)
	}
	s.stop() // what the timer does after the second
	got := lines()
	if len(got) != 2 || !strings.Contains(got[1], "x=49") || !strings.Contains(got[1], "y=50") {
		t.Fatalf("summary: %q", got)
	}
	now = now.Add(time.Second)
	s.add("x")
	if got := lines(); len(got) != 3 || !strings.Contains(got[2], "x=1") {
		t.Fatalf("after a quiet second: %q", got)
	}
}

// flakyListener fails Accept with errs[i] (a nil entry accepts a pipe),
// then reports itself closed.
type flakyListener struct {
	net.Listener
	errs  []error
	calls int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.calls++
	if len(l.errs) == 0 {
		return nil, net.ErrClosed
	}
	err := l.errs[0]
	l.errs = l.errs[1:]
	if err == nil {
		c, _ := net.Pipe()
		return c, nil
	}
	return nil, err
}

// TestAcceptBackoff: when Accept fails (out of file descriptors) the loop
// waits, doubling from 5 ms to a cap of 1 s, starts over after a success,
// and logs a summary line instead of a line per failure.
func TestAcceptBackoff(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	var errs []error
	for range 12 {
		errs = append(errs, emfile)
	}
	errs = append(errs, nil, emfile, emfile)
	ln := &flakyListener{errs: errs}
	log, lines := lineLog()
	sum := newSummaryLog(log, "c2s accept failed; backing off")
	sum.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	var slept []time.Duration
	served := 0
	acceptLoop(context.Background(), ln, sum,
		func(_ context.Context, d time.Duration) { slept = append(slept, d) },
		func(c net.Conn) { served++; c.Close() })
	sum.stop()
	ms := time.Millisecond
	want := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms,
		time.Second, time.Second, time.Second, time.Second, 5 * ms, 10 * ms}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	for i := range want {
		if slept[i] != want[i] {
			t.Errorf("delay %d: %v, want %v", i, slept[i], want[i])
		}
	}
	if served != 1 || ln.calls != 16 {
		t.Errorf("served %d, Accept called %d times; want 1, 16", served, ln.calls)
	}
	got := lines()
	if len(got) != 2 || !strings.Contains(got[0], `"too many open files"=1`) || !strings.Contains(got[1], `"too many open files"=13`) {
		t.Errorf("log lines: %q", got)
	}
}

// TestAcceptLoopStopsOnShutdown: a back-off wait ends with the server's
// context.
func TestAcceptLoopStopsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ln := &flakyListener{errs: []error{errors.New("boom"), errors.New("boom")}}
	log, _ := lineLog()
	sum := newSummaryLog(log, "x")
	defer sum.stop()
	acceptLoop(ctx, ln, sum, func(ctx context.Context, d time.Duration) {
		cancel()
		sleepCtx(ctx, time.Hour) // returns at once: ctx is done
	}, func(net.Conn) {})
	if ln.calls != 2 {
		t.Errorf("Accept called %d times after shutdown, want 2", ln.calls)
	}
}

// readerConn is a net.Conn that reads from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestLimitConn: reads stop at the budget, never asking the connection for
// more, and a reset gives a new budget.
func TestLimitConn(t *testing.T) {
	src := strings.NewReader(strings.Repeat("x", 100))
	lc := newLimitConn(readerConn{r: src}, 10)
	buf := make([]byte, 4)
	var got []int
	for {
		n, err := lc.Read(buf)
		if err != nil {
			if !errors.Is(err, errWireLimit) {
				t.Fatalf("read: %v", err)
			}
			break
		}
		got = append(got, n)
	}
	if len(got) != 3 || got[0] != 4 || got[1] != 4 || got[2] != 2 {
		t.Errorf("reads %v, want [4 4 2]", got)
	}
	if !lc.exceeded() {
		t.Error("exceeded not set")
	}
	if src.Len() != 90 {
		t.Errorf("the connection was read %d bytes past the budget", 90-src.Len())
	}
	lc.reset(50)
	n, err := io.Copy(io.Discard, lc)
	if n != 50 || !errors.Is(err, errWireLimit) {
		t.Errorf("after reset: read %d (%v), want 50 then the limit", n, err)
	}
}

// TestParseLimitFlags: the connection limits' flags, their safe defaults
// and their validation.
func TestParseLimitFlags(t *testing.T) {
	var out bytes.Buffer
	c, err := parseFlags(nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.NegotiationTimeout != time.Minute || c.IdleTimeout != 5*time.Minute || c.PingTimeout != time.Minute ||
		c.MaxConnsPerIP != 10 || c.MaxConns != defaultMaxConns(openFileLimit()) {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseFlags(strings.Fields("-negotiation-timeout 10s -idle-timeout 1m -max-conns-per-ip 3 -max-conns 50"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.NegotiationTimeout != 10*time.Second || c.IdleTimeout != time.Minute || c.MaxConnsPerIP != 3 || c.MaxConns != 50 {
		t.Errorf("flags: %+v", c)
	}
	for _, bad := range []string{"-negotiation-timeout -1s", "-idle-timeout -1s", "-max-conns-per-ip -1", "-max-conns -5"} {
		if _, err := parseFlags(strings.Fields(bad), &out); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, tc := range []struct{ files, want int }{{0, 10000}, {1 << 20, 10000}, {1024, 768}, {1, 1}} {
		if got := defaultMaxConns(tc.files); got != tc.want {
			t.Errorf("defaultMaxConns(%d) = %d, want %d", tc.files, got, tc.want)
		}
	}
	// The zero value of Config means the defaults too.
	c, err = Config{C2S: ":1", HTTP: ":2"}.withDefaults()
	if err != nil || c.NegotiationTimeout != defaultNegotiationTimeout || c.MaxConnsPerIP != defaultMaxConnsPerIP {
		t.Errorf("zero Config: %+v %v", c, err)
	}
}
