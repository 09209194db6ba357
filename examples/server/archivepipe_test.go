package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"sync"
	"testing"

	"chatbx.eu/privacy/mam"
)

// holdStore is a message archive whose appends wait, while held, until the
// test releases them: entered receives each held append's stanza first.
type holdStore struct {
	mam.Store
	entered chan []byte
	release chan struct{}
}

func (h *holdStore) Append(ctx context.Context, m mam.Message) (mam.Message, error) {
	h.entered <- m.Stanza
	<-h.release
	return h.Store.Append(ctx, m)
}

// TestArchiveBeforeRouteAndAck proves the durability promise of the
// archive pipeline (archivepipe.go) with an archive whose commit waits for
// the test: while the recipient's archive commit of alice's message is
// pending, the message is not routed to bob (a later message from carol,
// routed without archiving, reaches bob first) and alice's <r/> is not
// answered (carol's message to her arrives first); once the commit is
// done, bob gets the message stamped with his archive's id and alice
// <a h='1'/>.
func TestArchiveBeforeRouteAndAck(t *testing.T) {
	hold := &holdStore{entered: make(chan []byte, 1), release: make(chan struct{})}
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.archiveStore = func(s mam.Store) mam.Store { hold.Store = s; return hold }
	}))
	var once sync.Once
	release := func() { once.Do(func() { close(hold.release) }) }
	t.Cleanup(release) // before the server stops, also when the test fails
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	b := ts.Login(t, "bob", "bob password")
	setPrefs(t, b, "always") // bob archives; alice and carol do not
	c := ts.Login(t, "carol", "carol password")
	a, aliceJID, _ := smEnable(t, ts, "alice", "alice password")

	a.write(t, `<message to='bob@localhost' type='chat' id='m1'><body>durable</body></message><r xmlns='urn:xmpp:sm:3'/>`)
	select {
	case st := <-hold.entered:
		if !bytes.Contains(st, []byte("durable")) {
			t.Fatalf("held append of %s", st)
		}
	case <-testCtx(t).Done():
		t.Fatal("no archive append of alice's message")
	}

	// The commit is pending. Carol's messages are not archived (no-store
	// hint, and carol has no archive): routed at once, behind whatever
	// bob's and alice's queues already hold.
	noStore := `<no-store xmlns='urn:xmpp:hints'/>`
	c.Send(t, `<message to='bob@localhost' type='chat'><body>marker</body>`+noStore+`</message>`)
	c.Send(t, `<message to='`+aliceJID+`' type='chat'><body>marker</body>`+noStore+`</message>`)
	if m := b.Next(t, isMessage); body(m) != "marker" {
		t.Fatalf("bob got %q before its archive commit was done", body(m))
	}
	if e := a.nextSkipping(t, nil); e.start.Name.Local != "message" || body(e) != "marker" {
		t.Fatalf("alice got <%s h=%q> before the archive commit of her message was done", e.start.Name.Local, e.attr("h"))
	}

	release()
	m := b.Next(t, isMessage)
	if body(m) != "durable" || stanzaIDBy(m, "bob@localhost") == "" {
		t.Fatalf("bob got %q (stanza-id %q)", body(m), stanzaIDBy(m, "bob@localhost"))
	}
	if e := a.nextSkipping(t, nil); e.start.Name != (xml.Name{Space: nsSM, Local: "a"}) || e.attr("h") != "1" {
		t.Fatalf("alice got <%s h=%q>, want <a h='1'/>", e.start.Name.Local, e.attr("h"))
	}
}

// testCtx is a context that ends after testTimeout or with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
