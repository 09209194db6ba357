package logredact

import (
	"crypto/rand"
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
	pfx   *PFX
	gen   uint64
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

// current returns the cipher of the current period and a generation number
// that changes whenever the key does.
func (k *KeyRing) current() (*PFX, uint64) {
	start := k.now().UTC().Truncate(k.period)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pfx == nil || !start.Equal(k.start) {
		k.rotate(start)
	}
	return k.pfx, k.gen
}

// rotate replaces the key. Called with k.mu held.
func (k *KeyRing) rotate(start time.Time) {
	var key [32]byte
	k.pfx = nil // drop the old cipher
	for k.pfx == nil {
		rand.Read(key[:]) // never fails (crypto/rand, Go 1.24+)
		k.pfx, _ = NewPFX(key[:])
	}
	// NewPFX expanded the key; the raw bytes are not kept anywhere.
	clear(key[:])
	k.start = start
	k.gen++
}
