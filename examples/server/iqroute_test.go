package main

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// loginAnswering logs user in over STARTTLS with a mellium client whose
// handler answers IQs with answer(e) (raw XML, "" for mellium's default
// service-unavailable); every IQ it gets is also sent to got.
func loginAnswering(t *testing.T, ts *testServer, user, password string, got chan<- element, answer func(element) string) jid.JID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	origin := jid.MustParse(user + "@" + ts.Domain)
	conn, err := net.DialTimeout("tcp", ts.C2S, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(ctx, origin, conn,
		xmpp.StartTLS(ts.TLSConfig.Clone()), xmpp.SASL("", password, sasl.Plain), xmpp.BindResource())
	if err != nil {
		conn.Close()
		t.Fatalf("login %s: %v", user, err)
	}
	served := make(chan struct{})
	t.Cleanup(func() {
		_ = s.Close()
		_ = conn.Close()
		<-served
	})
	go func() {
		defer close(served)
		_ = s.Serve(xmpp.HandlerFunc(func(w xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			e, err := readElement(w, *start)
			if err != nil || e.start.Name.Local != "iq" {
				return err
			}
			select {
			case got <- e:
			default:
			}
			if raw := answer(e); raw != "" {
				d := xml.NewDecoder(strings.NewReader(raw))
				d.DefaultSpace = stanza.NSClient
				_, err = xmlstream.Copy(w, rawTokens{d})
			}
			return err
		}))
	}()
	return s.LocalAddr()
}

// rawLogin logs a raw client in over direct TLS and binds resource.
func rawLogin(t *testing.T, ts *testServer, user, password, resource string) *rawClient {
	t.Helper()
	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.open(t)
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))+`</auth>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
		t.Fatalf("auth: %v %v", e.start.Name, err)
	}
	c.open(t)
	c.write(t, `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>`+resource+`</resource></bind></iq>`)
	if e, err := c.next(); err != nil || e.attr("type") != "result" {
		t.Fatalf("bind: %v %v", e.attr("type"), err)
	}
	return c
}

// nextIQ reads the raw client's next IQ (skipping everything else).
func (c *rawClient) nextIQ(t *testing.T) element {
	t.Helper()
	for {
		e, err := c.next()
		if err != nil {
			t.Fatalf("waiting for an iq: %v", err)
		}
		if e.start.Name.Local == "iq" {
			return e
		}
	}
}

// isIQID matches IQs with the id.
func isIQID(id string) func(element) bool {
	return func(e element) bool { return e.start.Name.Local == "iq" && e.attr("id") == id }
}

// assertNoMoreIQ checks, after a round trip to the server, that c got no
// (further) IQ with id.
func assertNoMoreIQ(t *testing.T, c *testClient, id string) {
	t.Helper()
	c.IQ(t, `<iq type="get" id="sync-`+id+`"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if e, err := c.next(isIQID(id), 0); err == nil {
		t.Errorf("a second answer to %s: %s", id, e.start.Attr)
	}
}

// An IQ get to another user's full JID reaches that session with the
// sender's full JID, and its answer comes back from the target's full JID,
// once (dispatch's fallback does not answer it too).
func TestIQRelayAnswered(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	got := make(chan element, 8)
	bob := loginAnswering(t, ts, "bob", "bob password 1", got, func(e element) string {
		p, _ := e.payload()
		id, to := xmlEscape(e.attr("id")), xmlEscape(e.attr("from"))
		switch p.Name.Space {
		case "http://jabber.org/protocol/disco#info":
			return `<iq type="result" id="` + id + `" to="` + to + `"><query xmlns="http://jabber.org/protocol/disco#info"><identity category="client" type="pc" name="bob client"/><feature var="jabber:iq:version"/></query></iq>`
		case "jabber:iq:version":
			return `<iq type="result" id="` + id + `" to="` + to + `"><query xmlns="jabber:iq:version"><name>iqroute-test</name><version>1.0</version></query></iq>`
		}
		return ""
	})
	for _, tc := range []struct {
		name, id, query, want string
	}{
		{"disco#info", "d1", `<query xmlns="http://jabber.org/protocol/disco#info"/>`, "bob client"},
		{"version", "v1", `<query xmlns="jabber:iq:version"/>`, "iqroute-test"},
		{"unknown payload", "u1", `<query xmlns="urn:example:none"/>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.IQ(t, fmt.Sprintf(`<iq type="get" id="%s" to="%s">%s</iq>`, tc.id, bob, tc.query))
			in := <-got
			if in.attr("from") != a.JID.String() || in.attr("id") != tc.id {
				t.Errorf("bob got from=%q id=%q, want from=%q id=%q", in.attr("from"), in.attr("id"), a.JID, tc.id)
			}
			if resp.attr("from") != bob.String() {
				t.Errorf("answer from %q, want %q", resp.attr("from"), bob)
			}
			if tc.want == "" {
				// bob client answered service-unavailable itself.
				if resp.attr("type") != "error" || stanzaErrorCondition(resp) != "service-unavailable" {
					t.Errorf("answer %s %q, want bob's service-unavailable", resp.attr("type"), stanzaErrorCondition(resp))
				}
			} else {
				b, err := resp.bytes()
				if resp.attr("type") != "result" || err != nil || !strings.Contains(string(b), tc.want) {
					t.Errorf("answer %s (%v), want a result with %q", b, err, tc.want)
				}
			}
			assertNoMoreIQ(t, a, tc.id)
		})
	}
}

// Only the target's answer, to the requester, with the request's id goes
// through: a third party's forged result and the target's answers with
// other ids are dropped.
func TestIQRelayForgedAnswerDropped(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	ts.Register(t, "carol", "carol password")
	a := ts.Login(t, "alice", "alice password")
	c := ts.Login(t, "carol", "carol password")
	b := rawLogin(t, ts, "bob", "bob password 1", "raw")
	bob := "bob@localhost/raw"

	answer := make(chan element, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		d := clientXML(`<iq type="get" id="q1" to="` + bob + `"><query xmlns="jabber:iq:version"/></iq>`)
		resp, err := a.Session.SendIQ(ctx, d)
		if err != nil {
			answer <- element{}
			return
		}
		defer resp.Close()
		tok, _ := resp.Token()
		start, _ := tok.(xml.StartElement)
		e, _ := readElement(resp, start)
		answer <- e
	}()
	req := b.nextIQ(t)
	if req.attr("from") != a.JID.String() || req.attr("id") != "q1" {
		t.Fatalf("bob got from=%q id=%q", req.attr("from"), req.attr("id"))
	}
	// Carol forges bob's answer; carol's ping after it proves it was handled.
	c.Send(t, `<iq type="result" id="q1" to="`+a.JID.String()+`"><query xmlns="jabber:iq:version"><name>forged</name></query></iq>`)
	c.IQ(t, `<iq type="get" id="c-sync"><ping xmlns="urn:xmpp:ping"/></iq>`)
	// Bob answers an id alice never sent, then the real one.
	b.write(t, `<iq type="result" id="other" to="`+a.JID.String()+`"/>`)
	b.write(t, `<iq type="result" id="q1" to="`+a.JID.String()+`"><query xmlns="jabber:iq:version"><name>real</name></query></iq>`)
	resp := <-answer
	if resp.attr("from") != bob || resp.attr("type") != "result" {
		t.Fatalf("answer from=%q type=%q, want bob's result", resp.attr("from"), resp.attr("type"))
	}
	if b, _ := resp.bytes(); !strings.Contains(string(b), "real") {
		t.Errorf("answer %s, want bob's", b)
	}
	assertNoMoreIQ(t, a, "other")
	assertNoMoreIQ(t, a, "q1")
}

// An IQ to a full JID that is not connected is answered
// service-unavailable by the server (RFC 6121 § 8.5.3.1), the same for a
// user that does not exist.
func TestIQRelayOffline(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	_ = ts.Login(t, "bob", "bob password 1") // bob online, other resource
	for _, to := range []string{"bob@localhost/nothere", "nobody@localhost/r"} {
		resp := a.IQ(t, `<iq type="get" id="off" to="`+to+`"><query xmlns="jabber:iq:version"/></iq>`)
		if resp.attr("type") != "error" || stanzaErrorCondition(resp) != "service-unavailable" || resp.attr("from") != to {
			t.Errorf("%s: answer type=%q cond=%q from=%q, want service-unavailable from it", to, resp.attr("type"), stanzaErrorCondition(resp), resp.attr("from"))
		}
		assertNoMoreIQ(t, a, "off")
	}
}

// When the target's session ends with relayed IQs pending, each requester
// gets service-unavailable from the target's full JID; and a session holds
// at most maxRelayedIQs relayed IQs waiting, the next is refused with
// resource-constraint.
func TestIQRelayTargetGoneAndCap(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := rawLogin(t, ts, "bob", "bob password 1", "raw")
	bob := "bob@localhost/raw"
	for i := range maxRelayedIQs + 1 {
		a.Send(t, fmt.Sprintf(`<iq type="get" id="r%d" to="%s"><query xmlns="jabber:iq:version"/></iq>`, i, bob))
	}
	over := a.Next(t, isIQID(fmt.Sprint("r", maxRelayedIQs)))
	if c := stanzaErrorCondition(over); c != "resource-constraint" {
		t.Errorf("IQ over the cap: %q, want resource-constraint", c)
	}
	for range maxRelayedIQs {
		b.nextIQ(t) // all relayed, none answered
	}
	b.conn.Close() // bob's connection drops mid-request
	for i := range maxRelayedIQs {
		e := a.Next(t, isIQID(fmt.Sprint("r", i)))
		if e.attr("type") != "error" || stanzaErrorCondition(e) != "service-unavailable" || e.attr("from") != bob {
			t.Errorf("r%d: type=%q cond=%q from=%q, want service-unavailable from bob", i, e.attr("type"), stanzaErrorCondition(e), e.attr("from"))
		}
	}
	// The pending count was released: a new relay to a connected resource works again.
	b2 := rawLogin(t, ts, "bob", "bob password 1", "raw2")
	a.Send(t, `<iq type="get" id="again" to="bob@localhost/raw2"><query xmlns="jabber:iq:version"/></iq>`)
	if e := b2.nextIQ(t); e.attr("id") != "again" {
		t.Errorf("bob got %q, want again", e.attr("id"))
	}
}

// The relay table: an unanswered IQ times out once (onTimeout runs, the
// requester's count is released, a late answer matches nothing); an
// answer taken in time stops the timer; a duplicate id is refused; after
// close nothing more is accepted and what was pending is returned.
func TestRelayTable(t *testing.T) {
	req := &session{jid: jid.MustParse("alice@localhost/a")}
	rt := &relayTable{timeout: time.Millisecond}
	fired := make(chan struct{})
	if err := rt.add(req, "late", func() { close(fired) }); err != nil {
		t.Fatal(err)
	}
	<-fired
	if _, ok := rt.take(relayKey{requester: req.jid.String(), id: "late"}); ok {
		t.Error("a timed-out IQ still matched an answer")
	}
	if n := req.relayedOut.Load(); n != 0 {
		t.Errorf("pending count after timeout: %d", n)
	}

	rt.timeout = time.Hour
	if err := rt.add(req, "a", func() { t.Error("answered IQ timed out") }); err != nil {
		t.Fatal(err)
	}
	if err := rt.add(req, "a", func() {}); !errors.Is(err, errRelayPending) {
		t.Errorf("duplicate id: %v, want errRelayPending", err)
	}
	if _, ok := rt.take(relayKey{requester: "mallory@localhost/m", id: "a"}); ok {
		t.Error("an answer to another requester matched")
	}
	if got, ok := rt.take(relayKey{requester: req.jid.String(), id: "a"}); !ok || got != req {
		t.Error("the answer did not match")
	}
	if err := rt.add(req, "b", func() {}); err != nil {
		t.Fatal(err)
	}
	if left := rt.close(); len(left) != 1 || left[relayKey{requester: req.jid.String(), id: "b"}].requester != req {
		t.Errorf("close returned %v", left)
	}
	if err := rt.add(req, "c", func() {}); !errors.Is(err, errRelayClosed) {
		t.Errorf("add after close: %v, want errRelayClosed", err)
	}
	if n := req.relayedOut.Load(); n != 0 {
		t.Errorf("pending count at the end: %d", n)
	}
}
