package main

import (
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzPrivateQuery: parsePrivate never panics on any query; an accepted
// set stores, per namespace, elements of that namespace only, which parse
// back; no reserved namespace is ever accepted; a get names exactly one
// namespace.
func FuzzPrivateQuery(f *testing.F) {
	for _, s := range []string{
		`<query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"><conference jid="r@c"/></storage></query>`,
		`<query xmlns="jabber:iq:private"><a xmlns="urn:a"/><b xmlns="urn:b">t</b><a xmlns="urn:a" x="1"/></query>`,
		`<query xmlns="jabber:iq:private"><vCard xmlns="vcard-temp"/></query>`,
		`<query xmlns="jabber:iq:private"><x/></query>`,
		`<query xmlns="jabber:iq:private"/>`,
		`<query xmlns="jabber:iq:private"><p:e xmlns:p="urn:p" p:a="v"><p:f/></p:e></query>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseElement([]byte(s))
		if err != nil {
			return
		}
		if p, err := parsePrivate(q, false); err == nil && len(p.namespaces) != 1 {
			t.Fatalf("get with namespaces %q", p.namespaces)
		}
		p, err := parsePrivate(q, true)
		if err != nil {
			return
		}
		for ns, v := range p.docs {
			if reservedPrivateNS(ns) {
				t.Fatalf("reserved namespace %q accepted", ns)
			}
			if v == nil {
				continue
			}
			toks, err := parseStoredXML(v)
			if err != nil {
				t.Fatalf("stored %q does not parse: %v", v, err)
			}
			depth := 0
			for _, tok := range toks {
				switch tt := tok.(type) {
				case xml.StartElement:
					if depth == 0 && tt.Name.Space != ns {
						t.Fatalf("element of %q stored under %q", tt.Name.Space, ns)
					}
					depth++
				case xml.EndElement:
					depth--
				}
			}
		}
	})
}

// FuzzVCard: parseVCard never panics, and a photo hash is 40 hex digits;
// withoutChildNamed on any presence content keeps the tokens balanced, and
// topLevelPieces (offline storage's delay replacement) keeps every token.
func FuzzVCard(f *testing.F) {
	for _, s := range []string{
		`<vCard xmlns="vcard-temp"><FN>A</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard>`,
		`<vCard xmlns="vcard-temp"><PHOTO><EXTVAL>https://example.org/a.png</EXTVAL></PHOTO></vCard>`,
		`<vCard xmlns="vcard-temp"><PHOTO><BINVAL>!!</BINVAL></PHOTO></vCard>`,
		`<vCard xmlns="vcard-temp"/>`,
		`<presence><x xmlns="vcard-temp:x:update"><photo>00</photo></x><show>away</show></presence>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseElement([]byte(s))
		if err != nil {
			return
		}
		if h, _, err := parseVCard(e); err == nil && h != "" && (len(h) != 40 || strings.Trim(h, "0123456789abcdef") != "") {
			t.Fatalf("photo hash %q", h)
		}
		depth := 0
		for _, tok := range withoutChildNamed(e.inner, xml.Name{Space: nsVCardUpdate, Local: "x"}) {
			switch tok.(type) {
			case xml.StartElement:
				depth++
			case xml.EndElement:
				depth--
			}
			if depth < 0 {
				t.Fatal("unbalanced tokens")
			}
		}
		if depth != 0 {
			t.Fatal("unbalanced tokens")
		}
		n := 0 // offline storage's split of a message's children loses nothing
		for _, c := range topLevelPieces(e.inner) {
			n += len(c)
		}
		if n != len(e.inner) {
			t.Fatalf("topLevelPieces kept %d of %d tokens", n, len(e.inner))
		}
	})
}
