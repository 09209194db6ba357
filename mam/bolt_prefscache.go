package mam

import (
	"slices"
	"sync"
)

// maxCachedPrefs bounds the preferences a BoltStore keeps in memory; the
// cache starts over when it is full.
const maxCachedPrefs = 8192

// prefsCache keeps owners' preferences as stored, so that archiving a
// message (two Prefs reads) costs no read transaction. SetPrefs and Erase
// drop the owner's entry after their commit; a read that began before the
// drop does not store what it read (gen).
type prefsCache struct {
	mu  sync.Mutex
	m   map[string]Prefs
	gen uint64 // incremented by every drop
}

// get returns the cached preferences of owner (a bare JID's bytes) and the
// generation to pass to put after a miss.
func (c *prefsCache) get(owner []byte) (Prefs, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[string(owner)]
	return clonePrefs(p), ok, c.gen
}

// put caches p, read from the store at generation gen, unless an entry was
// dropped since.
func (c *prefsCache) put(owner []byte, p Prefs, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedPrefs {
		c.m = make(map[string]Prefs)
	}
	c.m[string(owner)] = clonePrefs(p)
}

// drop forgets owner's preferences.
func (c *prefsCache) drop(owner []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, string(owner))
	c.gen++
}

// clonePrefs copies p's lists: neither the cache nor a caller shares them.
func clonePrefs(p Prefs) Prefs {
	p.Always, p.Never = slices.Clone(p.Always), slices.Clone(p.Never)
	return p
}
