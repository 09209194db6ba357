package logredact

import (
	"net/netip"
	"testing"
	"time"
)

// On rotation the previous day's cipher and its cache of address →
// pseudonym pairs are dropped, and the new key differs.
func TestKeyRingDestroysOldKey(t *testing.T) {
	now := time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC)
	k := NewKeyRing(0, func() time.Time { return now })
	a := netip.MustParseAddr("192.0.2.1")
	d1, g1 := k.current()
	p1 := d1.encrypt(a)
	if len(d1.cache) != 1 {
		t.Fatalf("cache holds %d entries", len(d1.cache))
	}
	if d, g := k.current(); d != d1 || g != g1 {
		t.Fatal("key changed within the day")
	}
	now = now.Add(2 * time.Minute) // next UTC day
	d2, g2 := k.current()
	if d2 == d1 || g2 == g1 {
		t.Fatal("key not rotated at midnight")
	}
	if d1.cache != nil {
		t.Error("the old day's pseudonym cache survived rotation")
	}
	if d2.encrypt(a) == p1 {
		t.Error("same pseudonym on two days")
	}
	// A stale holder of the old key still works (no panic) but caches
	// nothing more.
	_ = d1.encrypt(a)
	if d1.cache != nil {
		t.Error("the destroyed cache was refilled")
	}
}

func TestPseudonymCacheBounded(t *testing.T) {
	k := NewKeyRing(0, nil)
	d, _ := k.current()
	for i := range pseudoCacheSize + 10 {
		d.encrypt(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if len(d.cache) > pseudoCacheSize {
		t.Errorf("cache holds %d entries, bound is %d", len(d.cache), pseudoCacheSize)
	}
}
