package main

import (
	"context"
	"encoding/xml"
	"sync"
	"testing"

	"chatbx.eu/privacy/mam"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// holdArchiveCommits holds the commits of the server's message archive
// until the returned release is called (also at the end of the test): a
// write transaction of the test keeps bbolt's writer lock on mam.db, so the
// group committer cannot start its transaction. Archive ids are assigned
// before the commit (mam.Archiver.StageAll) and preferences are read in
// read transactions, which the held one does not block.
func holdArchiveCommits(t *testing.T, ts *testServer) (release func()) {
	t.Helper()
	var db *bolt.DB
	for _, n := range ts.Server.dbs {
		if n.name == "mam.db" {
			db = n.db
		}
	}
	if db == nil {
		t.Fatal("no mam.db")
	}
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback() }) }
	t.Cleanup(release) // before the server stops, also when the test fails
	return release
}

// TestArchiveBeforeRouteAndAck proves the durability promise of the
// archive pipeline (archivepipe.go) with the archive's commit held by the
// test, both ways a message is acknowledged:
//
//   - without XEP-0198 (the routing is the acknowledgement), alice's
//     message is not routed to bob while its commit is pending: a later
//     message from carol, routed without archiving, reaches bob first;
//     once the commit is done, bob gets it stamped with his archive's id;
//   - with XEP-0198 on alice's stream, the message reaches bob at once,
//     stamped with the id his archive's commit stores it under, but
//     alice's <r/> is not answered while the commit is pending (carol's
//     later message to her arrives first); once it is done, alice gets
//     <a h='1'/> and bob's archive holds the message under the id he got.
func TestArchiveBeforeRouteAndAck(t *testing.T) {
	for _, sm := range []bool{false, true} {
		name := map[bool]string{false: "routing-acknowledges", true: "sm-acknowledges"}[sm]
		t.Run(name, func(t *testing.T) { testArchiveBeforeRouteAndAck(t, sm) })
	}
}

func testArchiveBeforeRouteAndAck(t *testing.T, sm bool) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	b := ts.Login(t, "bob", "bob password")
	setPrefs(t, b, "always") // bob archives; alice and carol do not
	c := ts.Login(t, "carol", "carol password")
	var raw *rawClient
	var plain *testClient
	var aliceJID string
	if sm {
		raw, aliceJID, _ = smEnable(t, ts, "alice", "alice password")
	} else {
		plain = ts.Login(t, "alice", "alice password")
		aliceJID = plain.JID.String()
	}
	release := holdArchiveCommits(t, ts)

	const durable = `<message to='bob@localhost' type='chat' id='m1'><body>durable</body></message>`
	noStore := `<no-store xmlns='urn:xmpp:hints'/>`
	if !sm {
		plain.Send(t, durable)
		// Carol's message is not archived (no-store hint, and carol has
		// no archive): routed at once. Alice's is not before its commit.
		c.Send(t, `<message to='bob@localhost' type='chat'><body>marker</body>`+noStore+`</message>`)
		if m := b.Next(t, isMessage); body(m) != "marker" {
			t.Fatalf("bob got %q before its archive commit was done", body(m))
		}
		release()
		m := b.Next(t, isMessage)
		if body(m) != "durable" || stanzaIDBy(m, "bob@localhost") == "" {
			t.Fatalf("bob got %q (stanza-id %q)", body(m), stanzaIDBy(m, "bob@localhost"))
		}
		return
	}

	raw.write(t, durable+`<r xmlns='urn:xmpp:sm:3'/>`)
	m := b.Next(t, isMessage) // while the commit is held
	id := stanzaIDBy(m, "bob@localhost")
	if body(m) != "durable" || id == "" {
		t.Fatalf("bob got %q (stanza-id %q)", body(m), id)
	}
	c.Send(t, `<message to='`+aliceJID+`' type='chat'><body>marker</body>`+noStore+`</message>`)
	if e := raw.nextSkipping(t, nil); e.start.Name.Local != "message" || body(e) != "marker" {
		t.Fatalf("alice got <%s h=%q> before the archive commit of her message was done", e.start.Name.Local, e.attr("h"))
	}
	release()
	if e := raw.nextSkipping(t, nil); e.start.Name != (xml.Name{Space: nsSM, Local: "a"}) || e.attr("h") != "1" {
		t.Fatalf("alice got <%s h=%q>, want <a h='1'/>", e.start.Name.Local, e.attr("h"))
	}
	page, err := ts.Server.mamStore.Query(testCtx(t), jid.MustParse("bob@localhost"), mam.Query{})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].ID != id {
		t.Fatalf("bob's archive after the acknowledgement: %+v, %v; want the message under %s", page.Messages, err, id)
	}
}

// testCtx is a context that ends after testTimeout or with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
