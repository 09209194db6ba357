package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"chatbx.eu/privacy/internal/xmpptest"
	"mellium.im/xmpp"
)

// TestRosterAndPresence: roster get/set with pushes to interested
// resources; items start with subscription none; presence reaches the
// user's own sessions and only the contacts the user shares it with, and
// an initial presence gets the current presence of the contacts the user
// is subscribed to. Adding someone to the roster never reveals their
// availability.
func TestRosterAndPresence(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a1 := ts.Login(t, "alice", "alice password")
	a2 := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	rosterOf(t, a2)

	resp := a1.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster"><item jid="bob@localhost/ignored" name="Bob"><group>Friends</group></item></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("roster set: %s", stanzaErrorCondition(resp))
	}
	a2.Next(t, isPush("bob@localhost", "none", false))
	got := a2.IQ(t, `<iq type="get" id="g"><query xmlns="jabber:iq:roster"/></iq>`)
	if raw, _ := got.bytes(); !strings.Contains(string(raw), `jid="bob@localhost"`) || !strings.Contains(string(raw), `subscription="none"`) || !strings.Contains(string(raw), "Friends</group>") {
		t.Errorf("roster get: %s", raw)
	}
	if resp := a1.IQ(t, `<iq type="set" id="bad"><query xmlns="jabber:iq:roster"><item jid="@@"/></query></iq>`); resp.attr("type") != "error" {
		t.Error("malformed roster JID accepted")
	}

	online(t, b)
	online(t, a2)
	subscribeTo(t, b, a2) // bob sees alice's presence
	isPresenceFrom := func(from string) func(element) bool {
		return func(e element) bool { return e.start.Name.Local == "presence" && e.attr("from") == from }
	}
	a1.Send(t, `<presence from="mallory@localhost"><status>alice here</status></presence>`)
	for _, c := range []*testClient{a1, a2, b} {
		c.Next(t, isPresenceFrom(a1.JID.String()))
	}
	// carol adds alice and shares her presence; alice's is not shared back.
	ts.Register(t, "carol", "carol password")
	c := ts.Login(t, "carol", "carol password")
	c.IQ(t, `<iq type="set" id="s"><query xmlns="jabber:iq:roster"><item jid="alice@localhost"/></query></iq>`)
	online(t, c)
	subscribeTo(t, a1, c)
	c.IQ(t, `<iq type="get" id="p" to="localhost"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if e, err := c.next(isPresenceFrom(a1.JID.String()), 0); err == nil {
		t.Errorf("alice's presence leaked to carol, who alice did not approve: %v", e.start)
	}
	a1.Send(t, `<presence type="unavailable"/>`)
	b.Next(t, func(e element) bool {
		return isPresenceFrom(a1.JID.String())(e) && e.attr("type") == "unavailable"
	})
}

// TestFloodBothWays: two clients flooding each other at once neither
// deadlock nor lose messages (routing only enqueues; one writer per
// session).
func TestFloodBothWays(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	const n = 200
	var wg sync.WaitGroup
	for _, pair := range [][2]*testClient{{a, b}, {b, a}} {
		wg.Add(1)
		go func(from, to *testClient) {
			defer wg.Done()
			for i := range n {
				from.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>%d</body></message>`, to.JID, i))
			}
		}(pair[0], pair[1])
	}
	for _, c := range []*testClient{a, b} {
		for i := range n {
			if m := c.Next(t, isMessage); body(m) != fmt.Sprint(i) {
				t.Fatalf("%s: message %d is %q (order lost)", c.JID, i, body(m))
			}
		}
	}
	wg.Wait()
}

// TestQueueFullEndsSession: send never blocks on a slow client; when its
// queue is full the stanza is dropped, the queue emptied, nothing more
// queued, and the session ends with resource-constraint: the writer sends
// it if the client reads again in time, and the connection is closed after
// queueFullGrace in any case. (A sender's route to one recipient uses
// sendPaced: TestFastSenderSlowedNotReaderEnded.)
func TestQueueFullEndsSession(t *testing.T) {
	conn, peer := net.Pipe() // nobody reads peer: the client is stuck
	defer peer.Close()
	s := newSession(&Server{cfg: Config{QueueSize: 2}}, conn, netip.Addr{})
	for i := range 2 {
		if !s.send(element{}) {
			t.Fatalf("stanza %d refused with room in the queue", i)
		}
	}
	if s.send(element{}) {
		t.Fatal("stanza queued beyond the queue size")
	}
	select {
	case e := <-s.stop:
		if e.Err != "resource-constraint" {
			t.Errorf("stream error %q", e.Err)
		}
	default:
		t.Error("no stream error for the slow session")
	}
	if n := s.out.len(); n != 0 {
		t.Errorf("%d stanzas left queued for the stuck client", n)
	}
	if s.send(element{}) {
		t.Error("stanza queued for an ending session")
	}
	// Blocks until the grace is over (nobody reads peer), then fails.
	if _, err := conn.Write([]byte("x")); err == nil {
		t.Error("connection of the slow session still open")
	}
}

// deadlineConn counts write deadlines set in the past on its connection.
type deadlineConn struct {
	net.Conn
	past atomic.Int32
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.past.Add(1)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && t.Before(time.Now()) {
		c.past.Add(1)
	}
	return c.Conn.SetDeadline(t)
}

// TestWriteSetsNoPastDeadline: the session's writes never leave mellium a
// way to put a deadline in the past on the connection. mellium v0.22's Send
// watches its context in a goroutine that runs after the call; given a
// context that is cancelled right after Send returned (as the writer did)
// it finds both its own cancel and the context done, picks one at random,
// and about every second write then set a past deadline under whatever
// write came next: an i/o timeout that ended sessions on a busy machine.
func TestWriteSetsNoPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server, client := net.Pipe()
		defer client.Close()
		conn := &deadlineConn{Conn: server}
		go func() {
			_, _ = client.Write([]byte(xmpptest.StreamHeader))
			_, _ = io.Copy(io.Discard, client)
		}()
		xs, err := xmpp.ReceiveSession(context.Background(), conn, xmpp.Secure|xmpp.Authn, xmpptest.Negotiator)
		if err != nil {
			t.Fatal(err)
		}
		s := newSession(&Server{cfg: Config{QueueSize: 1}}, conn, netip.Addr{})
		s.xs = xs
		msg, err := parseElement([]byte(`<message xmlns="jabber:client" to="a@localhost"><body>x</body></message>`))
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if err := s.write(msg.TokenReader()); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		synctest.Wait() // every goroutine mellium started has run
		if n := conn.past.Load(); n != 0 {
			t.Errorf("%d deadlines in the past set on the connection", n)
		}
		server.Close()
	})
}

// TestFastSenderSlowedNotReaderEnded: a sender faster than its reader is
// slowed to the reader's pace; the reader keeps its session and gets every
// message in order. With a queue of 4 stanzas, 500 pipelined messages
// overflow it many times over (before send waited for room, the reader's
// session ended with resource-constraint and the rest was lost).
func TestFastSenderSlowedNotReaderEnded(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.QueueSize = 4 }))
	alice := loginUser(t, ts, "alice")
	bob := loginUser(t, ts, "bob")
	const n = 500
	var msgs strings.Builder
	for i := range n {
		fmt.Fprintf(&msgs, `<message to="bob@localhost" type="chat" id="q%d"><body>%d</body></message>`, i, i)
	}
	alice.Send(t, msgs.String())
	for i := range n {
		m := bob.Next(t, isMessage)
		if m.attr("type") == "error" || body(m) != strconv.Itoa(i) {
			t.Fatalf("message %d: type %q body %q", i, m.attr("type"), body(m))
		}
	}
}

// TestSendPacedEndsStuckClient: sendPaced waits for a client that takes
// nothing off its full queue for queueFullWait, then ends its session as
// send does (resource-constraint, queue emptied).
func TestSendPacedEndsStuckClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conn, peer := net.Pipe()
		defer peer.Close()
		s := newSession(&Server{cfg: Config{QueueSize: 2}}, conn, netip.Addr{})
		for range 2 {
			if !s.sendPaced(element{}) {
				t.Fatal("stanza refused with room in the queue")
			}
		}
		start := time.Now()
		if s.sendPaced(element{}) {
			t.Fatal("stanza queued for a client that never reads")
		}
		if waited := time.Since(start); waited != queueFullWait {
			t.Errorf("waited %v for the stuck client, want %v", waited, queueFullWait)
		}
		select {
		case e := <-s.stop:
			if e.Err != "resource-constraint" {
				t.Errorf("stream error %q", e.Err)
			}
		default:
			t.Error("no stream error for the stuck session")
		}
		if n := s.out.len(); n != 0 {
			t.Errorf("%d stanzas left queued for the stuck client", n)
		}
		s.finish()
		conn.Close()
	})
}
