package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
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
		if out, err := e.bytes(); err == nil {
			_, _ = parseElement(out)
		}
	})
}
