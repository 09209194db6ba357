package main

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// online makes c an interested resource (roster get) and an available one
// (initial presence), and waits for its own presence to come back.
func online(t *testing.T, c *testClient) {
	t.Helper()
	rosterOf(t, c)
	c.Send(t, `<presence/>`)
	c.Next(t, isPresence(c.JID.String(), ""))
}

// rosterOf returns c's roster items by JID (a roster get).
func rosterOf(t *testing.T, c *testClient) map[string]element {
	t.Helper()
	resp := c.IQ(t, `<iq type="get" id="roster-get"><query xmlns="jabber:iq:roster"/></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("roster get: %s", stanzaErrorCondition(resp))
	}
	out := make(map[string]element)
	q, _ := resp.child(xml.Name{Space: "jabber:iq:roster", Local: "query"})
	for _, it := range q.children() {
		out[it.attr("jid")] = it
	}
	return out
}

// isPresence matches presence from (a full or bare JID) of type typ.
func isPresence(from, typ string) func(element) bool {
	return func(e element) bool {
		return e.start.Name.Local == "presence" && e.attr("from") == from && e.attr("type") == typ
	}
}

// isPresenceFromUser matches presence of type typ from any resource of the
// bare JID user.
func isPresenceFromUser(user, typ string) func(element) bool {
	return func(e element) bool {
		return e.start.Name.Local == "presence" && strings.HasPrefix(e.attr("from"), user+"/") && e.attr("type") == typ
	}
}

// isPush matches a roster push for contact whose item reads sub (and ask
// "subscribe" when ask).
func isPush(contact, sub string, ask bool) func(element) bool {
	return func(e element) bool {
		if e.start.Name.Local != "iq" || e.attr("type") != "set" {
			return false
		}
		q, ok := e.child(xml.Name{Space: "jabber:iq:roster", Local: "query"})
		if !ok {
			return false
		}
		for _, it := range q.children() {
			if it.attr("jid") == contact && it.attr("subscription") == sub && (it.attr("ask") == "subscribe") == ask {
				return true
			}
		}
		return false
	}
}

// itemState is "sub" or "sub+ask" (or "absent") for c's item for contact.
func itemState(t *testing.T, c *testClient, contact string) string {
	t.Helper()
	it, ok := rosterOf(t, c)[contact]
	switch {
	case !ok:
		return "absent"
	case it.attr("ask") == "subscribe":
		return it.attr("subscription") + "+ask"
	case it.attr("approved") == "true":
		return it.attr("subscription") + "+approved"
	}
	return it.attr("subscription")
}

// nothingFrom fails if c has a stanza matching match queued; sync is a
// stanza c waits for first, sent after whatever must not arrive.
func nothingFrom(t *testing.T, c *testClient, sync, match func(element) bool, what string) {
	t.Helper()
	c.Next(t, sync)
	if e, err := c.next(match, 0); err == nil {
		raw, _ := e.bytes()
		t.Errorf("%s: %s", what, raw)
	}
}

// subscribeTo: a asks for b's presence and b approves; both online.
func subscribeTo(t *testing.T, a, b *testClient) {
	t.Helper()
	ab, bb := a.JID.Bare().String(), b.JID.Bare().String()
	a.Send(t, `<presence to="`+bb+`" type="subscribe"/>`)
	b.Next(t, isPresence(ab, "subscribe"))
	b.Send(t, `<presence to="`+ab+`" type="subscribed"/>`)
	a.Next(t, isPresence(bb, "subscribed"))
	a.Next(t, isPresence(b.JID.String(), "")) // b's current presence
}

type subWorld struct {
	ts         *testServer
	alice, bob *testClient
}

func newSubWorld(t *testing.T) subWorld {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	w := subWorld{ts: ts, alice: ts.Login(t, "alice", "alice password"), bob: ts.Login(t, "bob", "bob password 1")}
	online(t, w.alice)
	online(t, w.bob)
	return w
}

// TestSubscriptions: RFC 6121 § 3 scenarios between two online users, each
// checking both rosters, the pushes and who gets whose presence.
func TestSubscriptions(t *testing.T) {
	const A, B = "alice@localhost", "bob@localhost"
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, w subWorld)
	}{
		{"subscribe and approve (§ 3.1)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			a.Send(t, `<presence to="bob@localhost" type="subscribe"><status>hi, Alice here</status></presence>`)
			a.Next(t, isPush(B, "none", true))
			req := b.Next(t, isPresence(A, "subscribe"))
			if st, _ := req.child(xml.Name{Space: "jabber:client", Local: "status"}); st.text() != "hi, Alice here" {
				t.Errorf("live request lost its status: %q", st.text())
			}
			if got := itemState(t, b, A); got != "absent" {
				t.Errorf("bob's item before answering: %s", got)
			}
			b.Send(t, `<presence to="alice@localhost" type="subscribed"/>`)
			b.Next(t, isPush(A, "from", false))
			a.Next(t, isPush(B, "to", false))
			a.Next(t, isPresence(B, "subscribed"))
			a.Next(t, isPresence(b.JID.String(), "")) // bob's current presence at once
			// bob's presence reaches alice; alice's does not reach bob.
			b.Send(t, `<presence><status>bob busy</status></presence>`)
			a.Next(t, isPresence(b.JID.String(), ""))
			a.Send(t, `<presence><status>alice private</status></presence>`)
			a.Send(t, `<message to="bob@localhost" type="chat"><body>sync</body></message>`)
			nothingFrom(t, b, isMessage, isPresence(a.JID.String(), ""), "alice's presence reached bob, who has no subscription")
			if w.ts.sharesPresenceWith(b.JID, a.JID) != true || w.ts.sharesPresenceWith(a.JID, b.JID) != false {
				t.Error("sharesPresenceWith disagrees with the rosters")
			}
		}},
		{"mutual subscription is both", func(t *testing.T, w subWorld) {
			subscribeTo(t, w.alice, w.bob)
			subscribeTo(t, w.bob, w.alice)
			if a, b := itemState(t, w.alice, B), itemState(t, w.bob, A); a != "both" || b != "both" {
				t.Errorf("alice %s, bob %s; want both", a, b)
			}
		}},
		{"deny (§ 3.2.1)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			a.Send(t, `<presence to="bob@localhost" type="subscribe"/>`)
			b.Next(t, isPresence(A, "subscribe"))
			b.Send(t, `<presence to="alice@localhost" type="unsubscribed"/>`)
			a.Next(t, isPush(B, "none", false))
			a.Next(t, isPresence(B, "unsubscribed"))
			if reqs, _, _ := w.ts.store.pendingRequests("bob"); len(reqs) != 0 {
				t.Errorf("request still pending after the denial: %v", reqs)
			}
		}},
		{"cancel a subscription (§ 3.2)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			subscribeTo(t, a, b)
			b.Send(t, `<presence to="alice@localhost" type="unsubscribed"/>`)
			a.Next(t, isPresence(b.JID.String(), "unavailable"))
			a.Next(t, isPresence(B, "unsubscribed"))
			if got := itemState(t, a, B); got != "none" {
				t.Errorf("alice's item: %s", got)
			}
			if got := itemState(t, b, A); got != "none" {
				t.Errorf("bob's item: %s", got)
			}
		}},
		{"unsubscribe (§ 3.3)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			subscribeTo(t, a, b)
			a.Send(t, `<presence to="bob@localhost" type="unsubscribe"/>`)
			a.Next(t, isPush(B, "none", false))
			a.Next(t, isPresence(b.JID.String(), "unavailable"))
			b.Next(t, isPresence(A, "unsubscribe"))
			b.Next(t, isPush(A, "none", false))
		}},
		{"pre-approval (§ 3.4)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			b.Send(t, `<presence to="alice@localhost" type="subscribed"/>`)
			b.Next(t, func(e element) bool { return isPush(A, "none", false)(e) })
			if got := itemState(t, b, A); got != "none+approved" {
				t.Fatalf("bob's item after pre-approval: %s", got)
			}
			a.Send(t, `<presence to="bob@localhost" type="subscribe"/>`)
			a.Next(t, isPresence(B, "subscribed"))
			a.Next(t, isPresence(b.JID.String(), ""))
			if got := itemState(t, b, A); got != "from" {
				t.Errorf("bob's item after the request: %s", got)
			}
		}},
		{"roster remove cancels both ways (§ 2.5.2)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			subscribeTo(t, a, b)
			subscribeTo(t, b, a)
			a.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:roster"><item jid="bob@localhost" subscription="remove"/></query></iq>`)
			a.Next(t, isPush(B, "remove", false))
			b.Next(t, isPresence(A, "unsubscribe"))
			b.Next(t, isPresence(A, "unsubscribed"))
			b.Next(t, isPresence(a.JID.String(), "unavailable"))
			if got := itemState(t, b, A); got != "none" {
				t.Errorf("bob's item: %s", got)
			}
		}},
		{"probes and own resources on initial presence (§ 4.2)", func(t *testing.T, w subWorld) {
			subscribeTo(t, w.alice, w.bob)
			a2 := w.ts.Login(t, "alice", "alice password")
			a2.Send(t, `<presence/>`)
			a2.Next(t, isPresence(w.bob.JID.String(), ""))   // contact with "to"
			a2.Next(t, isPresence(w.alice.JID.String(), "")) // own other resource
			w.alice.Next(t, isPresence(a2.JID.String(), ""))
			// bob has no subscription to alice: a2's presence stays away.
			w.alice.Send(t, `<message to="bob@localhost" type="chat"><body>sync</body></message>`)
			nothingFrom(t, w.bob, isMessage, isPresence(a2.JID.String(), ""), "a2's presence reached bob")
		}},
		{"directed presence, unavailable on going offline (§ 4.6)", func(t *testing.T, w subWorld) {
			a, b := w.alice, w.bob
			a.Send(t, `<presence to="`+b.JID.String()+`"><status>just for you</status></presence>`)
			b.Next(t, isPresence(a.JID.String(), ""))
			a.Send(t, `<presence type="unavailable"/>`)
			b.Next(t, isPresence(a.JID.String(), "unavailable"))
		}},
		{"pushes only to interested resources (§ 2.1.6)", func(t *testing.T, w subWorld) {
			quiet := w.ts.Login(t, "alice", "alice password") // never asks for the roster
			w.alice.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster"><item jid="carol@localhost"/></query></iq>`)
			w.alice.Next(t, isPush("carol@localhost", "none", false))
			w.bob.Send(t, `<message to="`+quiet.JID.String()+`" type="chat"><body>sync</body></message>`)
			nothingFrom(t, quiet, isMessage, isPush("carol@localhost", "none", false), "push to a resource that never asked for the roster")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newSubWorld(t)) })
	}
}

// TestSubscriptionRequestOffline: a request to a user who is offline is
// stored and delivered at each initial presence until answered; it is in
// the export; answering removes it.
func TestSubscriptionRequestOffline(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	online(t, a)
	a.Send(t, `<presence to="bob@localhost" type="subscribe"/>`)
	a.Next(t, isPush("bob@localhost", "none", true))
	// Not yet answered: delivered at every initial presence.
	for range 2 {
		b := ts.Login(t, "bob", "bob password 1")
		b.Send(t, `<presence/>`)
		b.Next(t, isPresence("alice@localhost", "subscribe"))
		b.Close()
	}
	files := exportZip(t, ts, "bob", "bob password 1")
	if !strings.Contains(files["subscriptions.xml"], `<pending-in jid="alice@localhost"`) {
		t.Errorf("bob's export lacks the pending request:\n%s", files["subscriptions.xml"])
	}
	if !strings.Contains(exportZip(t, ts, "alice", "alice password")["subscriptions.xml"], `<pending-out jid="bob@localhost"`) {
		t.Error("alice's export lacks her pending request")
	}
	b := ts.Login(t, "bob", "bob password 1")
	online(t, b)
	b.Next(t, isPresence("alice@localhost", "subscribe"))
	b.Send(t, `<presence to="alice@localhost" type="subscribed"/>`)
	a.Next(t, isPush("bob@localhost", "to", false))
	a.Next(t, isPresence(b.JID.String(), ""))
	b2 := ts.Login(t, "bob", "bob password 1")
	b2.Send(t, `<presence/>`)
	b2.Send(t, `<iq type="get" id="sync" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	nothingFrom(t, b2, func(e element) bool { return e.attr("id") == "sync" }, isPresence("alice@localhost", "subscribe"), "answered request delivered again")
}

// TestSubscriptionToNobody: a request to a name without an account is
// dropped without an answer (as one nobody answers) and nothing is stored.
func TestSubscriptionToNobody(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	online(t, a)
	a.Send(t, `<presence to="ghost@localhost" type="subscribe"/>`)
	a.Next(t, isPush("ghost@localhost", "none", true))
	if reqs, _, _ := ts.store.pendingRequests("ghost"); len(reqs) != 0 {
		t.Errorf("request stored for a name without an account: %v", reqs)
	}
}

// TestPendingSubscriptionsBounded: a user keeps at most
// maxPendingSubscriptions requests; a new one drops the oldest, from the
// requester's index too.
func TestPendingSubscriptionsBounded(t *testing.T) {
	ts := startTestServer(t)
	bob := jid.MustParse("bob@localhost")
	req := func(i int) jid.JID { return jid.MustParse("u" + strconv.Itoa(i) + "@localhost") }
	for i := range maxPendingSubscriptions + 1 {
		err := ts.subUpdate(func(x *subTx) error { return x.addPending(bob, req(i)) })
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs, _, err := ts.store.pendingRequests("bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != maxPendingSubscriptions {
		t.Fatalf("%d pending, want %d", len(reqs), maxPendingSubscriptions)
	}
	for _, r := range reqs {
		if r.Equal(req(0)) {
			t.Error("the oldest request was kept")
		}
	}
	if !reqs[len(reqs)-1].Equal(req(maxPendingSubscriptions)) {
		t.Errorf("newest request missing: last is %v", reqs[len(reqs)-1])
	}
	_ = ts.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSubPendingBy).Bucket([]byte("u0")); b != nil && b.Get([]byte("bob")) != nil {
			t.Error("the dropped request is still in its requester's index")
		}
		return nil
	})
}

// TestSubscriptionDataErased: deleting an account erases the requests it
// received and sent, and sets its contacts' items to subscription none.
func TestSubscriptionDataErased(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password 1")
	}
	a := ts.Login(t, "alice", "alice password 1")
	b := ts.Login(t, "bob", "bob password 1")
	online(t, a)
	online(t, b)
	subscribeTo(t, b, a)                                                     // bob sees alice: bob "to", alice "from"
	a.Send(t, `<presence to="carol@localhost" type="subscribe"/>`)           // pending at carol
	c := ts.Login(t, "carol", "carol password 1")                            //
	c.Send(t, `<presence to="alice@localhost" type="subscribe"/>`)           // pending at alice
	a.Next(t, isPresence("carol@localhost", "subscribe"))                    //
	if err := ts.manager.Delete(context.Background(), "alice"); err != nil { // (ends no session: a direct Delete)
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "carol"} {
		if reqs, _, _ := ts.store.pendingRequests(u); len(reqs) != 0 {
			t.Errorf("%s still has requests: %v", u, reqs)
		}
	}
	_ = ts.db.View(func(tx *bolt.Tx) error {
		for _, k := range []string{"alice", "carol"} {
			if b := tx.Bucket(bucketSubPendingBy).Bucket([]byte(k)); b != nil && b.Stats().KeyN > 0 {
				t.Errorf("requester index of %s left", k)
			}
		}
		return nil
	})
	if it, ok := ts.store.rosterItem("bob", "alice@localhost"); !ok || it.Sub != "" || it.Ask {
		t.Errorf("bob's item for the deleted alice: %+v", it)
	}
	b.Next(t, isPush("alice@localhost", "none", false))
}

// TestDeletionTellsContacts: when alice deletes her account, bob (both
// ways subscribed) sees her go unavailable and gets unsubscribe and
// unsubscribed from her bare JID before her data is erased; his roster
// item for her is left with subscription none.
func TestDeletionTellsContacts(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	online(t, a)
	online(t, b)
	subscribeTo(t, a, b)
	subscribeTo(t, b, a)
	rosterOf(t, b) // bob gets roster pushes
	a.Send(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	b.Next(t, isPresence(a.JID.String(), "unavailable"))
	b.Next(t, isPresence("alice@localhost", "unsubscribe"))
	b.Next(t, isPresence("alice@localhost", "unsubscribed"))
	if it, ok := ts.store.rosterItem("bob", "alice@localhost"); ok && (it.Sub != "" || it.Ask) {
		t.Errorf("bob's item for alice after her deletion: %+v", it)
	}
}
