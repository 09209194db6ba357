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
		}
		return nil
	case to.Domainpart() == conferenceHost(srv.cfg.Domain) && to.Localpart() != "":
		return srv.muc.handlePresence(s, t, e, to)
	case srv.isLocalUser(to):
		switch typ {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			// Subscription requests travel from the bare JID (RFC 6121 § 3).
			// Subscriptions are not tracked: a roster item is "both".
			e = e.withAttr("from", s.jid.Bare().String())
			for _, r := range srv.sessions.lookup(to.Bare()) {
				r.send(e)
			}
		case "", "unavailable":
			for _, r := range srv.sessions.lookup(to) {
				r.send(e)
			}
		}
		// probe and error: nothing to do.
	}
	return nil
}

// broadcastPresence sends the client's presence to its own sessions and to
// the sessions of its roster contacts; on the initial presence the client
// also gets the current presence of its online contacts who have the client
// in their roster.
func (srv *Server) broadcastPresence(s *session, e element, available bool) {
	if available {
		e = srv.withPhotoHash(s.jid, e) // XEP-0153
	}
	initial := s.setPresence(e, available)
	if initial {
		defer srv.offline.deliver(s) // XEP-0160, after the presence went out
	}
	for _, r := range srv.sessions.lookup(s.jid.Bare()) {
		r.send(e.withAttr("to", r.jid.String()))
	}
	items, err := srv.store.roster(s.jid.Localpart())
	if err != nil {
		return
	}
	for _, it := range items {
		c, err := jid.Parse(it.JID)
		if err != nil || !srv.isLocalUser(c) {
			continue
		}
		// A contact's own presence comes back only if the contact has the
		// user in its roster too: adding someone shares one's own
		// presence, never theirs.
		mutual := initial && srv.store.inRoster(c.Localpart(), s.jid)
		for _, r := range srv.sessions.lookup(c) {
			r.send(e.withAttr("to", r.jid.String()))
			if mutual {
				if p, ok := r.currentPresence(); ok {
					s.send(p.withAttr("to", s.jid.String()))
				}
			}
		}
	}
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
}
