package main

import (
	"encoding/xml"
	"net"
	"net/netip"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// TestServerIQs: the answer to a server-originated IQ is taken only from
// the session it went to, with its id, addressed to the server; a wait
// ends with no answer on timeout or when the session ends; a session has
// at most maxServerIQs waiting.
func TestServerIQs(t *testing.T) {
	t.Parallel()
	srv := newOfflineServer(t)
	newSess := func(j string) *session {
		conn, peer := net.Pipe()
		t.Cleanup(func() { conn.Close(); peer.Close() })
		s := newSession(srv, conn, netip.MustParseAddr("192.0.2.7"))
		s.jid = jid.MustParse(j)
		return s
	}
	a, b := newSess("alice@localhost/a"), newSess("bob@localhost/b")
	q := &serverIQs{timeout: time.Hour}
	type answer struct {
		e  element
		ok bool
	}
	got := make(chan answer, 16)
	cb := func(e element, ok bool) { got <- answer{e, ok} }
	p := xml.StartElement{Name: xml.Name{Space: "urn:example", Local: "q"}}
	if !q.request(a, []xml.Token{p, p.End()}, cb) {
		t.Fatal("request refused")
	}
	<-a.out.ready
	sent, _ := a.out.pop()
	id := sent.attr("id")
	if sent.attr("to") != "alice@localhost/a" || sent.attr("from") != "localhost" || sent.attr("type") != "get" {
		t.Fatalf("sent %v", sent.start.Attr)
	}
	res := func(id, to string) element {
		return element{start: xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
			attr("type", "result"), attr("id", id), attr("to", to)}}}
	}
	if q.answer(b, res(id, "localhost")) {
		t.Error("an answer from another session was taken")
	}
	if q.answer(a, res("other", "localhost")) {
		t.Error("an answer with another id was taken")
	}
	if q.answer(a, res(id, "bob@localhost")) {
		t.Error("an answer to someone else was taken")
	}
	if !q.answer(a, res(id, "localhost")) {
		t.Fatal("the answer was not taken")
	}
	if r := <-got; !r.ok || r.e.attr("id") != id {
		t.Errorf("callback %v %v", r.ok, r.e.start.Attr)
	}
	if q.answer(a, res(id, "localhost")) {
		t.Error("a second answer was taken")
	}

	for range maxServerIQs {
		if !q.request(a, nil, cb) {
			t.Fatal("request under the cap refused")
		}
	}
	if q.request(a, nil, cb) {
		t.Error("request over the cap accepted")
	}
	q.drop(a)
	for range maxServerIQs {
		if r := <-got; r.ok {
			t.Error("a dropped wait got an answer")
		}
	}

	q.timeout = time.Millisecond
	q.request(b, nil, cb)
	if r := <-got; r.ok {
		t.Error("a timed-out wait got an answer")
	}
}
