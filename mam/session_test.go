package mam_test

import (
	"bytes"
	"strings"
	"testing"

	"chatbx.eu/privacy/internal/xmpptest"
	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// serveSession runs a server-side mellium session whose mux holds the MAM
// handler, sends it the raw client stanzas and returns what the server
// wrote back, parsed.
func serveSession(t *testing.T, s mam.Store, cfg mam.Config, stanzas ...string) []*elem {
	t.Helper()
	out := xmpptest.ServeSession(t, mux.New(stanza.NSClient, mam.Handle(mam.NewHandler(s, cfg))), stanzas...)
	b := bytes.TrimSpace([]byte(out))
	b = bytes.TrimSuffix(b, []byte("</stream:stream>"))
	return parse(t, b)
}

// TestHandlerOverMelliumSession runs queries through a real mellium
// session: its decoder, mux routing and encoder (which must not produce
// duplicate namespace declarations).
func TestHandlerOverMelliumSession(t *testing.T) { forEachStore(t, testHandlerOverMelliumSession) }

func testHandlerOverMelliumSession(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	ids := fill(t, s, 3)
	out := serveSession(t, s, mam.Config{},
		iq("set", "", `<query xmlns='urn:xmpp:mam:2' queryid='s1'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set></query>`),
		strings.Replace(iq("get", "", `<prefs xmlns='urn:xmpp:mam:2'/>`), "iq1", "iq2", 1),
		// Refused before its content is read: the session must skip the rest.
		strings.Replace(iq("set", "romeo@example.org", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='with'><value>a@example.org</value></field></x></query>`), "iq1", "iq3", 1),
		strings.Replace(iq("get", "", `<metadata xmlns='urn:xmpp:mam:2'/>`), "iq1", "iq4", 1),
	)
	if len(out) != 6 {
		t.Fatalf("want 2 results, fin, prefs, an error and metadata: got %d elements", len(out))
	}
	if md := out[5].child(mam.NS, "metadata"); out[5].Attr["id"] != "iq4" || md == nil || md.child(mam.NS, "end") == nil || md.child(mam.NS, "end").Attr["id"] != ids[2] {
		t.Errorf("metadata after a refused query: %+v", out[5])
	}
	r := queryResults(t, out[:3], "s1")
	if strings.Join(r.ids, ",") != strings.Join(ids[:2], ",") || r.fin.Attr["complete"] != "false" {
		t.Errorf("ids %v complete %s", r.ids, r.fin.Attr["complete"])
	}
	if p := out[3].child(mam.NS, "prefs"); out[3].Attr["id"] != "iq2" || p == nil || p.Attr["default"] != "always" {
		t.Errorf("prefs answer %+v", out[3])
	}
	if out[4].Attr["id"] != "iq3" || out[4].Attr["type"] != "error" {
		t.Errorf("foreign archive answer %v", out[4].Attr)
	}
}
