package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

func newTestPEPStore(t testing.TB) *pepStore {
	t.Helper()
	db, err := openDB(filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := newPEPStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func intp(n int) *int       { return &n }
func strp(s string) *string { return &s }
func item(id, xml string) pepItem {
	return pepItem{ID: id, XML: []byte(xml), Published: time.Unix(0, 0)}
}

// recount walks the user's nodes and counts what the usage record should
// say.
func recount(t *testing.T, st *pepStore, user string) pepUsage {
	t.Helper()
	var u pepUsage
	err := st.db.View(func(tx *bolt.Tx) error {
		ub := tx.Bucket(bucketPEP).Bucket([]byte(user))
		if ub == nil {
			return nil
		}
		return ub.ForEachBucket(func(k []byte) error {
			u.Nodes++
			items := ub.Bucket(k).Bucket(pepKeyItems)
			if items == nil {
				return nil
			}
			return items.ForEach(func(_, v []byte) error {
				var it pepItem
				if err := json.Unmarshal(v, &it); err != nil {
					return err
				}
				u.Items++
				u.Bytes += it.size()
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPEPStoreLimits: the per-user limits on nodes, items and bytes refuse
// the change that would pass them and keep everything else as it was;
// replacing an item at the limit works; removing frees room.
func TestPEPStoreLimits(t *testing.T) {
	t.Parallel()
	st := newTestPEPStore(t)
	st.maxNodes, st.maxItems, st.maxBytes = 2, 3, 60
	many := pepOptions{maxItems: intp(10)}
	pub := func(node, id, payload string) error {
		_, _, err := st.publish("alice", node, many, item(id, payload))
		return err
	}
	for _, n := range []string{"a", "b"} {
		if err := pub(n, "1", "<x/>"); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub("c", "1", "<x/>"); !errors.Is(err, errPEPQuota) {
		t.Fatalf("third node: %v, want errPEPQuota", err)
	}
	if err := pub("a", "2", "<x/>"); err != nil {
		t.Fatal(err)
	}
	if err := pub("a", "3", "<x/>"); !errors.Is(err, errPEPQuota) {
		t.Fatalf("fourth item: %v, want errPEPQuota", err)
	}
	if err := pub("a", "2", "<y>replaced</y>"); err != nil {
		t.Fatalf("replacing at the limit: %v", err)
	}
	if err := pub("b", "1", "<y>"+strings.Repeat("z", 60)+"</y>"); !errors.Is(err, errPEPQuota) {
		t.Fatalf("over the byte limit: %v, want errPEPQuota", err)
	}
	if got, _ := st.items("alice", "b", nil, 0); len(got) != 1 || string(got[0].XML) != "<x/>" {
		t.Errorf("a refused replacement changed the item: %+v", got)
	}
	if err := st.retract("alice", "a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := pub("a", "3", "<x/>"); err != nil {
		t.Fatalf("after a retract: %v", err)
	}
	if err := st.deleteNode("alice", "b"); err != nil {
		t.Fatal(err)
	}
	if err := pub("c", "1", "<x/>"); err != nil {
		t.Fatalf("after a node deletion: %v", err)
	}
	if err := pub("b", "1", "<x/>"); !errors.Is(err, errPEPQuota) {
		t.Fatalf("third node again: %v", err)
	}
	if _, _, err := st.publish("bob", "c", many, item("1", "<x/>")); err != nil {
		t.Fatalf("another user: %v", err)
	}
	if u, want := st.usage("alice"), recount(t, st, "alice"); u != want {
		t.Errorf("usage %+v, recount %+v", u, want)
	}
}

// TestPEPStoreUsage: after any sequence of publishes (with trimming),
// retracts, purges, reconfigurations and deletions the usage record is
// what the stored items add up to, and erasure leaves nothing of the user.
func TestPEPStoreUsage(t *testing.T) {
	t.Parallel()
	st := newTestPEPStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	nodes := []string{"n1", "n2", "n3"}
	for i := range 400 {
		node := nodes[r.IntN(len(nodes))]
		id := fmt.Sprint(r.IntN(6))
		var err error
		switch r.IntN(6) {
		case 0, 1, 2:
			_, _, err = st.publish("alice", node, pepOptions{maxItems: intp(1 + r.IntN(4))}, item(id, strings.Repeat("p", r.IntN(50))))
			if errors.Is(err, errPEPPrecondition) {
				_, _, err = st.publish("alice", node, pepOptions{}, item(id, "<p/>"))
			}
		case 3:
			err = st.retract("alice", node, id)
		case 4:
			if r.IntN(2) == 0 {
				err = st.purge("alice", node)
			} else {
				err = st.configure("alice", node, nodeConfig{Access: accessOpen, Persist: r.IntN(3) > 0, MaxItems: 1 + r.IntN(3), SendLast: sendLastNever})
			}
		case 5:
			err = st.deleteNode("alice", node)
		}
		if err != nil && !errors.Is(err, errPEPNodeNotFound) && !errors.Is(err, errPEPItemNotFound) {
			t.Fatalf("step %d: %v", i, err)
		}
		if u, want := st.usage("alice"), recount(t, st, "alice"); u != want {
			t.Fatalf("step %d: usage %+v, recount %+v", i, u, want)
		}
	}
	if err := st.erase("alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.erase("alice"); err != nil {
		t.Fatalf("second erase: %v", err)
	}
	if u := st.usage("alice"); u != (pepUsage{}) {
		t.Errorf("usage after erase: %+v", u)
	}
	if n, _ := st.nodes("alice"); len(n) != 0 {
		t.Errorf("nodes after erase: %v", n)
	}
}

// TestPEPStoreHolder: the export is XML naming every node with its
// configuration and items; Erase removes one user's data only.
func TestPEPStoreHolder(t *testing.T) {
	t.Parallel()
	srv := newOfflineServer(t)
	p := srv.pep
	for _, u := range []string{"alice", "bob"} {
		if _, _, err := p.store.publish(u, "urn:xmpp:avatar:metadata", pepOptions{access: strp(accessOpen)}, item("h", `<metadata xmlns="urn:xmpp:avatar:metadata">`+u+`-meta</metadata>`)); err != nil {
			t.Fatal(err)
		}
	}
	alice := jid.MustParse("alice@localhost")
	p.subscribeJID(pepNodeKey{"bob", "urn:xmpp:avatar:metadata"}, alice)
	var b bytes.Buffer
	if err := p.Export(context.Background(), alice, &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"alice-meta", "name='urn:xmpp:avatar:metadata'", "access_model='open'", "owner='bob@localhost'"} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "bob-meta") {
		t.Errorf("export holds bob's item:\n%s", out)
	}
	if _, err := parseElement(b.Bytes()); err != nil {
		t.Errorf("export is not XML: %v", err)
	}
	if err := p.Erase(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if n, _ := p.store.nodes("alice"); len(n) != 0 {
		t.Errorf("alice's nodes after Erase: %v", n)
	}
	if n, _ := p.store.nodes("bob"); len(n) != 1 {
		t.Errorf("bob's nodes after alice's Erase: %v", n)
	}
	if len(p.subs) != 0 || len(p.nsubs) != 0 {
		t.Errorf("alice's subscriptions after Erase: %v %v", p.subs, p.nsubs)
	}
}

// TestCapsVer: XEP-0115 § 5.2 and § 5.3's examples give their published
// verification strings; duplicates are refused.
func TestCapsVer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ query, ver string }{
		{`<query xmlns="http://jabber.org/protocol/disco#info">
			<identity category="client" name="Exodus 0.9.1" type="pc"/>
			<feature var="http://jabber.org/protocol/caps"/>
			<feature var="http://jabber.org/protocol/disco#info"/>
			<feature var="http://jabber.org/protocol/disco#items"/>
			<feature var="http://jabber.org/protocol/muc"/></query>`, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{`<query xmlns="http://jabber.org/protocol/disco#info">
			<identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>
			<identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>
			<feature var="http://jabber.org/protocol/caps"/>
			<feature var="http://jabber.org/protocol/disco#info"/>
			<feature var="http://jabber.org/protocol/disco#items"/>
			<feature var="http://jabber.org/protocol/muc"/>
			<x xmlns="jabber:x:data" type="result">
			<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>
			<field var="ip_version"><value>ipv4</value><value>ipv6</value></field>
			<field var="os"><value>Mac</value></field>
			<field var="os_version"><value>10.5.1</value></field>
			<field var="software"><value>Psi</value></field>
			<field var="software_version"><value>0.11</value></field></x></query>`, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	} {
		q, err := parseElement([]byte(tc.query))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := capsVer(q); err != nil || got != tc.ver {
			t.Errorf("ver %q (%v), want %q", got, err, tc.ver)
		}
	}
	dup, _ := parseElement([]byte(`<query xmlns="http://jabber.org/protocol/disco#info"><feature var="a"/><feature var="a"/></query>`))
	if _, err := capsVer(dup); !errors.Is(err, errCapsDuplicate) {
		t.Errorf("duplicate feature: %v", err)
	}
}

// TestPEPForm: publish-options and configure forms.
func TestPEPForm(t *testing.T) {
	t.Parallel()
	form := func(fields string) element {
		e, err := parseElement([]byte(`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>` + nsPubSubPublishOptions + `</value></field>` + fields + `</x>`))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	o, err := parsePEPForm(form(`<field var="pubsub#access_model"><value>open</value></field><field var="pubsub#max_items"><value>max</value></field><field var="pubsub#persist_items"><value>true</value></field><field var="pubsub#notify_retract"><value>1</value></field>`), nsPubSubPublishOptions)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.apply(defaultNodeConfig()); c != (nodeConfig{Access: accessOpen, Persist: true, MaxItems: pepMaxItemsPerNode, SendLast: sendLastOnSubPresence}) {
		t.Errorf("config %+v", c)
	}
	for fields, want := range map[string]error{
		`<field var="pubsub#access_model"><value>authorize</value></field>`:                     errPEPUnsupported,
		`<field var="pubsub#max_items"><value>0</value></field>`:                                errPEPUnsupported,
		`<field var="pubsub#persist_items"><value>maybe</value></field>`:                        errPEPForm,
		`<field var="pubsub#max_items"><value>1</value><value>2</value></field>`:                errPEPForm,
		`<field var="pubsub#send_last_published_item"><value>always</value></field>`:            errPEPUnsupported,
		`<field var="pubsub#max_items"><value>1</value></field><field var="pubsub#max_items"/>`: errPEPForm,
	} {
		if _, err := parsePEPForm(form(fields), nsPubSubPublishOptions); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", fields, err, want)
		}
	}
	if _, err := parsePEPForm(form(""), nsPubSubNodeConfig); !errors.Is(err, errPEPForm) {
		t.Errorf("wrong FORM_TYPE: %v", err)
	}
	if o, _ := parsePEPForm(form(`<field var="pubsub#max_items"><value>99999</value></field>`), nsPubSubPublishOptions); *o.maxItems != pepMaxItemsPerNode {
		t.Errorf("max_items above the cap: %d", *o.maxItems)
	}
}

// FuzzPEPForm: no form makes the parser panic, and whatever it accepts is
// a configuration within the server's bounds.
func FuzzPEPForm(f *testing.F) {
	f.Add(`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var="pubsub#access_model"><value>open</value></field><field var="pubsub#max_items"><value>max</value></field></x>`)
	f.Add(`<x xmlns="jabber:x:data" type="submit"><field var="pubsub#persist_items"><value>0</value></field><field var="pubsub#send_last_published_item"><value>never</value></field></x>`)
	f.Add(`<x xmlns="jabber:x:data" type="submit"><field var="pubsub#max_items"><value>-9223372036854775808</value></field></x>`)
	f.Add(`<x xmlns="jabber:x:data" type="form"/>`)
	f.Fuzz(func(t *testing.T, raw string) {
		x, err := parseElement([]byte(raw))
		if err != nil {
			return
		}
		o, err := parsePEPForm(x, nsPubSubPublishOptions)
		if err != nil {
			return
		}
		c := o.apply(defaultNodeConfig())
		switch {
		case c.MaxItems < 1 || c.MaxItems > pepMaxItemsPerNode:
			t.Errorf("max_items %d", c.MaxItems)
		case c.Access != accessOpen && c.Access != accessPresence && c.Access != accessRoster && c.Access != accessWhitelist:
			t.Errorf("access model %q", c.Access)
		case c.SendLast != sendLastNever && c.SendLast != sendLastOnSub && c.SendLast != sendLastOnSubPresence:
			t.Errorf("send_last_published_item %q", c.SendLast)
		}
		if !o.matches(c) {
			t.Error("a configuration does not match the options it was made from")
		}
	})
}
