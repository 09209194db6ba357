package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

// privateGet returns the stored content of ns (the result's query inner
// XML) or the error condition.
func privateGet(t *testing.T, c *testClient, ns, local string) (string, string) {
	t.Helper()
	resp := c.IQ(t, fmt.Sprintf(`<iq type="get" id="pg"><query xmlns="jabber:iq:private"><%s xmlns="%s"/></query></iq>`, local, ns))
	if resp.attr("type") != "result" {
		return "", stanzaErrorCondition(resp)
	}
	q, ok := resp.child(xml.Name{Space: nsPrivate, Local: "query"})
	if !ok {
		t.Fatal("private get result without query")
	}
	b, err := q.bytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), ""
}

func privateSet(t *testing.T, c *testClient, inner string) string {
	t.Helper()
	resp := c.IQ(t, `<iq type="set" id="ps"><query xmlns="jabber:iq:private">`+inner+`</query></iq>`)
	if resp.attr("type") == "result" {
		return ""
	}
	return stanzaErrorCondition(resp)
}

// TestPrivateStorage: XEP-0049 round trip per namespace; nothing stored
// answers the empty element; reserved namespaces, empty queries and gets
// of two namespaces are refused; another user's storage is forbidden; an
// empty element deletes.
func TestPrivateStorage(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")

	if got, cond := privateGet(t, a, "storage:bookmarks", "storage"); cond != "" || !strings.Contains(got, `<storage xmlns="storage:bookmarks"></storage>`) {
		t.Fatalf("empty get: %q %s", got, cond)
	}
	if cond := privateSet(t, a, `<storage xmlns="storage:bookmarks"><conference jid="r@conference.localhost" autojoin="true"><nick>al</nick></conference></storage>`); cond != "" {
		t.Fatalf("set: %s", cond)
	}
	if cond := privateSet(t, a, `<exodus xmlns="exodus:prefs"><defaultnick>Al</defaultnick></exodus>`); cond != "" {
		t.Fatalf("set 2: %s", cond)
	}
	got, cond := privateGet(t, a, "storage:bookmarks", "storage")
	if cond != "" || !strings.Contains(got, `jid="r@conference.localhost"`) || !strings.Contains(got, ">al</nick>") || strings.Contains(got, "exodus") {
		t.Fatalf("get bookmarks: %q %s", got, cond)
	}
	if got, _ := privateGet(t, a, "exodus:prefs", "exodus"); !strings.Contains(got, ">Al</defaultnick>") {
		t.Fatalf("get exodus: %q", got)
	}
	// Bob has his own (empty) storage and cannot address Alice's.
	if got, _ := privateGet(t, b, "storage:bookmarks", "storage"); strings.Contains(got, "conference") {
		t.Fatalf("bob reads alice's bookmarks: %q", got)
	}
	resp := b.IQ(t, `<iq type="get" id="x" to="alice@localhost"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"/></query></iq>`)
	if c := stanzaErrorCondition(resp); c != "forbidden" {
		t.Errorf("get of another user's storage: %q, want forbidden", c)
	}
	for _, tc := range []struct{ name, inner string }{
		{"jabber:", `<query xmlns="jabber:iq:roster"/>`},
		{"http://jabber.org/", `<x xmlns="http://jabber.org/protocol/muc"/>`},
		{"vcard-temp", `<vCard xmlns="vcard-temp"><FN>A</FN></vCard>`},
		{"empty query", ``},
	} {
		if c := privateSet(t, a, tc.inner); c != "not-acceptable" {
			t.Errorf("set %s: %q, want not-acceptable", tc.name, c)
		}
	}
	resp = a.IQ(t, `<iq type="get" id="two"><query xmlns="jabber:iq:private"><a xmlns="urn:a"/><b xmlns="urn:b"/></query></iq>`)
	if c := stanzaErrorCondition(resp); c != "not-acceptable" {
		t.Errorf("get of two namespaces: %q", c)
	}
	// An empty element deletes.
	if c := privateSet(t, a, `<exodus xmlns="exodus:prefs"/>`); c != "" {
		t.Fatal(c)
	}
	if got, _ := privateGet(t, a, "exodus:prefs", "exodus"); strings.Contains(got, "defaultnick") {
		t.Fatalf("after delete: %q", got)
	}
	if v, _ := ts.private.get("alice", "exodus:prefs"); v != nil {
		t.Fatalf("deleted namespace still stored: %q", v)
	}
}

// TestPrivateStorageLimits: more than 64 KiB in one namespace is
// not-acceptable, more than 256 KiB in all is policy-violation, and a
// refused set stores nothing; replacing a namespace at the limit works.
func TestPrivateStorageLimits(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	blob := func(ns string, n int) string {
		return `<d xmlns="` + ns + `">` + strings.Repeat("x", n) + `</d>`
	}
	if c := privateSet(t, a, blob("urn:big", maxPrivateNSBytes)); c != "not-acceptable" {
		t.Errorf("65 KiB namespace: %q, want not-acceptable", c)
	}
	for i := range 4 {
		if c := privateSet(t, a, blob(fmt.Sprintf("urn:n%d", i), 60<<10)); c != "" {
			t.Fatalf("namespace %d: %s", i, c)
		}
	}
	if c := privateSet(t, a, blob("urn:n4", 60<<10)); c != "policy-violation" {
		t.Errorf("over 256 KiB in all: %q, want policy-violation", c)
	}
	if v, _ := ts.private.get("alice", "urn:n4"); v != nil {
		t.Error("a refused set was stored")
	}
	if c := privateSet(t, a, blob("urn:n3", 61<<10)); c != "" {
		t.Errorf("replacing at the limit: %s", c)
	}
}

// TestVCard: XEP-0054 set and get of one's own vCard, get of another
// user's (item-not-found when none, the same for a name without account),
// set of another's forbidden, bad photo and too big refused, and the
// XEP-0153 photo hash in the user's presence.
func TestVCard(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	// Mutual roster: presence flows both ways.
	a.IQ(t, `<iq type="set" id="r"><query xmlns="jabber:iq:roster"><item jid="bob@localhost"/></query></iq>`)
	b.IQ(t, `<iq type="set" id="r"><query xmlns="jabber:iq:roster"><item jid="alice@localhost"/></query></iq>`)
	letSee(t, a, b) // RFC 6121: presence flows only with a subscription
	letSee(t, b, a)

	resp := a.IQ(t, `<iq type="get" id="v0"><vCard xmlns="vcard-temp"/></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("own empty vCard: %s", stanzaErrorCondition(resp))
	}
	img := []byte("\x89PNG fake image bytes for the hash")
	sum := sha1.Sum(img)
	hash := hex.EncodeToString(sum[:])
	b64 := base64.StdEncoding.EncodeToString(img)
	set := `<iq type="set" id="v1"><vCard xmlns="vcard-temp"><FN>Alice Liddell</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` +
		b64[:10] + "\n" + b64[10:] + `</BINVAL></PHOTO></vCard></iq>`
	if resp := a.IQ(t, set); resp.attr("type") != "result" {
		t.Fatalf("set: %s", stanzaErrorCondition(resp))
	}
	for _, c := range []*testClient{a, b} {
		resp := c.IQ(t, `<iq type="get" id="v2" to="alice@localhost"><vCard xmlns="vcard-temp"/></iq>`)
		v, ok := resp.child(xml.Name{Space: nsVCard, Local: "vCard"})
		fn, _ := v.child(xml.Name{Space: nsVCard, Local: "FN"})
		if !ok || fn.text() != "Alice Liddell" {
			t.Fatalf("%s gets alice's vCard: %v", c.JID, resp)
		}
	}
	for _, who := range []string{"bob@localhost", "nobody@localhost"} {
		resp := a.IQ(t, `<iq type="get" id="v3" to="`+who+`"><vCard xmlns="vcard-temp"/></iq>`)
		if c := stanzaErrorCondition(resp); c != "item-not-found" {
			t.Errorf("vCard of %s: %q, want item-not-found", who, c)
		}
	}
	resp = b.IQ(t, `<iq type="set" id="v4" to="alice@localhost"><vCard xmlns="vcard-temp"><FN>Mallory</FN></vCard></iq>`)
	if c := stanzaErrorCondition(resp); c != "forbidden" {
		t.Errorf("set of another's vCard: %q, want forbidden", c)
	}
	resp = b.IQ(t, `<iq type="set" id="v5"><vCard xmlns="vcard-temp"><PHOTO><BINVAL>not base64!</BINVAL></PHOTO></vCard></iq>`)
	if c := stanzaErrorCondition(resp); c != "not-acceptable" {
		t.Errorf("bad BINVAL: %q, want not-acceptable", c)
	}
	resp = b.IQ(t, `<iq type="set" id="v6"><vCard xmlns="vcard-temp"><DESC>`+strings.Repeat("d", maxVCardBytes)+`</DESC></vCard></iq>`)
	if c := stanzaErrorCondition(resp); c != "not-acceptable" {
		t.Errorf("vCard over 128 KiB: %q, want not-acceptable", c)
	}

	// Presence carries the photo hash, in place of one the client sent.
	b.Send(t, `<presence/>`)
	a.Send(t, `<presence><x xmlns="vcard-temp:x:update"><photo>0000</photo></x></presence>`)
	p := b.Next(t, func(e element) bool { // the one sent now, not earlier ones
		_, x := e.child(xml.Name{Space: nsVCardUpdate, Local: "x"})
		return e.start.Name.Local == "presence" && strings.HasPrefix(e.attr("from"), "alice@") && x
	})
	var photos []string
	for _, x := range p.children() {
		if x.start.Name == (xml.Name{Space: nsVCardUpdate, Local: "x"}) {
			ph, _ := x.child(xml.Name{Space: nsVCardUpdate, Local: "photo"})
			photos = append(photos, ph.text())
		}
	}
	if len(photos) != 1 || photos[0] != hash {
		t.Errorf("photo hashes in presence %v, want [%s]", photos, hash)
	}
	// An empty vCard deletes it (and the hash).
	if resp := a.IQ(t, `<iq type="set" id="v7"><vCard xmlns="vcard-temp"/></iq>`); resp.attr("type") != "result" {
		t.Fatal(stanzaErrorCondition(resp))
	}
	if v, _ := ts.vcards.get("alice"); v != nil || ts.vcards.photoHash("alice") != "" {
		t.Errorf("empty vCard set left %q / %q", v, ts.vcards.photoHash("alice"))
	}
}
