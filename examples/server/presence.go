package main

import (
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// handlePresence handles broadcast presence (no to), presence to rooms and
// directed or subscription presence to local users.
func (s *session) handlePresence(t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	srv := s.srv
	typ := e.attr("type")
	switch {
	case to.Equal(jid.JID{}):
		switch typ {
		case "", "unavailable":
			srv.broadcastPresence(s, e, typ == "")
			srv.pep.presence(s, e, typ == "") // caps for PEP, pep.go
		}
		return nil
	case to.Domainpart() == conferenceHost(srv.cfg.Domain) && to.Localpart() != "":
		return srv.muc.handlePresence(s, t, e, to)
	case srv.isRemote(to) && to.Localpart() != "":
		switch typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			return s.handleSubscription(t, e, to, typ) // local side, then sent on
		case "", "unavailable":
			s.noteDirected(to, typ)
			srv.sendRemote(e, to)
		}
	case srv.isLocalUser(to):
		switch typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			return s.handleSubscription(t, e, to, typ) // subscription.go
		case "", "unavailable":
			s.noteDirected(to, typ) // unavailable follows when s goes offline
			for _, r := range srv.sessions.lookup(to) {
				r.send(e)
			}
		}
		// probe and error: nothing to do.
	}
	return nil
}

// broadcastPresence records the client's broadcast presence and shares it
// as the subscriptions allow (sharePresence, subscription.go).
func (srv *Server) broadcastPresence(s *session, e element, available bool) {
	if available {
		e = srv.withPhotoHash(s.jid, e) // XEP-0153
	}
	initial := s.setPresence(e, available)
	if initial {
		defer srv.offline.deliver(s) // XEP-0160, after the presence went out
	}
	srv.sharePresence(s, e, available, initial)
	if !available {
		srv.muc.leaveAll(s)
	}
}

// sessionEnded broadcasts unavailable for a session that was available and
// takes it out of every room.
func (srv *Server) sessionEnded(s *session) {
	if _, ok := s.currentPresence(); ok {
		e := element{start: presenceStart(s.jid, jid.JID{}, "unavailable")}
		srv.broadcastPresence(s, e, false)
	}
	srv.muc.leaveAll(s)
	srv.pep.sessionEnded(s)
}
