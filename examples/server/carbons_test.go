package main

import (
	"encoding/xml"
	"fmt"
	"testing"

	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/stanza"
)

// enableCarbons switches carbons on (or off) for c.
func enableCarbons(t *testing.T, c *testClient, on bool) {
	t.Helper()
	op := "enable"
	if !on {
		op = "disable"
	}
	resp := c.IQ(t, fmt.Sprintf(`<iq type="set" id="carbons-%s"><%s xmlns="urn:xmpp:carbons:2"/></iq>`, op, op))
	if resp.attr("type") != "result" {
		t.Fatalf("carbons %s: %s", op, stanzaErrorCondition(resp))
	}
}

// carbonOf returns the kind ("sent" or "received") of a carbon copy and
// the forwarded message, or "" when e is none.
func carbonOf(e element) (string, element) {
	if e.start.Name.Local != "message" {
		return "", element{}
	}
	for _, kind := range []string{"sent", "received"} {
		k, ok := e.child(xml.Name{Space: carbons.NS, Local: kind})
		if !ok {
			continue
		}
		f, ok := k.child(xml.Name{Space: forward.NS, Local: "forwarded"})
		if !ok {
			return "", element{}
		}
		m, ok := f.child(xml.Name{Space: stanza.NSClient, Local: "message"})
		if !ok {
			return "", element{}
		}
		return kind, m
	}
	return "", element{}
}

func isCarbon(e element) bool { k, _ := carbonOf(e); return k != "" }

// TestCarbons: XEP-0280. A chat message sent by one resource is copied as
// <sent/> to the account's other carbons-enabled resources, one received by
// a resource as <received/> to the others that did not get it; <private/>
// and <no-copy/> are honoured, disable stops the copies, and the copies
// keep the stanza-id of the archive they belong to.
func TestCarbons(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	a1 := ts.Login(t, "alice", "alice pass 1")
	a2 := ts.Login(t, "alice", "alice pass 1")
	b1 := ts.Login(t, "bob", "bob pass 12")
	b2 := ts.Login(t, "bob", "bob pass 12")
	enableCarbons(t, a2, true)
	enableCarbons(t, b2, true)
	setPrefs(t, a1, "always") // alice archives: her sent copies carry her stanza-id

	// Disco advertises carbons on the server.
	info := a1.IQ(t, `<iq type="get" id="d1" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !hasFeature(info, carbons.NS) {
		t.Error("server disco#info lacks urn:xmpp:carbons:2")
	}

	// Sent: a1 → bob's bare JID. b1 and b2 get the message itself, a2 a
	// <sent/> copy with alice's stanza-id and none of bob's.
	a1.Send(t, `<message to="bob@localhost" type="chat" id="m1"><body>one</body></message>`)
	for _, b := range []*testClient{b1, b2} {
		if m := b.Next(t, isMessage); isCarbon(m) || body(m) != "one" {
			t.Fatalf("%s got %v, want the message itself", b.JID, m.start)
		}
	}
	c := a2.Next(t, isCarbon)
	kind, fwd := carbonOf(c)
	if kind != "sent" || body(fwd) != "one" || fwd.attr("from") != a1.JID.String() || fwd.attr("to") != "bob@localhost" {
		t.Fatalf("a2 got %s copy %v, want sent of one from a1", kind, fwd.start)
	}
	// (mellium's client reader blanks a from equal to its own bare JID.)
	if f := c.attr("from"); (f != "" && f != "alice@localhost") || c.attr("to") != a2.JID.String() {
		t.Errorf("carbon from %q to %q, want from the bare JID to a2", c.attr("from"), c.attr("to"))
	}
	if stanzaIDBy(fwd, "alice@localhost") == "" {
		t.Error("sent copy lacks the stanza-id of the sender's archive")
	}
	if stanzaIDBy(fwd, "bob@localhost") != "" {
		t.Error("sent copy carries the recipient's stanza-id")
	}

	// Received: a1 → b1's full JID; b2 gets a <received/> copy.
	a1.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="m2"><body>two</body></message>`, b1.JID))
	if m := b1.Next(t, isMessage); body(m) != "two" {
		t.Fatalf("b1 got %q", body(m))
	}
	kind, fwd = carbonOf(b2.Next(t, isCarbon))
	if kind != "received" || body(fwd) != "two" || fwd.attr("from") != a1.JID.String() {
		t.Fatalf("b2 got %s copy of %q, want received of two", kind, body(fwd))
	}
	if kind, fwd = carbonOf(a2.Next(t, isCarbon)); kind != "sent" || body(fwd) != "two" {
		t.Fatalf("a2 got %s copy of %q, want sent of two", kind, body(fwd))
	}

	// <private/> and <no-copy/>: no copies. The next copy each side gets
	// is that of the message after them (each session's queue is FIFO).
	a1.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>private</body><private xmlns="urn:xmpp:carbons:2"/></message>`, b1.JID))
	a1.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>no-copy</body><no-copy xmlns="urn:xmpp:hints"/></message>`, b1.JID))
	a1.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>three</body></message>`, b1.JID))
	for _, want := range []string{"private", "no-copy", "three"} {
		if m := b1.Next(t, isMessage); body(m) != want {
			t.Fatalf("b1 got %q, want %q", body(m), want)
		}
	}
	for _, c := range []*testClient{a2, b2} {
		if _, fwd := carbonOf(c.Next(t, isCarbon)); body(fwd) != "three" {
			t.Fatalf("%s: next copy is of %q, want three (private and no-copy were copied)", c.JID, body(fwd))
		}
	}

	// Disable: a2 gets no copy of "four"; the marker sent after it to a2
	// arrives first.
	enableCarbons(t, a2, false)
	a1.Send(t, `<message to="bob@localhost" type="chat"><body>four</body></message>`)
	a1.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>marker</body></message>`, a2.JID))
	if m := a2.Next(t, isMessage); isCarbon(m) || body(m) != "marker" {
		t.Fatalf("a2 got %v %q after disable, want the marker", m.start.Name, body(m))
	}

	// A type the spec does not copy (headline) and an IQ get of carbons
	// (bad-request).
	if resp := a1.IQ(t, `<iq type="get" id="cg"><enable xmlns="urn:xmpp:carbons:2"/></iq>`); stanzaErrorCondition(resp) != "bad-request" {
		t.Errorf("carbons get: %v %s, want bad-request", resp.attr("type"), stanzaErrorCondition(resp))
	}
}

// TestCarbonEligible is the XEP-0280 § 6 table.
func TestCarbonEligible(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want bool
	}{
		{`<message type="chat"><body>x</body></message>`, true},
		{`<message type="chat"/>`, true}, // chat states
		{`<message><body>x</body></message>`, true},
		{`<message type="normal"><body>x</body></message>`, true},
		{`<message type="normal"/>`, false},
		{`<message type="headline"><body>x</body></message>`, false},
		{`<message type="groupchat"><body>x</body></message>`, false},
		{`<message type="error"><body>x</body></message>`, false},
		{`<message type="chat"><body>x</body><private xmlns="urn:xmpp:carbons:2"/></message>`, false},
		{`<message type="chat"><body>x</body><no-copy xmlns="urn:xmpp:hints"/></message>`, false},
		{`<message type="chat"><sent xmlns="urn:xmpp:carbons:2"/></message>`, false},
		{`<message type="chat"><received xmlns="urn:xmpp:carbons:2"/></message>`, false},
		{`<message type="chat"><x><private xmlns="urn:xmpp:carbons:2"/></x></message>`, true}, // only direct children count
	} {
		e, err := parseElement([]byte(`<r xmlns="jabber:client">` + tc.xml + `</r>`))
		if err != nil {
			t.Fatal(err)
		}
		m := e.children()[0]
		if got := carbonEligible(m); got != tc.want {
			t.Errorf("%s: eligible %v, want %v", tc.xml, got, tc.want)
		}
	}
}

// hasFeature reports whether a disco#info result lists feature.
func hasFeature(info element, feature string) bool {
	q, _ := info.child(xml.Name{Space: "http://jabber.org/protocol/disco#info", Local: "query"})
	for _, f := range q.children() {
		if f.start.Name.Local == "feature" && f.attr("var") == feature {
			return true
		}
	}
	return false
}
