package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// XEP-0198 stream management: acknowledgements and resumption.
//
// After <enable/>, every stanza the session's writer sends is counted and
// kept (unacked) until the client acknowledges it with <a h=…/>; the read
// loop counts the client's stanzas and answers <r/>. Everything for the
// client, the answers to its own IQs included, then goes through the
// session's queue and its one writer, so the count and the order are
// those of the wire. The writer asks for an acknowledgement (<r/>) when
// its queue runs empty.
//
// When the connection of a resumable session drops, the session ends as
// any other (its presence goes unavailable, it leaves its rooms) but its
// unacknowledged and still queued stanzas are parked in memory, never on
// disk, under the resumption id for the resumption window. A new
// connection of the same user that sends <resume previd h/> instead of
// binding gets the same full JID, <resumed/>, the stanzas the client had
// not handled, and its presence back. At the end of the window, or when
// the session cannot be resumed (the server ended it, the client closed
// its stream), the parked messages go back to their senders as
// service-unavailable errors, except those stored in the recipient's
// archive (the client fetches them from there).

// nsSM is the XEP-0198 namespace.
const nsSM = "urn:xmpp:sm:3"

const (
	// defaultSMResumeTimeout is the resumption window (-sm-resume-timeout).
	defaultSMResumeTimeout = 5 * time.Minute
	// maxSMResumeTimeout bounds -sm-resume-timeout: held stanzas are
	// personal data kept in memory for the window.
	maxSMResumeTimeout = time.Hour
	// maxResumablePerUser bounds the resumable sessions of one user, live
	// or parked; beyond it <enable resume='true'/> enables acks only.
	maxResumablePerUser = 10
	// smTakeoverWait bounds the wait for the old connection of a session
	// being resumed to wind down.
	smTakeoverWait = 10 * time.Second
)

// errSMResume is returned when a resumption is refused (unknown id,
// another user's, expired, or invalid h).
var errSMResume = errors.New("sm: session cannot be resumed")

// smState is a session's stream management state. The read loop sets
// enabled and counts in; the writer counts out and keeps unacked.
type smState struct {
	mu       sync.Mutex
	enabled  bool   // <enable/> accepted (or the session was resumed)
	counting bool   // <enabled/> or <resumed/> went out: stanzas are counted
	id       string // resumption id; "" when not resumable
	timeout  time.Duration
	limit    int       // most unacknowledged stanzas (Config.QueueSize)
	in       uint32    // client stanzas handled, mod 2^32
	out      uint32    // stanzas sent, mod 2^32
	unacked  []element // the last len(unacked) stanzas sent
	rPending bool      // an <r/> went out and no <a/> came back yet
	resend   []element // a resumed session's held stanzas, written first
	restore  element   // a resumed session's presence, broadcast again
	takeover bool      // a resumption closed this connection
	idle     bool      // ended by the idle watch (no answer to its ping)
}

// sent records a stanza the writer wrote; it reports whether the unacked
// queue went over its limit and whether to ask for an acknowledgement.
func (m *smState) sent(e element, queueEmpty bool) (over, askR bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.start.Name.Space == nsSM {
		switch e.start.Name.Local {
		case "enabled":
			m.counting = true
		case "r":
			m.rPending = true
		}
		return false, false
	}
	if !m.counting {
		return false, false
	}
	m.out++
	m.unacked = append(m.unacked, e)
	askR = queueEmpty && !m.rPending
	if askR {
		m.rPending = true
	}
	return len(m.unacked) > m.limit, askR
}

// ack drops the stanzas the client acknowledged with h (its count of
// handled stanzas, mod 2^32) and reports whether some are still unacked.
// An h beyond what was sent is an error (XEP-0198 § 4).
func (m *smState) ack(h uint32) (more bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	base := m.out - uint32(len(m.unacked)) // acknowledged before
	n := h - base
	if n > uint32(len(m.unacked)) {
		return false, errors.New("sm: acknowledged more stanzas than were sent")
	}
	m.unacked = append([]element(nil), m.unacked[n:]...)
	m.rPending = false
	return len(m.unacked) > 0, nil
}

// smElement is <name xmlns='urn:xmpp:sm:3' attrs…/>.
func smElement(name string, attrs ...string) element {
	start := xml.StartElement{Name: xml.Name{Space: nsSM, Local: name}}
	for i := 0; i+1 < len(attrs); i += 2 {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	return element{start: start}
}

// smFailed is <failed xmlns='urn:xmpp:sm:3'> with a stanza error condition.
func smFailed(cond string) element {
	e := smElement("failed")
	c := xml.Name{Space: stanza.NSError, Local: cond}
	e.inner = []xml.Token{xml.StartElement{Name: c}, xml.EndElement{Name: c}}
	return e
}

// handleSM handles a top-level XEP-0198 element from the client: <enable/>,
// <r/> and <a/>. Its answers go through the queue.
func (s *session) handleSM(e element) error {
	m := &s.sm
	switch e.start.Name.Local {
	case "enable":
		s.flushPipeline() // the count starts after what came before
		m.mu.Lock()
		if m.enabled {
			m.mu.Unlock()
			s.send(smFailed("unexpected-request"))
			return nil
		}
		m.enabled, m.in, m.limit = true, 0, s.srv.cfg.QueueSize
		var attrs []string
		if r := e.attr("resume"); r == "true" || r == "1" {
			timeout := s.srv.cfg.SMResumeTimeout
			if secs, err := strconv.ParseUint(e.attr("max"), 10, 32); err == nil && secs > 0 && time.Duration(secs)*time.Second < timeout {
				timeout = time.Duration(secs) * time.Second // the client's preference, if shorter
			}
			if id := s.srv.sm.register(s, timeout); id != "" {
				m.id, m.timeout = id, timeout
				attrs = []string{"id", id, "resume", "true", "max", strconv.Itoa(int(timeout / time.Second))}
			}
		}
		m.mu.Unlock()
		s.send(smElement("enabled", attrs...))
		return nil
	case "r":
		m.mu.Lock()
		enabled, h := m.enabled, m.in
		m.mu.Unlock()
		if !enabled {
			s.send(smFailed("unexpected-request"))
			return nil
		}
		if s.pipelineBusy() {
			// Answered once the messages before it are archived and
			// routed (archivepipe.go): h never counts a message whose
			// archive commit is not done.
			s.pipeline(pipeItem{r: true})
			return nil
		}
		s.send(smElement("a", "h", strconv.FormatUint(uint64(h), 10)))
		return nil
	case "a":
		h, err := strconv.ParseUint(e.attr("h"), 10, 32)
		if err != nil {
			return stream.BadFormat
		}
		m.mu.Lock()
		enabled := m.enabled
		m.mu.Unlock()
		if !enabled {
			return nil // nothing to acknowledge
		}
		more, err := m.ack(uint32(h))
		if err != nil {
			return stream.UndefinedCondition // XEP-0198 § 4: handled-count-too-high
		}
		if more {
			s.send(smElement("r"))
		}
		return nil
	}
	return stream.UnsupportedStanzaType
}

// smHandled counts a stanza from the client (after <enable/>).
func (s *session) smHandled() {
	s.sm.mu.Lock()
	if s.sm.enabled {
		s.sm.in++
	}
	s.sm.mu.Unlock()
}

// smQueue returns where the answers to the client's stanzas go: nil (the
// stream, directly) unless stream management is on, then the queue, so
// that they are counted and kept like every other stanza.
func (s *session) smQueue() *smReplies {
	s.sm.mu.Lock()
	defer s.sm.mu.Unlock()
	if !s.sm.enabled {
		return nil
	}
	return &smReplies{s: s}
}

// smReplies collects the tokens a handler writes as answers and queues
// each complete top-level element.
type smReplies struct {
	s    *session
	toks []xml.Token
}

// add takes one token; depth is the nesting after it.
func (q *smReplies) add(t xml.Token, depth int) {
	if _, start := t.(xml.StartElement); !start && len(q.toks) == 0 {
		return // text between answers
	}
	q.toks = append(q.toks, xml.CopyToken(t))
	if _, end := t.(xml.EndElement); !end || depth != 0 {
		return
	}
	start, ok := q.toks[0].(xml.StartElement)
	if ok {
		q.s.send(element{start: start, inner: q.toks[1 : len(q.toks)-1]})
	}
	q.toks = nil
}

// smWritten is the writer's bookkeeping after it wrote e; false when the
// connection failed.
func (s *session) smWritten(e element) bool {
	over, askR := s.sm.sent(e, s.out.len() == 0)
	if over {
		// The client does not acknowledge: like a client that does not
		// read (its held stanzas are bounced when the session ends).
		s.end(stream.ResourceConstraint)
		return true
	}
	if askR {
		return s.writeNow(smElement("r"))
	}
	return true
}

// smResend writes a resumed session's held stanzas first; false when the
// connection failed.
func (s *session) smResend() bool {
	s.sm.mu.Lock()
	resend := s.sm.resend
	s.sm.resend = nil
	s.sm.mu.Unlock()
	for _, e := range resend {
		if !s.writeNow(e) || !s.smWritten(e) {
			return false
		}
	}
	return true
}

// writeNow writes e on the stream; only the writer calls it.
func (s *session) writeNow(e element) bool {
	return s.write(e.TokenReader()) == nil // never Send with a context: see write
}

// smIdleEnd notes that the idle watch ends the session: a client whose
// network went away stays resumable.
func (s *session) smIdleEnd() {
	s.sm.mu.Lock()
	s.sm.idle = true
	s.sm.mu.Unlock()
}

// smTable holds the resumable sessions by id: live ones and parked ones.
type smTable struct {
	srv    *Server
	mu     sync.Mutex
	byID   map[string]*smEntry
	byUser map[string]int // entries in byID per user, for register's bound
}

// smEntry is one resumable session.
type smEntry struct {
	id      string
	user    string  // localpart
	jid     jid.JID // the full JID it is bound to
	timeout time.Duration

	live   *session      // the connected session; nil while parked
	parked chan struct{} // closed when live ended (parked or gone)
	taking bool          // a resumption is taking it over

	held     []element // parked: unacked stanzas, then unsent ones
	unacked  int       // how many of held were sent
	base     uint32    // stanzas acknowledged before held[0]
	in       uint32    // the client's stanzas handled
	presence element   // the presence it had, if available
	carbons  bool      // XEP-0280 carbons were on
	timer    *time.Timer
}

func newSMTable(srv *Server) *smTable {
	return &smTable{srv: srv, byID: make(map[string]*smEntry), byUser: make(map[string]int)}
}

// remove deletes e from the table; t.mu is held.
func (t *smTable) remove(e *smEntry) {
	delete(t.byID, e.id)
	if t.byUser[e.user]--; t.byUser[e.user] <= 0 {
		delete(t.byUser, e.user)
	}
}

// register makes s resumable and returns its id; "" when the user has
// maxResumablePerUser resumable sessions already.
func (t *smTable) register(s *session, timeout time.Duration) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	user := s.jid.Localpart()
	if t.byUser[user] >= maxResumablePerUser || timeout <= 0 {
		return ""
	}
	b := make([]byte, 18) // 144 bits from crypto/rand: unguessable
	_, _ = rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	t.byID[id] = &smEntry{
		id: id, user: user, jid: s.jid, timeout: timeout,
		live: s, parked: make(chan struct{}),
	}
	t.byUser[user]++
	return id
}

// smEnded ends a session after its read loop returned with err (in place
// of sessionEnded, which it calls): a resumable session that lost its
// connection is parked with its unacknowledged and unsent stanzas; any
// other session with stream management bounces them now.
func (srv *Server) smEnded(s *session, err error) {
	presence, available := s.currentPresence()
	srv.sessionEnded(s)
	m := &s.sm
	m.mu.Lock()
	enabled := m.enabled
	m.mu.Unlock()
	if !enabled {
		return
	}
	_ = s.conn.Close() // the writer stops at once
	<-s.writerDone
	srv.sessions.remove(s) // before parking: a resumption binds the same JID
	m.mu.Lock()
	held := append([]element(nil), m.unacked...)
	unacked, base, in, id := len(held), m.out-uint32(len(held)), m.in, m.id
	resumable := id != "" && (m.takeover || m.idle || (!s.ending.Load() && err != nil))
	m.unacked = nil
	m.mu.Unlock()
	for {
		e, ok := s.out.pop()
		if !ok {
			break
		}
		if e.start.Name.Space != nsSM {
			held = append(held, e)
		}
	}
	t := srv.sm
	t.mu.Lock()
	e := t.byID[id]
	if e == nil || e.live != s {
		t.mu.Unlock()
		srv.bounceHeld(s.jid, held)
		return
	}
	if !resumable {
		t.remove(e)
		close(e.parked)
		t.mu.Unlock()
		srv.bounceHeld(s.jid, held)
		return
	}
	e.live, e.held, e.unacked, e.base, e.in = nil, held, unacked, base, in
	e.carbons = s.carbons.Load()
	e.presence = element{}
	if available {
		e.presence = presence
	}
	e.timer = time.AfterFunc(e.timeout, func() { t.expire(e) })
	close(e.parked)
	t.mu.Unlock()
}

// expire drops a parked entry at the end of its window and bounces what
// it held.
func (t *smTable) expire(e *smEntry) {
	t.mu.Lock()
	if t.byID[e.id] != e || e.live != nil || e.taking {
		t.mu.Unlock()
		return // resumed or being resumed
	}
	t.remove(e)
	held := e.held
	e.held = nil
	t.mu.Unlock()
	t.srv.bounceHeld(e.jid, held)
}

// take hands the session id of user to the resuming session s: a live one
// is ended first (its connection closed) and waited for. It returns the
// parked entry, now s's, or errSMResume.
func (t *smTable) take(id, user string, s *session) (*smEntry, error) {
	t.mu.Lock()
	e := t.byID[id]
	if e == nil || e.user != user || e.taking {
		t.mu.Unlock()
		return nil, errSMResume
	}
	e.taking = true
	live, parked := e.live, e.parked
	t.mu.Unlock()
	if live != nil {
		live.sm.mu.Lock()
		live.sm.takeover = true
		live.sm.mu.Unlock()
		_ = live.conn.Close()
	}
	timer := time.NewTimer(smTakeoverWait)
	defer timer.Stop()
	select {
	case <-parked:
	case <-timer.C:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e.taking = false
	if t.byID[id] != e || e.live != nil {
		return nil, errSMResume // ended unresumable, or still winding down
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.live, e.parked = s, make(chan struct{})
	return e, nil
}

// drop forgets an entry taken for a resumption that failed and bounces
// what it held.
func (t *smTable) drop(e *smEntry) {
	t.mu.Lock()
	if t.byID[e.id] == e {
		t.remove(e)
	}
	held := e.held
	e.held = nil
	t.mu.Unlock()
	t.srv.bounceHeld(e.jid, held)
}

// dropUser forgets the parked sessions of a user whose account is being
// deleted, bouncing what they held.
func (t *smTable) dropUser(user string) {
	t.dropWhere(func(e *smEntry) bool { return e.user == user })
}

// closeAll forgets every parked session at shutdown.
func (t *smTable) closeAll() { t.dropWhere(func(*smEntry) bool { return true }) }

func (t *smTable) dropWhere(match func(*smEntry) bool) {
	var gone []*smEntry
	t.mu.Lock()
	for _, e := range t.byID {
		if match(e) && e.live == nil && !e.taking {
			t.remove(e)
			if e.timer != nil {
				e.timer.Stop()
			}
			gone = append(gone, e)
		}
	}
	t.mu.Unlock()
	for _, e := range gone {
		t.srv.bounceHeld(e.jid, e.held)
	}
}

// bounceHeld returns the held messages for owner that nobody will get to
// their local senders as service-unavailable errors: the same answer as
// for a message to an offline user. Not bounced: messages stored in the
// owner's archive (the client reads them there), carbon copies, errors,
// group chat and headlines; IQs relayed to the session were answered when
// it ended, and presence is not kept.
func (srv *Server) bounceHeld(owner jid.JID, held []element) {
	for _, e := range held {
		if e.start.Name != (xml.Name{Space: stanza.NSClient, Local: "message"}) {
			continue
		}
		switch e.attr("type") {
		case "error", "groupchat", "headline":
			continue
		}
		if hasStanzaIDBy(e, owner.Bare().String()) {
			continue // archived for the owner
		}
		from, err := jid.Parse(e.attr("from"))
		if err != nil || !srv.isLocalUser(from) || from.Bare().Equal(owner.Bare()) {
			continue // a room, the server, or a carbon copy
		}
		targets := srv.sessions.lookup(from)
		if len(targets) == 0 && from.Resourcepart() != "" {
			targets = srv.sessions.lookup(from.Bare())
		}
		errFrom := e.attr("to")
		if errFrom == "" {
			errFrom = owner.String()
		}
		start := xml.StartElement{Name: e.start.Name, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "error"},
			{Name: xml.Name{Local: "from"}, Value: errFrom},
		}}
		if id := e.attr("id"); id != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: id})
		}
		inner, _ := xmlstream.ReadAll(stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}.TokenReader())
		for _, r := range targets {
			b := element{start: start, inner: inner}.withAttr("to", r.jid.String())
			r.send(b)
		}
	}
}

// hasStanzaIDBy reports whether e carries a stanza-id stamped by by.
func hasStanzaIDBy(e element, by string) bool {
	for _, c := range e.children() {
		if c.start.Name == (xml.Name{Space: stanza.NSSid, Local: "stanza-id"}) && c.attr("by") == by {
			return true
		}
	}
	return false
}

// smFeature is the XEP-0198 stream feature, offered with resource binding.
// Its negotiation is resumption: <resume previd h/> in place of binding.
// <enable/> comes after binding and is handled by the read loop. On a
// refused resumption the client gets <failed/> and may bind on the same
// stream (XEP-0198 § 5).
func (n *negotiation) smFeature() xmpp.StreamFeature {
	bind := xmpp.BindCustom(n.bind)
	return xmpp.StreamFeature{
		Name:       xml.Name{Space: nsSM, Local: "sm"},
		Necessary:  xmpp.Secure | xmpp.Authn,
		Prohibited: xmpp.Ready,
		List: func(_ context.Context, w xmlstream.TokenWriter, start xml.StartElement) (bool, error) {
			if err := w.EncodeToken(start); err != nil {
				return false, err
			}
			// Reported as required (not written): mellium's negotiator ends
			// the feature round after a required feature, so a resumption
			// completes the negotiation.
			return true, w.EncodeToken(start.End())
		},
		Negotiate: func(ctx context.Context, xs *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			r := xs.TokenReader()
			tok, err := r.Token()
			if err != nil {
				r.Close()
				return 0, nil, err
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				r.Close()
				return 0, nil, stream.BadFormat
			}
			e, err := readElement(r, start)
			r.Close()
			if err != nil {
				return 0, nil, err
			}
			answer := smFailed("unexpected-request") // <enable/> before binding
			if e.start.Name.Local == "resume" {
				answer = smFailed("item-not-found")
				if ok, err := n.resume(xs, e); err != nil {
					return 0, nil, err
				} else if ok {
					return xmpp.Ready, nil, nil
				}
			}
			if err := writeElement(xs, answer); err != nil {
				return 0, nil, err
			}
			return bind.Negotiate(ctx, xs, nil)
		},
	}
}

// resume resumes the session named by <resume previd h/> on this
// connection and writes <resumed/>; false (no error) when refused.
func (n *negotiation) resume(xs *xmpp.Session, e element) (bool, error) {
	srv, s := n.srv, n.s
	h, err := strconv.ParseUint(e.attr("h"), 10, 32)
	if err != nil || n.user == "" {
		return false, nil
	}
	ent, err := srv.sm.take(e.attr("previd"), n.user, s)
	if err != nil {
		return false, nil
	}
	acked := uint32(h) - ent.base
	if acked > uint32(ent.unacked) {
		srv.sm.drop(ent) // the client claims more than it was sent
		return false, nil
	}
	s.jid = ent.jid
	if !srv.sessions.reserve(s, ent.jid) {
		srv.sm.drop(ent)
		return false, nil
	}
	if _, err := srv.manager.Get(srv.ctx, n.user); err != nil { // deleted meanwhile
		srv.sessions.remove(s)
		srv.sm.drop(ent)
		return false, nil
	}
	n.bound = true
	s.carbons.Store(ent.carbons)
	m := &s.sm
	m.mu.Lock()
	m.enabled, m.counting, m.id, m.timeout, m.limit = true, true, ent.id, ent.timeout, srv.cfg.QueueSize
	m.in, m.out = ent.in, uint32(h)
	m.resend = ent.held[acked:]
	m.restore = ent.presence
	m.mu.Unlock()
	srv.sm.mu.Lock()
	ent.held = nil
	srv.sm.mu.Unlock()
	err = writeElement(xs, smElement("resumed", "previd", ent.id, "h", strconv.FormatUint(uint64(ent.in), 10)))
	return err == nil, err
}

// smResumed broadcasts a resumed session's presence again (the old
// connection's end announced it unavailable); called once the writer runs.
func (srv *Server) smResumed(s *session) {
	s.sm.mu.Lock()
	p := s.sm.restore
	s.sm.restore = element{}
	s.sm.mu.Unlock()
	if p.start.Name.Local != "" {
		srv.broadcastPresence(s, p, true)
	}
}

// writeElement writes e on a session that has no writer yet (negotiation).
func writeElement(xs *xmpp.Session, e element) error {
	w := xs.TokenWriter()
	defer w.Close()
	if _, err := xmlstream.Copy(w, e.TokenReader()); err != nil {
		return err
	}
	return w.Flush()
}
