package account

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters keeps one token bucket per caller key, in memory only. Buckets
// that are full again (idle callers) are dropped when the map grows, so a
// scan from many addresses cannot grow it without bound for long.
type limiters struct {
	limit  rate.Limit
	burst  int
	exempt func(string) bool

	mu    sync.Mutex
	m     map[string]*rate.Limiter
	prune int // size at which idle buckets are dropped
}

const minPrune = 4096

func newLimiters(limit rate.Limit, burst int, exempt func(string) bool) *limiters {
	return &limiters{limit: limit, burst: burst, exempt: exempt, m: map[string]*rate.Limiter{}, prune: minPrune}
}

// get returns the bucket of key, or nil if key is exempt.
func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	if l.exempt != nil && l.exempt(key) {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.m[key]; ok {
		return lim
	}
	if len(l.m) >= l.prune {
		for k, lim := range l.m {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.m, k)
			}
		}
		l.prune = max(minPrune, 2*len(l.m))
	}
	lim := rate.NewLimiter(l.limit, l.burst)
	lim.SetBurstAt(now, l.burst) // start full at the injected time
	l.m[key] = lim
	return lim
}

// allow takes one token from key's bucket, reporting false when empty.
func (l *limiters) allow(key string, now time.Time) bool {
	lim := l.get(key, now)
	return lim == nil || lim.AllowN(now, 1)
}

// reserve takes one token from key's bucket if one is available now and
// returns a function that gives it back; ok is false when the bucket is
// empty.
func (l *limiters) reserve(key string, now time.Time) (giveBack func(), ok bool) {
	lim := l.get(key, now)
	if lim == nil {
		return func() {}, true
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return nil, false
	}
	return func() { r.CancelAt(now) }, true
}
