package main

// Limits per remote domain for federation: what one remote server may make
// this server handle, counted without reading any stanza's content. The
// s2s router asks allow for every inbound stanza (its size on the wire) and
// allowSubscription/doneSubscription around each subscription request it
// keeps pending for a local user; when one says no, the router answers the
// stanza with policy-violation. Refusals go to the operator log as counts
// per remote domain, a line a second at most (summaryLog): the domain and
// which limit, never a JID, an address or a byte of content.

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Defaults of the per-remote-domain limits (the -s2s-* flags).
const (
	// defaultS2SStanzaRate is how many stanzas a second one remote domain
	// may send on average; it may send defaultS2SBurst seconds' worth at
	// once.
	defaultS2SStanzaRate = 200
	// defaultS2SByteRate is the wire bytes a second one remote domain
	// may send on average (1 MiB).
	defaultS2SByteRate = 1 << 20
	// defaultS2SMaxPendingSubs is how many subscription requests from one
	// remote domain may wait for an answer from local users at once.
	defaultS2SMaxPendingSubs = 100
	// defaultS2SBurst is the size of each bucket, in seconds of its rate.
	defaultS2SBurst = 5 * time.Second
	// defaultS2SMaxDomains is the most remote domains tracked one by one;
	// the others share one set of buckets until a slot is free.
	defaultS2SMaxDomains = 10000
	// defaultS2SIdle is how long a remote domain sends nothing before it
	// is forgotten (its buckets and its count of pending requests).
	defaultS2SIdle = 10 * time.Minute
)

// domainLimitConfig configures a domainLimiter. Every zero field means its
// default.
type domainLimitConfig struct {
	StanzaRate     float64       // stanzas a second per remote domain; 0 means defaultS2SStanzaRate
	ByteRate       float64       // wire bytes a second per remote domain; 0 means defaultS2SByteRate
	MaxPendingSubs int           // pending subscription requests per remote domain; 0 means defaultS2SMaxPendingSubs
	Burst          time.Duration // bucket size in seconds of rate; 0 means defaultS2SBurst
	MaxDomains     int           // domains tracked one by one; 0 means defaultS2SMaxDomains
	Idle           time.Duration // a domain silent this long is forgotten; 0 means defaultS2SIdle
	Now            func() time.Time
	// Log is the operator log for the summary of refusals; nil means
	// none.
	Log *slog.Logger
}

// domainLimiter holds a token bucket for stanzas and one for bytes, and a
// count of pending subscription requests, per remote domain. Its memory is
// bounded: at most MaxDomains domains plus one shared entry (overflow)
// for the domains beyond, and a domain silent for Idle is forgotten. It is
// safe for concurrent use.
type domainLimiter struct {
	cfg     domainLimitConfig
	refused *summaryLog // nil without a log

	mu        sync.Mutex
	domains   map[string]*domainState
	overflow  *domainState // every domain past MaxDomains, while the table is full
	lastSweep time.Time
}

// domainState is what is kept about one remote domain: two token
// buckets, the pending requests and when it was last heard from.
type domainState struct {
	stanzas, bytes float64 // tokens left
	filled         time.Time
	seen           time.Time
	pending        int
}

// Names of the limits in the operator log.
const (
	limitStanzas       = "stanzas"
	limitBytes         = "bytes"
	limitSubscriptions = "subscriptions"
	// overflowDomain names the shared entry in the log.
	overflowDomain = "(untracked domains)"
)

// newDomainLimiter returns a limiter with cfg's limits.
func newDomainLimiter(cfg domainLimitConfig) *domainLimiter {
	if cfg.StanzaRate <= 0 {
		cfg.StanzaRate = defaultS2SStanzaRate
	}
	if cfg.ByteRate <= 0 {
		cfg.ByteRate = defaultS2SByteRate
	}
	if cfg.MaxPendingSubs <= 0 {
		cfg.MaxPendingSubs = defaultS2SMaxPendingSubs
	}
	if cfg.Burst <= 0 {
		cfg.Burst = defaultS2SBurst
	}
	if cfg.MaxDomains <= 0 {
		cfg.MaxDomains = defaultS2SMaxDomains
	}
	if cfg.Idle <= 0 {
		cfg.Idle = defaultS2SIdle
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &domainLimiter{cfg: cfg, domains: make(map[string]*domainState)}
	if cfg.Log != nil {
		l.refused = newSummaryLog(cfg.Log, "s2s stanzas refused over a per-domain limit (policy-violation)")
		l.refused.now = cfg.Now
	}
	return l
}

// stanzaBurst and byteBurst are the bucket sizes. A byte bucket always
// holds at least one stanza of the largest size the server reads.
func (l *domainLimiter) stanzaBurst() float64 {
	return max(1, l.cfg.StanzaRate*l.cfg.Burst.Seconds())
}

func (l *domainLimiter) byteBurst() float64 {
	return max(float64(maxStanzaWireBytes), l.cfg.ByteRate*l.cfg.Burst.Seconds())
}

// allow reports whether the remote domain may send one more stanza of n
// wire bytes now, and takes it from the domain's buckets if so. A refusal
// is counted for the operator log.
func (l *domainLimiter) allow(domain string, n int) bool {
	n = max(n, 0)
	l.mu.Lock()
	name, st := l.stateLocked(domain)
	ok, which := true, ""
	switch {
	case st.stanzas < 1:
		ok, which = false, limitStanzas
	case st.bytes < float64(n):
		ok, which = false, limitBytes
	default:
		st.stanzas--
		st.bytes -= float64(n)
	}
	l.mu.Unlock()
	if !ok {
		l.count(name, which)
	}
	return ok
}

// allowSubscription reports whether the remote domain may leave one more
// subscription request pending, and counts it if so; the caller calls
// doneSubscription when the request is answered or dropped.
func (l *domainLimiter) allowSubscription(domain string) bool {
	l.mu.Lock()
	name, st := l.stateLocked(domain)
	ok := st.pending < l.cfg.MaxPendingSubs
	if ok {
		st.pending++
	}
	l.mu.Unlock()
	if !ok {
		l.count(name, limitSubscriptions)
	}
	return ok
}

// doneSubscription takes one pending request of the remote domain off its
// count (never below zero; a domain forgotten since counts nothing).
func (l *domainLimiter) doneSubscription(domain string) {
	domain = normalizeDomain(domain)
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.domains[domain]
	if st == nil {
		st = l.overflow
	}
	if st != nil && st.pending > 0 {
		st.pending--
	}
}

// stop logs the refusals still counted (at shutdown).
func (l *domainLimiter) stop() {
	if l.refused != nil {
		l.refused.stop()
	}
}

func (l *domainLimiter) count(domain, which string) {
	if l.refused != nil {
		l.refused.add(domain + "/" + which)
	}
}

// tracked returns how many domains have an entry of their own, and
// whether the shared entry exists (tests).
func (l *domainLimiter) tracked() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.domains), l.overflow != nil
}

// normalizeDomain is the key of a domain: lower case, without a trailing
// dot (RFC 7622 § 3.2). The router passes the domain the peer
// authenticated, already a valid domainpart.
func normalizeDomain(d string) string {
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

// stateLocked returns the entry of domain (and its name for the log),
// refilled up to now: its own, a new one if there is room, or the shared
// one. Called with l.mu held.
func (l *domainLimiter) stateLocked(domain string) (string, *domainState) {
	domain = normalizeDomain(domain)
	now := l.cfg.Now()
	if now.Sub(l.lastSweep) >= l.cfg.Idle/2 {
		l.sweepLocked(now)
	}
	st, name := l.domains[domain], domain
	if st == nil {
		if len(l.domains) >= l.cfg.MaxDomains && now.Sub(l.lastSweep) >= time.Second {
			l.sweepLocked(now) // a full table is swept once a second at most
		}
		switch {
		case len(l.domains) < l.cfg.MaxDomains:
			st = l.newState(now)
			l.domains[domain] = st
		default:
			if l.overflow == nil {
				l.overflow = l.newState(now)
			}
			st, name = l.overflow, overflowDomain
		}
	}
	l.refill(st, now)
	st.seen = now
	return name, st
}

func (l *domainLimiter) newState(now time.Time) *domainState {
	return &domainState{stanzas: l.stanzaBurst(), bytes: l.byteBurst(), filled: now, seen: now}
}

// refill adds the tokens earned since st was last filled, up to the
// bucket sizes.
func (l *domainLimiter) refill(st *domainState, now time.Time) {
	d := now.Sub(st.filled).Seconds()
	if d <= 0 {
		return // the clock went back: nothing earned
	}
	st.stanzas = min(l.stanzaBurst(), st.stanzas+d*l.cfg.StanzaRate)
	st.bytes = min(l.byteBurst(), st.bytes+d*l.cfg.ByteRate)
	st.filled = now
}

// sweepLocked forgets every domain silent for Idle, and the shared entry
// too. Called with l.mu held; O(domains), at most twice per Idle, or once
// a second while the table is full.
func (l *domainLimiter) sweepLocked(now time.Time) {
	l.lastSweep = now
	for d, st := range l.domains {
		if now.Sub(st.seen) >= l.cfg.Idle {
			delete(l.domains, d)
		}
	}
	if l.overflow != nil && now.Sub(l.overflow.seen) >= l.cfg.Idle {
		l.overflow = nil
	}
}
