package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// XEP-0054 vcard-temp and XEP-0153 vCard-based avatars.
const (
	nsVCard       = "vcard-temp"
	nsVCardUpdate = "vcard-temp:x:update"
)

// errVCardPhoto is returned by parseVCard for a PHOTO whose BINVAL is not
// base64.
var errVCardPhoto = errors.New("vCard PHOTO/BINVAL is not base64")

// parseVCard reads a vCard set: the hex SHA-1 of its photo's image data
// (XEP-0153 § 4.1; "" without PHOTO/BINVAL), and whether the vCard is
// empty (no attribute, no content), which deletes the stored one.
func parseVCard(v element) (photoHash string, empty bool, err error) {
	if isBareElement(v) {
		return "", true, nil
	}
	photo, ok := v.child(xml.Name{Space: nsVCard, Local: "PHOTO"})
	if !ok {
		return "", false, nil
	}
	bin, ok := photo.child(xml.Name{Space: nsVCard, Local: "BINVAL"})
	if !ok {
		return "", false, nil // EXTVAL: no image data to hash
	}
	data, err := base64.StdEncoding.DecodeString(string(bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, []byte(bin.text()))))
	if err != nil || len(data) == 0 {
		return "", false, errVCardPhoto
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:]), false, nil
}

// handleVCard answers XEP-0054: a get of the user's own vCard (no to, or
// the own bare JID; an empty vCard when none is stored) or of another
// local user's (item-not-found when none is stored, the same answer for a
// name without an account), and a set of the user's own (anything else
// is forbidden).
func (srv *Server) handleVCard(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	reply := func(se stanza.Error) error {
		_, err := xmlstream.Copy(t, iq.Error(se))
		return err
	}
	own := iq.To.Equal(jid.JID{}) || iq.To.Equal(iq.From.Bare())
	v, err := readElement(t, *start)
	if err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
	}
	if iq.Type == stanza.GetIQ {
		target := iq.From.Bare()
		if !own {
			if !srv.isLocalUser(iq.To) || iq.To.Resourcepart() != "" {
				return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
			}
			target = iq.To
		}
		b, err := srv.vcards.get(target.Localpart())
		if err != nil {
			srv.log.Error("vCard: get failed", "err", err)
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		if b == nil {
			if !own {
				return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
			}
			_, err := xmlstream.Copy(t, iq.Result(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsVCard, Local: "vCard"}})))
			return err
		}
		toks, err := parseStoredXML(b)
		if err != nil {
			srv.log.Error("vCard: stored vCard unreadable", "err", err)
			return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
		}
		_, err = xmlstream.Copy(t, iq.Result(&sliceReader{toks: toks}))
		return err
	}
	if !own {
		return reply(stanza.Error{Type: stanza.Cancel, Condition: stanza.Forbidden})
	}
	hash, empty, err := parseVCard(v)
	if err != nil {
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable, Text: personalText(err.Error())})
	}
	var b []byte
	if !empty {
		if b, err = v.bytes(); err != nil {
			return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest})
		}
	}
	switch err := srv.vcards.set(iq.From.Localpart(), b, hash); {
	case errors.Is(err, errVCardTooBig):
		return reply(stanza.Error{Type: stanza.Modify, Condition: stanza.NotAcceptable,
			Text: personalText(fmt.Sprintf("a vCard may hold at most %d KiB", maxVCardBytes>>10))})
	case err != nil:
		srv.log.Error("vCard: set failed", "err", err)
		return reply(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	_, err = xmlstream.Copy(t, iq.Result(nil))
	return err
}

// withPhotoHash returns the available presence e of user with the
// XEP-0153 <x xmlns='vcard-temp:x:update'><photo>SHA-1</photo></x> of the
// stored vCard's photo, in place of any the client put there; e unchanged
// when the vCard has no photo (a client's own <x/> then stays).
func (srv *Server) withPhotoHash(user jid.JID, e element) element {
	h := srv.vcards.photoHash(user.Localpart())
	if h == "" {
		return e
	}
	x := xml.StartElement{Name: xml.Name{Space: nsVCardUpdate, Local: "x"}}
	p := xml.StartElement{Name: xml.Name{Space: nsVCardUpdate, Local: "photo"}}
	inner := withoutChildNamed(e.inner, x.Name)
	inner = append(inner, x, p, xml.CharData(h), p.End(), x.End())
	return e.withInner(inner)
}

// withoutChildNamed returns a copy of inner without the direct children named
// name.
func withoutChildNamed(inner []xml.Token, name xml.Name) []xml.Token {
	out := make([]xml.Token, 0, len(inner)+5)
	depth, skip := 0, false
	for _, tok := range inner {
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name == name {
				skip = true
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 && skip {
				skip = false
				continue
			}
		}
		if !skip {
			out = append(out, tok)
		}
	}
	return out
}
