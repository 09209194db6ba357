package main

import (
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// IQs between room occupants (XEP-0045 § 7.2: "IQ requests" to an occupant
// JID, as clients send for a participant's disco#info, caps, version or
// ping). An occupant's IQ get or set to room@service/nick goes to that
// occupant's session, from the sender's occupant JID; the answer goes back
// from the target's occupant JID. Neither side learns the other's real
// JID, so semi-anonymous rooms stay so. Only occupants may send them
// (not-acceptable otherwise, as for messages); a nick not in the room is
// item-not-found. The relay table of iq.go tracks them: the same bounds,
// timeout and "only the addressed session's answer, with the request's id,
// to the requester" rule as IQs between users.

// relayIQ passes an IQ get or set from s to the occupant to.
func (m *mucService) relayIQ(s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	m.mu.Lock()
	r := m.rooms[to.Localpart()]
	if r == nil || r.locked && !s.jid.Bare().Equal(r.owner) {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	nick, joined := r.nickOf(s)
	if !joined {
		m.mu.Unlock()
		return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
			Text: map[string]string{"en": "only occupants send IQs to occupants"}})
	}
	target := r.occupants[to.Resourcepart()]
	from := r.occupantJID(nick)
	m.mu.Unlock()
	if target == nil {
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
	}
	id := e.attr("id")
	err := target.relay.addAs(s, from, to, id, func() {
		s.send(relayError(to, s.jid, id, stanza.ServiceUnavailable))
	})
	if refused, err := s.refuseRelay(t, e, err, "others"); refused {
		return err
	}
	if !target.send(e.withAttr("from", from.String()).withAttr("to", target.jid.String())) {
		if _, ok := target.relay.take(relayKey{requester: from.String(), id: id}); ok {
			return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
	}
	return nil
}

// relayAnswer passes occupant s's IQ result or error e, addressed to the
// occupant JID to, to the requester, from s's occupant JID; an answer that
// matches no request relayed to s is dropped.
func (m *mucService) relayAnswer(s *session, e element, to jid.JID) {
	requester, ok := s.relay.take(relayKey{requester: to.String(), id: e.attr("id")})
	if !ok {
		return
	}
	m.mu.Lock()
	var from jid.JID
	nick, joined := m.rooms[to.Localpart()].nickOf(s)
	if joined {
		from = m.rooms[to.Localpart()].occupantJID(nick)
	}
	m.mu.Unlock()
	if !joined { // left the room meanwhile: its answer would show its real JID
		requester.send(relayError(to.Bare(), requester.jid, e.attr("id"), stanza.ServiceUnavailable))
		return
	}
	requester.send(e.withAttr("from", from.String()).withAttr("to", requester.jid.String()))
}
