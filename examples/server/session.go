package main

import (
	"context"
	"encoding/xml"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// writeTimeout bounds one write of a queued stanza to a client.
const writeTimeout = 30 * time.Second

// session is one bound client stream. Every stanza for the client other than
// the answer to its own IQs goes through out, drained by one writer goroutine
// that owns all writes to the stream: routing only enqueues; a one-to-one
// message waits on a full queue for the client's progress (sendPaced),
// fan-out never waits (send), and a client that makes no progress is
// ended.
type session struct {
	srv  *Server
	conn net.Conn
	ip   netip.Addr
	jid  jid.JID // bound full JID; set in the bind callback

	out        *outQueue         // outbound queue (outqueue.go)
	stop       chan stream.Error // ends the session with this stream error
	ending     atomic.Bool       // a stream error was asked for
	done       chan struct{}     // closed when the session is over
	doneOnce   sync.Once
	writerDone chan struct{} // closed when the writer ended for good (writerOver)
	wmu        sync.Mutex    // guards the four w fields
	wEnabled   bool          // startWriter was called
	wRunning   bool          // a writer goroutine runs
	wOver      bool          // the writer ended for good
	wResent    bool          // the writer ran once (a resumed session's resend)
	xs         *xmpp.Session // set before the writer starts
	activity   atomic.Int64  // top-level tokens read from the client

	relay      relayTable   // IQs relayed to this session, awaiting its answer
	relayedOut atomic.Int32 // IQs this session relayed, awaiting an answer
	carbons    atomic.Bool  // XEP-0280 carbons enabled (carbons.go)
	sm         smState      // XEP-0198 stream management (sm.go)
	pipe       archivePipe  // messages being archived, then routed (archivepipe.go)
	pipelined  bool         // the stanza being dispatched went into pipe; read loop only

	rosterInterested    atomic.Bool // asked for the roster: gets roster pushes (RFC 6121 § 2.1.6)
	blocklistInterested atomic.Bool // asked for the blocklist: gets its pushes (XEP-0191 § 3.3)

	mu        sync.Mutex
	available bool    // sent initial presence
	presence  element // last available broadcast presence

	directed map[string]bool // JIDs sent directed available presence (subscription.go)
}

func newSession(srv *Server, conn net.Conn, ip netip.Addr) *session {
	return &session{
		srv:        srv,
		conn:       conn,
		ip:         ip,
		out:        newOutQueue(srv.cfg.QueueSize),
		stop:       make(chan stream.Error, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// send queues e for the client. It never blocks: when the queue is full
// the stanza is dropped (false), the queue emptied and the session ended
// with a resource-constraint stream error, which the writer sends if the
// client reads again within queueFullGrace; the connection is closed then
// in any case. Callers that hold a lock other sessions need (the rooms'
// fan-out) use send; a sender's own route to one recipient uses
// sendPaced.
func (s *session) send(e element) bool {
	if s.ending.Load() {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
	}
	if s.out.push(e) {
		s.kickWriter()
		return true
	}
	s.overflow()
	return false
}

// sendPaced queues e like send, but when the queue is full it waits for
// the client to make progress (the writer taking a stanza off), for at
// most queueFullWait each time: a sender faster than its reader is slowed
// to the reader's pace (its read loop waits here, and TCP pushes back on
// it) instead of costing the reader its session. Only a client that reads
// nothing for queueFullWait is ended, as send does. It must not be called
// with a lock held that other sessions need.
func (s *session) sendPaced(e element) bool {
	if s.sendWait(e, queueFullWait) {
		return true
	}
	if !s.ending.Load() {
		s.overflow()
	}
	return false
}

// overflow ends a session whose client does not read: what it would not
// read is dropped.
func (s *session) overflow() {
	s.endWithin(stream.ResourceConstraint, queueFullGrace)
	s.out.clear()
}

// queueFullGrace is how long a client whose queue filled up has to read
// its stream error.
const queueFullGrace = time.Second

// queueFullWait is how long sendPaced waits for a client with a full
// queue to take a stanza off it before the client counts as stuck.
const queueFullWait = 2 * time.Second

// waitForSpace retries pushing e onto the full queue each time the writer
// takes a stanza off it; false when the client took none for wait, or
// the session ends meanwhile.
func (s *session) waitForSpace(e element, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		s.kickWriter()
		select {
		case <-s.out.space:
		case <-s.done:
			return false
		case <-t.C:
			return false
		}
		if s.ending.Load() {
			return false
		}
		if s.out.push(e) {
			s.kickWriter()
			return true
		}
		t.Reset(wait) // progress: wait again
	}
}

// end asks the writer to send the stream error and close the stream. The
// connection is closed at the latest after writeTimeout.
func (s *session) end(e stream.Error) { s.endWithin(e, writeTimeout) }

// endWithin is end with the grace period given to the writer.
func (s *session) endWithin(e stream.Error, grace time.Duration) {
	if !s.ending.CompareAndSwap(false, true) {
		return // already ending
	}
	s.stop <- e // buffered: the first and only error
	s.kickWriter()
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			s.conn.Close()
		}
	}()
}

// finish marks the session over and answers the IQs still relayed to it
// (failRelayed); idempotent.
func (s *session) finish() {
	s.doneOnce.Do(func() {
		close(s.done)
		s.failRelayed()
	})
	s.kickWriter() // an idle writer ends for good (writerDone)
}

// startWriter lets the session's writer run: from now on, queueing a
// stanza, asking for a stream error and the end of the session start it
// when it is not running. It runs at once, for a resumed session's held
// stanzas.
func (s *session) startWriter() {
	s.wmu.Lock()
	s.wEnabled = true
	s.wmu.Unlock()
	s.kickWriter()
}

// kickWriter starts the writer unless it runs, has ended for good, or was
// not started yet (startWriter).
func (s *session) kickWriter() {
	s.wmu.Lock()
	if !s.wEnabled || s.wRunning || s.wOver {
		s.wmu.Unlock()
		return
	}
	s.wRunning = true
	s.wmu.Unlock()
	go s.writer()
}

// writerOver marks the writer ended for good and closes writerDone.
func (s *session) writerOver() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wRunning = false
	if !s.wOver {
		s.wOver = true
		close(s.writerDone)
	}
}

// writer drains the queue, then returns (kickWriter starts it again when
// something is queued): an idle session holds no writer goroutine. A
// stream error asked for with end goes before what is still queued; after
// it the stream is closed and the connection half-closed: the client's
// reads end, and serve reads what it still sends for lingerTimeout at
// most. Once the session is over and its queue empty, the writer ends for
// good (writerDone).
func (s *session) writer() {
	s.wmu.Lock()
	resend := !s.wResent
	s.wResent = true
	s.wmu.Unlock()
	if resend && !s.smResend() { // a resumed session's held stanzas go first
		s.conn.Close()
		s.writerOver()
		return
	}
	for {
		select {
		case se := <-s.stop:
			s.writeError(se)
			s.writerOver()
			return
		default:
		}
		e, ok := s.out.pop()
		if !ok {
			select {
			case <-s.done:
				s.writerOver()
				return
			default:
			}
			// Going idle. What is queued or asked for from here on
			// starts a new writer (kickWriter takes wmu after it).
			s.wmu.Lock()
			if s.out.len() > 0 || len(s.stop) > 0 {
				s.wmu.Unlock()
				continue
			}
			s.wRunning = false
			s.wmu.Unlock()
			return
		}
		if !s.writeQueued(e) {
			s.conn.Close() // serve returns; the session ends
			s.writerOver()
			return
		}
	}
}

// maxWriteBatch bounds the stanzas the writer writes with one flush.
const maxWriteBatch = 64

// writeQueued writes e and what else is queued behind it, up to
// maxWriteBatch stanzas, with one flush: a burst goes out in a few TLS
// records and system calls rather than one per stanza. Each stanza is
// counted for XEP-0198 as it is written (smWritten), an <r/> following the
// last one when the queue ran empty. It stops early when a stream error is
// asked for; false when the connection failed. Like write, it sets the
// deadline itself and never hands mellium a context.
func (s *session) writeQueued(e element) bool {
	w := s.xs.TokenWriter()
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	ok := true
batch:
	for n := 1; ; n++ {
		if _, err := xmlstream.Copy(w, e.TokenReader()); err != nil {
			ok = false
			break
		}
		over, askR := s.sm.sent(e, s.out.len() == 0)
		if over {
			// The client does not acknowledge: like a client that does
			// not read (its held stanzas are bounced when the session
			// ends).
			s.end(stream.ResourceConstraint)
			break
		}
		if askR {
			if _, err := xmlstream.Copy(w, smElement("r").TokenReader()); err != nil {
				ok = false
				break
			}
		}
		if n == maxWriteBatch || len(s.stop) > 0 {
			break
		}
		var ok bool
		if e, ok = s.out.pop(); !ok {
			break batch
		}
	}
	if err := w.Close(); err != nil {
		ok = false
	}
	return ok
}

// write sends what r holds (one element) to the client under the
// session's output lock, with a write deadline of writeTimeout.
//
// It never hands mellium a context that can end: mellium v0.22's Send
// arms a goroutine per call that watches both the call's end and the
// context; when it runs late (a busy machine) it finds both done, may pick
// the context, and then sets a deadline in the past on the connection,
// under whatever write is in progress by then: a spurious i/o timeout that
// broke sessions of the flood test under load. The deadline is ours, set
// while the lock is held.
func (s *session) write(r xml.TokenReader) error {
	w := s.xs.TokenWriter()
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := xmlstream.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeError sends the stream error and the end of the stream.
func (s *session) writeError(se stream.Error) {
	err := s.write(se.TokenReader())
	if err == nil {
		// Close writes </stream:stream> with the deadline write set.
		err = s.xs.Close()
	}
	if err != nil {
		s.conn.Close()
		return
	}
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
}

// setPresence records the client's broadcast presence; it reports whether
// this is the initial presence.
func (s *session) setPresence(p element, available bool) (initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	initial = available && !s.available
	s.available = available
	if available {
		s.presence = p
	} else {
		s.presence = element{}
	}
	return initial
}

// currentPresence returns the last available presence.
func (s *session) currentPresence() (element, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence, s.available
}

// registry maps bound JIDs to sessions.
type registry struct {
	mu      sync.Mutex
	users   map[string]map[string]*session // localpart → resource → session
	blocked map[string]bool                // accounts being deleted
	changed chan struct{}                  // closed and replaced on every removal
}

func newRegistry() *registry {
	return &registry{
		users:   make(map[string]map[string]*session),
		blocked: make(map[string]bool),
		changed: make(chan struct{}),
	}
}

// block keeps user from binding sessions until unblock.
func (r *registry) block(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocked[user] = true
}

func (r *registry) unblock(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.blocked, user)
}

// isBlocked reports whether user is being deleted.
func (r *registry) isBlocked(user string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked[user]
}

// waitGone waits until user has no session or ctx ends.
func (r *registry) waitGone(ctx context.Context, user string) {
	for {
		r.mu.Lock()
		n, ch := len(r.users[user]), r.changed
		r.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// reserve binds s to user/resource; false if the resource is taken or the
// account is being deleted.
func (r *registry) reserve(s *session, j jid.JID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.blocked[j.Localpart()] {
		return false
	}
	res := r.users[j.Localpart()]
	if res == nil {
		res = make(map[string]*session)
		r.users[j.Localpart()] = res
	}
	if _, taken := res[j.Resourcepart()]; taken {
		return false
	}
	res[j.Resourcepart()] = s
	return true
}

// remove unbinds s.
func (r *registry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.users[s.jid.Localpart()]
	if res[s.jid.Resourcepart()] == s {
		delete(res, s.jid.Resourcepart())
	}
	if len(res) == 0 {
		delete(r.users, s.jid.Localpart())
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// lookup returns the sessions a stanza to j reaches: the one full JID, or
// every resource of a bare JID.
func (r *registry) lookup(j jid.JID) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.users[j.Localpart()]
	if j.Resourcepart() != "" {
		if s, ok := res[j.Resourcepart()]; ok {
			return []*session{s}
		}
		return nil
	}
	out := make([]*session, 0, len(res))
	for _, s := range res {
		out = append(out, s)
	}
	return out
}

// all returns every session.
func (r *registry) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*session
	for _, res := range r.users {
		for _, s := range res {
			out = append(out, s)
		}
	}
	return out
}

// usernames returns the users with a session.
func (r *registry) usernames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.users))
	for u := range r.users {
		out = append(out, u)
	}
	return out
}

// kick ends every session of the user with a not-authorized stream error
// (account deleted) and returns how many it ended.
func (r *registry) kick(user string) int {
	var v []*session
	r.mu.Lock()
	for _, s := range r.users[user] {
		v = append(v, s)
	}
	r.mu.Unlock()
	for _, s := range v {
		s.end(stream.NotAuthorized)
	}
	return len(v)
}
