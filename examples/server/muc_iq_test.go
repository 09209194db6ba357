package main

import (
	"bytes"
	"testing"
)

// TestRoomOccupantIQ: an occupant's IQ to another occupant's JID reaches
// that occupant's session from the sender's occupant JID, and the answer
// comes back from the target's occupant JID; neither sees the other's real
// JID in a semi-anonymous room. Non-occupants get not-acceptable, unknown
// nicks item-not-found; an answer from anyone else is dropped; a target
// whose session ends answers service-unavailable from its occupant JID.
func TestRoomOccupantIQ(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "carol")
	a, c := cl[0], cl[1]
	const room = "iqs@conference.localhost"
	joinRoom(t, a, room+"/Al")
	// Bob answers IQs himself: a raw client (a mellium client's handler
	// would answer first).
	ts.Register(t, "bob", "bob password")
	b := rawLogin(t, ts, "bob", "bob password", "raw")
	b.write(t, `<presence to="`+room+`/Bob"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	a.Next(t, mucPresence(room+"/Bob", ""))
	isIQ := func(id string) func(element) bool {
		return func(e element) bool { return e.start.Name.Local == "iq" && e.attr("id") == id }
	}

	a.Send(t, `<iq type="get" id="v1" to="`+room+`/Bob"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	req := b.nextIQ(t)
	if req.attr("id") != "v1" || req.attr("from") != room+"/Al" || req.attr("to") != "bob@localhost/raw" {
		t.Errorf("relayed IQ from %q to %q", req.attr("from"), req.attr("to"))
	}
	if raw := mustBytes(req.bytes()); bytes.Contains(raw, []byte("alice@")) {
		t.Errorf("the request shows alice's real JID: %s", raw)
	}
	// Someone else's forged answer is dropped; bob's goes through.
	c.Send(t, `<iq type="result" id="v1" to="`+room+`/Al"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="forged"/></query></iq>`)
	b.write(t, `<iq type="result" id="v1" to="`+room+`/Al"><query xmlns="http://jabber.org/protocol/disco#info"><feature var="urn:xmpp:ping"/></query></iq>`)
	ans := a.Next(t, isIQ("v1"))
	raw := mustBytes(ans.bytes())
	if ans.attr("type") != "result" || ans.attr("from") != room+"/Bob" || !bytes.Contains(raw, []byte("urn:xmpp:ping")) {
		t.Errorf("answer: %s", raw)
	}
	if bytes.Contains(raw, []byte("bob@")) || bytes.Contains(raw, []byte("forged")) {
		t.Errorf("answer shows bob's real JID or the forgery: %s", raw)
	}

	for _, tc := range []struct {
		who  *testClient
		to   string
		want string
	}{
		{c, room + "/Bob", "not-acceptable"},
		{a, room + "/Nobody", "item-not-found"},
		{a, "none@conference.localhost/X", "item-not-found"},
	} {
		if r := tc.who.IQ(t, `<iq type="get" id="x" to="`+tc.to+`"><ping xmlns="urn:xmpp:ping"/></iq>`); stanzaErrorCondition(r) != tc.want {
			t.Errorf("IQ to %s: %q, want %q", tc.to, stanzaErrorCondition(r), tc.want)
		}
	}

	// The target's session ends before it answers.
	a.Send(t, `<iq type="get" id="v2" to="`+room+`/Bob"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if e := b.nextIQ(t); e.attr("id") != "v2" {
		t.Fatalf("bob got %q", e.attr("id"))
	}
	b.conn.Close()
	e := a.Next(t, isIQ("v2"))
	if stanzaErrorCondition(e) != "service-unavailable" || e.attr("from") != room+"/Bob" {
		t.Errorf("after bob left: %q from %q", stanzaErrorCondition(e), e.attr("from"))
	}
}
