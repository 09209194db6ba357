package account

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// TestLimitersPrune checks that buckets of idle callers are dropped once the
// map is large, while buckets still holding a penalty are kept.
func TestLimitersPrune(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiters(rate.Every(time.Minute), 2, nil)
	for i, want := range []bool{true, true, false} {
		if got := l.allow("busy", now); got != want {
			t.Fatalf("attempt %d allowed = %v, want %v (burst of 2)", i, got, want)
		}
	}
	for i := range minPrune - 1 { // with "busy": minPrune buckets
		l.get(fmt.Sprintf("198.51.100.%d/%d", i%256, i), now)
	}
	// The next new key triggers pruning: idle (full) buckets go.
	l.get("192.0.2.1", now)
	l.mu.Lock()
	n := len(l.m)
	_, busyKept := l.m["busy"]
	l.mu.Unlock()
	if n > 2 {
		t.Fatalf("%d buckets after pruning, want 2 (busy and the new key)", n)
	}
	if !busyKept || l.allow("busy", now) {
		t.Fatal("pruning forgot a caller that is still limited")
	}
	if l.exempt != nil {
		t.Fatal("unexpected exempt func")
	}
	ex := newLimiters(rate.Every(time.Minute), 1, func(k string) bool { return k == "127.0.0.1" })
	for range 5 {
		if !ex.allow("127.0.0.1", now) {
			t.Fatal("exempt key limited")
		}
	}
	if giveBack, ok := ex.reserve("192.0.2.7", now); !ok {
		t.Fatal("first reservation refused")
	} else {
		giveBack()
	}
	if _, ok := ex.reserve("192.0.2.7", now); !ok {
		t.Fatal("a given-back token was not restored")
	}
	if _, ok := ex.reserve("192.0.2.7", now); ok {
		t.Fatal("second token granted with a burst of 1")
	}
}
