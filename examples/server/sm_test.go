package main

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// smAuth opens a raw direct-TLS stream for user, authenticates and
// returns the features offered after authentication.
func smAuth(t *testing.T, ts *testServer, user, password string) (*rawClient, element) {
	t.Helper()
	c := dialRaw(t, ts.C2STLS, "127.0.0.1", ts.TLSConfig)
	c.open(t)
	c.write(t, `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>`+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))+`</auth>`)
	if e, err := c.next(); err != nil || e.start.Name.Local != "success" {
		t.Fatalf("auth: %v %v", e.start.Name, err)
	}
	return c, c.open(t)
}

// smBind binds a resource on c and returns the full JID.
func smBind(t *testing.T, c *rawClient) string {
	t.Helper()
	c.write(t, `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`)
	e, err := c.next()
	if err != nil || e.attr("type") != "result" {
		t.Fatalf("bind: %v %v", e.attr("type"), err)
	}
	b, _ := e.child(xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "bind"})
	j, _ := b.child(xml.Name{Space: "urn:ietf:params:xml:ns:xmpp-bind", Local: "jid"})
	return j.text()
}

// smEnable logs user in on a raw stream, binds and enables stream
// management with resumption; it returns the client, its JID and the
// <enabled/> element.
func smEnable(t *testing.T, ts *testServer, user, password string) (*rawClient, string, element) {
	t.Helper()
	c, features := smAuth(t, ts, user, password)
	if _, ok := features.child(xml.Name{Space: nsSM, Local: "sm"}); !ok {
		t.Fatal("no <sm xmlns='urn:xmpp:sm:3'/> among the features after authentication")
	}
	j := smBind(t, c)
	c.write(t, `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`)
	e := c.nextSkipping(t, nil)
	if e.start.Name != (xml.Name{Space: nsSM, Local: "enabled"}) || e.attr("id") == "" || e.attr("resume") != "true" {
		t.Fatalf("enable answered %v %v", e.start.Name, e.start.Attr)
	}
	return c, j, e
}

// nextSkipping returns the next element that is not one of the server's
// <r/> requests (answered with h when h is not nil).
func (c *rawClient) nextSkipping(t *testing.T, h *int) element {
	t.Helper()
	for {
		e, err := c.next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if e.start.Name == (xml.Name{Space: nsSM, Local: "r"}) {
			if h != nil {
				c.write(t, fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, *h))
			}
			continue
		}
		return e
	}
}

// nextMessage reads up to the next message with a body, counting every
// stanza in *h.
func (c *rawClient) nextMessage(t *testing.T, h *int) element {
	t.Helper()
	for {
		e := c.nextSkipping(t, nil)
		if e.start.Name.Space == nsSM {
			continue
		}
		*h++
		if isMessage(e) {
			return e
		}
	}
}

// liveSession returns the server's session bound to full.
func liveSession(t *testing.T, ts *testServer, full string) *session {
	t.Helper()
	j, err := jid.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	v := ts.sessions.lookup(j)
	if len(v) != 1 {
		t.Fatalf("%s: %d sessions", full, len(v))
	}
	return v[0]
}

func unackedLen(s *session) int {
	s.sm.mu.Lock()
	defer s.sm.mu.Unlock()
	return len(s.sm.unacked)
}

// TestSMAcks: <enable/> → <enabled id resume max/>; the server counts the
// client's stanzas (<r/> → <a h/>), asks for acknowledgements, and an <a/>
// frees its queue of unacknowledged stanzas; an h beyond what was sent
// ends the stream.
func TestSMAcks(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	b := ts.Login(t, "bob", "bob pass 12")
	c, j, enabled := smEnable(t, ts, "alice", "alice pass 1")
	if enabled.attr("max") != strconv.Itoa(int(defaultSMResumeTimeout/time.Second)) {
		t.Errorf("max=%q, want the default window in seconds", enabled.attr("max"))
	}

	// Two stanzas from the client, then <r/>: h=2. The ping's answer is
	// counted and queued like any other stanza.
	c.write(t, `<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	c.write(t, `<message to='bob@localhost' type='chat'><body>hello</body></message>`)
	c.write(t, `<r xmlns='urn:xmpp:sm:3'/>`)
	if m := b.Next(t, isMessage); body(m) != "hello" {
		t.Fatalf("bob got %q", body(m))
	}
	h := 0
	if e := c.nextSkipping(t, nil); e.attr("id") != "p1" || e.attr("type") != "result" {
		t.Fatalf("ping answer: %v", e.start)
	}
	h++
	if e := c.nextSkipping(t, nil); e.start.Name.Local != "a" || e.attr("h") != "2" {
		t.Fatalf("want <a h='2'/>, got %v %v", e.start.Name, e.start.Attr)
	}

	// Three messages to alice: kept, with the ping's answer, until
	// acknowledged.
	for i := range 3 {
		b.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>m%d</body></message>`, j, i))
	}
	for i := range 3 {
		if m := c.nextMessage(t, &h); body(m) != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %q", body(m))
		}
	}
	// The writer notes a stanza just after writing it: a round trip
	// through it (<r/> → <a/>) makes its notes visible.
	c.write(t, `<r xmlns='urn:xmpp:sm:3'/>`)
	if e := c.nextSkipping(t, nil); e.start.Name.Local != "a" {
		t.Fatalf("want <a/>, got %v", e.start.Name)
	}
	s := liveSession(t, ts, j)
	if n := unackedLen(s); n != 4 { // the ping's answer too
		t.Fatalf("%d unacknowledged, want 4", n)
	}
	// A partial ack leaves one; the server asks again (<r/>).
	c.write(t, fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h-1))
	if e, err := c.next(); err != nil || e.start.Name.Local != "r" {
		t.Fatalf("after a partial ack: %v %v, want <r/>", e.start.Name, err)
	}
	if n := unackedLen(s); n != 1 {
		t.Fatalf("%d unacknowledged after a partial ack, want 1", n)
	}
	c.write(t, fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h))
	c.write(t, `<r xmlns='urn:xmpp:sm:3'/>`) // a round trip: the ack was handled
	if e := c.nextSkipping(t, nil); e.start.Name.Local != "a" || e.attr("h") != "2" {
		t.Fatalf("want <a h='2'/>, got %v %v", e.start.Name, e.start.Attr)
	}
	if n := unackedLen(s); n != 0 {
		t.Fatalf("%d unacknowledged after the full ack, want 0", n)
	}
	// A second <enable/> fails; an ack of more than was sent ends the stream.
	c.write(t, `<enable xmlns='urn:xmpp:sm:3'/>`)
	if e := c.nextSkipping(t, nil); e.start.Name.Local != "failed" {
		t.Fatalf("second enable: %v", e.start.Name)
	}
	c.write(t, fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, h+5))
	if cond := c.streamError(t); cond != "undefined-condition" {
		t.Fatalf("ack too high: %s", cond)
	}
}

// TestSMAckWraps: counts are modulo 2^32.
func TestSMAckWraps(t *testing.T) {
	m := &smState{enabled: true, counting: true, limit: 10, out: 1<<32 - 2}
	msg := element{start: xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "message"}}}
	for range 4 {
		if over, _ := m.sent(msg, false); over {
			t.Fatal("over the limit")
		}
	}
	if m.out != 2 {
		t.Fatalf("out = %d, want 2 (wrapped)", m.out)
	}
	if more, err := m.ack(1<<32 - 1); err != nil || !more || len(m.unacked) != 3 {
		t.Fatalf("ack before the wrap: more %v, err %v, %d left", more, err, len(m.unacked))
	}
	if more, err := m.ack(1); err != nil || !more || len(m.unacked) != 1 {
		t.Fatalf("ack across the wrap: more %v, err %v, %d left", more, err, len(m.unacked))
	}
	if _, err := m.ack(3); err == nil {
		t.Fatal("an ack beyond what was sent is accepted")
	}
	for range 10 {
		m.sent(msg, false)
	}
	if over, _ := m.sent(msg, false); !over {
		t.Fatal("the unacknowledged queue is not bounded")
	}
}

// TestSMResume: a dropped connection's unacknowledged messages wait in
// memory only (nothing of them in the data directory), and a new
// connection that resumes gets <resumed/>, the messages it had not
// handled and the same full JID; resuming a session whose connection is
// still open closes that connection.
func TestSMResume(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	b := ts.Login(t, "bob", "bob pass 12")
	c1, j, enabled := smEnable(t, ts, "alice", "alice pass 1")
	id := enabled.attr("id")

	secret := "unacked-" + randomResource()
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="x1"><body>first</body></message>`, j))
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="x2"><body>%s</body></message>`, j, secret))
	h := 0
	c1.nextMessage(t, &h) // first: handled
	if m := c1.nextMessage(t, &h); body(m) != secret {
		t.Fatalf("got %q", body(m))
	}
	s1 := liveSession(t, ts, j)
	c1.conn.Close() // dropped: no </stream:stream>, no ack
	<-s1.writerDone

	// Parked in memory: not in any file of the data directory.
	filepath.WalkDir(ts.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s holds an unacknowledged message", path)
		}
		return nil
	})

	// Resume having handled only the first: the second comes again.
	c2, _ := smAuth(t, ts, "alice", "alice pass 1")
	c2.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='1'/>`, id))
	e := c2.nextSkipping(t, nil)
	if e.start.Name.Local != "resumed" || e.attr("previd") != id || e.attr("h") != "0" {
		t.Fatalf("resume answered %v %v", e.start.Name, e.start.Attr)
	}
	h = 1
	if m := c2.nextMessage(t, &h); body(m) != secret || m.attr("id") != "x2" {
		t.Fatalf("resent %q, want the unacknowledged message", body(m))
	}
	// The same full JID is bound again.
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>after</body></message>`, j))
	if m := c2.nextMessage(t, &h); body(m) != "after" {
		t.Fatalf("got %q after resuming", body(m))
	}

	// Resume again while c2 is still connected: c2 is closed, c3 gets
	// what c2 had not acknowledged (the last two).
	c3, _ := smAuth(t, ts, "alice", "alice pass 1")
	c3.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, id, h-2))
	if e := c3.nextSkipping(t, nil); e.start.Name.Local != "resumed" {
		t.Fatalf("second resume answered %v", e.start.Name)
	}
	if err := c2.closed(); err != nil {
		t.Fatalf("the old connection is not closed: %v", err)
	}
	h -= 2
	for _, want := range []string{secret, "after"} {
		if m := c3.nextMessage(t, &h); body(m) != want {
			t.Fatalf("got %q, want %q", body(m), want)
		}
	}
}

// TestSMResumeRefused: another user's id, an unknown id and an id whose
// window ended get <failed><item-not-found/></failed>, after which the
// client binds on the same stream; at the end of the window the parked
// message is bounced to its sender, unless it was archived for the
// recipient.
func TestSMResumeRefused(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.SMResumeTimeout = 100 * time.Millisecond }))
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	ts.Register(t, "carol", "carol pass 1")
	b := ts.Login(t, "bob", "bob pass 12")
	cl := ts.Login(t, "carol", "carol pass 1")
	c1, j, enabled := smEnable(t, ts, "alice", "alice pass 1")
	id := enabled.attr("id")
	if enabled.attr("max") != "0" {
		// 100 ms rounds down to 0 s in the attribute.
		t.Logf("max=%s", enabled.attr("max"))
	}

	// Another user cannot resume alice's session, nor can anyone with a
	// made-up id; both may bind after <failed/>.
	for _, tc := range []struct{ user, pass, id string }{
		{"bob", "bob pass 12", id},
		{"alice", "alice pass 1", "AAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		c, _ := smAuth(t, ts, tc.user, tc.pass)
		c.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, tc.id))
		e := c.nextSkipping(t, nil)
		if e.start.Name.Local != "failed" {
			t.Fatalf("%s resuming %s: %v", tc.user, tc.id, e.start.Name)
		}
		if _, ok := e.child(xml.Name{Space: stanza.NSError, Local: "item-not-found"}); !ok {
			t.Errorf("failed without item-not-found")
		}
		if got := smBind(t, c); got == j {
			t.Fatalf("%s got alice's JID", tc.user)
		}
	}

	// Alice archives everything but carol's messages: bob's is left to
	// the archive, carol's is bounced when the window ends.
	c1.write(t, `<iq type='set' id='prefs'><prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never><jid>carol@localhost</jid></never></prefs></iq>`)
	if e := c1.nextSkipping(t, nil); e.attr("type") != "result" {
		t.Fatalf("prefs: %v", e.start.Attr)
	}
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="kept"><body>archived</body></message>`, j))
	cl.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="gone"><body>not archived</body></message>`, j))
	h := 1
	c1.nextMessage(t, &h)
	c1.nextMessage(t, &h)
	c1.conn.Close()

	bounce := cl.Next(t, func(e element) bool { return e.start.Name.Local == "message" && e.attr("type") == "error" })
	if bounce.attr("id") != "gone" || stanzaErrorCondition(bounce) != "service-unavailable" || bounce.attr("from") != j {
		t.Fatalf("bounce: id %q, %s, from %q", bounce.attr("id"), stanzaErrorCondition(bounce), bounce.attr("from"))
	}
	// Bob got no bounce: bounces are queued in order, and a message from
	// carol queued after them reaches bob first.
	cl.Send(t, `<message to="bob@localhost" type="chat"><body>marker</body></message>`)
	if m := b.Next(t, func(e element) bool { return e.start.Name.Local == "message" }); m.attr("type") == "error" || body(m) != "marker" {
		t.Fatalf("bob got %v %q, want the marker (an archived message was bounced)", m.start.Attr, body(m))
	}

	// The window is over: resuming fails.
	c, _ := smAuth(t, ts, "alice", "alice pass 1")
	c.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, id, h))
	if e := c.nextSkipping(t, nil); e.start.Name.Local != "failed" {
		t.Fatalf("resume after the window: %v", e.start.Name)
	}
}

// TestSMClosedStreamBounces: a client that closes its stream cannot
// resume; its unacknowledged messages are bounced at once.
func TestSMClosedStreamBounces(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	b := ts.Login(t, "bob", "bob pass 12")
	c, j, enabled := smEnable(t, ts, "alice", "alice pass 1")
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="y"><body>unread</body></message>`, j))
	h := 0
	c.nextMessage(t, &h)
	c.write(t, `</stream:stream>`)
	bounce := b.Next(t, func(e element) bool { return e.start.Name.Local == "message" && e.attr("type") == "error" })
	if bounce.attr("id") != "y" {
		t.Fatalf("bounce of %q", bounce.attr("id"))
	}
	c2, _ := smAuth(t, ts, "alice", "alice pass 1")
	c2.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, enabled.attr("id")))
	if e := c2.nextSkipping(t, nil); e.start.Name.Local != "failed" {
		t.Fatalf("resume after a closed stream: %v", e.start.Name)
	}
}

// TestSMIdleTimeoutResumable: a client whose network went away (it does
// not answer the server's ping) stays resumable, and the resumed session
// keeps its carbons setting.
func TestSMIdleTimeoutResumable(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) {
		c.IdleTimeout = 50 * time.Millisecond
		c.PingTimeout = 50 * time.Millisecond
	}))
	ts.Register(t, "alice", "alice pass 1")
	c1, j, enabled := smEnable(t, ts, "alice", "alice pass 1")
	c1.write(t, `<iq type='set' id='cc'><enable xmlns='urn:xmpp:carbons:2'/></iq>`)
	if e := c1.nextSkipping(t, nil); e.attr("id") != "cc" || e.attr("type") != "result" {
		t.Fatalf("carbons: %v", e.start.Attr)
	}
	s1 := liveSession(t, ts, j)
	// c1 reads nothing more: the ping goes unanswered.
	if cond := c1.streamError(t); cond != "connection-timeout" {
		t.Fatalf("idle stream ended with %s", cond)
	}
	<-s1.writerDone
	c2, _ := smAuth(t, ts, "alice", "alice pass 1")
	c2.write(t, fmt.Sprintf(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='1'/>`, enabled.attr("id")))
	if e := c2.nextSkipping(t, nil); e.start.Name.Local != "resumed" {
		t.Fatalf("resume after the idle timeout: %v", e.start.Name)
	}
	if s2 := liveSession(t, ts, j); !s2.carbons.Load() {
		t.Error("carbons off after resuming")
	}
}

// TestSMAccountDeletionDropsParked: deleting the account forgets its
// parked sessions at once (their messages bounced), so nothing of the
// user stays in memory either.
func TestSMAccountDeletionDropsParked(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice pass 1")
	ts.Register(t, "bob", "bob pass 12")
	b := ts.Login(t, "bob", "bob pass 12")
	c1, j, _ := smEnable(t, ts, "alice", "alice pass 1")
	b.Send(t, fmt.Sprintf(`<message to="%s" type="chat" id="z"><body>parked</body></message>`, j))
	h := 0
	c1.nextMessage(t, &h)
	s1 := liveSession(t, ts, j)
	c1.conn.Close()
	<-s1.writerDone
	a := ts.Login(t, "alice", "alice pass 1")
	if resp := a.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`); resp.attr("type") != "result" {
		t.Fatalf("remove: %s", stanzaErrorCondition(resp))
	}
	bounce := b.Next(t, func(e element) bool { return e.start.Name.Local == "message" && e.attr("type") == "error" })
	if bounce.attr("id") != "z" {
		t.Fatalf("bounce of %q", bounce.attr("id"))
	}
	ts.sm.mu.Lock()
	defer ts.sm.mu.Unlock()
	for _, e := range ts.sm.byID {
		if e.user == "alice" {
			t.Fatalf("a session of the deleted account is still parked (%d stanzas)", len(e.held))
		}
	}
}

// TestSMResumeTimeoutFlag: -sm-resume-timeout defaults to 5 minutes, is
// bounded by 1 hour, and the privacy report lists the held stanzas with
// that lifetime.
func TestSMResumeTimeoutFlag(t *testing.T) {
	var out bytes.Buffer
	c, err := parseFlags(nil, &out)
	if err != nil || c.SMResumeTimeout != 5*time.Minute {
		t.Fatalf("default: %v %v", c.SMResumeTimeout, err)
	}
	if c, err = parseFlags([]string{"-sm-resume-timeout", "90s"}, &out); err != nil || c.SMResumeTimeout != 90*time.Second {
		t.Fatalf("90s: %v %v", c.SMResumeTimeout, err)
	}
	for _, bad := range []string{"61m", "-1s"} {
		if _, err := parseFlags([]string{"-sm-resume-timeout", bad}, &out); err == nil {
			t.Errorf("-sm-resume-timeout %s accepted", bad)
		}
	}
	ts := startTestServer(t, withConfig(func(c *Config) { c.SMResumeTimeout = 3 * time.Minute }))
	items, err := ts.privacyItems(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range items {
		if it.Job == "stream resumption window" {
			found = it.Lifetime == 3*time.Minute
		}
	}
	if !found {
		t.Errorf("no privacy report row for held stanzas with a 3 min lifetime: %+v", items)
	}
}

// FuzzSMAndCarbons: stream management elements from a client never panic
// the read loop's handler, and a message that is copied survives the
// carbon wrapping: the copy serializes, parses back and carries the
// original's body.
func FuzzSMAndCarbons(f *testing.F) {
	for _, seed := range []string{
		`<enable xmlns="urn:xmpp:sm:3" resume="true" max="99999999999"/>`,
		`<enable xmlns="urn:xmpp:sm:3" resume="1" max="1"/>`,
		`<r xmlns="urn:xmpp:sm:3"/>`,
		`<a xmlns="urn:xmpp:sm:3" h="4294967295"/>`,
		`<a xmlns="urn:xmpp:sm:3" h="-1"/>`,
		`<resume xmlns="urn:xmpp:sm:3" previd="x" h="1"/>`,
		`<message xmlns="jabber:client" type="chat"><body>hi &amp; bye</body><x xmlns="urn:example"><y/></x></message>`,
		`<message xmlns="jabber:client"><body/><private xmlns="urn:xmpp:carbons:2"/></message>`,
	} {
		f.Add([]byte(seed))
	}
	srv := newOfflineServer(f)
	srv.sm = newSMTable(srv)
	me := jid.MustParse("alice@localhost/fuzz")
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseElement(b)
		if err != nil {
			return
		}
		if e.start.Name.Space == nsSM {
			s := newSession(srv, nil, netip.MustParseAddr("192.0.2.7"))
			s.jid = me
			_ = s.handleSM(e) // an error ends the session; it must not panic
			_ = s.handleSM(e) // a second time, enabled
			srv.sm.closeAll()
			srv.sm.mu.Lock()
			clear(srv.sm.byID)
			srv.sm.mu.Unlock()
			return
		}
		if e.start.Name != (xml.Name{Space: stanza.NSClient, Local: "message"}) || !carbonEligible(e) {
			return
		}
		raw, err := carbonCopy("sent", me.Bare(), me, e).bytes()
		if err != nil {
			return // not encodable (the original would not be either)
		}
		back, err := parseElement(raw)
		if err != nil {
			t.Fatalf("carbon copy does not parse: %v\n%s", err, raw)
		}
		kind, fwd := carbonOf(back)
		if kind != "sent" || body(fwd) != body(e) {
			t.Fatalf("copy: kind %q, body %q, want sent with %q\n%s", kind, body(fwd), body(e), raw)
		}
	})
}

// TestSMReplies: answers written by a handler are queued as whole
// elements, text between them ignored.
func TestSMReplies(t *testing.T) {
	srv := &Server{cfg: Config{QueueSize: 4}}
	s := newSession(srv, nil, netip.Addr{})
	q := &smReplies{s: s}
	iq := xml.Name{Space: stanza.NSClient, Local: "iq"}
	p := xml.Name{Space: "urn:xmpp:ping", Local: "ping"}
	depth := 0
	for _, tok := range []xml.Token{
		xml.CharData("\n"),
		xml.StartElement{Name: iq}, xml.StartElement{Name: p}, xml.EndElement{Name: p}, xml.EndElement{Name: iq},
		xml.CharData(" "),
		xml.StartElement{Name: iq}, xml.EndElement{Name: iq},
	} {
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		q.add(tok, depth)
	}
	if n := s.out.len(); n != 2 {
		t.Fatalf("%d elements queued, want 2", n)
	}
	if e, _ := s.out.pop(); e.start.Name != iq || len(e.inner) != 2 {
		t.Fatalf("first: %v with %d tokens", e.start.Name, len(e.inner))
	}
}

// TestSMTableCountsPerUser checks the per-user count that bounds
// resumable sessions: maxResumablePerUser per user, independent of other
// users, and freed by every way an entry leaves the table.
func TestSMTableCountsPerUser(t *testing.T) {
	tab := newSMTable(nil)
	sess := func(user string, i int) *session {
		return &session{jid: jid.MustParse(fmt.Sprintf("%s@example.test/r%d", user, i))}
	}
	var alice []string
	for i := range maxResumablePerUser {
		id := tab.register(sess("alice", i), time.Minute)
		if id == "" {
			t.Fatalf("register %d of alice refused", i)
		}
		alice = append(alice, id)
	}
	if id := tab.register(sess("alice", 99), time.Minute); id != "" {
		t.Fatalf("register beyond %d for alice = %q, want refused", maxResumablePerUser, id)
	}
	if id := tab.register(sess("bob", 0), time.Minute); id == "" {
		t.Fatal("bob refused because of alice's sessions")
	}
	if id := tab.register(sess("carol", 0), 0); id != "" {
		t.Fatal("register with no timeout accepted")
	}

	// Each way out of the table frees one place: drop (failed resumption),
	// expire (end of window), dropWhere (account deletion, shutdown).
	leave := []struct {
		name string
		out  func(e *smEntry)
	}{
		{"drop", func(e *smEntry) { tab.drop(e) }},
		{"expire", func(e *smEntry) { e.live = nil; tab.expire(e) }},
		{"dropWhere", func(e *smEntry) {
			e.live = nil
			tab.dropWhere(func(x *smEntry) bool { return x == e })
		}},
	}
	for i, l := range leave {
		tab.mu.Lock()
		e := tab.byID[alice[i]]
		tab.mu.Unlock()
		l.out(e)
		if got := tab.byUser["alice"]; got != maxResumablePerUser-1 {
			t.Fatalf("after %s: alice counts %d, want %d", l.name, got, maxResumablePerUser-1)
		}
		if id := tab.register(sess("alice", 100+i), time.Minute); id == "" {
			t.Fatalf("after %s: register refused, place not freed", l.name)
		}
	}

	// Everything gone: no count left behind.
	tab.mu.Lock()
	for _, e := range tab.byID {
		e.live = nil
	}
	tab.mu.Unlock()
	tab.closeAll()
	if len(tab.byID) != 0 || len(tab.byUser) != 0 {
		t.Fatalf("after closeAll: %d entries, counts %v", len(tab.byID), tab.byUser)
	}
}

// BenchmarkSMRegister measures register with many other users' sessions in
// the table; with a per-user count it does not grow with the table.
//
//	go test -run '^$' -bench SMRegister ./examples/server
func BenchmarkSMRegister(b *testing.B) {
	for _, others := range []int{0, 10000} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			tab := newSMTable(nil)
			for i := range others {
				tab.register(&session{jid: jid.MustParse(fmt.Sprintf("u%d@example.test/r", i))}, time.Minute)
			}
			s := &session{jid: jid.MustParse("alice@example.test/r")}
			for b.Loop() {
				id := tab.register(s, time.Minute)
				tab.mu.Lock()
				tab.remove(tab.byID[id])
				tab.mu.Unlock()
			}
		})
	}
}
