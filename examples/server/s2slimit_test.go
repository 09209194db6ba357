package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lockedBuffer is a bytes.Buffer for a log written by timer goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDomainLimiterStanzaRate: a remote domain gets its burst, then its
// rate; another domain has buckets of its own.
func TestDomainLimiterStanzaRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDomainLimiter(domainLimitConfig{StanzaRate: 10, Burst: time.Second})
		for i := range 10 {
			if !l.allow("evil.example", 100) {
				t.Fatalf("stanza %d of the burst refused", i+1)
			}
		}
		if l.allow("evil.example", 100) {
			t.Fatal("11th stanza within the same instant allowed (burst 10)")
		}
		if !l.allow("good.example", 100) {
			t.Fatal("another domain refused: buckets are per domain")
		}
		if l.allow("EVIL.example.", 100) {
			t.Fatal("the same domain in upper case with a trailing dot got a bucket of its own")
		}
		time.Sleep(100 * time.Millisecond) // one token at 10/s
		if !l.allow("evil.example", 100) {
			t.Fatal("refused after 100 ms at 10 stanzas/s")
		}
		if l.allow("evil.example", 100) {
			t.Fatal("two stanzas allowed for one token earned")
		}
		time.Sleep(time.Hour) // refilled up to the burst, not beyond
		n := 0
		for l.allow("evil.example", 1) {
			n++
		}
		if n != 10 {
			t.Fatalf("after an hour's rest %d stanzas allowed, want the burst of 10", n)
		}
	})
}

// TestDomainLimiterByteRate: the byte bucket, and a bucket never smaller
// than the largest stanza the server reads.
func TestDomainLimiterByteRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDomainLimiter(domainLimitConfig{StanzaRate: 1000, ByteRate: 1 << 20, Burst: time.Second})
		if !l.allow("evil.example", 1<<20) {
			t.Fatal("a burst of 1 MiB refused at 1 MiB/s")
		}
		if l.allow("evil.example", 1) {
			t.Fatal("a byte past the bucket allowed")
		}
		time.Sleep(time.Second / 2)
		if !l.allow("evil.example", 1<<19) || l.allow("evil.example", 1<<10) {
			t.Fatal("after half a second at 1 MiB/s, want exactly 512 KiB more")
		}

		small := newDomainLimiter(domainLimitConfig{ByteRate: 1})
		if !small.allow("slow.example", maxStanzaWireBytes) {
			t.Fatal("one stanza of the largest size refused by a fresh bucket at 1 byte/s")
		}
	})
}

// TestDomainLimiterSubscriptions: pending requests per domain up to the
// limit; an answered one frees a place; the count never goes below zero.
func TestDomainLimiterSubscriptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDomainLimiter(domainLimitConfig{MaxPendingSubs: 2})
		l.doneSubscription("evil.example") // unknown: nothing to take off
		for range 2 {
			if !l.allowSubscription("evil.example") {
				t.Fatal("a request under the limit refused")
			}
		}
		if l.allowSubscription("evil.example") {
			t.Fatal("a third pending request allowed with a limit of 2")
		}
		if !l.allowSubscription("good.example") {
			t.Fatal("another domain's request refused")
		}
		l.doneSubscription("evil.example")
		if !l.allowSubscription("evil.example") {
			t.Fatal("refused after one request was answered")
		}
		for range 5 {
			l.doneSubscription("evil.example")
		}
		for range 2 {
			if !l.allowSubscription("evil.example") {
				t.Fatal("the count went below zero or stayed up after the answers")
			}
		}
		if l.allowSubscription("evil.example") {
			t.Fatal("the count went below zero: a third request allowed")
		}
	})
}

// TestDomainLimiterForgetsIdle: a domain silent for Idle is forgotten; a
// full table sends new domains to one shared entry, which has the same
// limits.
func TestDomainLimiterForgetsIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newDomainLimiter(domainLimitConfig{StanzaRate: 1, Burst: time.Second, MaxDomains: 3, Idle: time.Minute})
		for i := range 5 {
			l.allow(fmt.Sprintf("d%d.example", i), 10)
		}
		if n, shared := l.tracked(); n != 3 || !shared {
			t.Fatalf("tracked %d (shared %v), want 3 and the shared entry", n, shared)
		}
		// d3 and d4 share one bucket of one stanza: both used it.
		if l.allow("d5.example", 10) {
			t.Fatal("an untracked domain got a fresh bucket while the table is full")
		}
		time.Sleep(time.Minute)
		if !l.allow("late.example", 10) {
			t.Fatal("a new domain refused after the others went idle")
		}
		if n, shared := l.tracked(); n != 1 || shared {
			t.Fatalf("after a minute of silence tracked %d (shared %v), want only the new domain", n, shared)
		}
	})
}

// TestDomainLimiterLog: refusals reach the operator log as counts per
// domain and limit, a line a second at most, with nothing else of the
// stanza.
func TestDomainLimiterLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		l := newDomainLimiter(domainLimitConfig{StanzaRate: 1, Burst: time.Second, MaxPendingSubs: 1,
			Log: slog.New(slog.NewTextHandler(&buf, nil))})
		defer l.stop()
		l.allow("evil.example", 10)
		for range 3 {
			l.allow("evil.example", 10) // refused: the first line, at once
		}
		l.allowSubscription("evil.example")
		l.allowSubscription("evil.example")
		time.Sleep(time.Second)
		synctest.Wait()
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d log lines, want 2 (one at once, one a second later):\n%s", len(lines), buf.String())
		}
		if !strings.Contains(lines[0], "evil.example/stanzas=1") {
			t.Errorf("first line %q: want the first refusal counted", lines[0])
		}
		if !strings.Contains(lines[1], "evil.example/stanzas=2") || !strings.Contains(lines[1], "evil.example/subscriptions=1") {
			t.Errorf("second line %q: want the rest of the second", lines[1])
		}
		for _, line := range lines {
			if !strings.Contains(line, "policy-violation") || strings.Contains(line, "@") {
				t.Errorf("line %q: want the summary message and no JID", line)
			}
		}
	})
}

// TestDomainLimiterBoundedMemory: a hundred thousand domains, each sending
// once, leave at most MaxDomains entries plus the shared one.
func TestDomainLimiterBoundedMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const max = 100
		l := newDomainLimiter(domainLimitConfig{MaxDomains: max})
		for i := range 100_000 {
			l.allow(fmt.Sprintf("d%d.example", i), 100)
			l.allowSubscription(fmt.Sprintf("s%d.example", i))
			if i%1000 == 0 {
				time.Sleep(time.Second)
			}
			if n, _ := l.tracked(); n > max {
				t.Fatalf("after %d domains %d tracked, want at most %d", i+1, n, max)
			}
		}
	})
}

// FuzzDomainLimiter: any sequence of calls, domains and sizes keeps the
// table within its bound and never panics.
func FuzzDomainLimiter(f *testing.F) {
	f.Add([]byte("\x00evil.example\x01\x02\x03good.example"))
	f.Add([]byte{0xff, 0xfe, 0x80, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, ops []byte) {
		now := time.Unix(0, 0)
		const max = 4
		l := newDomainLimiter(domainLimitConfig{MaxDomains: max, StanzaRate: 2, ByteRate: 10, Idle: time.Minute,
			Now: func() time.Time { return now }})
		for i, op := range ops {
			domain := fmt.Sprintf("d%d.example", op%16)
			switch op % 5 {
			case 0:
				l.allow(domain, int(op)*1000)
			case 1:
				l.allowSubscription(domain)
			case 2:
				l.doneSubscription(domain)
			case 3:
				now = now.Add(time.Duration(op) * time.Second)
			case 4:
				now = now.Add(-time.Second) // a clock that goes back earns nothing
				l.allow(domain, -int(op))
			}
			if n, _ := l.tracked(); n > max {
				t.Fatalf("op %d: %d domains tracked, want at most %d", i, n, max)
			}
			l.mu.Lock()
			for d, st := range l.domains {
				if st.pending < 0 || st.pending > l.cfg.MaxPendingSubs || st.stanzas > l.stanzaBurst() || st.bytes > l.byteBurst() {
					t.Fatalf("op %d: %s in a bad state %+v", i, d, *st)
				}
			}
			l.mu.Unlock()
		}
	})
}

// TestS2SLimitFlags: the three flags, their defaults and refused values.
func TestS2SLimitFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.S2SStanzaRate != defaultS2SStanzaRate || c.S2SByteRate != defaultS2SByteRate || c.S2SMaxPendingSubs != defaultS2SMaxPendingSubs {
		t.Errorf("defaults %d %d %d", c.S2SStanzaRate, c.S2SByteRate, c.S2SMaxPendingSubs)
	}
	c, err = parseFlags(strings.Fields("-s2s-stanza-rate 7 -s2s-byte-rate 9000 -s2s-max-pending-subs 3"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lc := c.domainLimits(nil)
	if lc.StanzaRate != 7 || lc.ByteRate != 9000 || lc.MaxPendingSubs != 3 {
		t.Errorf("limiter config %+v", lc)
	}
	for _, bad := range []string{"-s2s-stanza-rate -1", "-s2s-byte-rate -1", "-s2s-max-pending-subs -1", "-s2s-stanza-rate x"} {
		if _, err := parseFlags(strings.Fields(bad), io.Discard); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
