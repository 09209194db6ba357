package mam_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/xmpptest"
	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// serveSession runs a server-side mellium session whose mux holds the MAM
// handler, sends it the raw client stanzas and returns what the server
// wrote back, parsed.
func serveSession(t *testing.T, s mam.Store, cfg mam.Config, stanzas ...string) []*elem {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	if err := client.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(&out, client)
		copied <- err
	}()
	// The client writes through a second pipe into the server.
	cin, sin := net.Pipe()
	defer cin.Close()
	go func() {
		io.WriteString(cin, xmpptest.StreamHeader)
		for _, st := range stanzas {
			io.WriteString(cin, st)
		}
		io.WriteString(cin, `</stream:stream>`)
	}()
	rw := struct {
		io.Reader
		io.Writer
	}{sin, server}
	sess, err := xmpp.NewSession(context.Background(), jid.MustParse("example.org"), jid.MustParse("juliet@example.org/balcony"), rw, xmpp.Received, xmpptest.Negotiator)
	if err != nil {
		t.Fatal(err)
	}
	m := mux.New(stanza.NSClient, mam.Handle(mam.NewHandler(s, cfg)))
	if err := sess.Serve(m); err != nil && err != io.EOF {
		t.Fatalf("Serve: %v", err)
	}
	server.Close()
	sin.Close()
	<-copied
	b := bytes.TrimSpace(out.Bytes())
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
