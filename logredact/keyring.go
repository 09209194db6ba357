package logredact

import (
	"crypto/rand"
	"net/netip"
	"sync"
	"time"
)

// KeyRing holds the ipcrypt-pfx key of the current period (a UTC day by
// default) for the Pseudonymize mode. When the clock enters a new period,
// a fresh key is drawn from crypto/rand and the previous key is zeroed and
// dropped, so pseudonyms written in different periods cannot be linked by
// anyone, the operator included.
//
// Limit: crypto/aes keeps its own expanded key schedule, which Go offers no
// way to wipe; after rotation it is unreachable and reclaimed by the garbage
// collector, but not overwritten.
//
// A KeyRing is safe for concurrent use.
type KeyRing struct {
	period time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time // start of the period of key; zero before the first use
	day   *dayKey
	gen   uint64
}

// dayKey is one period's cipher with a small cache of the pseudonyms it
// produced (ipcrypt-pfx costs two AES blocks per address bit, and a log
// names the same clients again and again).
type dayKey struct {
	pfx   *pfx
	mu    sync.Mutex
	cache map[netip.Addr]netip.Addr
}

// pseudoCacheSize bounds the cache; it is emptied when full.
const pseudoCacheSize = 4096

func (d *dayKey) encrypt(a netip.Addr) netip.Addr {
	d.mu.Lock()
	r, ok := d.cache[a]
	d.mu.Unlock()
	if ok {
		return r
	}
	r = d.pfx.Encrypt(a)
	d.mu.Lock()
	if d.cache != nil {
		if len(d.cache) >= pseudoCacheSize {
			clear(d.cache)
		}
		d.cache[a] = r
	}
	d.mu.Unlock()
	return r
}

// destroy forgets the cipher's cache (which maps addresses to pseudonyms).
func (d *dayKey) destroy() {
	d.mu.Lock()
	clear(d.cache)
	d.cache = nil
	d.mu.Unlock()
}

// NewKeyRing returns a KeyRing whose keys live for period (0 means 24 hours;
// periods start at multiples of period since the zero time, i.e. at UTC
// midnight for a day). now is the clock; nil means time.Now.
func NewKeyRing(period time.Duration, now func() time.Time) *KeyRing {
	if period <= 0 {
		period = 24 * time.Hour
	}
	if now == nil {
		now = time.Now
	}
	return &KeyRing{period: period, now: now}
}

// current returns the key of the current period and a generation number
// that changes whenever the key does.
func (k *KeyRing) current() (*dayKey, uint64) {
	start := k.now().UTC().Truncate(k.period)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.day == nil || !start.Equal(k.start) {
		k.rotate(start)
	}
	return k.day, k.gen
}

// rotate replaces the key. Called with k.mu held.
func (k *KeyRing) rotate(start time.Time) {
	if k.day != nil {
		k.day.destroy()
		k.day = nil
	}
	var key [32]byte
	var c *pfx
	for c == nil {
		rand.Read(key[:]) // never fails (crypto/rand, Go 1.24+)
		c, _ = newPFX(key[:])
	}
	k.day = &dayKey{pfx: c, cache: make(map[netip.Addr]netip.Addr)}
	// newPFX expanded the key; the raw bytes are not kept anywhere.
	clear(key[:])
	k.start = start
	k.gen++
}
