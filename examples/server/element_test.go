package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/internal/xmlutil"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
	"mellium.im/xmpp/stanza"
)

// TestElementRoundTrip: buffered stanzas serialize without duplicate xmlns
// and keep their content.
func TestElementRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`<message xmlns="jabber:client" to="a@localhost" type="chat"><body>hi &amp; bye</body></message>`,
		`<iq xmlns="jabber:client" type="set" id="1"><query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data" type="submit"><field var="with"><value>b@localhost</value></field></x></query></iq>`,
	} {
		e, err := parseElement([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.bytes()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(out, []byte(`xmlns="jabber:client" xmlns=`)) > 0 {
			t.Errorf("duplicate xmlns: %s", out)
		}
		e2, err := parseElement(out)
		if err != nil {
			t.Fatalf("reparse %s: %v", out, err)
		}
		out2, _ := e2.bytes()
		if !bytes.Equal(out, out2) {
			t.Errorf("not stable:\n%s\n%s", out, out2)
		}
	}
}

// TestStanzaSizeCap: a huge stanza is refused, not buffered.
func TestStanzaSizeCap(t *testing.T) {
	t.Parallel()
	in := `<message xmlns="jabber:client"><body>` + strings.Repeat("x", maxStanzaBytes+1) + `</body></message>`
	if _, err := parseElement([]byte(in)); err != errStanzaTooBig {
		t.Fatalf("got %v, want errStanzaTooBig", err)
	}
}

// TestStripStanzaIDs: forged stanza-ids by the room go, others stay.
func TestStripStanzaIDs(t *testing.T) {
	t.Parallel()
	e, err := parseElement([]byte(`<message xmlns="jabber:client"><stanza-id xmlns="urn:xmpp:sid:0" by="r@conference.localhost" id="FORGED"><x/></stanza-id><stanza-id xmlns="urn:xmpp:sid:0" by="other" id="ok"/><body>b</body></message>`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := e.withInner(stripStanzaIDs(e.inner, "r@conference.localhost")).bytes()
	if bytes.Contains(out, []byte("FORGED")) || !bytes.Contains(out, []byte(`id="ok"`)) || !bytes.Contains(out, []byte("<body")) {
		t.Errorf("got %s", out)
	}
}

// FuzzElement: any input parses to an element or an error, and the element
// helpers never panic.
func FuzzElement(f *testing.F) {
	f.Add([]byte(`<message xmlns="jabber:client" to="a@b"><body>x</body></message>`))
	f.Add([]byte(`<iq xmlns="jabber:client" xmlns="jabber:client"><q xmlns:p="u" xmlns:r="u" p:a="1" r:a="2"/></iq>`))
	f.Add([]byte(`<iq xmlns="jabber:client"><q xmlns="urn:q" xmlns:p="urn:q" p:a="1" a="2"/></iq>`))
	f.Add([]byte(`<iq><query xmlns="jabber:iq:register"><username/><remove/></query></iq>`))
	f.Add([]byte(`<a><b><c></b></a>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseElement(b)
		if err != nil {
			return
		}
		_, _ = e.payload()
		_ = e.children()
		_, _ = e.child(xml.Name{Local: "body"})
		_ = e.text()
		_ = e.attr("to")
		_ = stripStanzaIDs(e.inner, "x")
		for _, tok := range append([]xml.Token{e.start}, e.inner...) {
			if s, ok := tok.(xml.StartElement); ok && !xmlutil.AttrsUnique(s) {
				t.Fatalf("parsed an element with a duplicate attribute: %v", s)
			}
		}
		if out, err := e.bytes(); err == nil {
			// What the server writes never repeats an attribute.
			if _, err := parseElement(out); errors.Is(err, errDupAttr) {
				t.Fatalf("%q serializes with a duplicate attribute: %s", b, out)
			}
		}
	})
}

// TestArchiveUnreadableMessage: a message the archiver cannot read
// (here unbalanced inner tokens) is still delivered, but without the
// stanza-ids forged in the name of either user's or the room's archive.
func TestArchiveUnreadableMessage(t *testing.T) {
	t.Parallel()
	a := mam.NewArchiver(mamtest.NewMemStore(), mam.Config{})
	alice, bob := jid.MustParse("alice@localhost/phone"), jid.MustParse("bob@localhost")
	room := jid.MustParse("room@conference.localhost")
	sid := func(by string) xml.StartElement {
		return xml.StartElement{Name: xml.Name{Space: stanza.NSSid, Local: "stanza-id"},
			Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "forged"}, {Name: xml.Name{Local: "by"}, Value: by}}}
	}
	e := element{start: xml.StartElement{Name: xml.Name{Space: "jabber:client", Local: "message"}}}
	for _, by := range []string{"bob@localhost", "alice@localhost", "room@conference.localhost", "other@example.org"} {
		e.inner = append(e.inner, sid(by), xml.EndElement{Name: sid(by).Name})
	}
	body := xml.StartElement{Name: xml.Name{Space: "jabber:client", Local: "body"}}
	e.inner = append(e.inner, body, xml.CharData("hi")) // no </body>: unreadable

	by := func(out element) []string {
		var got []string
		for _, tok := range out.inner {
			if st, ok := tok.(xml.StartElement); ok && st.Name.Local == "stanza-id" {
				for _, a := range st.Attr {
					if a.Name.Local == "by" {
						got = append(got, a.Value)
					}
				}
			}
		}
		return got
	}
	out, stored := archiveChat(context.Background(), a, alice, bob, e)
	if stored {
		t.Error("unreadable message reported stored")
	}
	if got := by(out); !slices.Equal(got, []string{"room@conference.localhost", "other@example.org"}) {
		t.Errorf("chat: stanza-ids by %q kept, want only the room's and other@example.org", got)
	}
	if !slices.ContainsFunc(out.inner, func(tok xml.Token) bool {
		cd, ok := tok.(xml.CharData)
		return ok && string(cd) == "hi"
	}) {
		t.Error("chat: body lost")
	}
	out = archiveRoom(context.Background(), a, room, jid.MustParse("room@conference.localhost/alice"), alice, e)
	if got := by(out); !slices.Equal(got, []string{"bob@localhost", "alice@localhost", "other@example.org"}) {
		t.Errorf("room: stanza-ids by %q kept, want all but the room's", got)
	}
}
