package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/pubsub"
	"mellium.im/xmpp/stanza"
)

// OMEMO, avatar and bookmark node names (XEP-0384, XEP-0084, XEP-0402).
const (
	nodeAxolotlDevices = "eu.siacs.conversations.axolotl.devicelist"
	nodeAxolotlBundle  = "eu.siacs.conversations.axolotl.bundles:"
	nodeOMEMO2Devices  = "urn:xmpp:omemo:2:devices"
	nodeOMEMO2Bundles  = "urn:xmpp:omemo:2:bundles"
	nodeAvatarMeta     = "urn:xmpp:avatar:metadata"
	nodeBookmarks      = "urn:xmpp:bookmarks:1"
)

// publishOptions is a publish-options form with the fields given as
// name=value pairs ("access_model", "open", …).
func publishOptions(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<publish-options><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, `<field var="pubsub#%s"><value>%s</value></field>`, kv[i], kv[i+1])
	}
	b.WriteString(`</x></publish-options>`)
	return b.String()
}

var pepIQs atomic.Int64

// publish publishes payload (raw XML) as item id on node with options and
// returns the answer.
func publish(t *testing.T, c *testClient, node, id, payload string, opts ...string) element {
	t.Helper()
	idAttr := ""
	if id != "" {
		idAttr = fmt.Sprintf(` id="%s"`, id)
	}
	return c.IQ(t, fmt.Sprintf(`<iq type="set" id="pub%d"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="%s"><item%s>%s</item></publish>%s</pubsub></iq>`,
		pepIQs.Add(1), node, idAttr, payload, publishOptions(opts...)))
}

// mustPublish is publish failing the test on an error answer.
func mustPublish(t *testing.T, c *testClient, node, id, payload string, opts ...string) {
	t.Helper()
	if resp := publish(t, c, node, id, payload, opts...); resp.attr("type") != "result" {
		t.Fatalf("publish %s/%s: %s", node, id, stanzaErrorCondition(resp))
	}
}

// getItems asks to (a bare JID, "" for one's own) for the items of node;
// inner goes inside <items/>. It returns the answer and the item ids.
func getItems(t *testing.T, c *testClient, to, node, attrs, inner string) (element, []string) {
	t.Helper()
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(` to="%s"`, to)
	}
	resp := c.IQ(t, fmt.Sprintf(`<iq type="get" id="items%d"%s><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="%s"%s>%s</items></pubsub></iq>`,
		pepIQs.Add(1), toAttr, node, attrs, inner))
	return resp, itemIDs(resp)
}

// itemIDs returns the ids of the items in an items answer or event.
func itemIDs(e element) []string {
	var ids []string
	for _, w := range e.children() {
		for _, its := range w.children() {
			for _, it := range its.children() {
				if it.start.Name.Local == "item" {
					ids = append(ids, it.attr("id"))
				}
			}
		}
	}
	return ids
}

// hasEvent matches a notification whose <event/> holds a child named kind
// (purge, delete).
func hasEvent(kind string) func(element) bool {
	return func(e element) bool {
		ev, ok := e.child(xml.Name{Space: pubsub.NSEvent, Local: "event"})
		_, has := ev.child(xml.Name{Space: pubsub.NSEvent, Local: kind})
		return ok && has
	}
}

// isEvent matches a headline notification for node from from ("" for
// the client's own account: mellium's client clears a from that is its
// own bare JID).
func isEvent(from, node string) func(element) bool {
	return func(e element) bool {
		if e.start.Name.Local != "message" || e.attr("from") != from {
			return false
		}
		ev, ok := e.child(xml.Name{Space: pubsub.NSEvent, Local: "event"})
		if !ok {
			return false
		}
		for _, c := range ev.children() {
			if c.attr("node") == node {
				return true
			}
		}
		return false
	}
}

// addContact puts contact in c's roster.
func addContact(t *testing.T, c *testClient, contact string) {
	t.Helper()
	if resp := c.IQ(t, `<iq type="set" id="r-`+contact+`"><query xmlns="jabber:iq:roster"><item jid="`+contact+`"/></query></iq>`); resp.attr("type") != "result" {
		t.Fatalf("roster set: %s", stanzaErrorCondition(resp))
	}
}

// letSee makes both clients available and contact subscribed to owner's
// presence (owner's roster item for contact gets "from"), which
// presence-model nodes ask for.
func letSee(t *testing.T, owner, contact *testClient) {
	t.Helper()
	o, c := owner.JID.Bare().String(), contact.JID.Bare().String()
	online(t, owner) // requests reach available resources only
	online(t, contact)
	contact.Send(t, `<presence to="`+o+`" type="subscribe"/>`)
	owner.Next(t, isPresence(c, "subscribe"))
	owner.Send(t, `<presence to="`+c+`" type="subscribed"/>`)
	contact.Next(t, isPresence(o, "subscribed"))
}

// assertNoEvent checks, after a round trip, that c got no notification
// for node from from.
func assertNoEvent(t *testing.T, c *testClient, from, node string) {
	t.Helper()
	c.IQ(t, `<iq type="get" id="sync"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if e, err := c.next(isEvent(from, node), 0); err == nil {
		b, _ := e.bytes()
		t.Errorf("%s got a notification: %s", c.JID, b)
	}
}

// TestPEPOMEMO: a user publishes OMEMO device lists and bundles (both the
// legacy axolotl nodes and urn:xmpp:omemo:2, with publish-options) that a
// contact fetches; a presence-model node is refused to a stranger, a
// whitelist node to everyone but the owner. The account's disco shows the
// PEP identity and publish-options.
func TestPEPOMEMO(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	c := ts.Login(t, "carol", "carol password")
	addContact(t, a, "bob@localhost")
	letSee(t, a, b) // a presence-model node needs a real subscription

	info := a.IQ(t, `<iq type="get" id="d" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	raw, _ := info.bytes()
	for _, want := range []string{`category="pubsub" type="pep"`, nsPubSubPublishOptions + `"`, pubsub.NS + `#access-whitelist"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("account disco lacks %s: %s", want, raw)
		}
	}

	// profanity looks for publish-options on the server's disco.
	if raw, _ := a.IQ(t, `<iq type="get" id="d2" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`).bytes(); !strings.Contains(string(raw), nsPubSubPublishOptions+`"`) {
		t.Errorf("server disco lacks publish-options: %s", raw)
	}
	// To its owner a node not created yet reads as empty (profanity
	// publishes its first device list only after reading an empty one); to
	// others it does not exist.
	if resp, ids := getItems(t, a, "", nodeAxolotlDevices, "", ""); resp.attr("type") != "result" || len(ids) != 0 {
		t.Errorf("owner's read of a node not created yet: %s %v", stanzaErrorCondition(resp), ids)
	}
	if resp, _ := getItems(t, b, "alice@localhost", nodeAxolotlDevices, "", ""); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("contact's read of a node not created yet: %s", stanzaErrorCondition(resp))
	}

	open := []string{"access_model", "open"}
	mustPublish(t, a, nodeAxolotlDevices, "current", `<list xmlns="eu.siacs.conversations.axolotl"><device id="1234"/></list>`, open...)
	mustPublish(t, a, nodeAxolotlBundle+"1234", "current", `<bundle xmlns="eu.siacs.conversations.axolotl"><signedPreKeyPublic signedPreKeyId="1">BASE64KEY</signedPreKeyPublic></bundle>`, open...)
	omemo2 := []string{"access_model", "open", "max_items", "max"}
	mustPublish(t, a, nodeOMEMO2Devices, "current", `<devices xmlns="urn:xmpp:omemo:2"><device id="1234"/><device id="5678"/></devices>`, omemo2...)
	mustPublish(t, a, nodeOMEMO2Bundles, "1234", `<bundle xmlns="urn:xmpp:omemo:2"><spk id="1">K1234</spk></bundle>`, omemo2...)
	mustPublish(t, a, nodeOMEMO2Bundles, "5678", `<bundle xmlns="urn:xmpp:omemo:2"><spk id="1">K5678</spk></bundle>`, omemo2...)

	resp, ids := getItems(t, b, "alice@localhost", nodeAxolotlDevices, "", "")
	if raw, _ := resp.bytes(); len(ids) != 1 || !strings.Contains(string(raw), `id="1234"`) {
		t.Errorf("bob's devicelist fetch: %s", raw)
	}
	if _, ids := getItems(t, b, "alice@localhost", nodeAxolotlBundle+"1234", "", ""); len(ids) != 1 {
		t.Errorf("bob's bundle fetch: %v", ids)
	}
	// A stranger reads open nodes too (OMEMO with someone not yet in the roster).
	if _, ids := getItems(t, c, "alice@localhost", nodeAxolotlDevices, "", ""); len(ids) != 1 {
		t.Errorf("carol's devicelist fetch: %v", ids)
	}
	resp, ids = getItems(t, b, "alice@localhost", nodeOMEMO2Bundles, "", `<item id="5678"/>`)
	if raw, _ := resp.bytes(); len(ids) != 1 || ids[0] != "5678" || !strings.Contains(string(raw), "K5678") {
		t.Errorf("bundle 5678 by id: %s", raw)
	}
	if _, ids := getItems(t, b, "alice@localhost", nodeOMEMO2Bundles, "", ""); len(ids) != 2 {
		t.Errorf("omemo:2 bundles (max_items max): %v, want both", ids)
	}

	// A node with the default access model (presence): contacts only.
	mustPublish(t, a, "urn:xmpp:openpgp:0:public-keys", "k1", `<public-keys-list xmlns="urn:xmpp:openpgp:0"/>`)
	if _, ids := getItems(t, b, "alice@localhost", "urn:xmpp:openpgp:0:public-keys", "", ""); len(ids) != 1 {
		t.Errorf("contact's fetch of a presence node: %v", ids)
	}
	resp, ids = getItems(t, c, "alice@localhost", "urn:xmpp:openpgp:0:public-keys", "", "")
	if resp.attr("type") != "error" || stanzaErrorCondition(resp) != "not-authorized" || len(ids) != 0 {
		raw, _ := resp.bytes()
		t.Errorf("stranger's fetch of a presence node: %s", raw)
	}
	// Whitelist (XEP-0223 private): the owner only.
	mustPublish(t, a, "eu.siacs.conversations.axolotl.settings", "s", `<settings xmlns="urn:example:omemo-settings"/>`,
		"access_model", "whitelist", "persist_items", "true")
	if resp, _ := getItems(t, b, "alice@localhost", "eu.siacs.conversations.axolotl.settings", "", ""); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("contact's fetch of a whitelist node: %s", stanzaErrorCondition(resp))
	}
	if _, ids := getItems(t, a, "", "eu.siacs.conversations.axolotl.settings", "", ""); len(ids) != 1 {
		t.Errorf("owner's fetch of a whitelist node: %v", ids)
	}
	// Only the owner publishes.
	if resp := b.IQ(t, `<iq type="set" id="x" to="alice@localhost"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="n"><item><x xmlns="y"/></item></publish></pubsub></iq>`); stanzaErrorCondition(resp) != "forbidden" {
		t.Errorf("publish to another's PEP: %s", stanzaErrorCondition(resp))
	}
}

// loginCaps logs user in with a mellium client that announces XEP-0115
// caps for features (with presence, sent here) and answers the server's
// disco#info with them, counting the questions in asked. Other stanzas go
// to the returned client's queue.
func loginCaps(t *testing.T, ts *testServer, user, password string, features []string, asked *atomic.Int64) *testClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var q strings.Builder
	q.WriteString(`<query xmlns="http://jabber.org/protocol/disco#info"><identity category="client" type="pc" name="pep test"/>`)
	for _, f := range features {
		fmt.Fprintf(&q, `<feature var="%s"/>`, f)
	}
	q.WriteString(`</query>`)
	qe, err := parseElement([]byte(q.String()))
	if err != nil {
		t.Fatal(err)
	}
	ver, err := capsVer(qe)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", ts.C2S, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(ctx, jid.MustParse(user+"@"+ts.Domain), conn,
		xmpp.StartTLS(ts.TLSConfig.Clone()), xmpp.SASL("", password, sasl.Plain), xmpp.BindResource())
	if err != nil {
		conn.Close()
		t.Fatalf("login %s: %v", user, err)
	}
	c := &testClient{Session: s, JID: s.LocalAddr(), in: make(chan element, 1024), served: make(chan error, 1)}
	go func() {
		err := s.Serve(xmpp.HandlerFunc(func(w xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			e, err := readElement(w, *start)
			if err != nil {
				return err
			}
			if p, ok := e.payload(); ok && e.start.Name.Local == "iq" && e.attr("type") == "get" && p.Name.Space == disco.NSInfo {
				asked.Add(1)
				node := ""
				for _, a := range p.Attr {
					if a.Name.Local == "node" {
						node = a.Value
					}
				}
				raw := fmt.Sprintf(`<iq type="result" id="%s" to="%s">%s</iq>`, e.attr("id"), e.attr("from"),
					strings.Replace(q.String(), `<query `, `<query node="`+node+`" `, 1))
				d := xml.NewDecoder(strings.NewReader(raw))
				d.DefaultSpace = stanza.NSClient
				_, err = xmlstream.Copy(w, rawTokens{d})
				return err
			}
			select {
			case c.in <- e:
			default:
			}
			return nil
		}))
		c.served <- err
		close(c.in)
		conn.Close()
	}()
	t.Cleanup(c.Close)
	c.Send(t, fmt.Sprintf(`<presence><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="https://example.org/pep-test" ver="%s"/></presence>`, ver))
	return c
}

// TestPEPNotifyCaps: a contact whose caps say +notify gets the last item
// when it comes online (the server learns its caps with a disco#info to
// its full JID, once per caps hash) and every new item as a headline
// message; the owner's own available resources get them too; a user
// outside the access model gets nothing.
func TestPEPNotifyCaps(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	a.Send(t, `<presence/>`)
	addContact(t, a, "bob@localhost")
	addContact(t, a, "carol@localhost")
	mustPublish(t, a, nodeAxolotlDevices, "current", `<list xmlns="eu.siacs.conversations.axolotl"><device id="42"/></list>`, "access_model", "open")
	a.Next(t, isEvent("", nodeAxolotlDevices)) // the owner's own resource

	// carol is in alice's roster but alice's avatar is for bob only.
	feats := []string{disco.NSInfo, nsCaps, nodeAxolotlDevices + "+notify", nodeAvatarMeta + "+notify"}
	var asked atomic.Int64
	b := ts.Login(t, "bob", "bob password")
	addContact(t, b, "alice@localhost")
	b.Close()
	b = loginCaps(t, ts, "bob", "bob password", feats, &asked)
	last := b.Next(t, isEvent("alice@localhost", nodeAxolotlDevices))
	if ids := itemIDs(last); len(ids) != 1 || ids[0] != "current" {
		t.Errorf("last item on presence: %v", ids)
	}
	if _, ok := last.child(xml.Name{Space: nsDelay, Local: "delay"}); !ok {
		t.Error("the last item has no delay stamp")
	}
	if asked.Load() != 1 {
		t.Errorf("%d disco#info questions, want 1", asked.Load())
	}

	mustPublish(t, a, nodeAvatarMeta, "hash1", `<metadata xmlns="urn:xmpp:avatar:metadata"><info bytes="1234" id="hash1" type="image/png" height="64" width="64"/></metadata>`,
		"access_model", "roster")
	ev := b.Next(t, isEvent("alice@localhost", nodeAvatarMeta))
	if ev.attr("type") != "headline" || ev.attr("to") != b.JID.String() {
		t.Errorf("notification attributes: %v", ev.start.Attr)
	}
	if raw, _ := ev.bytes(); !strings.Contains(string(raw), `id="hash1"`) || !strings.Contains(string(raw), `bytes="1234"`) {
		t.Errorf("avatar metadata notification: %s", raw)
	}
	a.Next(t, isEvent("", nodeAvatarMeta))

	// A second session with the same caps: answered from the cache.
	var asked2 atomic.Int64
	b2 := loginCaps(t, ts, "bob", "bob password", feats, &asked2)
	b2.Next(t, isEvent("alice@localhost", nodeAvatarMeta))
	if asked2.Load() != 0 {
		t.Errorf("the server asked again for known caps")
	}

	// dave has +notify too but is not alice's contact: a roster node is
	// not for him, and neither are the other notifications.
	ts.Register(t, "dave", "dave password")
	d := ts.Login(t, "dave", "dave password")
	addContact(t, d, "alice@localhost")
	d.Close()
	var asked3 atomic.Int64
	d = loginCaps(t, ts, "dave", "dave password", feats, &asked3)
	mustPublish(t, a, nodeAvatarMeta, "hash2", `<metadata xmlns="urn:xmpp:avatar:metadata"/>`, "access_model", "roster")
	b.Next(t, isEvent("alice@localhost", nodeAvatarMeta))
	assertNoEvent(t, d, "alice@localhost", nodeAvatarMeta)
	// A client without +notify for a node gets nothing.
	c := ts.Login(t, "carol", "carol password")
	c.Send(t, `<presence/>`)
	mustPublish(t, a, nodeAvatarMeta, "hash3", `<metadata xmlns="urn:xmpp:avatar:metadata"/>`, "access_model", "roster")
	b.Next(t, isEvent("alice@localhost", nodeAvatarMeta))
	assertNoEvent(t, c, "alice@localhost", nodeAvatarMeta)
}

// TestPEPSubscribe: an explicit subscription brings the last item and the
// next ones; a stranger cannot subscribe to a presence node.
func TestPEPSubscribe(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	c := ts.Login(t, "carol", "carol password")
	addContact(t, a, "bob@localhost")
	letSee(t, a, b) // a presence-model node needs a real subscription
	mustPublish(t, a, "http://jabber.org/protocol/nick", "n1", `<nick xmlns="http://jabber.org/protocol/nick">Alice</nick>`)
	sub := func(cl *testClient) element {
		return cl.IQ(t, fmt.Sprintf(`<iq type="set" id="sub" to="alice@localhost"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="http://jabber.org/protocol/nick" jid="%s"/></pubsub></iq>`, cl.JID))
	}
	if resp := sub(b); resp.attr("type") != "result" {
		t.Fatalf("subscribe: %s", stanzaErrorCondition(resp))
	}
	b.Next(t, isEvent("alice@localhost", "http://jabber.org/protocol/nick"))
	mustPublish(t, a, "http://jabber.org/protocol/nick", "n2", `<nick xmlns="http://jabber.org/protocol/nick">Alice B.</nick>`)
	if ids := itemIDs(b.Next(t, isEvent("alice@localhost", "http://jabber.org/protocol/nick"))); len(ids) != 1 || ids[0] != "n2" {
		t.Errorf("notification: %v", ids)
	}
	if resp := sub(c); stanzaErrorCondition(resp) != "not-authorized" {
		t.Errorf("stranger's subscription: %s", stanzaErrorCondition(resp))
	}
	if resp := c.IQ(t, `<iq type="set" id="sub2" to="alice@localhost"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="http://jabber.org/protocol/nick" jid="bob@localhost"/></pubsub></iq>`); stanzaErrorCondition(resp) != "bad-request" {
		t.Errorf("subscribing someone else: %s", stanzaErrorCondition(resp))
	}
}

// TestPEPBookmarks: XEP-0402 bookmarks in a private node (XEP-0223:
// whitelist, persistent, max_items max) round trip; retracting one with
// notify reaches the owner's other resource; nobody else reads them.
func TestPEPBookmarks(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password")
	a := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	a2.Send(t, `<presence/>`)
	b := ts.Login(t, "bob", "bob password")
	addContact(t, a, "bob@localhost")
	opts := []string{"persist_items", "true", "max_items", "max", "send_last_published_item", "never", "access_model", "whitelist"}
	mustPublish(t, a, nodeBookmarks, "room1@conference.localhost", `<conference xmlns="urn:xmpp:bookmarks:1" name="Room one" autojoin="true"><nick>al</nick></conference>`, opts...)
	mustPublish(t, a, nodeBookmarks, "room2@conference.localhost", `<conference xmlns="urn:xmpp:bookmarks:1" name="Room two"/>`, opts...)
	resp, ids := getItems(t, a, "", nodeBookmarks, "", "")
	raw, _ := resp.bytes()
	if len(ids) != 2 || !strings.Contains(string(raw), `name="Room one"`) || !strings.Contains(string(raw), ">al</nick>") {
		t.Errorf("bookmarks: %s", raw)
	}
	a2.Next(t, isEvent("", nodeBookmarks))
	if resp, _ := getItems(t, b, "alice@localhost", nodeBookmarks, "", ""); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("bob reads alice's bookmarks: %s", stanzaErrorCondition(resp))
	}
	// Different publish-options on the existing node: precondition-not-met.
	resp = publish(t, a, nodeBookmarks, "room3@conference.localhost", `<conference xmlns="urn:xmpp:bookmarks:1"/>`, "access_model", "open")
	if stanzaErrorCondition(resp) != "conflict" || !strings.Contains(func() string { r, _ := resp.bytes(); return string(r) }(), "precondition-not-met") {
		t.Errorf("mismatching publish-options: %s", stanzaErrorCondition(resp))
	}
	resp = a.IQ(t, `<iq type="set" id="ret"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="urn:xmpp:bookmarks:1" notify="true"><item id="room1@conference.localhost"/></retract></pubsub></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("retract: %s", stanzaErrorCondition(resp))
	}
	ev := a2.Next(t, func(e element) bool {
		raw, _ := e.bytes()
		return isEvent("", nodeBookmarks)(e) && strings.Contains(string(raw), "retract")
	})
	if raw, _ := ev.bytes(); !strings.Contains(string(raw), `id="room1@conference.localhost"`) {
		t.Errorf("retract notification: %s", raw)
	}
	if _, ids := getItems(t, a, "", nodeBookmarks, "", ""); len(ids) != 1 || ids[0] != "room2@conference.localhost" {
		t.Errorf("after retract: %v", ids)
	}
	if resp := a.IQ(t, `<iq type="set" id="ret2"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="urn:xmpp:bookmarks:1"><item id="nope"/></retract></pubsub></iq>`); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("retract of an unknown item: %s", stanzaErrorCondition(resp))
	}
}

// TestPEPNodeLifecycle: max_items trims the oldest items, max_items on a
// request returns the newest, configure reads and changes the node (a
// lower max_items trims at once), purge empties it and delete removes it,
// each notified to the owner's other resource.
func TestPEPNodeLifecycle(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	a2.Send(t, `<presence/>`)
	const node = "urn:example:feed"
	for i := 1; i <= 4; i++ {
		mustPublish(t, a, node, fmt.Sprintf("i%d", i), fmt.Sprintf(`<entry xmlns="urn:example">%d</entry>`, i), "max_items", "3")
	}
	if _, ids := getItems(t, a, "", node, "", ""); strings.Join(ids, ",") != "i2,i3,i4" {
		t.Errorf("after 4 publishes with max_items 3: %v", ids)
	}
	if _, ids := getItems(t, a, "", node, ` max_items="1"`, ""); strings.Join(ids, ",") != "i4" {
		t.Errorf("max_items 1 request: %v", ids)
	}
	// Republishing an id replaces the item.
	mustPublish(t, a, node, "i2", `<entry xmlns="urn:example">2b</entry>`, "max_items", "3")
	if _, ids := getItems(t, a, "", node, "", ""); strings.Join(ids, ",") != "i3,i4,i2" {
		t.Errorf("after republishing i2: %v", ids)
	}
	// Publishing without an id gets one from the server.
	resp := publish(t, a, node, "", `<entry xmlns="urn:example">5</entry>`)
	if ids := itemIDs(resp); len(ids) != 1 || ids[0] == "" {
		raw, _ := resp.bytes()
		t.Errorf("publish without id: %s", raw)
	}

	cfg := a.IQ(t, `<iq type="get" id="cfg"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="urn:example:feed"/></pubsub></iq>`)
	if raw, _ := cfg.bytes(); !strings.Contains(string(raw), `var="pubsub#max_items"`) || !strings.Contains(string(raw), ">3</value>") {
		t.Errorf("configure get: %s", raw)
	}
	resp = a.IQ(t, `<iq type="set" id="cfg2"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="urn:example:feed"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var="pubsub#max_items"><value>1</value></field></x></configure></pubsub></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("configure set: %s", stanzaErrorCondition(resp))
	}
	if _, ids := getItems(t, a, "", node, "", ""); len(ids) != 1 {
		t.Errorf("after max_items 1: %v", ids)
	}
	if u := ts.pep.store.usage("alice"); u.Items != 1 || u.Nodes != 1 {
		t.Errorf("usage after trimming: %+v", u)
	}

	resp = a.IQ(t, `<iq type="set" id="purge"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><purge node="urn:example:feed"/></pubsub></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("purge: %s", stanzaErrorCondition(resp))
	}
	a2.Next(t, hasEvent("purge"))
	if _, ids := getItems(t, a, "", node, "", ""); len(ids) != 0 {
		t.Errorf("after purge: %v", ids)
	}
	resp = a.IQ(t, `<iq type="set" id="del"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><delete node="urn:example:feed"/></pubsub></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("delete: %s", stanzaErrorCondition(resp))
	}
	a2.Next(t, hasEvent("delete"))
	if _, err := ts.pep.store.config("alice", node); !errors.Is(err, errPEPNodeNotFound) {
		t.Errorf("config of a deleted node: %v", err)
	}
	if resp := a.IQ(t, `<iq type="get" id="cfg3"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="urn:example:feed"/></pubsub></iq>`); stanzaErrorCondition(resp) != "item-not-found" {
		t.Errorf("configure of a deleted node: %s", stanzaErrorCondition(resp))
	}
	if u := ts.pep.store.usage("alice"); u != (pepUsage{}) {
		t.Errorf("usage after delete: %+v", u)
	}
}

// TestPEPExportErase: the export holds one file per node, pep/<node>.xml
// (the name made safe), with its configuration and items, and the user's
// subscriptions to others' nodes in pep/+subscriptions.xml; the account's
// deletion erases nodes, items and subscriptions both ways (the residue
// test, TestDeleteLeavesNothing, checks the bytes on disk).
func TestPEPExportErase(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	mustPublish(t, a, "http://jabber.org/protocol/nick", "n", `<nick xmlns="http://jabber.org/protocol/nick">Export-Nick-7q</nick>`)
	mustPublish(t, a, nodeBookmarks, "r@conference.localhost", `<conference xmlns="urn:xmpp:bookmarks:1" name="Export-Room"/>`,
		"access_model", "whitelist", "max_items", "max")
	mustPublish(t, b, "urn:example:Feed", "1", `<entry xmlns="urn:example">x</entry>`, "access_model", "open")
	subscribe := func(c *testClient, owner, node string) {
		t.Helper()
		if r := c.IQ(t, `<iq type="set" id="s" to="`+owner+`"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="`+node+`" jid="`+c.JID.String()+`"/></pubsub></iq>`); r.attr("type") != "result" {
			t.Fatalf("subscribe to %s %s: %s", owner, node, stanzaErrorCondition(r))
		}
	}
	mustPublish(t, a, "urn:example:open", "1", `<entry xmlns="urn:example">y</entry>`, "access_model", "open")
	subscribe(a, "bob@localhost", "urn:example:Feed")
	subscribe(b, "alice@localhost", "urn:example:open")

	files := exportZip(t, ts, "alice", "alice password")
	if _, old := files["pep.xml"]; old {
		t.Error("the export still has one pep.xml")
	}
	for name, wants := range map[string][]string{
		"pep/http%3A%2F%2Fjabber.org%2Fprotocol%2Fnick.xml": {"Export-Nick-7q", `name='http://jabber.org/protocol/nick'`, "access_model='presence'"},
		"pep/urn%3Axmpp%3Abookmarks%3A1.xml":                {"Export-Room", "access_model='whitelist'", "max_items='1000'"},
		"pep/urn%3Aexample%3Aopen.xml":                      {"access_model='open'"},
		"pep/+subscriptions.xml":                            {"owner='bob@localhost'", "node='urn:example:Feed'", "jid='" + a.JID.String() + "'"},
	} {
		f, ok := files[name]
		if !ok {
			t.Errorf("export lacks %s; has %v", name, slices.Sorted(maps.Keys(files)))
			continue
		}
		for _, want := range wants {
			if !strings.Contains(f, want) {
				t.Errorf("%s lacks %q:\n%s", name, want, f)
			}
		}
		if _, err := parseElement([]byte(f)); err != nil {
			t.Errorf("%s is not XML: %v", name, err)
		}
	}
	if strings.Contains(files["pep/+subscriptions.xml"], "bob@localhost/") {
		t.Error("alice's export shows bob's subscription")
	}
	res, err := ts.HTTPClient.Get(ts.HTTPSURL + "/privacy")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "(PEP:") || !strings.Contains(string(page), "until you unsubscribe); erased with the account") {
		t.Errorf("/privacy has no PEP row:\n%s", page)
	}
	// The erasure <remove/> starts, waited for (TestDeleteLeavesNothing
	// goes through <remove/> itself).
	if err := ts.deleteAccount(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	a.WaitEnd(t)
	if n, err := ts.pep.store.nodes("alice"); err != nil || len(n) != 0 {
		t.Errorf("nodes after deletion: %v %v", n, err)
	}
	if u := ts.pep.store.usage("alice"); u != (pepUsage{}) {
		t.Errorf("usage after deletion: %+v", u)
	}
	if subs, err := ts.pep.store.subscriptions(); err != nil || len(subs) != 0 {
		t.Errorf("subscriptions after alice's deletion (hers and bob's to her node): %v %v", subs, err)
	}
}

// TestPEPSubscriptionsSurviveRestart: an explicit subscription is stored:
// after a restart the subscriber (without +notify caps) still gets the
// node's notifications; an unsubscription is stored too.
func TestPEPSubscriptionsSurviveRestart(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	const node = "urn:example:news"
	mustPublish(t, a, node, "1", `<entry xmlns="urn:example">one</entry>`, "access_model", "open")
	sub := func(c *testClient, op string) element {
		return c.IQ(t, `<iq type="set" id="s" to="alice@localhost"><pubsub xmlns="http://jabber.org/protocol/pubsub"><`+op+` node="`+node+`" jid="bob@localhost"/></pubsub></iq>`)
	}
	if r := sub(b, "subscribe"); r.attr("type") != "result" {
		t.Fatalf("subscribe: %s", stanzaErrorCondition(r))
	}
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg := ts.cfg
	cfg.C2S, cfg.C2STLS, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ts2 := startWithConfig(t, cfg)
	a = ts2.Login(t, "alice", "alice password")
	b = ts2.Login(t, "bob", "bob password")
	b.Send(t, `<presence/>`)
	mustPublish(t, a, node, "2", `<entry xmlns="urn:example">two</entry>`)
	if ids := itemIDs(b.Next(t, isEvent("alice@localhost", node))); len(ids) != 1 || ids[0] != "2" {
		t.Errorf("notification after restart: %v", ids)
	}
	if r := sub(b, "unsubscribe"); r.attr("type") != "result" {
		t.Fatalf("unsubscribe after restart: %s", stanzaErrorCondition(r))
	}
	if subs, err := ts2.pep.store.subscriptions(); err != nil || len(subs) != 0 {
		t.Errorf("stored after unsubscribe: %v %v", subs, err)
	}
}

// TestExportFileName: names from users become file names that are safe to
// unpack on any system, and distinct names stay distinct.
func TestExportFileName(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct{ in, want string }{
		{"urn:xmpp:omemo:2:bundles", "urn%3Axmpp%3Aomemo%3A2%3Abundles"},
		{"eu.siacs.conversations.axolotl.bundles:1234", "eu.siacs.conversations.axolotl.bundles%3A1234"},
		{"../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"},
		{"a/b\\c", "a%2Fb%5Cc"},
		{"Nick", "%4Eick"},
		{"con", "%63on"},
		{"nul.feed", "%6Eul.feed"},
		{"com7", "%63om7"},
		{"console", "console"},
		{"+subscriptions", "%2Bsubscriptions"},
		{"", "%"},
		{".", "%2E"},
		{"é", "%C3%A9"},
		{"a\x00b", "a%00b"},
	} {
		if got := exportFileName(tc.in); got != tc.want {
			t.Errorf("exportFileName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := exportFileName(long); len(got) > maxExportNameBytes || !strings.Contains(got, "~") {
		t.Errorf("long name: %d bytes: %q", len(got), got)
	}
	if exportFileName(long) == exportFileName(long+"b") {
		t.Error("two long names collide")
	}
}

// FuzzExportFileName: every name maps to a valid, bounded, single path
// element, never a dot file, and the mapping is one-to-one on the sample.
func FuzzExportFileName(f *testing.F) {
	for _, s := range []string{"urn:xmpp:avatar:data", "..", "CON", strings.Repeat("%", 150), "a/b"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		fa, fb := exportFileName(a), exportFileName(b)
		for _, n := range []string{fa, fb} {
			if !fs.ValidPath(n+".xml") || strings.ContainsAny(n, "/\\") || n[0] == '.' || len(n) > maxExportNameBytes {
				t.Fatalf("unsafe name %q", n)
			}
		}
		if a != b && strings.EqualFold(fa, fb) { // case-insensitive file systems
			t.Fatalf("%q and %q both map to %q", a, b, fa)
		}
	})
}
