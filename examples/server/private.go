package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// nsPrivate is XEP-0049 Private XML Storage.
const nsPrivate = "jabber:iq:private"

// Errors of parsePrivate.
var (
	// errPrivateEmpty: a query without a child element (XEP-0049 § 2.3:
	// not-acceptable).
	errPrivateEmpty = errors.New("private XML query without a child element")
	// errPrivateReserved: a child in a reserved namespace (jabber:*,
	// http://jabber.org/*, vcard-temp, or none), or a namespace longer
	// than maxPrivateNamespace.
	errPrivateReserved = errors.New("private XML in a reserved namespace")
	// errPrivateManyNS: a get naming more than one namespace.
	errPrivateManyNS = errors.New("private XML get of more than one namespace")
)

// privateQuery is a parsed jabber:iq:private query.
type privateQuery struct {
	// namespaces in the order of their first element.
	namespaces []string
	// docs holds, for a set, each namespace's elements serialized; nil
	// for a namespace whose only element is empty and without attributes,
	// which deletes what was stored.
	docs map[string][]byte
}

// reservedPrivateNS reports whether ns may not be used for private XML
// (XEP-0049 § 2.3 lists jabber:*, http://jabber.org/* and vcard-temp).
func reservedPrivateNS(ns string) bool {
	return ns == "" || ns == nsVCard || strings.HasPrefix(ns, "jabber:") ||
		strings.HasPrefix(ns, "http://jabber.org/") || len(ns) > maxPrivateNamespace
}

// parsePrivate parses the query q of a get (set false) or set.
func parsePrivate(q element, set bool) (privateQuery, error) {
	var p privateQuery
	children := q.children()
	if len(children) == 0 {
		return p, errPrivateEmpty
	}
	seen := map[string]bool{}
	bufs := map[string]*bytes.Buffer{}
	empty := map[string]bool{}
	for _, c := range children {
		ns := c.start.Name.Space
		if reservedPrivateNS(ns) {
			return p, errPrivateReserved
		}
		if !seen[ns] {
			if !set && len(p.namespaces) > 0 {
				return p, errPrivateManyNS
			}
			p.namespaces = append(p.namespaces, ns)
			seen[ns] = true
		}
		if !set {
			continue
		}
		b, err := c.bytes()
		if err != nil {
			return p, fmt.Errorf("private XML: %w", err)
		}
		if bufs[ns] == nil {
			bufs[ns] = &bytes.Buffer{}
			empty[ns] = isBareElement(c)
		} else {
			empty[ns] = false
		}
		bufs[ns].Write(b)
	}
	if set {
		p.docs = make(map[string][]byte, len(bufs))
		for ns, b := range bufs {
			if empty[ns] {
				p.docs[ns] = nil
			} else {
				p.docs[ns] = b.Bytes()
			}
		}
	}
	return p, nil
}

// isBareElement reports whether e has no attribute but xmlns and no
// content but white space.
func isBareElement(e element) bool {
	for _, a := range e.start.Attr {
		if !(a.Name.Space == "" && a.Name.Local == "xmlns") && a.Name.Space != "xmlns" {
			return false
		}
	}
	for _, tok := range e.inner {
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) > 0 {
			return false
		}
	}
	return true
}

// handlePrivate answers XEP-0049 get and set, for the user's own storage
// only (anything else: forbidden, the condition XEP-0049 prefers).
func (srv *Server) handlePrivate(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	reply := func(se stanza.Error) error {
		_, err := xmlstream.Copy(t, iq.Error(se))
		return err
	}
	if !iq.To.Equal(jid.JID{}) && !iq.To.Equal(iq.From.Bare()) {
		return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden})
	}
	q, err := readElement(t, *start)
	if err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	set := iq.Type == stanza.SetIQ
	p, err := parsePrivate(q, set)
	if err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: personalText(err.Error())})
	}
	user := iq.From.Localpart()
	if set {
		switch err := srv.private.set(user, p.docs); {
		case errors.Is(err, errPrivateTooBig):
			return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
				Text: personalText(fmt.Sprintf("at most %d KiB of private XML per namespace", maxPrivateNSBytes>>10))})
		case errors.Is(err, errPrivateFull):
			return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.PolicyViolation,
				Text: personalText(fmt.Sprintf("at most %d KiB of private XML in all: remove some first", maxPrivateBytes>>10))})
		case err != nil:
			srv.log.Error("private XML storage: set failed", "err", err)
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err := xmlstream.Copy(t, iq.Result(nil))
		return err
	}
	v, err := srv.private.get(user, p.namespaces[0])
	if err != nil {
		srv.log.Error("private XML storage: get failed", "err", err)
		return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	inner := q.inner // nothing stored: the requested element comes back empty
	if v != nil {
		if inner, err = parseStoredXML(v); err != nil {
			srv.log.Error("private XML storage: stored data unreadable", "err", err)
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
	}
	qs := xml.StartElement{Name: xml.Name{Space: nsPrivate, Local: "query"}}
	_, err = xmlstream.Copy(t, iq.Result(xmlstream.Wrap(&sliceReader{toks: inner}, qs)))
	return err
}

// parseStoredXML reads serialized XML (one or more elements) into tokens.
func parseStoredXML(b []byte) ([]xml.Token, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var out []xml.Token
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, xml.CopyToken(tok))
	}
}

// personalText is a stanza error text in English.
func personalText(s string) map[string]string { return map[string]string{"en": s} }
