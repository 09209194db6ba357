package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stanza"
)

// awaitHandled waits until the server has handled everything c sent before: it
// answers a ping only after the stanzas ahead of it, and their bounces
// come before its answer.
func awaitHandled(t *testing.T, c *testClient) {
	t.Helper()
	if resp := c.IQ(t, `<iq type="get" id="handled" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`); resp.attr("type") != "result" {
		t.Fatalf("ping: %s", stanzaErrorCondition(resp))
	}
}

// lastBounce reports whether an error for a message has already arrived at
// c, and its condition.
func lastBounce(c *testClient) (string, bool) {
	e, err := c.next(func(e element) bool { return e.start.Name.Local == "message" && e.attr("type") == "error" }, 0)
	if err != nil {
		return "", false
	}
	return stanzaErrorCondition(e), true
}

// offlineDelay returns the from and stamp of a message's XEP-0203 delay.
func offlineDelay(e element) (from, stamp string, ok bool) {
	d, ok := e.child(xml.Name{Space: stanza.NSDelay, Local: "delay"})
	return d.attr("from"), d.attr("stamp"), ok
}

// TestOfflineMessages: with -offline-messages on, chat messages to a user
// without a session are kept and handed over, in order and with the
// server's delay stamp, at the user's next initial presence; a forged
// server delay is dropped; beyond the per-user limit the sender gets
// service-unavailable; a message without body or with <no-store/> is not
// kept (bounced as before); the retention job deletes what outlived the
// flag, and an expired message is never delivered.
func TestOfflineMessages(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.Now = clock.Now
		c.OfflineMessages = 2 * time.Hour
		c.MaxOfflineMessages = 3
	}))
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password 1")
	}
	a := ts.Login(t, "alice", "alice password 1")
	for i := 1; i <= 3; i++ {
		a.Send(t, fmt.Sprintf(`<message to="bob@localhost" type="chat" id="m%d"><body>offline %d</body><delay xmlns="urn:xmpp:delay" from="localhost" stamp="1999-01-01T00:00:00Z"/></message>`, i, i))
		awaitHandled(t, a)
		clock.Advance(time.Minute)
	}
	if c, ok := lastBounce(a); ok {
		t.Fatalf("a kept message bounced: %s", c)
	}
	a.Send(t, `<message to="bob@localhost" type="chat" id="m4"><body>one too many</body></message>`)
	awaitHandled(t, a)
	if c, ok := lastBounce(a); !ok || c != "service-unavailable" {
		t.Errorf("message over the limit: bounced %v %q, want service-unavailable", ok, c)
	}
	for _, m := range []string{
		`<message to="carol@localhost" type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`,
		`<message to="carol@localhost" type="chat"><body>x</body><no-store xmlns="urn:xmpp:hints"/></message>`,
		`<message to="nobody@localhost" type="chat"><body>to no account</body></message>`,
	} {
		a.Send(t, m)
		awaitHandled(t, a)
		if c, ok := lastBounce(a); !ok || c != "service-unavailable" {
			t.Errorf("%s: bounced %v %q, want service-unavailable", m, ok, c)
		}
	}

	b := ts.Login(t, "bob", "bob password 1")
	b.Send(t, `<presence/>`)
	for i := 1; i <= 3; i++ {
		m := b.Next(t, isMessage)
		if body(m) != fmt.Sprintf("offline %d", i) || m.attr("from") != a.JID.String() {
			t.Fatalf("offline message %d: from %s body %q", i, m.attr("from"), body(m))
		}
		from, stamp, ok := offlineDelay(m)
		want := time.Date(2026, 12, 4, 12, i-1, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000000Z")
		if !ok || from != "localhost" || stamp != want {
			t.Errorf("message %d delay from %q stamp %q, want localhost %s", i, from, stamp, want)
		}
		if n := strings.Count(fmt.Sprint(m.inner), "1999-01-01"); n != 0 {
			t.Errorf("message %d keeps the forged server delay", i)
		}
	}
	awaitHandled(t, b) // delivery ends before b's next stanza is handled
	if msgs, _ := ts.offline.store.list("bob", 10); len(msgs) != 0 {
		t.Errorf("%d messages still stored after delivery", len(msgs))
	}

	// Expiry: one message expired by the job, one found expired at login.
	a.Send(t, `<message to="carol@localhost"><body>expires by the job</body></message>`)
	awaitHandled(t, a)
	clock.Advance(2 * time.Hour)
	r, err := ts.scheduler.RunJob(context.Background(), "offline-messages")
	if err != nil || r.Removed != 1 {
		t.Fatalf("offline-messages job: removed %d, %v", r.Removed, err)
	}
	a.Send(t, `<message to="carol@localhost"><body>expires unsent</body></message>`)
	awaitHandled(t, a)
	clock.Advance(2*time.Hour + time.Second)
	c := ts.Login(t, "carol", "carol password 1")
	c.Send(t, `<presence/>`)
	awaitHandled(t, c)
	if m, err := c.next(isMessage, 0); err == nil {
		t.Errorf("expired message delivered: %q", body(m))
	}
	if msgs, _ := ts.offline.store.list("carol", 10); len(msgs) != 0 {
		t.Errorf("expired message still stored")
	}
}

// TestOfflineMessagesOff: by default a message to a user without a
// session bounces, nothing is stored, the server does not advertise
// msgoffline, and /privacy says such messages are not kept.
func TestOfflineMessagesOff(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password 1")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password 1")
	a.Send(t, `<message to="bob@localhost" type="chat"><body>nobody keeps this</body></message>`)
	awaitHandled(t, a)
	if c, ok := lastBounce(a); !ok || c != "service-unavailable" {
		t.Errorf("bounce %v %q, want service-unavailable", ok, c)
	}
	if msgs, _ := ts.offline.store.list("bob", 10); len(msgs) != 0 {
		t.Error("stored with offline messages off")
	}
	resp := a.IQ(t, `<iq type="get" id="d" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	b, _ := resp.bytes()
	if strings.Contains(string(b), nsMsgOffline) || !strings.Contains(string(b), nsPrivate) || !strings.Contains(string(b), `"vcard-temp"`) {
		t.Errorf("disco#info: %s", b)
	}
	page := privacyPageText(t, ts)
	if !strings.Contains(page, "not kept: offline storage is off, the sender gets an error") {
		t.Errorf("/privacy does not say offline messages are refused:\n%s", page)
	}
	for _, want := range []string{"private XML storage", "vCard"} {
		if !strings.Contains(page, want) {
			t.Errorf("/privacy lacks %q", want)
		}
	}
}

// TestOfflineMessagesOnReport: with the flag on, /privacy lists offline
// messages with their retention job and the server advertises msgoffline.
func TestOfflineMessagesOnReport(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.OfflineMessages = 24 * time.Hour }))
	page := privacyPageText(t, ts)
	if !strings.Contains(page, "messages sent to you while you had no session") || !strings.Contains(page, "offline-messages") ||
		strings.Contains(page, "offline storage is off") {
		t.Errorf("/privacy with offline messages on:\n%s", page)
	}
	if !strings.Contains(strings.Join(ts.serverInfo().Features, " "), nsMsgOffline) {
		t.Error("msgoffline not advertised")
	}
}

func privacyPageText(t *testing.T, ts *testServer) string {
	t.Helper()
	res, err := ts.HTTPClient.Get(ts.HTTPSURL + "/privacy")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOfflineMessagesFlag: -offline-messages takes 0 to 720h; anything
// else stops the start with a clear error.
func TestOfflineMessagesFlag(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"0", true}, {"24h", true}, {"720h", true}, {"721h", false}, {"-1h", false}, {"soon", false}} {
		c, err := parseFlags([]string{"-offline-messages", tc.v}, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("-offline-messages %s: %v", tc.v, err)
		}
		if err != nil && tc.ok == false && tc.v != "soon" && !strings.Contains(err.Error(), "-offline-messages must be between 0 (off) and 720h") {
			t.Errorf("-offline-messages %s: unclear error %q", tc.v, err)
		}
		if tc.v == "24h" && c.OfflineMessages != 24*time.Hour {
			t.Errorf("parsed %v", c.OfflineMessages)
		}
	}
}

// TestPersonalDataExport: the export zip holds private XML as
// private/<namespace>.xml, the vCard as vcard.xml and each offline message
// as offline/NNN.xml.
func TestPersonalDataExport(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.OfflineMessages = time.Hour }))
	ts.Register(t, "alice", "alice password 1")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password 1")
	if c := privateSet(t, a, `<storage xmlns="storage:bookmarks"><conference jid="x@conference.localhost"/></storage>`); c != "" {
		t.Fatal(c)
	}
	if resp := a.IQ(t, `<iq type="set" id="v"><vCard xmlns="vcard-temp"><FN>Exported Alice</FN></vCard></iq>`); resp.attr("type") != "result" {
		t.Fatal(stanzaErrorCondition(resp))
	}
	a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	ts.sessions.waitGone(ctx, "alice")
	cancel()
	b := ts.Login(t, "bob", "bob password 1")
	b.Send(t, `<message to="alice@localhost" type="chat"><body>first while away</body></message>`)
	b.Send(t, `<message to="alice@localhost" type="chat"><body>second while away</body></message>`)
	awaitHandled(t, b)

	files := exportZip(t, ts, "alice", "alice password 1")
	for name, want := range map[string]string{
		"private/storage%3Abookmarks.xml": `jid="x@conference.localhost"`,
		"vcard.xml":                       "Exported Alice",
		"offline/001.xml":                 "first while away",
		"offline/002.xml":                 "second while away",
	} {
		if !strings.Contains(files[name], want) {
			t.Errorf("%s = %q, want it to hold %q (files %v)", name, files[name], want, keys(files))
		}
	}
}

// TestDeletePersonalDataLeavesNothing extends TestDeleteLeavesNothing to
// private XML, the vCard and offline messages: after deletion (on
// /account, the user offline with messages waiting) and a purge, none of
// it is in the data directory.
func TestDeletePersonalDataLeavesNothing(t *testing.T) {
	for _, mode := range []string{"running server", "-purge"} {
		t.Run(mode, func(t *testing.T) {
			const (
				user    = "zoltanq"
				private = "Mark3r-priv-7hq1"
				vcard   = "Mark3r-vcrd-2mw9"
				offline = "Mark3r-offl-5zt4"
			)
			ts := startTestServer(t, withConfig(func(c *Config) { c.OfflineMessages = time.Hour }))
			ts.Register(t, user, "zoltan password")
			ts.Register(t, "bob", "bob password 1")
			z := ts.Login(t, user, "zoltan password")
			if c := privateSet(t, z, `<p xmlns="urn:example:p">`+private+`</p>`); c != "" {
				t.Fatal(c)
			}
			if resp := z.IQ(t, `<iq type="set" id="v"><vCard xmlns="vcard-temp"><FN>`+vcard+`</FN></vCard></iq>`); resp.attr("type") != "result" {
				t.Fatal(stanzaErrorCondition(resp))
			}
			z.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			ts.sessions.waitGone(ctx, user)
			cancel()
			b := ts.Login(t, "bob", "bob password 1")
			b.Send(t, `<message to="`+user+`@localhost" type="chat"><body>`+offline+`</body></message>`)
			awaitHandled(t, b)
			if found := scanDir(t, ts.DataDir, private, vcard, offline); len(found) < 3 {
				t.Fatalf("the test data is not all on disk before the deletion: %v", found)
			}
			form := url.Values{"username": {user}, "password": {"zoltan password"}, "confirm": {user}}
			if status, page := postAccount(t, ts, "/account/delete", form); status != 200 {
				t.Fatalf("delete: %d\n%s", status, page)
			}
			b.Close()
			if mode == "running server" {
				for _, name := range []string{"server.db", "mam.db", "upload.db", "accounts.db"} {
					if _, err := ts.scheduler.RunJob(context.Background(), purgeJobName(name)); err != nil {
						t.Fatalf("purge %s: %v", name, err)
					}
				}
			}
			if err := ts.Stop(); err != nil {
				t.Fatal(err)
			}
			if mode == "-purge" {
				cfg := ts.cfg
				cfg.Purge = true
				if err := run(context.Background(), cfg, nil); err != nil {
					t.Fatalf("-purge: %v", err)
				}
			}
			if found := scanDir(t, ts.DataDir, user, private, vcard, offline); len(found) > 0 {
				t.Errorf("left in the data directory after deletion and purge:\n%s", strings.Join(found, "\n"))
			}
		})
	}
}
