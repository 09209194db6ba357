package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/muc"
)

// joinHistory joins occupant with the given <history/> attributes ("" for
// none) and returns the messages replayed before the subject, which ends
// the join (§ 7.2.15), and that they came after the self-presence.
func joinHistory(t *testing.T, c *testClient, occupant, history string) []element {
	t.Helper()
	x := `<x xmlns="http://jabber.org/protocol/muc"/>`
	if history != "" {
		x = `<x xmlns="http://jabber.org/protocol/muc"><history ` + history + `/></x>`
	}
	room := strings.SplitN(occupant, "/", 2)[0]
	c.Send(t, `<presence to="`+occupant+`">`+x+`</presence>`)
	var got []element
	selfSeen := false
	for {
		e := c.Next(t, func(e element) bool {
			return strings.HasPrefix(e.attr("from"), room) && (e.start.Name.Local == "message" || e.start.Name.Local == "presence")
		})
		if e.attr("type") == "error" {
			t.Fatalf("join %s: %s", occupant, stanzaErrorCondition(e))
		}
		if e.start.Name.Local == "presence" {
			if e.attr("from") == occupant {
				selfSeen = true
			}
			continue
		}
		if _, ok := e.child(xml.Name{Space: "jabber:client", Local: "subject"}); ok {
			if !selfSeen {
				t.Fatalf("join %s: subject before the self-presence", occupant)
			}
			return got
		}
		if !selfSeen {
			t.Fatalf("join %s: history before the self-presence", occupant)
		}
		got = append(got, e)
	}
}

func bodies(es []element) string {
	var b []string
	for _, e := range es {
		b = append(b, body(e))
	}
	return strings.Join(b, ",")
}

// say sends a groupchat message from c and waits for its echo.
func say(t *testing.T, c *testClient, room, text string, extra ...string) {
	t.Helper()
	c.Send(t, `<message to="`+room+`" type="groupchat"><body>`+text+`</body>`+strings.Join(extra, "")+`</message>`)
	c.Next(t, isGroupchat(text))
}

// TestRoomHistoryMemory: a room that does not archive replays its last
// messages from memory (§ 7.2.15) after the occupants' presence and before
// the subject, from the sender's occupant JID with a delay from the room;
// <history/> maxstanzas, maxchars, seconds and since narrow it; no-store
// messages and chat states are not kept; the room's history length bounds
// it (0: none); the deleted sender's messages go.
func TestRoomHistoryMemory(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)}
	ts := startTestServer(t, withConfig(func(c *Config) { c.Now = clock.Now }))
	cl := mucUsers(t, ts, "alice", "bob", "carol")
	a, b, c := cl[0], cl[1], cl[2]
	const room = "talk@conference.localhost"
	joinRoom(t, a, room+"/Al")
	joinRoom(t, b, room+"/Bob")
	say(t, a, room, "one")
	say(t, b, room, "two")
	say(t, a, room, "secret", `<no-store xmlns="urn:xmpp:hints"/>`)
	a.Send(t, `<message to="`+room+`" type="groupchat"><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	clock.Advance(time.Hour)
	say(t, a, room, "three")

	h := joinHistory(t, c, room+"/Cat", "")
	if got := bodies(h); got != "one,two,three" {
		t.Fatalf("history %q, want one,two,three", got)
	}
	wantFrom := []string{room + "/Al", room + "/Bob", room + "/Al"}
	for i, e := range h {
		if e.attr("from") != wantFrom[i] || e.attr("type") != "groupchat" || e.attr("to") != "carol@localhost/"+c.JID.Resourcepart() {
			t.Errorf("history %d: from %q type %q to %q", i, e.attr("from"), e.attr("type"), e.attr("to"))
		}
		d, ok := e.child(xml.Name{Space: nsDelay, Local: "delay"})
		if !ok || d.attr("from") != room {
			t.Errorf("history %d: delay %v from %q", i, ok, d.attr("from"))
		}
		if i == 0 && d.attr("stamp") != "2026-12-01T10:00:00.123456Z" {
			t.Errorf("stamp %q", d.attr("stamp"))
		}
		if raw, _ := e.bytes(); bytes.Contains(raw, []byte("alice@localhost")) {
			t.Errorf("semi-anonymous room: history shows a real JID: %s", raw)
		}
	}
	c.Send(t, `<presence to="`+room+`/Cat" type="unavailable"/>`)
	c.Next(t, mucPresence(room+"/Cat", "unavailable"))

	sinceRaw := clock.Now().Add(-30 * time.Minute).Format(time.RFC3339)
	size, _ := h[2].bytes()
	for _, tc := range []struct{ attrs, want string }{
		{`maxstanzas="2"`, "two,three"},
		{`maxstanzas="0"`, ""},
		{`maxchars="0"`, ""},
		{`seconds="60"`, "three"},
		{`since="` + sinceRaw + `"`, "three"},
		{`maxstanzas="x" seconds="-5"`, "one,two,three"},   // unparsable: ignored
		{`seconds="9000000000000000000"`, "one,two,three"}, // would overflow a Duration
		{`maxchars="` + strconv.Itoa(len(size)+5) + `"`, "three"},
	} {
		h := joinHistory(t, c, room+"/Cat", tc.attrs)
		if got := bodies(h); got != tc.want {
			t.Errorf("<history %s>: %q, want %q", tc.attrs, got, tc.want)
		}
		c.Send(t, `<presence to="`+room+`/Cat" type="unavailable"/>`)
		c.Next(t, mucPresence(room+"/Cat", "unavailable"))
	}

	// The sender's account deleted: its messages leave the history.
	if err := ts.deleteAccount(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	if got := bodies(joinHistory(t, c, room+"/Cat", "")); got != "one,three" {
		t.Errorf("after bob's deletion: %q", got)
	}
	c.Send(t, `<presence to="`+room+`/Cat" type="unavailable"/>`)
	c.Next(t, mucPresence(room+"/Cat", "unavailable"))

	// The room's history length: 1, then 0 (none, and memory cleared).
	if r := configureRoom(t, a, room, fieldMaxHistory, "1"); r.attr("type") != "result" {
		t.Fatalf("history length 1: %s", stanzaErrorCondition(r))
	}
	say(t, a, room, "four")
	say(t, a, room, "five")
	if got := bodies(joinHistory(t, c, room+"/Cat", "")); got != "five" {
		t.Errorf("history length 1: %q", got)
	}
	c.Send(t, `<presence to="`+room+`/Cat" type="unavailable"/>`)
	c.Next(t, mucPresence(room+"/Cat", "unavailable"))
	configureRoom(t, a, room, fieldMaxHistory, "0")
	say(t, a, room, "six")
	if got := bodies(joinHistory(t, c, room+"/Cat", "")); got != "" {
		t.Errorf("history length 0: %q", got)
	}
	for _, v := range []string{"-1", "51", "many"} {
		if r := configureRoom(t, a, room, fieldMaxHistory, v); stanzaErrorCondition(r) != "bad-request" {
			t.Errorf("history length %q: %q, want bad-request", v, stanzaErrorCondition(r))
		}
	}
	ts.muc.mu.Lock()
	n := len(ts.muc.rooms["talk"].history)
	ts.muc.mu.Unlock()
	if n != 0 {
		t.Errorf("history off: %d messages still in memory", n)
	}
}

// TestRoomHistoryArchive: a room that archives replays from its archive
// (no copy in memory), with the room's stanza-id of each message; messages
// from before archiving was on are not replayed.
func TestRoomHistoryArchive(t *testing.T) {
	ts := startTestServer(t)
	cl := mucUsers(t, ts, "alice", "bob")
	a, b := cl[0], cl[1]
	const room = "kept@conference.localhost"
	joinRoom(t, a, room+"/Al")
	say(t, a, room, "before")
	if r := configureRoom(t, a, room, mam.FieldEnableArchiving, "1"); r.attr("type") != "result" {
		t.Fatalf("archiving on: %s", stanzaErrorCondition(r))
	}
	var ids []string
	for _, text := range []string{"a1", "a2", "a3"} {
		a.Send(t, `<message to="`+room+`" type="groupchat"><body>`+text+`</body></message>`)
		echo := a.Next(t, isGroupchat(text))
		sid, _ := echo.child(xml.Name{Space: "urn:xmpp:sid:0", Local: "stanza-id"})
		ids = append(ids, sid.attr("id"))
	}
	ts.muc.mu.Lock()
	n := len(ts.muc.rooms["kept"].history)
	ts.muc.mu.Unlock()
	if n != 0 {
		t.Errorf("archiving room keeps %d messages in memory", n)
	}
	h := joinHistory(t, b, room+"/Bob", `maxstanzas="2"`)
	if got := bodies(h); got != "a2,a3" {
		t.Fatalf("history %q, want a2,a3", got)
	}
	for i, e := range h {
		sid, ok := e.child(xml.Name{Space: "urn:xmpp:sid:0", Local: "stanza-id"})
		if !ok || sid.attr("id") != ids[i+1] || sid.attr("by") != room {
			t.Errorf("history %d: stanza-id %q by %q, want %q", i, sid.attr("id"), sid.attr("by"), ids[i+1])
		}
		if e.attr("from") != room+"/Al" {
			t.Errorf("history %d from %q", i, e.attr("from"))
		}
		if _, ok := e.child(xml.Name{Space: nsDelay, Local: "delay"}); !ok {
			t.Errorf("history %d: no delay", i)
		}
		if _, ok := e.child(xml.Name{Space: muc.NSUser, Local: "x"}); ok {
			t.Errorf("history %d carries a muc#user x", i)
		}
	}
}

// FuzzHistoryRequest: any <history/> parses without panic to values that
// are absent (negative, zero time) or in range.
func FuzzHistoryRequest(f *testing.F) {
	f.Add(`<history maxstanzas="20" maxchars="65000" seconds="180" since="1970-01-01T00:00:00Z"/>`)
	f.Add(`<history maxstanzas="-1" maxchars="x" seconds="99999999999999999999"/>`)
	f.Fuzz(func(t *testing.T, h string) {
		e, err := parseElement([]byte(`<presence xmlns="jabber:client"><x xmlns="http://jabber.org/protocol/muc">` + h + `</x></presence>`))
		if err != nil {
			return
		}
		req := parseHistoryRequest(e)
		if req.maxStanzas < -1 || req.maxChars < -1 || req.seconds < -1 {
			t.Fatalf("out of range: %+v", req)
		}
	})
}
