package main

import (
	"context"
	"encoding/xml"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// handle processes one stanza from the client. Answers to the client's own
// IQs (and bounces) are written to t; everything for other sessions is
// queued. It returns an error only to end the session.
func (s *session) handle(t xmlstream.TokenReadEncoder, e element) error {
	if e.start.Name.Space != stanza.NSClient {
		return stream.UnsupportedStanzaType
	}
	// Never trust a client-supplied from: every stanza leaves with the
	// session's bound JID.
	e = e.withAttr("from", s.jid.String())
	var to jid.JID
	if v := e.attr("to"); v != "" {
		j, err := jid.Parse(v)
		if err != nil {
			return s.replyError(t, e, stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
		}
		to = j
	}
	if done, err := s.blockedStanza(t, e, to); done { // XEP-0191, blocking.go
		return err
	}
	switch e.start.Name.Local {
	case "message":
		return s.handleMessage(t, e, to)
	case "presence":
		return s.handlePresence(t, e, to)
	case "iq":
		return s.handleIQ(t, e, to)
	}
	return stream.UnsupportedStanzaType
}

// replyError answers the stanza e of this session's client with a stanza
// error, written to t (never for an error stanza).
func (s *session) replyError(t xmlstream.TokenReadEncoder, e element, se stanza.Error) error {
	if e.attr("type") == "error" {
		return nil
	}
	s.srv.failures.stanzaRefused(e.start.Name.Local, se.Condition)
	from := e.attr("to")
	if from == "" {
		from = s.srv.cfg.Domain
	}
	start := xml.StartElement{Name: e.start.Name, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
		{Name: xml.Name{Local: "from"}, Value: from},
		{Name: xml.Name{Local: "to"}, Value: s.jid.String()},
	}}
	if id := e.attr("id"); id != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: id})
	}
	_, err := xmlstream.Copy(t, xmlstream.Wrap(se.TokenReader(), start))
	return err
}

// isLocalUser reports whether j is a user of this server.
func (srv *Server) isLocalUser(j jid.JID) bool {
	return j.Localpart() != "" && j.Domainpart() == srv.cfg.Domain
}

// handleMessage routes a message: to a room, or to a local user. A message
// to a local user goes through the session's archive pipeline
// (archivepipe.go); every other one waits for the pipeline to be empty.
func (s *session) handleMessage(t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	srv := s.srv
	switch {
	case to.Domainpart() == conferenceHost(srv.cfg.Domain) && to.Localpart() != "":
		s.flushPipeline()
		return srv.muc.handleMessage(s, t, e, to)
	case srv.isRemote(to) && to.Localpart() != "":
		// Federation (s2s_route.go), in order after the local messages
		// still in the pipeline.
		s.flushPipeline()
		return srv.messageToRemote(s, e, to)
	case !srv.isLocalUser(to):
		// Messages to the server, services or remote domains (federation off).
		s.flushPipeline()
		return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
	}
	s.pipeline(pipeItem{e: e, to: to})
	return nil
}

// route queues out, the archived copy of the message e from session s, to
// the recipient's sessions (a full JID that is offline falls back to the
// bare JID, RFC 6121 § 8.5.3.2.1), with carbons to the sender's other
// sessions. With no session to deliver to, the message is kept for the
// recipient's next login if -offline-messages is on (offline.go);
// otherwise, with nothing archived for the recipient, the sender gets
// service-unavailable, written to t.
func (srv *Server) route(ctx context.Context, s *session, t xmlstream.TokenReadEncoder, e element, to jid.JID, out element, storedForRecipient bool, senderID string) error {
	typ := e.attr("type")
	targets := srv.sessions.lookup(to)
	if len(targets) == 0 && to.Resourcepart() != "" && (typ == "" || typ == "chat" || typ == "normal") {
		targets = srv.sessions.lookup(to.Bare())
	}
	if len(targets) == 0 {
		kept := typ != "error" && srv.offline.keep(ctx, to, out) // XEP-0160
		if !kept && !storedForRecipient {
			if typ == "error" || typ == "groupchat" || typ == "headline" {
				return nil
			}
			return s.replyError(t, e, stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable})
		}
	}
	for _, r := range targets {
		r.sendPaced(out) // one recipient: slows the sender to its pace
	}
	srv.sendCarbons(s, to, out, senderID, targets) // XEP-0280, carbons.go
	return nil
}

// archiveChat stores a 1:1 message per both users' preferences and returns
// the copy to deliver: every stanza-id forged in either archive's name
// removed, the recipient's stamped when stored for the recipient.
func archiveChat(ctx context.Context, a *mam.Archiver, from, to jid.JID, e element) (out element, storedForRecipient bool) {
	out, storedForRecipient, _ = archiveChatIDs(ctx, a, from, to, e)
	return out, storedForRecipient
}

// archiveChatIDs is archiveChat that also returns the id in the sender's
// archive ("" if not stored there), for the sender's carbon copies.
func archiveChatIDs(ctx context.Context, a *mam.Archiver, from, to jid.JID, e element) (out element, storedForRecipient bool, senderID string) {
	res, _ := a.Archive(ctx, mam.Chat{From: from, To: to, Stanza: mam.Stanza{Start: e.start, Inner: e.inner}})
	return archived(res, from, to, e)
}

// archived is what the Archiver's result res for the message e is routed
// as, with whether the recipient's archive stored it and the sender's
// archive id.
func archived(res mam.Result, from, to jid.JID, e element) (out element, storedForRecipient bool, senderID string) {
	if !res.Deliver.IsZero() {
		// Tokens in, tokens out: the archiver built them as it read.
		return element{start: res.Deliver.Start, inner: res.Deliver.Inner}, res.RecipientID != "", res.SenderID
	}
	// Unreadable for the archiver: delivered unarchived, never with a
	// stanza-id that claims to be from either archive.
	return e.withInner(stripStanzaIDs(stripStanzaIDs(e.inner, to.Bare().String()), from.Bare().String())), false, ""
}
