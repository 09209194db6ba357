package main

import (
	"context"
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"
)

// Routing between local sessions and remote domains. Outbound stanzas carry
// the sender's bound JID (set by session.handle) and go to the remote
// domain's queue; inbound ones were checked by s2sService.inbound (from in
// the authenticated domain, to ours) and are routed here like local ones.

// sendRemote queues e (from a local JID) for the remote JID to.
func (srv *Server) sendRemote(e element, to jid.JID) {
	srv.s2s.send(e.withAttr("to", to.String()), to)
}

// replyRemote answers the stanza e from a remote JID with the stanza error
// se, sent back over federation (never for an error stanza).
func (srv *Server) replyRemote(e element, se stanza.Error) {
	if e.attr("type") == "error" {
		return
	}
	to, err := jid.Parse(e.attr("from"))
	if err != nil || !srv.isRemote(to) {
		return
	}
	out := e.withAttr("from", e.attr("to")).withAttr("to", to.String()).withAttr("type", "error")
	inner := errorTokens(se)
	if e.start.Name.Local != "iq" {
		inner = append(e.inner[:len(e.inner):len(e.inner)], inner...)
	}
	srv.s2s.send(out.withInner(inner), to)
}

// routeFromRemote routes a checked inbound stanza (jabber:client) from the
// remote JID from to the local address to.
func (srv *Server) routeFromRemote(e element, from, to jid.JID) {
	if to.Domainpart() == conferenceHost(srv.cfg.Domain) && to.Localpart() != "" && e.start.Name.Local != "iq" {
		srv.roomFromRemote(e, from, to) // s2s_muc.go
		return
	}
	switch e.start.Name.Local {
	case "message":
		srv.messageFromRemote(e, from, to)
	case "presence":
		srv.presenceFromRemote(e, from, to)
	case "iq":
		srv.iqFromRemote(e, from, to)
	}
}

// messageFromRemote delivers a remote user's message to a local user:
// archived per the local user's preferences (the remote side is archived
// by its own server), then queued to the user's sessions, kept offline
// (-offline-messages) or bounced with service-unavailable.
func (srv *Server) messageFromRemote(e element, from, to jid.JID) {
	typ := e.attr("type")
	if !srv.isLocalUser(to) || srv.blockedEitherWay(to, from) {
		if typ != "error" && typ != "groupchat" && typ != "headline" {
			srv.replyRemote(e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
		return
	}
	ctx := context.Background()
	out, stored := e, false
	if typ != "error" {
		out, stored, _ = archiveChatIDs(ctx, srv.archiver, from, to, e)
	}
	targets := srv.sessions.lookup(to)
	if len(targets) == 0 && to.Resourcepart() != "" && (typ == "" || typ == "chat" || typ == "normal") {
		targets = srv.sessions.lookup(to.Bare())
	}
	if len(targets) == 0 {
		kept := typ != "error" && srv.offline.keep(ctx, to, out)
		if !kept && !stored && typ != "error" && typ != "groupchat" && typ != "headline" {
			srv.replyRemote(e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
		return
	}
	for _, r := range targets {
		r.sendPaced(out) // slows the peer's stream to the reader's pace
	}
}

// presenceFromRemote handles a remote contact's presence to a local user:
// subscriptions (RFC 6121 § 3, the local user's side), probes answered
// when the user shares presence with the contact, and available or
// unavailable presence delivered to the user's available resources.
func (srv *Server) presenceFromRemote(e element, from, to jid.JID) {
	if !srv.isLocalUser(to) || srv.blockedEitherWay(to, from) {
		return
	}
	typ := e.attr("type")
	u, c := to.Bare(), from.Bare()
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		if !srv.accountExists(u) {
			return // as for local requests: nothing tells which names exist
		}
		e = e.withAttr("from", c.String()).withAttr("to", u.String())
		err := srv.subUpdate(func(x *subTx) error {
			switch typ {
			case "subscribe":
				return x.inSubscribe(u, c, e)
			case "subscribed":
				return x.inSubscribed(u, c)
			case "unsubscribe":
				return x.inUnsubscribe(u, c, e)
			}
			return x.inUnsubscribed(u, c, e)
		})
		if err != nil {
			srv.log.Error("remote presence subscription", "err", err)
		}
	case "probe":
		if srv.sharesPresenceWith(u, c) {
			srv.sendPresenceRemote(u, from)
		}
	case "", "unavailable", "error":
		if to.Resourcepart() != "" {
			for _, r := range srv.sessions.lookup(to) {
				r.send(e)
			}
			return
		}
		if typ != "error" {
			srv.deliverAvailable(u, e)
		}
	}
}

// inSubscribe: the remote c asks to see the local u's presence, at u (RFC
// 6121 § 3.1.3): answered at once when u already shares presence with c
// or pre-approved c, else kept pending and delivered to u's available
// resources.
func (x *subTx) inSubscribe(u, c jid.JID, e element) error {
	ui, ok := x.item(u.Localpart(), c.String())
	approve := func() {
		x.after = append(x.after, func() {
			x.srv.sendRemote(element{start: presenceStart(u, c, "subscribed")}, c)
			x.srv.sendPresenceRemote(u, c)
		})
	}
	switch {
	case ok && ui.hasFrom():
		approve()
		return nil
	case ok && ui.Approved:
		ui.Approved = false
		ui.setSub(ui.hasTo(), true)
		if err := x.put(u.Localpart(), ui); err != nil {
			return err
		}
		approve()
		return nil
	}
	if err := x.addPending(u, c); err != nil {
		return err
	}
	x.after = append(x.after, func() { x.srv.deliverAvailable(u, e) })
	return nil
}

// sendPresenceRemote sends the current presence of each available resource
// of the local user u to the remote JID to.
func (srv *Server) sendPresenceRemote(u, to jid.JID) {
	for _, r := range srv.availableSessions(u) {
		if p, ok := r.currentPresence(); ok {
			srv.sendRemote(p.withAttr("from", r.jid.String()), to)
		}
	}
}

// iqFromRemote relays a remote IQ: a get or set to a connected local full
// JID goes to that session (its answer is let out once, iqAnswerRemote);
// a result or error goes to the local requester only when it answers an
// IQ that requester sent to that remote JID. A ping of our domain or a
// service of it is answered (XEP-0199 § 4.3: remote servers and their
// users ping servers, Prosody's among them). Anything else gets
// service-unavailable.
func (srv *Server) iqFromRemote(e element, from, to jid.JID) {
	f := srv.s2s
	typ := e.attr("type")
	id := e.attr("id")
	if typ == "get" && to.Localpart() == "" && to.Resourcepart() == "" && isPingIQ(e) {
		srv.s2s.send(element{start: xml.StartElement{Name: e.start.Name, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "result"},
			{Name: xml.Name{Local: "id"}, Value: id},
			{Name: xml.Name{Local: "from"}, Value: to.String()},
			{Name: xml.Name{Local: "to"}, Value: from.String()},
		}}}, from)
		return
	}
	switch typ {
	case "result", "error":
		if f.takeIQ(f.iqs, s2sIQKey{local: to.String(), remote: from.String(), id: id}) {
			for _, r := range srv.sessions.lookup(to) {
				r.send(e)
			}
		}
		return
	case "get", "set":
		if srv.answerRemoteDisco(e, to) {
			return
		}
		if srv.isLocalUser(to) && to.Resourcepart() != "" && !srv.blockedEitherWay(to, from) {
			if targets := srv.sessions.lookup(to); len(targets) > 0 &&
				f.noteIQ(f.relays, s2sIQKey{local: to.String(), remote: from.String(), id: id}) {
				targets[0].send(e)
				return
			}
		}
		srv.replyRemote(e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
}

// answerRemoteDisco answers a remote JID's disco#info or disco#items query
// to our domain or our MUC service as local users get it (XEP-0030): the
// server's identity, features and service subdomains, the service's
// public rooms; what anyone may learn from outside. false when e is no
// such query, and iqFromRemote goes on.
func (srv *Server) answerRemoteDisco(e element, to jid.JID) bool {
	payload, ok := e.payload()
	if !ok || payload.Name.Space != disco.NSInfo && payload.Name.Space != disco.NSItems {
		return false
	}
	var info discoInfo
	switch to.String() {
	case srv.cfg.Domain:
		info = srv.serverInfo()
	case conferenceHost(srv.cfg.Domain):
		info = srv.muc.serviceInfo()
	default:
		return false
	}
	iq, err := stanza.NewIQ(e.start)
	if err != nil {
		return false
	}
	toks, err := xmlstream.ReadAll(discoAnswer(iq, payload, info))
	if err != nil || len(toks) < 2 {
		return false
	}
	start, ok := toks[0].(xml.StartElement)
	if !ok {
		return false
	}
	start.Name.Space = stanza.NSClient
	out := element{start: start, inner: toks[1 : len(toks)-1]}
	srv.s2s.send(out, iq.From)
	return true
}

// isPingIQ reports whether the IQ e carries one XEP-0199 ping and
// nothing else.
func isPingIQ(e element) bool {
	c := e.children()
	return len(c) == 1 && c[0].start.Name == xml.Name{Space: ping.NS, Local: "ping"}
}

// iqToRemote sends the IQ get or set e of s to the remote JID to and
// notes it, so that the answer is let in.
func (s *session) iqToRemote(t replyMarker, e element, to jid.JID) bool {
	f := s.srv.s2s
	if !f.noteIQ(f.iqs, s2sIQKey{local: s.jid.String(), remote: to.String(), id: e.attr("id")}) {
		return false
	}
	t.markAnswered()
	s.srv.sendRemote(e, to)
	return true
}

// iqAnswerRemote lets the answer e of s out to the remote requester to,
// when it answers an IQ relayed to s from there.
func (s *session) iqAnswerRemote(e element, to jid.JID) {
	f := s.srv.s2s
	if f.takeIQ(f.relays, s2sIQKey{local: s.jid.String(), remote: to.String(), id: e.attr("id")}) {
		s.srv.sendRemote(e, to)
	}
}

// replyMarker is what a handler tells that an IQ is answered elsewhere.
type replyMarker interface{ markAnswered() }

func (rw *replyWriter) markAnswered() { rw.answered = true }

// noMarker is a replyMarker for writers that are no replyWriter.
type noMarker struct{}

func (noMarker) markAnswered() {}

// messageToRemote sends a local user's message to a remote JID: archived
// per the sender's preferences (the recipient's server keeps its own),
// carbon-copied to the sender's other resources, and queued for the
// remote domain.
func (srv *Server) messageToRemote(s *session, e element, to jid.JID) error {
	out, senderID := e, ""
	if e.attr("type") != "error" {
		out, _, senderID = archiveChatIDs(context.Background(), srv.archiver, s.jid, to, e)
	}
	srv.sendCarbons(s, to, out, senderID, nil) // XEP-0280, carbons.go
	srv.sendRemote(out, to)
	return nil
}
