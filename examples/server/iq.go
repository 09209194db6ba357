package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
)

// handleIQ answers an IQ by its addressee: the account (no to, or the
// user's own bare JID), the server, the upload service, the MUC service or
// a room. An IQ get or set to a local user's full JID is relayed to that
// session and its answer routed back (relayIQ, relayAnswer); one to
// another user's bare JID is answered by the server on the user's behalf.
func (s *session) handleIQ(t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	srv := s.srv
	typ := e.attr("type")
	if typ == "result" || typ == "error" {
		// Answers to relayed IQs go on; answers to our roster pushes and
		// pings, and anything else, end here.
		switch {
		case s.srv.isRemote(to):
			s.iqAnswerRemote(e, to) // federation, s2s_route.go
		case !s.srv.pep.iqs.answer(s, e): // the server's own IQs (serveriq.go)
			s.relayAnswer(e, to)
		}
		return nil
	}
	if typ != "get" && typ != "set" {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	payload, ok := e.payload()
	if !ok {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	iq, err := stanza.NewIQ(e.start)
	if err != nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	domain := srv.cfg.Domain
	isDisco := payload.Name.Space == disco.NSInfo || payload.Name.Space == disco.NSItems
	rw := readWriter{TokenReader: e.innerReader(), Encoder: t}
	start := e.start.Copy()

	switch {
	case payload.Name.Space == carbons.NS && (to.Equal(jid.JID{}) || to.Equal(s.jid.Bare()) || to.String() == domain):
		return s.handleCarbonsIQ(t, iq, payload)
	case isPubSub(payload) && (to.Equal(jid.JID{}) || srv.isLocalUser(to) && to.Resourcepart() == ""):
		return srv.pep.handleIQ(s, t, e, iq, payload, to) // PEP, pep.go
	case to.Equal(jid.JID{}) || to.Equal(s.jid.Bare()):
		if isDisco {
			return s.answerDisco(t, iq, payload, srv.accountInfo(s.jid.Bare()))
		}
		return srv.userMux.HandleXMPP(rw, &start)
	case to.String() == domain:
		if isDisco {
			return s.answerDisco(t, iq, payload, srv.serverInfo())
		}
		return srv.userMux.HandleXMPP(rw, &start)
	case to.String() == uploadHost(domain):
		if payload.Name.Space == disco.NSItems {
			return s.answerDisco(t, iq, payload, discoInfo{})
		}
		if srv.uploadMux != nil { // slots and disco#info
			return srv.uploadMux.HandleXMPP(rw, &start)
		}
	case to.String() == conferenceHost(domain):
		if isDisco {
			return s.answerDisco(t, iq, payload, srv.muc.serviceInfo())
		}
	case to.Domainpart() == conferenceHost(domain) && to.Resourcepart() == "":
		return srv.muc.handleIQ(s, t, e, iq, payload, to)
	case to.Domainpart() == conferenceHost(domain):
		return srv.muc.relayIQ(s, t, e, to) // to an occupant, muc_iq.go
	case srv.isLocalUser(to) && to.Resourcepart() != "":
		return s.relayIQ(t, e, to)
	case srv.isRemote(to):
		var m replyMarker = noMarker{}
		if rw, ok := t.(*replyWriter); ok {
			m = rw
		}
		if !s.iqToRemote(m, e, to) {
			return s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint})
		}
		return nil
	case srv.isLocalUser(to) && to.Resourcepart() == "" && (payload.Name.Space == nsVCard || payload.Name.Space == nsPrivate):
		// Another user's vCard (readable), private XML (forbidden).
		return srv.userMux.HandleXMPP(rw, &start)
	case srv.isLocalUser(to) && to.Resourcepart() == "" && payload.Name.Space == mam.NS:
		// Another user's archive: the mam handler answers forbidden.
		return srv.userMux.HandleXMPP(rw, &start)
	}
	return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
}

// ---- roster (RFC 6121 § 2, minimal) ----

type xRosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr,omitempty"`
	Subscription string   `xml:"subscription,attr,omitempty"`
	Groups       []string `xml:"group"`
	Ask          bool     `xml:"-"` // ask="subscribe" (pending out)
	Approved     bool     `xml:"-"` // approved="true" (pre-approved)
}

// xRoster is a roster set's query (the mux routed it by name).
type xRoster struct {
	Items []xRosterItem `xml:"item"`
}

// handleRoster answers roster get and set. A roster get makes the session
// an interested resource (it gets roster pushes). A set changes the name
// and groups only; subscription states change through presence
// (subscription.go), and a removal cancels the subscription both ways.
//
// A roster set is refused when it would add an item beyond
// Config.MaxRosterItems (resource-constraint, type cancel: see
// rosterSetError) or when the item's name or groups are out of bounds
// (not-acceptable, RFC 6121 § 2.3.3); changing an existing item works at
// the limit.
func (srv *Server) handleRoster(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	user := iq.From.Localpart()
	reply := func(se stanza.Error) error {
		_, err := xmlstream.Copy(t, iq.Error(se))
		return err
	}
	if iq.Type == stanza.GetIQ {
		items, err := srv.store.roster(user)
		if err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		for _, r := range srv.sessions.lookup(iq.From) {
			r.rosterInterested.Store(true)
		}
		out := make([]xRosterItem, 0, len(items))
		for _, it := range items {
			out = append(out, it.xItem())
		}
		_, err = xmlstream.Copy(t, iq.Result(rosterQuery(out)))
		return err
	}
	var q xRoster
	if err := decodePayload(t, start, &q); err != nil || len(q.Items) != 1 {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	it := q.Items[0]
	contact, err := jid.Parse(strings.TrimSpace(it.JID))
	if err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
	}
	contact = contact.Bare()
	if contact.Equal(iq.From.Bare()) {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable})
	}
	push := xRosterItem{JID: contact.String(), Subscription: "remove"}
	if it.Subscription == "remove" {
		err = srv.removeContact(iq.From, contact) // subscription.go
	} else {
		err = srv.store.setRosterItem(user, rosterItem{JID: contact.String(), Name: it.Name, Groups: it.Groups}, srv.cfg.rosterLimit())
		if stored, ok := srv.store.rosterItem(user, contact.String()); err == nil && ok {
			push = stored.xItem()
		}
	}
	if err != nil {
		return reply(rosterSetError(err, srv.cfg.rosterLimit()))
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	srv.pushRoster(iq.From, push) // to the user's interested resources
	return nil
}

// rosterSetError is the stanza error for a refused roster set.
//
// A full roster is resource-constraint (RFC 6120 § 8.3.3.18: the server
// "lacks the system resources necessary to service the request"; RFC 6121
// § 2.3.3 names no condition for it) with type cancel rather than the
// suggested wait: the limit is a quota, waiting does not lift it, and a
// client that retries on wait would retry for ever. The text tells the user
// what to do.
func rosterSetError(err error, limit int) stanza.Error {
	text := func(s string) map[string]string { return map[string]string{"en": s} }
	switch {
	case errors.Is(err, errRosterFull):
		return stanza.Error{Type: stanza.Cancel, Condition: stanza.ResourceConstraint,
			Text: text(fmt.Sprintf("the roster holds its maximum of %d contacts: remove one first", limit))}
	case errors.Is(err, errDuplicateGroup):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: text(err.Error())}
	case errors.Is(err, errRosterItem):
		return stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: text(err.Error())}
	}
	return stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
}

// rosterQuery returns <query xmlns='jabber:iq:roster'> holding items. The
// tokens are built directly, not through marshalReader, whose parse step
// caps an element at maxStanzaBytes (256 KiB): the largest allowed roster
// is bigger (up to about 3.3 MB of data), and that cap made every roster
// get of a big roster answer internal-server-error.
func rosterQuery(items []xRosterItem) xml.TokenReader {
	attr := func(name, value string) xml.Attr { return xml.Attr{Name: xml.Name{Local: name}, Value: value} }
	q := xml.StartElement{Name: xml.Name{Space: roster.NS, Local: "query"}}
	toks := make([]xml.Token, 0, 2+4*len(items))
	toks = append(toks, q)
	for _, it := range items {
		item := xml.StartElement{Name: xml.Name{Space: roster.NS, Local: "item"}, Attr: []xml.Attr{attr("jid", it.JID)}}
		if it.Name != "" {
			item.Attr = append(item.Attr, attr("name", it.Name))
		}
		if it.Subscription != "" {
			item.Attr = append(item.Attr, attr("subscription", it.Subscription))
		}
		if it.Ask {
			item.Attr = append(item.Attr, attr("ask", "subscribe"))
		}
		if it.Approved {
			item.Attr = append(item.Attr, attr("approved", "true"))
		}
		toks = append(toks, item)
		for _, g := range it.Groups {
			group := xml.StartElement{Name: xml.Name{Space: roster.NS, Local: "group"}}
			toks = append(toks, group, xml.CharData(g), group.End())
		}
		toks = append(toks, item.End())
	}
	toks = append(toks, q.End())
	return &sliceReader{toks: toks}
}

// ---- IQ routing between local users (RFC 6121 § 8.5.3.1) ----

// maxRelayedIQs bounds the relayed IQs one session may have waiting for
// an answer; one more is refused with resource-constraint.
const maxRelayedIQs = 32

// relayTimeout is how long a relayed IQ waits for its answer; then the
// requester gets service-unavailable and a late answer is dropped.
const relayTimeout = 60 * time.Second

// relayKey names one relayed IQ at its target: the requester's full JID
// (or, for an IQ between room occupants, the requester's occupant JID) and
// the IQ's id. The target's answer must carry both (to and id).
type relayKey struct{ requester, id string }

// relayEntry is one relayed IQ waiting for the target's answer.
type relayEntry struct {
	requester *session
	addressed jid.JID // what the requester wrote to, if not the target's JID: the source of errors
	timer     *time.Timer
}

// relayTable holds the IQs relayed to one session that it has not yet
// answered. Only an answer from that session, to the requester, with the
// request's id is passed on: any other result or error is dropped, so no
// client can inject answers to another's requests.
type relayTable struct {
	mu      sync.Mutex
	closed  bool // the session ended: nothing more is relayed to it
	pending map[relayKey]relayEntry
	timeout time.Duration
}

// Errors of relayTable.add.
var (
	errRelayClosed  = errors.New("relay target gone")
	errRelayFull    = errors.New("too many relayed IQs pending")
	errRelayPending = errors.New("an IQ with this id is already pending")
)

// add registers an IQ from requester with id relayed to target; onTimeout
// runs when no answer came within the table's timeout.
func (rt *relayTable) add(requester *session, id string, onTimeout func()) error {
	return rt.addAs(requester, requester.jid, jid.JID{}, id, onTimeout)
}

// addAs is add for a requester known to the target as as (its occupant
// JID in a room) that addressed the target as addressed (the target's
// occupant JID): the answer must be to as, and errors come from addressed.
func (rt *relayTable) addAs(requester *session, as, addressed jid.JID, id string, onTimeout func()) error {
	if requester.relayedOut.Add(1) > maxRelayedIQs {
		requester.relayedOut.Add(-1)
		return errRelayFull
	}
	key := relayKey{requester: as.String(), id: id}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	err := error(nil)
	switch _, dup := rt.pending[key]; {
	case rt.closed:
		err = errRelayClosed
	case dup:
		err = errRelayPending
	}
	if err != nil {
		requester.relayedOut.Add(-1)
		return err
	}
	if rt.pending == nil {
		rt.pending = make(map[relayKey]relayEntry)
	}
	timeout := rt.timeout
	if timeout <= 0 {
		timeout = relayTimeout
	}
	rt.pending[key] = relayEntry{requester: requester, addressed: addressed, timer: time.AfterFunc(timeout, func() {
		if _, ok := rt.take(key); ok {
			onTimeout()
		}
	})}
	return nil
}

// take removes and returns the requester of the pending IQ key.
func (rt *relayTable) take(key relayKey) (*session, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	en, ok := rt.pending[key]
	if !ok {
		return nil, false
	}
	delete(rt.pending, key)
	en.timer.Stop()
	en.requester.relayedOut.Add(-1)
	return en.requester, true
}

// close refuses further relays and returns what was pending.
func (rt *relayTable) close() map[relayKey]relayEntry {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.closed = true
	out := make(map[relayKey]relayEntry, len(rt.pending))
	for k, en := range rt.pending {
		en.timer.Stop()
		en.requester.relayedOut.Add(-1)
		out[k] = en
	}
	rt.pending = nil
	return out
}

// relayIQ passes the IQ get or set e from s to the connected full JID to,
// or answers it service-unavailable when that resource is not connected
// (RFC 6121 § 8.5.3.1), resource-constraint when s has maxRelayedIQs
// waiting. The target's answer is routed back by relayAnswer.
func (s *session) relayIQ(t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	targets := s.srv.sessions.lookup(to)
	if len(targets) == 0 {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	target := targets[0]
	id := e.attr("id")
	err := target.relay.add(s, id, func() {
		s.send(relayError(target.jid, s.jid, id, stanza.ServiceUnavailable))
	})
	if refused, err := s.refuseRelay(t, e, err, "other users"); refused {
		return err
	}
	if !target.send(e) {
		if _, ok := target.relay.take(relayKey{requester: s.jid.String(), id: id}); ok {
			return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
	}
	return nil
}

// refuseRelay answers e when its IQ could not be relayed (err from
// relayTable.add or addAs; nil: relayed, nothing to answer) and marks a
// relayed one as answered by its target, not by dispatch's fallback.
// whom names the targets in the resource-constraint text.
func (s *session) refuseRelay(t xmlstream.TokenReadEncoder, e element, err error, whom string) (refused bool, _ error) {
	switch {
	case errors.Is(err, errRelayFull):
		return true, s.replyError(t, e, stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint,
			Text: map[string]string{"en": fmt.Sprintf("at most %d IQs to %s may wait for an answer", maxRelayedIQs, whom)}})
	case errors.Is(err, errRelayPending):
		return true, s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest,
			Text: map[string]string{"en": "an IQ with this id to this address is still waiting for its answer"}})
	case err != nil:
		return true, s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	if rw, ok := t.(*replyWriter); ok {
		rw.answered = true // the target answers
	}
	return false, nil
}

// relayAnswer passes the IQ result or error e from s to the requester
// whose relayed IQ it answers; an answer that matches no pending request
// to s is dropped.
func (s *session) relayAnswer(e element, to jid.JID) {
	if to.Resourcepart() != "" && to.Domainpart() == conferenceHost(s.srv.cfg.Domain) {
		s.srv.muc.relayAnswer(s, e, to) // between room occupants (muc_iq.go)
		return
	}
	if to.Resourcepart() == "" || !s.srv.isLocalUser(to) {
		return
	}
	if requester, ok := s.relay.take(relayKey{requester: to.String(), id: e.attr("id")}); ok {
		requester.send(e)
	}
}

// failRelayed answers every IQ still relayed to s, whose session ended,
// with service-unavailable: the same answer a requester gets for an IQ
// to a resource that is not connected (RFC 6121 § 8.5.3.1), so the error
// tells no more than a moment later; recipient-unavailable would, and RFC
// 6120 § 8.3.3.13 keeps it from those not allowed to know the recipient's
// availability.
func (s *session) failRelayed() {
	for k, en := range s.relay.close() {
		from := s.jid
		if !en.addressed.Equal(jid.JID{}) {
			from = en.addressed // an occupant: its real JID stays hidden
		}
		en.requester.send(relayError(from, en.requester.jid, k.id, stanza.ServiceUnavailable))
	}
}

// relayError is an IQ error from the relay target from to the requester to.
func relayError(from, to jid.JID, id string, cond stanza.Condition) element {
	start := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "iq"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
		{Name: xml.Name{Local: "id"}, Value: id},
		{Name: xml.Name{Local: "from"}, Value: from.String()},
		{Name: xml.Name{Local: "to"}, Value: to.String()},
	}}
	toks, err := xmlstream.ReadAll(stanza.Error{Type: stanza.Cancel, Condition: cond}.TokenReader())
	if err != nil {
		return element{start: start}
	}
	return element{start: start, inner: toks}
}
