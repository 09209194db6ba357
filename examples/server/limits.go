package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// What one client connection may make the server hold, and for how long.
// Byte budgets are counted on the wire, below TLS and below the XML
// decoder, so the decoder never gets more than the budget whatever the
// client sends: a 100 MiB element or attribute costs the server one
// budget, not 100 MiB.
const (
	defaultNegotiationTimeout = 60 * time.Second
	defaultIdleTimeout        = 5 * time.Minute
	defaultPingTimeout        = time.Minute
	defaultMaxConnsPerIP      = 10

	// maxNegotiationBytes is the wire budget of each negotiation step
	// before the session is bound: the TLS handshake and the stream header
	// with its features choice, each SASL exchange, each registration IQ,
	// the bind IQ. An honest client needs a few KiB.
	maxNegotiationBytes = 16 << 10
	// maxStanzaWireBytes is the wire budget of one stanza of a bound
	// session, with everything before it (whitespace keepalives): the
	// stanza limit plus TLS framing and the decoder's read-ahead.
	maxStanzaWireBytes = maxStanzaBytes + 32<<10
	// maxAttrs bounds the attributes of one element of a stanza.
	maxAttrs = 64
	// maxDepth bounds the nesting of elements inside a stanza.
	maxDepth = 32

	// errorWriteTimeout bounds the write of a stream error.
	errorWriteTimeout = 5 * time.Second
	// lingerTimeout and lingerBytes bound how long and how much the server
	// still reads (and discards) after it ended a stream, so that the
	// client reads the stream error instead of a connection reset.
	lingerTimeout = 2 * time.Second
	lingerBytes   = 1 << 20

	// Accept back-off when the listener fails (e.g. out of file
	// descriptors): doubled from the first delay up to the cap, like
	// net/http's Server.Serve.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// defaultMaxConns is the default cap of open client connections: 10,000,
// or 3/4 of the open-file limit when that is lower, so that connections
// left idle cannot take the descriptors the HTTPS server and the databases
// need.
func defaultMaxConns(openFiles int) int {
	n := 10000
	if openFiles > 0 {
		n = min(n, max(1, openFiles*3/4))
	}
	return n
}

// limitConn is a client connection whose reads stop at a byte budget: once
// the budget is spent, Read fails with errWireLimit. The budget is set
// again for each negotiation step and each stanza; reads never ask the
// connection for more bytes than are left.
type limitConn struct {
	net.Conn
	left atomic.Int64 // bytes the reader may still read
	over atomic.Bool  // a read hit the budget
}

func newLimitConn(c net.Conn, budget int64) *limitConn {
	lc := &limitConn{Conn: c}
	lc.left.Store(budget)
	return lc
}

// reset gives the reader a fresh budget.
func (c *limitConn) reset(budget int64) { c.left.Store(budget) }

// exceeded reports whether a read hit the budget.
func (c *limitConn) exceeded() bool { return c.over.Load() }

func (c *limitConn) Read(p []byte) (int, error) {
	left := c.left.Load()
	if left <= 0 {
		c.over.Store(true)
		return 0, errWireLimit
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := c.Conn.Read(p)
	c.left.Add(-int64(n))
	return n, err
}

// lingerClose half-closes raw (the TCP connection under TLS) after a
// stream error and reads what the client still sends, for at most
// lingerTimeout and lingerBytes, before the caller closes it: closing a
// socket with unread data resets the connection, and a client still
// writing would lose the stream error.
func lingerClose(raw net.Conn) {
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, raw, lingerBytes)
}

// connLimiter caps the open client connections, and the connections per
// client key (clientKey) that are still negotiating.
type connLimiter struct {
	maxOpen, maxPerKey int

	mu          sync.Mutex
	open        int
	negotiating map[string]int
}

func newConnLimiter(maxOpen, maxPerKey int) *connLimiter {
	return &connLimiter{maxOpen: maxOpen, maxPerKey: maxPerKey, negotiating: make(map[string]int)}
}

// Reasons a connection is refused, as logged.
const (
	refusedTotal  = "max-conns"
	refusedPerKey = "max-conns-per-ip"
)

// admit counts a new negotiating connection of key; it returns the reason
// of a refusal, or "" and a ticket to give back.
func (l *connLimiter) admit(key string) (*connTicket, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.maxOpen:
		return nil, refusedTotal
	case l.negotiating[key] >= l.maxPerKey:
		return nil, refusedPerKey
	}
	l.open++
	l.negotiating[key]++
	return &connTicket{l: l, key: key, negotiating: true}, ""
}

// counts returns the open and the negotiating connections of key.
func (l *connLimiter) counts(key string) (open, negotiating int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.negotiating[key]
}

// connTicket is one admitted connection; it is used by the connection's
// goroutine only.
type connTicket struct {
	l           *connLimiter
	key         string
	negotiating bool
	released    bool
}

// bound moves the connection from negotiating to open.
func (t *connTicket) bound() {
	if !t.negotiating || t.released {
		return
	}
	t.negotiating = false
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.l.dropNegotiating(t.key)
}

// release gives the connection back; idempotent.
func (t *connTicket) release() {
	if t.released {
		return
	}
	t.released = true
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.l.open--
	if t.negotiating {
		t.l.dropNegotiating(t.key)
	}
}

func (l *connLimiter) dropNegotiating(key string) {
	if l.negotiating[key]--; l.negotiating[key] <= 0 {
		delete(l.negotiating, key)
	}
}

// summaryLog logs repeated events as one line per interval at most, with
// the count of each kind: refused connections and accept errors come in
// floods, and one line a second says as much as a thousand. The lines carry
// no address.
type summaryLog struct {
	log      *slog.Logger
	msg      string
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	last    time.Time
	pending map[string]int
	timer   *time.Timer
}

func newSummaryLog(log *slog.Logger, msg string) *summaryLog {
	return &summaryLog{log: log, msg: msg, interval: time.Second, now: time.Now, pending: make(map[string]int)}
}

// add counts one event of kind; the first event after a quiet interval is
// logged at once, the others when the interval since the last line ends.
func (s *summaryLog) add(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[kind]++
	if s.timer != nil {
		return // a line is due
	}
	wait := s.interval - s.now().Sub(s.last)
	if wait <= 0 {
		s.flushLocked()
		return
	}
	s.timer = time.AfterFunc(wait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.timer = nil
		s.flushLocked()
	})
}

// stop cancels a pending line (at shutdown) and logs it now.
func (s *summaryLog) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.flushLocked()
}

func (s *summaryLog) flushLocked() {
	if len(s.pending) == 0 {
		return
	}
	kinds := make([]string, 0, len(s.pending))
	for k := range s.pending {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	attrs := make([]any, 0, 2*len(kinds))
	for _, k := range kinds {
		attrs = append(attrs, k, s.pending[k])
	}
	s.log.Warn(s.msg, attrs...)
	s.last = s.now()
	clear(s.pending)
}

// acceptLoop accepts connections from ln and hands each to serve until ln
// is closed or ctx ends. When Accept fails (e.g. EMFILE, too many open
// files) it waits, doubling the delay from acceptBackoffMin up to
// acceptBackoffMax, and logs the failures through errs (a line a second at
// most) instead of spinning. sleep waits d or until ctx ends (nil: a
// timer).
func acceptLoop(ctx context.Context, ln net.Listener, errs *summaryLog, sleep func(context.Context, time.Duration), serve func(net.Conn)) {
	if sleep == nil {
		sleep = sleepCtx
	}
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			if delay == 0 {
				delay = acceptBackoffMin
			} else {
				delay = min(2*delay, acceptBackoffMax)
			}
			errs.add(acceptErrorKind(err))
			sleep(ctx, delay)
			continue
		}
		delay = 0
		serve(conn)
	}
}

// acceptErrorKind names an accept error for the log without an address.
func acceptErrorKind(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error() // the innermost cause, e.g. "too many open files"
		}
		err = next
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
