package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/roster"
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
	isDisco := payload.Name.Space == disco.NSInfo || payload.Name.Space == disco.NSItems
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
}

// xRoster is a roster set's query (the mux routed it by name).
type xRoster struct {
	Items []xRosterItem `xml:"item"`
}

// handleRoster answers roster get and set. Subscriptions are not negotiated:
// every item has subscription "both" (enough for prefs "roster" and
// presence to contacts).
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
		out := make([]xRosterItem, 0, len(items))
		for _, it := range items {
			out = append(out, xRosterItem{JID: it.JID, Name: it.Name, Subscription: "both", Groups: it.Groups})
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
	push := xRosterItem{JID: contact.String(), Name: it.Name, Subscription: "both", Groups: it.Groups}
	if it.Subscription == "remove" {
		err = srv.store.removeRosterItem(user, contact.String())
		push = xRosterItem{JID: contact.String(), Subscription: "remove"}
	} else {
		err = srv.store.setRosterItem(user, rosterItem{JID: contact.String(), Name: it.Name, Groups: it.Groups}, srv.cfg.rosterLimit())
	}
	if err != nil {
		return reply(rosterSetError(err, srv.cfg.rosterLimit()))
	}
	if _, err := xmlstream.Copy(t, iq.Result(nil)); err != nil {
		return err
	}
	// Roster push to every session of the user.
	for _, r := range srv.sessions.lookup(iq.From.Bare()) {
		toks, err := xmlstream.ReadAll(rosterQuery([]xRosterItem{push}))
		if err != nil {
			return nil
		}
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
