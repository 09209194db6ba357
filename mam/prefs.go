package mam

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
)

// maxPrefsJIDs caps each of the always and never lists.
const maxPrefsJIDs = 1000

// parsePrefs parses an XEP-0441 <prefs xmlns='urn:xmpp:mam:2'/> element:
// start is its start element and r yields its content. The default must be
// always, never or roster and each <jid/> a valid JID; anything else wraps
// ErrBadRequest (bad-request). Duplicate JIDs are dropped. It never panics.
func parsePrefs(r xml.TokenReader, start xml.StartElement) (Prefs, error) {
	var p Prefs
	if start.Name.Local != "prefs" || start.Name.Space != NS {
		return p, fmt.Errorf("%w: not mam:2 prefs", ErrBadRequest)
	}
	def, _ := startAttr(start, "default")
	switch d := Default(strings.TrimSpace(def)); d {
	case DefaultAlways, DefaultNever, DefaultRoster:
		p.Default = d
	default:
		return p, fmt.Errorf("%w: unknown default", ErrBadRequest)
	}
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return p, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		var list *[]jid.JID
		switch {
		case se.Name.Space == NS && se.Name.Local == "always":
			list = &p.Always
		case se.Name.Space == NS && se.Name.Local == "never":
			list = &p.Never
		default:
			if err := skip(r); err != nil {
				return p, err
			}
			continue
		}
		if err := parseJIDList(r, list); err != nil {
			return p, err
		}
	}
	return p, nil
}

// parsePrefsBytes is parsePrefs for a whole <prefs/> element in XML.
func parsePrefsBytes(b []byte) (Prefs, error) {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	start, err := firstStart(d)
	if err != nil {
		return Prefs{}, err
	}
	return parsePrefs(d, start)
}

func parseJIDList(r xml.TokenReader, list *[]jid.JID) error {
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if se.Name.Space != NS || se.Name.Local != "jid" {
			if err := skip(r); err != nil {
				return err
			}
			continue
		}
		v, err := readText(r)
		if err != nil {
			return err
		}
		j, err := jid.Parse(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%w: malformed JID in prefs", ErrBadRequest)
		}
		if slices.ContainsFunc(*list, j.Equal) {
			continue
		}
		if len(*list) >= maxPrefsJIDs {
			return fmt.Errorf("%w: too many JIDs in prefs", ErrBadRequest)
		}
		*list = append(*list, j)
	}
	return nil
}

// TokenReader encodes p as <prefs xmlns='urn:xmpp:mam:2'/>, with both lists
// present (even if empty) as XEP-0441 requires. The zero Default is written
// as "never".
func (p Prefs) TokenReader() xml.TokenReader {
	def := p.Default
	if def == "" {
		def = DefaultNever
	}
	list := func(name string, jids []jid.JID) xml.TokenReader {
		rs := make([]xml.TokenReader, 0, len(jids))
		for _, j := range jids {
			rs = append(rs, xmlstream.Wrap(xmlstream.Token(xml.CharData(j.String())),
				xml.StartElement{Name: xml.Name{Space: NS, Local: "jid"}}))
		}
		return xmlstream.Wrap(xmlstream.MultiReader(rs...), xml.StartElement{Name: xml.Name{Space: NS, Local: name}})
	}
	return xmlstream.Wrap(
		xmlstream.MultiReader(list("always", p.Always), list("never", p.Never)),
		xml.StartElement{
			Name: xml.Name{Space: NS, Local: "prefs"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "default"}, Value: string(def)}},
		},
	)
}

// WriteXML implements xmlstream.WriterTo.
func (p Prefs) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, p.TokenReader())
}

// listed reports whether peer matches an entry of list by XEP-0441 JID
// matching: an entry with a resource matches exactly, a bare entry matches
// the peer's bare JID.
func listed(list []jid.JID, peer jid.JID) bool {
	bare := peer.Bare()
	for _, j := range list {
		if j.Resourcepart() != "" {
			if j.Equal(peer) {
				return true
			}
		} else if j.Equal(bare) {
			return true
		}
	}
	return false
}

// Allows reports whether the preferences let a message with peer into the
// archive of owner: a JID in Never is never archived (Never wins over
// Always), a JID in Always is, otherwise the default decides ("roster" asks
// roster; a nil roster matches nobody). The zero Prefs allows nothing.
func (p Prefs) Allows(ctx context.Context, owner, peer jid.JID, roster Roster) (bool, error) {
	if listed(p.Never, peer) {
		return false, nil
	}
	if listed(p.Always, peer) {
		return true, nil
	}
	switch p.Default {
	case DefaultAlways:
		return true, nil
	case DefaultRoster:
		if roster == nil {
			return false, nil
		}
		ok, err := roster.InRoster(ctx, owner.Bare(), peer.Bare())
		if err != nil {
			return false, fmt.Errorf("mam: roster lookup: %w", err)
		}
		return ok, nil
	}
	return false, nil
}
