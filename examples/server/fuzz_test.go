package main

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/netip"
	"testing"

	"mellium.im/xmpp/jid"
)

// newOfflineServer builds a server with every store and handler but no
// listener, for tests that call the stanza handlers directly.
func newOfflineServer(t testing.TB) *Server {
	t.Helper()
	cfg, err := Config{DataDir: t.TempDir(), FastHashing: true, HTTP: "127.0.0.1:5443", C2S: "127.0.0.1:5222"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{cfg: cfg, ctx: ctx, sessions: newRegistry(), conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		cancel()
		srv.bg.Wait()
		if err := srv.closeAll(); err != nil {
			t.Error(err)
		}
	})
	if err := srv.open(); err != nil {
		t.Fatal(err)
	}
	srv.baseURL = "https://localhost:5443"
	if err := srv.wire(ctx); err != nil {
		t.Fatal(err)
	}
	return srv
}

// discardRW is the stream a handler answers on: the answers are encoded
// (so encoding errors show) and dropped.
type discardRW struct {
	xml.TokenReader
	*xml.Encoder
}

// FuzzHandleStanza: whatever a client sends after binding, the server
// answers or drops it without panicking, and a forged from never survives.
func FuzzHandleStanza(f *testing.F) {
	for _, seed := range []string{
		`<message xmlns="jabber:client" to="bob@localhost" from="eve@localhost" type="chat"><body>hi</body></message>`,
		`<message xmlns="jabber:client" to="room@conference.localhost" type="groupchat"><body>x</body></message>`,
		`<presence xmlns="jabber:client" to="room@conference.localhost/nick"><x xmlns="http://jabber.org/protocol/muc"/></presence>`,
		`<presence xmlns="jabber:client"/>`,
		`<iq xmlns="jabber:client" type="set" id="1"><query xmlns="jabber:iq:roster"><item jid="bob@localhost" subscription="remove"/></query></iq>`,
		`<iq xmlns="jabber:client" type="get" id="2" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`,
		`<iq xmlns="jabber:client" type="set" id="3" to="room@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_enablearchiving"><value>yes</value></field></x></query></iq>`,
		`<iq xmlns="jabber:client" type="set" id="4"><query xmlns="urn:xmpp:mam:2" queryid="q"><set xmlns="http://jabber.org/protocol/rsm"><max>-1</max></set></query></iq>`,
		`<iq xmlns="jabber:client" type="set" id="5"><prefs xmlns="urn:xmpp:mam:2" default="sometimes"/></iq>`,
		`<iq xmlns="jabber:client" type="get" id="6" to="upload.localhost"><request xmlns="urn:xmpp:http:upload:0" filename="../x" size="-1"/></iq>`,
		`<iq xmlns="jabber:client" type="get" id="7" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info" node="n"/></iq>`,
		`<iq xmlns="jabber:client" type="set" id="8"><query xmlns="jabber:iq:register"><password></password></query></iq>`,
		`<iq xmlns="jabber:client" type="set" id="9" to="@@"/>`,
		`<bogus xmlns="jabber:client"/>`,
		// PEP (pep.go)
		`<iq xmlns="jabber:client" type="set" id="p1"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="n"><item id="i"><x xmlns="y"/></item></publish><publish-options><x xmlns="jabber:x:data" type="submit"><field var="pubsub#max_items"><value>max</value></field></x></publish-options></pubsub></iq>`,
		`<iq xmlns="jabber:client" type="get" id="p2" to="bob@localhost"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="n" max_items="-1"><item id=""/></items></pubsub></iq>`,
		`<iq xmlns="jabber:client" type="set" id="p3"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="n"><x xmlns="jabber:x:data" type="submit"/></configure></pubsub></iq>`,
		`<presence xmlns="jabber:client"><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="n" ver="v"/></presence>`,
	} {
		f.Add([]byte(seed))
	}
	srv := newOfflineServer(f)
	me := jid.MustParse("alice@localhost/fuzz")
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseElement(b)
		if err != nil {
			return
		}
		conn, peer := net.Pipe()
		defer peer.Close()
		defer conn.Close()
		s := newSession(srv, conn, netip.MustParseAddr("192.0.2.7"))
		s.jid = me
		if !srv.sessions.reserve(s, me) {
			t.Skip("resource taken")
		}
		defer srv.sessions.remove(s)
		defer srv.muc.leaveAll(s)
		defer srv.pep.sessionEnded(s)
		rw := discardRW{TokenReader: e.innerReader(), Encoder: xml.NewEncoder(io.Discard)}
		_ = s.handle(rw, e) // an error ends the session; it must not panic
		s.flushPipeline()
		for {
			out, ok := s.out.pop()
			if !ok {
				return
			}
			if out.attr("from") == "eve@localhost" {
				t.Fatalf("forged from survived: %v", out.start)
			}
		}
	})
}
