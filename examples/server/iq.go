package main

import (
	"encoding/xml"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// handleIQ answers an IQ by its addressee: the account (no to, or the
// user's own bare JID), the server, the upload service, the MUC service or
// a room. IQs to other users are not forwarded: the read loop (serve.go)
// answers every get/set the handler leaves unanswered, as mellium's
// Session.Serve does, so they cannot be relayed; they get
// service-unavailable.
func (s *session) handleIQ(t xmlstream.TokenReadEncoder, e element, to jid.JID) error {
	srv := s.srv
	typ := e.attr("type")
	if typ == "result" || typ == "error" {
		return nil // answers to our roster pushes
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
	isDisco := payload.Name.Space == nsDiscoInfo || payload.Name.Space == nsDiscoItems
	rw := readWriter{TokenReader: e.innerReader(), Encoder: t}
	start := e.start.Copy()

	switch {
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
		if payload.Name.Space == nsDiscoItems {
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
	case srv.isLocalUser(to) && to.Resourcepart() == "" && payload.Name.Space == nsMAM:
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
}

type xRoster struct {
	XMLName xml.Name      `xml:"jabber:iq:roster query"`
	Items   []xRosterItem `xml:"item"`
}

// handleRoster answers roster get and set. Subscriptions are not negotiated:
// every item has subscription "both" (enough for prefs "roster" and
// presence to contacts).
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
		var out xRoster
		for _, it := range items {
			out.Items = append(out.Items, xRosterItem{JID: it.JID, Name: it.Name, Subscription: "both", Groups: it.Groups})
		}
		r, err := marshalReader(out)
		if err != nil {
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err = xmlstream.Copy(t, iq.Result(r))
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
	push := xRosterItem{JID: contact.String(), Name: it.Name, Subscription: "both", Groups: it.Groups}
	if it.Subscription == "remove" {
		err = srv.store.removeRosterItem(user, contact.String())
		push = xRosterItem{JID: contact.String(), Subscription: "remove"}
	} else {
		err = srv.store.setRosterItem(user, rosterItem{JID: contact.String(), Name: it.Name, Groups: it.Groups})
	}
	if err != nil {
		return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	// Roster push to every session of the user.
	for _, r := range srv.sessions.lookup(iq.From.Bare()) {
		pr, err := marshalReader(xRoster{Items: []xRosterItem{push}})
		if err != nil {
			return nil
		}
		toks, _ := xmlstream.ReadAll(pr)
		r.send(element{start: xml.StartElement{
			Name: xml.Name{Space: stanza.NSClient, Local: "iq"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: "set"},
				{Name: xml.Name{Local: "id"}, Value: "push-" + randomResource()},
				{Name: xml.Name{Local: "to"}, Value: r.jid.String()},
			},
		}, inner: toks})
	}
	return nil
}
