package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"
)

// blocklistOf returns c's blocklist (a blocklist get).
func blocklistOf(t *testing.T, c *testClient) []string {
	t.Helper()
	resp := c.IQ(t, `<iq type="get" id="bl"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("blocklist get: %s", stanzaErrorCondition(resp))
	}
	l, _ := resp.child(xml.Name{Space: nsBlocking, Local: "blocklist"})
	var out []string
	for _, it := range l.children() {
		out = append(out, it.attr("jid"))
	}
	return out
}

// isBlockPush matches a block or unblock push naming j ("" matches an
// unblock-all push with no item).
func isBlockPush(name, j string) func(element) bool {
	return func(e element) bool {
		if e.start.Name.Local != "iq" || e.attr("type") != "set" {
			return false
		}
		p, ok := e.child(xml.Name{Space: nsBlocking, Local: name})
		if !ok {
			return false
		}
		items := p.children()
		if j == "" {
			return len(items) == 0
		}
		for _, it := range items {
			if it.attr("jid") == j {
				return true
			}
		}
		return false
	}
}

// TestBlocking: XEP-0191 both ways. After alice blocks bob (with a
// XEP-0377 report): her interested resources get the push, bob sees her
// go offline, bob's messages and IQs to her get service-unavailable and
// are not delivered, his presence does not reach her, her stanzas to him
// are refused not-acceptable with <blocked/>; the report is one more in
// alice's count and the operator's total, with no JID or text kept.
// Unblocking restores delivery.
func TestBlocking(t *testing.T) {
	log := &syncBuffer{}
	ts := startTestServer(t, withConfig(func(c *Config) { c.Stderr = log }))
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	online(t, a)
	online(t, b)
	subscribeTo(t, a, b)
	subscribeTo(t, b, a)
	if l := blocklistOf(t, a2); len(l) != 0 {
		t.Fatalf("new blocklist: %v", l)
	}

	resp := a.IQ(t, `<iq type="set" id="blk"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"><report xmlns="urn:xmpp:reporting:1" reason="urn:xmpp:reporting:spam"><text>Spam-Text-q81z</text></report></item></block></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("block: %s", stanzaErrorCondition(resp))
	}
	a2.Next(t, isBlockPush("block", "bob@localhost"))
	b.Next(t, isPresence(a.JID.String(), "unavailable"))
	if l := blocklistOf(t, a); fmt.Sprint(l) != "[bob@localhost]" {
		t.Errorf("blocklist: %v", l)
	}

	// bob → alice: dropped; message and IQ get service-unavailable.
	b.Send(t, `<message to="alice@localhost" type="chat" id="m1"><body>blocked-body</body></message>`)
	if e := b.Next(t, func(e element) bool { return e.attr("id") == "m1" }); stanzaErrorCondition(e) != "service-unavailable" {
		t.Errorf("bob's message: %q", stanzaErrorCondition(e))
	}
	if e := b.IQ(t, `<iq type="get" id="v" to="`+a.JID.String()+`"><query xmlns="jabber:iq:version"/></iq>`); stanzaErrorCondition(e) != "service-unavailable" {
		t.Errorf("bob's IQ: %q", stanzaErrorCondition(e))
	}
	b.Send(t, `<presence><status>bob-status</status></presence>`)
	b.IQ(t, `<iq type="get" id="sync" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`) // bob's presence handled
	a2.Send(t, `<message to="`+a.JID.String()+`" type="chat"><body>sync-a</body></message>`)
	nothingFrom(t, a, isMessage, isPresenceFromUser("bob@localhost", ""), "bob's presence reached alice, who blocks him")
	// alice → bob: refused with <blocked/>.
	resp = a.IQ(t, `<iq type="get" id="v2" to="`+b.JID.String()+`"><query xmlns="jabber:iq:version"/></iq>`)
	if raw, _ := resp.bytes(); stanzaErrorCondition(resp) != "not-acceptable" || !strings.Contains(string(raw), nsBlockingErrors) {
		t.Errorf("alice's IQ to bob: %s", raw)
	}
	a.Send(t, `<message to="bob@localhost" type="chat" id="m2"><body>to bob</body></message>`)
	if e := a.Next(t, func(e element) bool { return e.attr("id") == "m2" }); stanzaErrorCondition(e) != "not-acceptable" {
		t.Errorf("alice's message to bob: %q", stanzaErrorCondition(e))
	}
	if e, err := a.next(isMessage, 0); err == nil {
		raw, _ := e.bytes()
		t.Errorf("a message of bob reached alice: %s", raw)
	}
	if e, err := b.next(func(e element) bool { return isMessage(e) }, 0); err == nil {
		raw, _ := e.bytes()
		t.Errorf("alice's message reached bob: %s", raw)
	}
	if ts.sharesPresenceWith(a.JID, b.JID) {
		t.Error("sharesPresenceWith: alice shares with bob, whom she blocks")
	}

	// The report: a number only.
	if n := ts.store.reportCount("alice"); n != 1 {
		t.Errorf("alice's report count %d, want 1", n)
	}
	if !strings.Contains(log.String(), "spam reports received") {
		t.Errorf("the operator log has no report count:\n%s", log.String())
	}
	files := exportZip(t, ts, "alice", "alice password")
	exp := files["blocking.xml"]
	if !strings.Contains(exp, `<item jid="bob@localhost">`) || !strings.Contains(exp, "<spam-reports-sent>1</spam-reports-sent>") {
		t.Errorf("blocking export:\n%s", exp)
	}
	if found := scanDir(t, ts.DataDir, "Spam-Text-q81z"); len(found) > 0 {
		t.Errorf("the report's text was stored: %v", found)
	}

	// Unblock: delivery again.
	resp = a.IQ(t, `<iq type="set" id="ub"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></unblock></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("unblock: %s", stanzaErrorCondition(resp))
	}
	a2.Next(t, isBlockPush("unblock", "bob@localhost"))
	b.Next(t, isPresence(a.JID.String(), "")) // bob may see alice again
	b.Send(t, `<message to="`+a.JID.String()+`" type="chat"><body>after unblock</body></message>`)
	if m := a.Next(t, isMessage); body(m) != "after unblock" {
		t.Errorf("after unblock alice got %q", body(m))
	}
}

// TestDiscoBlocking: the server advertises blocking and reporting, where
// Conversations and Dino look for them.
func TestDiscoBlocking(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	raw, _ := a.IQ(t, `<iq type="get" id="d" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`).bytes()
	for _, f := range []string{nsBlocking, nsReporting} {
		if !strings.Contains(string(raw), `var="`+f+`"`) {
			t.Errorf("server disco lacks %s: %s", f, raw)
		}
	}
}

// TestBlockingForms: domain and full-JID items match as XEP-0191 says,
// unblock without items empties the list, and malformed requests are
// refused.
func TestBlockingForms(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	for _, tc := range []struct{ payload, cond string }{
		{`<block xmlns="urn:xmpp:blocking"/>`, "bad-request"},
		{`<block xmlns="urn:xmpp:blocking"><item jid="@@"/></block>`, "jid-malformed"},
		{`<block xmlns="urn:xmpp:blocking"><item/></block>`, "jid-malformed"},
	} {
		if r := a.IQ(t, `<iq type="set" id="x">`+tc.payload+`</iq>`); stanzaErrorCondition(r) != tc.cond {
			t.Errorf("%s: %q, want %s", tc.payload, stanzaErrorCondition(r), tc.cond)
		}
	}
	a.IQ(t, `<iq type="set" id="b"><block xmlns="urn:xmpp:blocking"><item jid="example.org"/><item jid="mallory@localhost/phone"/></block></iq>`)
	alice := jid.MustParse("alice@localhost")
	for j, want := range map[string]bool{
		"eve@example.org/x":       true,
		"example.org":             true,
		"mallory@localhost/phone": true,
		"mallory@localhost/pc":    false,
		"mallory@localhost":       false,
	} {
		if got := ts.blocks(alice, jid.MustParse(j)); got != want {
			t.Errorf("blocks %s: %v, want %v", j, got, want)
		}
	}
	a.IQ(t, `<iq type="set" id="u"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
	if l := blocklistOf(t, a); len(l) != 0 {
		t.Errorf("after unblock-all: %v", l)
	}
}

// TestBlockDropsPendingRequest: blocking a JID drops its pending
// subscription request (the user could not answer it any more), from the
// requester's index too; a new request from it is dropped.
func TestBlockDropsPendingRequest(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	b := ts.Login(t, "bob", "bob password 1")
	b.Send(t, `<presence to="alice@localhost" type="subscribe"/>`)
	b.IQ(t, `<iq type="get" id="sync" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if reqs, _, _ := ts.store.pendingRequests("alice"); len(reqs) != 1 {
		t.Fatalf("pending before the block: %v", reqs)
	}
	a := ts.Login(t, "alice", "alice password")
	a.IQ(t, `<iq type="set" id="b"><block xmlns="urn:xmpp:blocking"><item jid="bob@localhost"/></block></iq>`)
	b.Send(t, `<presence to="alice@localhost" type="subscribe"/>`)
	b.IQ(t, `<iq type="get" id="sync2" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if reqs, _, _ := ts.store.pendingRequests("alice"); len(reqs) != 0 {
		t.Errorf("pending after the block: %v", reqs)
	}
	if out := exportZip(t, ts, "bob", "bob password 1")["subscriptions.xml"]; strings.Contains(out, "pending-out") {
		t.Errorf("bob's index still names the dropped request:\n%s", out)
	}
}

// TestBlocklistLimit: a block beyond maxBlocklistItems is refused whole
// (resource-constraint, cancel); blocking a JID already listed still works.
func TestBlocklistLimit(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	var b strings.Builder
	for i := range maxBlocklistItems {
		fmt.Fprintf(&b, `<item jid="u%d@example.org"/>`, i)
	}
	if r := a.IQ(t, `<iq type="set" id="b"><block xmlns="urn:xmpp:blocking">`+b.String()+`</block></iq>`); r.attr("type") != "result" {
		t.Fatalf("block %d: %s", maxBlocklistItems, stanzaErrorCondition(r))
	}
	r := a.IQ(t, `<iq type="set" id="b2"><block xmlns="urn:xmpp:blocking"><item jid="u0@example.org"/><item jid="one-more@example.org"/></block></iq>`)
	if stanzaErrorCondition(r) != "resource-constraint" || stanzaErrorType(r) != "cancel" {
		t.Errorf("block beyond the limit: %q/%q", stanzaErrorCondition(r), stanzaErrorType(r))
	}
	if r := a.IQ(t, `<iq type="set" id="b3"><block xmlns="urn:xmpp:blocking"><item jid="u0@example.org"/></block></iq>`); r.attr("type") != "result" {
		t.Errorf("re-blocking a listed JID at the limit: %s", stanzaErrorCondition(r))
	}
	if l := blocklistOf(t, a); len(l) != maxBlocklistItems {
		t.Errorf("%d items, want %d", len(l), maxBlocklistItems)
	}
}

// TestBlockingErased: the blocklist and the report count go with the
// account; the operator's total stays (it names nobody).
func TestBlockingErased(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	a.IQ(t, `<iq type="set" id="b"><block xmlns="urn:xmpp:blocking"><item jid="spammer@example.org"><report xmlns="urn:xmpp:reporting:1" reason="urn:xmpp:reporting:abuse"/></item></block></iq>`)
	if err := ts.manager.Delete(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if l, _ := ts.store.blocklist("alice"); len(l) != 0 || ts.store.reportCount("alice") != 0 {
		t.Errorf("left after deletion: blocklist %v, %d reports", l, ts.store.reportCount("alice"))
	}
	if n := ts.store.reportCount(string(reportsTotal)); n != 1 {
		t.Errorf("operator's total %d, want 1", n)
	}
}

// FuzzBlockPayload: parseBlockPayload never panics, and what it returns is
// made of valid JIDs.
func FuzzBlockPayload(f *testing.F) {
	for _, s := range []string{
		`<block xmlns="urn:xmpp:blocking"><item jid="a@b/c"/></block>`,
		`<unblock xmlns="urn:xmpp:blocking"/>`,
		`<block xmlns="urn:xmpp:blocking"><item jid="x.org"><report xmlns="urn:xmpp:reporting:1" reason="urn:xmpp:reporting:spam"><text>t</text></report></item></block>`,
		`<block xmlns="urn:xmpp:blocking"><item jid=""/><item/></block>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseElement([]byte(s))
		if err != nil {
			return
		}
		p, err := parseBlockPayload(&sliceReader{toks: append(append([]xml.Token(nil), e.inner...), e.start.End())}, e.start)
		if err != nil {
			return
		}
		for _, j := range p.JIDs {
			if _, err := jid.Parse(j.String()); err != nil {
				t.Errorf("invalid JID %q returned", j)
			}
		}
	})
}

// TestBlockMatchTable: XEP-0191 § 3's JID matching for local and remote
// JIDs and whole domains, for messages, presence and IQs both ways (to
// and from the blocking user), through blockFor, which both the c2s path
// and the s2s router ask. alice blocks a remote domain, a remote bare
// JID, a local full JID and a remote domain/resource; dave blocks his own
// (local) domain.
func TestBlockMatchTable(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "dave"} {
		ts.Register(t, u, u+" password")
	}
	block := func(user string, items ...string) {
		var js []jid.JID
		for _, it := range items {
			js = append(js, jid.MustParse(it))
		}
		if _, _, err := ts.store.block(user, js, 0); err != nil {
			t.Fatal(err)
		}
	}
	block("alice", "EVIL.example", "spam@other.example", "bob@localhost/phone", "other.example/bot")
	block("dave", "localhost")

	const alice, dave = "alice@localhost/pc", "dave@localhost/pc"
	type tc struct {
		from, to, kind, typ string
		want                blockAction
	}
	var cases []tc
	// Each JID alice blocks (or not), both ways, every kind.
	for _, c := range []struct {
		j       string
		blocked bool
	}{
		{"x@evil.example/r", true},
		{"x@evil.example", true},
		{"X@Evil.Example/R", true}, // domains compare case-insensitively
		{"evil.example", true},
		{"evil.example/component", true}, // domain/resource is at the domain
		{"x@sub.evil.example", false},    // not subdomains
		{"x@evil.example.org", false},
		{"spam@other.example", true},
		{"spam@other.example/any", true},
		{"ham@other.example/any", false},
		{"other.example/bot", true},
		{"x@other.example/bot", false}, // domain/resource is that JID only
		{"other.example", false},
		{"other.example/other", false},
		{"bob@localhost/phone", true},
		{"bob@localhost/pc", false},
		{"bob@localhost", false}, // the full-JID item does not block the bare JID
		{"carol@localhost/pc", false},
	} {
		in, out := blockPass, blockPass
		if c.blocked {
			in, out = blockUnavailable, blockRefused
		}
		drop := func(a blockAction) blockAction {
			if a != blockPass {
				return blockDrop
			}
			return a
		}
		cases = append(cases,
			tc{c.j, alice, "message", "chat", in},
			tc{c.j, alice, "message", "", in},
			tc{c.j, alice, "message", "groupchat", drop(in)},
			tc{c.j, alice, "message", "headline", drop(in)},
			tc{c.j, alice, "message", "error", drop(in)},
			tc{c.j, alice, "presence", "", drop(in)},
			tc{c.j, alice, "presence", "subscribe", drop(in)},
			tc{c.j, alice, "iq", "get", in},
			tc{c.j, alice, "iq", "set", in},
			tc{c.j, alice, "iq", "result", drop(in)},
			tc{c.j, alice, "iq", "error", drop(in)},
			tc{alice, c.j, "message", "chat", out},
			tc{alice, c.j, "message", "groupchat", out},
			tc{alice, c.j, "presence", "", out},
			tc{alice, c.j, "presence", "unsubscribed", out},
			tc{alice, c.j, "iq", "get", out},
			tc{alice, c.j, "iq", "result", drop(out)},
			tc{alice, c.j, "message", "error", drop(out)},
		)
	}
	cases = append(cases,
		// dave blocks his own domain: every local user, both ways; not
		// the server itself, his own resources or remote JIDs.
		tc{alice, dave, "message", "chat", blockUnavailable},
		tc{alice, dave, "presence", "", blockDrop},
		tc{alice, dave, "iq", "get", blockUnavailable},
		tc{dave, alice, "message", "chat", blockRefused},
		tc{dave, "alice@localhost", "iq", "set", blockRefused},
		tc{dave, "localhost", "iq", "get", blockPass},
		tc{dave, "dave@localhost/phone", "message", "chat", blockPass},
		tc{dave, "x@evil.example", "message", "chat", blockPass},
		tc{"x@evil.example", dave, "message", "chat", blockPass},
		// Between two remote JIDs: no local blocklist applies.
		tc{"x@evil.example", "y@other.example", "message", "chat", blockPass},
		// Both block each other: the sender's own block wins.
		tc{dave, "alice@localhost/pc", "message", "chat", blockRefused},
	)
	for _, c := range cases {
		got := ts.blockFor(jid.MustParse(c.from), jid.MustParse(c.to), c.kind, c.typ)
		if got != c.want {
			t.Errorf("%s %s from %s to %s: %v, want %v", c.kind, c.typ, c.from, c.to, got, c.want)
		}
	}
}

// TestBlockBounce: the error stanzas answering a blocked stanza, as the
// s2s router sends them back to a remote sender.
func TestBlockBounce(t *testing.T) {
	e, err := parseElement([]byte(`<message xmlns="jabber:client" from="x@evil.example/r" to="alice@localhost" id="m1" type="chat"><body>secret-body</body></message>`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a    blockAction
		want string
	}{
		{blockUnavailable, `<message xmlns="jabber:client" type="error" from="alice@localhost" to="x@evil.example/r" id="m1"><error xmlns="jabber:client" type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></service-unavailable></error></message>`},
		{blockRefused, `<message xmlns="jabber:client" type="error" from="alice@localhost" to="x@evil.example/r" id="m1"><error xmlns="jabber:client" type="cancel"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"></not-acceptable><blocked xmlns="urn:xmpp:blocking:errors"></blocked></error></message>`},
	} {
		out, ok := blockBounce(c.a, e)
		raw, _ := out.bytes()
		if !ok || string(raw) != c.want {
			t.Errorf("%v: %v %s\nwant %s", c.a, ok, raw, c.want)
		}
	}
	for _, a := range []blockAction{blockPass, blockDrop} {
		if _, ok := blockBounce(a, e); ok {
			t.Errorf("%v: a bounce", a)
		}
	}
}

// TestBlockRemoteDomainE2E: a client blocks a remote domain with the
// blocking command; its message, presence and IQ to a JID there are
// refused with <blocked/> (not routed), and unblocking lifts it.
func TestBlockRemoteDomainE2E(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	if r := a.IQ(t, `<iq type="set" id="b"><block xmlns="urn:xmpp:blocking"><item jid="evil.example"/></block></iq>`); r.attr("type") != "result" {
		t.Fatalf("block: %s", stanzaErrorCondition(r))
	}
	isBlocked := func(e element) bool {
		raw, _ := e.bytes()
		return stanzaErrorCondition(e) == "not-acceptable" && strings.Contains(string(raw), nsBlockingErrors)
	}
	for _, raw := range []string{
		`<message to="mallory@evil.example" type="chat" id="s1"><body>hi</body></message>`,
		`<presence to="mallory@evil.example/r" id="s2"/>`,
		`<iq to="evil.example" type="get" id="s3"><query xmlns="jabber:iq:version"/></iq>`,
	} {
		a.Send(t, raw)
		e := a.Next(t, func(e element) bool { return e.attr("type") == "error" })
		if !isBlocked(e) {
			got, _ := e.bytes()
			t.Errorf("%s: answered %s, want not-acceptable with <blocked/>", raw, got)
		}
	}
	a.IQ(t, `<iq type="set" id="u"><unblock xmlns="urn:xmpp:blocking"><item jid="evil.example"/></unblock></iq>`)
	a.Send(t, `<message to="mallory@evil.example" type="chat" id="s4"><body>hi</body></message>`)
	if e := a.Next(t, func(e element) bool { return e.attr("id") == "s4" }); isBlocked(e) {
		t.Error("still blocked after the unblock")
	}
}
