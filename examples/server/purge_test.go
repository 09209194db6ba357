package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/stream"
)

// needles returns the forms in which s could sit in a file: plain, hex and
// base64 (standard and URL alphabets, at each of the three alignments).
func needles(s string) [][]byte {
	out := [][]byte{[]byte(s), []byte(strings.ToUpper(s)), []byte(hex.EncodeToString([]byte(s))), []byte(strings.ToUpper(hex.EncodeToString([]byte(s))))}
	for pad := range 3 {
		in := append(bytes.Repeat([]byte{0}, pad), s...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(in)
			// Drop the characters that depend on the padding bytes and on
			// what follows the needle.
			start := (pad*8 + 5) / 6
			end := len(strings.TrimRight(e, "=")) - 2
			if end > start+4 {
				out = append(out, []byte(e[start:end]))
			}
		}
	}
	return out
}

// scanDir reports every file under dir that holds one of the needles.
func scanDir(t *testing.T, dir string, secrets ...string) []string {
	t.Helper()
	var found []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			for _, n := range needles(s) {
				if bytes.Contains(b, n) {
					rel, _ := filepath.Rel(dir, p)
					found = append(found, rel+": "+s+" as "+string(n))
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestDeleteLeavesNothing: after <remove/> and a purge, nothing of the user
// is left anywhere in the data directory: not the username, not a message
// body, not an uploaded file, not a PEP item, not a log line, not in a free
// database page.
// (The peer does not archive and has no roster item for the user, so every
// copy of the marker is the deleted user's own data.)
//
// Two ways to get there: the purge jobs of the running server (run at once
// after the erasure) and the -purge flag of a stopped one.
func TestDeleteLeavesNothing(t *testing.T) {
	for _, mode := range []string{"running server", "-purge"} {
		t.Run(mode, func(t *testing.T) { testDeleteLeavesNothing(t, mode == "-purge") })
	}
}

func testDeleteLeavesNothing(t *testing.T, purgeFlag bool) {
	const (
		user       = "zoltanq"
		chatMarker = "Mark3r-chat-8u7d"
		roomMarker = "Mark3r-room-3kq0"
		fileMarker = "Mark3r-file-x0p2"
		// A JID the user blocks (stored normalized: lower case).
		blockMarker = "mark3r-block-5vw1"
		pepMarker   = "Mark3r-pep-5v1m" // a PEP item (pep.go)
	)
	ts := startTestServer(t)
	ts.Register(t, user, "zoltan password")
	ts.Register(t, "bob", "bob password 1")
	z := ts.Login(t, user, "zoltan password")
	b := ts.Login(t, "bob", "bob password 1")
	z.Send(t, `<presence/>`)
	// A subscription request pending at bob (bob's roster gets no item
	// for it) and a blocklist entry with a spam report.
	z.Send(t, `<presence to="bob@localhost" type="subscribe"/>`)
	z.IQ(t, `<iq type="set" id="blk"><block xmlns="urn:xmpp:blocking"><item jid="`+blockMarker+`@example.org"><report xmlns="urn:xmpp:reporting:1" reason="urn:xmpp:reporting:spam"/></item></block></iq>`)
	setPrefs(t, z, "always")
	z.IQ(t, `<iq type="set" id="r"><query xmlns="jabber:iq:roster"><item jid="bob@localhost" name="B"/></query></iq>`)
	chat(t, z, b, chatMarker)
	if got, _ := mamQuery(t, z, "", ""); len(got) != 1 {
		t.Fatalf("the marker was not archived: %q", got)
	}
	uploadFile(t, ts, z, "f.txt", fileMarker)
	joinRoom(t, z, "zeta@conference.localhost/zed")
	z.IQ(t, `<iq type="set" id="c" to="zeta@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="muc#roomconfig_enablearchiving"><value>1</value></field></x></query></iq>`)
	z.Send(t, `<message to="zeta@conference.localhost" type="groupchat"><body>`+roomMarker+`</body></message>`)
	z.Next(t, isGroupchat(roomMarker))
	// An affiliation in a room of bob's (kept after the deletion: only the
	// user's affiliation must go).
	joinRoom(t, b, "bobs@conference.localhost/bob")
	if resp := adminIQ(t, b, "set", "bobs@conference.localhost", `<item affiliation="member" jid="`+user+`@localhost"/>`); resp.attr("type") != "result" {
		t.Fatalf("member: %s", stanzaErrorCondition(resp))
	}
	mustPublish(t, z, "urn:example:residue", "i1", `<note xmlns="urn:example">`+pepMarker+`</note>`, "access_model", "open")
	// Stored PEP subscriptions both ways (pepsubs.go): keys that name the
	// user, which the scan for the user's name finds if they stay.
	mustPublish(t, b, "urn:example:bobs", "i1", `<note xmlns="urn:example">bob's</note>`, "access_model", "open")
	for _, s := range []struct {
		c     *testClient
		owner string
		node  string
	}{{z, "bob@localhost", "urn:example:bobs"}, {b, user + "@localhost", "urn:example:residue"}} {
		if r := s.c.IQ(t, `<iq type="set" id="ps" to="`+s.owner+`"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="`+s.node+`" jid="`+s.c.JID.Bare().String()+`"/></pubsub></iq>`); r.attr("type") != "result" {
			t.Fatalf("PEP subscription: %s", stanzaErrorCondition(r))
		}
	}
	if subs, _ := ts.pep.store.subscriptions(); len(subs) != 2 {
		t.Fatalf("stored PEP subscriptions: %v", subs)
	}
	if found := scanDir(t, ts.DataDir, user, chatMarker, roomMarker, fileMarker, blockMarker, pepMarker); len(found) < 6 {
		t.Fatalf("the test data is not all on disk before the deletion (the scan would prove nothing): %v", found)
	}

	resp := z.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("remove: %s", stanzaErrorCondition(resp))
	}
	var se stream.Error
	if err := z.WaitEnd(t); !errors.As(err, &se) || se.Err != "not-authorized" {
		t.Fatalf("session ended with %v", err)
	}
	if c, err := ts.login(user, "zoltan password", false); err == nil {
		c.Close()
		t.Fatal("login after deletion")
	}
	b.Close()
	if !purgeFlag {
		// The erasure started the purge jobs in the background; run them
		// again to wait for them (RunJob waits for a run in progress).
		for _, name := range []string{"server.db", "mam.db", "upload.db", "accounts.db"} {
			if _, err := ts.scheduler.RunJob(context.Background(), purgeJobName(name)); err != nil {
				t.Fatalf("purge %s: %v", name, err)
			}
		}
	}
	if err := ts.Stop(); err != nil {
		t.Fatal(err)
	}
	if purgeFlag {
		cfg := ts.cfg
		cfg.Purge = true
		if err := run(context.Background(), cfg, nil); err != nil {
			t.Fatalf("-purge: %v", err)
		}
	}
	if found := scanDir(t, ts.DataDir, user, chatMarker, roomMarker, fileMarker, blockMarker, pepMarker); len(found) > 0 {
		t.Errorf("left in the data directory after deletion and purge:\n%s", strings.Join(found, "\n"))
	}
	// The server still works over the purged files.
	ts2 := startWithConfig(t, func() Config {
		c := ts.cfg
		c.C2S, c.C2STLS, c.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		return c
	}())
	ts2.Login(t, "bob", "bob password 1")
}
