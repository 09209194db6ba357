package main

import (
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// XEP-0280 message carbons: a session that enabled carbons gets a copy of
// the chat messages its account's other resources send (<sent/>) and of
// those sent to another resource of the account (<received/>), each
// wrapped in a XEP-0297 <forwarded/> from the account's bare JID.

// nsHints is XEP-0334 message processing hints (mellium has no package).
const nsHints = "urn:xmpp:hints"

// handleCarbonsIQ answers <enable/> and <disable/> (XEP-0280 § 4, § 5),
// sent to the account or the server: they switch carbons for this session
// only.
func (s *session) handleCarbonsIQ(t xmlstream.TokenReadEncoder, iq stanza.IQ, payload xml.StartElement) error {
	if iq.Type != stanza.SetIQ || (payload.Name.Local != "enable" && payload.Name.Local != "disable") {
		_, err := xmlstream.Copy(t, iq.Error(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest}))
		return err
	}
	s.carbons.Store(payload.Name.Local == "enable")
	_, err := xmlstream.Copy(t, iq.Result(nil))
	return err
}

// carbonEligible reports whether a message is copied (XEP-0280 § 6): type
// chat, or normal with a body; not when it carries the carbons <private/>
// or the XEP-0334 <no-copy/> hint, nor when it is itself a carbon copy
// (a client cannot have the server wrap a forged copy).
func carbonEligible(e element) bool {
	switch e.attr("type") {
	case "chat":
	case "", "normal":
		if _, ok := e.child(xml.Name{Space: stanza.NSClient, Local: "body"}); !ok {
			return false
		}
	default:
		return false
	}
	depth := 0
	for _, tok := range e.inner {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				switch t.Name {
				case xml.Name{Space: carbons.NS, Local: "private"},
					xml.Name{Space: carbons.NS, Local: "sent"},
					xml.Name{Space: carbons.NS, Local: "received"},
					xml.Name{Space: nsHints, Local: "no-copy"}:
					return false
				}
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return true
}

// sendCarbons copies a message that s sent to a local user to: the
// sender's other carbons-enabled sessions (<sent/>, with the stanza-id of
// the sender's archive when it stored the message), and the recipient's
// carbons-enabled sessions that did not get it (<received/>, the copy the
// recipient's sessions got, with the recipient archive's stanza-id).
// delivered are the sessions that got the message itself.
func (srv *Server) sendCarbons(s *session, to jid.JID, out element, senderID string, delivered []*session) {
	if !carbonEligible(out) {
		return
	}
	skip := func(r *session) bool {
		if r == s || !r.carbons.Load() {
			return true
		}
		for _, d := range delivered {
			if d == r {
				return true
			}
		}
		return false
	}
	own := s.jid.Bare()
	sent := out
	if !to.Bare().Equal(own) {
		sent = out.withInner(stripStanzaIDs(out.inner, to.Bare().String()))
	}
	if senderID != "" {
		sent = sent.withInner(append(stripStanzaIDs(sent.inner, own.String()), stanzaIDTokens(senderID, own.String())...))
	}
	for _, r := range srv.sessions.lookup(own) {
		if !skip(r) {
			r.send(carbonCopy("sent", own, r.jid, sent))
		}
	}
	if to.Bare().Equal(own) {
		return // a message to one's own resource: the sent copies suffice
	}
	for _, r := range srv.sessions.lookup(to.Bare()) {
		if !skip(r) {
			r.send(carbonCopy("received", to.Bare(), r.jid, out))
		}
	}
}

// carbonCopy wraps msg in <kind xmlns='urn:xmpp:carbons:2'><forwarded
// xmlns='urn:xmpp:forward:0'>, in a message from the account's bare JID to
// one of its sessions (XEP-0280 § 6, § 7).
func carbonCopy(kind string, account, to jid.JID, msg element) element {
	k := xml.Name{Space: carbons.NS, Local: kind}
	f := xml.Name{Space: forward.NS, Local: "forwarded"}
	start := xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "from"}, Value: account.String()},
		{Name: xml.Name{Local: "to"}, Value: to.String()},
	}}
	if typ := msg.attr("type"); typ != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "type"}, Value: typ})
	}
	inner := make([]xml.Token, 0, len(msg.inner)+6)
	inner = append(inner, xml.StartElement{Name: k}, xml.StartElement{Name: f}, msg.start.Copy())
	inner = append(inner, msg.inner...)
	inner = append(inner, msg.start.End(), xml.EndElement{Name: f}, xml.EndElement{Name: k})
	return element{start: start, inner: inner}
}

// stanzaIDTokens is <stanza-id xmlns='urn:xmpp:sid:0' id=id by=by/>.
func stanzaIDTokens(id, by string) []xml.Token {
	n := xml.Name{Space: stanza.NSSid, Local: "stanza-id"}
	return []xml.Token{
		xml.StartElement{Name: n, Attr: []xml.Attr{
			{Name: xml.Name{Local: "id"}, Value: id},
			{Name: xml.Name{Local: "by"}, Value: by},
		}},
		xml.EndElement{Name: n},
	}
}
